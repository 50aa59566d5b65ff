//! The one error type of the control plane, and the one place it is rendered.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The message of a missing signature in STS and the JSON services.
const MISSING_TOKEN: &str = "Request is missing Authentication Token";

/// Which service's error shape to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Lambda: `{"Type":"User","message":...}`.
    Lambda,
    /// API Gateway v2: `{"message":...}`.
    ApiGateway,
    /// STS: an XML `ErrorResponse`.
    Sts,
    /// CloudWatch Logs (JSON 1.1): `{"__type":...,"message":...}`.
    Logs,
}

/// An error as AWS reports it: HTTP status, error code (`x-amzn-ErrorType`) and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// HTTP status.
    pub status: StatusCode,
    /// AWS error code, e.g. `ResourceNotFoundException`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `Type` of a Lambda error body: `User` or `Service`.
    pub fault: &'static str,
    /// Extra top-level members (e.g. `Reason` of a throttle).
    pub reason: Option<String>,
}

/// Control-plane result.
pub type Result<T, E = AwsError> = std::result::Result<T, E>;

impl AwsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AwsError {
        let fault = if status.is_server_error() { "Service" } else { "User" };
        AwsError { status, code, message: message.into(), fault, reason: None }
    }

    /// 400 `InvalidParameterValueException` (Lambda).
    pub fn invalid_parameter(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "InvalidParameterValueException", m)
    }
    /// 400 `ValidationException`.
    pub fn validation(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "ValidationException", m)
    }
    /// 400 `InvalidRequestContentException` (Lambda: body is not JSON).
    pub fn invalid_content(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "InvalidRequestContentException", m)
    }
    /// 404 `ResourceNotFoundException` (Lambda).
    pub fn resource_not_found(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", m)
    }
    /// 409 `ResourceConflictException` (Lambda).
    pub fn resource_conflict(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::CONFLICT, "ResourceConflictException", m)
    }
    /// 412 `PreconditionFailedException` (Lambda: stale RevisionId).
    pub fn precondition_failed(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::PRECONDITION_FAILED, "PreconditionFailedException", m)
    }
    /// 400 `SerializationException`: a body that is no document of the operation (the
    /// JSON 1.1 protocol's error, CloudWatch Logs).
    pub fn serialization(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "SerializationException", m)
    }
    /// 413 `RequestTooLargeException` (Lambda).
    pub fn too_large(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException", m)
    }
    /// 408 `RequestTimeoutException`: the client did not send its request body in time.
    pub fn request_timeout(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::REQUEST_TIMEOUT, "RequestTimeoutException", m)
    }
    /// 429 `TooManyRequestsException` with Lambda's `Reason`.
    pub fn too_many_requests(m: impl Into<String>, reason: &str) -> AwsError {
        let mut e = AwsError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", m);
        e.reason = Some(reason.to_string());
        e
    }
    /// 500 `ServiceException`.
    pub fn service(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", m)
    }
    /// 400 `BadRequestException` (API Gateway).
    pub fn bad_request(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "BadRequestException", m)
    }
    /// 404 `NotFoundException` (API Gateway).
    pub fn not_found(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::NOT_FOUND, "NotFoundException", m)
    }
    /// 409 `ConflictException` (API Gateway).
    pub fn conflict(m: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::CONFLICT, "ConflictException", m)
    }
    /// 404 for a path no operation serves, in the caller's service's shape.
    pub fn unknown_operation(service: Service, method: &http::Method, path: &str) -> AwsError {
        let m = format!("No operation matches {method} {path}");
        match service {
            Service::ApiGateway => AwsError::not_found(m),
            Service::Lambda | Service::Sts | Service::Logs => {
                AwsError::new(StatusCode::NOT_FOUND, "UnknownOperationException", m)
            }
        }
    }

    /// A refused signature in `service`'s terms. Lambda and API Gateway answer 403
    /// `MissingAuthenticationTokenException` / `IncompleteSignatureException` /
    /// `UnrecognizedClientException` / `InvalidSignatureException`; STS (query protocol)
    /// 403 `MissingAuthenticationToken`, 400 `IncompleteSignature`, 403
    /// `InvalidClientTokenId`, 403 `SignatureDoesNotMatch`; CloudWatch Logs (JSON 1.1)
    /// the `...Exception` codes with status 400, as AWS's JSON services do.
    pub fn auth(service: Service, e: &portico_auth::AuthError) -> AwsError {
        use portico_auth::AuthError as A;
        let forbidden = StatusCode::FORBIDDEN;
        let bad = StatusCode::BAD_REQUEST;
        let (status, code, message) = match (service, e) {
            (_, A::Lookup(_)) => return AwsError::service(e.message()),
            (Service::Lambda | Service::ApiGateway, A::Missing) => {
                (forbidden, "MissingAuthenticationTokenException", e.message())
            }
            (Service::Sts, A::Missing) => (forbidden, "MissingAuthenticationToken", MISSING_TOKEN.to_string()),
            (Service::Logs, A::Missing) => (bad, "MissingAuthenticationTokenException", MISSING_TOKEN.to_string()),
            (Service::Lambda | Service::ApiGateway, A::Incomplete(_)) => {
                (forbidden, "IncompleteSignatureException", e.message())
            }
            (Service::Sts, A::Incomplete(_)) => (bad, "IncompleteSignature", e.message()),
            (Service::Logs, A::Incomplete(_)) => (bad, "IncompleteSignatureException", e.message()),
            (Service::Lambda | Service::ApiGateway, A::UnrecognizedClient) => {
                (forbidden, "UnrecognizedClientException", e.message())
            }
            (Service::Sts, A::UnrecognizedClient) => (forbidden, "InvalidClientTokenId", e.message()),
            (Service::Logs, A::UnrecognizedClient) => (bad, "UnrecognizedClientException", e.message()),
            (Service::Lambda | Service::ApiGateway, A::InvalidSignature(_) | A::Expired(_)) => {
                (forbidden, "InvalidSignatureException", e.message())
            }
            (Service::Sts, A::InvalidSignature(_) | A::Expired(_)) => (forbidden, "SignatureDoesNotMatch", e.message()),
            (Service::Logs, A::InvalidSignature(_) | A::Expired(_)) => (bad, "InvalidSignatureException", e.message()),
        };
        AwsError::new(status, code, message)
    }

    /// Renders the error in `service`'s wire shape.
    pub fn render(&self, service: Service, request_id: &str) -> Response<Full<Bytes>> {
        let (body, content_type) = match service {
            Service::Lambda => {
                let mut doc = serde_json::json!({ "Type": self.fault });
                doc[lambda_message_member(self.code)] = serde_json::Value::String(self.message.clone());
                if let Some(r) = &self.reason {
                    doc["Reason"] = serde_json::Value::String(r.clone());
                }
                (doc.to_string(), "application/json")
            }
            Service::ApiGateway => (serde_json::json!({ "message": self.message }).to_string(), "application/json"),
            Service::Logs => (
                serde_json::json!({ "__type": self.code, "message": self.message }).to_string(),
                "application/x-amz-json-1.1",
            ),
            Service::Sts => (
                format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                    if self.fault == "User" { "Sender" } else { "Receiver" },
                    self.code,
                    xml_escape(&self.message)
                ),
                "text/xml",
            ),
        };
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-amzn-requestid", v);
        }
        resp
    }
}

