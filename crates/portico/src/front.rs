//! The one public listener: accepts connections and sends each request to its plane,
//! judged by Host and path:
//! - `{apiId}.execute-api.*` or `/execute-api/{apiId}/...` → the gateway;
//! - `/console/...` → the web console;
//! - `/2015-03-31/...`, `/v2/...`, an STS form post → the control plane;
//! - anything else → 404.
//!
//! It also owns what protects the process from its clients ([`Limits`]):
//! - **request heads**: at most [`MAX_HEAD`] bytes (request line and headers) and 100
//!   headers (hyper's default); past either, hyper answers a bare 431 and closes the
//!   connection (hyper has no hook for a body there). Below it the gateway applies API
//!   Gateway's own 10 240-byte quota with a JSON 431;
//! - **bodies**: the control plane reads at most [`MAX_CONTROL_BODY`], the gateway 10 MB;
//!   a control-plane call that is unsigned, malformed or signed with an unknown key is
//!   refused from its head, before any of its body is read
//!   ([`portico_control::Control::refuse_early`]), and that connection is closed;
//! - **slow clients**: a request head must arrive within `client_timeout` (hyper's header
//!   read timeout, which also ends idle keep-alive connections); a body must never pause
//!   longer than that, and must average at least [`MIN_BODY_RATE`] after its first
//!   `client_timeout` ([`Paced`]); a body cut short is answered 408 (the connection
//!   closes); a client that stops reading its response is cut off once a write has
//!   waited `client_timeout` ([`WriteDeadline`]);
//! - **connections**: at most `max_connections` are served at once; past it the listener
//!   stops accepting (new clients wait in the kernel's backlog) until one ends.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use portico_control::{service_of, AwsError, Control};
use portico_gateway::{Client, Gateway};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

/// Largest control-plane request body: a 50 MB zip, base64-encoded, plus JSON.
const MAX_CONTROL_BODY: usize = 70 * 1024 * 1024;
/// Largest request head (request line and headers), in bytes.
const MAX_HEAD: usize = 16 * 1024;
/// hyper's read buffer: past [`MAX_HEAD`] it holds body bytes, so a larger one reads
/// uploads in fewer calls.
const MAX_BUF: usize = 64 * 1024;
/// A connection whose writes fail once one has been blocked for `limit`: a client that
/// stops reading its responses cannot hold a connection slot (and its buffers) forever.
struct WriteDeadline {
    inner: tokio::net::TcpStream,
    limit: Duration,
    /// Armed while a write is waiting for the client to read.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteDeadline {
    fn new(inner: tokio::net::TcpStream, limit: Duration) -> WriteDeadline {
        WriteDeadline { inner, limit, stalled: None }
    }

