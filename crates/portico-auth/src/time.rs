//! SigV4 timestamps: ISO 8601 basic format (`20260101T000000Z`), UTC.

use chrono::{DateTime, NaiveDateTime};

/// Seconds since the Unix epoch of `YYYYMMDDTHHMMSSZ`; `None` for anything else.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let shape =
        b.len() == 16 && b[8] == b'T' && b[15] == b'Z' && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok().map(|t| t.and_utc().timestamp())
}

/// `YYYYMMDDTHHMMSSZ` of seconds since the Unix epoch (clamped to years 0–9999).
pub fn format_amz_date(secs: i64) -> String {
    let secs = secs.clamp(-62_167_219_200, 253_402_300_799);
    DateTime::from_timestamp(secs, 0).map(|t| t.format("%Y%m%dT%H%M%SZ").to_string()).unwrap_or_default()
}

/// Seconds since the Unix epoch of an HTTP `Date` (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(s).ok().map(|t| t.timestamp())
}
