//! HTTP APIs (API Gateway v2): the API, its routes, integrations and stages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Invalid, Scope};

/// `CorsConfiguration` of an HTTP API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfiguration {
    /// `AllowCredentials`.
    pub allow_credentials: Option<bool>,
    /// `AllowHeaders` (compared case-insensitively).
    pub allow_headers: Vec<String>,
    /// `AllowMethods`.
    pub allow_methods: Vec<String>,
    /// `AllowOrigins`; `*` allows any origin.
    pub allow_origins: Vec<String>,
    /// `ExposeHeaders`.
    pub expose_headers: Vec<String>,
    /// `MaxAge` in seconds.
    pub max_age: Option<i64>,
}

/// An HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Api {
    /// Account and region owning it.
    pub scope: Scope,
    /// `ApiId`: ten lower-case alphanumerics.
    pub api_id: String,
    /// `Name`.
    pub name: String,
    /// `Description`.
    pub description: Option<String>,
    /// `ProtocolType`: always `HTTP` in Portico.
    pub protocol_type: String,
    /// `RouteSelectionExpression`.
    pub route_selection_expression: String,
    /// `ApiKeySelectionExpression`.
    pub api_key_selection_expression: String,
    /// `CorsConfiguration`.
    pub cors: Option<CorsConfiguration>,
    /// `DisableExecuteApiEndpoint`.
    pub disable_execute_api_endpoint: bool,
    /// `Version`.
    pub version: Option<String>,
    /// `CreatedDate` (ISO-8601).
    pub created_date: String,
    /// `Tags`.
    pub tags: BTreeMap<String, String>,
}

/// A route: a route key and the integration it targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The API it belongs to.
    pub api_id: String,
    /// `RouteId`.
    pub route_id: String,
    /// `RouteKey`: `$default` or `METHOD /path`.
    pub route_key: String,
    /// `Target`: `integrations/{integrationId}`.
    pub target: Option<String>,
    /// `AuthorizationType`: `NONE`, `JWT`, `CUSTOM` or `AWS_IAM`.
    pub authorization_type: String,
    /// `AuthorizerId`.
    pub authorizer_id: Option<String>,
    /// `AuthorizationScopes`.
    pub authorization_scopes: Vec<String>,
    /// `ApiKeyRequired` (always false for HTTP APIs).
    pub api_key_required: bool,
    /// `OperationName`.
    pub operation_name: Option<String>,
}

impl Route {
    /// The integration id this route targets, if its target has the
    /// `integrations/{id}` shape.
    pub fn integration_id(&self) -> Option<&str> {
        self.target.as_deref()?.strip_prefix("integrations/")
    }
}

/// An integration: where a route's requests go. Portico supports Lambda proxy
/// integrations (`AWS_PROXY`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    /// The API it belongs to.
    pub api_id: String,
    /// `IntegrationId`.
    pub integration_id: String,
    /// `IntegrationType`.
    pub integration_type: String,
    /// `IntegrationUri`: a Lambda ARN or the apigateway `.../functions/{arn}/invocations` form.
    pub integration_uri: Option<String>,
    /// `IntegrationMethod`.
    pub integration_method: Option<String>,
    /// `PayloadFormatVersion`: `1.0` or `2.0`.
    pub payload_format_version: String,
    /// `TimeoutInMillis` (50–30000).
    pub timeout_in_millis: u32,
    /// `ConnectionType`.
    pub connection_type: String,
    /// `Description`.
    pub description: Option<String>,
    /// `CredentialsArn`.
    pub credentials_arn: Option<String>,
}

/// Throttling and metrics settings of a stage or a route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteSettings {
    /// `ThrottlingBurstLimit`.
    pub throttling_burst_limit: Option<i64>,
    /// `ThrottlingRateLimit` (requests per second).
    pub throttling_rate_limit: Option<f64>,
    /// `DetailedMetricsEnabled`.
    pub detailed_metrics_enabled: Option<bool>,
}

