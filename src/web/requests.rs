//! Around every HTTP request: its request id (the caller's `X-Request-Id` when it is a sane
//! one, else a new one), returned in `X-Request-Id`, carried by the request's span (so every
//! log line and trace span of the request has it) and by problem responses; and its duration
//! in `helpdesk_http_request_duration_seconds` by route template and status. A W3C
//! `traceparent` header makes the request's span a child of the caller's (when traces go out
//! over OTLP), so a trace crosses the proxy or service in front into the helpdesk.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// A caller's id longer than this is replaced.
const MAX_ID_LENGTH: usize = 128;
/// The route label of requests no route matched (the pages' 404s): one series, not one per
/// path tried.
const UNMATCHED: &str = "unmatched";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being answered, inside its handler.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// An id from a caller is kept if it is short and made of characters that cannot break a log
/// line or a header: letters, digits and `-_.:/+=@`.
fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LENGTH
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&byte))
}

fn new_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// The method as a label: the standard ones, and `other` for any a client made up.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The middleware (`axum::middleware::from_fn`), on every route and the fallback.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| sane(id))
        .map_or_else(new_id, str::to_owned);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        request_id = %id,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    if request.headers().contains_key("traceparent") {
        let caller = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
        // Without the OTLP layer (traces off) there is nothing to link: not an error.
        let _ = span.set_parent(caller);
    }
    let mut response = CURRENT
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    let status = response.status().as_u16();
    let took = started.elapsed();
    span.record("http.response.status_code", status);
    span.in_scope(|| {
        tracing::debug!(
            status,
            millis = took.as_secs_f64() * 1000.0,
            "request answered"
        );
    });
    crate::telemetry::metrics().request(method, &route, status, took);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_kept() {
        assert!(sane("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(sane("Root=1-5759e988-bd862e3fe1be46a994272793"));
        assert!(!sane(""));
        assert!(!sane("two words"));
        assert!(!sane("line\nbreak"));
        assert!(!sane("\"quoted\""));
        assert!(!sane(&"x".repeat(MAX_ID_LENGTH + 1)));
        assert!(sane(&new_id()));
        assert_ne!(new_id(), new_id());
    }
}
