//! SigV4 (`portico_auth`): its parser and verifier on arbitrary requests, and a round trip
//! through its own signer.
//!
//! - **Arbitrary requests**: an `Authorization` header (raw, or built from SigV4's pieces
//!   with random components), a query string (raw, or a presigned one with random
//!   parameters), headers, a path and a body go through `parse`, `precheck`, `verify`,
//!   `canonical_uri` and `canonical_query`. Nothing panics, and `precheck` never refuses
//!   what `verify` accepts (it checks a subset).
//! - **Round trip**: a request with a random method, path, query, headers and body is
//!   signed in the target with a known key (header or presigned form, random region,
//!   service, time and signed-header set); `verify` at a time within its window must
//!   accept it and name the key's account, region and service. Then one byte is changed
//!   (the body, the signature, or a signed header's value) and `verify` must refuse it.
#![no_main]

use std::time::{Duration, SystemTime};

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use portico_auth::{
    canonical_query, canonical_uri, format_amz_date, parse, precheck, verify, AuthError, Form, Key, LookupError,
    Options, RequestParts, Signer, MAX_PRESIGN_EXPIRES,
};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const ACCOUNT: &str = "111122223333";

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
const SERVICES: [&str; 5] = ["execute-api", "lambda", "apigateway", "sts", "logs"];
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-3", "local", "ap-southeast-2"];
const KEYS: [&str; 3] = [AKID, "AKIAUNKNOWNKEY000000", ""];
const WORDS: [&str; 14] = [
    "AWS4-HMAC-SHA256",
    "Credential",
    "SignedHeaders",
    "Signature",
    "=",
    ",",
    " ",
    "/",
    ";",
    "host",
    "x-amz-date",
    "aws4_request",
    "20260102",
    "%",
];

#[derive(Arbitrary, Debug)]
enum Text {
    Raw(String),
    Words(Vec<u8>),
}

impl Text {
    fn render(&self) -> String {
        match self {
            Text::Raw(s) => s.clone(),
            Text::Words(w) => w.iter().map(|i| WORDS[usize::from(*i) % WORDS.len()]).collect(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Auth {
    None,
    Raw(Text),
    Built { key: u8, date: Text, region: u8, service: u8, term: Text, signed: Text, signature: Text },
}

#[derive(Arbitrary, Debug)]
struct Garbage {
    method: u8,
    path: String,
    query: Option<Text>,
    headers: Vec<(String, Vec<u8>)>,
    auth: Auth,
    date: Option<Text>,
    body: Vec<u8>,
    service: u8,
    now: u32,
}

/// Which byte of a signed request to change.
#[derive(Arbitrary, Debug)]
enum Flip {
    Body(u16),
    Signature(u8),
    Header(u8, u16),
}

#[derive(Arbitrary, Debug)]
struct Signed {
    method: u8,
    path: String,
    query: String,
    /// Extra headers; those that are signed are chosen by `sign`.
    headers: Vec<(String, Vec<u8>)>,
    sign: Vec<bool>,
    /// Names signed though absent (they count as empty).
    absent: Vec<String>,
    body: Vec<u8>,
    region: u8,
    service: u8,
    /// The signing time, seconds after the epoch.
    at: u32,
    /// Where "now" is within the window, as a fraction of it.
    skew: i16,
    presigned: Option<u32>,
    flip: Flip,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Garbage(Garbage),
    Signed(Signed),
}

fn lookup(akid: &str) -> Result<Option<Key>, LookupError> {
    Ok((akid == AKID).then(|| Key { secret_access_key: SECRET.into(), account_id: ACCOUNT.into() }))
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn at(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    }
}

/// Headers from arbitrary names and values, those HTTP allows.
fn header_map(pairs: &[(String, Vec<u8>)], skip: impl Fn(&str) -> bool) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) else {
            continue;
        };
        if !skip(name.as_str()) {
            map.append(name, value);
        }
    }
    map
}

fn garbage(g: &Garbage) {
    let service = pick(&SERVICES, g.service);
    let mut headers = header_map(&g.headers, |_| false);
    let auth = match &g.auth {
        Auth::None => None,
        Auth::Raw(t) => Some(t.render()),
        Auth::Built { key, date, region, service, term, signed, signature } => Some(format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/{}, SignedHeaders={}, Signature={}",
            pick(&KEYS, *key),
            date.render(),
            pick(&REGIONS, *region),
            pick(&SERVICES, *service),
            term.render(),
            signed.render(),
            signature.render()
        )),
    };
    for (name, value) in [("authorization", auth), ("x-amz-date", g.date.as_ref().map(Text::render))] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, v);
        }
    }
    let query = g.query.as_ref().map(Text::render);
    let method = Method::from_bytes(pick(&METHODS, g.method).as_bytes()).expect("a method");
    let parts = RequestParts { method: &method, path: &g.path, query: query.as_deref(), headers: &headers };
    let opts = Options::new(service);
    let now = at(i64::from(g.now));
    let _ = parse(&headers, query.as_deref());
    let _ = canonical_uri(&g.path);
    let _ = canonical_query(query.as_deref(), Form::Header);
    let _ = canonical_query(query.as_deref(), Form::Query);
    let verified = verify(parts, &g.body, lookup, now, &opts);
    let prechecked = precheck(parts, lookup, &opts);
    if verified.is_ok() {
        assert_eq!(prechecked, Ok(()), "precheck refuses what verify accepts");
    }
    if let Err(e) = &prechecked {
        assert!(verified.is_err(), "verify accepts what precheck refuses ({e:?})");
    }
}

