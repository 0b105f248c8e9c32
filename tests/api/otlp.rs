//! Spans over OTLP: the server binary, started with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at
//! a fake collector in this test (an axum listener on 127.0.0.1), posts protobuf batches to
//! `/v1/traces`; a request with a W3C `traceparent` is a server span of the caller's trace,
//! and one without starts a trace whose ID its log lines carry.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use tokio::sync::mpsc;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// A span as the collector received it, with its batch's `service.name`.
#[derive(Debug)]
struct Received {
    service: String,
    span: Span,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// A collector on 127.0.0.1: decodes each `POST /v1/traces` body and hands its spans over.
async fn collector() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                assert_eq!(
                    headers.get("content-type").and_then(|v| v.to_str().ok()),
                    Some("application/x-protobuf")
                );
                let batch =
                    ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf batch");
                for resource in batch.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref()?.value.as_ref())
                        .map(|v| match v {
                            AnyValue::StringValue(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let _ = tx.send(Received {
                                service: service.clone(),
                                span,
                            });
                        }
                    }
                }
                // An empty ExportTraceServiceResponse.
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("collector binds");
    let addr = listener.local_addr().expect("collector address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), rx)
}

/// The server binary, exporting to `endpoint`; its stdout lines go to `lines`.
struct Server {
    child: Child,
    addr: String,
    lines: std::sync::mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server(endpoint: &str) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushhand"))
        .args(["--bind-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("PUSHHAND_ENV")
        .env_remove("JWT_SECRET")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("RUST_LOG")
        .env("PUSHHAND_SEED_DEMO", "false")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        // Batches leave every 100 ms instead of every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    while addr.is_none() {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the server says where it listens");
        addr = line
            .split_once("GraphiQL at http://")
            .and_then(|(_, rest)| rest.split('/').next())
            .map(str::to_owned);
    }
    Server {
        child,
        addr: addr.unwrap_or_default(),
        lines,
        _dir: dir,
    }
}

/// The next `request` span the collector receives within 20 s for which `wanted` holds.
async fn span_where(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    wanted: impl Fn(&Received) -> bool,
) -> Received {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(r) = rx.recv().await {
            if r.span.name == "request" && wanted(&r) {
                return r;
            }
        }
        panic!("the collector stopped");
    })
    .await;
    found.expect("the span is exported within 20 s")
}

#[tokio::test]
async fn request_spans_are_exported_over_otlp_and_join_the_callers_trace() {
    let (endpoint, mut spans) = collector().await;
    let server = server(&endpoint);
    let client = reqwest::Client::new();
    let url = format!("http://{}/graphql", server.addr);

    // A caller's trace: the server span is a child of the caller's span.
    let resp = client
        .post(&url)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .header("x-request-id", "otlp-joined")
        .json(&serde_json::json!({ "query": "query Probe { __typename }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let joined = span_where(&mut spans, |r| hex(&r.span.trace_id) == TRACE_ID).await;
    assert_eq!(hex(&joined.span.parent_span_id), PARENT_ID);
    assert_eq!(joined.span.kind, SpanKind::Server as i32);
    assert_eq!(joined.service, "pushhand");
    assert_eq!(
        attribute(&joined.span, "request_id"),
        Some(&AnyValue::StringValue("otlp-joined".into()))
    );
    assert_eq!(
        attribute(&joined.span, "operation"),
        Some(&AnyValue::StringValue("Probe".into()))
    );
    assert_eq!(
        attribute(&joined.span, "http.response.status_code"),
        Some(&AnyValue::IntValue(200))
    );

    // No traceparent: a trace of its own, whose ID the request's log line names.
    let resp = client
        .post(&url)
        .header("x-request-id", "otlp-root")
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let root = span_where(&mut spans, |r| {
        attribute(&r.span, "request_id") == Some(&AnyValue::StringValue("otlp-root".into()))
    })
    .await;
    assert!(root.span.parent_span_id.is_empty(), "a root span");
    let trace_id = hex(&root.span.trace_id);
    assert_ne!(trace_id, TRACE_ID);
    let logged = (0..200)
        .filter_map(|_| server.lines.recv_timeout(Duration::from_secs(10)).ok())
        .find(|l| l.contains("otlp-root"))
        .expect("the request's log line");
    assert!(
        logged.contains(&format!("trace_id={trace_id}")),
        "the log line names the exported trace: {logged}"
    );
}
