//! Logging and tracing: a `tracing` subscriber with an OpenTelemetry layer, and W3C trace
//! context carried across HTTP and gRPC hops so one request is one trace.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn,tower=warn,hyper=warn";

/// Installs the process-wide subscriber. `RUST_LOG` filters; `VPS_LOG_FORMAT=json` switches
/// to JSON lines. Spans go to an OTLP collector over gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT`
/// (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and nowhere otherwise. Keep the answer
/// until the process ends: dropping it sends the spans still buffered. Safe to call more
/// than once (the all-in-one launcher and tests do); only the first call installs.
pub fn init(service: &'static str) -> Telemetry {
    init_with(service, DEFAULT_FILTER)
}

/// [`init`] for test harnesses: errors only, unless `RUST_LOG` asks for more.
pub fn init_quiet(service: &'static str) -> Telemetry {
    init_with(service, "error")
}

/// Whether spans are to be exported: an OTLP endpoint is configured.
fn otlp_endpoint() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

/// The process's telemetry while it runs; dropping it flushes the spans not yet exported.
#[must_use = "dropping it at once ends the export of spans"]
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        let Some(provider) = self.0.take() else {
            return;
        };
        // The exporter's connection runs on the runtime; let it while this thread waits.
        let shutdown = move || {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(error = %error, "sending the last spans failed");
            }
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(shutdown),
            _ => shutdown(),
        }
    }
}

fn init_with(service: &'static str, default_filter: &str) -> Telemetry {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let mut telemetry = Telemetry(None);
    INSTALLED.call_once(|| telemetry = install(service, default_filter));
    telemetry
}

fn install(service: &'static str, default_filter: &str) -> Telemetry {
    crate::metrics::handle();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let endpoint = otlp_endpoint();
    let mut builder = SdkTracerProvider::builder();
    let mut exporter_error = None;
    if endpoint.is_some() {
        // The exporter reads the endpoint, headers and time-out from the standard variables.
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => {
                builder = builder.with_batch_exporter(exporter).with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(service)
                        .build(),
                );
            }
            Err(error) => exporter_error = Some(error.to_string()),
        }
    }
    let provider = builder.build();
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider.clone());

    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Spans are traced at info whatever the log shows (`RUST_LOG` filters the log only).
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(EnvFilter::new(DEFAULT_FILTER));
    let json = std::env::var("VPS_LOG_FORMAT").is_ok_and(|f| f == "json");
    let registry = tracing_subscriber::registry().with(otel);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = if json {
        let fmt = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter);
        registry.with(fmt).try_init()
    } else {
        let fmt = tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .with_filter(filter);
        registry.with(fmt).try_init()
    };
    match (endpoint, exporter_error) {
        (Some(endpoint), None) => {
            tracing::info!(endpoint, "exporting traces over OTLP");
            Telemetry(Some(provider))
        }
        (Some(endpoint), Some(error)) => {
            tracing::error!(
                endpoint,
                error,
                "the OTLP exporter could not be made; traces stay here"
            );
            Telemetry(None)
        }
        (None, _) => Telemetry(None),
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Reads trace context from HTTP headers (gRPC metadata travels as HTTP/2 headers).
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_current(metadata: &mut MetadataMap) {
    let context = Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

/// Makes `span` a child of the trace context found in `headers`, if any.
pub fn adopt_parent(span: &Span, headers: &http::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// The span a gRPC server of `service` opens for each call, named after the method.
pub fn grpc_server_span(service: &'static str, request: &http::Request<()>) -> Span {
    let path = request.uri().path();
    let span = tracing::info_span!("grpc", otel.name = %path.trim_start_matches('/'),
        otel.kind = "server", rpc.system = "grpc", vps.service = service);
    adopt_parent(&span, request.headers());
    span
}

/// The current span's trace context as a W3C `traceparent` value, to be kept with work
/// that goes on later (an outbox row); `None` outside a traced span.
pub fn current_traceparent() -> Option<String> {
    let context = Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of a kept W3C `traceparent` value.
pub fn adopt_traceparent(span: &Span, traceparent: &str) {
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

struct NatsExtractor<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(async_nats::HeaderValue::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// Makes `span` a child of the trace context a NATS message carries, if any.
pub fn adopt_nats_parent(span: &Span, headers: &async_nats::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&NatsExtractor(headers));
    let _ = span.set_parent(parent);
}

/// The current span's trace id as hex, or `None` outside a traced span.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = Span::current().context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_crosses_the_metadata_hop() {
        let _telemetry = init("telemetry-test");
        let (client_trace, headers) = {
            let span = tracing::info_span!("client");
            let _entered = span.enter();
            let mut metadata = MetadataMap::new();
            inject_current(&mut metadata);
            (current_trace_id(), metadata.into_headers())
        };
        let client_trace = client_trace.expect("the client span has a trace id");
        assert!(
            headers.contains_key("traceparent"),
            "traceparent was injected"
        );

        let request = {
            let mut request = http::Request::new(());
            *request.headers_mut() = headers;
            request
        };
        let server_span = grpc_server_span("test", &request);
        let _entered = server_span.enter();
        assert_eq!(current_trace_id().as_deref(), Some(client_trace.as_str()));
    }
}
