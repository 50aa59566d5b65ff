//! The canonical request, as AWS's "Create a signed AWS API request" defines it for every
//! service but S3 (and as botocore's `SigV4Auth` builds it):
//!
//! ```text
//! METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n \n SignedHeaders \n HexSHA256(body)
//! ```

use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::{Form, RequestParts};

/// Bytes left as they are by SigV4's `UriEncode`: letters, digits, `-`, `_`, `.`, `~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The same, keeping `/` (the path's separators).
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// SigV4's `UriEncode` of a query component: every byte but the unreserved ones escaped.
pub(crate) fn encode(b: &[u8]) -> String {
    percent_encode(b, UNRESERVED).to_string()
}

/// Percent-decodes (`+` stays `+`; a malformed escape stays as it is).
pub(crate) fn decode(s: &str) -> Vec<u8> {
    percent_decode_str(s).collect()
}

/// The canonical URI of a raw (as received, percent-encoded) path: dot segments and
/// empty segments removed (RFC 3986 §5.2.4, and AWS collapses `//`), a trailing `/`
/// kept, then every byte but the unreserved ones and `/` URI-encoded — so an escape
/// already in the path is encoded a second time (`%3A` → `%253A`), as every SDK does
/// for services other than S3.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    normalized.push('/');
    normalized.push_str(&segments.join("/"));
    if !segments.is_empty() && path.ends_with('/') {
        normalized.push('/');
    }
    percent_encode(normalized.as_bytes(), UNRESERVED_AND_SLASH).to_string()
}

/// The canonical query string: each name and value decoded and URI-encoded again
/// (strictly: only unreserved bytes are left as they are), sorted by name then value,
/// joined with `&`. A presigned request's own `X-Amz-Signature` is left out.
pub fn canonical_query(query: Option<&str>, form: Form) -> String {
    let Some(query) = query else { return String::new() };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .filter(|(k, _)| !(form == Form::Query && k == b"X-Amz-Signature"))
        .map(|(k, v)| (percent_encode(&k, UNRESERVED).to_string(), percent_encode(&v, UNRESERVED).to_string()))
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// `Trimall`: leading and trailing white space removed, inner runs of it made one space.
fn push_trimmed(value: &[u8], out: &mut Vec<u8>) {
    let mut first = true;
    for word in value.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()) {
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(word);
        first = false;
    }
}

/// The canonical request (bytes: header values need not be UTF-8) over the headers named
/// in `signed_headers`, in that order. A header sent several times has its values joined
/// with `,` in the order received; a signed header that is absent counts as empty.
pub fn canonical_request(req: RequestParts<'_>, signed_headers: &[String], payload_hash: &str, form: Form) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(req.path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(req.query, form).as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, v) in req.headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(v.as_bytes(), &mut out);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}
