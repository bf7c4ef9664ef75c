//! The channel every service calls another through: tonic's lazily connecting channel, plus
//! one more try of a call whose connection failed under it, where that is safe.
//!
//! A replica that restarts or rolls closes its connections; a call that was already on
//! its way over one fails in the transport (`connection reset`, an HTTP/2 `GOAWAY`), not
//! in the service. tonic reconnects on the next call but does not replay the failed one,
//! as other gRPC clients do. Here it is tried once more, on a fresh connection:
//!
//! - any call the peer provably never processed: the connection could not be made, or the
//!   peer refused the stream (`REFUSED_STREAM`, or a `GOAWAY` that left it out), which is
//!   gRPC's own rule for transparent retries;
//! - a read, whatever the failure (but a time-out), since sending it twice changes nothing.
//!
//! Any other write's failure is returned, since it may have been applied. Calls that stream
//! their requests are never replayed. Reads are known by name: by the project's rule, a
//! method whose name begins with `Get` or `List` reads and changes nothing, and takes one
//! message (a test holds every service to this). The standard health check is a read too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tonic::body::Body;
use tower::{Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a read waits before its second try, so a closing connection is gone by then.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A channel to another service; clones share one connection.
#[derive(Clone, Debug)]
pub struct Channel {
    inner: tonic::transport::Channel,
}

impl Channel {
    pub fn new(inner: tonic::transport::Channel) -> Self {
        Self { inner }
    }
}

/// Whether the gRPC method at `path` (`/package.Service/Method`) is a read.
pub fn is_read(path: &str) -> bool {
    let method = path.rsplit('/').next().unwrap_or_default();
    method.starts_with("Get")
        || method.starts_with("List")
        || path == "/grpc.health.v1.Health/Check"
}

impl Service<http::Request<Body>> for Channel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The ready handle serves this call; `self` keeps a fresh one for the next.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        if streams_requests(request.uri().path()) {
            let call = ready.call(request);
            return Box::pin(async move { call.await.map_err(Into::into) });
        }
        let read = is_read(request.uri().path());
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            // The request is one message; kept so it can be sent twice.
            let message = body.collect().await?.to_bytes();
            let first = ready.call(rebuild(&parts, message.clone())).await;
            match first {
                Err(error) if !timed_out(&error) && (read || never_processed(&error)) => {
                    tracing::debug!(
                        path = parts.uri.path(),
                        error = %crate::grpc::chain(&error),
                        "a call's connection failed; trying once more"
                    );
                    tokio::time::sleep(RETRY_PAUSE).await;
                    // The handle that served the first try serves the second once ready
                    // again (cloning one for every call, in case, cost more than the call).
                    let again = ready.ready().await?;
                    Ok(again.call(rebuild(&parts, message)).await?)
                }
                other => Ok(other?),
            }
        })
    }
}

/// Whether the peer provably never processed the call: the connection could not be made,
/// or the peer refused the stream, outright or by a `GOAWAY` that left it out.
fn never_processed(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<tonic::ConnectError>() {
            return true;
        }
        if let Some(h2) = error.downcast_ref::<h2::Error>()
            && ((h2.is_go_away() && h2.is_remote())
                || h2.reason() == Some(h2::Reason::REFUSED_STREAM))
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// Whether the method at `path` streams its requests (those are never replayed).
fn streams_requests(path: &str) -> bool {
    static STREAMING: std::sync::LazyLock<std::collections::HashSet<String>> =
        std::sync::LazyLock::new(|| {
            use prost::Message as _;
            let Ok(set) = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET) else {
                return std::collections::HashSet::new();
            };
            set.file
                .iter()
                .flat_map(|file| {
                    file.service.iter().flat_map(move |service| {
                        service
                            .method
                            .iter()
                            .filter(|m| m.client_streaming())
                            .map(move |m| {
                                format!("/{}.{}/{}", file.package(), service.name(), m.name())
                            })
                    })
                })
                .collect()
        });
    STREAMING.contains(path)
}

/// Whether the call ran out of its time: a slow peer, not a dropped connection, so not
/// worth waiting for twice.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        next = error.source();
    }
    false
}

fn rebuild(parts: &http::request::Parts, message: Bytes) -> http::Request<Body> {
    let mut request = http::Request::new(Body::new(Full::new(message)));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    *request.extensions_mut() = parts.extensions.clone();
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_types::FileDescriptorSet;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    #[test]
    fn every_get_and_list_method_takes_one_message() {
        let set = FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let mut reads = 0;
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    if is_read(&path) {
                        reads += 1;
                        assert!(!method.client_streaming(), "{path} is a read but streams");
                    }
                }
            }
        }
        assert!(reads > 10, "only {reads} reads found");
        assert!(!is_read("/vps.server.v1.Servers/Act"));
        assert!(!is_read("/vps.snapshot.v1.Snapshots/CreateSnapshot"));
        assert!(is_read("/vps.snapshot.v1.Snapshots/ListSnapshots"));
    }

    /// A health service behind a front door that drops the first connection as soon as a
    /// request arrives on it, as a replica shutting down does: the number of connections
    /// the front door took.
    async fn dropping_first_connection() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>)
    {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let backend = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let backend_addr = backend.local_addr().expect("addr");
        let (health, service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(backend)),
        );
        let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", front.local_addr().expect("addr"));
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = front.accept().await {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    // The preface and settings, then the request's first frames: gone.
                    let mut buf = vec![0u8; 4096];
                    let mut seen = 0;
                    while seen < 24 + 9 + 9 {
                        match client.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => seen += n,
                        }
                    }
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(backend_addr).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn a_read_whose_connection_drops_is_tried_once_more() {
        let (url, accepted) = dropping_first_connection().await;
        let channel = crate::grpc::channel(&url).expect("channel");
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let reply = client
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .expect("the read succeeds on its second connection");
        assert_eq!(
            reply.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn only_what_the_peer_never_processed_is_replayed_for_a_write() {
        let refused = h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert!(never_processed(&refused));
        let cancelled = h2::Error::from(h2::Reason::CANCEL);
        assert!(!never_processed(&cancelled));
        let unreachable = tonic::ConnectError(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(never_processed(&unreachable));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!never_processed(&reset));
    }

    #[test]
    fn streaming_requests_are_known_from_the_descriptors() {
        assert!(streams_requests("/vps.node.v1.Guests/RestoreGuest"));
        assert!(streams_requests("/vps.node.v1.Consoles/Attach"));
        assert!(!streams_requests("/vps.node.v1.Guests/BackupGuest"));
        assert!(!streams_requests("/vps.server.v1.Servers/Act"));
    }

    #[tokio::test]
    async fn a_write_whose_connection_drops_fails_in_the_transport() {
        let (url, accepted) = dropping_first_connection().await;
        let channel = crate::grpc::channel(&url).expect("channel");
        // `Watch` is not a read by name: it is not replayed.
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let status = client
            .watch(tonic_health::pb::HealthCheckRequest::default())
            .await
            .expect_err("the dropped connection fails the call");
        assert!(crate::grpc::failed_in_transport(&status), "{status:?}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
