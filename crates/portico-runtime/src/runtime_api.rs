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
use tokio::sync::{oneshot, watch, Notify};

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
    /// Portico's extension, sent by its own runtime clients with an invocation's
    /// outcome: answer with the next invocation (as `GET /invocation/next` would) instead
    /// of a 202, so that each invocation costs one request and one answer.
    pub const THEN_NEXT: &str = "portico-then-next";
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
    /// Told once init is over: the runtime's first `GET /next`, or its `/init/error`.
    init_over: Notify,
    /// Whether the environment's sandbox is complete: [`SANDBOX_PENDING`], then
    /// [`SANDBOX_READY`] or [`SANDBOX_FAILED`] (see [`Slot::sandbox_done`]).
    sandbox: std::sync::atomic::AtomicU8,
    /// Told when `sandbox` leaves [`SANDBOX_PENDING`].
    sandbox_done: Notify,
    /// A spare's: the answer to `GET /portico/assignment` once a function is assigned
    /// to it (its environment and task root); `None` for an environment started for its
    /// function.
    assignment: Option<watch::Sender<Option<Bytes>>>,
    /// When a spare's runtime client first asked for its assignment: it had started.
    asked_assignment: std::sync::OnceLock<std::time::Instant>,
    /// Told when `asked_assignment` is set.
    asked_assignment_now: Notify,
}

/// The sandbox is still being completed (the process joins its cgroups).
pub const SANDBOX_PENDING: u8 = 0;
/// The sandbox is complete: function code may run.
pub const SANDBOX_READY: u8 = 1;
/// The sandbox could not be completed: the runtime must not run function code.
pub const SANDBOX_FAILED: u8 = 2;

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
    /// The slot of a spare: its runtime client waits in `GET /portico/assignment` until
    /// [`Slot::assign`].
    pub fn spare() -> Slot {
        Slot { assignment: Some(watch::channel(None).0), ..Slot::default() }
    }

    /// Whether this is a spare's slot.
    pub fn is_spare(&self) -> bool {
        self.assignment.is_some()
    }

    /// Assigns a spare its function: `answer` is the JSON document its runtime client's
    /// `GET /portico/assignment` gets (see the Node.js and Python clients).
    pub fn assign(&self, answer: Bytes) {
        if let Some(tx) = &self.assignment {
            tx.send_replace(Some(answer));
        }
    }

    /// When a spare's runtime client had started (first asked for its assignment).
    pub fn asked_assignment(&self) -> Option<std::time::Instant> {
        self.asked_assignment.get().copied()
    }

    /// Waits until a spare's runtime client has started (it asked for its assignment).
    pub async fn client_started(&self) {
        let notified = self.asked_assignment_now.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.asked_assignment.get().is_none() {
            notified.await;
        }
    }

    /// A spare's assignment, once made; `None` when this is no spare.
    async fn assignment(&self) -> Option<Bytes> {
        let mut rx = self.assignment.as_ref()?.subscribe();
        if self.asked_assignment.set(std::time::Instant::now()).is_ok() {
            self.asked_assignment_now.notify_waiters();
        }
        let answer = rx.wait_for(Option::is_some).await.ok()?.clone();
        answer
    }

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

    /// Records whether the sandbox was completed; a runtime waiting in
    /// `GET /2018-06-01/runtime/portico/sandbox` is answered.
    pub fn sandbox_done(&self, ready: bool) {
        let state = if ready { SANDBOX_READY } else { SANDBOX_FAILED };
        self.sandbox.store(state, std::sync::atomic::Ordering::Release);
        self.sandbox_done.notify_one();
    }

    /// Waits until the sandbox is complete (or could not be): whether it is.
    async fn sandbox_ready(&self) -> bool {
        loop {
            match self.sandbox.load(std::sync::atomic::Ordering::Acquire) {
                SANDBOX_PENDING => self.sandbox_done.notified().await,
                state => return state == SANDBOX_READY,
            }
        }
    }

    /// Whether the runtime has finished init (asked for an invocation).
    pub fn initialised(&self) -> Option<std::time::Instant> {
        self.lock().initialised
    }

    /// Waits until init is over: the runtime asked for its first invocation (everything
    /// it wrote during init is then in its output pipe), or it reported an init error
    /// (an invocation delivered afterwards is answered with it). Returns at once when
    /// that already happened. For one waiter: the environment's owner, on a cold start.
    pub async fn init_over(&self) {
        self.init_over.notified().await;
    }

    fn take_for_runtime(&self) -> Result<Invocation, oneshot::Receiver<Invocation>> {
        let mut s = self.lock();
        let first = s.initialised.is_none();
        let taken = match s.queued.take() {
            Some(inv) => Ok(inv),
            None => {
                let (tx, rx) = oneshot::channel();
                s.parked = Some(tx);
                Err(rx)
            }
        };
        if first {
            s.initialised = Some(std::time::Instant::now());
            drop(s);
            // After parking: an invocation delivered on this signal finds the poll waiting.
            self.init_over.notify_one();
        }
        taken
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
            drop(s);
        }
        // Before the 202: the runtime exits once it has it, and its owner must see the
        // error before the exit.
        self.init_over.notify_one();
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
/// `admit(local, peer)` may refuse a connection by its addresses (the sandbox checks it
/// comes from the environment's user).
pub async fn serve(
    listener: TcpListener,
    slot: Arc<Slot>,
    admit: impl Fn(std::net::SocketAddr, std::net::SocketAddr) -> bool + Send + Sync + 'static,
) {
    let admit = Arc::new(admit);
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let Ok(local) = stream.local_addr() else { continue };
        let _ = stream.set_nodelay(true);
        let (slot, admit) = (slot.clone(), admit.clone());
        tokio::spawn(async move {
            // The sandbox's check reads a procfs table as long as the host's socket list
            // (milliseconds on a busy host): on a blocking thread, not a request thread.
            if !tokio::task::spawn_blocking(move || admit(local, peer)).await.unwrap_or(false) {
                return;
            }
            serve_connection(stream, slot).await;
        });
    }
}

