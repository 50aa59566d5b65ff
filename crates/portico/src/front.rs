//! The one public listener: accepts connections and sends each request to its plane,
//! judged by Host and path:
//! - `{apiId}.execute-api.*` or `/execute-api/{apiId}/...` → the gateway;
//! - `/2015-03-31/...`, `/v2/...`, an STS form post → the control plane;
//! - anything else → 404.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use portico_control::{service_of, Control};
use portico_gateway::{Client, Gateway};
use tokio::net::TcpListener;

/// Largest control-plane request body: a 50 MB zip, base64-encoded, plus JSON.
const MAX_CONTROL_BODY: usize = 70 * 1024 * 1024;

/// The planes behind the listener.
#[derive(Debug)]
pub struct Front {
    pub control: Arc<Control>,
    pub gateway: Arc<Gateway>,
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

impl Front {
    async fn dispatch(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host())
            .unwrap_or("");
        if let Some(api_id) = api_from_host(host) {
            let api_id = api_id.to_string();
            let (parts, body) = req.into_parts();
            let path = parts.uri.path().to_string();
            return self.gateway.handle(parts, body, &api_id, &path, Client { addr: peer }).await;
        }
        if let Some(rest) = req.uri().path().strip_prefix("/execute-api/") {
            let (api_id, path) = match rest.find('/') {
                Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
                None => (rest.to_string(), "/".to_string()),
            };
            let (parts, body) = req.into_parts();
            return self.gateway.handle(parts, body, &api_id, &path, Client { addr: peer }).await;
        }
        let Some(service) = service_of(req.method(), req.uri().path(), req.headers()) else {
            return plain(StatusCode::NOT_FOUND, "Not Found\n");
        };
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_CONTROL_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return portico_control::AwsError::too_large(format!(
                    "Request must be smaller than {MAX_CONTROL_BODY} bytes"
                ))
                .render(service, &portico_model::ids::uuid())
            }
        };
        self.control.handle(service, parts.method, parts.uri.path(), parts.uri.query(), parts.headers, body).await
    }
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight
/// connections finish (bounded).
pub async fn serve(listener: TcpListener, front: Arc<Front>, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, most likely: back off rather than spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
                    .header_read_timeout(std::time::Duration::from_secs(30))
                    .max_buf_size(64 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
}