/// Whether a query parameter would be taken for part of a signature (or a session token).
fn reserved(pair: &str) -> bool {
    let name = pair.split('=').next().unwrap_or_default();
    let name = percent_decode_str(name).decode_utf8_lossy().to_ascii_lowercase();
    name.starts_with("x-amz-")
}

fn signed(s: &Signed) {
    let method = Method::from_bytes(pick(&METHODS, s.method).as_bytes()).expect("a method");
    let service = pick(&SERVICES, s.service);
    let region = pick(&REGIONS, s.region);
    let at_secs = i64::from(s.at);
    let timestamp = format_amz_date(at_secs);
    let query: String = s.query.split('&').filter(|p| !reserved(p)).collect::<Vec<_>>().join("&");
    let query = (!query.is_empty()).then_some(query);
    // Headers the signature itself uses are the target's to set.
    let mut headers = header_map(&s.headers, |n| {
        matches!(n, "host" | "authorization" | "x-amz-date" | "x-amz-content-sha256" | "x-amz-security-token")
    });
    headers.insert("host", HeaderValue::from_static("abc123defg.execute-api.localhost:4750"));
    let mut names: Vec<String> = vec!["host".into()];
    if s.presigned.is_none() {
        headers.insert("x-amz-date", HeaderValue::from_str(&timestamp).expect("ascii"));
        names.push("x-amz-date".into());
    }
    // Every x-amz-* header must be signed; others are, when `sign` says so.
    let mut choices = s.sign.iter().copied().chain(std::iter::repeat(false));
    for name in headers.keys() {
        let n = name.as_str();
        let chosen = choices.next().unwrap_or(false);
        if !names.iter().any(|x| x == n) && (n.starts_with("x-amz-") || chosen) {
            names.push(n.to_string());
        }
    }
    for n in &s.absent {
        if let Ok(name) = HeaderName::from_bytes(n.as_bytes()) {
            if !headers.contains_key(&name) && !names.iter().any(|x| x == name.as_str()) {
                names.push(name.as_str().to_string());
            }
        }
    }
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let signer = Signer { access_key_id: AKID, secret: SECRET, region, service, timestamp: &timestamp };
    let parts = RequestParts { method: &method, path: &s.path, query: query.as_deref(), headers: &headers };
    // "now", somewhere in the signature's window.
    let (query, now) = match s.presigned {
        None => {
            let auth = signer.authorization(parts, &s.body, &name_refs);
            headers.insert("authorization", HeaderValue::from_str(&auth).expect("an ASCII header"));
            (query, at_secs + i64::from(s.skew) * 299 / i64::from(i16::MAX))
        }
        Some(e) => {
            let expires = 1 + u64::from(e) % MAX_PRESIGN_EXPIRES;
            let q = signer.presigned_query(parts, &s.body, expires, &name_refs);
            // |skew| / 32768 < 1: within the lifetime.
            let within = i64::try_from(expires).expect("small") * i64::from(s.skew.unsigned_abs()) / 32768;
            (Some(q), at_secs + within)
        }
    };
    let opts = Options::new(service);
    let parts = RequestParts { method: &method, path: &s.path, query: query.as_deref(), headers: &headers };
    let caller = match verify(parts, &s.body, lookup, at(now), &opts) {
        Ok(c) => c,
        Err(e) => panic!("a request signed here does not verify: {e:?}"),
    };
    assert_eq!(
        (caller.access_key_id.as_str(), caller.account_id.as_str(), caller.region.as_str(), caller.service.as_str()),
        (AKID, ACCOUNT, region, service)
    );
    assert_eq!(caller.form, if s.presigned.is_some() { Form::Query } else { Form::Header });
    assert_eq!(precheck(parts, lookup, &opts), Ok(()));

    // One byte changed: refused.
    let mut body = s.body.clone();
    let mut headers = headers.clone();
    let mut query = query.clone();
    let flipped = match s.flip {
        Flip::Body(i) if !body.is_empty() => {
            let i = usize::from(i) % body.len();
            body[i] ^= 0x01;
            true
        }
        Flip::Header(h, i) => flip_header(&mut headers, &names, h, i),
        _ => false,
    };
    if !flipped {
        let i = if let Flip::Signature(i) = s.flip { i } else { 0 };
        flip_signature(&mut headers, &mut query, s.presigned.is_some(), i);
    }
    let parts = RequestParts { method: &method, path: &s.path, query: query.as_deref(), headers: &headers };
    match verify(parts, &body, lookup, at(now), &opts) {
        Ok(_) => panic!("a request changed after signing verifies ({:?})", s.flip),
        Err(AuthError::Lookup(e)) => panic!("lookup cannot fail: {e}"),
        Err(_) => {}
    }
}