/// Serves the Runtime API on one connection until it closes: a connection accepted by
/// [`serve`], or the socket a runtime client inherited (only its process holds the
/// other end, so it needs no admission).
pub async fn serve_connection(io: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin, slot: Arc<Slot>) {
    let service = hyper::service::service_fn(move |req| {
        let slot = slot.clone();
        async move { Ok::<_, Infallible>(handle(req, &slot).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service).await;
}

async fn read_body(body: Incoming) -> Result<Bytes, ()> {
    match Limited::new(body, MAX_SYNC_PAYLOAD).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(()),
    }
}

async fn handle(req: Request<Incoming>, slot: &Slot) -> Response<Body> {
    // Split, so that the path and headers stay borrowed while the body is read.
    let (parts, body) = req.into_parts();
    let Some(rest) = parts.uri.path().strip_prefix(names::PREFIX) else {
        return reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#);
    };
    match (&parts.method, rest) {
        (&Method::GET, "invocation/next") => next(slot).await,
        // Portico's own runtime clients ask before loading function code, when told to
        // by `_PORTICO_AWAIT_SANDBOX` (not part of Lambda's Runtime API).
        (&Method::GET, "portico/sandbox") => match slot.sandbox_ready().await {
            // A spare learns it is one, and then asks for its function.
            true if slot.is_spare() => reply(StatusCode::OK, r#"{"status":"OK","spare":true}"#),
            true => reply(StatusCode::OK, r#"{"status":"OK"}"#),
            false => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"errorMessage":"the environment's sandbox could not be completed","errorType":"Sandbox.Failure"}"#,
            ),
        },
        (&Method::GET, "portico/assignment") => match slot.assignment().await {
            Some(answer) => {
                let mut r = reply(StatusCode::OK, "");
                *r.body_mut() = Full::new(answer);
                r
            }
            None => reply(
                StatusCode::BAD_REQUEST,
                r#"{"errorMessage":"this environment is not a spare: it has its function","errorType":"NotSpare"}"#,
            ),
        },
        (&Method::POST, "init/error") => {
            let error_type = error_type(&parts.headers);
            let body = read_body(body).await.unwrap_or_default();
            slot.init_error(error_type, body);
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (&Method::POST, path) => {
            let Some((id, kind)) = path.strip_prefix("invocation/").and_then(|p| p.rsplit_once('/')) else {
                return reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#);
            };
            let outcome = match kind {
                "response" => match read_body(body).await {
                    Ok(b) => Reply::Response(b),
                    Err(()) => Reply::TooLarge,
                },
                "error" => {
                    let error_type = error_type(&parts.headers);
                    let body = read_body(body).await.unwrap_or_default();
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
            if parts.headers.contains_key(names::THEN_NEXT) {
                return next(slot).await;
            }
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#),
    }
}

fn error_type(headers: &http::HeaderMap) -> Option<String> {
    headers.get(names::FUNCTION_ERROR_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string)
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
    let hex = inv.request_id.replace('-', "");
    if let Ok(v) =
        HeaderValue::from_str(&format!("Root=1-{:08x}-{}", inv.deadline_ms / 1000, hex.get(..24).unwrap_or(&hex)))
    {
        h.insert(names::TRACE_ID, v);
    }
    slot.start(inv.request_id, inv.reply);
    r
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn invocation(id: &str) -> (Invocation, oneshot::Receiver<Reply>) {
        let (reply, rx) = oneshot::channel();
        let inv = Invocation {
            request_id: Arc::from(id),
            payload: Bytes::from_static(b"{}"),
            deadline_ms: 0,
            invoked_arn: Arc::from("arn"),
            reply,
        };
        (inv, rx)
    }

    async fn over(slot: &Slot) -> bool {
        tokio::time::timeout(Duration::from_millis(20), slot.init_over()).await.is_ok()
    }

    #[tokio::test]
    async fn init_is_over_at_the_first_poll_which_then_waits_for_the_invocation() {
        let slot = Slot::default();
        assert!(!over(&slot).await);
        let Err(mut parked) = slot.take_for_runtime() else { panic!("nothing was queued") };
        assert!(slot.initialised().is_some());
        // Told once, also when the waiter comes after the poll.
        assert!(over(&slot).await);
        let (inv, _reply) = invocation("a");
        slot.deliver(inv);
        assert_eq!(&*parked.try_recv().expect("handed to the parked poll").request_id, "a");
        // Later polls are not the end of init.
        let _ = slot.take_for_runtime();
        assert!(!over(&slot).await);
    }

    #[tokio::test]
    async fn an_init_error_ends_init_and_answers_the_invocation() {
        let slot = Slot::default();
        slot.init_error(Some("Runtime.Test".into()), Bytes::from_static(b"boom"));
        assert!(over(&slot).await);
        assert!(slot.initialised().is_none());
        let (inv, mut reply) = invocation("a");
        slot.deliver(inv);
        match reply.try_recv() {
            Ok(Reply::Error { error_type, body }) => {
                assert_eq!((error_type.as_deref(), &body[..]), (Some("Runtime.Test"), &b"boom"[..]))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_sandbox_question_is_answered_once_the_sandbox_is_done() {
        use std::sync::Arc;
        let slot = Arc::new(Slot::default());
        let waiting = tokio::spawn({
            let slot = slot.clone();
            async move { slot.sandbox_ready().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no answer while the sandbox is pending");
        slot.sandbox_done(true);
        assert!(waiting.await.expect("join"));
        // Asked again, or after the fact: the same answer at once.
        assert!(slot.sandbox_ready().await);
        let failed = Slot::default();
        failed.sandbox_done(false);
        assert!(!failed.sandbox_ready().await);
    }

    /// Reads one HTTP answer (head and Content-Length body) from `stream`.
    async fn read_answer(stream: &mut tokio::net::UnixStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    return text;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed after {text:?}", text = String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    #[tokio::test]
    async fn an_outcome_posted_with_then_next_is_answered_by_the_next_invocation() {
        use tokio::io::AsyncWriteExt;
        let slot = Arc::new(Slot::default());
        let (mut runtime, ours) = tokio::net::UnixStream::pair().expect("socket pair");
        tokio::spawn(serve_connection(ours, slot.clone()));
        let post = |id: &str, then_next: bool| {
            let extra = if then_next { "Portico-Then-Next: 1\r\n" } else { "" };
            let body = format!("\"{id}\"");
            format!(
                "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let (a, answer_a) = invocation("a");
        slot.deliver(a);
        runtime.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        assert!(read_answer(&mut runtime).await.contains("lambda-runtime-aws-request-id: a\r\n"));
        // The outcome asks for the next invocation, which is not there yet: it waits.
        runtime.write_all(post("a", true).as_bytes()).await.expect("write");
        match answer_a.await {
            Ok(Reply::Response(body)) => assert_eq!(&body[..], b"\"a\""),
            other => panic!("{other:?}"),
        }
        let (b, answer_b) = invocation("b");
        slot.deliver(b);
        let answer = read_answer(&mut runtime).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("lambda-runtime-aws-request-id: b\r\n"), "{answer}");
        // Without the header: the 202 of the Runtime API.
        runtime.write_all(post("b", false).as_bytes()).await.expect("write");
        assert!(read_answer(&mut runtime).await.starts_with("HTTP/1.1 202 Accepted\r\n"));
        assert!(matches!(answer_b.await, Ok(Reply::Response(_))));
    }

    #[tokio::test]
    async fn a_spare_waits_for_its_assignment_and_others_have_none() {
        let slot = Arc::new(Slot::spare());
        assert!(slot.is_spare());
        let waiting = tokio::spawn({
            let slot = slot.clone();
            async move { slot.assignment().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no answer before the assignment");
        slot.assign(Bytes::from_static(br#"{"environment":{},"taskRoot":"/t"}"#));
        let answer = waiting.await.expect("join");
        assert_eq!(answer.as_deref(), Some(&br#"{"environment":{},"taskRoot":"/t"}"#[..]));
        let plain = Slot::default();
        assert!(!plain.is_spare());
        assert!(plain.assignment().await.is_none());
    }
}
