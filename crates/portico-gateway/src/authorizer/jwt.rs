//! JWT authorizers: the token a request carries, checked as API Gateway checks it
//! ("Control access to HTTP APIs with JWT authorizers", Authorizing API requests):
//!
//! 1. the identity source (one `$request.header.*` or `$request.querystring.*`;
//!    `$request.header.Authorization` by default) holds the token, `Bearer ` optional;
//! 2. the token decodes: three segments, a JSON header with `alg` and `kid`;
//! 3. its signature checks out with the key of that `kid` in the issuer's JWKS, found
//!    through `{issuer}/.well-known/openid-configuration` → `jwks_uri`;
//! 4. its claims hold: `iss` is the authorizer's issuer; `aud` (or, only when there is
//!    no `aud`, `client_id`) is one of its audiences (no check when it lists none); `exp`
//!    is after now, `nbf` and `iat` not after now, with no leeway;
//! 5. when the route has `AuthorizationScopes`, the token's `scope` (space separated)
//!    or `scp` holds at least one of them.
//!
//! Steps 1–4 failing answer 401 `{"message":"Unauthorized"}` with
//! `www-authenticate: Bearer scope="{route scopes}" error="invalid_token"
//! error_description="..."`; step 5 answers 403 `{"message":"Forbidden"}` with
//! `error="insufficient_scope"`. Only the audience's description is AWS's published
//! text ("Troubleshooting issues with HTTP API JWT authorizers"); a missing token is
//! `error="missing" error_description="token not provided"` after the `missing: token not
//! provided` API Gateway writes to access logs; the others are Portico's wording.
//!
//! Algorithms: RS256/384/512, PS256/384/512, ES256 and ES384. AWS documents RSA only;
//! ECDSA is accepted too (Portico's issue asks for ES256). `none`, HMAC and EdDSA are
//! refused, and a JWKS's symmetric (`oct`), `OKP` and `use: enc` keys are never used.
//!
//! Keys are fetched on the request path but asynchronously, coalesced per issuer (one
//! fetch at a time, whoever asks), cached for an hour, and fetched again when a token
//! names a `kid` the cached set lacks, at most once a second per issuer (a failed fetch
//! is remembered as long). Fetches use AWS's limits: 1.5 s for the discovery document and
//! for the JWKS, 150 000 bytes of JWKS. Issuers and JWKS URIs are `https://` (as real
//! issuers are: Cognito, Auth0, Okta) or `http://`. TLS is rustls (TLS 1.2 and 1.3),
//! trusting the Mozilla roots of `webpki-roots` (never the host's store) plus the CAs of
//! `--extra-ca-certs`, for a private or local issuer; an issuer whose certificate none of
//! them vouches for has its tokens refused (401) with a warning saying so.
//!
//! Claims reach the integration as strings, as API Gateway passes them: numbers in their
//! JSON form (`"exp": "1787996002"`), booleans as `true`/`false`, and lists and objects as
//! Go prints them (`[a b]`, `map[k:v]`); `null` claims are left out. `scopes` is the
//! token's scopes when the route requires scopes, `null` otherwise.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portico_model::api::{Authorizer, IdentitySource};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, RootCertStore};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::{forbidden, unauthorized, Request, Resp};
use crate::payload::Authorization;

/// "Timeout for OpenID Connect discovery endpoint" (AWS's HTTP API quotas).
const DISCOVERY_TIMEOUT: Duration = Duration::from_millis(1500);
/// "Timeout for JSON Web Key Set endpoint".
const JWKS_TIMEOUT: Duration = Duration::from_millis(1500);
/// "Response size from JSON Web Key Set endpoint"; the discovery document gets the same.
const MAX_DOCUMENT_BYTES: usize = 150_000;
/// The least time between two fetches of one issuer's keys: a flood of tokens with
/// made-up `kid`s costs the issuer one request a second.
const MIN_REFRESH: Duration = Duration::from_secs(1);
/// How long a fetched key set is used before it is fetched again.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// A route with a JWT authorizer, compiled with its deployment.
#[derive(Debug)]
pub struct Route {
    /// Where the token is.
    source: IdentitySource,
    /// `JwtConfiguration.Issuer`.
    issuer: String,
    /// `JwtConfiguration.Audience`.
    audience: Vec<String>,
    /// The route's `AuthorizationScopes`.
    scopes: Vec<String>,
}

