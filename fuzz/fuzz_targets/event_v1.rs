//! Payload format 1.0: the event built from an arbitrary request is JSON holding the
//! request's parts, and mapping an arbitrary answer never panics. Input format: see
//! `request.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico_gateway::payload::Format;
use serde_json::Value;

mod request;

fuzz_target!(|data: &[u8]| {
    if let Some(payload) = data.strip_prefix(b"R") {
        request::check_response(Format::V1, payload);
        return;
    }
    let req = request::Request::parse(data);
    let event = req.event(Format::V1);
    assert_eq!(event["version"], "1.0");
    assert_eq!(event["path"], req.path.as_str());
    assert_eq!(event["httpMethod"], req.method.as_str());
    let single = event["headers"].as_object().expect("headers is an object");
    let multi = event["multiValueHeaders"].as_object().expect("multiValueHeaders is an object");
    assert!(single.values().all(Value::is_string));
    for (name, values) in multi {
        let values = values.as_array().expect("multiValueHeaders holds arrays");
        assert!(!values.is_empty() && values.iter().all(Value::is_string), "{name}");
        // `headers` holds the last value of each.
        assert_eq!(single.get(name), values.last(), "{name}");
    }
    // Names are as HeaderMap keeps them (lower case), but a few API Gateway capitalises.
    for name in req.headers.keys() {
        assert!(multi.keys().any(|k| k.eq_ignore_ascii_case(name.as_str())), "{name} is missing");
    }
    req.check_body(&event);
});
