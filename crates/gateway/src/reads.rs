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
//! - an answer is never older than the request: its version was read after the request
//!   arrived, and a write the caller saw had committed before;
//! - entries are keyed by the caller's user id and role, so nothing crosses tenants;
//! - requests for one listing that arrive together share one check (see [`Listing::answer`]);
//! - the cache holds rendered bytes up to a budget (`read_cache_mb`), least recently used
//!   out first, and forgets a listing nobody asked for in ten minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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

/// The last check of a listing: its number, and what it answered.
type Last = Option<(u64, Result<Arc<Rendered>, ApiError>)>;

/// One caller's listing on one route.
struct Listing {
    /// Checks started so far.
    started: AtomicU64,
    /// The last check's outcome, locked by the request running the next one.
    last: tokio::sync::Mutex<Last>,
    /// What the cache counts this listing as (its rendered bytes and key).
    weight: AtomicU32,
}

impl Listing {
    fn new() -> Self {
        Self {
            started: AtomicU64::new(0),
            last: tokio::sync::Mutex::new(None),
            weight: AtomicU32::new(256),
        }
    }

    /// The answer of a check that started after this call: its own, or one that a request
    /// queued before it started once this one had arrived. Sharing a check that started
    /// earlier could miss a write the caller saw, so none is. A request dropped mid-check
    /// frees the lock and the next one in line checks.
    async fn answer<F, Fut>(&self, check: F) -> Result<Arc<Rendered>, ApiError>
    where
        F: FnOnce(Option<Arc<Rendered>>) -> Fut,
        Fut: Future<Output = Result<Arc<Rendered>, ApiError>>,
    {
        let arrived = self.started.load(Ordering::SeqCst);
        let mut last = self.last.lock().await;
        let held = match &*last {
            Some((number, answer)) if *number > arrived => return answer.clone(),
            Some((_, Ok(rendered))) => Some(rendered.clone()),
            _ => None,
        };
        let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = check(held).await;
        *last = Some((number, answer.clone()));
        answer
    }
}

/// The gateway's rendered listings.
#[derive(Clone)]
pub struct Reads {
    cache: Option<Cache<ReadKey, Arc<Listing>>>,
}

impl Reads {
    /// Up to `budget_bytes` of rendered listings; 0 keeps none (every read renders).
    pub fn new(budget_bytes: u64) -> Self {
        let cache = (budget_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(|_: &ReadKey, listing: &Arc<Listing>| {
                    listing.weight.load(Ordering::Relaxed)
                })
                .time_to_idle(Duration::from_secs(600))
                .build()
        });
        Self { cache }
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

/// A listing of servers rendered by `render`, or the bytes rendered before when server-svc
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
    let Some(cache) = &state.reads.cache else {
        let rendered = check(state, caller, request, render, None).await?;
        return Ok(json_response(rendered.body.clone()));
    };
    let listing = cache.get_with_by_ref(&key, || Arc::new(Listing::new()));
    let rendered = listing
        .answer(|held| async {
            let rendered = check(state, caller, request, render, held).await?;
            keep(cache, &key, &listing, &rendered);
            Ok(rendered)
        })
        .await?;
    Ok(json_response(rendered.body.clone()))
}

/// A read that nothing versions (a status, with the latest sample), made once for the
/// requests for it that arrive while it is being made: each still gets an answer made wholly
/// after it arrived.
pub async fn shared<T, F, Fut>(
    state: &AppState,
    key: ReadKey,
    make: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let render = || async {
        let view = make().await?;
        Ok::<_, ApiError>(Arc::new(Rendered {
            version: String::new(),
            body: to_json(&view)?,
        }))
    };
    let Some(cache) = &state.reads.cache else {
        return Ok(json_response(render().await?.body.clone()));
    };
    let listing = cache.get_with_by_ref(&key, || Arc::new(Listing::new()));
    let rendered = listing
        .answer(|_| async {
            let rendered = render().await?;
            keep(cache, &key, &listing, &rendered);
            Ok(rendered)
        })
        .await?;
    Ok(json_response(rendered.body.clone()))
}

/// Counts a listing at its new size: the cache weighs an entry when it is put, so one whose
/// size changed is put again.
fn keep(
    cache: &Cache<ReadKey, Arc<Listing>>,
    key: &ReadKey,
    listing: &Arc<Listing>,
    rendered: &Rendered,
) {
    let size = key.args.len() + rendered.version.len() + rendered.body.len() + 256;
    let size = u32::try_from(size).unwrap_or(u32::MAX);
    if listing.weight.swap(size, Ordering::Relaxed) != size {
        cache.insert(key.clone(), listing.clone());
    }
}

fn to_json<T: Serialize>(view: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(view).map(Bytes::from).map_err(|error| {
        tracing::error!(%error, "cannot render a read");
        ApiError::internal()
    })
}

/// Asks server-svc whether `held` still shows the listing; if not, fetches every page and
/// renders it.
async fn check<T, F, Fut>(
    state: &AppState,
    caller: Caller,
    request: pb::ListServersRequest,
    render: F,
    held: Option<Arc<Rendered>>,
) -> Result<Arc<Rendered>, ApiError>
where
    T: Serialize,
    F: FnOnce(Vec<pb::Server>) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
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
                && let Some(rendered) = held
            {
                return Ok(rendered);
            }
            version = Some(reply.version);
        }
        servers.extend(reply.servers);
        if reply.next_page_token.is_empty() {
            break;
        }
        page_token = reply.next_page_token;
    }
    let view = render(servers).await?;
    Ok(Arc::new(Rendered {
        version: version.unwrap_or_default(),
        body: to_json(&view)?,
    }))
}
