//! The gateway: the HTTP edge (axum, port 5000). One module per dialect parses requests into
//! gRPC calls and renders the dialect's JSON and error shape; no rules and no database here.

pub mod auth;
pub mod config;
mod console;
pub mod dialects;
pub mod error;
pub mod extract;
mod openapi;
pub mod ratelimit;
pub mod reads;
pub mod servers;
pub mod snapshots;
pub mod state;
pub mod web;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use platform::Shutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::Config;
use dialects::DialectKind;
use error::ApiError;
pub use state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route with its OpenAPI description, before middleware.
pub fn routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let limited = dialects::panel::limited_routes().route_layer(middleware::from_fn_with_state(
        state.clone(),
        ratelimit::limit_auth,
    ));
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .merge(limited)
        .merge(dialects::panel::routes())
        .merge(dialects::skyport::routes())
        .merge(dialects::vpsorg::routes())
        .merge(dialects::cvm::routes())
        .merge(console::routes())
        .split_for_parts();
    let mut doc = doc;
    openapi::qualify_operation_ids(&mut doc);
    (router, doc)
}

/// The whole application: routes, the OpenAPI document and the middleware stack.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// [`app`] with extra routes merged in under the same middleware (used by tests).
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let (router, doc) = routes(&state);
    // Learn which dialect owns which paths now, not on the first unknown path.
    let _ = DialectKind::for_path("/");
    let doc = OpenApiJson(Bytes::from(serde_json::to_vec(&doc).unwrap_or_default()));
    let timeout = Duration::from_secs(state.config.request_timeout_secs.max(1));
    let body_limit = state.config.body_limit_bytes;
    router
        .merge(extra)
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(doc))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(timeout, time_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().render(DialectKind::Panel)
        }))
        .layer(middleware::from_fn(record_http))
        .layer(TraceLayer::new_for_http().make_span_with(http_span))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

fn http_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let span = tracing::info_span!("http", method = %request.method(), route, request_id);
    platform::telemetry::adopt_parent(&span, request.headers());
    span
}

/// Counts every request in `http_requests_total` and times it in
/// `http_request_duration_seconds`, by dialect, route (as declared, so ids mint no labels),
/// method and status.
async fn record_http(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let dialect = DialectKind::for_path(request.uri().path()).name();
    // Standard methods only: a made-up one must not mint a label.
    let method = match request.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total",
        "dialect" => dialect, "route" => route.clone(), "method" => method, "status" => status)
    .increment(1);
    metrics::histogram!("http_request_duration_seconds",
        "dialect" => dialect, "route" => route, "method" => method)
    .record(started.elapsed().as_secs_f64());
    response
}

async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let uri = request.uri().clone();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the request timed out")
            .render(DialectKind::for_path(uri.path())),
    }
}

/// The dashboard's files and routes, or the API's 404.
async fn fallback(State(state): State<AppState>, request: Request) -> Response {
    match &state.web {
        Some(web) if web::WebFiles::serves(&request) => web.serve(request).await,
        _ => not_found(request).await,
    }
}

async fn not_found(request: Request) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
        .render(DialectKind::for_path(request.uri().path()))
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed for this endpoint",
    )
    .render(DialectKind::for_path(request.uri().path()))
}

/// Liveness: the gateway process answers.
#[utoipa::path(get, path = "/health", tag = "meta",
    responses((status = 200, description = "The gateway is up")))]
async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

#[derive(Clone)]
struct OpenApiJson(Bytes);

/// This OpenAPI document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route")))]
async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0)
}

/// Starts the gateway on `config.listen` and serves until `shutdown` triggers.
pub async fn serve(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let listener = platform::grpc::bind(config.listen).await?;
    serve_on(listener, config, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0 and pass it in).
pub async fn serve_on(
    listener: TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    serve_app(listener, AppState::new(config)?, Router::new(), shutdown).await
}

/// Serves [`app_with`] on `listener`, with client addresses for rate limiting.
pub async fn serve_app(
    listener: TcpListener,
    state: AppState,
    extra: Router<AppState>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut host = platform::host::ServiceHost::new("gateway", shutdown.clone());
    host.metrics(state.config.metrics_listen, None).await?;
    let limiter = state.auth_rate.clone();
    let sweeper_shutdown = shutdown.clone();
    host.spawn("rate-limit sweeper", async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => limiter.forget_idle(),
                () = sweeper_shutdown.wait() => break,
            }
        }
    });
    // The live feed sits outside every other layer: its long polls and WebSockets outlive
    // the request time limit by design.
    let (live_layer, io) = dialects::panel::live::layer(&state);
    host.spawn(
        "live feed",
        dialects::panel::live::run(io.clone(), state.clone(), shutdown.clone()),
    );
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    let service = app_with(state, extra)
        .layer(axum::Extension(io))
        .layer(live_layer)
        .into_make_service_with_connect_info::<SocketAddr>();
    // A reply's last segment goes out at once, not after the client's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await;
    host.stop().await;
    Ok(served?)
}