    /// Maps a pending write to an error once it has waited `limit`.
    fn pending_or_timeout<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let limit = self.limit;
        let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading its response",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for WriteDeadline {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending_or_timeout(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending_or_timeout(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending_or_timeout(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The slowest average a request body may arrive at, after its first `client_timeout`:
/// 1 KiB/s (a 70 MB upload may take 19 hours, a byte every few seconds may not).
const MIN_BODY_RATE: u64 = 1024;

/// What the listener allows its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request head, or pause within a body.
    pub client_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// The planes behind the listener.
#[derive(Debug)]
pub struct Front {
    pub control: Arc<Control>,
    pub console: portico_console::Console,
    pub gateway: Arc<Gateway>,
    pub limits: Limits,
}

/// The API id of a host-style data-plane request (`{apiId}.execute-api.*`).
fn api_from_host(host: &str) -> Option<&str> {
    let (id, rest) = host.split_once('.')?;
    (rest.starts_with("execute-api.") && portico_model::ids::is_api_id(id)).then_some(id)
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// A client too slow to send its body ([`Paced`]).
#[derive(Debug)]
struct TooSlow(&'static str);

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for TooSlow {}

/// A request body that must keep arriving: no pause longer than the client timeout, and
/// on average at least [`MIN_BODY_RATE`] bytes a second once the first timeout has
/// passed. The clock starts when the body is first read (time the server spends before
/// reading it is not the client's), so the deadline is
/// `min(last data + timeout, first read + timeout + received / rate)`. The timer is made
/// only when the client keeps the server waiting.
#[derive(Debug)]
struct Paced {
    inner: Incoming,
    timeout: Duration,
    /// When the body was first polled, and when data last came.
    started: Option<(Instant, Instant)>,
    received: u64,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Paced {
    fn new(inner: Incoming, timeout: Duration) -> Paced {
        Paced { inner, timeout, started: None, received: 0, sleep: None }
    }

    fn deadline(&self, first: Instant, last: Instant) -> Instant {
        let by_rate = first + self.timeout + Duration::from_millis(self.received.saturating_mul(1000) / MIN_BODY_RATE);
        by_rate.min(last + self.timeout)
    }
}

impl Body for Paced {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let (first, last) = *this.started.get_or_insert_with(|| {
            let now = Instant::now();
            (now, now)
        });
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
                    let now = Instant::now();
                    this.started = Some((first, now));
                    let deadline = this.deadline(first, now);
                    if let Some(sleep) = &mut this.sleep {
                        sleep.as_mut().reset(deadline);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.deadline(first, last);
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let why = if this.received == 0 {
                            "no request body within the client timeout"
                        } else {
                            "request body too slow"
                        };
                        Poll::Ready(Some(Err(Box::new(TooSlow(why)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a request announces a body (`Content-Length` > 0, or chunked).
fn has_body(parts: &http::request::Parts) -> bool {
    parts.headers.contains_key(http::header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Ends the connection after `resp`: its request's body is left unread.
fn closing(mut resp: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    resp.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

impl Front {
    async fn dispatch(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host())
            .unwrap_or("");
        let timeout = self.limits.client_timeout;
        if let Some(api_id) = api_from_host(host) {
            let api_id = api_id.to_string();
            let (parts, body) = req.into_parts();
            let path = parts.uri.path().to_string();
            let body = Paced::new(body, timeout);
            return self.gateway.handle(parts, body, &api_id, &path, Client { addr: peer }).await;
        }
        if let Some(rest) = req.uri().path().strip_prefix("/execute-api/") {
            let (api_id, path) = match rest.find('/') {
                Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
                None => (rest.to_string(), "/".to_string()),
            };
            let (parts, body) = req.into_parts();
            let body = Paced::new(body, timeout);
            return self.gateway.handle(parts, body, &api_id, &path, Client { addr: peer }).await;
        }
        if portico_console::is_console_path(req.uri().path()) {
            let (parts, body) = req.into_parts();
            let max = match self.console.admit(&parts, MAX_CONTROL_BODY) {
                Ok(max) => max,
                Err(refused) => {
                    let refused = refused.into_response();
                    return if has_body(&parts) { closing(refused) } else { refused };
                }
            };
            let body = match Limited::new(Paced::new(body, timeout), max).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    tracing::debug!(%peer, "console request body refused: {e}");
                    let too_large = e.downcast_ref::<LengthLimitError>().is_some();
                    let (status, message) = if too_large {
                        (StatusCode::PAYLOAD_TOO_LARGE, "{\"message\":\"request body too large\"}")
                    } else {
                        (StatusCode::REQUEST_TIMEOUT, "{\"message\":\"the request body was not received in time\"}")
                    };
                    return closing(plain(status, message));
                }
            };
            return self.console.handle(parts, body).await;
        }
        let Some(service) = service_of(req.method(), req.uri().path(), req.headers()) else {
            return plain(StatusCode::NOT_FOUND, "Not Found\n");
        };
        let (parts, body) = req.into_parts();
        // Unsigned or unknown callers are refused before their body is read.
        if let Some(refused) = self.control.refuse_early(service, &parts) {
            return if has_body(&parts) { closing(refused) } else { refused };
        }
        let body = match Limited::new(Paced::new(body, timeout), MAX_CONTROL_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                let e = AwsError::too_large(format!("Request must be smaller than {MAX_CONTROL_BODY} bytes"));
                return closing(e.render(service, &portico_model::ids::uuid()));
            }
            Err(e) => {
                tracing::debug!(%peer, "control-plane request body not received: {e}");
                let e = AwsError::request_timeout("The request body was not received in time.");
                return closing(e.render(service, &portico_model::ids::uuid()));
            }
        };
        self.control.handle(service, parts.method, parts.uri.path(), parts.uri.query(), parts.headers, body).await
    }
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight
/// connections finish (bounded).
pub async fn serve(listener: TcpListener, front: Arc<Front>, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limits = front.limits;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut saturated = false;
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the cap, connections wait in the kernel's backlog.
        if slots.available_permits() == 0 && !saturated {
            tracing::warn!(
                "{} connections open: new ones wait until one ends (--max-connections)",
                limits.max_connections
            );
        }
        saturated = slots.available_permits() == 0;
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: back off rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let front = front.clone();
        let service = hyper::service::service_fn(move |req| {
            let front = front.clone();
            async move { Ok::<_, Infallible>(front.dispatch(req, peer).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.client_timeout)
            .max_header_size(MAX_HEAD)
            .max_buf_size(MAX_BUF)
            .serve_connection(TokioIo::new(WriteDeadline::new(stream, limits.client_timeout)), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_ids_from_hosts() {
        assert_eq!(api_from_host("abc123defg.execute-api.localhost:4750"), Some("abc123defg"));
        assert_eq!(api_from_host("abc123defg.execute-api"), None);
        assert_eq!(api_from_host("localhost:4750"), None);
    }
}
