//! Lambda's REST-JSON API (`/2015-03-31/functions...`): one route table, one file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use portico_model::function::{
    self as fmodel, limits, Architecture, CodeRef, Function, FunctionState, LastUpdateStatus, PolicyStatement, Runtime,
};
use portico_model::{Change, FunctionArn, Qualifier, Record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{auth, versions};
use crate::{empty_response, json, json_response, typed_json_response, AwsError, Call, Control, Result, Service};

pub(crate) type Resp = Response<Full<Bytes>>;

/// The Lambda operations Portico serves, parsed from `(method, path)`.
#[derive(Debug)]
enum Action<'a> {
    /// `POST /functions`.
    CreateFunction,
    /// `GET /functions/`.
    ListFunctions,
    /// `GET /functions/{name}`.
    GetFunction(&'a str),
    /// `DELETE /functions/{name}`.
    DeleteFunction(&'a str),
    /// `GET /functions/{name}/configuration`.
    GetFunctionConfiguration(&'a str),
    /// `PUT /functions/{name}/configuration`.
    UpdateFunctionConfiguration(&'a str),
    /// `PUT /functions/{name}/code`.
    UpdateFunctionCode(&'a str),
    /// `GET /functions/{name}/code`: the package itself (the `Code.Location` of GetFunction).
    DownloadCode(&'a str),
    /// `POST /functions/{name}/invocations`.
    Invoke(&'a str),
    /// `POST /functions/{name}/policy`.
    AddPermission(&'a str),
    /// `GET /functions/{name}/policy`.
    GetPolicy(&'a str),
    /// `DELETE /functions/{name}/policy/{sid}`.
    RemovePermission(&'a str, &'a str),
    /// `PUT /functions/{name}/concurrency` (API version 2017-10-31).
    PutFunctionConcurrency(&'a str),
    /// `GET /functions/{name}/concurrency` (API version 2019-09-30).
    GetFunctionConcurrency(&'a str),
    /// `DELETE /functions/{name}/concurrency` (API version 2017-10-31).
    DeleteFunctionConcurrency(&'a str),
    /// `GET /account-settings` (API version 2016-08-19).
    GetAccountSettings,
    /// `POST /functions/{name}/versions`.
    PublishVersion(&'a str),
    /// `GET /functions/{name}/versions`.
    ListVersionsByFunction(&'a str),
    /// `POST /functions/{name}/aliases`.
    CreateAlias(&'a str),
    /// `GET /functions/{name}/aliases`.
    ListAliases(&'a str),
    /// `GET /functions/{name}/aliases/{alias}`.
    GetAlias(&'a str, &'a str),
    /// `PUT /functions/{name}/aliases/{alias}`.
    UpdateAlias(&'a str, &'a str),
    /// `DELETE /functions/{name}/aliases/{alias}`.
    DeleteAlias(&'a str, &'a str),
}

fn route<'a>(method: &Method, segments: &'a [String]) -> Option<Action<'a>> {
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    Some(match (method, segs.as_slice()) {
        (&Method::POST, ["functions"]) | (&Method::POST, ["functions", ""]) => Action::CreateFunction,
        (&Method::GET, ["functions"]) | (&Method::GET, ["functions", ""]) => Action::ListFunctions,
        (&Method::GET, ["functions", name]) => Action::GetFunction(name),
        (&Method::DELETE, ["functions", name]) => Action::DeleteFunction(name),
        (&Method::GET, ["functions", name, "configuration"]) => Action::GetFunctionConfiguration(name),
        (&Method::PUT, ["functions", name, "configuration"]) => Action::UpdateFunctionConfiguration(name),
        (&Method::PUT, ["functions", name, "code"]) => Action::UpdateFunctionCode(name),
        (&Method::GET, ["functions", name, "code"]) => Action::DownloadCode(name),
        (&Method::POST, ["functions", name, "invocations"]) => Action::Invoke(name),
        (&Method::POST, ["functions", name, "policy"]) => Action::AddPermission(name),
        (&Method::GET, ["functions", name, "policy"]) => Action::GetPolicy(name),
        (&Method::DELETE, ["functions", name, "policy", sid]) => Action::RemovePermission(name, sid),
        (&Method::PUT, ["functions", name, "concurrency"]) => Action::PutFunctionConcurrency(name),
        (&Method::GET, ["functions", name, "concurrency"]) => Action::GetFunctionConcurrency(name),
        (&Method::DELETE, ["functions", name, "concurrency"]) => Action::DeleteFunctionConcurrency(name),
        (&Method::GET, ["account-settings"]) | (&Method::GET, ["account-settings", ""]) => Action::GetAccountSettings,
        (&Method::POST, ["functions", name, "versions"]) => Action::PublishVersion(name),
        (&Method::GET, ["functions", name, "versions"]) => Action::ListVersionsByFunction(name),
        (&Method::POST, ["functions", name, "aliases"]) => Action::CreateAlias(name),
        (&Method::GET, ["functions", name, "aliases"]) => Action::ListAliases(name),
        (&Method::GET, ["functions", name, "aliases", alias]) => Action::GetAlias(name, alias),
        (&Method::PUT, ["functions", name, "aliases", alias]) => Action::UpdateAlias(name, alias),
        (&Method::DELETE, ["functions", name, "aliases", alias]) => Action::DeleteAlias(name, alias),
        _ => return None,
    })
}

pub(crate) async fn handle(c: &Arc<Control>, call: &Call) -> Result<Resp> {
    let Some(action) = route(&call.method, &call.segments) else {
        return Err(AwsError::unknown_operation(Service::Lambda, &call.method, &call.segments.join("/")));
    };
    match action {
        Action::CreateFunction => create_function(c, call).await,
        Action::ListFunctions => list_functions(c, call),
        Action::GetFunction(name) => {
            let f = find(c, call, name)?;
            typed_json_response(StatusCode::OK, &get_function(&f, code_location(c, call, &f)))
        }
        Action::GetFunctionConfiguration(name) => {
            let f = find(c, call, name)?;
            typed_json_response(StatusCode::OK, &Configuration::of(&f))
        }
        Action::DeleteFunction(name) => {
            if let Some(q) = call.query("Qualifier") {
                return versions::delete_version(c, call, name, q).await;
            }
            let _w = c.write.lock().await;
            let f = find_latest(c, call, name)?;
            c.commit(versions::all_records(c, &f)).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        Action::UpdateFunctionConfiguration(name) => update_configuration(c, call, name).await,
        Action::UpdateFunctionCode(name) => update_code(c, call, name).await,
        Action::DownloadCode(name) => {
            let f = find(c, call, name)?;
            let zip = c
                .store
                .get_blob(&f.code.sha256_hex)
                .map_err(|e| AwsError::service(e.to_string()))?
                .ok_or_else(|| AwsError::service("the function's package is missing from the data dir"))?;
            let mut r = Response::new(Full::new(Bytes::from(zip)));
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
            Ok(r)
        }
        Action::Invoke(name) => invoke(c, call, name).await,
        Action::PutFunctionConcurrency(name) => put_concurrency(c, call, name).await,
        Action::GetFunctionConcurrency(name) => {
            let f = find_latest(c, call, name)?;
            let doc = match f.reserved_concurrency {
                Some(n) => json!({ "ReservedConcurrentExecutions": n }),
                None => json!({}),
            };
            Ok(json_response(StatusCode::OK, &doc))
        }
        Action::DeleteFunctionConcurrency(name) => {
            let _w = c.write.lock().await;
            let f = find_latest(c, call, name)?;
            let mut next = (*f).clone();
            next.reserved_concurrency = None;
            c.commit(vec![Change::Put(Record::Function(next))]).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        Action::GetAccountSettings => account_settings(c, call),
        Action::PublishVersion(name) => versions::publish(c, call, name).await,
        Action::ListVersionsByFunction(name) => versions::list_versions(c, call, name),
        Action::CreateAlias(name) => versions::create_alias(c, call, name).await,
        Action::ListAliases(name) => versions::list_aliases(c, call, name),
        Action::GetAlias(name, alias) => versions::get_alias(c, call, name, alias),
        Action::UpdateAlias(name, alias) => versions::update_alias(c, call, name, alias).await,
        Action::DeleteAlias(name, alias) => versions::delete_alias(c, call, name, alias).await,
        Action::AddPermission(name) => add_permission(c, call, name).await,
        Action::GetPolicy(name) => {
            let holder = PolicyHolder::find(c, call, name)?;
            if holder.policy().is_empty() {
                return Err(AwsError::resource_not_found("The resource you requested does not exist."));
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({ "Policy": policy_document(holder.policy()).to_string(), "RevisionId": holder.revision_id() }),
            ))
        }
        Action::RemovePermission(name, sid) => {
            let _w = c.write.lock().await;
            let holder = PolicyHolder::find(c, call, name)?;
            holder.check_revision(call.query("RevisionId"))?;
            if !holder.policy().iter().any(|s| s.sid == sid) {
                return Err(AwsError::resource_not_found(format!("Statement {sid} is not found in resource policy.")));
            }
            let policy = holder.policy().iter().filter(|s| s.sid != sid).cloned().collect();
            c.commit(vec![Change::Put(holder.with_policy(policy))]).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
    }
}

/// The function reference of a call: its `FunctionName` path parameter, qualified by
/// the name itself or by the `Qualifier` query parameter.
fn reference(call: &Call, name: &str) -> Result<FunctionArn> {
    let mut arn = FunctionArn::resolve(name, &call.scope).map_err(|e| AwsError::validation(e.0))?;
    if arn.qualifier.is_none() {
        arn.qualifier = call.query("Qualifier").map(Qualifier::parse);
    }
    // Another account's functions are invisible, as on AWS without a policy.
    if arn.scope.account_id != call.scope.account_id {
        return Err(AwsError::resource_not_found(format!("Function not found: {}", arn.unqualified())));
    }
    Ok(arn)
}

/// Resolves a reference for reading: `$LATEST`, a published version, or the version an
/// alias points at.
fn find(c: &Control, call: &Call, name: &str) -> Result<Arc<Function>> {
    let arn = reference(call, name)?;
    let unqualified = arn.unqualified();
    let catalog = c.catalog();
    let version = match &arn.qualifier {
        None | Some(Qualifier::Latest) => portico_model::function::LATEST.to_string(),
        Some(Qualifier::Named(q)) if q.bytes().all(|b| b.is_ascii_digit()) => q.clone(),
        Some(Qualifier::Named(q)) => match catalog.aliases.get(&format!("{unqualified}:{q}")) {
            Some(a) => a.function_version.clone(),
            None => return Err(AwsError::resource_not_found(format!("Function not found: {unqualified}:{q}"))),
        },
    };
    let suffix = if arn.qualifier.is_some() { format!(":{version}") } else { String::new() };
    catalog
        .version(&unqualified, &version)
        .cloned()
        .ok_or_else(|| AwsError::resource_not_found(format!("Function not found: {unqualified}{suffix}")))
}

/// Resolves a reference for changing the function itself, which only `$LATEST` allows.
pub(crate) fn find_latest(c: &Control, call: &Call, name: &str) -> Result<Arc<Function>> {
    let arn = reference(call, name)?;
    if let Some(Qualifier::Named(q)) = &arn.qualifier {
        return Err(AwsError::invalid_parameter(format!(
            "Unsupported qualifier {q}: this operation applies to the function's $LATEST only"
        )));
    }
    let unqualified = arn.unqualified();
    c.catalog()
        .function(&unqualified)
        .cloned()
        .ok_or_else(|| AwsError::resource_not_found(format!("Function not found: {unqualified}")))
}

/// Where a resource policy lives: `$LATEST`, a published version, or an alias.
#[derive(Debug)]
enum PolicyHolder {
    Version(Arc<Function>),
    Alias(Arc<portico_model::Alias>),
}

impl PolicyHolder {
    fn find(c: &Control, call: &Call, name: &str) -> Result<PolicyHolder> {
        let arn = reference(call, name)?;
        let unqualified = arn.unqualified();
        let catalog = c.catalog();
        let holder = match &arn.qualifier {
            None | Some(Qualifier::Latest) => catalog.function(&unqualified).cloned().map(PolicyHolder::Version),
            Some(Qualifier::Named(q)) if q.bytes().all(|b| b.is_ascii_digit()) => {
                catalog.version(&unqualified, q).cloned().map(PolicyHolder::Version)
            }
            Some(Qualifier::Named(q)) => {
                catalog.aliases.get(&format!("{unqualified}:{q}")).cloned().map(PolicyHolder::Alias)
            }
        };
        holder.ok_or_else(|| {
            AwsError::resource_not_found(format!("Function not found: {}", versions::reference_arn(&arn)))
        })
    }

    fn policy(&self) -> &[PolicyStatement] {
        match self {
            PolicyHolder::Version(f) => &f.policy,
            PolicyHolder::Alias(a) => &a.policy,
        }
    }

    fn revision_id(&self) -> &str {
        match self {
            PolicyHolder::Version(f) => &f.revision_id,
            PolicyHolder::Alias(a) => &a.revision_id,
        }
    }

    /// The `Resource` of its statements.
    fn arn(&self) -> String {
        match self {
            PolicyHolder::Version(f) => f.version_arn(),
            PolicyHolder::Alias(a) => a.arn(),
        }
    }

    /// The record with `policy` in place of the current one, and a new revision.
    fn with_policy(&self, policy: Vec<PolicyStatement>) -> Record {
        match self {
            PolicyHolder::Version(f) => {
                let mut next = (**f).clone();
                next.policy = policy;
                next.revision_id = portico_model::ids::uuid();
                if next.is_latest() {
                    Record::Function(next)
                } else {
                    Record::Version(next)
                }
            }
            PolicyHolder::Alias(a) => {
                let mut next = (**a).clone();
                next.policy = policy;
                next.revision_id = portico_model::ids::uuid();
                Record::Alias(next)
            }
        }
    }

    fn check_revision(&self, expected: Option<&str>) -> Result<()> {
        check_revision(expected, self.revision_id())
    }
}

/// A `RevisionId` the caller expects must be the current one.
pub(crate) fn check_revision(expected: Option<&str>, current: &str) -> Result<()> {
    match expected {
        Some(r) if r != current => Err(AwsError::precondition_failed(
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        )),
        _ => Ok(()),
    }
}

/// GetFunction's `Code.Location`: a link that downloads the package with no further
/// signing, as AWS's presigned S3 URL does, on the host the caller reached Portico by.
fn code_location(c: &Control, call: &Call, f: &Function) -> String {
    let fallback = format!("127.0.0.1:{}", c.cfg.public_port);
    let host = call
        .header("host")
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .unwrap_or(&fallback);
    let path = format!("/2015-03-31/functions/{}/code", f.arn().replace(':', "%3A"));
    auth::presigned_get(&c.cfg, &call.caller, Service::Lambda, host, &path)
}

/// The `GetFunction` document. Members are declared in the byte order of their names,
/// so the bytes are those of the same document built as a `serde_json::Value` (whose
/// maps are sorted): a test holds the two equal.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetFunctionOut<'a> {
    code: CodeOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<ConcurrencyOut>,
    configuration: Configuration<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: &'a BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CodeOut {
    location: String,
    repository_type: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ConcurrencyOut {
    reserved_concurrent_executions: u32,
}

fn get_function(f: &Function, location: String) -> GetFunctionOut<'_> {
    GetFunctionOut {
        code: CodeOut { location, repository_type: "S3" },
        concurrency: f.reserved_concurrency.map(|n| ConcurrencyOut { reserved_concurrent_executions: n }),
        configuration: Configuration::of(f),
        tags: &f.tags,
    }
}

/// The `FunctionConfiguration` document, borrowed from the function. Members are
/// declared in the byte order of their names (see [`GetFunctionOut`]).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Configuration<'a> {
    architectures: Vec<&'static str>,
    code_sha256: &'a str,
    code_size: u64,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<EnvironmentOut<'a>>,
    ephemeral_storage: SizeOut,
    function_arn: String,
    function_name: &'a str,
    handler: &'a str,
    last_modified: &'a str,
    last_update_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update_status_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update_status_reason_code: Option<&'static str>,
    logging_config: LoggingConfigOut,
    memory_size: u32,
    package_type: &'static str,
    revision_id: &'a str,
    role: &'a str,
    runtime: &'static str,
    runtime_version_config: RuntimeVersionConfigOut,
    snap_start: SnapStartOut,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason_code: Option<&'static str>,
    timeout: u32,
    tracing_config: TracingConfigOut,
    version: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EnvironmentOut<'a> {
    variables: &'a BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SizeOut {
    size: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LoggingConfigOut {
    log_format: &'static str,
    log_group: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RuntimeVersionConfigOut {
    runtime_version_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SnapStartOut {
    apply_on: &'static str,
    optimization_status: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TracingConfigOut {
    mode: &'static str,
}

impl<'a> Configuration<'a> {
    pub(crate) fn of(f: &'a Function) -> Configuration<'a> {
        let (state_reason, state_reason_code) = match f.state {
            FunctionState::Pending => (Some("The function is being created."), Some("Creating")),
            FunctionState::Failed => (
                Some(f.state_reason.as_deref().unwrap_or("The function could not be prepared.")),
                Some("InternalError"),
            ),
            FunctionState::Active => (None, None),
        };
        let in_progress = f.last_update_status == LastUpdateStatus::InProgress;
        Configuration {
            architectures: f.architectures.iter().map(|a| a.as_str()).collect(),
            code_sha256: &f.code.sha256_b64,
            code_size: f.code.size,
            description: &f.description,
            environment: (!f.environment.is_empty()).then_some(EnvironmentOut { variables: &f.environment }),
            ephemeral_storage: SizeOut { size: f.ephemeral_storage },
            function_arn: f.version_arn(),
            function_name: &f.name,
            handler: &f.handler,
            last_modified: &f.last_modified,
            last_update_status: f.last_update_status.as_str(),
            last_update_status_reason: in_progress.then_some("The function is being created."),
            last_update_status_reason_code: in_progress.then_some("Creating"),
            logging_config: LoggingConfigOut { log_format: "Text", log_group: f.log_group() },
            memory_size: f.memory_size,
            package_type: "Zip",
            revision_id: &f.revision_id,
            role: &f.role,
            runtime: f.runtime.as_str(),
            runtime_version_config: RuntimeVersionConfigOut {
                // The ARN the environment's INIT_START line names.
                runtime_version_arn: portico_runtime::environment::runtime_version_arn(f.runtime, &f.scope.region),
            },
            snap_start: SnapStartOut { apply_on: "None", optimization_status: "Off" },
            state: f.state.as_str(),
            state_reason,
            state_reason_code,
            timeout: f.timeout,
            tracing_config: TracingConfigOut { mode: "PassThrough" },
            version: &f.version,
        }
    }
}

/// The `FunctionConfiguration` document, as a value (for lists and other documents).
pub(crate) fn configuration(f: &Function) -> Value {
    // A struct of strings, numbers and string maps always converts.
    serde_json::to_value(Configuration::of(f)).unwrap_or(Value::Null)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnvironmentIn {
    variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CodeIn<'a> {
    /// Borrowed from the body: a package is the bulk of it (base64 has no escapes).
    #[serde(borrow)]
    zip_file: Option<Cow<'a, str>>,
    s3_bucket: Option<String>,
    image_uri: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StorageIn {
    size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateFunctionIn<'a> {
    function_name: Option<String>,
    runtime: Option<String>,
    role: Option<String>,
    handler: Option<String>,
    #[serde(borrow)]
    code: Option<CodeIn<'a>>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    environment: Option<EnvironmentIn>,
    architectures: Option<Vec<String>>,
    ephemeral_storage: Option<StorageIn>,
    tags: Option<BTreeMap<String, String>>,
    package_type: Option<String>,
}

fn validate_role(role: &str) -> Result<()> {
    let ok = role
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.split_once(":role/"))
        .is_some_and(|(acct, name)| acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty());
    if ok {
        Ok(())
    } else {
        Err(AwsError::validation(format!(
            "1 validation error detected: Value '{role}' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{{12}}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
        )))
    }
}

fn architectures(v: Option<Vec<String>>) -> Result<Vec<Architecture>> {
    match v {
        None => Ok(vec![Architecture::X86_64]),
        Some(list) if list.len() == 1 => Ok(vec![Architecture::parse(&list[0])?]),
        Some(_) => Err(AwsError::validation(
            "1 validation error detected: Value at 'architectures' failed to satisfy constraint: Member must have length less than or equal to 1",
        )),
    }
}

fn ephemeral(s: Option<StorageIn>) -> Result<u32> {
    match s.and_then(|s| s.size) {
        None => Ok(limits::DEFAULT_EPHEMERAL_STORAGE),
        Some(n) if (512..=10240).contains(&n) => Ok(u32::try_from(n).unwrap_or(limits::DEFAULT_EPHEMERAL_STORAGE)),
        Some(n) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value between 512 and 10240"
        ))),
    }
}

/// Decodes, validates and stores a `ZipFile`; returns its reference.
async fn accept_zip(c: &Control, code: Option<CodeIn<'_>>) -> Result<CodeRef> {
    let code = code.ok_or_else(|| AwsError::invalid_parameter("Code is required: provide Code.ZipFile."))?;
    let Some(b64) = code.zip_file else {
        let what = if code.s3_bucket.is_some() {
            "S3 code locations"
        } else if code.image_uri.is_some() {
            "container images"
        } else {
            "an empty Code"
        };
        return Err(AwsError::invalid_parameter(format!(
            "Portico does not support {what}: upload the deployment package as Code.ZipFile."
        )));
    };
    let zip = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| AwsError::invalid_parameter(format!("Code.ZipFile is not valid base64: {e}")))?;
    if zip.len() as u64 > limits::MAX_ZIP_BYTES {
        return Err(AwsError::too_large(format!(
            "Request must be smaller than {} bytes for the CreateFunction operation",
            limits::MAX_ZIP_BYTES
        )));
    }
    let digest = Sha256::digest(&zip);
    let code_ref = CodeRef {
        sha256_hex: digest.iter().map(|b| format!("{b:02x}")).collect(),
        sha256_b64: base64::engine::general_purpose::STANDARD.encode(digest),
        size: zip.len() as u64,
    };
    let invoker = c.invoker.clone();
    let store = c.store.clone();
    let sha = code_ref.sha256_hex.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        invoker.code().install(&sha, &zip).map_err(|e| match e {
            portico_runtime::code::CodeError::Io { .. } => AwsError::service(e.to_string()),
            other => AwsError::invalid_parameter(other.to_string()),
        })?;
        store.put_blob(&sha, &zip).map_err(|e| AwsError::service(e.to_string()))
    })
    .await
    .map_err(|e| AwsError::service(format!("unpack task failed: {e}")))??;
    Ok(code_ref)
}

pub(crate) fn now() -> String {
    portico_model::time::lambda_timestamp(chrono::Utc::now())
}

async fn create_function(c: &Arc<Control>, call: &Call) -> Result<Resp> {
    let input: CreateFunctionIn = json::parse(Service::Lambda, &call.body)?;
    let name = input
        .function_name
        .ok_or_else(|| AwsError::validation("1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null"))?;
    let arn = FunctionArn::resolve(&name, &call.scope).map_err(|e| AwsError::validation(e.0))?;
    if arn.qualifier.is_some() || arn.scope != call.scope {
        return Err(AwsError::invalid_parameter(format!(
            "Function name {name} must be a name, or an ARN of this account and region without a qualifier."
        )));
    }
    if input.package_type.as_deref().is_some_and(|p| p != "Zip") {
        return Err(AwsError::invalid_parameter("Portico supports PackageType Zip only."));
    }
    let runtime = Runtime::parse(input.runtime.as_deref().unwrap_or_default())?;
    let role = input.role.unwrap_or_default();
    validate_role(&role)?;
    let handler = input.handler.ok_or_else(|| AwsError::invalid_parameter("Handler is required for a Zip package."))?;
    fmodel::validate_handler(&handler).map_err(|e| AwsError::validation(e.0))?;
    let timeout = fmodel::validate_timeout(input.timeout.unwrap_or(i64::from(limits::DEFAULT_TIMEOUT)))
        .map_err(|e| AwsError::validation(e.0))?;
    let memory_size = fmodel::validate_memory(input.memory_size.unwrap_or(i64::from(limits::DEFAULT_MEMORY)))
        .map_err(|e| AwsError::validation(e.0))?;
    let environment = input.environment.and_then(|e| e.variables).unwrap_or_default();
    fmodel::validate_environment(&environment)?;
    let architectures = architectures(input.architectures)?;
    let ephemeral_storage = ephemeral(input.ephemeral_storage)?;
    if c.catalog().function(&arn.unqualified()).is_some() {
        return Err(AwsError::resource_conflict(format!("Function already exist: {}", arn.name)));
    }
    let code = accept_zip(c, input.code).await?;
    let function = Function {
        scope: call.scope.clone(),
        name: arn.name,
        runtime,
        role,
        handler,
        description: input.description.unwrap_or_default(),
        timeout,
        memory_size,
        environment,
        architectures,
        ephemeral_storage,
        code,
        last_modified: now(),
        revision_id: portico_model::ids::uuid(),
        state: FunctionState::Pending,
        last_update_status: LastUpdateStatus::InProgress,
        policy: Vec::new(),
        tags: input.tags.unwrap_or_default(),
        reserved_concurrency: None,
        version: portico_model::function::LATEST.to_string(),
        last_version: 0,
        state_reason: None,
    };
    {
        let _w = c.write.lock().await;
        if c.catalog().function(&function.arn()).is_some() {
            return Err(AwsError::resource_conflict(format!("Function already exist: {}", function.name)));
        }
        c.commit(vec![Change::Put(Record::Function(function.clone()))]).await?;
    }
    // The package is unpacked and the runtime resolved already: the function becomes
    // Active as soon as the Pending state is durable, as AWS's does moments later.
    let control = c.clone();
    let arn = function.arn();
    tokio::spawn(async move { activate(&control, &arn).await });
    Ok(json_response(StatusCode::CREATED, &configuration(&function)))
}

/// Moves a function from Pending (or an update from InProgress) to Active/Successful.
async fn activate(c: &Control, arn: &str) {
    let _w = c.write.lock().await;
    let Some(f) = c.catalog().function(arn).cloned() else { return };
    if f.state == FunctionState::Active && f.last_update_status == LastUpdateStatus::Successful {
        return;
    }
    let mut next = (*f).clone();
    let problem = match c.invoker.launchers().get(f.runtime) {
        Err(e) => Some(e.0.clone()),
        Ok(_) if !c.invoker.code().contains(&f.code.sha256_hex) => {
            Some("The function's deployment package is missing from the data dir.".to_string())
        }
        Ok(_) => None,
    };
    next.state_reason = problem.clone();
    if problem.is_none() {
        next.state = FunctionState::Active;
        next.last_update_status = LastUpdateStatus::Successful;
    } else {
        next.state = FunctionState::Failed;
        next.last_update_status = LastUpdateStatus::Failed;
    }
    next.revision_id = portico_model::ids::uuid();
    if let Err(e) = c.commit(vec![Change::Put(Record::Function(next))]).await {
        tracing::error!(function = arn, "activating: {}", e.message);
    }
}

/// `MaxItems` of a Lambda list operation: 1-10000, default 50.
pub(crate) fn max_items(call: &Call) -> Result<usize> {
    match call.query("MaxItems") {
        Some(m) => m.parse::<usize>().ok().filter(|m| (1..=10_000).contains(m)).ok_or_else(|| {
            AwsError::invalid_parameter(format!(
                "1 validation error detected: Value '{m}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000"
            ))
        }),
        None => Ok(50),
    }
}

fn list_functions(c: &Control, call: &Call) -> Result<Resp> {
    let max = max_items(call)?;
    let marker = call.query("Marker").unwrap_or("");
    let catalog = c.catalog();
    let mut page: Vec<Value> = Vec::new();
    let mut next = None;
    for f in catalog.functions_in(&call.scope).filter(|f| f.name.as_str() > marker) {
        if page.len() == max {
            next = page.last().and_then(|v| v["FunctionName"].as_str()).map(str::to_string);
            break;
        }
        page.push(configuration(f));
    }
    let mut doc = json!({ "Functions": page });
    if let Some(m) = next {
        doc["NextMarker"] = json!(m);
    }
    Ok(json_response(StatusCode::OK, &doc))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateConfigurationIn {
    role: Option<String>,
    handler: Option<String>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    environment: Option<EnvironmentIn>,
    runtime: Option<String>,
    ephemeral_storage: Option<StorageIn>,
    revision_id: Option<String>,
}

/// The error a caller of Invoke gets when the invocation could not run.
fn invoke_failed(e: portico_runtime::InvokeError) -> AwsError {
    match e {
        portico_runtime::InvokeError::Throttled(t) => AwsError::too_many_requests("Rate Exceeded.", t.reason()),
        other => AwsError::service(other.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutConcurrencyIn {
    reserved_concurrent_executions: Option<i64>,
}

/// The unreserved concurrency an account must keep: AWS's 100 at its default limit of
/// 1000, scaled down with a smaller configured limit so reservations stay possible.
fn minimum_unreserved(account_limit: u32) -> u32 {
    (account_limit / 10).min(100)
}

async fn put_concurrency(c: &Control, call: &Call, name: &str) -> Result<Resp> {
    let input: PutConcurrencyIn = json::parse(Service::Lambda, &call.body)?;
    let Some(wanted) = input.reserved_concurrent_executions else {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null",
        ));
    };
    let wanted = u32::try_from(wanted).map_err(|_| {
        AwsError::validation(format!(
            "1 validation error detected: Value '{wanted}' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0"
        ))
    })?;
    let _w = c.write.lock().await;
    let f = find_latest(c, call, name)?;
    let catalog = c.catalog();
    let reserved_elsewhere: u64 = catalog
        .functions_in(&f.scope)
        .filter(|g| g.name != f.name)
        .filter_map(|g| g.reserved_concurrency)
        .map(u64::from)
        .sum();
    let limit = c.invoker.limits().account_limit();
    let minimum = minimum_unreserved(limit);
    if u64::from(limit) < reserved_elsewhere + u64::from(wanted) + u64::from(minimum) {
        return Err(AwsError::invalid_parameter(format!(
            "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{minimum}]."
        )));
    }
    let mut next = (*f).clone();
    next.reserved_concurrency = Some(wanted);
    c.commit(vec![Change::Put(Record::Function(next))]).await?;
    Ok(json_response(StatusCode::OK, &json!({ "ReservedConcurrentExecutions": wanted })))
}

fn account_settings(c: &Control, call: &Call) -> Result<Resp> {
    let catalog = c.catalog();
    let functions: Vec<_> = catalog.functions_in(&call.scope).collect();
    let code_size: u64 = functions.iter().map(|f| f.code.size).sum();
    let limits = c.invoker.limits();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "AccountLimit": {
                "TotalCodeSize": 80_530_636_800_u64,
                "CodeSizeUnzipped": fmodel::limits::MAX_UNZIPPED_BYTES,
                "CodeSizeZipped": fmodel::limits::MAX_ZIP_BYTES,
                "ConcurrentExecutions": limits.account_limit(),
                "UnreservedConcurrentExecutions": limits.unreserved(&call.scope),
            },
            "AccountUsage": { "TotalCodeSize": code_size, "FunctionCount": functions.len() },
        }),
    ))
}

async fn update_configuration(c: &Arc<Control>, call: &Call, name: &str) -> Result<Resp> {
    let input: UpdateConfigurationIn = json::parse(Service::Lambda, &call.body)?;
    let _w = c.write.lock().await;
    let f = find_latest(c, call, name)?;
    check_revision(input.revision_id.as_deref(), &f.revision_id)?;
    let mut next = (*f).clone();
    if let Some(role) = input.role {
        validate_role(&role)?;
        next.role = role;
    }
    if let Some(h) = input.handler {
        fmodel::validate_handler(&h).map_err(|e| AwsError::validation(e.0))?;
        next.handler = h;
    }
    if let Some(d) = input.description {
        next.description = d;
    }
    if let Some(t) = input.timeout {
        next.timeout = fmodel::validate_timeout(t).map_err(|e| AwsError::validation(e.0))?;
    }
    if let Some(m) = input.memory_size {
        next.memory_size = fmodel::validate_memory(m).map_err(|e| AwsError::validation(e.0))?;
    }
    if let Some(e) = input.environment {
        let vars = e.variables.unwrap_or_default();
        fmodel::validate_environment(&vars)?;
        next.environment = vars;
    }
    if let Some(r) = input.runtime {
        next.runtime = Runtime::parse(&r)?;
    }
    if input.ephemeral_storage.is_some() {
        next.ephemeral_storage = ephemeral(input.ephemeral_storage)?;
    }
    next.last_modified = now();
    next.revision_id = portico_model::ids::uuid();
    // As on Lambda the update answers InProgress and settles once checked: a new runtime
    // must have its interpreter here, or the update is Failed with the reason.
    next.last_update_status = LastUpdateStatus::InProgress;
    c.commit(vec![Change::Put(Record::Function(next.clone()))]).await?;
    drop(_w);
    let control = c.clone();
    let arn = next.arn();
    tokio::spawn(async move { activate(&control, &arn).await });
    Ok(json_response(StatusCode::OK, &configuration(&next)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateCodeIn<'a> {
    #[serde(borrow)]
    zip_file: Option<Cow<'a, str>>,
    s3_bucket: Option<String>,
    image_uri: Option<String>,
    architectures: Option<Vec<String>>,
    revision_id: Option<String>,
}

async fn update_code(c: &Arc<Control>, call: &Call, name: &str) -> Result<Resp> {
    let input: UpdateCodeIn = json::parse(Service::Lambda, &call.body)?;
    find_latest(c, call, name)?;
    let code = accept_zip(
        c,
        Some(CodeIn { zip_file: input.zip_file, s3_bucket: input.s3_bucket, image_uri: input.image_uri }),
    )
    .await?;
    let next = {
        let _w = c.write.lock().await;
        let f = find_latest(c, call, name)?;
        check_revision(input.revision_id.as_deref(), &f.revision_id)?;
        let mut next = (*f).clone();
        next.code = code;
        if input.architectures.is_some() {
            next.architectures = architectures(input.architectures)?;
        }
        next.last_modified = now();
        next.revision_id = portico_model::ids::uuid();
        next.last_update_status = LastUpdateStatus::InProgress;
        c.commit(vec![Change::Put(Record::Function(next.clone()))]).await?;
        next
    };
    let control = c.clone();
    let arn = next.arn();
    tokio::spawn(async move { activate(&control, &arn).await });
    Ok(json_response(StatusCode::OK, &configuration(&next)))
}

async fn invoke(c: &Control, call: &Call, name: &str) -> Result<Resp> {
    let arn = reference(call, name)?;
    let catalog = c.catalog();
    let target = catalog.invocation_target(&arn, rand::random::<f64>()).ok_or_else(|| {
        AwsError::resource_not_found(format!("Function not found: {}", versions::reference_arn(&arn)))
    })?;
    let f = target.function.clone();
    let invocation_type = call.header("x-amz-invocation-type").unwrap_or("RequestResponse");
    let limit = match invocation_type {
        "RequestResponse" | "DryRun" => limits::MAX_SYNC_PAYLOAD,
        "Event" => limits::MAX_ASYNC_PAYLOAD,
        other => {
            return Err(AwsError::invalid_parameter(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )))
        }
    };
    if call.body.len() > limit {
        return Err(AwsError::too_large(format!(
            "{} bytes is larger than the maximum allowed payload size ({limit} bytes) for the Invoke operation",
            call.body.len()
        )));
    }
    let payload = if call.body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(&call.body)
            .map_err(|e| AwsError::invalid_content(format!("Could not parse request body into json: {e}")))?;
        call.body.clone()
    };
    match f.state {
        FunctionState::Active => {}
        state => {
            return Err(AwsError::resource_conflict(format!(
                "The operation cannot be performed at this time. The function is currently in the following state: {}",
                state.as_str()
            )))
        }
    }
    let invoked: Arc<str> = Arc::from(target.invoked_arn.as_str());
    let executed = HeaderValue::from_str(&f.version).unwrap_or(HeaderValue::from_static("$LATEST"));
    match invocation_type {
        "DryRun" => Ok(empty_response(StatusCode::NO_CONTENT)),
        "Event" => {
            // Acknowledged only once the event is durably queued. The queue keeps the
            // reference as given: an alias is resolved when the event runs.
            c.events
                .enqueue(&call.request_id, &versions::reference_arn(&arn), payload)
                .await
                .map_err(AwsError::service)?;
            Ok(empty_response(StatusCode::ACCEPTED))
        }
        _ => {
            let tail = call.header("x-amz-log-type") == Some("Tail");
            let out = c
                .invoker
                .invoke(&f, payload, invoked, Arc::from(call.request_id.as_str()), tail)
                .await
                .map_err(invoke_failed)?;
            let mut r = Response::new(Full::new(out.payload));
            let h = r.headers_mut();
            h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert("x-amz-executed-version", executed);
            if out.function_error {
                h.insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
            }
            if let Some(log) = out.log_tail {
                let b64 = base64::engine::general_purpose::STANDARD.encode(log);
                if let Ok(v) = HeaderValue::from_str(&b64) {
                    h.insert("x-amz-log-result", v);
                }
            }
            Ok(r)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AddPermissionIn {
    statement_id: Option<String>,
    action: Option<String>,
    principal: Option<String>,
    source_arn: Option<String>,
    source_account: Option<String>,
    revision_id: Option<String>,
}

async fn add_permission(c: &Control, call: &Call, name: &str) -> Result<Resp> {
    let input: AddPermissionIn = json::parse(Service::Lambda, &call.body)?;
    let sid = input.statement_id.unwrap_or_default();
    if sid.is_empty() || sid.len() > 100 || !sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{sid}' at 'statementId' failed to satisfy constraint: Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"
        )));
    }
    let action = input.action.unwrap_or_default();
    if !(action.starts_with("lambda:") && action.len() > "lambda:".len()) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{action}' at 'action' failed to satisfy constraint: Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])"
        )));
    }
    let principal = input.principal.unwrap_or_default();
    if principal.is_empty() {
        return Err(AwsError::validation("1 validation error detected: Value null at 'principal' failed to satisfy constraint: Member must not be null"));
    }
    if let Some(arn) = input.source_arn.as_deref().filter(|a| !source_arn_shaped(a)) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{arn}' at 'sourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern: {SOURCE_ARN_PATTERN}"
        )));
    }
    let _w = c.write.lock().await;
    let holder = PolicyHolder::find(c, call, name)?;
    holder.check_revision(input.revision_id.as_deref())?;
    if holder.policy().iter().any(|s| s.sid == sid) {
        return Err(AwsError::resource_conflict(format!(
            "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
        )));
    }
    let statement = PolicyStatement {
        sid,
        action,
        principal,
        source_arn: input.source_arn,
        source_account: input.source_account,
        resource: holder.arn(),
    };
    let doc = statement_document(&statement);
    let mut policy = holder.policy().to_vec();
    policy.push(statement);
    c.commit(vec![Change::Put(holder.with_policy(policy))]).await?;
    Ok(json_response(StatusCode::CREATED, &json!({ "Statement": doc.to_string() })))
}

/// AddPermission's `SourceArn` pattern, from Lambda's service model.
const SOURCE_ARN_PATTERN: &str =
    r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)";

/// Whether `arn` matches [`SOURCE_ARN_PATTERN`] whole: a statement whose condition could
/// never match an ARN is refused up front, as Lambda does, not stored to fail silently.
fn source_arn_shaped(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(_)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    partition.strip_prefix("aws").is_some_and(|rest| rest.is_empty() || word(rest))
        && word(service)
        && (region.is_empty() || region_shaped(region))
        && (account.is_empty() || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())))
}

