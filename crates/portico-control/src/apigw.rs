//! API Gateway v2's REST-JSON API (`/v2/apis...`) for HTTP APIs: APIs, routes,
//! integrations, authorizers, stages and deployments. Members are camelCase on the wire.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use portico_model::api::{
    validate_api_name, validate_route_key, validate_stage_name, AccessLogSettings, Authorizer, IdentitySource,
    RouteSettings,
};
use portico_model::catalog::child_key;
use portico_model::{
    Api, ApiBundle, Catalog, Change, CorsConfiguration, Deployment, Function, FunctionArn, Integration,
    PolicyStatement, Qualifier, Record, RecordKind, Route, Stage,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{empty_response, json, json_response, AwsError, Call, Control, Result, Service};

type Resp = Response<Full<Bytes>>;

/// The sub-resources of an API.
#[derive(Debug, Clone, Copy)]
enum Child {
    Route,
    Integration,
    Stage,
    Deployment,
    Authorizer,
}

/// The API Gateway v2 operations Portico serves, parsed from `(method, path)`.
#[derive(Debug)]
enum Action<'a> {
    /// `POST /v2/apis`.
    CreateApi,
    /// `GET /v2/apis`.
    GetApis,
    /// `GET /v2/apis/{apiId}`.
    GetApi(&'a str),
    /// `PATCH /v2/apis/{apiId}`.
    UpdateApi(&'a str),
    /// `DELETE /v2/apis/{apiId}`.
    DeleteApi(&'a str),
    /// `DELETE /v2/apis/{apiId}/cors`.
    DeleteCors(&'a str),
    /// `POST /v2/apis/{apiId}/{routes|integrations|stages|deployments|authorizers}`.
    Create(&'a str, Child),
    /// `GET /v2/apis/{apiId}/{routes|integrations|stages|deployments|authorizers}`.
    List(&'a str, Child),
    /// `GET /v2/apis/{apiId}/{kind}/{id}`.
    Get(&'a str, Child, &'a str),
    /// `PATCH /v2/apis/{apiId}/{kind}/{id}`.
    Update(&'a str, Child, &'a str),
    /// `DELETE /v2/apis/{apiId}/{kind}/{id}`.
    Delete(&'a str, Child, &'a str),
}

fn child(s: &str) -> Option<Child> {
    match s {
        "routes" => Some(Child::Route),
        "integrations" => Some(Child::Integration),
        "stages" => Some(Child::Stage),
        "deployments" => Some(Child::Deployment),
        "authorizers" => Some(Child::Authorizer),
        _ => None,
    }
}

fn route<'a>(method: &Method, segments: &'a [String]) -> Option<Action<'a>> {
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    Some(match (method, segs.as_slice()) {
        (&Method::POST, ["apis"]) => Action::CreateApi,
        (&Method::GET, ["apis"]) => Action::GetApis,
        (&Method::GET, ["apis", id]) => Action::GetApi(id),
        (&Method::PATCH, ["apis", id]) => Action::UpdateApi(id),
        (&Method::DELETE, ["apis", id]) => Action::DeleteApi(id),
        (&Method::DELETE, ["apis", id, "cors"]) => Action::DeleteCors(id),
        (&Method::POST, ["apis", id, kind]) => Action::Create(id, child(kind)?),
        (&Method::GET, ["apis", id, kind]) => Action::List(id, child(kind)?),
        (&Method::GET, ["apis", id, kind, sub]) => Action::Get(id, child(kind)?, sub),
        (&Method::PATCH, ["apis", id, kind, sub]) => Action::Update(id, child(kind)?, sub),
        (&Method::DELETE, ["apis", id, kind, sub]) => Action::Delete(id, child(kind)?, sub),
        _ => return None,
    })
}

pub(crate) async fn handle(c: &Arc<Control>, call: &Call) -> Result<Resp> {
    let Some(action) = route(&call.method, &call.segments) else {
        return Err(AwsError::unknown_operation(Service::ApiGateway, &call.method, &call.segments.join("/")));
    };
    match action {
        Action::CreateApi => create_api(c, call).await,
        Action::GetApis => {
            let catalog = c.catalog();
            let apis: Vec<&Arc<ApiBundle>> = catalog.apis.values().filter(|b| b.api.scope == call.scope).collect();
            let docs: Vec<(String, Value)> = apis.iter().map(|b| (b.api.api_id.clone(), api_doc(c, &b.api))).collect();
            page(call, docs)
        }
        Action::GetApi(id) => {
            let b = bundle(c, call, id)?;
            Ok(json_response(StatusCode::OK, &api_doc(c, &b.api)))
        }
        Action::UpdateApi(id) => update_api(c, call, id).await,
        Action::DeleteApi(id) => {
            let _w = c.write.lock().await;
            let b = bundle(c, call, id)?;
            let mut changes = vec![Change::Delete(RecordKind::Api, id.to_string())];
            changes.extend(b.routes.keys().map(|r| Change::Delete(RecordKind::Route, child_key(id, r))));
            changes.extend(b.integrations.keys().map(|i| Change::Delete(RecordKind::Integration, child_key(id, i))));
            changes.extend(b.stages.keys().map(|s| Change::Delete(RecordKind::Stage, child_key(id, s))));
            changes.extend(b.deployments.keys().map(|d| Change::Delete(RecordKind::Deployment, child_key(id, d))));
            changes.extend(b.authorizers.keys().map(|a| Change::Delete(RecordKind::Authorizer, child_key(id, a))));
            c.commit(changes).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        Action::DeleteCors(id) => {
            let _w = c.write.lock().await;
            let b = bundle(c, call, id)?;
            let mut api = b.api.clone();
            api.cors = None;
            commit_api(c, id, vec![Change::Put(Record::Api(api))]).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        Action::Create(id, Child::Route) => create_route(c, call, id).await,
        Action::Create(id, Child::Integration) => create_integration(c, call, id).await,
        Action::Create(id, Child::Stage) => create_stage(c, call, id).await,
        Action::Create(id, Child::Deployment) => create_deployment(c, call, id).await,
        Action::Create(id, Child::Authorizer) => create_authorizer(c, call, id).await,
        Action::List(id, kind) => {
            let b = bundle(c, call, id)?;
            let docs: Vec<(String, Value)> = match kind {
                Child::Route => b.routes.iter().map(|(k, r)| (k.clone(), route_doc(r))).collect(),
                Child::Integration => b.integrations.iter().map(|(k, i)| (k.clone(), integration_doc(i))).collect(),
                Child::Stage => b.stages.iter().map(|(k, s)| (k.clone(), stage_doc(s))).collect(),
                Child::Deployment => b.deployments.iter().map(|(k, d)| (k.clone(), deployment_doc(d))).collect(),
                Child::Authorizer => b.authorizers.iter().map(|(k, a)| (k.clone(), authorizer_doc(a))).collect(),
            };
            page(call, docs)
        }
        Action::Get(id, kind, sub) => {
            let b = bundle(c, call, id)?;
            let doc = match kind {
                Child::Route => b.routes.get(sub).map(|r| route_doc(r)),
                Child::Integration => b.integrations.get(sub).map(|i| integration_doc(i)),
                Child::Stage => b.stages.get(sub).map(stage_doc),
                Child::Deployment => b.deployments.get(sub).map(|d| deployment_doc(d)),
                Child::Authorizer => b.authorizers.get(sub).map(authorizer_doc),
            };
            doc.map(|d| json_response(StatusCode::OK, &d)).ok_or_else(|| missing(kind, sub))
        }
        Action::Update(id, kind, sub) => update_child(c, call, id, kind, sub).await,
        Action::Delete(id, kind, sub) => {
            let _w = c.write.lock().await;
            let b = bundle(c, call, id)?;
            let (exists, rk) = match kind {
                Child::Route => (b.routes.contains_key(sub), RecordKind::Route),
                Child::Integration => (b.integrations.contains_key(sub), RecordKind::Integration),
                Child::Stage => (b.stages.contains_key(sub), RecordKind::Stage),
                Child::Deployment => (b.deployments.contains_key(sub), RecordKind::Deployment),
                Child::Authorizer => (b.authorizers.contains_key(sub), RecordKind::Authorizer),
            };
            if !exists {
                return Err(missing(kind, sub));
            }
            if let Child::Deployment = kind {
                if let Some(s) = b.stages.values().find(|s| s.deployment_id.as_deref() == Some(sub)) {
                    return Err(AwsError::bad_request(format!(
                        "Deployment {sub} is in use by stage {}: deploy another deployment to the stage or delete the stage first.",
                        s.stage_name
                    )));
                }
            }
            if let Child::Authorizer = kind {
                if let Some(r) = b.routes.values().find(|r| r.authorizer_id.as_deref() == Some(sub)) {
                    return Err(AwsError::conflict(format!(
                        "Cannot delete authorizer {sub}: route {} still uses it. Update or delete the route first.",
                        r.route_key
                    )));
                }
            }
            if let Child::Integration = kind {
                let target = format!("integrations/{sub}");
                if b.routes.values().any(|r| r.target.as_deref() == Some(target.as_str())) {
                    return Err(AwsError::conflict(format!(
                        "Cannot delete integration {sub}: a route still targets it. Update or delete the route first."
                    )));
                }
            }
            commit_api(c, id, vec![Change::Delete(rk, child_key(id, sub))]).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
    }
}

fn missing(kind: Child, id: &str) -> AwsError {
    match kind {
        Child::Route => AwsError::not_found(format!("Invalid Route identifier specified {id}")),
        Child::Integration => AwsError::not_found(format!("Invalid Integration identifier specified {id}")),
        Child::Stage => AwsError::not_found(format!("Invalid stage identifier specified {id}")),
        Child::Deployment => AwsError::not_found(format!("Invalid Deployment identifier specified {id}")),
        Child::Authorizer => AwsError::not_found(format!("Invalid Authorizer identifier specified {id}")),
    }
}

fn bundle(c: &Control, call: &Call, api_id: &str) -> Result<Arc<ApiBundle>> {
    c.catalog().api_in(&call.scope, api_id).cloned().ok_or_else(|| {
        AwsError::not_found(format!("Invalid API identifier specified {}:{api_id}", call.scope.account_id))
    })
}

/// `{"items": [...], "nextToken": ...}` over id-ordered documents.
fn page(call: &Call, docs: Vec<(String, Value)>) -> Result<Resp> {
    let max = match call.query("maxResults") {
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|m| *m >= 1)
            .ok_or_else(|| AwsError::bad_request(format!("Invalid maxResults {m}")))?,
        None => 10_000,
    };
    let after = call.query("nextToken").unwrap_or("");
    let mut docs: Vec<(String, Value)> = docs.into_iter().filter(|(k, _)| k.as_str() > after).collect();
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    let next = (docs.len() > max).then(|| docs[max - 1].0.clone());
    docs.truncate(max);
    let mut doc = json!({ "items": docs.into_iter().map(|(_, v)| v).collect::<Vec<_>>() });
    if let Some(n) = next {
        doc["nextToken"] = json!(n);
    }
    Ok(json_response(StatusCode::OK, &doc))
}

fn now() -> String {
    portico_model::time::iso8601(chrono::Utc::now())
}

fn cors_doc(c: &CorsConfiguration) -> Value {
    let mut d = serde_json::Map::new();
    if let Some(v) = c.allow_credentials {
        d.insert("allowCredentials".into(), json!(v));
    }
    for (k, v) in [
        ("allowHeaders", &c.allow_headers),
        ("allowMethods", &c.allow_methods),
        ("allowOrigins", &c.allow_origins),
        ("exposeHeaders", &c.expose_headers),
    ] {
        if !v.is_empty() {
            d.insert(k.into(), json!(v));
        }
    }
    if let Some(m) = c.max_age {
        d.insert("maxAge".into(), json!(m));
    }
    Value::Object(d)
}

fn api_doc(c: &Control, a: &Api) -> Value {
    let mut d = json!({
        "apiEndpoint": format!("http://{}.execute-api.localhost:{}", a.api_id, c.cfg.public_port),
        "apiId": a.api_id,
        "apiKeySelectionExpression": a.api_key_selection_expression,
        "createdDate": a.created_date,
        "disableExecuteApiEndpoint": a.disable_execute_api_endpoint,
        "name": a.name,
        "protocolType": a.protocol_type,
        "routeSelectionExpression": a.route_selection_expression,
        "tags": a.tags,
    });
    if let Some(cors) = &a.cors {
        d["corsConfiguration"] = cors_doc(cors);
    }
    if let Some(v) = &a.description {
        d["description"] = json!(v);
    }
    if let Some(v) = &a.version {
        d["version"] = json!(v);
    }
    d
}

fn route_doc(r: &Route) -> Value {
    let mut d = json!({
        "apiKeyRequired": r.api_key_required,
        "authorizationType": r.authorization_type,
        "routeId": r.route_id,
        "routeKey": r.route_key,
    });
    if let Some(t) = &r.target {
        d["target"] = json!(t);
    }
    if let Some(a) = &r.authorizer_id {
        d["authorizerId"] = json!(a);
    }
    if !r.authorization_scopes.is_empty() {
        d["authorizationScopes"] = json!(r.authorization_scopes);
    }
    if let Some(o) = &r.operation_name {
        d["operationName"] = json!(o);
    }
    d
}

fn integration_doc(i: &Integration) -> Value {
    let mut d = json!({
        "connectionType": i.connection_type,
        "integrationId": i.integration_id,
        "integrationType": i.integration_type,
        "payloadFormatVersion": i.payload_format_version,
        "timeoutInMillis": i.timeout_in_millis,
    });
    for (k, v) in [
        ("integrationUri", &i.integration_uri),
        ("integrationMethod", &i.integration_method),
        ("description", &i.description),
        ("credentialsArn", &i.credentials_arn),
    ] {
        if let Some(v) = v {
            d[k] = json!(v);
        }
    }
    d
}

fn settings_doc(s: &RouteSettings) -> Value {
    let mut d = json!({ "detailedMetricsEnabled": s.detailed_metrics_enabled.unwrap_or(false) });
    if let Some(b) = s.throttling_burst_limit {
        d["throttlingBurstLimit"] = json!(b);
    }
    if let Some(r) = s.throttling_rate_limit {
        d["throttlingRateLimit"] = json!(r);
    }
    d
}

fn stage_doc(s: &Stage) -> Value {
    let mut d = json!({
        "autoDeploy": s.auto_deploy,
        "createdDate": s.created_date,
        "defaultRouteSettings": settings_doc(&s.default_route_settings),
        "lastUpdatedDate": s.last_updated_date,
        "routeSettings": s.route_settings.iter().map(|(k, v)| (k.clone(), settings_doc(v))).collect::<serde_json::Map<_, _>>(),
        "stageName": s.stage_name,
        "stageVariables": s.stage_variables,
        "tags": s.tags,
    });
    if let Some(v) = &s.deployment_id {
        d["deploymentId"] = json!(v);
    }
    if let Some(v) = &s.description {
        d["description"] = json!(v);
    }
    if let Some(a) = &s.access_log_settings {
        let mut settings = json!({});
        if let Some(v) = &a.destination_arn {
            settings["destinationArn"] = json!(v);
        }
        if let Some(v) = &a.format {
            settings["format"] = json!(v);
        }
        d["accessLogSettings"] = settings;
    }
    d
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CorsIn {
    allow_credentials: Option<bool>,
    allow_headers: Option<Vec<String>>,
    allow_methods: Option<Vec<String>>,
    allow_origins: Option<Vec<String>>,
    expose_headers: Option<Vec<String>>,
    max_age: Option<i64>,
}

impl CorsIn {
    fn into_model(self) -> Result<CorsConfiguration> {
        if let Some(m) = self.max_age {
            if !(-1..=86400).contains(&m) {
                return Err(AwsError::bad_request("MaxAge must be between -1 and 86400."));
            }
        }
        let cors = CorsConfiguration {
            allow_credentials: self.allow_credentials,
            allow_headers: self.allow_headers.unwrap_or_default(),
            allow_methods: self.allow_methods.unwrap_or_default(),
            allow_origins: self.allow_origins.unwrap_or_default(),
            expose_headers: self.expose_headers.unwrap_or_default(),
            max_age: self.max_age,
        };
        if cors.allow_credentials == Some(true) && cors.allow_origins.iter().any(|o| o == "*") {
            return Err(AwsError::bad_request(
                "allow-credentials is not supported when allow-origins contains '*'. Specify the exact origins instead.",
            ));
        }
        Ok(cors)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiIn {
    name: Option<String>,
    protocol_type: Option<String>,
    description: Option<String>,
    cors_configuration: Option<CorsIn>,
    disable_execute_api_endpoint: Option<bool>,
    route_selection_expression: Option<String>,
    api_key_selection_expression: Option<String>,
    version: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    target: Option<String>,
    route_key: Option<String>,
    credentials_arn: Option<String>,
}

fn default_settings() -> RouteSettings {
    RouteSettings { detailed_metrics_enabled: Some(false), ..RouteSettings::default() }
}

async fn create_api(c: &Control, call: &Call) -> Result<Resp> {
    let input: ApiIn = json::parse(Service::ApiGateway, &call.body)?;
    let name = input.name.unwrap_or_default();
    validate_api_name(&name).map_err(|e| AwsError::bad_request(e.0))?;
    match input.protocol_type.as_deref() {
        Some("HTTP") => {}
        Some("WEBSOCKET") => {
            return Err(AwsError::bad_request("Portico serves HTTP APIs only; WEBSOCKET APIs are not supported."))
        }
        other => {
            return Err(AwsError::bad_request(format!(
                "Invalid protocol type {}: must be HTTP.",
                other.unwrap_or("(missing)")
            )))
        }
    }
    let api = Api {
        scope: call.scope.clone(),
        api_id: portico_model::ids::api_id(),
        name,
        description: input.description,
        protocol_type: "HTTP".into(),
        route_selection_expression: input
            .route_selection_expression
            .unwrap_or_else(|| "$request.method $request.path".into()),
        api_key_selection_expression: input
            .api_key_selection_expression
            .unwrap_or_else(|| "$request.header.x-api-key".into()),
        cors: input.cors_configuration.map(CorsIn::into_model).transpose()?,
        disable_execute_api_endpoint: input.disable_execute_api_endpoint.unwrap_or(false),
        version: input.version,
        created_date: now(),
        tags: input.tags.unwrap_or_default(),
    };
    let mut changes = vec![Change::Put(Record::Api(api.clone()))];
    let _w = c.write.lock().await;
    if let Some(target) = input.target {
        // Quick create: integration + route + $default stage + invoke permission.
        let function = FunctionArn::from_integration_uri(&target).ok_or_else(|| {
            AwsError::bad_request(format!("Invalid target {target}: quick create needs a Lambda function ARN."))
        })?;
        let route_key = input.route_key.unwrap_or_else(|| "$default".into());
        validate_route_key(&route_key).map_err(|e| AwsError::bad_request(e.0))?;
        let integration = Integration {
            api_id: api.api_id.clone(),
            integration_id: portico_model::ids::sub_resource_id(),
            integration_type: "AWS_PROXY".into(),
            integration_uri: Some(target.clone()),
            integration_method: Some("POST".into()),
            payload_format_version: "2.0".into(),
            timeout_in_millis: 30_000,
            connection_type: "INTERNET".into(),
            description: None,
            credentials_arn: input.credentials_arn,
        };
        let route = Route {
            api_id: api.api_id.clone(),
            route_id: portico_model::ids::sub_resource_id(),
            route_key,
            target: Some(format!("integrations/{}", integration.integration_id)),
            authorization_type: "NONE".into(),
            authorizer_id: None,
            authorization_scopes: Vec::new(),
            api_key_required: false,
            operation_name: None,
        };
        let t = now();
        let stage = Stage {
            api_id: api.api_id.clone(),
            stage_name: "$default".into(),
            auto_deploy: true,
            deployment_id: None,
            description: None,
            stage_variables: BTreeMap::new(),
            default_route_settings: default_settings(),
            route_settings: BTreeMap::new(),
            created_date: t.clone(),
            last_updated_date: t,
            tags: BTreeMap::new(),
            access_log_settings: None,
        };
        // As the console does (and the CLI shortcut, per the tutorial): let this API
        // invoke what it targets. A qualified target (`...:function:f:prod`, `...:f:3`)
        // is governed by that alias's or version's own policy (the gateway checks the
        // policy of what it invokes), so the grant goes there, not to `$LATEST`.
        let source_arn =
            format!("arn:aws:execute-api:{}:{}:{}/*/*", api.scope.region, api.scope.account_id, api.api_id);
        let statement = |resource: String| PolicyStatement {
            sid: format!("portico-quickcreate-{}", api.api_id),
            action: "lambda:InvokeFunction".into(),
            principal: "apigateway.amazonaws.com".into(),
            source_arn: Some(source_arn.clone()),
            source_account: None,
            resource,
        };
        if let Some(grant) = quick_create_grant(&c.catalog(), &call.scope.account_id, &function, statement) {
            changes.push(Change::Put(grant));
        }
        changes.push(Change::Put(Record::Integration(integration)));
        changes.push(Change::Put(Record::Route(route)));
        changes.push(Change::Put(Record::Stage(stage)));
    }
    commit_api(c, &api.api_id, changes).await?;
    Ok(json_response(StatusCode::CREATED, &api_doc(c, &api)))
}

/// The record of the function, version or alias `target` names, with `statement(its
/// ARN)` added to its resource policy; none when it does not exist or belongs to
/// another account (quick create still makes the API, as before).
fn quick_create_grant(
    catalog: &Catalog,
    account_id: &str,
    target: &FunctionArn,
    statement: impl Fn(String) -> PolicyStatement,
) -> Option<Record> {
    if target.scope.account_id != account_id {
        return None;
    }
    let unqualified = target.unqualified();
    let version = |f: &Function| {
        let mut next = f.clone();
        next.policy.push(statement(f.version_arn()));
        next.revision_id = portico_model::ids::uuid();
        if next.is_latest() {
            Record::Function(next)
        } else {
            Record::Version(next)
        }
    };
    match &target.qualifier {
        None | Some(Qualifier::Latest) => catalog.function(&unqualified).map(|f| version(f)),
        Some(Qualifier::Named(q)) if q.bytes().all(|b| b.is_ascii_digit()) => {
            catalog.version(&unqualified, q).map(|f| version(f))
        }
        Some(Qualifier::Named(q)) => catalog.aliases.get(&format!("{unqualified}:{q}")).map(|a| {
            let mut next = (**a).clone();
            next.policy.push(statement(a.arn()));
            next.revision_id = portico_model::ids::uuid();
            Record::Alias(next)
        }),
    }
}

async fn update_api(c: &Control, call: &Call, id: &str) -> Result<Resp> {
    let input: ApiIn = json::parse(Service::ApiGateway, &call.body)?;
    let _w = c.write.lock().await;
    let b = bundle(c, call, id)?;
    let mut api = b.api.clone();
    if let Some(n) = input.name {
        validate_api_name(&n).map_err(|e| AwsError::bad_request(e.0))?;
        api.name = n;
    }
    if let Some(d) = input.description {
        api.description = Some(d);
    }
    if let Some(cors) = input.cors_configuration {
        api.cors = Some(cors.into_model()?);
    }
    if let Some(v) = input.disable_execute_api_endpoint {
        api.disable_execute_api_endpoint = v;
    }
    if let Some(v) = input.route_selection_expression {
        api.route_selection_expression = v;
    }
    if let Some(v) = input.version {
        api.version = Some(v);
    }
    commit_api(c, id, vec![Change::Put(Record::Api(api.clone()))]).await?;
    Ok(json_response(StatusCode::OK, &api_doc(c, &api)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RouteIn {
    route_key: Option<String>,
    target: Option<String>,
    authorization_type: Option<String>,
    authorizer_id: Option<String>,
    authorization_scopes: Option<Vec<String>>,
    api_key_required: Option<bool>,
    operation_name: Option<String>,
}

fn check_target(b: &ApiBundle, target: &str) -> Result<()> {
    match target.strip_prefix("integrations/") {
        Some(i) if b.integrations.contains_key(i) => Ok(()),
        _ => Err(AwsError::bad_request(format!(
            "Invalid target {target}: it must be integrations/{{integrationId}} of an integration of this API."
        ))),
    }
}

/// Checks a route's authorization as API Gateway does: `JWT` needs a JWT authorizer of
/// the API, `CUSTOM` a `REQUEST` one; `AWS_IAM` (SigV4-signed callers) and `NONE` need
/// none; scopes go with JWT only. Returns the authorizer id the route keeps (none without
/// an authorizer).
fn check_authorization(
    b: &ApiBundle,
    kind: &str,
    authorizer_id: Option<String>,
    scopes: &[String],
) -> Result<Option<String>> {
    let needs = match kind {
        "NONE" | "AWS_IAM" => None,
        "JWT" => Some("JWT"),
        "CUSTOM" => Some("REQUEST"),
        other => return Err(AwsError::bad_request(format!("Invalid authorization type {other}."))),
    };
    if !scopes.is_empty() && kind != "JWT" {
        return Err(AwsError::bad_request(
            "AuthorizationScopes are supported only for routes with AuthorizationType JWT.",
        ));
    }
    if scopes.len() > 10 {
        return Err(AwsError::bad_request("A route can have at most 10 authorization scopes."));
    }
    let Some(needs) = needs else { return Ok(None) };
    match authorizer_id.as_deref().and_then(|a| b.authorizers.get(a)) {
        Some(a) if a.authorizer_type == needs => Ok(authorizer_id),
        _ => Err(AwsError::bad_request(format!(
            "Invalid authorizer ID specified. Setting the authorization type to {kind} requires a valid {needs} authorizer."
        ))),
    }
}

async fn create_route(c: &Control, call: &Call, id: &str) -> Result<Resp> {
    let input: RouteIn = json::parse(Service::ApiGateway, &call.body)?;
    let _w = c.write.lock().await;
    let b = bundle(c, call, id)?;
    let route_key = input.route_key.unwrap_or_default();
    validate_route_key(&route_key).map_err(|e| AwsError::bad_request(e.0))?;
    if b.routes.values().any(|r| r.route_key == route_key) {
        return Err(AwsError::conflict(format!("Route with key {route_key} already exists for this API")));
    }
    if let Some(t) = &input.target {
        check_target(&b, t)?;
    }
    let authorization_type = input.authorization_type.unwrap_or_else(|| "NONE".into());
    let authorization_scopes = input.authorization_scopes.unwrap_or_default();
    let authorizer_id = check_authorization(&b, &authorization_type, input.authorizer_id, &authorization_scopes)?;
    let route = Route {
        api_id: id.to_string(),
        route_id: portico_model::ids::sub_resource_id(),
        route_key,
        target: input.target,
        authorization_type,
        authorizer_id,
        authorization_scopes,
        api_key_required: input.api_key_required.unwrap_or(false),
        operation_name: input.operation_name,
    };
    commit_api(c, id, vec![Change::Put(Record::Route(route.clone()))]).await?;
    Ok(json_response(StatusCode::CREATED, &route_doc(&route)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntegrationIn {
    integration_type: Option<String>,
    integration_uri: Option<String>,
    integration_method: Option<String>,
    payload_format_version: Option<String>,
    timeout_in_millis: Option<i64>,
    connection_type: Option<String>,
    description: Option<String>,
    credentials_arn: Option<String>,
}

fn check_payload_version(v: &str) -> Result<()> {
    match v {
        "1.0" | "2.0" => Ok(()),
        other => Err(AwsError::bad_request(format!("Invalid payload format version {other}: must be 1.0 or 2.0."))),
    }
}

/// `TimeoutInMillis`: "Custom timeout between 50 and 29,000 milliseconds for WebSocket
/// APIs and between 50 and 30,000 milliseconds for HTTP APIs. The default timeout is ...
/// 30 seconds for HTTP APIs" (API Gateway V2 API reference, Integration). AWS documents
/// no message for a value out of range; a `BadRequestException` (400) with ours.
fn check_timeout(t: i64) -> Result<u32> {
    u32::try_from(t)
        .ok()
        .filter(|t| (50..=30_000).contains(t))
        .ok_or_else(|| AwsError::bad_request("Timeout must be between 50 milliseconds and 30 seconds."))
}

async fn create_integration(c: &Control, call: &Call, id: &str) -> Result<Resp> {
    let input: IntegrationIn = json::parse(Service::ApiGateway, &call.body)?;
    let _w = c.write.lock().await;
    bundle(c, call, id)?;
    match input.integration_type.as_deref() {
        Some("AWS_PROXY") => {}
        Some(other) => {
            return Err(AwsError::bad_request(format!(
                "Integration type {other} is not supported by this Portico: use AWS_PROXY (Lambda proxy)."
            )))
        }
        None => return Err(AwsError::bad_request("IntegrationType is required.")),
    }
    let uri = input
        .integration_uri
        .ok_or_else(|| AwsError::bad_request("IntegrationUri is required for AWS_PROXY integrations."))?;
    if FunctionArn::from_integration_uri(&uri).is_none() {
        return Err(AwsError::bad_request(format!("Invalid integration URI {uri}: must be a Lambda function ARN.")));
    }
    let version = input.payload_format_version.ok_or_else(|| {
        AwsError::bad_request("PayloadFormatVersion is required for Lambda proxy integrations of HTTP APIs.")
    })?;
    check_payload_version(&version)?;
    let integration = Integration {
        api_id: id.to_string(),
        integration_id: portico_model::ids::sub_resource_id(),
        integration_type: "AWS_PROXY".into(),
        integration_uri: Some(uri),
        integration_method: Some(input.integration_method.unwrap_or_else(|| "POST".into())),
        payload_format_version: version,
        timeout_in_millis: check_timeout(input.timeout_in_millis.unwrap_or(30_000))?,
        connection_type: input.connection_type.unwrap_or_else(|| "INTERNET".into()),
        description: input.description,
        credentials_arn: input.credentials_arn,
    };
    commit_api(c, id, vec![Change::Put(Record::Integration(integration.clone()))]).await?;
    Ok(json_response(StatusCode::CREATED, &integration_doc(&integration)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsIn {
    throttling_burst_limit: Option<i64>,
    throttling_rate_limit: Option<f64>,
    detailed_metrics_enabled: Option<bool>,
}

impl SettingsIn {
    fn into_model(self) -> RouteSettings {
        RouteSettings {
            throttling_burst_limit: self.throttling_burst_limit,
            throttling_rate_limit: self.throttling_rate_limit,
            detailed_metrics_enabled: Some(self.detailed_metrics_enabled.unwrap_or(false)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageIn {
    stage_name: Option<String>,
    auto_deploy: Option<bool>,
    deployment_id: Option<String>,
    description: Option<String>,
    stage_variables: Option<BTreeMap<String, String>>,
    default_route_settings: Option<SettingsIn>,
    route_settings: Option<BTreeMap<String, SettingsIn>>,
    tags: Option<BTreeMap<String, String>>,
    access_log_settings: Option<AccessLogSettingsIn>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessLogSettingsIn {
    destination_arn: Option<String>,
    format: Option<String>,
}

impl AccessLogSettingsIn {
    /// The stage's settings, checked as API Gateway checks them; none when both
    /// members are absent (which turns access logging off).
    fn into_model(self) -> Result<Option<AccessLogSettings>> {
        let settings = AccessLogSettings { destination_arn: self.destination_arn, format: self.format };
        settings.validate().map_err(|e| AwsError::bad_request(e.0))?;
        Ok((settings != AccessLogSettings::default()).then_some(settings))
    }
}

fn check_stage_variables(vars: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in vars {
        let name_ok = !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let value_ok = v.len() <= 512 && v.chars().all(|ch| ch.is_ascii_alphanumeric() || "-._~:/?#&=,".contains(ch));
        if !name_ok || !value_ok {
            return Err(AwsError::bad_request(format!(
                "Stage variable {k}: names must be alphanumeric or _ (1-64), values may only contain alphanumerics and -._~:/?#&=, (up to 512)."
            )));
        }
    }
    Ok(())
}

async fn create_stage(c: &Control, call: &Call, id: &str) -> Result<Resp> {
    let input: StageIn = json::parse(Service::ApiGateway, &call.body)?;
    let _w = c.write.lock().await;
    let b = bundle(c, call, id)?;
    let name = input.stage_name.unwrap_or_default();
    validate_stage_name(&name).map_err(|e| AwsError::bad_request(e.0))?;
    if b.stages.contains_key(&name) {
        return Err(AwsError::conflict(format!("Stage already exists: {name}")));
    }
    let vars = input.stage_variables.unwrap_or_default();
    check_stage_variables(&vars)?;
    let access_log_settings = input.access_log_settings.map(AccessLogSettingsIn::into_model).transpose()?.flatten();
    let t = now();
    let stage = Stage {
        api_id: id.to_string(),
        stage_name: name,
        auto_deploy: input.auto_deploy.unwrap_or(false),
        deployment_id: input.deployment_id,
        description: input.description,
        stage_variables: vars,
        default_route_settings: input.default_route_settings.map_or_else(default_settings, SettingsIn::into_model),
        route_settings: input
            .route_settings
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_model()))
            .collect(),
        created_date: t.clone(),
        last_updated_date: t,
        tags: input.tags.unwrap_or_default(),
        access_log_settings,
    };
    if let Some(d) = &stage.deployment_id {
        if !b.deployments.contains_key(d) {
            return Err(missing(Child::Deployment, d));
        }
    }
    let name = stage.stage_name.clone();
    commit_api(c, id, vec![Change::Put(Record::Stage(stage))]).await?;
    Ok(json_response(StatusCode::CREATED, &stage_doc(&current_stage(c, call, id, &name)?)))
}

async fn update_child(c: &Control, call: &Call, id: &str, kind: Child, sub: &str) -> Result<Resp> {
    let _w = c.write.lock().await;
    let b = bundle(c, call, id)?;
    match kind {
        Child::Route => {
            let input: RouteIn = json::parse(Service::ApiGateway, &call.body)?;
            let mut r = b.routes.get(sub).map(|r| Route::clone(r)).ok_or_else(|| missing(kind, sub))?;
            if let Some(k) = input.route_key {
                validate_route_key(&k).map_err(|e| AwsError::bad_request(e.0))?;
                if b.routes.values().any(|o| o.route_key == k && o.route_id != r.route_id) {
                    return Err(AwsError::conflict(format!("Route with key {k} already exists for this API")));
                }
                r.route_key = k;
            }
            if let Some(t) = input.target {
                check_target(&b, &t)?;
                r.target = Some(t);
            }
            if input.authorization_type.is_some()
                || input.authorizer_id.is_some()
                || input.authorization_scopes.is_some()
            {
                let kind = input.authorization_type.unwrap_or_else(|| r.authorization_type.clone());
                // A route that changes its authorization type keeps neither its authorizer
                // nor its scopes, unless given again.
                let same = kind == r.authorization_type;
                let authorizer = input.authorizer_id.or_else(|| if same { r.authorizer_id.clone() } else { None });
                let scopes = input.authorization_scopes.unwrap_or_else(|| {
                    if same {
                        r.authorization_scopes.clone()
                    } else {
                        Vec::new()
                    }
                });
                r.authorizer_id = check_authorization(&b, &kind, authorizer, &scopes)?;
                r.authorization_type = kind;
                r.authorization_scopes = scopes;
            }
            if let Some(o) = input.operation_name {
                r.operation_name = Some(o);
            }
            commit_api(c, id, vec![Change::Put(Record::Route(r.clone()))]).await?;
            Ok(json_response(StatusCode::OK, &route_doc(&r)))
        }
        Child::Integration => {
            let input: IntegrationIn = json::parse(Service::ApiGateway, &call.body)?;
            let mut i = b.integrations.get(sub).map(|i| Integration::clone(i)).ok_or_else(|| missing(kind, sub))?;
            if let Some(t) = input.integration_type {
                if t != "AWS_PROXY" {
                    return Err(AwsError::bad_request(format!(
                        "Integration type {t} is not supported by this Portico: use AWS_PROXY (Lambda proxy)."
                    )));
                }
            }
            if let Some(u) = input.integration_uri {
                if FunctionArn::from_integration_uri(&u).is_none() {
                    return Err(AwsError::bad_request(format!(
                        "Invalid integration URI {u}: must be a Lambda function ARN."
                    )));
                }
                i.integration_uri = Some(u);
            }
            if let Some(v) = input.payload_format_version {
                check_payload_version(&v)?;
                i.payload_format_version = v;
            }
            if let Some(t) = input.timeout_in_millis {
                i.timeout_in_millis = check_timeout(t)?;
            }
            if let Some(d) = input.description {
                i.description = Some(d);
            }
            if let Some(m) = input.integration_method {
                i.integration_method = Some(m);
            }
            commit_api(c, id, vec![Change::Put(Record::Integration(i.clone()))]).await?;
            Ok(json_response(StatusCode::OK, &integration_doc(&i)))
        }
        Child::Stage => {
            let input: StageIn = json::parse(Service::ApiGateway, &call.body)?;
            let mut s = b.stages.get(sub).cloned().ok_or_else(|| missing(kind, sub))?;
            if let Some(a) = input.auto_deploy {
                s.auto_deploy = a;
            }
            if let Some(d) = input.deployment_id {
                if !b.deployments.contains_key(&d) {
                    return Err(missing(Child::Deployment, &d));
                }
                s.deployment_id = Some(d);
            }
            if let Some(d) = input.description {
                s.description = Some(d);
            }
            if let Some(v) = input.stage_variables {
                check_stage_variables(&v)?;
                s.stage_variables = v;
            }
            if let Some(d) = input.default_route_settings {
                s.default_route_settings = d.into_model();
            }
            if let Some(r) = input.route_settings {
                s.route_settings = r.into_iter().map(|(k, v)| (k, v.into_model())).collect();
            }
            if let Some(a) = input.access_log_settings {
                s.access_log_settings = a.into_model()?;
            }
            s.last_updated_date = now();
            let name = s.stage_name.clone();
            commit_api(c, id, vec![Change::Put(Record::Stage(s))]).await?;
            Ok(json_response(StatusCode::OK, &stage_doc(&current_stage(c, call, id, &name)?)))
        }
        Child::Authorizer => {
            let input: AuthorizerIn = json::parse(Service::ApiGateway, &call.body)?;
            let current = b.authorizers.get(sub).cloned().ok_or_else(|| missing(kind, sub))?;
            let a = input.apply(current)?;
            if let Some(r) = b.routes.values().find(|r| {
                r.authorizer_id.as_deref() == Some(sub)
                    && (r.authorization_type == "JWT") != (a.authorizer_type == "JWT")
            }) {
                return Err(AwsError::bad_request(format!(
                    "Cannot change the type of authorizer {sub}: route {} uses it as a {} authorizer.",
                    r.route_key, r.authorization_type
                )));
            }
            commit_api(c, id, vec![Change::Put(Record::Authorizer(a.clone()))]).await?;
            Ok(json_response(StatusCode::OK, &authorizer_doc(&a)))
        }
        Child::Deployment => {
            let input: DeploymentIn = json::parse(Service::ApiGateway, &call.body)?;
            let mut d = (**b.deployments.get(sub).ok_or_else(|| missing(kind, sub))?).clone();
            if let Some(desc) = input.description {
                d.description = Some(desc);
            }
            commit_api(c, id, vec![Change::Put(Record::Deployment(d.clone()))]).await?;
            Ok(json_response(StatusCode::OK, &deployment_doc(&d)))
        }
    }
}

/// Commits `changes` to API `api_id` and redeploys every stage with `AutoDeploy` whose
/// deployment no longer matches the API, in the same commit, as API Gateway does.
async fn commit_api(c: &Control, api_id: &str, mut changes: Vec<Change>) -> Result<()> {
    changes.extend(auto_deploy(&c.catalog(), api_id, &changes));
    c.commit(changes).await
}

/// Whether `d` holds what the API serves now.
fn is_current(b: &ApiBundle, d: &Deployment) -> bool {
    d.routes == b.routes && d.integrations == b.integrations && d.cors == b.api.cors && d.authorizers == b.authorizers
}

/// A deployment of what `b` holds now.
fn snapshot(b: &ApiBundle, description: Option<String>, auto_deployed: bool) -> Deployment {
    Deployment {
        api_id: b.api.api_id.clone(),
        deployment_id: portico_model::ids::sub_resource_id(),
        created_date: now(),
        description,
        auto_deployed,
        routes: b.routes.clone(),
        integrations: b.integrations.clone(),
        cors: b.api.cors.clone(),
        authorizers: b.authorizers.clone(),
    }
}

/// The changes that bring auto-deploy stages up to date after `changes`: one new
/// deployment they all point at, and the removal of auto-made deployments no stage
/// serves any more (explicit deployments stay until DeleteDeployment).
fn auto_deploy(catalog: &Catalog, api_id: &str, changes: &[Change]) -> Vec<Change> {
    // Previewing the changes copies the whole API: not worth it when no stage auto-deploys.
    let auto_now = catalog.apis.get(api_id).is_some_and(|b| b.stages.values().any(|s| s.auto_deploy));
    let auto_next = changes.iter().any(|c| matches!(c, Change::Put(Record::Stage(s)) if s.auto_deploy));
    if !auto_now && !auto_next {
        return Vec::new();
    }
    let next = catalog.apply(catalog.revision, changes.iter().cloned());
    let Some(b) = next.apis.get(api_id) else { return Vec::new() };
    let stale: Vec<&Stage> = b
        .stages
        .values()
        .filter(|s| {
            s.auto_deploy
                && !s.deployment_id.as_ref().and_then(|d| b.deployments.get(d)).is_some_and(|d| is_current(b, d))
        })
        .collect();
    if stale.is_empty() {
        return Vec::new();
    }
    let deployment = snapshot(b, None, true);
    let mut out = Vec::new();
    let mut serving: std::collections::HashSet<&str> = b
        .stages
        .values()
        .filter(|s| !stale.iter().any(|t| t.stage_name == s.stage_name))
        .filter_map(|s| s.deployment_id.as_deref())
        .collect();
    serving.insert(&deployment.deployment_id);
    for d in b.deployments.values().filter(|d| d.auto_deployed && !serving.contains(d.deployment_id.as_str())) {
        out.push(Change::Delete(RecordKind::Deployment, child_key(api_id, &d.deployment_id)));
    }
    for s in stale {
        let mut s = s.clone();
        s.deployment_id = Some(deployment.deployment_id.clone());
        s.last_updated_date = now();
        out.push(Change::Put(Record::Stage(s)));
    }
    out.push(Change::Put(Record::Deployment(deployment)));
    out
}

fn current_stage(c: &Control, call: &Call, api_id: &str, name: &str) -> Result<Stage> {
    bundle(c, call, api_id)?.stages.get(name).cloned().ok_or_else(|| missing(Child::Stage, name))
}

fn deployment_doc(d: &Deployment) -> Value {
    let mut doc = json!({
        "autoDeployed": d.auto_deployed,
        "createdDate": d.created_date,
        "deploymentId": d.deployment_id,
        "deploymentStatus": "DEPLOYED",
    });
    if let Some(v) = &d.description {
        doc["description"] = json!(v);
    }
    doc
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentIn {
    description: Option<String>,
    stage_name: Option<String>,
}

/// CreateDeployment: freezes the API as it is now; with `stageName`, that stage serves it.
async fn create_deployment(c: &Control, call: &Call, id: &str) -> Result<Resp> {
    let input: DeploymentIn = json::parse(Service::ApiGateway, &call.body)?;
    let _w = c.write.lock().await;
    let b = bundle(c, call, id)?;
    let deployment = snapshot(&b, input.description, false);
    let mut changes = Vec::new();
    if let Some(name) = input.stage_name {
        let mut stage = b.stages.get(&name).cloned().ok_or_else(|| missing(Child::Stage, &name))?;
        if stage.auto_deploy {
            return Err(AwsError::bad_request(format!(
                "Stage {name} has AutoDeploy enabled: it is deployed on every change; turn AutoDeploy off to deploy it by hand."
            )));
        }
        stage.deployment_id = Some(deployment.deployment_id.clone());
        stage.last_updated_date = now();
        changes.push(Change::Put(Record::Stage(stage)));
    }
    let doc = deployment_doc(&deployment);
    changes.push(Change::Put(Record::Deployment(deployment)));
    c.commit(changes).await?;
    Ok(json_response(StatusCode::CREATED, &doc))
}

/// GetAuthorizer's document: the members that are set.
fn authorizer_doc(a: &Authorizer) -> Value {
    let mut d = json!({
        "authorizerId": a.authorizer_id,
        "authorizerType": a.authorizer_type,
        "identitySource": a.identity_source,
        "name": a.name,
    });
    if let Some(j) = &a.jwt_configuration {
        let mut jwt = json!({ "audience": j.audience });
        if let Some(i) = &j.issuer {
            jwt["issuer"] = json!(i);
        }
        d["jwtConfiguration"] = jwt;
    }
    for (k, v) in [
        ("authorizerUri", &a.authorizer_uri),
        ("authorizerPayloadFormatVersion", &a.authorizer_payload_format_version),
        ("authorizerCredentialsArn", &a.authorizer_credentials_arn),
        ("identityValidationExpression", &a.identity_validation_expression),
    ] {
        if let Some(v) = v {
            d[k] = json!(v);
        }
    }
    if let Some(t) = a.authorizer_result_ttl_in_seconds {
        d["authorizerResultTtlInSeconds"] = json!(t);
    }
    if let Some(e) = a.enable_simple_responses {
        d["enableSimpleResponses"] = json!(e);
    }
    d
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JwtConfigurationIn {
    audience: Option<Vec<String>>,
    issuer: Option<String>,
}

/// The members of CreateAuthorizer and UpdateAuthorizer.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizerIn {
    name: Option<String>,
    authorizer_type: Option<String>,
    identity_source: Option<Vec<String>>,
    jwt_configuration: Option<JwtConfigurationIn>,
    authorizer_uri: Option<String>,
    authorizer_payload_format_version: Option<String>,
    authorizer_result_ttl_in_seconds: Option<i64>,
    enable_simple_responses: Option<bool>,
    authorizer_credentials_arn: Option<String>,
    identity_validation_expression: Option<String>,
}

impl AuthorizerIn {
    /// `current` with these members applied, checked as a whole.
    fn apply(self, mut a: Authorizer) -> Result<Authorizer> {
        if let Some(n) = self.name {
            a.name = n;
        }
        if let Some(t) = self.authorizer_type {
            a.authorizer_type = t;
        }
        if let Some(s) = self.identity_source {
            a.identity_source = s;
        }
        if let Some(j) = self.jwt_configuration {
            let mut config = a.jwt_configuration.take().unwrap_or_default();
            if let Some(aud) = j.audience {
                config.audience = aud;
            }
            if let Some(iss) = j.issuer {
                config.issuer = Some(iss);
            }
            a.jwt_configuration = Some(config);
        }
        if let Some(u) = self.authorizer_uri {
            a.authorizer_uri = Some(u);
        }
        if let Some(v) = self.authorizer_payload_format_version {
            a.authorizer_payload_format_version = Some(v);
        }
        if let Some(t) = self.authorizer_result_ttl_in_seconds {
            let ttl = u32::try_from(t).ok().filter(|t| *t <= 3600).ok_or_else(|| {
                AwsError::bad_request("AuthorizerResultTtlInSeconds must be between 0 and 3600 seconds.")
            })?;
            a.authorizer_result_ttl_in_seconds = Some(ttl);
        }
        if let Some(e) = self.enable_simple_responses {
            a.enable_simple_responses = Some(e);
        }
        if let Some(c) = self.authorizer_credentials_arn {
            a.authorizer_credentials_arn = Some(c);
        }
        if let Some(v) = self.identity_validation_expression {
            a.identity_validation_expression = Some(v);
        }
        check_authorizer(&a)?;
        Ok(a)
    }
}

/// Checks an authorizer as API Gateway does for HTTP APIs.
fn check_authorizer(a: &Authorizer) -> Result<()> {
    if a.name.is_empty() || a.name.chars().count() > 128 {
        return Err(AwsError::bad_request("Authorizer name must be between 1 and 128 characters in length."));
    }
    for s in &a.identity_source {
        if IdentitySource::parse(s).is_none() {
            return Err(AwsError::bad_request(format!(
                "Invalid identity source {s}: use $request.header.<name>, $request.querystring.<name>, $context.<name> or $stageVariables.<name>."
            )));
        }
    }
    match a.authorizer_type.as_str() {
        "JWT" => {
            let issuer = a.jwt_configuration.as_ref().and_then(|j| j.issuer.as_deref());
            let Some(issuer) = issuer.filter(|i| !i.is_empty()) else {
                return Err(AwsError::bad_request("JwtConfiguration with an Issuer is required for JWT authorizers."));
            };
            if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
                return Err(AwsError::bad_request(format!("Invalid issuer {issuer}: it must be an http(s) URL.")));
            }
            if a.jwt_configuration.as_ref().is_some_and(|j| j.audience.len() > 50) {
                return Err(AwsError::bad_request("A JWT authorizer can have at most 50 audiences."));
            }
            let one_header_or_query = matches!(
                a.identity_source.as_slice(),
                [s] if matches!(IdentitySource::parse(s), Some(IdentitySource::Header(_) | IdentitySource::QueryString(_)))
            );
            if !one_header_or_query {
                return Err(AwsError::bad_request(
                    "A JWT authorizer needs exactly one identity source, $request.header.<name> or $request.querystring.<name>.",
                ));
            }
            if a.authorizer_uri.is_some() {
                return Err(AwsError::bad_request("AuthorizerUri is supported only for REQUEST authorizers."));
            }
        }
        "REQUEST" => {
            let uri = a
                .authorizer_uri
                .as_deref()
                .ok_or_else(|| AwsError::bad_request("AuthorizerUri is required for REQUEST authorizers."))?;
            if FunctionArn::from_integration_uri(uri).is_none() {
                return Err(AwsError::bad_request(format!(
                    "Invalid authorizer URI {uri}: it must be a Lambda function ARN or arn:aws:apigateway:{{region}}:lambda:path/2015-03-31/functions/{{arn}}/invocations."
                )));
            }
            match a.authorizer_payload_format_version.as_deref() {
                Some("1.0" | "2.0") => {}
                Some(other) => {
                    return Err(AwsError::bad_request(format!(
                        "Invalid authorizer payload format version {other}: must be 1.0 or 2.0."
                    )))
                }
                None => {
                    return Err(AwsError::bad_request(
                        "AuthorizerPayloadFormatVersion is required for REQUEST authorizers of HTTP APIs.",
                    ))
                }
            }
            if a.enable_simple_responses == Some(true) && a.authorizer_payload_format_version.as_deref() != Some("2.0")
            {
                return Err(AwsError::bad_request(
                    "EnableSimpleResponses is supported only with payload format version 2.0.",
                ));
            }
            if a.authorizer_result_ttl_in_seconds.unwrap_or(0) > 0 && a.identity_source.is_empty() {
                return Err(AwsError::bad_request(
                    "Identity sources are required when AuthorizerResultTtlInSeconds is greater than 0 (caching is keyed by them).",
                ));
            }
            if a.jwt_configuration.is_some() {
                return Err(AwsError::bad_request("JwtConfiguration is supported only for JWT authorizers."));
            }
        }
        other => {
            return Err(AwsError::bad_request(format!("Invalid authorizer type {other}: must be JWT or REQUEST.")))
        }
    }
    Ok(())
}

/// CreateAuthorizer.
async fn create_authorizer(c: &Control, call: &Call, id: &str) -> Result<Resp> {
    let mut input: AuthorizerIn = json::parse(Service::ApiGateway, &call.body)?;
    let _w = c.write.lock().await;
    let b = bundle(c, call, id)?;
    if b.authorizers.len() >= 10 {
        return Err(AwsError::bad_request("An API can have at most 10 authorizers."));
    }
    match input.authorizer_type.as_deref() {
        None => return Err(AwsError::bad_request("AuthorizerType is required.")),
        // What the console fills in.
        Some("JWT") if input.identity_source.as_ref().is_none_or(Vec::is_empty) => {
            input.identity_source = Some(vec!["$request.header.Authorization".into()]);
        }
        Some(_) => {}
    }
    let blank = Authorizer {
        api_id: id.to_string(),
        authorizer_id: portico_model::ids::sub_resource_id(),
        name: String::new(),
        authorizer_type: String::new(),
        identity_source: Vec::new(),
        jwt_configuration: None,
        authorizer_uri: None,
        authorizer_payload_format_version: None,
        authorizer_result_ttl_in_seconds: None,
        enable_simple_responses: None,
        authorizer_credentials_arn: None,
        identity_validation_expression: None,
    };
    let mut a = input.apply(blank)?;
    if a.authorizer_type == "REQUEST" {
        a.authorizer_result_ttl_in_seconds.get_or_insert(0);
        a.enable_simple_responses.get_or_insert(false);
    }
    commit_api(c, id, vec![Change::Put(Record::Authorizer(a.clone()))]).await?;
    Ok(json_response(StatusCode::CREATED, &authorizer_doc(&a)))
}
