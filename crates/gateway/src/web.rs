//! The dashboard: the built single-page application (`web/dist`), served at `/` when
//! `web_dir` names it.
//!
//! - Hashed files under `/assets/` are cached for a year (`immutable`); a missing one is a 404.
//! - Any other path that is not the API's is a route of the application: the file if there
//!   is one, else `index.html` (which is never cached, so a new build is seen at once).
//! - Every answer carries a Content-Security-Policy that allows scripts, style sheets and
//!   connections from this origin only (no inline script, no `eval`), and forbids framing.
//!   Inline styles are allowed: the console's terminal (xterm.js) writes its cell sizes and
//!   colours into `<style>` elements it makes at run time, which no hash or nonce can name.
//! - gzip files beside the originals (`app.js.gz`) are sent to clients that accept them.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};

/// The policy of every page: this origin only, no inline script, no frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The built dashboard.
#[derive(Debug, Clone)]
pub struct WebFiles {
    dir: PathBuf,
}

impl WebFiles {
    /// The files in `dir`, which must hold an `index.html`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            dir.join("index.html").is_file(),
            "web_dir {} has no index.html (build the dashboard: npm run build in web/)",
            dir.display()
        );
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Whether `request` is for the dashboard rather than the API.
    pub fn serves(request: &Request) -> bool {
        let path = request.uri().path();
        matches!(*request.method(), Method::GET | Method::HEAD)
            && !(path == "/api" || path.starts_with("/api/"))
            && path != "/health"
            && !path.starts_with("/socket.io")
    }

    /// The file `request` asks for, or the application's page for a route of its own.
    pub async fn serve(&self, request: Request) -> Response {
        let asset = request.uri().path().starts_with("/assets/");
        let files = ServeDir::new(&self.dir).precompressed_gzip();
        let served = if asset {
            files.oneshot(request).await
        } else {
            let index = ServeFile::new(self.dir.join("index.html")).precompressed_gzip();
            files.fallback(index).oneshot(request).await
        };
        let mut response = match served {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        };
        let cache = if asset && response.status() == StatusCode::OK {
            IMMUTABLE
        } else {
            "no-cache"
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        secure_headers(headers);
        response
    }
}

/// The headers every dashboard answer carries.
fn secure_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}
