//! Finding and parsing a signature: the `Authorization` header or the presigned query
//! string. Everything here is input-derived; nothing panics on it.

use http::HeaderMap;

use crate::{AuthError, ALGORITHM, MAX_PRESIGN_EXPIRES};

/// Which part of the request carried the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `Authorization: AWS4-HMAC-SHA256 ...`.
    Header,
    /// `?X-Amz-Algorithm=...&X-Amz-Signature=...` (a presigned URL).
    Query,
}

/// `Credential=AKID/20260101/us-east-1/lambda/aws4_request`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The access key id.
    pub access_key_id: String,
    /// `YYYYMMDD`.
    pub date: String,
    /// The region signed for.
    pub region: String,
    /// The service signed for.
    pub service: String,
    /// Always `aws4_request` in a valid scope.
    pub terminator: String,
}

impl Credential {
    /// The credential scope: `date/region/service/terminator`.
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/{}", self.date, self.region, self.service, self.terminator)
    }
}

/// A parsed signature, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Where it came from.
    pub form: Form,
    /// The credential.
    pub credential: Credential,
    /// The signed header names, lower-case, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature as sent (hex).
    pub signature: String,
    /// The request's timestamp in ISO 8601 basic format (`20260101T000000Z`), as the
    /// string to sign has it.
    pub timestamp: String,
    /// The same, in seconds since the Unix epoch.
    pub signed_at: i64,
    /// `X-Amz-Expires` of a presigned request.
    pub expires: Option<u64>,
}

/// Finds the signature of a request: its `Authorization` header, else the presigned
/// query parameters. Errors are [`AuthError::Missing`] and [`AuthError::Incomplete`].
pub fn parse(headers: &HeaderMap, query: Option<&str>) -> Result<Signature, AuthError> {
    let presigned = query.map(query_params).unwrap_or_default();
    let presigned_any = presigned.iter().any(|(k, _)| is_presign_param(k));
    let mut auth = headers.get_all(http::header::AUTHORIZATION).iter();
    match (auth.next(), presigned_any) {
        (Some(_), true) => Err(AuthError::Incomplete(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".to_string(),
        )),
        (Some(value), false) => {
            if auth.next().is_some() {
                return Err(AuthError::Incomplete("Only one 'Authorization' header is allowed.".to_string()));
            }
            let value = value
                .to_str()
                .map_err(|_| AuthError::Incomplete("The Authorization header is not valid ASCII.".to_string()))?;
            let sig = parse_header(value, headers)?;
            check_signed_headers(&sig.signed_headers, headers)?;
            Ok(sig)
        }
        (None, true) => {
            let sig = parse_query(&presigned)?;
            check_signed_headers(&sig.signed_headers, headers)?;
            Ok(sig)
        }
        (None, false) => Err(AuthError::Missing),
    }
}

fn is_presign_param(name: &str) -> bool {
    matches!(name, "X-Amz-Algorithm" | "X-Amz-Credential" | "X-Amz-Signature" | "X-Amz-SignedHeaders")
}

/// The query's `name=value` pairs, percent-decoded (`+` stays `+`).
fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_str(k), decode_str(v))
        })
        .collect()
}

fn decode_str(s: &str) -> String {
    String::from_utf8_lossy(&crate::canonical::decode(s)).into_owned()
}

