//! AWS Signature Version 4 verification: who signed a request, if anyone did.
//!
//! Portico checks the signature of every control-plane call (Lambda, API Gateway v2,
//! STS, CloudWatch Logs) and of data-plane requests to `AWS_IAM` routes with this crate.
//! It follows AWS's "Create a signed AWS API request" exactly, and botocore's
//! `SigV4Auth` where the documentation leaves room:
//!
//! 1. find the signature: the `Authorization: AWS4-HMAC-SHA256 Credential=..,
//!    SignedHeaders=.., Signature=..` header, or the presigned query string
//!    (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//!    `X-Amz-SignedHeaders`, `X-Amz-Signature`) — [`parse`];
//! 2. rebuild the canonical request: method, the path URI-encoded a second time after
//!    removing dot segments and empty segments (every service but S3), the query decoded,
//!    re-encoded and sorted, the signed headers (lower-case, values trimmed, inner runs of
//!    spaces collapsed, repeated values joined with `,`), the signed-header list and the
//!    hex SHA-256 of the body;
//! 3. the string to sign: `AWS4-HMAC-SHA256`, the timestamp, the credential scope
//!    `date/region/service/aws4_request` and the hex SHA-256 of the canonical request;
//! 4. the signing key: the HMAC-SHA256 chain `AWS4{secret}` → date → region → service →
//!    `aws4_request`, and the signature, compared with the one sent in constant time;
//! 5. the clock window: a header-signed request is good within [`Options::max_skew`] of
//!    its timestamp; a presigned one from its timestamp (less the skew) until
//!    `X-Amz-Expires` seconds later.
//!
//! The crate does no I/O: the caller passes the request parts, the body, a function that
//! finds the secret of an access key id, and the current time. HMAC-SHA256 comes from the
//! RustCrypto `hmac` and `sha2` crates, the constant-time comparison from `subtle`.
//!
//! ```
//! use portico_auth::{verify, Key, Options, RequestParts};
//! # let (method, headers) = (http::Method::GET, http::HeaderMap::new());
//! let parts = RequestParts { method: &method, path: "/2015-03-31/functions/", query: None, headers: &headers };
//! let outcome = verify(
//!     parts,
//!     b"",
//!     |akid| Ok(None::<Key>), // a key store lookup: Ok(Some(key)), Ok(None) unknown, Err(e) store failure
//!     std::time::SystemTime::now(),
//!     &Options::new("lambda"),
//! );
//! assert_eq!(outcome, Err(portico_auth::AuthError::Missing));
//! ```
//!
//! For a data-plane request to an `AWS_IAM` route, pass the request head as it arrived
//! ([`RequestParts::from_parts`]: the path with its stage and, in the path form, its
//! `/execute-api/{apiId}` prefix, exactly as the client signed it), the collected body,
//! and `Options::new("execute-api")`; [`VerifiedCaller`] then names the caller's key and
//! account.
//!
//! Refusals are [`AuthError`]s; each names the AWS error it stands for, and its
//! [`AuthError::message`] is AWS's text. How each is rendered (status, code, body shape)
//! differs per service and is the caller's business.
//!
//! Not supported, and refused: `UNSIGNED-PAYLOAD` and streaming (`STREAMING-*`) payload
//! hashes (the body is always part of the signature), session tokens
//! (`X-Amz-Security-Token`: Portico issues only long-term keys), SigV4A and SigV2.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod canonical;
mod parse;
mod time;

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use canonical::{canonical_query, canonical_request, canonical_uri};
pub use parse::{parse, Credential, Form, Signature};
pub use time::{format_amz_date, parse_amz_date};

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// Longest lifetime of a presigned request (`X-Amz-Expires`), 7 days as on AWS.
pub const MAX_PRESIGN_EXPIRES: u64 = 7 * 24 * 3600;
/// Hex SHA-256 of the empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

type HmacSha256 = Hmac<Sha256>;

/// The parts of an HTTP request that a signature covers, as they arrived.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The path exactly as received: still percent-encoded, without the query.
    pub path: &'a str,
    /// The raw query string (what follows `?`), if any.
    pub query: Option<&'a str>,
    /// Every header, as received (`Host` included).
    pub headers: &'a http::HeaderMap,
}

