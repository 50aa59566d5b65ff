//! STS: `GetCallerIdentity`, the call `aws sts get-caller-identity` and SDKs use to
//! learn who they are.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::error::xml_escape;
use crate::{AwsError, Call, Control, Result};

pub(crate) fn handle(_control: &Control, call: &Call) -> Result<Response<Full<Bytes>>> {
    let form: Vec<(String, String)> = form_urlencoded::parse(&call.body).into_owned().collect();
    let action = form.iter().chain(call.query.iter()).find(|(k, _)| k == "Action").map(|(_, v)| v.as_str());
    match action {
        Some("GetCallerIdentity") => {
            let account = &call.scope.account_id;
            // Every Portico key has its account's full rights (there are no IAM users or
            // policies): it is that account's root. UserId is the key id, so callers can
            // tell keys apart (AWS's root answers its account id there).
            let user_id = xml_escape(call.caller.access_key_id.as_deref().unwrap_or(account));
            let xml = format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <GetCallerIdentityResult>\n    <Arn>arn:aws:iam::{account}:root</Arn>\n    <UserId>{user_id}</UserId>\n    <Account>{account}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
                call.request_id
            );
            let mut r = Response::new(Full::new(Bytes::from(xml)));
            *r.status_mut() = StatusCode::OK;
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
            Ok(r)
        }
        Some(other) => Err(AwsError {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidAction",
            message: format!("Could not find operation {other} for version 2011-06-15"),
            fault: "User",
            reason: None,
        }),
        None => Err(AwsError {
            status: StatusCode::BAD_REQUEST,
            code: "MissingAction",
            message: "Missing Action".into(),
            fault: "User",
            reason: None,
        }),
    }
}
