//! Payload format 2.0: the event built from an arbitrary request is JSON holding the
//! request's parts, and mapping an arbitrary answer never panics. Input format: see
//! `request.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico_gateway::payload::Format;
use serde_json::Value;

mod request;

fuzz_target!(|data: &[u8]| {
    if let Some(payload) = data.strip_prefix(b"R") {
        request::check_response(Format::V2, payload);
        return;
    }
    let req = request::Request::parse(data);
    let event = req.event(Format::V2);
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], req.path.as_str());
    assert_eq!(event["rawQueryString"], req.query.as_str());
    assert_eq!(event["requestContext"]["http"]["method"], req.method.as_str());
    assert_eq!(event["requestContext"]["timeEpoch"], req.time_epoch_ms);
    let headers = event["headers"].as_object().expect("headers is an object");
    assert!(!headers.contains_key("cookie"));
    assert!(headers.values().all(Value::is_string));
    // Each header the request has is in the event, but `Cookie`, whose values are split.
    for name in req.headers.keys() {
        assert!(name == "cookie" || headers.contains_key(name.as_str()), "{name} is missing");
    }
    req.check_body(&event);
});
