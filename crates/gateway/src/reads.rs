//! Rendered listings, kept per caller and route, and served again while server-svc says
//! nothing they show has changed.
//!
//! A listing is the bulk of a panel's traffic and the costliest read: a page of servers, the
//! catalog, and the JSON of each. server-svc names what a listing shows with a version that
//! moves in the same transaction as any change to it (`store::versions` there). The gateway
//! keeps the bytes it last rendered with that version and sends the version along with the
//! next request; "not modified" costs server-svc one indexed read, and the gateway sends the
//! bytes it has. So:
//! - server-svc still decides, on every request, who sees what (authorization stays there);
//! - an answer is never older than the request: the version is read after it arrived, and a
//!   write the caller saw had committed before;
//! - entries are keyed by the caller's user id and role, so nothing crosses tenants;
//! - the cache holds rendered bytes up to a budget (`read_cache_mb`), least recently used
//!   out first.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use moka::sync::Cache;
use platform::grpc::Caller;
use proto::server::v1 as pb;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// Which listing, for whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadKey {
    user_id: i64,
    admin: bool,
    /// The route (one per dialect's listing).
    route: &'static str,
    /// Whatever else the listing depends on (a filter, an owner), as the route spells it.
    args: Box<str>,
}

impl ReadKey {
    pub fn new(caller: Caller, route: &'static str, args: impl Into<Box<str>>) -> Self {
        Self {
            user_id: caller.user_id,
            admin: caller.admin,
            route,
            args: args.into(),
        }
    }
}

/// A listing as last rendered, and the version it was rendered from.
#[derive(Debug)]
struct Rendered {
    version: String,
    body: Bytes,
}

/// The gateway's rendered listings.
#[derive(Clone)]
pub struct Reads {
    cache: Option<Cache<ReadKey, Arc<Rendered>>>,
}

impl Reads {
    /// A cache of up to `budget_bytes` of rendered bodies; 0 keeps none (every read renders).
    pub fn new(budget_bytes: u64) -> Self {
        let cache = (budget_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(|key: &ReadKey, value: &Arc<Rendered>| {
                    let size = key.args.len() + value.version.len() + value.body.len() + 64;
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                // A listing nobody asked for in a while is dropped, so an idle gateway holds
                // little.
                .time_to_idle(Duration::from_secs(600))
                .build()
        });
        Self { cache }
    }

    fn get(&self, key: &ReadKey) -> Option<Arc<Rendered>> {
        self.cache.as_ref()?.get(key)
    }

    fn put(&self, key: ReadKey, version: String, body: Bytes) {
        if let Some(cache) = &self.cache {
            cache.insert(key, Arc::new(Rendered { version, body }));
        }
    }
}

/// A JSON body, as `axum::Json` answers it.
fn json_response(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A listing of servers rendered by `render`, or the bytes rendered last time when server-svc
/// answers that nothing it shows has changed since.
pub async fn servers<T, F, Fut>(
    state: &AppState,
    key: ReadKey,
    caller: Caller,
    request: pb::ListServersRequest,
    render: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: FnOnce(Vec<pb::Server>) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let held = state.reads.get(&key);
    let mut servers = Vec::new();
    let mut version = None;
    let mut page_token = String::new();
    loop {
        // Only the first page is asked "if none match"; the version it answers names the
        // whole listing, and later pages are newer still.
        let if_none_match = match (&version, &held) {
            (None, Some(rendered)) => rendered.version.clone(),
            _ => String::new(),
        };
        let reply = state
            .servers()
            .list_servers(caller.request(pb::ListServersRequest {
                limit: crate::servers::PAGE,
                page_token,
                if_none_match,
                ..request.clone()
            }))
            .await?
            .into_inner();
        if version.is_none() {
            if reply.not_modified
                && let Some(rendered) = &held
            {
                return Ok(json_response(rendered.body.clone()));
            }
            version = Some(reply.version);
        }
        servers.extend(reply.servers);
        if reply.next_page_token.is_empty() {
            break;
        }
        page_token = reply.next_page_token;
    }
    let version = version.unwrap_or_default();
    let view = render(servers).await?;
    let body = Bytes::from(serde_json::to_vec(&view).map_err(|error| {
        tracing::error!(%error, "cannot render a listing");
        ApiError::internal()
    })?);
    if !version.is_empty() {
        state.reads.put(key, version, body.clone());
    }
    Ok(json_response(body))
}