/// A stage: a named, deployable snapshot of the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// The API it belongs to.
    pub api_id: String,
    /// `StageName`; `$default` is served at the root.
    pub stage_name: String,
    /// `AutoDeploy`.
    pub auto_deploy: bool,
    /// `DeploymentId`.
    pub deployment_id: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `StageVariables`.
    pub stage_variables: BTreeMap<String, String>,
    /// `DefaultRouteSettings`.
    pub default_route_settings: RouteSettings,
    /// `RouteSettings`, keyed by route key.
    pub route_settings: BTreeMap<String, RouteSettings>,
    /// `CreatedDate`.
    pub created_date: String,
    /// `LastUpdatedDate`.
    pub last_updated_date: String,
    /// `Tags`.
    pub tags: BTreeMap<String, String>,
}

/// A deployment: the routes, integrations and CORS configuration of an API frozen at
/// one moment. A stage serves the deployment it points at, so changes to the API are
/// invisible on a stage until it is deployed again (or at once, with `AutoDeploy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The API it belongs to.
    pub api_id: String,
    /// `DeploymentId`.
    pub deployment_id: String,
    /// `CreatedDate`.
    pub created_date: String,
    /// `Description`.
    pub description: Option<String>,
    /// `AutoDeployed`: made by a stage's `AutoDeploy` rather than CreateDeployment.
    pub auto_deployed: bool,
    /// Routes by route id, as they were.
    pub routes: BTreeMap<String, Route>,
    /// Integrations by integration id, as they were.
    pub integrations: BTreeMap<String, Integration>,
    /// `CorsConfiguration`, as it was.
    pub cors: Option<CorsConfiguration>,
}

/// The HTTP methods a route key may name.
pub const ROUTE_METHODS: [&str; 8] = ["ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Checks a route key: `$default`, or `METHOD /path` where each path segment is a
/// literal, `{name}`, or (last only) `{name+}`.
pub fn validate_route_key(key: &str) -> Result<(), Invalid> {
    if key == "$default" {
        return Ok(());
    }
    let bad = || {
        Invalid(format!("Unable to create route {key}. Route key must be $default or start with an HTTP method and a path, e.g. 'GET /pets'."))
    };
    let (method, path) = key.split_once(' ').ok_or_else(bad)?;
    if !ROUTE_METHODS.contains(&method) || !path.starts_with('/') || path.contains(' ') {
        return Err(bad());
    }
    if path == "/" {
        return Ok(());
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            return Err(bad());
        }
        if let Some(inner) = seg.strip_prefix('{') {
            let inner = inner.strip_suffix('}').ok_or_else(bad)?;
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if name.is_empty()
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            {
                return Err(bad());
            }
            if greedy && i + 1 != segments.len() {
                return Err(bad());
            }
        } else if seg.contains('{') || seg.contains('}') {
            return Err(bad());
        }
    }
    Ok(())
}

/// Checks an API name: 1–128 characters.
pub fn validate_api_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.chars().count() > 128 {
        return Err(Invalid("Invalid API name specified. Must be between 1 and 128 characters in length.".into()));
    }
    Ok(())
}

/// Checks a stage name: `$default`, or 1–128 of letters, digits, `-`, `_`.
pub fn validate_stage_name(name: &str) -> Result<(), Invalid> {
    let ok = name == "$default"
        || (!name.is_empty()
            && name.len() <= 128
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "Stage name only allows a-zA-Z0-9_- and must be between 1 and 128 characters, got '{name}'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys() {
        for ok in ["$default", "GET /hello", "ANY /{proxy+}", "POST /items/{id}", "GET /", "DELETE /a/{b}/c"] {
            assert!(validate_route_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "GET", "FETCH /x", "GET hello", "GET /{a+}/b", "GET /a//b", "GET /{}", "GET /a{b}"] {
            assert!(validate_route_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stage_names() {
        assert!(validate_stage_name("$default").is_ok());
        assert!(validate_stage_name("prod").is_ok());
        assert!(validate_stage_name("a b").is_err());
    }
}
