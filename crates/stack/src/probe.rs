//! `vps-stack probe URL`: a health check for containers, which carry no other tool. A URL
//! with a path is an HTTP GET that must answer 200 (the gateway's `/health`); a URL without
//! one asks the gRPC health service there, which must say SERVING.

use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TIME_LIMIT: Duration = Duration::from_secs(2);

pub async fn probe(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs can be probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    tokio::time::timeout(TIME_LIMIT, async {
        if path == "/" {
            grpc_health(url).await
        } else {
            http_ok(authority, path).await
        }
    })
    .await
    .with_context(|| format!("{url} did not answer within {TIME_LIMIT:?}"))?
}

async fn grpc_health(url: &str) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    let channel = platform::grpc::channel(url)?;
    let reply = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .with_context(|| format!("{url}: the health check failed"))?
        .into_inner();
    anyhow::ensure!(
        reply.status == ServingStatus::Serving as i32,
        "{url} is not serving ({:?})",
        ServingStatus::try_from(reply.status).unwrap_or(ServingStatus::Unknown)
    );
    Ok(())
}

async fn http_ok(authority: &str, path: &str) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await?;
    let mut head = [0u8; 32];
    let read = stream.read(&mut head).await?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    anyhow::ensure!(
        status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200"),
        "{authority}{path} answered {}",
        status_line.lines().next().unwrap_or("nothing")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_serving_grpc_service_passes_and_a_closed_port_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (_, health) = tonic_health::server::health_reporter();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        probe(&url).await.expect("serving");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let closed_url = format!("http://{}", closed.local_addr().expect("addr"));
        drop(closed);
        assert!(probe(&closed_url).await.is_err());
        assert!(probe("https://example.com").await.is_err());
    }

    #[tokio::test]
    async fn an_http_path_must_answer_200() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 256];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let reply: &[u8] = if request.starts_with("GET /health ") {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                } else {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
                };
                let _ = socket.write_all(reply).await;
            }
        });
        probe(&format!("http://{addr}/health")).await.expect("200");
        let missing = probe(&format!("http://{addr}/nope"))
            .await
            .expect_err("404");
        assert!(missing.to_string().contains("404"), "{missing}");
    }
}