impl<'a> RequestParts<'a> {
    /// The parts of a hyper/`http` request head.
    pub fn from_parts(parts: &'a http::request::Parts) -> RequestParts<'a> {
        RequestParts {
            method: &parts.method,
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
        }
    }
}

/// What the key store knows of one access key: its secret and its account.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// The secret access key (the signing secret).
    pub secret_access_key: String,
    /// The 12-digit account the key acts for.
    pub account_id: String,
}

impl std::fmt::Debug for Key {
    // The secret never reaches a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("secret_access_key", &"<redacted>").field("account_id", &self.account_id).finish()
    }
}

/// Why looking a key up failed (the store could not be read): not the caller's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError(pub String);

/// Where keys are found: the key store, as a crate that must not know the store sees
/// it (the gateway's `AWS_IAM` routes; the binary implements it over its `KeyStore`).
pub trait KeyLookup: Send + Sync + std::fmt::Debug {
    /// The key with this id: `Ok(None)` when there is none.
    fn lookup(&self, access_key_id: &str) -> Result<Option<Key>, LookupError>;
}

/// What a verification expects of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The service the credential scope must name (`lambda`, `apigateway`, `sts`, `logs`,
    /// `execute-api`).
    pub service: String,
    /// How far a header-signed request's timestamp may be from now, either way
    /// (Lambda and API Gateway: 5 minutes; STS: 15 minutes).
    pub max_skew: Duration,
}

impl Options {
    /// Expects `service`, with AWS's usual 5-minute window.
    pub fn new(service: &str) -> Options {
        Options { service: service.to_string(), max_skew: Duration::from_secs(300) }
    }

    /// The same, with another clock window.
    pub fn with_max_skew(mut self, max_skew: Duration) -> Options {
        self.max_skew = max_skew;
        self
    }
}

/// Who signed a request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCaller {
    /// The access key id the request was signed with.
    pub access_key_id: String,
    /// The account the key belongs to: the caller's account.
    pub account_id: String,
    /// The region of the credential scope: the region the caller addresses.
    pub region: String,
    /// The service of the credential scope.
    pub service: String,
    /// The request's timestamp, seconds since the Unix epoch.
    pub signed_at: i64,
    /// Which form carried the signature.
    pub form: Form,
}

/// A refused request. Each variant is one AWS error; the caller renders it in its
/// service's shape (see the variants).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor a presigned query string. Lambda and API
    /// Gateway: 403 `MissingAuthenticationTokenException` "Missing Authentication Token";
    /// STS: 403 `MissingAuthenticationToken`; JSON 1.1 services: 400.
    #[error("missing authentication token")]
    Missing,
    /// The signature is malformed (a component missing, no date, a bad date, an
    /// unsigned `x-amz-*` header...): `IncompleteSignatureException` (STS:
    /// `IncompleteSignature`), with AWS's explanation.
    #[error("incomplete signature: {0}")]
    Incomplete(String),
    /// The access key id is unknown (deleted, never created) or the request carries a
    /// session token: `UnrecognizedClientException` (STS: `InvalidClientTokenId`),
    /// "The security token included in the request is invalid."
    #[error("unrecognized client")]
    UnrecognizedClient,
    /// The signature does not match, or its scope is wrong (service, terminator, date):
    /// `InvalidSignatureException` (STS: `SignatureDoesNotMatch`).
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    /// The signature matched but the request is outside its time window ("Signature
    /// expired: ..." / "Signature not yet current: ..."): `InvalidSignatureException`
    /// (STS: `SignatureDoesNotMatch`).
    #[error("expired: {0}")]
    Expired(String),
    /// The key store failed: a server error, not the caller's.
    #[error("key lookup failed: {0}")]
    Lookup(String),
}

/// AWS's text for a signature that does not match.
pub const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. \
                                    Check your AWS Secret Access Key and signing method. Consult the service \
                                    documentation for details.";
/// AWS's text for an unknown access key.
pub const UNRECOGNIZED_MESSAGE: &str = "The security token included in the request is invalid.";

impl AuthError {
    /// AWS's message for this refusal (the default texts of Lambda and API Gateway).
    pub fn message(&self) -> String {
        match self {
            AuthError::Missing => "Missing Authentication Token".to_string(),
            AuthError::UnrecognizedClient => UNRECOGNIZED_MESSAGE.to_string(),
            AuthError::Incomplete(m) | AuthError::InvalidSignature(m) | AuthError::Expired(m) => m.clone(),
            AuthError::Lookup(m) => format!("Could not read the access keys: {m}"),
        }
    }

