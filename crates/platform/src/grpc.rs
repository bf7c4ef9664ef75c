//! gRPC glue: server and client construction and the mapping of service errors to
//! `tonic::Status`. Who is calling is [`crate::auth`]'s business.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::{Endpoint, Server};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::Shutdown;
use crate::metrics::GrpcMetricsLayer;
use crate::telemetry;

pub use crate::auth::Caller;
pub use crate::channel::Channel;

/// Binds a TCP listener, with the address in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// The layers every gRPC server has.
pub type Layers = tower::layer::util::Stack<GrpcMetricsLayer, tower::layer::util::Identity>;
/// A gRPC server's routes, with [`Layers`].
pub type Router = tonic::transport::server::Router<Layers>;

/// A tonic server builder with the project's defaults: a span per call whose parent comes
/// from the caller's `traceparent`, metrics per call ([`crate::metrics`]), and a per-call
/// timeout.
///
/// The timeout is only a backstop: callers bound their own calls (30 s by default, longer
/// where the work is long), and a server bound below theirs failed the long ones: a
/// snapshot on a busy node took over the 60 s this used to be, and a backup's stream of
/// chunks can take much longer.
pub fn server(service: &'static str) -> Server<Layers> {
    Server::builder()
        .trace_fn(move |request| telemetry::grpc_server_span(service, request))
        .timeout(Duration::from_secs(3600))
        .layer(GrpcMetricsLayer::new(service))
}

/// Serves `router` on `listener` until `shutdown` triggers; in-flight calls are drained.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // Without TCP_NODELAY on accepted connections (tonic sets it only on listeners it binds
    // itself), a reply written in more than one segment waits for the caller's delayed ACK:
    // ~40 ms for a call that is alone on its connection.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    router
        .serve_with_incoming_shutdown(incoming, async move { shutdown.wait().await })
        .await
        .context("gRPC server failed")
}

/// gRPC server reflection (v1) over `descriptors` (an encoded `FileDescriptorSet`), so
/// tools such as grpcurl can list and describe the services.
pub fn reflection(
    descriptors: &'static [u8],
) -> anyhow::Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptors)
        .build_v1()
        .context("building the reflection service")
}

/// A lazily connecting channel to another service, with connect and request timeouts; a
/// read whose connection fails under it is tried once more ([`crate::channel`]).
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
    Ok(Channel::new(endpoint.connect_lazy()))
}

/// Whether a call failed in the transport (the connection), not in the service: tonic made
/// the status from a transport error, which it keeps as the source. Such a failure passes
/// once the peer is reachable again.
pub fn failed_in_transport(status: &Status) -> bool {
    std::error::Error::source(status).is_some()
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
    /// A machine-readable reason the gateway maps to a specific status.
    fn reason(&self) -> Option<Reason> {
        None
    }
    /// For refusals that pass with time (a throttled login): when to try again.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
    /// Facts for the calling service that go with the reason (never secrets): the
    /// `ErrorInfo` metadata.
    fn facts(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// Machine-readable error reasons, carried by name as `ErrorInfo` details (the contract
/// defines them once, in `vps.common.v1`).
pub use proto::common::v1::Reason;

const ERROR_DOMAIN: &str = "vps";

/// Turns a service error into a `Status`, logging the whole chain once for server faults.
pub fn to_status<E: ServiceError>(error: &E) -> Status {
    let code = error.code();
    if matches!(code, Code::Internal | Code::Unknown | Code::DataLoss) {
        tracing::error!(error = %chain(error), "request failed");
    }
    let message = error.client_message();
    if error.field().is_none() && error.reason().is_none() && error.retry_after().is_none() {
        return Status::new(code, message);
    }
    let mut details = ErrorDetails::new();
    if let Some(field) = error.field() {
        details.add_bad_request_violation(field, message.clone());
    }
    if let Some(reason) = error.reason() {
        let facts: std::collections::HashMap<String, String> = error
            .facts()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        details.set_error_info(reason.as_str_name(), ERROR_DOMAIN, facts);
    }
    if let Some(after) = error.retry_after() {
        details.set_retry_info(Some(after));
    }
    Status::with_error_details(code, message, details)
}

/// The machine-readable reason of a status, if the service gave one this build knows.
pub fn error_reason(status: &Status) -> Option<Reason> {
    status
        .get_details_error_info()
        .and_then(|info| Reason::from_str_name(&info.reason))
        .filter(|r| *r != Reason::Unspecified)
}

/// A fact the service gave with its error reason (see [`ServiceError::facts`]).
pub fn error_fact(status: &Status, key: &str) -> Option<String> {
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get(key).cloned())
}

/// When a refused call may be tried again, if the service said.
pub fn retry_after(status: &Status) -> Option<Duration> {
    status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
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