fn parse_header(value: &str, headers: &HeaderMap) -> Result<Signature, AuthError> {
    let (algorithm, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Portico accepts {ALGORITHM} (Signature Version 4) only."
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    // AWS splits the components on commas and white space alike.
    for part in rest.split([',', ' ', '\t']).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(AuthError::Incomplete(format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
            )));
        };
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_some() {
            return Err(AuthError::Incomplete(format!("Duplicate '{k}' in Authorization header: '{value}'.")));
        }
        *slot = Some(v);
    }
    let date = date_of_headers(headers)?;
    let mut missing = String::new();
    for (name, got) in [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)] {
        if got.is_none() {
            missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    if date.is_none() {
        missing.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some((timestamp, signed_at))) =
        (credential, signed_headers, signature, date)
    else {
        return Err(AuthError::Incomplete(format!("{missing}Authorization={value}")));
    };
    let signed_headers = parse_signed_headers(signed_headers)?;
    Ok(Signature {
        form: Form::Header,
        credential: parse_credential(credential)?,
        signed_headers,
        signature: signature.to_string(),
        timestamp,
        signed_at,
        expires: None,
    })
}

/// The request's timestamp from `X-Amz-Date`, else `Date` (an HTTP date, which the
/// string to sign carries in ISO 8601 basic format, as botocore does).
fn date_of_headers(headers: &HeaderMap) -> Result<Option<(String, i64)>, AuthError> {
    if let Some(v) = headers.get("x-amz-date") {
        let s = v.to_str().unwrap_or_default();
        let t = crate::time::parse_amz_date(s).ok_or_else(|| bad_date(s))?;
        return Ok(Some((s.to_string(), t)));
    }
    if let Some(v) = headers.get(http::header::DATE) {
        let s = v.to_str().unwrap_or_default();
        let t = crate::time::parse_http_date(s).ok_or_else(|| bad_date(s))?;
        return Ok(Some((crate::time::format_amz_date(t), t)));
    }
    Ok(None)
}

fn bad_date(s: &str) -> AuthError {
    AuthError::Incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{s}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

fn parse_query(params: &[(String, String)]) -> Result<Signature, AuthError> {
    const REQUIRED: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
    ];
    let mut found: [Option<&str>; 6] = [None; 6];
    for (k, v) in params {
        if let Some(i) = REQUIRED.iter().position(|r| r == k) {
            if found[i].is_some() {
                return Err(AuthError::Incomplete(format!("Duplicate '{k}' query-string parameter.")));
            }
            found[i] = Some(v.as_str());
        }
    }
    let [Some(algorithm), Some(credential), Some(signature), Some(date), Some(signed_headers), Some(expires)] = found
    else {
        return Err(AuthError::Incomplete(
            "AWS query-string authentication requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, \
             X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
                .to_string(),
        ));
    };
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Portico accepts {ALGORITHM} (Signature Version 4) only."
        )));
    }
    let signed_at = crate::time::parse_amz_date(date).ok_or_else(|| bad_date(date))?;
    let expires = expires.parse::<u64>().ok().filter(|e| (1..=MAX_PRESIGN_EXPIRES).contains(e)).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_EXPIRES}, got '{expires}'."
        ))
    })?;
    let signed_headers = parse_signed_headers(signed_headers)?;
    Ok(Signature {
        form: Form::Query,
        credential: parse_credential(credential)?,
        signed_headers,
        signature: signature.to_string(),
        timestamp: date.to_string(),
        signed_at,
        expires: Some(expires),
    })
}

fn parse_credential(c: &str) -> Result<Credential, AuthError> {
    let parts: Vec<&str> = c.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{c}'"
        )));
    };
    Ok(Credential {
        access_key_id: (*access_key_id).to_string(),
        date: (*date).to_string(),
        region: (*region).to_string(),
        service: (*service).to_string(),
        terminator: (*terminator).to_string(),
    })
}

/// `host;x-amz-date` → names. Each must be a lower-case header name, and `host` must be
/// among them (so the request cannot be replayed against another host name).
fn parse_signed_headers(s: &str) -> Result<Vec<String>, AuthError> {
    let names: Vec<String> = s.split(';').map(str::to_string).collect();
    for n in &names {
        let valid = !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b));
        if !valid {
            return Err(AuthError::Incomplete(format!(
                "SignedHeaders '{s}' is not a ';'-separated list of lower-case header names."
            )));
        }
    }
    if !names.iter().any(|n| n == "host") {
        return Err(AuthError::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_string(),
        ));
    }
    Ok(names)
}

/// Every `x-amz-*` header present must be signed: they select the operation
/// (`X-Amz-Target`) or change what it does (`X-Amz-Invocation-Type`...), so an unsigned
/// one could be swapped in transit.
fn check_signed_headers(signed: &[String], headers: &HeaderMap) -> Result<(), AuthError> {
    for name in headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") && !signed.iter().any(|s| s == n) {
            return Err(AuthError::Incomplete(format!(
                "Header '{n}' is present but not signed: every x-amz-* header must be in SignedHeaders."
            )));
        }
    }
    Ok(())
}
