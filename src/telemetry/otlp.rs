//! Traces over OTLP (http/protobuf) to a collector, when `[telemetry] otlp_endpoint` is set:
//! every tracing span (an HTTP request with its request id, a job run, …) becomes an
//! OpenTelemetry span of service `helpdesk` with this instance's id.
//!
//! Spans are batched on the SDK's own thread and sent by the reqwest client the app already
//! has, run on the app's Tokio runtime. A collector that is down costs the spans of that time
//! and one warning, nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("the OTLP exporter cannot be set up: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("the HTTP client for OTLP cannot be set up: {0}")]
    Client(#[from] reqwest::Error),
}

/// The traces pipeline: a provider exporting to `{endpoint}/v1/traces`.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Starts exporting to the collector at `endpoint` (its base URL, as in
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`); requests run on `runtime`.
    pub fn start(endpoint: &str, runtime: tokio::runtime::Handle) -> Result<Traces, OtlpError> {
        let client = Client {
            client: reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?,
            runtime,
            failing: Arc::default(),
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_http_client(client)
            .with_endpoint(traces_url(endpoint))
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let resource = Resource::builder()
            .with_service_name("helpdesk")
            .with_attribute(KeyValue::new(
                "service.instance.id",
                super::instance_id().to_owned(),
            ))
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Traces { provider })
    }

    /// The tracing layer that hands spans to this pipeline.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("helpdesk"))
    }

    /// Sends what is still batched and stops; blocks until then (call it outside the runtime's
    /// own threads, while the runtime still runs).
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "traces not all sent at shutdown");
        }
    }
}

/// `{endpoint}/v1/traces`, the OTLP/HTTP path for traces.
pub fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

/// Sends the exporter's requests with reqwest on the app's runtime: the SDK calls it from its
/// own thread, where reqwest would find no runtime.
#[derive(Debug)]
struct Client {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    /// Whether the last export failed, so an outage is logged once, not every batch.
    failing: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, body))
            })
            .await?;
        let failed = match &sent {
            Ok((status, ..)) if status.is_success() => None,
            Ok((status, ..)) => Some(format!("the collector answered {status}")),
            Err(error) => Some(error.to_string()),
        };
        match failed {
            Some(error) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(%error, "traces cannot be sent to the OTLP endpoint; dropping them until it answers");
            }
            None if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("traces are sent to the OTLP endpoint again");
            }
            _ => {}
        }
        let (status, headers, body) = sent?;
        let mut response = Response::builder().status(status).body(body)?;
        *response.headers_mut() = headers;
        Ok(response)
    }
}
