//! The control plane's edge check: who is calling, for which account and region.
//!
//! Every call is SigV4-verified ([`portico_auth::verify`]) against the access keys in the
//! data dir before anything else reads it; the key's account becomes the call's scope
//! and the credential scope's region its region. A refusal is rendered in the service's
//! own error shape (see [`AwsError::auth`]) and changes nothing. With
//! `--insecure-accept-any-credentials` ([`Authentication::AcceptAny`]) nothing is
//! verified: every caller is the configured account, in the region its signature names.
//!
//! Logs name the refusal's kind and the access key id, never a secret or a signature.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method};
use portico_auth::{AuthError, Key, LookupError, Options, RequestParts};
use portico_store::KeyStore;

use crate::{AwsError, ControlConfig, Service};

/// How callers are authenticated.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// Verify every call's SigV4 signature against these keys (the default).
    Verify(Arc<KeyStore>),
    /// Accept every call, signed or not, as [`ControlConfig::account_id`]
    /// (`--insecure-accept-any-credentials`: throwaway local use only).
    AcceptAny,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The account whose resources the call sees.
    pub account_id: String,
    /// The region it addresses.
    pub region: String,
    /// The access key it signed with (absent for an unsigned call under `AcceptAny`).
    pub access_key_id: Option<String>,
}

/// The SigV4 service name a service's clients sign for, and the clock window AWS
/// gives it: Lambda's and API Gateway's errors say "- 5 min.", STS's "- 15 min.";
/// CloudWatch Logs is taken to be 15 minutes like the other JSON 1.1 services.
fn signing(service: Service) -> Options {
    match service {
        Service::Lambda => Options::new("lambda"),
        Service::ApiGateway => Options::new("apigateway"),
        Service::Sts => Options::new("sts").with_max_skew(Duration::from_secs(900)),
        Service::Logs => Options::new("logs").with_max_skew(Duration::from_secs(900)),
    }
}

/// Refuses a call from its head alone, before its body is read (so a large upload from
/// an unsigned or unknown caller is never buffered): no signature, a malformed one, one
/// scoped to another service, a session token, or a key that does not exist
/// ([`portico_auth::precheck`]). What passes is verified in full by [`authenticate`].
pub(crate) fn precheck(
    cfg: &ControlConfig,
    service: Service,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), AwsError> {
    let Authentication::Verify(keys) = &cfg.authentication else { return Ok(()) };
    let parts = RequestParts { method, path, query, headers };
    portico_auth::precheck(parts, |akid| lookup(keys, akid), &signing(service))
        .map_err(|e| refused(service, headers, query, &e))
}

fn lookup(keys: &KeyStore, akid: &str) -> Result<Option<Key>, LookupError> {
    keys.lookup(akid)
        .map(|k| k.map(|k| Key { secret_access_key: k.secret_access_key, account_id: k.account_id }))
        .map_err(|e| LookupError(e.to_string()))
}

/// Logs a refusal (its kind and key id, never a signature) and renders it.
fn refused(service: Service, headers: &HeaderMap, query: Option<&str>, e: &AuthError) -> AwsError {
    let key = portico_auth::parse(headers, query).ok().map(|s| s.credential.access_key_id);
    match e {
        AuthError::Lookup(m) => tracing::error!("access keys could not be read: {m}"),
        _ => tracing::debug!(?service, kind = e.kind(), key = key.as_deref().unwrap_or("-"), "refused a call"),
    }
    AwsError::auth(service, e)
}

/// Authenticates one call (see the module doc).
pub(crate) fn authenticate(
    cfg: &ControlConfig,
    service: Service,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Caller, AwsError> {
    let keys = match &cfg.authentication {
        Authentication::AcceptAny => {
            let signature = portico_auth::parse(headers, query).ok();
            return Ok(Caller {
                account_id: cfg.account_id.clone(),
                region: signature
                    .as_ref()
                    .map(|s| s.credential.region.clone())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| cfg.default_region.clone()),
                access_key_id: signature.map(|s| s.credential.access_key_id),
            });
        }
        Authentication::Verify(keys) => keys,
    };
    let parts = RequestParts { method, path, query, headers };
    match portico_auth::verify(parts, body, |akid| lookup(keys, akid), SystemTime::now(), &signing(service)) {
        Ok(v) => Ok(Caller { account_id: v.account_id, region: v.region, access_key_id: Some(v.access_key_id) }),
        Err(e) => Err(refused(service, headers, query, &e)),
    }
}

/// See [`crate::Control::check_secret`].
pub(crate) fn check_secret(cfg: &ControlConfig, access_key_id: &str, secret: &str) -> Result<Option<String>, AwsError> {
    use subtle::ConstantTimeEq;
    let keys = match &cfg.authentication {
        Authentication::AcceptAny => return Ok(Some(cfg.account_id.clone())),
        Authentication::Verify(keys) => keys,
    };
    let key = keys.lookup(access_key_id).map_err(|e| {
        tracing::error!("access keys could not be read: {e}");
        AwsError::service(format!("access keys could not be read: {e}"))
    })?;
    Ok(key.filter(|k| bool::from(k.secret_access_key.as_bytes().ct_eq(secret.as_bytes()))).map(|k| k.account_id))
}

/// How long a presigned link stays valid: AWS's `Code.Location` expires in 10 minutes.
pub(crate) const PRESIGNED_LINK_SECS: u64 = 600;

/// `http://{host}{path}` presigned (SigV4 query form) with the caller's own key, so a
/// plain `curl` of it passes the same verification as any call, for
/// [`PRESIGNED_LINK_SECS`]. `path` must be percent-encoded as it will be sent. Under
/// `AcceptAny`, or for a caller whose key is gone, the link is unsigned.
pub(crate) fn presigned_get(cfg: &ControlConfig, caller: &Caller, service: Service, host: &str, path: &str) -> String {
    let unsigned = format!("http://{host}{path}");
    let (Authentication::Verify(keys), Some(akid)) = (&cfg.authentication, caller.access_key_id.as_deref()) else {
        return unsigned;
    };
    let Ok(Some(key)) = keys.lookup(akid) else { return unsigned };
    let Ok(host_value) = http::HeaderValue::from_str(host) else { return unsigned };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, host_value);
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let timestamp = portico_auth::format_amz_date(i64::try_from(now).unwrap_or(i64::MAX));
    let opts = signing(service);
    let signer = portico_auth::Signer {
        access_key_id: akid,
        secret: &key.secret_access_key,
        region: &caller.region,
        service: &opts.service,
        timestamp: &timestamp,
    };
    let parts = RequestParts { method: &Method::GET, path, query: None, headers: &headers };
    format!("{unsigned}?{}", signer.presigned_query(parts, b"", PRESIGNED_LINK_SECS, &["host"]))
}