impl From<portico_model::Invalid> for AwsError {
    fn from(e: portico_model::Invalid) -> AwsError {
        AwsError::invalid_parameter(e.0)
    }
}

/// The member carrying the message in a Lambda error body: the service model spells it
/// `Message` for some shapes and `message` for the rest, and SDKs read only the one their
/// model names. (The list is every exception shape with `Message` in the Lambda model.)
fn lambda_message_member(code: &str) -> &'static str {
    match code {
        "CallbackTimeoutException"
        | "CodeSigningConfigNotFoundException"
        | "CodeVerificationFailedException"
        | "DurableExecutionAlreadyStartedException"
        | "EC2AccessDeniedException"
        | "EC2ThrottledException"
        | "EC2UnexpectedException"
        | "EFSIOException"
        | "EFSMountConnectivityException"
        | "EFSMountFailureException"
        | "EFSMountTimeoutException"
        | "ENILimitReachedException"
        | "ENINotReadyException"
        | "InvalidCodeSignatureException"
        | "InvalidRuntimeException"
        | "InvalidSecurityGroupIDException"
        | "InvalidSubnetIDException"
        | "InvalidZipFileException"
        | "KMSAccessDeniedException"
        | "KMSDisabledException"
        | "KMSInvalidStateException"
        | "KMSNotFoundException"
        | "NoPublishedVersionException"
        | "PublicPolicyException"
        | "RecursiveInvocationException"
        | "ResourceInUseException"
        | "ResourceNotFoundException"
        | "S3FilesMountConnectivityException"
        | "S3FilesMountFailureException"
        | "S3FilesMountTimeoutException"
        | "ServiceException"
        | "ServiceQuotaExceededException"
        | "SnapStartException"
        | "SnapStartNotReadyException"
        | "SnapStartRegenerationFailureException"
        | "SnapStartTimeoutException"
        | "SubnetIPAddressLimitReachedException" => "Message",
        _ => "message",
    }
}