    /// A short name for logs; carries nothing from the request.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Incomplete(_) => "incomplete",
            AuthError::UnrecognizedClient => "unrecognized-key",
            AuthError::InvalidSignature(_) => "bad-signature",
            AuthError::Expired(_) => "expired",
            AuthError::Lookup(_) => "key-store",
        }
    }

    fn mismatch() -> AuthError {
        AuthError::InvalidSignature(MISMATCH_MESSAGE.to_string())
    }
}

/// Verifies the SigV4 signature of a request.
///
/// - `req`: method, raw path and query, headers, as received;
/// - `body`: the whole body (its SHA-256 is part of the signature);
/// - `lookup`: finds an access key id's [`Key`]; `Ok(None)` for an unknown key;
/// - `now`: the current time (a parameter, so tests and fuzzers are deterministic);
/// - `opts`: the service the scope must name and the clock window.
///
/// Checks, in order: the signature's form ([`AuthError::Missing`],
/// [`AuthError::Incomplete`]), its scope ([`AuthError::InvalidSignature`]), the key
/// ([`AuthError::UnrecognizedClient`]), the signature itself, then the time window
/// ([`AuthError::Expired`]). Returns who signed.
pub fn verify<F>(
    req: RequestParts<'_>,
    body: &[u8],
    lookup: F,
    now: SystemTime,
    opts: &Options,
) -> Result<VerifiedCaller, AuthError>
where
    F: FnOnce(&str) -> Result<Option<Key>, LookupError>,
{
    let sig = parse(req.headers, req.query)?;
    let cred = &sig.credential;
    check_scope(&sig, opts)?;
    if has_security_token(req) {
        // Portico issues no temporary credentials: a session token is never valid.
        return Err(AuthError::UnrecognizedClient);
    }
    let key = lookup(&cred.access_key_id).map_err(|e| AuthError::Lookup(e.0))?.ok_or(AuthError::UnrecognizedClient)?;
    let payload_hash = payload_hash(req.headers, body)?;
    let canonical = canonical_request(req, &sig.signed_headers, &payload_hash, sig.form);
    let to_sign = string_to_sign(&sig.timestamp, &cred.scope(), &canonical);
    let signing = remembered_signing_key(&key.secret_access_key, &cred.date, &cred.region, &cred.service);
    let expected = hmac(&signing, to_sign.as_bytes());
    let Some(provided) = decode_hex32(&sig.signature) else {
        return Err(AuthError::mismatch());
    };
    if !bool::from(expected.ct_eq(&provided)) {
        return Err(AuthError::mismatch());
    }
    check_time(&sig, now, opts)?;
    Ok(VerifiedCaller {
        access_key_id: cred.access_key_id.clone(),
        account_id: key.account_id,
        region: cred.region.clone(),
        service: cred.service.clone(),
        signed_at: sig.signed_at,
        form: sig.form,
    })
}

/// What can be checked of a request before its body is read: that it carries a
/// well-formed signature ([`AuthError::Missing`], [`AuthError::Incomplete`]) scoped to
/// `opts.service` ([`AuthError::InvalidSignature`]), no session token, and a key that
/// exists ([`AuthError::UnrecognizedClient`]). A listener calls it on the request head
/// so that a large upload from an unsigned or unknown caller is refused without being
/// buffered; [`verify`] then checks the signature itself over the whole body.
pub fn precheck<F>(req: RequestParts<'_>, lookup: F, opts: &Options) -> Result<(), AuthError>
where
    F: FnOnce(&str) -> Result<Option<Key>, LookupError>,
{
    let sig = parse(req.headers, req.query)?;
    check_scope(&sig, opts)?;
    if has_security_token(req) {
        return Err(AuthError::UnrecognizedClient);
    }
    match lookup(&sig.credential.access_key_id) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(AuthError::UnrecognizedClient),
        Err(e) => Err(AuthError::Lookup(e.0)),
    }
}

/// The scope must name the expected service, a plausible region, the SigV4 terminator,
/// and the date of the request's own timestamp.
fn check_scope(sig: &Signature, opts: &Options) -> Result<(), AuthError> {
    let cred = &sig.credential;
    if cred.terminator != TERMINATOR {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            cred.terminator
        )));
    }
    if cred.service != opts.service {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{}'. ",
            opts.service
        )));
    }
    if !valid_region(&cred.region) {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            cred.region
        )));
    }
    let day = sig.timestamp.get(..8).unwrap_or_default();
    if cred.date != day {
        return Err(AuthError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{}'.",
            cred.date, sig.timestamp
        )));
    }
    Ok(())
}

