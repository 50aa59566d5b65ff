//! `AWS_IAM` routes: the caller signs the data-plane request with SigV4 for the service
//! `execute-api` ("Control access to HTTP APIs with IAM authorization"), and the
//! signature is checked against Portico's access keys ([`KeyLookup`], given by the
//! binary over its key store: this crate never sees the store).
//!
//! - The signature covers the body's SHA-256, so the gateway reads the body (still within
//!   the 10 MB limit) before calling [`authorize`]. The path checked is the one the client
//!   signed: as received, stage and any `/execute-api/{apiId}` prefix included; `Host` is
//!   always signed, so a signature for one API does not replay against another.
//! - The credential scope must name the API's region, as AWS's regional endpoints do.
//! - Portico has no IAM policies: a key acts as its account's root, and only the API's
//!   own account may call it. AWS would let another account's principal in when an IAM
//!   policy allowed `execute-api:Invoke`; Portico refuses it with 403 `Forbidden`.
//! - Refusals are 403 with API Gateway's data-plane bodies: `{"message":"Forbidden"}`
//!   for an unsigned request or another account's key, AWS's SigV4 texts otherwise
//!   ("The security token included in the request is invalid.", "The request signature
//!   we calculated does not match ...", "Signature expired: ..."). A key store that
//!   cannot be read is a 500.
//! - Who signed goes to the integration: `requestContext.authorizer.iam` (2.0) or the
//!   `requestContext.identity` caller members (1.0). A key is its account's root, so
//!   `userArn` is `arn:aws:iam::{account}:root`; `userId` and `callerId` are the access
//!   key id, as Portico's `GetCallerIdentity` answers (AWS's root answers its account id).
//!
//! Logs name the refusal's kind and the access key id, never a signature.

use std::time::SystemTime;

use portico_auth::{AuthError, KeyLookup, Options, RequestParts};
use portico_model::Scope;

use super::{forbidden, internal_error, Resp};
use crate::payload::Authorization;

/// The SigV4 service name of API Gateway's data plane.
pub const SERVICE: &str = "execute-api";

/// Why a request to an `AWS_IAM` route is refused: what API Gateway answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 403 `{"message":"Forbidden"}`: unsigned, or a key of another account.
    Forbidden,
    /// 403 `{"message": ...}`: AWS's text for a signature it cannot accept.
    Signature(String),
    /// 500: the keys could not be read (or the gateway has none).
    Internal,
}

impl Refusal {
    /// The answer the caller gets.
    pub fn response(&self) -> Resp {
        match self {
            Refusal::Forbidden => forbidden(),
            Refusal::Internal => crate::metrics::because(
                internal_error(),
                "AWS_IAM route: the gateway could not read the access keys to check the signature",
                None,
            ),
            Refusal::Signature(text) => {
                let mut r = forbidden();
                let body = serde_json::json!({ "message": text }).to_string();
                *r.body_mut() = http_body_util::Full::new(bytes::Bytes::from(body));
                r
            }
        }
    }
}

/// Checks the SigV4 signature of a request to an `AWS_IAM` route of an API in `api`'s
/// account and region, over its whole `body`, at `now`. `keys` is `None` when the gateway
/// was given no key lookup: every such request is then a 500.
pub fn authorize(
    keys: Option<&dyn KeyLookup>,
    parts: &http::request::Parts,
    body: &[u8],
    api: &Scope,
    now: SystemTime,
) -> Result<Authorization, Refusal> {
    let Some(keys) = keys else {
        tracing::warn!("an AWS_IAM route was called but the gateway has no access keys to check it: answering 500");
        return Err(Refusal::Internal);
    };
    let req = RequestParts::from_parts(parts);
    let key_id = || portico_auth::parse(&parts.headers, parts.uri.query()).ok().map(|s| s.credential.access_key_id);
    let caller = match portico_auth::verify(req, body, |id| keys.lookup(id), now, &Options::new(SERVICE)) {
        Ok(c) => c,
        Err(e) => {
            match &e {
                AuthError::Lookup(m) => tracing::error!("access keys could not be read: {m}"),
                _ => tracing::debug!(
                    kind = e.kind(),
                    key = key_id().as_deref().unwrap_or("-"),
                    "AWS_IAM route refused a request"
                ),
            }
            return Err(refusal(&e));
        }
    };
    if caller.region != api.region {
        tracing::debug!(key = %caller.access_key_id, region = %caller.region, "AWS_IAM route: signed for another region");
        return Err(Refusal::Signature(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            caller.region
        )));
    }
    if caller.account_id != api.account_id {
        // No IAM policy can grant another account's principal `execute-api:Invoke` here.
        tracing::debug!(key = %caller.access_key_id, account = %caller.account_id, "AWS_IAM route: key of another account");
        return Err(Refusal::Forbidden);
    }
    Ok(Authorization::Iam {
        user_arn: format!("arn:aws:iam::{}:root", caller.account_id),
        access_key: caller.access_key_id,
        account_id: caller.account_id,
    })
}

