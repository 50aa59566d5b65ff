//! Golden requests signed by botocore 1.44 (`SigV4Auth` / `SigV4QueryAuth`, the AWS CLI's
//! signer) at a fixed time, AWS's own `get-vanilla` example, and the refusals.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::*;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const ACCOUNT: &str = "111122223333";
/// 2026-01-02T03:04:05Z, when the golden requests were signed.
const SIGNED_AT: u64 = 1_767_323_045;

struct Req {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn new(method: Method, path: &str, query: Option<&str>, headers: &[(&str, &str)], body: &[u8]) -> Req {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        Req { method, path: path.into(), query: query.map(str::to_string), headers: map, body: body.to_vec() }
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts { method: &self.method, path: &self.path, query: self.query.as_deref(), headers: &self.headers }
    }

    fn verify_at(&self, service: &str, now: SystemTime) -> Result<VerifiedCaller, AuthError> {
        verify(self.parts(), &self.body, lookup, now, &Options::new(service))
    }

    fn verify(&self, service: &str) -> Result<VerifiedCaller, AuthError> {
        self.verify_at(service, at(SIGNED_AT + 10))
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers.insert(name, HeaderValue::from_str(value).expect("value"));
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn lookup(akid: &str) -> Result<Option<Key>, LookupError> {
    Ok((akid == AKID).then(|| Key { secret_access_key: SECRET.into(), account_id: ACCOUNT.into() }))
}

const HOST: (&str, &str) = ("host", "127.0.0.1:4750");
const DATE: (&str, &str) = ("x-amz-date", "20260102T030405Z");
const UA: (&str, &str) = ("user-agent", "Botocore/1.44.8");

fn list_functions() -> Req {
    Req::new(Method::GET, "/2015-03-31/functions", None, &[UA, DATE, HOST, ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=09769a6f5c5e76bc4b621ef3ce50cd907c6037d0bb6ad4d6e0248f867d68cc51")], b"")
}

fn get_function_by_arn() -> Req {
    Req::new(
        Method::GET,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111122223333%3Afunction%3Ahello",
        Some("Qualifier=%24LATEST"),
        &[UA, DATE, HOST, ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=0bef5d2bb56319521166b6db7e5b7a2b824722f258b515fd75edceeeb4876889")],
        b"",
    )
}

fn invoke() -> Req {
    Req::new(
        Method::POST,
        "/2015-03-31/functions/hello/invocations",
        None,
        &[("x-amz-invocation-type", "RequestResponse"), ("x-amz-log-type", "Tail"), UA, DATE, HOST, ("content-length", "8"), ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date;x-amz-invocation-type;x-amz-log-type, Signature=cefa666681a21bd5f9e9437cd2d40c3d0a13e4c5bcd572b35614b22995e772a4")],
        br#"{"a": 1}"#,
    )
}

fn create_api() -> Req {
    Req::new(
        Method::POST,
        "/v2/apis",
        None,
        &[("content-type", "application/json"), UA, DATE, HOST, ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/apigateway/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=4ba9d0851a5c841084a5c6494e5f988b5538fbbca77197c9a991a309be649d12")],
        br#"{"name": "my api", "protocolType": "HTTP"}"#,
    )
}

fn get_caller_identity() -> Req {
    Req::new(
        Method::POST,
        "/",
        None,
        &[("content-type", "application/x-www-form-urlencoded; charset=utf-8"), UA, DATE, HOST, ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=f446c2a1a158f7a27d6f4220eedc88da99a848781e8852622d59328cf7a071de")],
        b"Action=GetCallerIdentity&Version=2011-06-15",
    )
}

fn describe_log_groups() -> Req {
    Req::new(
        Method::POST,
        "/",
        None,
        &[("x-amz-target", "Logs_20140328.DescribeLogGroups"), ("content-type", "application/x-amz-json-1.1"), UA, DATE, HOST, ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/logs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=bd192e9b12c4b5a37c7fbdece4ff88997d2c267acda6a7587818f095931a36db")],
        br#"{"logGroupNamePrefix": "/aws/lambda/"}"#,
    )
}

fn presigned_list() -> Req {
    Req::new(
        Method::GET,
        "/2015-03-31/functions",
        Some("MaxItems=5&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Fus-east-1%2Flambda%2Faws4_request&X-Amz-Date=20260102T030405Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=3593f84fb21871f7d386938bdd9a14321a6c0f6416752096339cd8d11abd4fdf"),
        &[HOST, UA],
        b"",
    )
}

#[test]
fn botocore_requests_verify() {
    for (req, service) in [
        (list_functions(), "lambda"),
        (get_function_by_arn(), "lambda"),
        (invoke(), "lambda"),
        (create_api(), "apigateway"),
        (get_caller_identity(), "sts"),
        (describe_log_groups(), "logs"),
        (presigned_list(), "lambda"),
    ] {
        let caller = req.verify(service).unwrap_or_else(|e| panic!("{} {}: {e:?}", req.method, req.path));
        assert_eq!(
            (
                caller.access_key_id.as_str(),
                caller.account_id.as_str(),
                caller.region.as_str(),
                caller.service.as_str()
            ),
            (AKID, ACCOUNT, "us-east-1", service)
        );
        assert_eq!(caller.signed_at, 1_767_323_045);
    }
    assert_eq!(presigned_list().verify("lambda").map(|c| c.form), Ok(Form::Query));
}

#[test]
fn aws_get_vanilla_example() {
    // AWS's SigV4 test suite, `get-vanilla`.
    let req =
        Req::new(Method::GET, "/", None, &[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")], b"");
    let auth = Signer {
        access_key_id: AKID,
        secret: SECRET,
        region: "us-east-1",
        service: "service",
        timestamp: "20150830T123600Z",
    }
    .authorization(req.parts(), b"", &["host", "x-amz-date"]);
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn sign_then_verify_round_trips() {
    let mut req = Req::new(
        Method::PUT,
        "/2015-03-31/functions/f%3A1/code",
        Some("b=2&a=1&a=0"),
        &[HOST, DATE, ("x-amz-meta", "  a   b ")],
        b"zip",
    );
    req.headers.append("x-amz-meta", HeaderValue::from_static("c"));
    let auth = Signer {
        access_key_id: AKID,
        secret: SECRET,
        region: "eu-west-3",
        service: "lambda",
        timestamp: "20260102T030405Z",
    }
    .authorization(req.parts(), b"zip", &["host", "x-amz-date", "x-amz-meta"]);
    req.set("authorization", &auth);
    let caller = req.verify("lambda").expect("verifies");
    assert_eq!(caller.region, "eu-west-3");
}

#[test]
fn tampering_is_refused() {
    let mismatch = Err(AuthError::InvalidSignature(MISMATCH_MESSAGE.into()));
    let mut r = invoke();
    r.body = br#"{"a": 2}"#.to_vec();
    assert_eq!(r.verify("lambda"), mismatch, "body");
    let mut r = invoke();
    r.path = "/2015-03-31/functions/other/invocations".into();
    assert_eq!(r.verify("lambda"), mismatch, "path");
    let mut r = invoke();
    r.set("x-amz-invocation-type", "Event");
    assert_eq!(r.verify("lambda"), mismatch, "signed header");
    let mut r = invoke();
    r.method = Method::PUT;
    assert_eq!(r.verify("lambda"), mismatch, "method");
    let mut r = get_function_by_arn();
    r.query = Some("Qualifier=1".into());
    assert_eq!(r.verify("lambda"), mismatch, "query");
    let mut r = invoke();
    r.set("host", "evil.example:4750");
    assert_eq!(r.verify("lambda"), mismatch, "host");
    let mut r = presigned_list();
    r.query = r.query.map(|q| q.replace("MaxItems=5", "MaxItems=50"));
    assert_eq!(r.verify("lambda"), mismatch, "presigned query");
    // An unsigned header may change: it is not part of the signature.
    let mut r = invoke();
    r.set("user-agent", "curl/8");
    assert!(r.verify("lambda").is_ok());
}

/// Remembered signing keys change no outcome: each secret gets its own, for one scope,
/// even when another secret's key for that scope was derived just before (and when
/// far more keys than are remembered were derived in between).
#[test]
fn remembered_signing_keys_are_per_secret_and_scope() {
    let req = list_functions();
    let key = |secret: &'static str| {
        move |_: &str| Ok(Some(Key { secret_access_key: secret.into(), account_id: ACCOUNT.into() }))
    };
    let opts = Options::new("lambda");
    let mismatch = Err(AuthError::InvalidSignature(MISMATCH_MESSAGE.into()));
    for _ in 0..2 {
        assert!(verify(req.parts(), b"", key(SECRET), at(SIGNED_AT), &opts).is_ok());
        assert_eq!(verify(req.parts(), b"", key("not-the-secret"), at(SIGNED_AT), &opts), mismatch);
        assert!(verify(req.parts(), b"", key(SECRET), at(SIGNED_AT), &opts).is_ok());
    }
    for i in 0..(2 * MAX_SIGNING_KEYS) {
        let secret = format!("secret-{i}");
        assert_eq!(
            remembered_signing_key(&secret, "20260102", "us-east-1", "lambda"),
            signing_key(&secret, "20260102", "us-east-1", "lambda")
        );
    }
    assert_eq!(
        remembered_signing_key(SECRET, "20260102", "us-east-1", "lambda"),
        signing_key(SECRET, "20260102", "us-east-1", "lambda")
    );
    assert_ne!(
        remembered_signing_key(SECRET, "20260103", "us-east-1", "lambda"),
        remembered_signing_key(SECRET, "20260102", "us-east-1", "lambda")
    );
    assert_eq!(
        remembered_signing_key(SECRET, "20260102", "eu-west-1", "sts"),
        signing_key(SECRET, "20260102", "eu-west-1", "sts")
    );
}

#[test]
fn wrong_secret_unknown_key_and_lookup_failure() {
    let req = list_functions();
    let other = |_: &str| Ok(Some(Key { secret_access_key: "not-the-secret".into(), account_id: ACCOUNT.into() }));
    assert_eq!(
        verify(req.parts(), b"", other, at(SIGNED_AT), &Options::new("lambda")),
        Err(AuthError::InvalidSignature(MISMATCH_MESSAGE.into()))
    );
    assert_eq!(
        verify(req.parts(), b"", |_| Ok(None), at(SIGNED_AT), &Options::new("lambda")),
        Err(AuthError::UnrecognizedClient)
    );
    assert_eq!(
        verify(req.parts(), b"", |_| Err(LookupError("disk".into())), at(SIGNED_AT), &Options::new("lambda")),
        Err(AuthError::Lookup("disk".into()))
    );
}

#[test]
fn clock_window() {
    let req = list_functions();
    assert!(req.verify_at("lambda", at(SIGNED_AT + 300)).is_ok());
    assert!(req.verify_at("lambda", at(SIGNED_AT - 300)).is_ok());
    assert_eq!(
        req.verify_at("lambda", at(SIGNED_AT + 301)),
        Err(AuthError::Expired(
            "Signature expired: 20260102T030405Z is now earlier than 20260102T030406Z (20260102T030906Z - 5 min.)"
                .into()
        ))
    );
    assert_eq!(
        req.verify_at("lambda", at(SIGNED_AT - 301)),
        Err(AuthError::Expired(
            "Signature not yet current: 20260102T030405Z is still later than 20260102T030404Z (20260102T025904Z + 5 min.)"
                .into()
        ))
    );
    let fifteen = Options::new("lambda").with_max_skew(Duration::from_secs(900));
    assert!(verify(req.parts(), b"", lookup, at(SIGNED_AT + 899), &fifteen).is_ok());
    // Presigned: good for X-Amz-Expires (900 s) from its date, however old.
    let p = presigned_list();
    assert!(p.verify_at("lambda", at(SIGNED_AT + 900)).is_ok());
    assert!(
        matches!(p.verify_at("lambda", at(SIGNED_AT + 901)), Err(AuthError::Expired(m)) if m.starts_with("Signature expired: 20260102T030405Z"))
    );
}

#[test]
fn scope_must_fit() {
    assert_eq!(
        list_functions().verify("apigateway"),
        Err(AuthError::InvalidSignature("Credential should be scoped to correct service: 'apigateway'. ".into()))
    );
    let mut r = list_functions();
    r.set("x-amz-date", "20260103T030405Z");
    assert_eq!(
        r.verify_at("lambda", at(SIGNED_AT + 86_400)),
        Err(AuthError::InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260102' != '20260103', from '20260103T030405Z'.".into()
        ))
    );
    for (cred, want) in [
        ("AKIDEXAMPLE/20260102/us-east-1/lambda/aws5_request", "valid terminator"),
        ("AKIDEXAMPLE/20260102/US_EAST/lambda/aws4_request", "valid region"),
    ] {
        let mut r = list_functions();
        r.set(
            "authorization",
            &format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;x-amz-date, Signature=00"),
        );
        assert!(matches!(r.verify("lambda"), Err(AuthError::InvalidSignature(m)) if m.contains(want)), "{cred}");
    }
}

#[test]
fn malformed_signatures_are_incomplete() {
    let incomplete = |auth: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![HOST, DATE, ("authorization", auth)];
        headers.extend_from_slice(extra);
        match Req::new(Method::GET, "/", None, &headers, b"").verify("lambda") {
            Err(AuthError::Incomplete(m)) => m,
            other => panic!("{auth}: {other:?}"),
        }
    };
    let m = incomplete("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/lambda/aws4_request", &[]);
    assert!(m.starts_with("Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 "), "{m}");
    let m = incomplete("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE /20260102/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00", &[]);
    assert!(m.contains("not a valid key=value pair (missing equal-sign)"), "{m}");
    let m = incomplete("Bearer eyJhbGciOi", &[]);
    assert!(m.starts_with("Unsupported AWS 'algorithm': 'Bearer'"), "{m}");
    let m = incomplete("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", &[]);
    assert!(m.starts_with("Credential must have exactly 5 slash-delimited elements"), "{m}");
    let m = incomplete("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/lambda/aws4_request, SignedHeaders=x-amz-date, Signature=00", &[]);
    assert!(m.contains("'Host' or ':authority' must be a 'SignedHeader'"), "{m}");
    let m = incomplete("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", &[("x-amz-target", "Logs_20140328.DeleteLogGroup")]);
    assert!(m.contains("'x-amz-target' is present but not signed"), "{m}");
    // No date at all.
    let r = Req::new(Method::GET, "/", None, &[HOST, ("authorization", "AWS4-HMAC-SHA256 Credential=A/20260102/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00")], b"");
    assert!(
        matches!(r.verify("lambda"), Err(AuthError::Incomplete(m)) if m.contains("either a 'X-Amz-Date' or a 'Date' header"))
    );
    let mut r = list_functions();
    r.set("x-amz-date", "2026-01-02T03:04:05Z");
    assert!(matches!(r.verify("lambda"), Err(AuthError::Incomplete(m)) if m.contains("ISO-8601 'basic format'")));
    let r = Req::new(Method::GET, "/", Some("X-Amz-Signature=00"), &[HOST], b"");
    assert!(matches!(r.verify("lambda"), Err(AuthError::Incomplete(m)) if m.contains("X-Amz-Expires")));
    let mut r = presigned_list();
    r.query = r.query.map(|q| q.replace("X-Amz-Expires=900", "X-Amz-Expires=604801"));
    assert!(matches!(r.verify("lambda"), Err(AuthError::Incomplete(_))));
    let mut r = presigned_list();
    r.set("authorization", "AWS4-HMAC-SHA256 x");
    assert!(matches!(r.verify("lambda"), Err(AuthError::Incomplete(m)) if m.starts_with("Found both")));
}

#[test]
fn missing_token_unsigned_payload_and_session_tokens() {
    let r = Req::new(Method::GET, "/2015-03-31/functions", Some("MaxItems=5"), &[HOST, UA], b"");
    assert_eq!(r.verify("lambda"), Err(AuthError::Missing));
    assert_eq!(AuthError::Missing.message(), "Missing Authentication Token");
    let mut r = Req::new(Method::GET, "/", None, &[HOST, DATE, ("x-amz-security-token", "FQoGZXIvYXdzE")], b"");
    let signer = Signer {
        access_key_id: AKID,
        secret: SECRET,
        region: "us-east-1",
        service: "lambda",
        timestamp: "20260102T030405Z",
    };
    let auth = signer.authorization(r.parts(), b"", &["host", "x-amz-date", "x-amz-security-token"]);
    r.set("authorization", &auth);
    assert_eq!(r.verify("lambda"), Err(AuthError::UnrecognizedClient));
    let mut r = presigned_list();
    r.query = r.query.map(|q| format!("{q}&X-Amz-Security-Token=abc"));
    assert_eq!(r.verify("lambda"), Err(AuthError::UnrecognizedClient));
    // An unsigned payload is refused whatever the signature.
    let mut r =
        Req::new(Method::POST, "/v2/apis", None, &[HOST, DATE, ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], b"{}");
    let auth = Signer {
        access_key_id: AKID,
        secret: SECRET,
        region: "us-east-1",
        service: "apigateway",
        timestamp: "20260102T030405Z",
    }
    .authorization(r.parts(), b"{}", &["host", "x-amz-content-sha256", "x-amz-date"]);
    r.set("authorization", &auth);
    assert!(matches!(r.verify("apigateway"), Err(AuthError::InvalidSignature(m)) if m.contains("UNSIGNED-PAYLOAD")));
    // A declared hash that is the body's is fine.
    let hash = hex(&Sha256::digest(b"{}"));
    let mut r = Req::new(Method::POST, "/v2/apis", None, &[HOST, DATE, ("x-amz-content-sha256", &hash)], b"{}");
    let auth = Signer {
        access_key_id: AKID,
        secret: SECRET,
        region: "us-east-1",
        service: "apigateway",
        timestamp: "20260102T030405Z",
    }
    .authorization(r.parts(), b"{}", &["host", "x-amz-content-sha256", "x-amz-date"]);
    r.set("authorization", &auth);
    assert!(r.verify("apigateway").is_ok());
    r.body = b"{ }".to_vec();
    assert!(
        matches!(r.verify("apigateway"), Err(AuthError::InvalidSignature(m)) if m.contains("does not match what was computed"))
    );
}

#[test]
fn http_date_header_instead_of_x_amz_date() {
    let mut r =
        Req::new(Method::GET, "/2015-03-31/functions", None, &[HOST, ("date", "Fri, 02 Jan 2026 03:04:05 GMT")], b"");
    let auth = Signer {
        access_key_id: AKID,
        secret: SECRET,
        region: "us-east-1",
        service: "lambda",
        timestamp: "20260102T030405Z",
    }
    .authorization(r.parts(), b"", &["date", "host"]);
    r.set("authorization", &auth);
    assert!(r.verify("lambda").is_ok());
}

#[test]
fn canonical_uris() {
    for (path, want) in [
        ("", "/"),
        ("/", "/"),
        ("/2015-03-31/functions/", "/2015-03-31/functions/"),
        ("/a/./b/../c", "/a/c"),
        ("//a//b/", "/a/b/"),
        ("/a/..", "/"),
        ("/../..", "/"),
        ("/arn%3Aaws%3Alambda", "/arn%253Aaws%253Alambda"),
        ("/a b/ü", "/a%20b/%C3%BC"),
        ("/-_.~!*'()", "/-_.~%21%2A%27%28%29"),
    ] {
        assert_eq!(canonical_uri(path), want, "{path:?}");
    }
}

#[test]
fn canonical_queries() {
    for (query, want) in [
        (None, ""),
        (Some(""), ""),
        (Some("b=2&a=1"), "a=1&b=2"),
        (Some("a=2&a=1&a=10"), "a=1&a=10&a=2"),
        (Some("Qualifier=%24LATEST"), "Qualifier=%24LATEST"),
        (Some("k=a b&k2=%7e&flag"), "flag=&k=a%20b&k2=~"),
        (Some("k=a+b"), "k=a%2Bb"),
        (Some("B=1&a=1"), "B=1&a=1"),
        (Some("&&x=1&"), "x=1"),
    ] {
        assert_eq!(canonical_query(query, Form::Header), want, "{query:?}");
    }
    assert_eq!(canonical_query(Some("X-Amz-Signature=ab&a=1"), Form::Query), "a=1");
    assert_eq!(canonical_query(Some("X-Amz-Signature=ab&a=1"), Form::Header), "X-Amz-Signature=ab&a=1");
}

#[test]
fn dates() {
    assert_eq!(parse_amz_date("20260102T030405Z"), Some(1_767_323_045));
    assert_eq!(format_amz_date(1_767_323_045), "20260102T030405Z");
    for bad in
        ["", "20260102T030405", "2026-01-02T03:04:05Z", "20261302T030405Z", "+2026010T030405Z", "２0260102T030405Z"]
    {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
    assert_eq!(format_amz_date(i64::MAX), "99991231T235959Z");
}

#[test]
fn key_debug_hides_the_secret() {
    let k = Key { secret_access_key: SECRET.into(), account_id: ACCOUNT.into() };
    assert!(!format!("{k:?}").contains(SECRET));
}

#[test]
fn garbage_never_panics() {
    // A cheap stand-in for the fuzzer: random pieces of signatures, glued at random.
    const PIECES: &[&str] = &[
        "AWS4-HMAC-SHA256",
        " ",
        ",",
        "=",
        "/",
        ";",
        "Credential",
        "SignedHeaders",
        "Signature",
        "AKIDEXAMPLE",
        "20260102",
        "20260102T030405Z",
        "us-east-1",
        "lambda",
        "aws4_request",
        "host",
        "x-amz-date",
        "%",
        "%zz",
        "%E2%82",
        "&",
        "X-Amz-Expires",
        "X-Amz-Algorithm",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "9999999999999999999999",
        "0",
        "..",
        "é",
        "\t",
        "",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % u64::try_from(n).expect("small")).expect("small")
    };
    for _ in 0..20_000 {
        let mut text = |len: usize| (0..len).map(|_| PIECES[next(PIECES.len())]).collect::<String>();
        let (auth, query, path, date) = (text(12), text(12), text(6), text(2));
        let mut headers = HeaderMap::new();
        for (name, value) in [("authorization", &auth), ("x-amz-date", &date), ("host", &path)] {
            if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.insert(name, v);
            }
        }
        let method = Method::GET;
        let parts = RequestParts { method: &method, path: &path, query: Some(&query), headers: &headers };
        let _ = verify(parts, auth.as_bytes(), lookup, at(SIGNED_AT), &Options::new("lambda"));
        let _ = parse(&headers, Some(&query));
        let _ = canonical_uri(&path);
    }
}

#[test]
fn presigned_query_round_trips() {
    let mut req =
        Req::new(Method::POST, "/dev/pets/a%20b", Some("x=1&y=%2F"), &[("host", "abc.execute-api.localhost")], b"{}");
    let signer = Signer {
        access_key_id: AKID,
        secret: SECRET,
        region: "us-east-1",
        service: "execute-api",
        timestamp: "20260102T030405Z",
    };
    let query = signer.presigned_query(req.parts(), b"{}", 60, &["host"]);
    assert!(
        query.starts_with("x=1&y=%2F&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2F"),
        "{query}"
    );
    req.query = Some(query.clone());
    let caller = req.verify("execute-api").expect("verifies");
    assert_eq!(caller.form, Form::Query);
    // Its lifetime is its own: 60 s, not the 5-minute window.
    assert!(matches!(req.verify_at("execute-api", at(SIGNED_AT + 61)), Err(AuthError::Expired(_))));
    req.query = Some(query.replace("x=1", "x=2"));
    assert_eq!(req.verify("execute-api"), Err(AuthError::InvalidSignature(MISMATCH_MESSAGE.into())));
}

#[test]
fn precheck_needs_no_body() {
    let check = |req: &Req, service: &str| precheck(req.parts(), lookup, &Options::new(service));
    // The signature is not checked (the body is not there yet): only its form, scope and key.
    assert_eq!(check(&invoke(), "lambda"), Ok(()));
    assert_eq!(check(&presigned_list(), "lambda"), Ok(()));
    assert!(matches!(check(&invoke(), "sts"), Err(AuthError::InvalidSignature(_))));
    let unsigned = Req::new(Method::GET, "/", None, &[HOST], b"");
    assert_eq!(check(&unsigned, "lambda"), Err(AuthError::Missing));
    let mut garbled = invoke();
    garbled.set("authorization", "AWS4-HMAC-SHA256 Credential=x");
    assert!(matches!(check(&garbled, "lambda"), Err(AuthError::Incomplete(_))));
    assert_eq!(precheck(invoke().parts(), |_| Ok(None), &Options::new("lambda")), Err(AuthError::UnrecognizedClient));
    assert_eq!(
        precheck(invoke().parts(), |_| Err(LookupError("disk".into())), &Options::new("lambda")),
        Err(AuthError::Lookup("disk".into()))
    );
    let mut token = invoke();
    token.set("x-amz-security-token", "t");
    assert!(check(&token, "lambda").is_err());
}
