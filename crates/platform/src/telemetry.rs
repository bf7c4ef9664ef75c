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
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn,tower=warn,hyper=warn";

/// Installs the process-wide subscriber. `RUST_LOG` filters; `VPS_LOG_FORMAT=json` switches
/// to JSON lines. Safe to call more than once (the all-in-one launcher and tests do).
pub fn init(service: &'static str) {
    init_with(service, DEFAULT_FILTER);
}

/// [`init`] for test harnesses: errors only, unless `RUST_LOG` asks for more.
pub fn init_quiet(service: &'static str) {
    init_with(service, "error");
}

fn init_with(service: &'static str, default_filter: &str) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider);

    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let json = std::env::var("VPS_LOG_FORMAT").is_ok_and(|f| f == "json");
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = if json {
        let fmt = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr);
        registry.with(fmt).try_init()
    } else {
        let fmt = tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(ansi)
            .with_writer(std::io::stderr);
        registry.with(fmt).try_init()
    };
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

/// The span a gRPC server opens for each call.
pub fn grpc_server_span(request: &http::Request<()>) -> Span {
    let span = tracing::info_span!("grpc", path = %request.uri().path());
    adopt_parent(&span, request.headers());
    span
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
        init("telemetry-test");
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
        let server_span = grpc_server_span(&request);
        let _entered = server_span.enter();
        assert_eq!(current_trace_id().as_deref(), Some(client_trace.as_str()));
    }
}
