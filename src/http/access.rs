//! Request IDs and the access log.
//!
//! Every request gets an ID: the `x-request-id` it came with, or a new UUID (tower-http's
//! request-id layers), echoed in the answer's `x-request-id`. Each request runs inside a
//! `request` span carrying the ID, method and path — so every log line written while it is
//! served names its request — and the GraphQL handlers add the operation's name and type.
//! A W3C `traceparent`'s trace ID is logged in the span too (`trace_id`). When spans are
//! exported over OTLP ([`crate::telemetry`]), the span is the server span of the caller's
//! trace (`traceparent`, and `tracestate` with it), or the root of a new trace whose ID is
//! then logged as `trace_id`. When the answer is ready one INFO line is written: `request`
//! with the status and the duration in milliseconds (the span's fields give the rest).

use std::time::Duration;

use axum::http::{HeaderName, Request, Response};
use tracing::Span;
use tracing::field::Empty;

/// The header that carries a request's ID, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The `request` span of one request (its ID set by the request-id layer before this runs).
pub fn span<B>(req: &Request<B>) -> Span {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`): its trace ID is logged, so that
    // lines join the caller's trace.
    let trace_id = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        trace_id = Empty,
        method = %req.method(),
        path = %req.uri().path(),
        operation = Empty,
        operation_type = Empty,
        otel.kind = Empty,
    );
    if let Some(trace_id) = trace_id {
        span.record("trace_id", trace_id);
    }
    if crate::telemetry::exporting() {
        export(&span, req.headers(), trace_id.is_some());
    }
    span
}

/// Makes the exported span the server span of the caller's trace (when `headers` carry a
/// `traceparent`), or logs the ID of the trace it starts.
fn export(span: &Span, headers: &axum::http::HeaderMap, has_parent: bool) {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    span.record("otel.kind", "server");
    if has_parent {
        let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .extract(&opentelemetry_http::HeaderExtractor(headers));
        // Fails only for a span already started, which this one is not.
        let _ = span.set_parent(parent);
    } else {
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// The trace ID of a `traceparent` header (version 00: 32 lower-case hex digits, not all 0).
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, id) = (parts.next()?, parts.next()?);
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (version.len() == 2 && id.len() == 32 && hex(id) && id.bytes().any(|b| b != b'0')).then_some(id)
}

/// The access log line, written inside the request's span (and its status on the exported
/// span: `http.response.status_code`, an error status from 500 on).
pub fn log<B>(resp: &Response<B>, latency: Duration, span: &Span) {
    if crate::telemetry::exporting() {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let status = resp.status().as_u16();
        span.set_attribute("http.response.status_code", i64::from(status));
        if status >= 500 {
            span.set_status(opentelemetry::trace::Status::error(format!(
                "HTTP {status}"
            )));
        }
    }
    tracing::info!(
        status = resp.status().as_u16(),
        duration_ms = (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "request"
    );
}

/// Records a GraphQL request's operation name and type in the current request span.
pub fn record_operation(query: &str, name: Option<&str>) {
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    if let Some((ty, found)) = operation_of(query, name) {
        span.record("operation_type", ty);
        if let Some(found) = found.or(name) {
            span.record("operation", found);
        }
    }
}

/// The type and name of the operation `name` selects in `query` (the only or first one
/// without a name), found by a linear scan of the top-level definitions: no parse, which
/// would cost more than the log line is worth (execution parses it anyway).
pub fn operation_of<'q>(
    query: &'q str,
    name: Option<&str>,
) -> Option<(&'static str, Option<&'q str>)> {
    let bytes = query.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut first = None;
    // A definition's keyword was read: the next top-level `{` is its selection set.
    let mut named = false;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                // A string (block strings: three quotes; their inside has no lone quote
                // that would end early except escaped ones, skipped with the escape).
                let block = query[i..].starts_with("\"\"\"");
                i += if block { 3 } else { 1 };
                while i < bytes.len() {
                    if bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if block && query[i..].starts_with("\"\"\"") {
                        i += 2;
                        break;
                    }
                    if !block && bytes[i] == b'"' {
                        break;
                    }
                    i += 1;
                }
            }
            b'{' => {
                if depth == 0 && !named && first.is_none() {
                    // An anonymous query (`{ ... }`).
                    first = Some(("query", None));
                }
                if depth == 0 {
                    named = false;
                }
                depth += 1;
            }
            b'}' => depth = depth.saturating_sub(1),
            b if depth == 0 && (b.is_ascii_alphabetic() || b == b'_') => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &query[start..i];
                let ty = match word {
                    "query" => "query",
                    "mutation" => "mutation",
                    "subscription" => "subscription",
                    "fragment" => {
                        named = true;
                        continue;
                    }
                    _ => continue,
                };
                named = true;
                while i < bytes.len() && (bytes[i] as char).is_whitespace() {
                    i += 1;
                }
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let op = (start < i).then(|| &query[start..i]);
                if name.is_some() && op == name {
                    return Some((ty, op));
                }
                if first.is_none() {
                    first = Some((ty, op));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    match name {
        Some(_) => None,
        None => first,
    }
}

#[cfg(test)]
mod tests {
    use super::{operation_of, trace_id};

    #[test]
    fn a_traceparent_gives_its_trace_id() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id("garbage"), None);
    }

    #[test]
    fn the_operation_is_found_without_parsing() {
        assert_eq!(operation_of("{ a }", None), Some(("query", None)));
        assert_eq!(
            operation_of("# c\nmutation Pay($x: ID) { pay(x: \"}\") }", None),
            Some(("mutation", Some("Pay")))
        );
        assert_eq!(
            operation_of(
                "fragment F on Q { b } query A { a } subscription B { c }",
                Some("B")
            ),
            Some(("subscription", Some("B")))
        );
        assert_eq!(operation_of("query A { a }", Some("Z")), None);
        assert_eq!(
            operation_of("fragment F on Q { b } mutation { m }", None),
            Some(("mutation", None))
        );
    }
}
