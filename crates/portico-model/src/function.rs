//! Lambda functions: configuration, code reference, resource policy and the rules
//! AWS applies to each field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Invalid, Scope};

/// The runtimes Portico can run. Names are AWS's runtime identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Runtime {
    /// Node.js 22 (AWS's default in 2026).
    #[serde(rename = "nodejs22.x")]
    Nodejs22,
    /// Node.js 20.
    #[serde(rename = "nodejs20.x")]
    Nodejs20,
    /// Python 3.14.
    #[serde(rename = "python3.14")]
    Python314,
    /// Python 3.13.
    #[serde(rename = "python3.13")]
    Python313,
    /// Python 3.12.
    #[serde(rename = "python3.12")]
    Python312,
    /// Python 3.11.
    #[serde(rename = "python3.11")]
    Python311,
    /// Python 3.10 (AWS blocks creating functions with it from 2026-11-30).
    #[serde(rename = "python3.10")]
    Python310,
    /// OS-only runtime on Amazon Linux 2023: the package's `bootstrap` executable.
    #[serde(rename = "provided.al2023")]
    ProvidedAl2023,
    /// OS-only runtime on Amazon Linux 2.
    #[serde(rename = "provided.al2")]
    ProvidedAl2,
}

impl Runtime {
    /// Every runtime Portico accepts, in the order AWS lists them: the identifiers AWS
    /// lets you create functions with (Lambda runtimes page, November 2026).
    pub const ALL: [Runtime; 9] = [
        Runtime::Nodejs22,
        Runtime::Nodejs20,
        Runtime::Python314,
        Runtime::Python313,
        Runtime::Python312,
        Runtime::Python311,
        Runtime::Python310,
        Runtime::ProvidedAl2023,
        Runtime::ProvidedAl2,
    ];

    /// AWS's identifier, e.g. `nodejs22.x`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Nodejs22 => "nodejs22.x",
            Runtime::Nodejs20 => "nodejs20.x",
            Runtime::Python314 => "python3.14",
            Runtime::Python313 => "python3.13",
            Runtime::Python312 => "python3.12",
            Runtime::Python311 => "python3.11",
            Runtime::Python310 => "python3.10",
            Runtime::ProvidedAl2023 => "provided.al2023",
            Runtime::ProvidedAl2 => "provided.al2",
        }
    }

    /// The Python 3 minor version of a `python3.x` runtime.
    pub fn python_minor(self) -> Option<u32> {
        match self {
            Runtime::Python314 => Some(14),
            Runtime::Python313 => Some(13),
            Runtime::Python312 => Some(12),
            Runtime::Python311 => Some(11),
            Runtime::Python310 => Some(10),
            _ => None,
        }
    }

    /// Whether this is an OS-only runtime (`provided.*`), which runs the package's own
    /// `bootstrap` and has no `AWS_EXECUTION_ENV`.
    pub fn is_os_only(self) -> bool {
        matches!(self, Runtime::ProvidedAl2023 | Runtime::ProvidedAl2)
    }

    /// Parses AWS's identifier.
    pub fn parse(s: &str) -> Result<Runtime, Invalid> {
        Runtime::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let all: Vec<&str> = Runtime::ALL.iter().map(|r| r.as_str()).collect();
            Invalid(format!(
                "Value {s} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be a valid ARN",
                all.join(", ")
            ))
        })
    }
}

/// Instruction set of the function. Portico runs every architecture on the host's own
/// CPU; the value is kept for fidelity and for the console's cost estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// `x86_64` (AWS's default).
    X86_64,
    /// `arm64` (Graviton).
    Arm64,
}

impl Architecture {
    /// AWS's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// Parses AWS's name.
    pub fn parse(s: &str) -> Result<Architecture, Invalid> {
        match s {
            "x86_64" => Ok(Architecture::X86_64),
            "arm64" => Ok(Architecture::Arm64),
            _ => Err(Invalid(format!(
                "1 validation error detected: Value '[{s}]' at 'architectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]"
            ))),
        }
    }
}

/// Lifecycle state of a function (`State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionState {
    /// Being prepared; invokes are refused.
    Pending,
    /// Ready to invoke.
    Active,
    /// Preparation failed; see the state reason.
    Failed,
}

impl FunctionState {
    /// AWS's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionState::Pending => "Pending",
            FunctionState::Active => "Active",
            FunctionState::Failed => "Failed",
        }
    }
}

