//! gRPC glue: server and client construction, the caller's principal in metadata, and the
//! mapping of service errors to `tonic::Status`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::Shutdown;
use crate::telemetry;

/// Metadata key carrying the authenticated caller's numeric user id.
pub const USER_ID_KEY: &str = "x-vps-user-id";
/// Metadata key carrying the authenticated caller's role (`admin` or `user`).
pub const ROLE_KEY: &str = "x-vps-role";

/// Who is calling, as resolved by the gateway. Internal gRPC is a trusted network; every
/// service still checks ownership against this caller itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub admin: bool,
}

impl Caller {
    /// The control plane itself (a service acting on its own behalf, e.g. server-svc charging
    /// credits): user id 0 with the administrator role. The gateway never sends it, since
    /// every principal it resolves is a real user.
    pub const SYSTEM: Self = Self {
        user_id: 0,
        admin: true,
    };

    /// Writes the caller into request metadata.
    pub fn attach(&self, metadata: &mut MetadataMap) {
        metadata.insert(USER_ID_KEY, MetadataValue::from(self.user_id));
        metadata.insert(
            ROLE_KEY,
            MetadataValue::from_static(if self.admin { "admin" } else { "user" }),
        );
    }

    /// Wraps `message` in a request that carries this caller.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        self.attach(request.metadata_mut());
        request
    }

    /// The caller of a call that needs one: `UNAUTHENTICATED` for an anonymous call.
    pub fn required<T>(request: &Request<T>) -> Result<Self, Status> {
        Self::from_metadata(request.metadata())?
            .ok_or_else(|| Status::unauthenticated("this call needs an authenticated caller"))
    }

    /// Reads the caller from request metadata: `None` for an anonymous call, an error for
    /// malformed metadata.
    pub fn from_metadata(metadata: &MetadataMap) -> Result<Option<Self>, Status> {
        let Some(user_id) = metadata.get(USER_ID_KEY) else {
            return Ok(None);
        };
        let user_id = user_id
            .to_str()
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|id| *id >= 0)
            .ok_or_else(|| Status::unauthenticated("malformed caller metadata"))?;
        let admin = match metadata.get(ROLE_KEY).and_then(|v| v.to_str().ok()) {
            Some("admin") => true,
            Some("user") if user_id > 0 => false,
            _ => return Err(Status::unauthenticated("malformed caller metadata")),
        };
        Ok(Some(Self { user_id, admin }))
    }
}

/// Binds a TCP listener, with the address in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// A tonic server builder with the project's defaults: a span per call whose parent comes
/// from the caller's `traceparent`, and a per-call timeout.
pub fn server() -> Server<tower::layer::util::Identity> {
    Server::builder()
        .trace_fn(telemetry::grpc_server_span)
        .timeout(Duration::from_secs(60))
}

/// Serves `router` on `listener` until `shutdown` triggers; in-flight calls are drained.
pub async fn serve(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    router
        .serve_with_incoming_shutdown(incoming, async move { shutdown.wait().await })
        .await
        .context("gRPC server failed")
}

/// Serves only the standard gRPC health service, reporting SERVING, for a service whose API
/// is not built yet.
pub async fn serve_health_only(
    name: &str,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let router = server().add_service(health_service);
    tracing::info!(service = name, addr = %listener.local_addr()?, "listening (health only)");
    serve(router, listener, shutdown).await
}

/// A lazily connecting channel to another service, with connect and request timeouts.
pub fn channel(url: &str) -> anyhow::Result<Channel> {
    channel_with_timeout(url, Duration::from_secs(30))
}

/// [`channel`] with another per-call time-out, for calls that legitimately take long (guest
/// operations on a hypervisor).
pub fn channel_with_timeout(url: &str, timeout: Duration) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("invalid service URL {url}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .tcp_nodelay(true);
    Ok(endpoint.connect_lazy())
}