impl Route {
    /// The route's check, or why the authorizer cannot check anything.
    pub fn compile(route: &portico_model::Route, authorizer: &Authorizer) -> Result<Route, String> {
        let expr = authorizer.identity_source.first().map_or("$request.header.Authorization", String::as_str);
        let source = IdentitySource::parse(expr)
            .filter(|s| matches!(s, IdentitySource::Header(_) | IdentitySource::QueryString(_)))
            .ok_or_else(|| {
                format!("JWT authorizer {} has an unusable identity source {expr}", authorizer.authorizer_id)
            })?;
        let config = authorizer.jwt_configuration.as_ref();
        let issuer = config
            .and_then(|c| c.issuer.clone())
            .ok_or_else(|| format!("JWT authorizer {} has no issuer", authorizer.authorizer_id))?;
        Ok(Route {
            source,
            issuer,
            audience: config.map(|c| c.audience.clone()).unwrap_or_default(),
            scopes: route.authorization_scopes.clone(),
        })
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// 401, with this `error` and `error_description`.
    Unauthorized(&'static str, Cow<'static, str>),
    /// 403: the token has none of the route's scopes.
    Forbidden,
}

fn invalid(description: impl Into<Cow<'static, str>>) -> Refusal {
    Refusal::Unauthorized("invalid_token", description.into())
}

/// Checks the request's token; what the integration learns of it, or the refusal.
pub(super) async fn authorize(jwks: &Jwks, route: &Route, req: &Request<'_>) -> Result<Authorization, Resp> {
    match check(jwks, route, req).await {
        Ok(a) => Ok(a),
        Err(refusal) => {
            // Never the token itself: it is a credential.
            tracing::debug!(
                api = req.ctx.api_id,
                route = req.ctx.route_key,
                ?refusal,
                "JWT authorizer refused the request"
            );
            Err(refuse(route, &refusal))
        }
    }
}

/// The 401 or 403, with its `www-authenticate` challenge.
fn refuse(route: &Route, refusal: &Refusal) -> Resp {
    let scope = route.scopes.join(" ").replace(['"', '\\'], "");
    let (mut resp, challenge) = match refusal {
        Refusal::Unauthorized(error, description) => {
            (unauthorized(), format!(r#"Bearer scope="{scope}" error="{error}" error_description="{description}""#))
        }
        Refusal::Forbidden => (
            forbidden(),
            format!(
                r#"Bearer scope="{scope}" error="insufficient_scope" error_description="the token does not have any of the route's scopes""#
            ),
        ),
    };
    let value = HeaderValue::from_str(&challenge).unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, value);
    resp
}

async fn check(jwks: &Jwks, route: &Route, req: &Request<'_>) -> Result<Authorization, Refusal> {
    let missing = || Refusal::Unauthorized("missing", Cow::Borrowed("token not provided"));
    let raw = req.identity(&route.source).ok_or_else(missing)?;
    let token = strip_bearer(&raw);
    if token.is_empty() {
        return Err(missing());
    }
    let header = parse_header(token)?;
    let key = match jwks.key(&route.issuer, &header.kid).await {
        Ok(k) => k,
        Err(KeyError::Fetch(why)) => {
            tracing::warn!(api = req.ctx.api_id, issuer = %route.issuer, "JWT authorizer: the issuer's keys: {why}");
            return Err(invalid("the issuer's signing keys could not be fetched"));
        }
        Err(KeyError::UnknownKid) => return Err(invalid("no key of the issuer matches the token's kid")),
    };
    if key.alg.is_some_and(|a| a != header.alg) {
        return Err(invalid(format!("signing method {:?} is not the key's", header.alg)));
    }
    let claims = verify(token, header.alg, &key.decoding)?;
    let scopes = validate(&claims, route, now())?;
    Ok(Authorization::Jwt { claims: flatten(&claims), scopes })
}

/// The token without a `Bearer ` prefix (any case), which is optional.
fn strip_bearer(value: &str) -> &str {
    let value = value.trim();
    match value.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => value[7..].trim_start(),
        _ => value,
    }
}

/// Seconds since the epoch.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// What the token's header says.
#[derive(Debug, PartialEq)]
struct TokenHeader {
    alg: Algorithm,
    kid: String,
}

/// Reads the token's header, refusing algorithms API Gateway would not verify.
fn parse_header(token: &str) -> Result<TokenHeader, Refusal> {
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(invalid("token contains an invalid number of segments"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| invalid("the token's header is not base64url"))?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("the token's header is not JSON"))?;
    let name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        other => {
            // Echoed only when it is a plain name: the header value must stay well formed.
            let shown = if !other.is_empty() && other.len() <= 16 && other.bytes().all(|b| b.is_ascii_alphanumeric()) {
                other
            } else {
                "(unreadable)"
            };
            return Err(invalid(format!("signing method {shown} is invalid")));
        }
    };
    let kid = header.get("kid").and_then(Value::as_str).ok_or_else(|| invalid("the token has no kid"))?;
    Ok(TokenHeader { alg, kid: kid.to_string() })
}