/// Outcome of the last update (`LastUpdateStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LastUpdateStatus {
    /// The update is being applied.
    InProgress,
    /// The update was applied.
    Successful,
    /// The update failed.
    Failed,
}

impl LastUpdateStatus {
    /// AWS's name.
    pub fn as_str(self) -> &'static str {
        match self {
            LastUpdateStatus::InProgress => "InProgress",
            LastUpdateStatus::Successful => "Successful",
            LastUpdateStatus::Failed => "Failed",
        }
    }
}

/// The deployment package of a function, content-addressed by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRef {
    /// Lower-case hex SHA-256 of the zip: the blob's and the extracted tree's name.
    pub sha256_hex: String,
    /// Base64 SHA-256 of the zip, as AWS reports `CodeSha256`.
    pub sha256_b64: String,
    /// Size of the zip in bytes (`CodeSize`).
    pub size: u64,
}

/// One statement of a function's resource-based policy (AddPermission).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatement {
    /// `StatementId`.
    pub sid: String,
    /// `Action`, e.g. `lambda:InvokeFunction`.
    pub action: String,
    /// A service principal (`apigateway.amazonaws.com`), an account id or `*`.
    pub principal: String,
    /// `SourceArn` condition, if any.
    pub source_arn: Option<String>,
    /// `SourceAccount` condition, if any.
    pub source_account: Option<String>,
    /// `Resource`: the function ARN, qualified when the permission was.
    pub resource: String,
}

/// A Lambda function's `$LATEST` configuration and code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    /// Account and region owning it.
    pub scope: Scope,
    /// `FunctionName`.
    pub name: String,
    /// `Runtime`.
    pub runtime: Runtime,
    /// `Role`: the execution role ARN (recorded, not assumed).
    pub role: String,
    /// `Handler`, e.g. `index.handler`.
    pub handler: String,
    /// `Description`.
    pub description: String,
    /// `Timeout` in seconds (1–900).
    pub timeout: u32,
    /// `MemorySize` in MB (128–10240).
    pub memory_size: u32,
    /// `Environment.Variables`.
    pub environment: BTreeMap<String, String>,
    /// `Architectures` (one element).
    pub architectures: Vec<Architecture>,
    /// `EphemeralStorage.Size` in MB.
    pub ephemeral_storage: u32,
    /// The deployment package.
    pub code: CodeRef,
    /// `LastModified`, already in AWS's format.
    pub last_modified: String,
    /// `RevisionId`: a new UUID on every change.
    pub revision_id: String,
    /// `State`.
    pub state: FunctionState,
    /// `LastUpdateStatus`.
    pub last_update_status: LastUpdateStatus,
    /// Resource policy statements, in the order they were added.
    pub policy: Vec<PolicyStatement>,
    /// `Tags`.
    pub tags: BTreeMap<String, String>,
    /// `ReservedConcurrentExecutions` (PutFunctionConcurrency): both a cap on this
    /// function's concurrency and a share of the account's limit set aside for it.
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// `Version`: `$LATEST` for the function itself, a number for a published version
    /// (an immutable copy of `$LATEST`'s code and configuration).
    #[serde(default = "latest")]
    pub version: String,
    /// On `$LATEST`: the highest version number published so far (numbers are never
    /// reused, even after a version is deleted).
    #[serde(default)]
    pub last_version: u32,
    /// Why the function is `Failed` (`StateReason`), when it is.
    #[serde(default)]
    pub state_reason: Option<String>,
}

fn latest() -> String {
    LATEST.to_string()
}

/// The version name of the unpublished, editable function.
pub const LATEST: &str = "$LATEST";

/// An alias: a name pointing at a version, optionally shifting a share of invocations to
/// a second version (`RoutingConfig.AdditionalVersionWeights`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    /// Account and region owning it.
    pub scope: Scope,
    /// The function's name.
    pub function_name: String,
    /// `Name`.
    pub name: String,
    /// `FunctionVersion`: a version number or `$LATEST`.
    pub function_version: String,
    /// `Description`.
    pub description: String,
    /// `RoutingConfig.AdditionalVersionWeights`: version -> share of invocations (0-1).
    pub additional_version_weights: BTreeMap<String, f64>,
    /// `RevisionId`.
    pub revision_id: String,
    /// The alias's own resource policy (AddPermission with `Qualifier`).
    pub policy: Vec<PolicyStatement>,
}

