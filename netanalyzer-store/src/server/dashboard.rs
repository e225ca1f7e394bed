//! The dashboard page, embedded in the binary and served at `/`.
//!
//! Three static assets, compiled in with `include_str!`: `index.html`,
//! `app.js` (plain JavaScript, charts drawn with its own SVG code, no
//! third-party code) and `style.css`. The page itself is public (like
//! `/health`): what it shows comes from `/api/*` and `/ws/dashboard`,
//! which check the read token (`#token=...` in the page's address).
//!
//! Every answer carries a strict Content-Security-Policy: scripts and
//! styles only from this origin (no inline script, no `eval`),
//! connections only to this origin (HTTP and WebSocket), no frames, no
//! plugins, no forms. `Cache-Control: no-cache` makes a browser revalidate,
//! so an upgraded server never runs with an old script; the `ETag` (a hash
//! of the asset, fixed per build) lets the revalidation answer 304.

use super::http::App;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::{Arc, OnceLock};

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");

/// The Content-Security-Policy of every dashboard answer. `'self'` for
/// `connect-src` covers the same-origin WebSocket in current browsers;
/// `img-src data:` is for nothing but future icons (no external image).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// One embedded asset: its body, content type and ETag.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

/// The three assets, with their ETags computed once.
fn assets() -> &'static [Asset; 3] {
    static ASSETS: OnceLock<[Asset; 3]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let asset = |body: &'static str, content_type| Asset {
            body,
            content_type,
            etag: format!("\"{:016x}\"", fnv1a(body.as_bytes())),
        };
        [
            asset(INDEX_HTML, "text/html; charset=utf-8"),
            asset(APP_JS, "text/javascript; charset=utf-8"),
            asset(STYLE_CSS, "text/css; charset=utf-8"),
        ]
    })
}

/// FNV-1a, 64 bits: a stable content hash for the ETag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The page's routes (`/`, `/index.html`, `/app.js`, `/style.css`).
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { serve(0, &h) }))
        .route(
            "/index.html",
            get(|h: HeaderMap| async move { serve(0, &h) }),
        )
        .route("/app.js", get(|h: HeaderMap| async move { serve(1, &h) }))
        .route(
            "/style.css",
            get(|h: HeaderMap| async move { serve(2, &h) }),
        )
}

/// Answers asset `i` (200, or 304 when `If-None-Match` holds its ETag).
fn serve(i: usize, headers: &HeaderMap) -> Response {
    let a = &assets()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == a.etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            )],
            a.body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(&a.etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_served_with_their_types_and_a_strict_policy() {
        let r = serve(1, &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe"));
        let etag = r.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(serve(1, &h).status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_names_its_hooks() {
        // The CSP forbids inline code: the page must not depend on it.
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains(" style="));
        let handler = INDEX_HTML.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(handler.is_none(), "no inline event handler: on{handler:?}");
        assert!(INDEX_HTML.contains(r#"<script src="/app.js" defer></script>"#));
        for hook in [
            "id=\"conn\"",
            "id=\"last-updated\"",
            "id=\"rate-chart\"",
            "id=\"proto-chart\"",
            "id=\"alerts\"",
            "id=\"flows\"",
            "id=\"sensors\"",
        ] {
            assert!(INDEX_HTML.contains(hook), "{hook}");
        }
        // No third-party code: the script never loads another one.
        assert!(!APP_JS.contains("import ") && !APP_JS.contains("eval("));
        assert!(!APP_JS.contains("innerHTML"), "text only, never markup");
    }
}
