//! The Lambda Runtime API (`/2018-06-01/runtime/...`) as one environment sees it.
//!
//! Each environment gets its own loopback listener, so an environment is known by the
//! socket its runtime connects to, never by anything the function sends: one
//! environment's process cannot fetch or answer another's invocations.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use portico_model::function::limits::MAX_SYNC_PAYLOAD;

/// Header and path names of the Runtime API.
pub mod names {
    /// Request id of the invocation.
    pub const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
    /// Deadline, epoch milliseconds.
    pub const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
    /// ARN the caller invoked.
    pub const INVOKED_FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
    /// X-Ray trace header.
    pub const TRACE_ID: &str = "lambda-runtime-trace-id";
    /// Error type reported by the runtime on `/error`.
    pub const FUNCTION_ERROR_TYPE: &str = "lambda-runtime-function-error-type";
    /// Path prefix of every Runtime API call.
    pub const PREFIX: &str = "/2018-06-01/runtime/";
}

/// An invocation handed to an environment.
#[derive(Debug)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: Arc<str>,
    /// The event.
    pub payload: Bytes,
    /// `Lambda-Runtime-Deadline-Ms`.
    pub deadline_ms: i64,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub invoked_arn: Arc<str>,
    /// Where the runtime's answer goes.
    pub reply: oneshot::Sender<Reply>,
}

/// What the runtime answered for one invocation, or for its init.
#[derive(Debug)]
pub enum Reply {
    /// `POST /invocation/{id}/response`.
    Response(Bytes),
    /// `POST /invocation/{id}/error` or `/init/error`: the runtime's error type and body.
    Error {
        /// `Lambda-Runtime-Function-Error-Type`, if sent.
        error_type: Option<String>,
        /// The error document.
        body: Bytes,
    },
    /// The response exceeded the 6 MB limit.
    TooLarge,
}

/// State shared between the environment's owner and its Runtime API server.
#[derive(Debug, Default)]
pub struct Slot {
    inner: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// The runtime's parked `GET /next`.
    parked: Option<oneshot::Sender<Invocation>>,
    /// An invocation not yet fetched by the runtime.
    queued: Option<Invocation>,
    /// The invocation the runtime is working on.
    in_flight: Option<(Arc<str>, oneshot::Sender<Reply>)>,
    /// An init error reported before any invocation arrived.
    init_error: Option<(Option<String>, Bytes)>,
    /// When the runtime first asked for an invocation: init finished.
    initialised: Option<std::time::Instant>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // The state is a handful of Options that are valid after any panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands an invocation to the runtime: directly to its parked `GET /next` when it
    /// waits, otherwise queued for its next one. A reported init error answers at once.
    pub fn deliver(&self, inv: Invocation) {
        let mut s = self.lock();
        if let Some((error_type, body)) = s.init_error.clone() {
            drop(s);
            let _ = inv.reply.send(Reply::Error { error_type, body });
            return;
        }
        let mut inv = inv;
        while let Some(parked) = s.parked.take() {
            match parked.send(inv) {
                Ok(()) => return,
                // That poll's connection went away; try the next or queue.
                Err(back) => inv = back,
            }
        }
        s.queued = Some(inv);
    }

    /// Whether the runtime has finished init (asked for an invocation).
    pub fn initialised(&self) -> Option<std::time::Instant> {
        self.lock().initialised
    }

    fn take_for_runtime(&self) -> Result<Invocation, oneshot::Receiver<Invocation>> {
        let mut s = self.lock();
        s.initialised.get_or_insert_with(std::time::Instant::now);
        if let Some(inv) = s.queued.take() {
            return Ok(inv);
        }
        let (tx, rx) = oneshot::channel();
        s.parked = Some(tx);
        Err(rx)
    }

    fn start(&self, request_id: Arc<str>, reply: oneshot::Sender<Reply>) {
        self.lock().in_flight = Some((request_id, reply));
    }

    fn finish(&self, request_id: &str, reply: Reply) -> bool {
        let mut s = self.lock();
        match s.in_flight.take() {
            Some((id, tx)) if &*id == request_id => {
                drop(s);
                let _ = tx.send(reply);
                true
            }
            other => {
                s.in_flight = other;
                false
            }
        }
    }

    fn init_error(&self, error_type: Option<String>, body: Bytes) {
        let mut s = self.lock();
        if let Some(inv) = s.queued.take() {
            drop(s);
            let _ = inv.reply.send(Reply::Error { error_type, body });
        } else {
            s.init_error = Some((error_type, body));
        }
    }
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Serves the Runtime API for one environment until the listener's task is aborted.
/// `admit` may refuse a connection (the sandbox checks it comes from the environment's user).
pub async fn serve(listener: TcpListener, slot: Arc<Slot>, admit: impl Fn(&tokio::net::TcpStream) -> bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        if !admit(&stream) {
            continue;
        }
        let _ = stream.set_nodelay(true);
        let slot = slot.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let slot = slot.clone();
                async move { Ok::<_, Infallible>(handle(req, &slot).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, ()> {
    match Limited::new(body, MAX_SYNC_PAYLOAD).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(()),
    }
}

async fn handle(req: Request<Incoming>, slot: &Slot) -> Response<Body> {
    let Some(rest) = req.uri().path().strip_prefix(names::PREFIX) else {
        return reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#);
    };
    let rest = rest.to_string();
    let method = req.method().clone();
    match (method, rest.as_str()) {
        (Method::GET, "invocation/next") => next(slot).await,
        (Method::POST, "init/error") => {
            let error_type = error_type(&req);
            let body = read_body(req.into_body()).await.unwrap_or_default();
            slot.init_error(error_type, body);
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (Method::POST, path) => {
            let Some((id, kind)) = path.strip_prefix("invocation/").and_then(|p| p.rsplit_once('/')) else {
                return reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#);
            };
            let outcome = match kind {
                "response" => match read_body(req.into_body()).await {
                    Ok(b) => Reply::Response(b),
                    Err(()) => Reply::TooLarge,
                },
                "error" => {
                    let error_type = error_type(&req);
                    let body = read_body(req.into_body()).await.unwrap_or_default();
                    Reply::Error { error_type, body }
                }
                _ => return reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#),
            };
            let too_large = matches!(outcome, Reply::TooLarge);
            if !slot.finish(id, outcome) {
                return reply(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
                );
            }
            if too_large {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    r#"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#,
                );
            }
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#),
    }
}

fn error_type(req: &Request<Incoming>) -> Option<String> {
    req.headers().get(names::FUNCTION_ERROR_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn next(slot: &Slot) -> Response<Body> {
    let inv = match slot.take_for_runtime() {
        Ok(inv) => inv,
        Err(rx) => match rx.await {
            Ok(inv) => inv,
            // The environment is being torn down.
            Err(_) => return reply(StatusCode::GONE, r#"{"errorMessage":"Environment stopped","errorType":"Gone"}"#),
        },
    };
    let mut r = Response::new(Full::new(inv.payload));
    let h = r.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&inv.request_id) {
        h.insert(names::REQUEST_ID, v);
    }
    h.insert(names::DEADLINE_MS, HeaderValue::from(inv.deadline_ms));
    if let Ok(v) = HeaderValue::from_str(&inv.invoked_arn) {
        h.insert(names::INVOKED_FUNCTION_ARN, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Root=1-{:08x}-{}",
        inv.deadline_ms / 1000,
        &inv.request_id.replace('-', "")[..24.min(inv.request_id.len())]
    )) {
        h.insert(names::TRACE_ID, v);
    }
    slot.start(inv.request_id, inv.reply);
    r
}
