//! Logs, traces and metrics. Logs are JSON lines or readable lines (`LOG_FORMAT`) on stderr,
//! filtered by `RUST_LOG`. Traces go to an OTLP collector only when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set; W3C `traceparent` is
//! honoured either way, and log lines carry the trace id.

pub mod metrics;

use opentelemetry::global;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::HeaderInjector;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,poem=warn";
/// What reaches the trace exporter: our spans, and sea-orm's span per statement (named for
/// the call, without its SQL). Not `sea_orm::driver`: its connect span records the options,
/// password included.
const TRACE_FILTER: &str = "info,sea_orm::database=trace,poem=warn,h2=warn,hyper=warn,reqwest=warn";

/// Held by `main` until exit; [`Telemetry::shutdown`] flushes traces not yet exported.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered. Blocks, so it runs off the async workers.
    pub async fn shutdown(self) {
        if let Some(provider) = self.traces {
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(error)) = flushed {
                tracing::warn!(%error, "flushing traces failed");
            }
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

pub fn init(format: LogFormat) -> Telemetry {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let traces = otlp_configured().then(otlp_provider).flatten();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => logs.compact().boxed(),
    };
    let exporter = traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("tenantql"))
            .with_filter(EnvFilter::new(TRACE_FILTER))
    });
    // A second initialization (several apps in one test process) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(exporter)
        .try_init();
    Telemetry { traces }
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()))
}

/// The exporter reads the other `OTEL_*` variables itself (headers, timeout, batch sizes).
fn otlp_provider() -> Option<SdkTracerProvider> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build();
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("OTLP trace export is off: {error}");
            return None;
        }
    };
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("tenantql");
    }
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    )
}

/// Continues the caller's trace (W3C `traceparent`) in `span`, which must not have been
/// entered yet, and returns the trace id for log lines. Without an exporter no span context
/// exists, so the id comes from the header itself. `carrier` reads the request's headers.
pub fn continue_trace(span: &Span, carrier: &dyn Extractor) -> Option<String> {
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(carrier));
    let _ = span.set_parent(parent.clone());
    let from_span = span.context().span().span_context().trace_id();
    let trace_id = if from_span != opentelemetry::trace::TraceId::INVALID {
        from_span
    } else {
        parent.span().span_context().trace_id()
    };
    (trace_id != opentelemetry::trace::TraceId::INVALID).then(|| trace_id.to_string())
}

/// Headers carrying the current span's trace to an outside service.
pub fn trace_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&Span::current().context(), &mut HeaderInjector(&mut headers));
    });
    headers
}