/// Checks the signature; the claims, when it is good.
fn verify(token: &str, alg: Algorithm, key: &DecodingKey) -> Result<Map<String, Value>, Refusal> {
    // The claims are checked by `validate`, in AWS's order and with AWS's answers.
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => invalid("signature is invalid"),
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey => invalid(format!("signing method {alg:?} does not fit the issuer's key")),
            _ => invalid("the token is malformed"),
        }),
    }
}

/// Checks the claims at time `now` (seconds); the scopes the integration sees.
fn validate(claims: &Map<String, Value>, route: &Route, now: f64) -> Result<Option<Vec<String>>, Refusal> {
    if claims.get("iss").and_then(Value::as_str) != Some(route.issuer.as_str()) {
        return Err(invalid("issuer does not match"));
    }
    if !route.audience.is_empty() {
        let listed = |a: &str| route.audience.iter().any(|x| x == a);
        // `client_id` counts only when there is no `aud` at all.
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => listed(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(listed),
            Some(_) => false,
            None => claims.get("client_id").and_then(Value::as_str).is_some_and(listed),
        };
        if !ok {
            return Err(invalid("the token does not have a valid audience"));
        }
    }
    let time = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| invalid(format!("the token's {name} claim is not a number"))),
    };
    if time("exp")?.is_some_and(|exp| now >= exp) {
        return Err(invalid("the token has expired"));
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now) {
        return Err(invalid("the token is not valid yet"));
    }
    if time("iat")?.is_some_and(|iat| iat > now) {
        return Err(invalid("the token was issued in the future"));
    }
    if route.scopes.is_empty() {
        return Ok(None);
    }
    let held = token_scopes(claims);
    if !route.scopes.iter().any(|s| held.contains(s)) {
        return Err(Refusal::Forbidden);
    }
    Ok(Some(held))
}

/// The token's scopes: `scope` (space separated), else `scp` (a list, or space separated).
fn token_scopes(claims: &Map<String, Value>) -> Vec<String> {
    let split = |s: &str| s.split_whitespace().map(str::to_string).collect();
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => split(s),
        (_, Some(Value::String(s))) => split(s),
        (_, Some(Value::Array(list))) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// The claims as the integration sees them: every value as text.
fn flatten(claims: &Map<String, Value>) -> BTreeMap<String, String> {
    claims.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), text(v))).collect()
}

/// A claim's value as text: strings as they are, numbers in their JSON form, lists and
/// objects as Go's `%v` prints them (API Gateway's JWT authorizer is written in Go).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(text).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries.into_iter().map(|(k, v)| format!("{k}:{}", text(v))).collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// One verification key of an issuer.
#[derive(Debug, Clone)]
struct Key {
    decoding: DecodingKey,
    /// The key's `alg`, when the JWKS names one: tokens must then use it.
    alg: Option<Algorithm>,
}

/// An issuer's keys by `kid`.
#[derive(Debug, Default)]
struct KeySet {
    by_kid: HashMap<String, Key>,
}

/// Why no key was found.
#[derive(Debug)]
enum KeyError {
    /// The issuer's keys could not be fetched.
    Fetch(String),
    /// The keys were fetched; none has the token's `kid`.
    UnknownKid,
}

/// One fetch of an issuer's keys: started at `started`, done once `keys` is set.
/// Everyone who needs the issuer's keys meanwhile waits on the same cell.
#[derive(Debug)]
struct Fetch {
    started: Instant,
    keys: OnceCell<Result<Arc<KeySet>, String>>,
}

