//! The read benchmark's reference (`deploy/bench_reads.sh`): a bare axum server on the
//! gateway's own axum and tokio, answering every GET of `/{name}` with the bytes of
//! `DIR/{name}` as JSON, read once at start. What the gateway serves for a route is measured
//! against this serving the same body.
//!
//! Usage: `bare ADDR DIR` (e.g. `bare 127.0.0.1:15900 /tmp/bodies`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

async fn body(
    State(bodies): State<Arc<HashMap<String, Bytes>>>,
    Path(name): Path<String>,
) -> Response {
    match bodies.get(&name) {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(dir)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: bare ADDR DIR");
    };
    let mut bodies = HashMap::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            bodies.insert(name, Bytes::from(std::fs::read(entry.path())?));
        }
    }
    let app = axum::Router::new()
        .route("/{name}", axum::routing::get(body))
        .with_state(Arc::new(bodies));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