/// Client interceptor that propagates the current span's trace context.
#[derive(Clone, Copy, Debug, Default)]
pub struct Propagate;

impl Interceptor for Propagate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        telemetry::inject_current(request.metadata_mut());
        Ok(request)
    }
}

/// A service's error, as the service edge needs to see it. Implemented by each service's
/// own error enum, which knows nothing of gRPC otherwise.
pub trait ServiceError: std::error::Error {
    fn code(&self) -> Code;
    /// What the client may be told. Internal details stay in the error chain and the logs.
    fn client_message(&self) -> String;
    /// For validation errors: the offending field.
    fn field(&self) -> Option<&str> {
        None
    }
    /// A machine-readable reason the gateway maps to a specific status (see [`reason`]).
    fn reason(&self) -> Option<&'static str> {
        None
    }
}

/// Machine-readable error reasons carried as `ErrorInfo` details.
pub mod reason {
    /// The user's credit balance does not cover the operation (HTTP 402).
    pub const INSUFFICIENT_CREDITS: &str = "INSUFFICIENT_CREDITS";
    /// No node (or no address pool) can take the request (HTTP 507).
    pub const NO_CAPACITY: &str = "NO_CAPACITY";
    /// The hypervisor node does not answer (HTTP 503).
    pub const NODE_UNREACHABLE: &str = "NODE_UNREACHABLE";
}

const ERROR_DOMAIN: &str = "vps";

/// Turns a service error into a `Status`, logging the whole chain once for server faults.
pub fn to_status<E: ServiceError>(error: &E) -> Status {
    let code = error.code();
    if matches!(code, Code::Internal | Code::Unknown | Code::DataLoss) {
        tracing::error!(error = %chain(error), "request failed");
    }
    let message = error.client_message();
    if error.field().is_none() && error.reason().is_none() {
        return Status::new(code, message);
    }
    let mut details = ErrorDetails::new();
    if let Some(field) = error.field() {
        details.add_bad_request_violation(field, message.clone());
    }
    if let Some(reason) = error.reason() {
        details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    }
    Status::with_error_details(code, message, details)
}

/// The machine-readable reason of a status, if the service gave one.
pub fn error_reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

/// The offending field of an `InvalidArgument` status, if the service named one.
pub fn violated_field(status: &Status) -> Option<String> {
    status
        .get_details_bad_request()
        .and_then(|bad| bad.field_violations.into_iter().next())
        .map(|v| v.field)
}

/// Formats an error and its sources as one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_round_trips_through_metadata() {
        let caller = Caller {
            user_id: 42,
            admin: true,
        };
        let mut metadata = MetadataMap::new();
        caller.attach(&mut metadata);
        assert_eq!(
            Caller::from_metadata(&metadata).expect("valid"),
            Some(caller)
        );
    }

    #[test]
    fn anonymous_and_malformed_callers_are_told_apart() {
        assert_eq!(
            Caller::from_metadata(&MetadataMap::new()).expect("valid"),
            None
        );
        let mut metadata = MetadataMap::new();
        metadata.insert(USER_ID_KEY, MetadataValue::from_static("-3"));
        metadata.insert(ROLE_KEY, MetadataValue::from_static("admin"));
        assert!(Caller::from_metadata(&metadata).is_err());
        metadata.insert(USER_ID_KEY, MetadataValue::from_static("3"));
        metadata.insert(ROLE_KEY, MetadataValue::from_static("root"));
        assert!(Caller::from_metadata(&metadata).is_err());
        let mut metadata = MetadataMap::new();
        Caller::SYSTEM.attach(&mut metadata);
        assert_eq!(
            Caller::from_metadata(&metadata).expect("valid"),
            Some(Caller::SYSTEM)
        );
        metadata.insert(ROLE_KEY, MetadataValue::from_static("user"));
        assert!(
            Caller::from_metadata(&metadata).is_err(),
            "user id 0 is only the system"
        );
    }
}