impl Alias {
    /// `arn:aws:lambda:{region}:{account}:function:{name}:{alias}`.
    pub fn arn(&self) -> String {
        format!("{}:{}", function_arn(&self.scope, &self.function_name), self.name)
    }

    /// The version an invocation runs, given a uniform random `roll` in [0, 1).
    pub fn pick_version(&self, roll: f64) -> &str {
        let mut acc = 0.0;
        for (version, weight) in &self.additional_version_weights {
            acc += weight;
            if roll < acc {
                return version;
            }
        }
        &self.function_version
    }
}

/// Checks an alias name: 1-128 letters, digits, `-` or `_`, not all digits.
pub fn validate_alias_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
        )))
    }
}

impl Function {
    /// `arn:aws:lambda:{region}:{account}:function:{name}`.
    pub fn arn(&self) -> String {
        function_arn(&self.scope, &self.name)
    }

    /// Whether this is `$LATEST` rather than a published version.
    pub fn is_latest(&self) -> bool {
        self.version == LATEST
    }

    /// The ARN a version is known by: unqualified for `$LATEST` (as Lambda reports it),
    /// `...:function:{name}:{version}` for a published version.
    pub fn version_arn(&self) -> String {
        if self.is_latest() {
            self.arn()
        } else {
            format!("{}:{}", self.arn(), self.version)
        }
    }

    /// Whether the resource policy lets the AWS service `service` (such as
    /// `apigateway.amazonaws.com`) invoke this function on behalf of `source_arn`.
    pub fn allows_service_invoke(&self, service: &str, source_arn: &str, source_account: &str) -> bool {
        policy_allows(&self.policy, service, source_arn, source_account)
    }

    /// CloudWatch Logs group, `/aws/lambda/{name}`.
    pub fn log_group(&self) -> String {
        format!("/aws/lambda/{}", self.name)
    }
}

/// Whether `policy` lets the AWS service `service` invoke on behalf of `source_arn`.
pub fn policy_allows(policy: &[PolicyStatement], service: &str, source_arn: &str, source_account: &str) -> bool {
    policy.iter().any(|s| {
        (s.principal == service || s.principal == "*")
            && matches!(s.action.as_str(), "lambda:InvokeFunction" | "lambda:*" | "*")
            && s.source_arn.as_deref().is_none_or(|p| arn_like(p, source_arn))
            && s.source_account.as_deref().is_none_or(|a| a == source_account)
    })
}

/// `arn:aws:lambda:{region}:{account}:function:{name}`.
pub fn function_arn(scope: &Scope, name: &str) -> String {
    format!("arn:aws:lambda:{}:{}:function:{}", scope.region, scope.account_id, name)
}

/// IAM's `ArnLike` (and `ArnEquals`, which IAM evaluates the same way): "Each of the six
/// colon-delimited components of the ARN is checked separately and each can include
/// multi-character match wildcards (*) or single-character match wildcards (?)"
/// (IAM User Guide, "IAM JSON policy elements: Condition operators", ARN condition
/// operators), case-sensitively. So a `*` never crosses a `:` between the partition,
/// service, region, account and resource; the sixth component is the rest of the ARN
/// (it may hold `/` and `:`, as `{apiId}/{stage}/{method}/{path}` does). A pattern or
/// value with fewer than six components matches nothing.
pub fn arn_like(pattern: &str, value: &str) -> bool {
    let mut p = pattern.splitn(6, ':');
    let mut v = value.splitn(6, ':');
    for _ in 0..6 {
        match (p.next(), v.next()) {
            (Some(pp), Some(vv)) if glob(pp.as_bytes(), vv.as_bytes()) => {}
            _ => return false,
        }
    }
    true
}