/// The client keys are fetched with: http, or https trusting `webpki-roots` and extra CAs.
type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The signing keys of JWT issuers: fetched when first needed, then cached.
#[derive(Debug)]
pub struct Jwks {
    client: HttpClient,
    /// The latest fetch of each issuer (maybe still running).
    issuers: Mutex<HashMap<String, Arc<Fetch>>>,
}

impl Jwks {
    /// An empty cache; https issuers are trusted when `webpki-roots` vouches for them.
    pub fn new() -> Jwks {
        Jwks::with_roots(webpki_roots())
    }

    /// An empty cache that also trusts the CA certificates of a PEM bundle (`pem`, the
    /// contents of `--extra-ca-certs`); an error when it holds none, or one that is unusable.
    pub fn with_extra_ca_certs(pem: &[u8]) -> Result<Jwks, String> {
        let mut roots = webpki_roots();
        let mut added = 0usize;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
            roots.add(cert).map_err(|e| format!("certificate {} is not usable as a CA: {e}", added + 1))?;
            added += 1;
        }
        if added == 0 {
            return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
        }
        Ok(Jwks::with_roots(roots))
    }

    fn with_roots(roots: RootCertStore) -> Jwks {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            // ring's provider has suites for both TLS 1.2 and 1.3: this holds by construction.
            .expect("the ring provider supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        Jwks { client: Client::builder(TokioExecutor::new()).build(connector), issuers: Mutex::new(HashMap::new()) }
    }

    /// The issuer's latest fetch; a new one when there is none, or when `stale` is still
    /// the latest (someone else may have started a newer one meanwhile: that one is used).
    fn latest(&self, issuer: &str, stale: Option<&Arc<Fetch>>) -> Arc<Fetch> {
        let mut issuers = self.issuers.lock().unwrap_or_else(|e| e.into_inner());
        match issuers.get(issuer) {
            Some(current) if !stale.is_some_and(|s| Arc::ptr_eq(s, current)) => current.clone(),
            _ => {
                let fresh = Arc::new(Fetch { started: Instant::now(), keys: OnceCell::new() });
                issuers.insert(issuer.to_string(), fresh.clone());
                fresh
            }
        }
    }

    /// What `fetch` found, running it if no one has yet.
    async fn run(&self, fetch: &Fetch, issuer: &str) -> Result<Arc<KeySet>, String> {
        fetch.keys.get_or_init(|| fetch_keys(&self.client, issuer)).await.clone()
    }

    /// The issuer's key named `kid`.
    async fn key(&self, issuer: &str, kid: &str) -> Result<Key, KeyError> {
        let fetch = self.latest(issuer, None);
        let keys = self.run(&fetch, issuer).await;
        let found = keys.as_ref().ok().and_then(|k| k.by_kid.get(kid)).cloned();
        let age = fetch.started.elapsed();
        if found.is_some() && age < MAX_AGE {
            return found.ok_or(KeyError::UnknownKid);
        }
        if age < MIN_REFRESH {
            return found.ok_or_else(|| missing(&keys));
        }
        // An unknown kid (keys rotated), a failed fetch, or an old key set: fetch again.
        let again = self.latest(issuer, Some(&fetch));
        let keys = self.run(&again, issuer).await;
        match keys.as_ref().ok().and_then(|k| k.by_kid.get(kid)) {
            Some(k) => Ok(k.clone()),
            // A failed refresh does not forget a key that was good an hour ago.
            None => found.ok_or_else(|| missing(&keys)),
        }
    }
}

impl Default for Jwks {
    fn default() -> Jwks {
        Jwks::new()
    }
}

/// The Mozilla roots of `webpki-roots`.
fn webpki_roots() -> RootCertStore {
    RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

fn missing(keys: &Result<Arc<KeySet>, String>) -> KeyError {
    match keys {
        Ok(_) => KeyError::UnknownKid,
        Err(why) => KeyError::Fetch(why.clone()),
    }
}

/// Fetches the issuer's keys through its OpenID discovery document.
async fn fetch_keys(client: &HttpClient, issuer: &str) -> Result<Arc<KeySet>, String> {
    let discovery = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let document = get_json(client, &discovery, DISCOVERY_TIMEOUT).await?;
    let jwks_uri =
        document.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| format!("{discovery} has no jwks_uri"))?;
    let set = get_json(client, jwks_uri, JWKS_TIMEOUT).await?;
    let keys = set.get("keys").and_then(Value::as_array).ok_or_else(|| format!("{jwks_uri} has no keys"))?;
    let by_kid: HashMap<String, Key> = keys.iter().filter_map(key_of).collect();
    tracing::info!(%issuer, keys = by_kid.len(), "fetched the JWT issuer's keys from {jwks_uri}");
    Ok(Arc::new(KeySet { by_kid }))
}

