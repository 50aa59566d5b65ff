//! HTTP APIs (API Gateway v2): the API, its routes, integrations and stages.

use std::collections::BTreeMap;
use std::sync::Arc;

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

/// An authorizer of an HTTP API: a JWT authorizer (`AuthorizerType` `JWT`) or a Lambda
/// authorizer (`REQUEST`). Routes name it by `AuthorizerId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorizer {
    /// The API it belongs to.
    pub api_id: String,
    /// `AuthorizerId`.
    pub authorizer_id: String,
    /// `Name`.
    pub name: String,
    /// `AuthorizerType`: `JWT` or `REQUEST`.
    pub authorizer_type: String,
    /// `IdentitySource`: selection expressions (`$request.header.Authorization`...).
    pub identity_source: Vec<String>,
    /// `JwtConfiguration` (JWT authorizers).
    pub jwt_configuration: Option<JwtConfiguration>,
    /// `AuthorizerUri`: the Lambda function (REQUEST authorizers), as an ARN or the
    /// apigateway `.../functions/{arn}/invocations` form.
    pub authorizer_uri: Option<String>,
    /// `AuthorizerPayloadFormatVersion`: `1.0` or `2.0` (REQUEST authorizers).
    pub authorizer_payload_format_version: Option<String>,
    /// `AuthorizerResultTtlInSeconds`: 0 (no caching) to 3600 (REQUEST authorizers).
    pub authorizer_result_ttl_in_seconds: Option<u32>,
    /// `EnableSimpleResponses` (REQUEST authorizers, payload 2.0).
    pub enable_simple_responses: Option<bool>,
    /// `AuthorizerCredentialsArn`.
    pub authorizer_credentials_arn: Option<String>,
    /// `IdentityValidationExpression` (not used by HTTP APIs; kept as given).
    pub identity_validation_expression: Option<String>,
}

/// `JwtConfiguration` of a JWT authorizer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtConfiguration {
    /// `Audience`: a token's `aud` (or, without one, its `client_id`) must be one of them.
    pub audience: Vec<String>,
    /// `Issuer`: the token's `iss`, and where its keys are found.
    pub issuer: Option<String>,
}

/// Where an authorizer finds a part of the caller's identity: one `IdentitySource`
/// selection expression of an HTTP API ("Working with AWS Lambda authorizers for HTTP
/// APIs", Identity sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// `$request.header.{name}`: a header (names are case-insensitive).
    Header(String),
    /// `$request.querystring.{name}`: a query string parameter (case-sensitive).
    QueryString(String),
    /// `$context.{name}`: a context variable (`requestId`, `routeKey`...).
    Context(String),
    /// `$stageVariables.{name}`: a stage variable.
    StageVariable(String),
}

impl IdentitySource {
    /// Parses a selection expression; `None` when it is none of the four kinds or names
    /// nothing.
    pub fn parse(expr: &str) -> Option<IdentitySource> {
        let named = |prefix: &str| expr.strip_prefix(prefix).filter(|n| !n.is_empty()).map(str::to_string);
        named("$request.header.")
            .map(IdentitySource::Header)
            .or_else(|| named("$request.querystring.").map(IdentitySource::QueryString))
            .or_else(|| named("$context.").map(IdentitySource::Context))
            .or_else(|| named("$stageVariables.").map(IdentitySource::StageVariable))
    }
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
    /// `AccessLogSettings`: none on stages stored before access logs existed.
    #[serde(default)]
    pub access_log_settings: Option<AccessLogSettings>,
}

/// `AccessLogSettings` of a stage: the log group access logs go to and the `Format`
/// of each line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogSettings {
    /// `DestinationArn`: `arn:aws:logs:{region}:{account}:log-group:{name}`, maybe ending in `:*`.
    pub destination_arn: Option<String>,
    /// `Format`: one line with `$context` variables in it.
    pub format: Option<String>,
}

/// The prefix AWS puts before every complaint about an HTTP API's access log format.
const FORMAT_ERRORS: &str = "The following errors are found in Access Log Format: ";

impl AccessLogSettings {
    /// The log group the settings name, with its account and region, and the format,
    /// when both are set and the destination is a log group ARN.
    pub fn target(&self) -> Option<(Scope, &str, &str)> {
        let (scope, group) = parse_log_group_arn(self.destination_arn.as_deref()?)?;
        Some((scope, group, self.format.as_deref()?))
    }

    /// Checks the settings as API Gateway does when a stage is created or updated.
    pub fn validate(&self) -> Result<(), Invalid> {
        let (Some(arn), Some(format)) = (&self.destination_arn, &self.format) else {
            if self.destination_arn.is_none() && self.format.is_none() {
                return Ok(());
            }
            return Err(Invalid("AccessLogSettings must set both DestinationArn and Format.".into()));
        };
        if parse_log_group_arn(arn).is_none() {
            return Err(Invalid(format!(
                "Invalid destination ARN {arn}: it must be the ARN of a CloudWatch Logs log group, \
                 arn:aws:logs:{{region}}:{{account-id}}:log-group:{{log-group-name}}"
            )));
        }
        if format.contains(['\n', '\r']) {
            return Err(Invalid(format!("{FORMAT_ERRORS}Access Log format must be single line: '{format}'")));
        }
        if !context_variables(format).any(|(_, name)| name == "requestId" || name == "extendedRequestId") {
            return Err(Invalid(format!(
                "{FORMAT_ERRORS}Access Log format must include either $context.requestId or $context.extendedRequestId : '{format}'"
            )));
        }
        Ok(())
    }
}