/// `*` matches any run of bytes (none included), `?` exactly one character.
fn glob(p: &[u8], v: &[u8]) -> bool {
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && p[pi] == b'?' {
            // One character, not one byte: skip a whole UTF-8 sequence.
            pi += 1;
            vi += 1;
            while vi < v.len() && (v[vi] & 0xC0) == 0x80 {
                vi += 1;
            }
        } else if pi < p.len() && p[pi] == v[vi] && p[pi] != b'*' {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// AWS's documented limits and defaults for functions.
pub mod limits {
    /// Default `Timeout`, seconds.
    pub const DEFAULT_TIMEOUT: u32 = 3;
    /// Largest `Timeout`, seconds.
    pub const MAX_TIMEOUT: u32 = 900;
    /// Default `MemorySize`, MB.
    pub const DEFAULT_MEMORY: u32 = 128;
    /// Smallest `MemorySize`, MB.
    pub const MIN_MEMORY: u32 = 128;
    /// Largest `MemorySize`, MB.
    pub const MAX_MEMORY: u32 = 10240;
    /// Default `EphemeralStorage.Size`, MB.
    pub const DEFAULT_EPHEMERAL_STORAGE: u32 = 512;
    /// Largest zip accepted in a direct upload (`ZipFile`), bytes.
    pub const MAX_ZIP_BYTES: u64 = 50 * 1024 * 1024;
    /// Largest unzipped deployment package, bytes.
    pub const MAX_UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;
    /// Largest total size of environment variables (keys and values), bytes.
    pub const MAX_ENV_BYTES: usize = 4 * 1024;
    /// Largest synchronous invocation payload, each way, bytes.
    pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
    /// Largest asynchronous (`Event`) invocation payload, bytes.
    pub const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
}

/// Checks a function name (not an ARN): 1–64 letters, digits, `-` or `_`.
pub fn validate_function_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
        )))
    }
}

/// Checks `Timeout`.
pub fn validate_timeout(t: i64) -> Result<u32, Invalid> {
    u32::try_from(t)
        .ok()
        .filter(|t| (1..=limits::MAX_TIMEOUT).contains(t))
        .ok_or_else(|| {
            Invalid(format!(
                "1 validation error detected: Value '{t}' at 'timeout' failed to satisfy constraint: Member must have value {} {}",
                if t < 1 { "greater than or equal to" } else { "less than or equal to" },
                if t < 1 { 1 } else { limits::MAX_TIMEOUT }
            ))
        })
}

/// Checks `MemorySize`.
pub fn validate_memory(m: i64) -> Result<u32, Invalid> {
    u32::try_from(m)
        .ok()
        .filter(|m| (limits::MIN_MEMORY..=limits::MAX_MEMORY).contains(m))
        .ok_or_else(|| {
            Invalid(format!(
                "1 validation error detected: Value '{m}' at 'memorySize' failed to satisfy constraint: Member must have value {} {}",
                if m < 128 { "greater than or equal to" } else { "less than or equal to" },
                if m < 128 { limits::MIN_MEMORY } else { limits::MAX_MEMORY }
            ))
        })
}

/// Checks `Environment.Variables`: names must be valid and the total size at most 4 KB.
pub fn validate_environment(vars: &BTreeMap<String, String>) -> Result<(), Invalid> {
    const RESERVED: [&str; 14] = [
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ];
    let mut total = 0;
    for (k, v) in vars {
        let name_ok = k.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            return Err(Invalid(
                "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]".into(),
            ));
        }
        if RESERVED.contains(&k.as_str()) {
            return Err(Invalid(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {k}"
            )));
        }
        total += k.len() + v.len();
    }
    if total > limits::MAX_ENV_BYTES {
        return Err(Invalid(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {total}"
        )));
    }
    Ok(())
}