/// A JWKS entry usable for verifying signatures, by its `kid`; `None` for anything else.
fn key_of(entry: &Value) -> Option<(String, Key)> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
        || !matches!(jwk.algorithm, AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_))
    {
        return None;
    }
    let kid = jwk.common.key_id.clone()?;
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    let alg = match jwk.common.key_algorithm {
        Some(a) => Some(a.to_string().parse::<Algorithm>().ok()?),
        None => None,
    };
    Some((kid, Key { decoding, alg }))
}

/// GETs a JSON document from an http or https URL within `timeout`.
async fn get_json(client: &HttpClient, url: &str, timeout: Duration) -> Result<Value, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url} is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("{url} is not an http or https URL"));
    }
    let request = http::Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::new())
        .map_err(|e| format!("{url}: {e}"))?;
    let work = async {
        let response = client.request(request).await.map_err(|e| request_error(url, &e))?;
        if response.status() != StatusCode::OK {
            return Err(format!("{url} answered {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e} (at most {MAX_DOCUMENT_BYTES} bytes)"))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("{url} did not answer within {} ms", timeout.as_millis()))?
}

/// Why a request failed, saying so plainly when the server's certificate is not trusted.
fn request_error(url: &str, error: &hyper_util::client::legacy::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(tls) = tls_error(e) {
            return match tls {
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                    "{url}: the issuer's certificate is not trusted ({tls}): no CA of webpki-roots or \
                     --extra-ca-certs vouches for it"
                ),
                rustls::Error::InvalidCertificate(_) => {
                    format!("{url}: the issuer's certificate is not trusted ({tls})")
                }
                _ => format!("{url}: TLS failed: {tls}"),
            };
        }
        cause = e.source();
    }
    let mut text = format!("{url}: {error}");
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        let _ = write!(text, ": {e}");
        cause = e.source();
    }
    text
}