/// Escapes text for an XML element.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use portico_auth::{AuthError as A, MISMATCH_MESSAGE, UNRECOGNIZED_MESSAGE};

    const EXPIRED: &str =
        "Signature expired: 20260101T000000Z is now earlier than 20260101T001000Z (20260101T001500Z - 5 min.)";
    const INCOMPLETE: &str = "Authorization header requires 'Signature' parameter.";

    /// (service, refusal) -> (status, error code, message): aws-behaviour.md's auth codes
    /// for Lambda and API Gateway (403 `MissingAuthenticationTokenException`,
    /// `UnrecognizedClientException`, `InvalidSignatureException`); STS as the query
    /// protocol's common errors list them (MissingAuthenticationToken 403,
    /// IncompleteSignature 400, InvalidClientTokenId 403) and as STS answers a bad or
    /// expired signature (403 `SignatureDoesNotMatch`, "Signature expired: ..."); CloudWatch
    /// Logs (JSON 1.1) with the same `...Exception` codes at 400.
    #[tokio::test]
    async fn auth_refusals_per_service() {
        let forbidden = StatusCode::FORBIDDEN;
        let bad = StatusCode::BAD_REQUEST;
        let missing = "Missing Authentication Token";
        let cases: &[(Service, A, StatusCode, &str, &str)] = &[
            (Service::Lambda, A::Missing, forbidden, "MissingAuthenticationTokenException", missing),
            (Service::Lambda, A::Incomplete(INCOMPLETE.into()), forbidden, "IncompleteSignatureException", INCOMPLETE),
            (Service::Lambda, A::UnrecognizedClient, forbidden, "UnrecognizedClientException", UNRECOGNIZED_MESSAGE),
            (
                Service::Lambda,
                A::InvalidSignature(MISMATCH_MESSAGE.into()),
                forbidden,
                "InvalidSignatureException",
                MISMATCH_MESSAGE,
            ),
            (Service::Lambda, A::Expired(EXPIRED.into()), forbidden, "InvalidSignatureException", EXPIRED),
            (Service::ApiGateway, A::Missing, forbidden, "MissingAuthenticationTokenException", missing),
            (
                Service::ApiGateway,
                A::Incomplete(INCOMPLETE.into()),
                forbidden,
                "IncompleteSignatureException",
                INCOMPLETE,
            ),
            (
                Service::ApiGateway,
                A::UnrecognizedClient,
                forbidden,
                "UnrecognizedClientException",
                UNRECOGNIZED_MESSAGE,
            ),
            (
                Service::ApiGateway,
                A::InvalidSignature(MISMATCH_MESSAGE.into()),
                forbidden,
                "InvalidSignatureException",
                MISMATCH_MESSAGE,
            ),
            (Service::ApiGateway, A::Expired(EXPIRED.into()), forbidden, "InvalidSignatureException", EXPIRED),
            (Service::Sts, A::Missing, forbidden, "MissingAuthenticationToken", MISSING_TOKEN),
            (Service::Sts, A::Incomplete(INCOMPLETE.into()), bad, "IncompleteSignature", INCOMPLETE),
            (Service::Sts, A::UnrecognizedClient, forbidden, "InvalidClientTokenId", UNRECOGNIZED_MESSAGE),
            (
                Service::Sts,
                A::InvalidSignature(MISMATCH_MESSAGE.into()),
                forbidden,
                "SignatureDoesNotMatch",
                MISMATCH_MESSAGE,
            ),
            (Service::Sts, A::Expired(EXPIRED.into()), forbidden, "SignatureDoesNotMatch", EXPIRED),
            (Service::Logs, A::Missing, bad, "MissingAuthenticationTokenException", MISSING_TOKEN),
            (Service::Logs, A::Incomplete(INCOMPLETE.into()), bad, "IncompleteSignatureException", INCOMPLETE),
            (Service::Logs, A::UnrecognizedClient, bad, "UnrecognizedClientException", UNRECOGNIZED_MESSAGE),
            (
                Service::Logs,
                A::InvalidSignature(MISMATCH_MESSAGE.into()),
                bad,
                "InvalidSignatureException",
                MISMATCH_MESSAGE,
            ),
            (Service::Logs, A::Expired(EXPIRED.into()), bad, "InvalidSignatureException", EXPIRED),
        ];
        for (service, refusal, status, code, message) in cases {
            let e = AwsError::auth(*service, refusal);
            assert_eq!((e.status, e.code, e.message.as_str()), (*status, *code, *message), "{service:?} {refusal:?}");
            assert_eq!(e.fault, "User");
            // Rendered in the service's shape: status, x-amzn-ErrorType, the body's code and message.
            let resp = e.render(*service, "req-1");
            assert_eq!(resp.status(), *status);
            let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            assert_eq!(header("x-amzn-errortype").as_deref(), Some(*code));
            assert_eq!(header("x-amzn-requestid").as_deref(), Some("req-1"));
            let content_type = header("content-type");
            let body = resp.into_body().collect().await.expect("a Full body").to_bytes();
            let text = String::from_utf8_lossy(&body);
            match service {
                Service::Lambda => {
                    let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
                    assert_eq!(doc, serde_json::json!({ "Type": "User", "message": message }), "{text}");
                }
                Service::ApiGateway => {
                    let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
                    assert_eq!(doc, serde_json::json!({ "message": message }), "{text}");
                }
                Service::Logs => {
                    let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
                    assert_eq!(doc, serde_json::json!({ "__type": code, "message": message }), "{text}");
                    assert_eq!(content_type.as_deref(), Some("application/x-amz-json-1.1"));
                }
                Service::Sts => {
                    assert_eq!(content_type.as_deref(), Some("text/xml"));
                    let want = format!(
                        "<Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>req-1</RequestId>",
                        xml_escape(message)
                    );
                    assert!(text.contains(&want), "{text}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_key_store_failure_is_a_server_error_in_every_service() {
        for service in [Service::Lambda, Service::ApiGateway, Service::Sts, Service::Logs] {
            let e = AwsError::auth(service, &A::Lookup("disk I/O error".into()));
            assert_eq!((e.status, e.code, e.fault), (StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", "Service"));
            assert_eq!(e.message, "Could not read the access keys: disk I/O error");
        }
        let e = AwsError::auth(Service::Sts, &A::Lookup("x".into()));
        let body = e.render(Service::Sts, "r").into_body().collect().await.expect("a Full body").to_bytes();
        let xml = String::from_utf8_lossy(&body);
        assert!(xml.contains("<Type>Receiver</Type><Code>ServiceException</Code>"), "{xml}");
    }
}
