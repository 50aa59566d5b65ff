//! SigV4 verification as the control plane runs it on every call, without I/O: a
//! GetFunction-style GET signed by botocore (empty body), the same call's parts alone
//! (parse, canonical request, signing key), and a CreateFunction POST carrying a 1 MB
//! package (its 1.4 MB JSON body is hashed). Run with `cargo bench -p portico-auth`.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use portico_auth::{
    canonical_request, parse, signing_key, verify, Form, Key, LookupError, Options, RequestParts, Signer, EMPTY_SHA256,
};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2026-01-02T03:04:05Z, when the golden request was signed (botocore 1.44).
const SIGNED_AT: u64 = 1_767_323_045;
const DATE: &str = "20260102T030405Z";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
    }
    map
}

fn lookup(akid: &str) -> Result<Option<Key>, LookupError> {
    Ok((akid == AKID).then(|| Key { secret_access_key: SECRET.into(), account_id: "111122223333".into() }))
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(SIGNED_AT + 10)
}

fn get(c: &mut Criterion) {
    let method = Method::GET;
    let h = headers(&[
        ("user-agent", "Botocore/1.44.8"),
        ("x-amz-date", DATE),
        ("host", "127.0.0.1:4750"),
        ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=09769a6f5c5e76bc4b621ef3ce50cd907c6037d0bb6ad4d6e0248f867d68cc51"),
    ]);
    let parts = RequestParts { method: &method, path: "/2015-03-31/functions", query: None, headers: &h };
    let opts = Options::new("lambda");
    verify(parts, b"", lookup, now(), &opts).expect("the golden request verifies");
    c.bench_function("verify/get", |b| b.iter(|| verify(black_box(parts), b"", lookup, now(), &opts)));
    c.bench_function("parse/get", |b| b.iter(|| parse(black_box(&h), None)));
    let sig = parse(&h, None).expect("parses");
    c.bench_function("canonical_request/get", |b| {
        b.iter(|| canonical_request(black_box(parts), &sig.signed_headers, EMPTY_SHA256, Form::Header))
    });
    c.bench_function("signing_key", |b| {
        b.iter(|| signing_key(black_box(SECRET), black_box("20260102"), "us-east-1", "lambda"))
    });
}

fn create_1mb(c: &mut Criterion) {
    let method = Method::POST;
    // A 1 MB package, base64 in a CreateFunction document: 1.4 MB of body.
    let body = format!("{{\"FunctionName\":\"f\",\"Code\":{{\"ZipFile\":\"{}\"}}}}", "QUJD".repeat(1_398_101 / 4));
    let mut h = headers(&[("x-amz-date", DATE), ("host", "127.0.0.1:4750"), ("content-type", "application/json")]);
    let unsigned = RequestParts { method: &method, path: "/2015-03-31/functions", query: None, headers: &h };
    let signer =
        Signer { access_key_id: AKID, secret: SECRET, region: "us-east-1", service: "lambda", timestamp: DATE };
    let auth = signer.authorization(unsigned, body.as_bytes(), &["content-type", "host", "x-amz-date"]);
    h.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&auth).expect("value"));
    let parts = RequestParts { method: &method, path: "/2015-03-31/functions", query: None, headers: &h };
    let opts = Options::new("lambda");
    verify(parts, body.as_bytes(), lookup, now(), &opts).expect("verifies");
    c.bench_function("verify/create_1mb", |b| {
        b.iter(|| verify(black_box(parts), black_box(body.as_bytes()), lookup, now(), &opts))
    });
}

criterion_group! {
    name = benches;
    // Shorter than criterion's defaults (3 s + 5 s): the figures settle well within this.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = get, create_1mb
}
criterion_main!(benches);