/// The rustls error `error` is, or holds: it reaches here inside an io::Error (maybe
/// nested), whose `source` skips it.
fn tls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = error.downcast_ref::<std::io::Error>()?.get_ref()?;
    tls_error(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(audience: &[&str], scopes: &[&str]) -> Route {
        Route {
            source: IdentitySource::Header("Authorization".into()),
            issuer: "http://issuer".into(),
            audience: audience.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    fn check(claims_json: Value, audience: &[&str], scopes: &[&str], expected: Result<Option<Vec<&str>>, Refusal>) {
        let got = validate(&claims(claims_json.clone()), &route(audience, scopes), 1000.5);
        let expected = expected.map(|s| s.map(|v| v.into_iter().map(str::to_string).collect::<Vec<_>>()));
        assert_eq!(got, expected, "{claims_json}");
    }

    #[test]
    fn claims_are_checked_in_aws_order() {
        let iss = "http://issuer";
        let bad = |d: &'static str| Err(invalid(d));
        check(json!({"iss": iss, "aud": "a", "exp": 2000}), &["a"], &[], Ok(None));
        check(json!({"iss": "http://other", "aud": "b"}), &["a"], &[], bad("issuer does not match"));
        check(json!({"aud": "a"}), &["a"], &[], bad("issuer does not match"));
        check(json!({"iss": iss, "aud": "b"}), &["a"], &[], bad("the token does not have a valid audience"));
        check(json!({"iss": iss, "aud": ["b", "a"]}), &["a"], &[], Ok(None));
        // client_id counts only without aud.
        check(json!({"iss": iss, "client_id": "a"}), &["a"], &[], Ok(None));
        check(
            json!({"iss": iss, "aud": "b", "client_id": "a"}),
            &["a"],
            &[],
            bad("the token does not have a valid audience"),
        );
        check(json!({"iss": iss}), &["a"], &[], bad("the token does not have a valid audience"));
        // No audience configured: no audience check.
        check(json!({"iss": iss, "aud": "zzz"}), &[], &[], Ok(None));
        check(json!({"iss": iss, "exp": 1000}), &[], &[], bad("the token has expired"));
        check(json!({"iss": iss, "exp": "soon"}), &[], &[], bad("the token's exp claim is not a number"));
        check(json!({"iss": iss, "nbf": 1001}), &[], &[], bad("the token is not valid yet"));
        check(json!({"iss": iss, "nbf": 1000, "iat": 1000}), &[], &[], Ok(None));
        check(json!({"iss": iss, "iat": 1001}), &[], &[], bad("the token was issued in the future"));
        // Scopes: at least one of the route's.
        check(json!({"iss": iss, "scope": "read write"}), &[], &["write", "admin"], Ok(Some(vec!["read", "write"])));
        check(json!({"iss": iss, "scp": ["read"]}), &[], &["read"], Ok(Some(vec!["read"])));
        check(json!({"iss": iss, "scope": "read"}), &[], &["admin"], Err(Refusal::Forbidden));
        check(json!({"iss": iss}), &[], &["admin"], Err(Refusal::Forbidden));
        // An expired token is 401 even when it also lacks the scope.
        check(json!({"iss": iss, "exp": 1}), &[], &["admin"], bad("the token has expired"));
    }

    #[test]
    fn headers() {
        let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let token = |h: Value| format!("{}.e30.c2ln", enc(h));
        assert_eq!(
            parse_header(&token(json!({"alg": "RS256", "kid": "k1"}))),
            Ok(TokenHeader { alg: Algorithm::RS256, kid: "k1".into() })
        );
        assert_eq!(parse_header(&token(json!({"alg": "ES256", "kid": "k"}))).map(|h| h.alg), Ok(Algorithm::ES256));
        assert_eq!(
            parse_header(&token(json!({"alg": "HS256", "kid": "k"}))),
            Err(invalid("signing method HS256 is invalid"))
        );
        assert_eq!(parse_header(&token(json!({"alg": "none"}))), Err(invalid("signing method none is invalid")));
        assert_eq!(
            parse_header(&token(json!({"alg": "a\"b"}))),
            Err(invalid("signing method (unreadable) is invalid"))
        );
        assert_eq!(parse_header(&token(json!({"alg": "RS256"}))), Err(invalid("the token has no kid")));
        assert_eq!(parse_header("abc"), Err(invalid("token contains an invalid number of segments")));
        assert_eq!(parse_header("a.b.c.d"), Err(invalid("token contains an invalid number of segments")));
        assert_eq!(parse_header("!!.b.c"), Err(invalid("the token's header is not base64url")));
    }

    #[test]
    fn extra_ca_certs_must_hold_usable_certificates() {
        let err = |pem: &[u8]| Jwks::with_extra_ca_certs(pem).err().unwrap_or_default();
        assert!(err(b"").contains("no PEM certificate"));
        assert!(err(b"hello\n").contains("no PEM certificate"));
        let junk =
            format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", URL_SAFE_NO_PAD.encode(b"x"));
        assert!(!err(junk.as_bytes()).is_empty());
    }

    #[test]
    fn bearer_prefix_is_optional() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("bearer  abc "), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer("Bearer"), "Bearer");
    }

    #[test]
    fn claims_become_text() {
        let c = claims(json!({
            "sub": "u1", "exp": 1787996002, "ratio": 1.5, "admin": true, "none": null,
            "groups": ["a", "b"], "addr": {"z": 1, "a": "x"}
        }));
        let flat = flatten(&c);
        let expected: BTreeMap<String, String> = [
            ("addr", "map[a:x z:1]"),
            ("admin", "true"),
            ("exp", "1787996002"),
            ("groups", "[a b]"),
            ("ratio", "1.5"),
            ("sub", "u1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(flat, expected);
    }

    #[test]
    fn challenges() {
        let r = route(&[], &["read", "wr\"ite"]);
        let resp = refuse(&r, &invalid("the token has expired"));
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[http::header::WWW_AUTHENTICATE],
            r#"Bearer scope="read write" error="invalid_token" error_description="the token has expired""#
        );
        let resp = refuse(&r, &Refusal::Forbidden);
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
}