/// A region name as AWS spells them: lower-case letters, digits and dashes, starting
/// with a letter (`us-east-1`, `eu-central-2`, `local`).
pub fn valid_region(r: &str) -> bool {
    (1..=32).contains(&r.len())
        && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && r.as_bytes()[0].is_ascii_lowercase()
}

fn has_security_token(req: RequestParts<'_>) -> bool {
    req.headers.contains_key("x-amz-security-token")
        || req.query.is_some_and(|q| {
            q.split('&').any(|p| {
                let name = p.split('=').next().unwrap_or_default();
                canonical::decode(name).eq_ignore_ascii_case(b"X-Amz-Security-Token")
            })
        })
}

/// The hex SHA-256 of the body. A client may declare it in `x-amz-content-sha256`; a
/// declaration that is not the body's hash (`UNSIGNED-PAYLOAD`, `STREAMING-...`, or a
/// wrong hash) is refused, so the body is always covered by the signature.
fn payload_hash(headers: &http::HeaderMap, body: &[u8]) -> Result<String, AuthError> {
    let actual = hex(&Sha256::digest(body));
    match headers.get("x-amz-content-sha256") {
        None => Ok(actual),
        Some(declared) if declared.as_bytes().eq_ignore_ascii_case(actual.as_bytes()) => {
            // The client signed what it declared: keep its spelling (case).
            Ok(String::from_utf8_lossy(declared.as_bytes()).into_owned())
        }
        Some(declared)
            if declared.as_bytes() == b"UNSIGNED-PAYLOAD" || declared.as_bytes().starts_with(b"STREAMING-") =>
        {
            Err(AuthError::InvalidSignature(format!(
                "Portico requires a signed payload: x-amz-content-sha256 must be the SHA-256 of the body, not '{}'.",
                String::from_utf8_lossy(declared.as_bytes())
            )))
        }
        Some(_) => Err(AuthError::InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".to_string(),
        )),
    }
}

fn check_time(sig: &Signature, now: SystemTime, opts: &Options) -> Result<(), AuthError> {
    let now = unix_seconds(now);
    let skew = i64::try_from(opts.max_skew.as_secs()).unwrap_or(i64::MAX / 4);
    let minutes = skew / 60;
    let t = sig.signed_at;
    if t > now.saturating_add(skew) {
        return Err(AuthError::Expired(format!(
            "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
            sig.timestamp,
            format_amz_date(now.saturating_add(skew)),
            format_amz_date(now)
        )));
    }
    match sig.expires {
        // Presigned: good until its own expiry.
        Some(expires) => {
            let expires = i64::try_from(expires).unwrap_or(i64::MAX / 4);
            if t.saturating_add(expires) < now {
                return Err(AuthError::Expired(format!(
                    "Signature expired: {} is now earlier than {} ({} - {expires} sec.)",
                    sig.timestamp,
                    format_amz_date(now.saturating_sub(expires)),
                    format_amz_date(now)
                )));
            }
        }
        None => {
            if t < now.saturating_sub(skew) {
                return Err(AuthError::Expired(format!(
                    "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
                    sig.timestamp,
                    format_amz_date(now.saturating_sub(skew)),
                    format_amz_date(now)
                )));
            }
        }
    }
    Ok(())
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 4),
    }
}

/// The string to sign: algorithm, timestamp, scope and the hash of the canonical request.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!("{ALGORITHM}\n{timestamp}\n{scope}\n{}", hex(&Sha256::digest(canonical_request)))
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The signing key of `secret` for one day, region and service: the HMAC chain
/// `AWS4{secret}` → date → region → service → `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, TERMINATOR.as_bytes())
}

/// A signing key derived lately (see [`remembered_signing_key`]).
struct RememberedKey {
    secret: String,
    date: String,
    region: String,
    service: String,
    key: [u8; 32],
}

/// Signing keys derived lately, newest last. A client signs every call of a day with
/// the same key, so the HMAC chain (four HMACs: a third of a GET's verification) is
/// worth remembering; it is a pure function of its inputs, so remembering it changes no
/// outcome. Bounded: the oldest is forgotten first.
static SIGNING_KEYS: std::sync::Mutex<Vec<RememberedKey>> = std::sync::Mutex::new(Vec::new());
/// How many signing keys are remembered: every key of a busy data dir, for two days.
const MAX_SIGNING_KEYS: usize = 64;

