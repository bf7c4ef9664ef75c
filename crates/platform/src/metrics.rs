//! Prometheus metrics: one recorder per process (the `metrics` facade, rendered by
//! `metrics-exporter-prometheus`), served as `GET /metrics` on a listener of its own so
//! nothing about the internals shows on a public port.
//!
//! What every service records here: gRPC calls handled (count and latency, per method and
//! status code), sagas finished (per kind and outcome) and the outbox's publishing lag.
//! Services add their own (the gateway's HTTP requests and open Socket.IO sockets,
//! notify-svc's consumer lag, monitor-svc's polls); `docs/operations.md` lists them all.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::Shutdown;

/// Latency buckets, in seconds: from a cached read to a guest operation.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process's recorder, installed on first use (telemetry's `init` does it at start, so
/// nothing recorded before is dropped).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Only this function installs one, and only once.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(
        "grpc_server_handled_total",
        "gRPC calls handled, by service, method and status code"
    );
    metrics::describe_histogram!(
        "grpc_server_handling_seconds",
        metrics::Unit::Seconds,
        "Time to handle a gRPC call, by service and method"
    );
    metrics::describe_counter!(
        "vps_saga_finished_total",
        "Sagas ended, by kind and outcome (done, or unwound after a failure)"
    );
    metrics::describe_counter!("vps_outbox_published_total", "Events the outbox published");
    metrics::describe_histogram!(
        "vps_outbox_publish_delay_seconds",
        metrics::Unit::Seconds,
        "From an event's commit to its publication on NATS"
    );
    metrics::describe_gauge!(
        "vps_outbox_oldest_unpublished_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest event waiting in the outbox (0 when none waits)"
    );
}

/// Something a service adds to the page after the recorder's metrics (monitor-svc's
/// per-server gauges).
pub type Extra = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `GET /metrics` on `listener` until `shutdown` triggers.
pub async fn serve(listener: tokio::net::TcpListener, extra: Option<Extra>, shutdown: Shutdown) {
    let handle = handle();
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let extra = extra.clone();
            async move {
                let mut page = handle.render();
                if let Some(extra) = extra {
                    page.push_str(&extra());
                }
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    page,
                )
            }
        }),
    );
    // Histograms keep their samples until drained; drain them now and then.
    let upkeep = {
        let shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
                    () = shutdown.wait() => break,
                }
            }
        }
    };
    let served =
        axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.wait().await });
    let (served, ()) = tokio::join!(served, upkeep);
    if let Err(error) = served {
        tracing::warn!(error = %error, "the metrics listener failed");
    }
}

/// Records every gRPC call a server handles: `grpc_server_handled_total` and
/// `grpc_server_handling_seconds`, labelled with the service and method. Calls to methods
/// that do not exist are counted under `method="unknown"`, so no caller can mint labels.
#[derive(Clone, Copy, Debug)]
pub struct GrpcMetricsLayer {
    service: &'static str,
}

impl GrpcMetricsLayer {
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            service: self.service,
        }
    }
}

/// The service [`GrpcMetricsLayer`] makes.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
    service: &'static str,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let service = self.service;
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            // A failed call answers trailers-only, with its status in the headers; a
            // successful one sends its status in the trailers, after this point.
            let code = match &response {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .map_or(tonic::Code::Ok, |v| tonic::Code::from_bytes(v.as_bytes())),
                Err(_) => tonic::Code::Unavailable,
            };
            let method = if code == tonic::Code::Unimplemented {
                "unknown".to_owned()
            } else {
                path
            };
            metrics::counter!("grpc_server_handled_total",
                "service" => service, "method" => method.clone(), "code" => format!("{code:?}"))
            .increment(1);
            metrics::histogram!("grpc_server_handling_seconds",
                "service" => service, "method" => method)
            .record(started.elapsed().as_secs_f64());
            response
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn recorded_metrics_are_on_the_page() {
        let handle = super::handle();
        metrics::counter!("vps_saga_finished_total", "kind" => "metrics_test", "outcome" => "done")
            .increment(2);
        let page = handle.render();
        assert!(
            page.contains(r#"vps_saga_finished_total{kind="metrics_test",outcome="done"} 2"#),
            "{page}"
        );
        assert!(page.contains("# HELP vps_saga_finished_total"), "{page}");
    }

    /// A call answered with this status code, through the layer.
    async fn call(path: &str, code: Option<&'static str>) {
        use tower::{Layer as _, ServiceExt as _};
        let inner = tower::service_fn(move |_: http::Request<()>| async move {
            let mut response = http::Response::new(());
            if let Some(code) = code {
                response
                    .headers_mut()
                    .insert("grpc-status", http::HeaderValue::from_static(code));
            }
            Ok::<_, std::convert::Infallible>(response)
        });
        let service = super::GrpcMetricsLayer::new("metrics-test").layer(inner);
        let request = http::Request::builder()
            .uri(path)
            .body(())
            .expect("request");
        service.oneshot(request).await.expect("answered");
    }

    #[tokio::test]
    async fn calls_are_counted_by_method_and_code_and_unknown_methods_mint_no_labels() {
        let handle = super::handle();
        call("/vps.test.v1.T/GetThing", None).await;
        call("/vps.test.v1.T/GetThing", Some("5")).await;
        for n in 0..3 {
            call(&format!("/made.up.Service/Method{n}"), Some("12")).await;
        }
        let page = handle.render();
        for line in [
            r#"grpc_server_handled_total{service="metrics-test",method="/vps.test.v1.T/GetThing",code="Ok"} 1"#,
            r#"grpc_server_handled_total{service="metrics-test",method="/vps.test.v1.T/GetThing",code="NotFound"} 1"#,
            r#"grpc_server_handled_total{service="metrics-test",method="unknown",code="Unimplemented"} 3"#,
        ] {
            assert!(page.contains(line), "{line} in\n{page}");
        }
        assert!(!page.contains("made.up"), "{page}");
        assert!(
            page.contains(r#"grpc_server_handling_seconds_count{service="metrics-test",method="/vps.test.v1.T/GetThing"} 2"#),
            "{page}"
        );
    }
}