/// Changes one byte of a signed header's value (not `host`, fixed by the target); false
/// when no such header is present.
fn flip_header(headers: &mut HeaderMap, names: &[String], h: u8, i: u16) -> bool {
    let present: Vec<&String> = names.iter().filter(|n| n.as_str() != "host" && headers.contains_key(n.as_str())).collect();
    if present.is_empty() {
        return false;
    }
    let name = HeaderName::from_bytes(present[usize::from(h) % present.len()].as_bytes()).expect("a header name");
    let Some(value) = headers.get(&name) else { return false };
    let mut bytes = value.as_bytes().to_vec();
    if bytes.is_empty() {
        bytes.push(b'x');
    } else {
        // A byte made a visible character other than itself always changes the trimmed value.
        let i = usize::from(i) % bytes.len();
        bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
    }
    // Only the first value of a repeated header changes; the others stay.
    let rest: Vec<HeaderValue> = headers.get_all(&name).iter().skip(1).cloned().collect();
    headers.insert(name.clone(), HeaderValue::from_bytes(&bytes).expect("a visible value"));
    for v in rest {
        headers.append(name.clone(), v);
    }
    true
}

/// Makes the `i`th hex digit of the signature another digit.
fn flip_signature(headers: &mut HeaderMap, query: &mut Option<String>, presigned: bool, i: u8) {
    let other = |c: u8| {
        let d = char::from(c).to_digit(16).expect("a hex digit");
        u8::try_from(char::from_digit((d + 1) % 16, 16).expect("a digit")).expect("ascii")
    };
    const MARK: &str = "Signature=";
    if presigned {
        let q = query.as_mut().expect("a presigned query");
        let mut bytes = std::mem::take(q).into_bytes();
        let at = q_index(&bytes, MARK) + usize::from(i) % 64;
        bytes[at] = other(bytes[at]);
        *q = String::from_utf8(bytes).expect("ascii");
    } else {
        let mut auth = headers.get("authorization").expect("signed").as_bytes().to_vec();
        let at = q_index(&auth, MARK) + usize::from(i) % 64;
        auth[at] = other(auth[at]);
        headers.insert("authorization", HeaderValue::from_bytes(&auth).expect("ascii"));
    }
}

/// Where the value after the last `mark` starts.
fn q_index(text: &[u8], mark: &str) -> usize {
    let m = mark.as_bytes();
    let start = text.windows(m.len()).rposition(|w| w == m).expect("the signature is there");
    start + m.len()
}

fuzz_target!(|input: Input| {
    match &input {
        Input::Garbage(g) => garbage(g),
        Input::Signed(s) => signed(s),
    }
});