/// [`signing_key`], remembered. The secret is compared in constant time; the date,
/// region and service are public.
fn remembered_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    // Entries are only ever pushed or removed whole: a poisoned lock is safe to reuse.
    let lock = || SIGNING_KEYS.lock().unwrap_or_else(|e| e.into_inner());
    let found = lock()
        .iter()
        .rev()
        .find(|k| {
            k.date == date
                && k.region == region
                && k.service == service
                && bool::from(k.secret.as_bytes().ct_eq(secret.as_bytes()))
        })
        .map(|k| k.key);
    if let Some(key) = found {
        return key;
    }
    let key = signing_key(secret, date, region, service);
    let mut keys = lock();
    if keys.len() >= MAX_SIGNING_KEYS {
        keys.remove(0);
    }
    keys.push(RememberedKey {
        secret: secret.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        key,
    });
    key
}

fn signature_bytes(secret: &str, date: &str, region: &str, service: &str, string_to_sign: &str) -> [u8; 32] {
    hmac(&signing_key(secret, date, region, service), string_to_sign.as_bytes())
}

/// What a client signs with: for tests and tools ([`Signer::authorization`]).
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The access key id.
    pub access_key_id: &'a str,
    /// Its secret.
    pub secret: &'a str,
    /// The region to scope the signature to.
    pub region: &'a str,
    /// The service to scope the signature to.
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`; the request must carry it as `X-Amz-Date` (or as `Date`).
    pub timestamp: &'a str,
}

impl Signer<'_> {
    /// Signs a request as a client would and returns the `Authorization` header value.
    /// The request must already carry `Host`, the timestamp, and every header named in
    /// `signed_headers` (lower-case, in canonical order).
    pub fn authorization(&self, req: RequestParts<'_>, body: &[u8], signed_headers: &[&str]) -> String {
        let date = self.timestamp.get(..8).unwrap_or_default();
        let names: Vec<String> = signed_headers.iter().map(|h| h.to_ascii_lowercase()).collect();
        let canonical = canonical_request(req, &names, &hex(&Sha256::digest(body)), Form::Header);
        let scope = format!("{date}/{}/{}/{TERMINATOR}", self.region, self.service);
        let to_sign = string_to_sign(self.timestamp, &scope, &canonical);
        let sig = hex(&signature_bytes(self.secret, date, self.region, self.service, &to_sign));
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={sig}",
            self.access_key_id,
            names.join(";")
        )
    }

    /// Presigns a request as botocore's `SigV4QueryAuth` does and returns the query
    /// string to send instead of `req.query`: the request's own parameters, then
    /// `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
    /// `X-Amz-SignedHeaders` and `X-Amz-Signature`. The request must carry `Host` and
    /// every header named in `signed_headers`; the body's hash is signed (Portico
    /// refuses `UNSIGNED-PAYLOAD`).
    pub fn presigned_query(&self, req: RequestParts<'_>, body: &[u8], expires: u64, signed_headers: &[&str]) -> String {
        let date = self.timestamp.get(..8).unwrap_or_default();
        let names: Vec<String> = signed_headers.iter().map(|h| h.to_ascii_lowercase()).collect();
        let scope = format!("{date}/{}/{}/{TERMINATOR}", self.region, self.service);
        let credential = format!("{}/{scope}", self.access_key_id);
        let mut query = req.query.filter(|q| !q.is_empty()).map(|q| format!("{q}&")).unwrap_or_default();
        query.push_str(&format!(
            "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={}&X-Amz-Expires={expires}&X-Amz-SignedHeaders={}",
            canonical::encode(credential.as_bytes()),
            canonical::encode(self.timestamp.as_bytes()),
            canonical::encode(names.join(";").as_bytes()),
        ));
        let parts = RequestParts { query: Some(&query), ..req };
        let canonical = canonical_request(parts, &names, &hex(&Sha256::digest(body)), Form::Query);
        let to_sign = string_to_sign(self.timestamp, &scope, &canonical);
        let sig = hex(&signature_bytes(self.secret, date, self.region, self.service, &to_sign));
        format!("{query}&X-Amz-Signature={sig}")
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// 64 hex digits (either case) as 32 bytes.
fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