/// The account, region and name of a CloudWatch Logs log group ARN,
/// `arn:{partition}:logs:{region}:{account}:log-group:{name}` with an optional `:*`.
pub fn parse_log_group_arn(arn: &str) -> Option<(Scope, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (partition, service, region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let name = resource.strip_prefix("log-group:")?;
    let name = name.strip_suffix(":*").unwrap_or(name);
    let name_ok = !name.is_empty()
        && name.len() <= 512
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/#".contains(&b));
    let region_ok =
        !region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok = !partition.is_empty()
        && service == "logs"
        && region_ok
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && name_ok;
    ok.then(|| (Scope { account_id: account.to_string(), region: region.to_string() }, name))
}

/// Each `$context.name` (or `${context.name}`) in an access log format: the byte range
/// it covers and its name (`requestId`, `identity.sourceIp`...). A name is letters,
/// digits, `_` and inner dots: a dot that ends it is the format's own text.
pub fn context_variables(format: &str) -> impl Iterator<Item = (std::ops::Range<usize>, &str)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while let Some(i) = format.get(at..)?.find('$') {
            let start = at + i;
            at = start + 1;
            let after = &format[at..];
            if let Some(braced) = after.strip_prefix("{context.") {
                let Some(end) = braced.find('}') else { continue };
                at = start + "${context.".len() + end + 1;
                return Some((start..at, &braced[..end]));
            }
            let Some(plain) = after.strip_prefix("context.") else { continue };
            let len = plain.bytes().take_while(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.').count();
            let name = plain[..len].trim_end_matches('.');
            if name.is_empty() {
                continue;
            }
            at = start + "$context.".len() + name.len();
            return Some((start..at, name));
        }
        None
    })
}

/// A deployment: the routes, integrations, authorizers and CORS configuration of an API frozen at
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
    /// Routes by route id, as they were (shared with the API's own maps while unchanged).
    pub routes: BTreeMap<String, Arc<Route>>,
    /// Integrations by integration id, as they were.
    pub integrations: BTreeMap<String, Arc<Integration>>,
    /// `CorsConfiguration`, as it was.
    pub cors: Option<CorsConfiguration>,
    /// Authorizers by authorizer id, as they were (the routes name them); none in
    /// deployments stored before authorizers existed.
    #[serde(default)]
    pub authorizers: BTreeMap<String, Authorizer>,
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
    fn access_log_variables() {
        let found: Vec<(std::ops::Range<usize>, &str)> =
            context_variables("$context.requestId ${context.identity.sourceIp}-$context.status. $x $context. $")
                .collect();
        assert_eq!(found, vec![(0..18, "requestId"), (19..47, "identity.sourceIp"), (48..63, "status")]);
    }

    #[test]
    fn access_log_settings() {
        let s = |arn: &str, format: &str| AccessLogSettings {
            destination_arn: Some(arn.into()),
            format: Some(format.into()),
        };
        let arn = "arn:aws:logs:us-east-1:111122223333:log-group:/my/api-logs";
        let settings = s(arn, "$context.requestId");
        let (scope, group, _) = settings.target().expect("a log group");
        assert_eq!(
            (scope.account_id.as_str(), scope.region.as_str(), group),
            ("111122223333", "us-east-1", "/my/api-logs")
        );
        assert_eq!(s(&format!("{arn}:*"), "x").target().map(|t| t.1), Some("/my/api-logs"));
        assert!(s(arn, "$context.requestId").validate().is_ok());
        assert!(s(arn, "${context.extendedRequestId} $context.status").validate().is_ok());
        assert!(AccessLogSettings::default().validate().is_ok());
        let err = s(arn, "$context.status").validate().expect_err("no request id");
        assert_eq!(err.0, "The following errors are found in Access Log Format: Access Log format must include either $context.requestId or $context.extendedRequestId : '$context.status'");
        assert!(s(arn, "$context.requestIdx").validate().is_err());
        assert!(s(arn, "$context.requestId\n$context.status").validate().is_err());
        for bad in [
            "arn:aws:logs:us-east-1:1111:log-group:x",
            "arn:aws:s3:::bucket",
            "arn:aws:logs:us-east-1:111122223333:log-group:",
            "arn:aws:logs:us-east-1:111122223333:log-group:a b",
            "not an arn",
        ] {
            assert!(s(bad, "$context.requestId").validate().is_err(), "{bad}");
        }
        let half = AccessLogSettings { destination_arn: Some(arn.into()), format: None };
        assert!(half.validate().is_err());
    }

    #[test]
    fn identity_sources() {
        assert_eq!(
            IdentitySource::parse("$request.header.Authorization"),
            Some(IdentitySource::Header("Authorization".into()))
        );
        assert_eq!(
            IdentitySource::parse("$request.querystring.token"),
            Some(IdentitySource::QueryString("token".into()))
        );
        assert_eq!(IdentitySource::parse("$context.routeKey"), Some(IdentitySource::Context("routeKey".into())));
        assert_eq!(IdentitySource::parse("$stageVariables.v"), Some(IdentitySource::StageVariable("v".into())));
        for bad in ["", "Authorization", "$request.header.", "$request.body.x", "route.request.header.Auth"] {
            assert_eq!(IdentitySource::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stage_names() {
        assert!(validate_stage_name("$default").is_ok());
        assert!(validate_stage_name("prod").is_ok());
        assert!(validate_stage_name("a b").is_err());
    }
}