/// Checks a `Handler` string: AWS's pattern `[^\s]+`, at most 128 characters.
pub fn validate_handler(h: &str) -> Result<(), Invalid> {
    if h.is_empty() || h.len() > 128 || h.chars().any(char::is_whitespace) {
        return Err(Invalid(format!(
            "1 validation error detected: Value '{h}' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\\s]+"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_round_trip() {
        for r in Runtime::ALL {
            assert_eq!(Runtime::parse(r.as_str()), Ok(r));
        }
        assert!(Runtime::parse("nodejs99.x").is_err());
        assert!(Runtime::parse("python3.9").is_err(), "AWS blocks creating python3.9 functions since 2026-02-03");
        let msg = Runtime::parse("python2.7").expect_err("unknown").0;
        assert!(msg.starts_with("Value python2.7 at 'runtime' failed to satisfy constraint"), "{msg}");
        assert!(msg.contains("python3.12, python3.11") && msg.contains("provided.al2023, provided.al2]"), "{msg}");
        assert_eq!(Runtime::Python312.python_minor(), Some(12));
        assert!(Runtime::ProvidedAl2.is_os_only() && !Runtime::Python313.is_os_only());
    }

    #[test]
    fn function_names() {
        assert!(validate_function_name("hello-api").is_ok());
        assert!(validate_function_name("a_B-9").is_ok());
        assert!(validate_function_name("").is_err());
        assert!(validate_function_name("bad/name").is_err());
        assert!(validate_function_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn arn_patterns() {
        let arn = "arn:aws:execute-api:us-east-1:111122223333:abc/$default/GET/hello";
        assert!(arn_like("arn:aws:execute-api:us-east-1:111122223333:abc/*/*/hello", arn));
        assert!(arn_like("arn:aws:execute-api:us-east-1:111122223333:abc/*/*", arn));
        assert!(!arn_like("arn:aws:execute-api:us-east-1:111122223333:xyz/*/*", arn));
        assert!(arn_like("arn:aws:execute-api:us-east-1:111122223333:abc/?default/GET/hello", arn));
        assert!(!arn_like("arn:aws:execute-api:us-east-1:111122223333:abc/*/*/bye", arn));
        // Each of the six components on its own: `*` does not cross a `:`.
        assert!(arn_like("arn:aws:execute-api:*:111122223333:abc/*", arn));
        assert!(arn_like("arn:aws:execute-api:us-east-?:*:*", arn));
        assert!(arn_like("arn:*:*:*:*:*", arn));
        assert!(!arn_like("arn:aws:*:abc/*", arn), "one `*` standing for region, account and more");
        assert!(!arn_like("arn:aws:execute-api:*", arn), "fewer than six components");
        assert!(!arn_like("arn:aws:execute-api:us-east-1:*abc/*", arn));
        assert!(!arn_like("arn:aws:execute-api:us-east-1:111122223333:abc/*", "arn:aws:execute-api:us-east-1"));
        assert!(!arn_like(
            "arn:aws:execute-api:us-east-1:1111222233*:abc/*",
            "arn:aws:execute-api:us-east-1:111:1:abc/x"
        ));
        // Another API, another route, another account, another region.
        assert!(!arn_like("arn:aws:execute-api:us-east-1:111122223333:abcd/*", arn));
        assert!(!arn_like("arn:aws:execute-api:us-east-1:111122223333:abc/*/GET/hello/*", arn));
        assert!(!arn_like("arn:aws:execute-api:us-east-1:999988887777:abc/*", arn));
        assert!(!arn_like("arn:aws:execute-api:eu-west-1:111122223333:abc/*", arn));
        // The resource component keeps its own `:` and `/`: `*` crosses them there.
        let f = "arn:aws:lambda:us-east-1:111122223333:function:hello:prod";
        assert!(arn_like("arn:aws:lambda:us-east-1:111122223333:function:*", f));
        assert!(arn_like("arn:aws:lambda:us-east-1:111122223333:function:hello:?rod", f));
        assert!(!arn_like("arn:aws:lambda:us-east-1:111122223333:function:hello", f));
        // Case-sensitive; exact text matches itself (ArnEquals).
        assert!(!arn_like("arn:aws:execute-api:us-east-1:111122223333:ABC/*", arn));
        assert!(arn_like(arn, arn));
        assert!(arn_like("arn:aws:execute-api:us-east-1:111122223333:abc/$default/GET/h?llo", arn));
        assert!(arn_like(
            "arn:aws:execute-api:us-east-1:111122223333:abc/*/GET/?",
            "arn:aws:execute-api:us-east-1:111122223333:abc/s/GET/é"
        ));
        assert!(!arn_like(
            "arn:aws:execute-api:us-east-1:111122223333:abc/*/GET/?",
            "arn:aws:execute-api:us-east-1:111122223333:abc/s/GET/ab"
        ));
    }

    #[test]
    fn numeric_limits() {
        assert_eq!(validate_timeout(3), Ok(3));
        assert!(validate_timeout(0).is_err());
        assert!(validate_timeout(901).is_err());
        assert_eq!(validate_memory(128), Ok(128));
        assert!(validate_memory(127).is_err());
        assert!(validate_memory(10241).is_err());
    }

    #[test]
    fn environment_rules() {
        let mut v = BTreeMap::new();
        v.insert("GREETING".to_string(), "hi".to_string());
        assert!(validate_environment(&v).is_ok());
        v.insert("AWS_REGION".to_string(), "x".to_string());
        assert!(validate_environment(&v).is_err());
        let mut big = BTreeMap::new();
        big.insert("BIG".to_string(), "x".repeat(5000));
        assert!(validate_environment(&big).is_err());
    }
}