/// `(eusc-)?[a-z]{2}((-gov)|(-iso[a-z]?))?-[a-z]+-\d`: us-east-1, us-gov-west-1, eusc-de-east-1...
fn region_shaped(region: &str) -> bool {
    let lower = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
    let parts: Vec<&str> = region.strip_prefix("eusc-").unwrap_or(region).split('-').collect();
    let (country, name, digit) = match parts.as_slice() {
        [c, n, d] => (*c, *n, *d),
        [c, q, n, d]
            if *q == "gov" || (q.len() <= 4 && q.strip_prefix("iso").is_some_and(|x| x.is_empty() || lower(x))) =>
        {
            (*c, *n, *d)
        }
        _ => return false,
    };
    country.len() == 2 && lower(country) && lower(name) && digit.len() == 1 && digit.as_bytes()[0].is_ascii_digit()
}

/// One policy statement as IAM writes it.
fn statement_document(s: &PolicyStatement) -> Value {
    let principal = if s.principal == "*" {
        json!("*")
    } else if s.principal.len() == 12 && s.principal.bytes().all(|b| b.is_ascii_digit()) {
        json!({ "AWS": format!("arn:aws:iam::{}:root", s.principal) })
    } else if s.principal.starts_with("arn:") {
        json!({ "AWS": s.principal })
    } else {
        json!({ "Service": s.principal })
    };
    let mut doc = json!({
        "Sid": s.sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": s.action,
        "Resource": s.resource,
    });
    let mut condition = serde_json::Map::new();
    if let Some(a) = &s.source_account {
        condition.insert("StringEquals".into(), json!({ "AWS:SourceAccount": a }));
    }
    if let Some(a) = &s.source_arn {
        condition.insert("ArnLike".into(), json!({ "AWS:SourceArn": a }));
    }
    if !condition.is_empty() {
        doc["Condition"] = Value::Object(condition);
    }
    doc
}

