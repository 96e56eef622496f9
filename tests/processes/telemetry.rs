//! A `helpdesk serve` process as an operator runs it with traces on: the request id a caller
//! sends comes back in the `X-Request-Id` header and the problem body, stands in the JSON log
//! line of the request, and arrives at a real OTLP/HTTP receiver as the request span's
//! attribute.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::Value;

use super::Serve;
use crate::support;

/// Every export request the receiver was sent, decoded.
type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// An OTLP/HTTP trace receiver on loopback: POST /v1/traces with a protobuf body, as a
/// collector takes it. Answers with an empty (all accepted) export response.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let kept = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let kept = Arc::clone(&kept);
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return StatusCode::BAD_REQUEST.into_response();
                };
                kept.lock().expect("lock").push(request);
                // An empty ExportTraceServiceResponse: everything accepted.
                (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    Vec::new(),
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver bound");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

/// The string attribute `key` of a span, if it has one.
fn attribute(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(value) => Some(value.clone()),
                AnyValue::IntValue(value) => Some(value.to_string()),
                other => Some(format!("{other:?}")),
            },
        )
}

/// The trace and span of a caller in front of the helpdesk.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_reaches_the_answer_the_log_and_the_otlp_receiver() {
    let db = support::sqlite().await;
    let (endpoint, received) = receiver().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .arg("serve")
        .env("HELPDESK_DATABASE__URL", &db.url)
        .env("HELPDESK_DATA_DIR", db.dir.path())
        .env("HELPDESK_WEB__LISTEN", "127.0.0.1:0")
        .env("HELPDESK_LOG__FORMAT", "json")
        .env("HELPDESK_LOG__LEVEL", "info,sqlx=warn,helpdesk::web=debug")
        .env("HELPDESK_TELEMETRY__OTLP_ENDPOINT", &endpoint)
        // Batches go out every 100 ms instead of 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("helpdesk serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let _serve = Serve(child);
    let (lines_in, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines_in.send(line).is_err() {
                break;
            }
        }
    });
    let mut log: Vec<Value> = Vec::new();
    let next_line = |log: &mut Vec<Value>, deadline: Instant| -> Option<Value> {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = lines.recv_timeout(left).ok()?;
        let parsed: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("a log line that is not JSON ({error}): {line}"));
        log.push(parsed.clone());
        Some(parsed)
    };

    // The address it listens on, from its own log.
    let deadline = Instant::now() + Duration::from_secs(60);
    let address = loop {
        let line = next_line(&mut log, deadline).expect("the server says where it listens");
        if line["fields"]["message"] == "web server listening" {
            break line["fields"]["address"]
                .as_str()
                .expect("address")
                .to_owned();
        }
    };

    let client = reqwest::Client::new();
    let id = "otlp-check-4711";
    let answer = client
        .get(format!("http://{address}/api/v1/tickets/1"))
        .header("X-Request-Id", id)
        // The caller's trace (W3C Trace Context): the request's span continues it.
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers()["x-request-id"], id);
    let problem: Value = answer.json().await.expect("problem+json");
    assert_eq!(problem["request_id"], id, "{problem}");

    // A made-up id that could break a log line is replaced by a fresh one.
    let replaced = client
        .get(format!("http://{address}/healthz"))
        .header("X-Request-Id", "two words\"")
        .send()
        .await
        .expect("answered");
    let fresh = replaced.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(fresh.len(), 32, "{fresh}");
    assert!(fresh.bytes().all(|b| b.is_ascii_hexdigit()), "{fresh}");

    // The log line of the request carries the id in its span.
    let deadline = Instant::now() + Duration::from_secs(30);
    let in_span = |line: &Value| line["span"]["request_id"] == id;
    while !log
        .iter()
        .any(|line| in_span(line) && line["fields"]["message"] == "request answered")
    {
        assert!(
            next_line(&mut log, deadline).is_some(),
            "no log line of request {id} in:\n{}",
            log.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let line = log
        .iter()
        .find(|line| in_span(line))
        .expect("the request's line");
    assert_eq!(
        line["span"]["http.route"], "/api/v1/tickets/{number}",
        "{line}"
    );

    // The receiver got the request's span, with the id, from service helpdesk.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = received.lock().expect("lock").iter().any(|export| {
            export.resource_spans.iter().any(|resource| {
                let service = resource.resource.as_ref().is_some_and(|resource| {
                    resource.attributes.iter().any(|attribute| {
                        attribute.key == "service.name"
                            && matches!(
                                attribute.value.as_ref().and_then(|v| v.value.as_ref()),
                                Some(AnyValue::StringValue(name)) if name == "helpdesk"
                            )
                    })
                });
                service
                    && resource
                        .scope_spans
                        .iter()
                        .flat_map(|scope| &scope.spans)
                        .any(|span| {
                            attribute(span, "request_id").as_deref() == Some(id)
                                && hex::encode(&span.trace_id) == CALLER_TRACE
                                && hex::encode(&span.parent_span_id) == CALLER_SPAN
                                && span.name == "GET /api/v1/tickets/{number}"
                                && attribute(span, "http.response.status_code").as_deref()
                                    == Some("401")
                        })
            })
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no span with request_id {id} reached the receiver ({} exports)",
            received.lock().expect("lock").len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
