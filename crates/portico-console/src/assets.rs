//! The console's pages and scripts, embedded from `console/static` at compile time, so
//! running Portico needs no Node tooling and the pages load nothing from elsewhere.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use include_dir::{include_dir, Dir};

static STATIC: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../console/static");

/// What the console's pages may load and connect to: only Portico itself. CodeMirror
/// writes its styles into `<style>` elements, hence `'unsafe-inline'` for styles only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The embedded file at `path` (relative to `console/static`), served with its type and
/// the console's security headers; `None` when there is no such file.
pub fn file(path: &str) -> Option<Response<Full<Bytes>>> {
    if path.split('/').any(|seg| seg.is_empty() || seg == "..") {
        return None;
    }
    let f = STATIC.get_file(path)?;
    let mut r = Response::new(Full::new(Bytes::from_static(f.contents())));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    // Small files from the binary itself: revalidate each time so an upgrade shows at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(h);
    Some(r)
}

/// The console's entry page.
pub fn index() -> Response<Full<Bytes>> {
    file("index.html").unwrap_or_else(|| {
        let mut r = Response::new(Full::new(Bytes::from_static(b"the console's pages are missing from this build\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    })
}

/// Headers every console answer carries.
pub fn secure(h: &mut http::HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_scripts_are_embedded_with_their_types() {
        let r = index();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(r.headers()[header::CONTENT_SECURITY_POLICY].to_str().is_ok_and(|v| v.contains("default-src 'self'")));
        let app = file("app.js").expect("app.js embedded");
        assert_eq!(app.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    }

    #[test]
    fn paths_outside_the_tree_are_not_found() {
        for p in ["../Cargo.toml", "", "/app.js", "a//b", "vendor/../app.js", "nope.js"] {
            assert!(file(p).is_none(), "{p}");
        }
    }
}