fn policy_document(policy: &[PolicyStatement]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": policy.iter().map(statement_document).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn source_arns_are_judged_by_lambdas_pattern() {
        for ok in [
            "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/*/*/hello",
            "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/*",
            "arn:aws-cn:execute-api:cn-north-1:111122223333:api/*",
            "arn:aws-us-gov:execute-api:us-gov-west-1:111122223333:api/*",
            "arn:aws:execute-api:us-isob-east-1:111122223333:api/*",
            "arn:aws:s3:::my-bucket",
            "arn:aws:sns:eusc-de-east-1:111122223333:topic:with:colons",
        ] {
            assert!(source_arn_shaped(ok), "{ok}");
        }
        for bad in [
            "not-an-arn",
            "arn:aws:execute-api:us-east-1:111122223333",
            "arn:gcp:execute-api:us-east-1:111122223333:api/*",
            "arn:aws::us-east-1:111122223333:api/*",
            "arn:aws:execute-api:*:111122223333:api/*",
            "arn:aws:execute-api:us-east-1:1111:api/*",
            "arn:aws:execute-api:US-east-1:111122223333:api/*",
            "arn:aws:execute-api:us-east-12:111122223333:api/*",
        ] {
            assert!(!source_arn_shaped(bad), "{bad}");
        }
    }
    use super::*;
    use portico_model::function::CodeRef;
    use portico_model::Scope;

    fn function() -> Function {
        Function {
            scope: Scope { account_id: "111122223333".into(), region: "eu-west-1".into() },
            name: "f\"n".into(),
            runtime: Runtime::parse("nodejs22.x").expect("runtime"),
            role: "arn:aws:iam::111122223333:role/r".into(),
            handler: "index.handler".into(),
            description: "d\u{e9}\n".into(),
            timeout: 3,
            memory_size: 128,
            environment: BTreeMap::new(),
            architectures: vec![Architecture::X86_64],
            ephemeral_storage: 512,
            code: CodeRef { sha256_hex: "ab".into(), sha256_b64: "q83v".into(), size: 1_048_837 },
            last_modified: "2026-11-26T00:00:00.000+0000".into(),
            revision_id: "r-1".into(),
            state: FunctionState::Active,
            last_update_status: LastUpdateStatus::Successful,
            policy: Vec::new(),
            tags: BTreeMap::new(),
            reserved_concurrency: None,
            version: portico_model::function::LATEST.into(),
            last_version: 0,
            state_reason: None,
        }
    }

    /// The documents as they were built before they were typed: a `json!` value.
    fn reference_configuration(f: &Function) -> Value {
        let mut doc = json!({
            "FunctionName": f.name,
            "FunctionArn": f.version_arn(),
            "Runtime": f.runtime.as_str(),
            "Role": f.role,
            "Handler": f.handler,
            "CodeSize": f.code.size,
            "Description": f.description,
            "Timeout": f.timeout,
            "MemorySize": f.memory_size,
            "LastModified": f.last_modified,
            "CodeSha256": f.code.sha256_b64,
            "Version": f.version,
            "TracingConfig": { "Mode": "PassThrough" },
            "RevisionId": f.revision_id,
            "State": f.state.as_str(),
            "LastUpdateStatus": f.last_update_status.as_str(),
            "PackageType": "Zip",
            "Architectures": f.architectures.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "EphemeralStorage": { "Size": f.ephemeral_storage },
            "SnapStart": { "ApplyOn": "None", "OptimizationStatus": "Off" },
            "RuntimeVersionConfig": {
                "RuntimeVersionArn": portico_runtime::environment::runtime_version_arn(f.runtime, &f.scope.region)
            },
            "LoggingConfig": { "LogFormat": "Text", "LogGroup": f.log_group() },
        });
        if !f.environment.is_empty() {
            doc["Environment"] = json!({ "Variables": f.environment });
        }
        match f.state {
            FunctionState::Pending => {
                doc["StateReason"] = json!("The function is being created.");
                doc["StateReasonCode"] = json!("Creating");
            }
            FunctionState::Failed => {
                doc["StateReason"] = json!(f.state_reason.as_deref().unwrap_or("The function could not be prepared."));
                doc["StateReasonCode"] = json!("InternalError");
            }
            FunctionState::Active => {}
        }
        if f.last_update_status == LastUpdateStatus::InProgress {
            doc["LastUpdateStatusReason"] = json!("The function is being created.");
            doc["LastUpdateStatusReasonCode"] = json!("Creating");
        }
        doc
    }

    fn reference_get_function(f: &Function, location: &str) -> Value {
        let mut doc = json!({
            "Configuration": reference_configuration(f),
            "Code": { "RepositoryType": "S3", "Location": location },
        });
        if !f.tags.is_empty() {
            doc["Tags"] = json!(f.tags);
        }
        if let Some(n) = f.reserved_concurrency {
            doc["Concurrency"] = json!({ "ReservedConcurrentExecutions": n });
        }
        doc
    }

    #[test]
    fn typed_documents_are_byte_for_byte_the_value_documents() {
        let mut variants = vec![function()];
        let mut f = function();
        f.state = FunctionState::Pending;
        f.last_update_status = LastUpdateStatus::InProgress;
        f.environment.insert("B".into(), "2".into());
        f.environment.insert("A".into(), "\"1\"".into());
        f.tags.insert("team".into(), "x".into());
        f.reserved_concurrency = Some(7);
        variants.push(f);
        let mut f = function();
        f.state = FunctionState::Failed;
        f.last_update_status = LastUpdateStatus::Failed;
        f.state_reason = Some("no runtime".into());
        f.version = "3".into();
        f.architectures = vec![Architecture::Arm64];
        variants.push(f);
        let mut f = function();
        f.state = FunctionState::Failed;
        variants.push(f);
        let location = "http://127.0.0.1:1/2015-03-31/functions/arn%3Aaws/code";
        for f in &variants {
            let typed = serde_json::to_string(&Configuration::of(f)).expect("encode");
            assert_eq!(typed, reference_configuration(f).to_string());
            assert_eq!(configuration(f), reference_configuration(f));
            let typed = serde_json::to_string(&get_function(f, location.to_string())).expect("encode");
            assert_eq!(typed, reference_get_function(f, location).to_string());
        }
    }
}
