//! Timestamps in the formats AWS puts on the wire.

use chrono::{DateTime, Utc};

/// Lambda's `LastModified` format: `2026-11-24T19:44:28.000+0000`.
pub fn lambda_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// API Gateway v2's ISO-8601 form: `2026-11-24T19:44:28Z`.
pub fn iso8601(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The `requestContext.time` form of HTTP API events: `24/Nov/2026:19:44:28 +0000`.
pub fn clf(t: DateTime<Utc>) -> String {
    t.format("%d/%b/%Y:%H:%M:%S %z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats() {
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 19, 44, 28).single().expect("valid");
        assert_eq!(lambda_timestamp(t), "2026-11-24T19:44:28.000+0000");
        assert_eq!(iso8601(t), "2026-11-24T19:44:28Z");
        assert_eq!(clf(t), "24/Nov/2026:19:44:28 +0000");
    }
}
