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
}

impl Runtime {
    /// Every runtime Portico accepts, in the order AWS lists them.
    pub const ALL: [Runtime; 2] = [Runtime::Nodejs22, Runtime::Nodejs20];

    /// AWS's identifier, e.g. `nodejs22.x`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Nodejs22 => "nodejs22.x",
            Runtime::Nodejs20 => "nodejs20.x",
        }
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
}

impl Function {
    /// `arn:aws:lambda:{region}:{account}:function:{name}`.
    pub fn arn(&self) -> String {
        function_arn(&self.scope, &self.name)
    }

    /// Whether the resource policy lets the AWS service `service` (such as
    /// `apigateway.amazonaws.com`) invoke this function on behalf of `source_arn`.
    pub fn allows_service_invoke(&self, service: &str, source_arn: &str, source_account: &str) -> bool {
        self.policy.iter().any(|s| {
            (s.principal == service || s.principal == "*")
                && matches!(s.action.as_str(), "lambda:InvokeFunction" | "lambda:*" | "*")
                && s.source_arn.as_deref().is_none_or(|p| arn_like(p, source_arn))
                && s.source_account.as_deref().is_none_or(|a| a == source_account)
        })
    }

    /// CloudWatch Logs group, `/aws/lambda/{name}`.
    pub fn log_group(&self) -> String {
        format!("/aws/lambda/{}", self.name)
    }
}

/// `arn:aws:lambda:{region}:{account}:function:{name}`.
pub fn function_arn(scope: &Scope, name: &str) -> String {
    format!("arn:aws:lambda:{}:{}:function:{}", scope.region, scope.account_id, name)
}

/// IAM's `ArnLike`: `*` matches any run of characters (including `/`), `?` any one.
pub fn arn_like(pattern: &str, value: &str) -> bool {
    let (p, v) = (pattern.as_bytes(), value.as_bytes());
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == v[vi]) {
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