/// API Gateway's answer to a refused signature.
fn refusal(e: &AuthError) -> Refusal {
    match e {
        AuthError::Missing => Refusal::Forbidden,
        AuthError::Lookup(_) => Refusal::Internal,
        AuthError::Incomplete(_)
        | AuthError::UnrecognizedClient
        | AuthError::InvalidSignature(_)
        | AuthError::Expired(_) => Refusal::Signature(e.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http_body_util::BodyExt;
    use portico_auth::{Key, LookupError, Signer};
    use std::time::Duration;

    const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const OTHER: &str = "AKIAOTHERACCOUNTKEY1";
    /// 2026-01-02T03:04:05Z.
    const NOW: u64 = 1_767_323_045;

    #[derive(Debug)]
    struct Keys;

    impl KeyLookup for Keys {
        fn lookup(&self, id: &str) -> Result<Option<Key>, LookupError> {
            Ok(match id {
                AKID => Some(Key { secret_access_key: SECRET.into(), account_id: "111122223333".into() }),
                OTHER => Some(Key { secret_access_key: SECRET.into(), account_id: "444455556666".into() }),
                "AKIABROKENSTORE00000" => return Err(LookupError("disk".into())),
                _ => None,
            })
        }
    }

    fn api() -> Scope {
        Scope { account_id: "111122223333".into(), region: "us-east-1".into() }
    }

    /// `POST /dev/pets?x=1` with `body`, signed with `(key, secret)` for `region`.
    fn request(key: &str, secret: &str, region: &str, body: &[u8]) -> http::request::Parts {
        let (mut parts, ()) = http::Request::post("/dev/pets?x=1")
            .header("host", "abc123defg.execute-api.localhost:4750")
            .header("x-amz-date", "20260102T030405Z")
            .body(())
            .expect("a request")
            .into_parts();
        let signer = Signer { access_key_id: key, secret, region, service: SERVICE, timestamp: "20260102T030405Z" };
        let auth = signer.authorization(RequestParts::from_parts(&parts), body, &["host", "x-amz-date"]);
        parts.headers.insert("authorization", HeaderValue::from_str(&auth).expect("ascii"));
        parts
    }

    fn check(parts: &http::request::Parts, body: &[u8]) -> Result<Authorization, Refusal> {
        authorize(Some(&Keys), parts, body, &api(), SystemTime::UNIX_EPOCH + Duration::from_secs(NOW))
    }

    #[test]
    fn a_signed_request_names_its_caller() {
        let parts = request(AKID, SECRET, "us-east-1", b"{}");
        assert_eq!(
            check(&parts, b"{}"),
            Ok(Authorization::Iam {
                access_key: AKID.into(),
                account_id: "111122223333".into(),
                user_arn: "arn:aws:iam::111122223333:root".into(),
            })
        );
    }

    #[test]
    fn refusals() {
        let mut unsigned = request(AKID, SECRET, "us-east-1", b"");
        unsigned.headers.remove("authorization");
        assert_eq!(check(&unsigned, b""), Err(Refusal::Forbidden));
        let mismatch = Err(Refusal::Signature(portico_auth::MISMATCH_MESSAGE.into()));
        assert_eq!(check(&request(AKID, "wrong", "us-east-1", b""), b""), mismatch);
        // The body is signed.
        assert_eq!(check(&request(AKID, SECRET, "us-east-1", b"{}"), b"{ }"), mismatch);
        assert_eq!(
            check(&request("AKIAUNKNOWNKEY000000", SECRET, "us-east-1", b""), b""),
            Err(Refusal::Signature("The security token included in the request is invalid.".into()))
        );
        assert_eq!(check(&request(OTHER, SECRET, "us-east-1", b""), b""), Err(Refusal::Forbidden));
        assert_eq!(
            check(&request(AKID, SECRET, "eu-west-1", b""), b""),
            Err(Refusal::Signature("Credential should be scoped to a valid region, not 'eu-west-1'. ".into()))
        );
        assert_eq!(check(&request("AKIABROKENSTORE00000", SECRET, "us-east-1", b""), b""), Err(Refusal::Internal));
        let mut bearer = request(AKID, SECRET, "us-east-1", b"");
        bearer.headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert!(matches!(check(&bearer, b""), Err(Refusal::Signature(_))));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
        let parts = request(AKID, SECRET, "us-east-1", b"");
        assert_eq!(authorize(None, &parts, b"", &api(), at), Err(Refusal::Internal));
    }

    #[test]
    fn refusals_are_api_gateway_bodies() {
        let body = |r: Refusal| {
            let resp = r.response();
            let bytes = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime")
                .block_on(resp.into_body().collect())
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        assert_eq!(body(Refusal::Forbidden), r#"{"message":"Forbidden"}"#);
        assert_eq!(body(Refusal::Signature("a \"b\"".into())), r#"{"message":"a \"b\""}"#);
        assert_eq!(Refusal::Signature(String::new()).response().status(), http::StatusCode::FORBIDDEN);
        assert_eq!(Refusal::Internal.response().status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    }
}
