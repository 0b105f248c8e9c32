//! GraphQL over HTTP: POST for everything but subscriptions, GET for queries only (a GET must
//! never change anything: caches and prefetchers replay them). The IDE is [`super::ide`].
//!
//! Status codes follow the GraphQL-over-HTTP spec for `application/graphql-response+json`:
//! a document that is never executed — it does not parse, fails validation, or is refused by
//! the query limits before execution (`GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`,
//! `QUERY_TOO_DEEP`, `QUERY_TOO_COMPLEX`, ...) — answers 400; an executed one answers 200,
//! errors or not. A client whose `Accept` names `application/json` and not
//! `application/graphql-response+json` (an older client) gets `application/json`, and 200
//! for those too, as before the spec. No `Accept`, or `*/*`, is the new media type.

use async_graphql::parser::types::OperationType;
use async_graphql_axum::GraphQLRequest;
use axum::Json;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{HttpState, answers};
use crate::graphql::context::{ClientAddr, to_graphql};
use crate::graphql::loaders;
use crate::graphql::transport::api::operation_type;
use crate::graphql::transport::guard;
use crate::graphql::transport::json::{TextAnswers, response_body};
use crate::responses::{self, Cacheable, Lookup};
use crate::service::auth;

/// The request header that asks for an answer's cost in `extensions.cost`.
pub const REPORT_COST_HEADER: &str = "x-pushhand-cost";

/// Runs one GraphQL request with fresh per-request data: loaders, the viewer its
/// `Authorization` header names, and the client's address. The document is parsed once (or
/// remembered: [`crate::graphql::transport::api::Api::document`]); anonymous catalog reads and a
/// member's reads of its own views then go through the response cache
/// ([`crate::responses`]), and a hit touches neither the database nor the schema.
async fn execute(
    state: &HttpState,
    headers: &HeaderMap,
    client: SocketAddr,
    req: async_graphql::Request,
) -> Response {
    super::access::record_operation(&req.query, req.operation_name.as_deref());
    // Before anything looks into the document (the response cache peeks at it).
    if let Err(refusal) = state.api.front_door(&req) {
        return refuse(state, refusal);
    }
    let started = std::time::Instant::now();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let app = &state.app;
    let credentials = app.tokens.credentials(authorization);
    // `x-pushhand-cost: 1` asks for this answer's cost (`extensions.cost`): executed, never
    // answered from or stored in the response cache.
    let report_cost = headers.contains_key(REPORT_COST_HEADER);
    let document = state.api.document(&req.query);
    let cacheable = match &document {
        Ok(parsed) => parsed.cacheability.operation(req.operation_name.as_deref()),
        Err(_) => Cacheable::NOTHING,
    };
    let lookup = match credentials {
        _ if report_cost => Lookup::Skip,
        auth::Credentials::Token {
            member, version, ..
        } => {
            let period = crate::service::hierarchy::period(app.clock.now());
            app.responses
                .lookup_own(member, version, &period, &req, cacheable)
                .await
        }
        _ => app.responses.lookup(credentials, &req, cacheable).await,
    };
    let fill = match lookup {
        Lookup::Hit(answer) => {
            // Served without executing: count it as the query it answers.
            let seconds = started.elapsed().as_secs_f64();
            app.metrics.count_graphql_request("query", seconds);
            return answers::response_for(&answer, headers);
        }
        Lookup::Miss(fill) => Some(fill),
        Lookup::Skip => None,
    };
    let viewer = match app.viewers.viewer(&app.db, credentials).await {
        Ok(v) => v,
        Err(e) => {
            let resp = async_graphql::Response::from_errors(vec![
                to_graphql(&e).into_server_error(Default::default()),
            ]);
            return respond(&resp);
        }
    };
    let req = req
        .data(loaders::for_request(&state.app))
        .data(viewer)
        .data(ClientAddr(state.proxies.client(client, headers)))
        .data(TextAnswers);
    let req = if report_cost {
        req.data(crate::graphql::transport::api::ReportCost)
    } else {
        req
    };
    // Unconstrained by tokio's cooperative budget: a page of 50 products polls ~150 loader
    // receivers in one pass, and a forced yield halfway would let a DataLoader batch fire with
    // half its keys (two statements instead of one). Resolvers still yield on real I/O.
    let response = tokio::task::unconstrained(state.api.execute_document(req, document)).await;
    // A stored answer is sent as a hit will send it: the same bytes, the same headers (those
    // `GraphQLResponse` gives an answer that sets no headers or cache hints, the only answers
    // the cache keeps, and `Vary: Accept-Encoding`).
    if let Some(fill) = fill
        && responses::storable(&response)
    {
        let json = Bytes::from(response_body(&response));
        let answer = state.app.responses.store(fill, json).await;
        return answers::response_for(&answer, headers);
    }
    respond(&response)
}

/// Marks an answer [`respond`] gave status 400 because its document was never executed.
#[derive(Clone, Copy)]
struct RequestError;

/// Codes of the errors that stop a document before execution.
const REQUEST_ERROR_CODES: &[&str] = &[
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "VALIDATION",
    "QUERY_TOO_DEEP",
    "QUERY_TOO_COMPLEX",
    "QUERY_TOO_LARGE",
    "TOO_MANY_ALIASES",
    "TOO_MANY_FRAGMENTS",
    "TOO_MANY_ROOT_FIELDS",
    "TOO_MANY_DIRECTIVES",
    "INTROSPECTION_DISABLED",
];

/// Whether `resp` is a request error (the spec's term): no data, and only errors that stop
/// a document before execution (they have no field path; a field error has one).
fn is_request_error(resp: &async_graphql::Response) -> bool {
    matches!(resp.data, async_graphql::Value::Null)
        && !resp.errors.is_empty()
        && resp.errors.iter().all(|e| {
            e.path.is_empty()
                && matches!(
                    e.extensions.as_ref().and_then(|x| x.get("code")),
                    Some(async_graphql::Value::String(code)) if REQUEST_ERROR_CODES.contains(&code.as_str())
                )
        })
}

/// Whether the client reads `application/json` only (not the GraphQL-over-HTTP media type):
/// its `Accept` lists `application/json` and neither `application/graphql-response+json` nor
/// a wildcard. No `Accept` at all is a new client.
fn legacy_client(headers: &HeaderMap) -> bool {
    let mut json = false;
    for item in headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().map_or(true, |q| q <= 0.0))
        });
        if refused {
            continue;
        }
        match media.as_str() {
            "application/graphql-response+json" | "*/*" | "application/*" => return false,
            "application/json" => json = true,
            _ => {}
        }
    }
    json
}

/// `resp` as the client asked for it: an older client (`Accept: application/json`) gets
/// `application/json`, and 200 for a request error.
fn for_client(headers: &HeaderMap, mut resp: Response) -> Response {
    if !legacy_client(headers) {
        return resp;
    }
    if resp.extensions().get::<RequestError>().is_some() {
        *resp.status_mut() = StatusCode::OK;
    }
    if resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == answers::CONTENT_TYPE)
    {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    resp
}

/// A refusal before execution, as a GraphQL answer (a request error: 400), counted in the
/// metrics.
fn refuse(state: &HttpState, refusal: async_graphql::ServerError) -> Response {
    let resp = async_graphql::Response::from_errors(vec![refusal]);
    state.api.count_refusal(&resp);
    respond(&resp)
}

/// The HTTP answer for `resp`, as async-graphql-axum's `GraphQLResponse` makes it (its
/// content type, its cache hint when it has no errors, its headers), with the body written by
/// [`response_body`], which copies plain answers' JSON text as it is; 400 for a request
/// error ([`is_request_error`]).
fn respond(resp: &async_graphql::Response) -> Response {
    let mut answer = Response::new(axum::body::Body::from(response_body(resp)));
    if is_request_error(resp) {
        *answer.status_mut() = StatusCode::BAD_REQUEST;
        answer.extensions_mut().insert(RequestError);
    }
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answers::CONTENT_TYPE),
    );
    if resp.is_ok()
        && let Some(hint) = resp.cache_control.value()
        && let Ok(value) = HeaderValue::from_str(&hint)
    {
        headers.insert(header::CACHE_CONTROL, value);
    }
    headers.extend(resp.http_headers.clone());
    answer
}

/// POST: one JSON request object, sent as `application/json`; or a GraphQL multipart
/// request (`multipart/form-data`, [`multipart`]: uploads); 415 for anything else. The body
/// is read within the size limit (413 above it, before any parsing); a batch (a JSON array)
/// is refused; a body that is not a GraphQL request is a 400 — all with a JSON error body
/// and a code.
pub async fn post(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers.clone();
    if multipart_content_type(&headers) {
        return multipart(&state, &headers, client, body).await;
    }
    if !json_content_type(&headers) {
        return http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "POST bodies must be application/json (or multipart/form-data for uploads)".into(),
        );
    }
    // Read as the `Bytes` extractor reads it: within the route's `DefaultBodyLimit`.
    let body: Result<Bytes, BytesRejection> =
        Bytes::from_request(axum::extract::Request::from_parts(parts, body), &()).await;
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let max = state.app.config.limits.max_body_bytes;
            return http_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "REQUEST_TOO_LARGE",
                format!("the request body is over {max} bytes"),
            );
        }
        Err(e) => return http_error(e.status(), "BAD_REQUEST", e.body_text()),
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return batch_refused();
    }
    // serde_json stops at 128 levels with a parser error; this says what is wrong.
    if let Err(refusal) = guard::scan_json(&body, state.api.max_body_nesting()) {
        return http_error(StatusCode::BAD_REQUEST, refusal.code(), refusal.message());
    }
    match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(req) => run(&state, &headers, client, req).await,
        Err(e) => http_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the body is not a GraphQL request: {e}"),
        ),
    }
}

fn batch_refused() -> Response {
    http_error(
        StatusCode::BAD_REQUEST,
        "BATCH_NOT_SUPPORTED",
        "send one operation per request (batches are not accepted)".into(),
    )
}

/// Runs a POSTed request: a persisted query's document replaces its hash, a request without
/// a document is a 400, the rest is [`execute`]d.
async fn run(
    state: &HttpState,
    headers: &HeaderMap,
    client: SocketAddr,
    mut req: async_graphql::Request,
) -> Response {
    // A persisted query's document replaces its hash (`persisted`).
    if let Err(refusal) = state.persisted.resolve(&mut req).await {
        return refusal.into_response();
    }
    if req.query.trim().is_empty() {
        return http_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the request has no `query`".into(),
        );
    }
    for_client(headers, execute(state, headers, client, req).await)
}

/// A GraphQL multipart request (the GraphQL multipart request spec: an `operations` part,
/// a `map` part, the files), parsed by async-graphql into a request whose `Upload`
/// variables name its files.
///
/// - It must carry an `Authorization` header (401 `UNAUTHENTICATED` otherwise): uploads are
///   for signed-in members, and a browser cannot add that header to a cross-site request
///   without a CORS preflight, which it can skip for `multipart/form-data` (the CSRF
///   "simple request" the JSON-only rule keeps out).
/// - The body may be `PUSHHAND_MEDIA_MAX_BYTES` plus `PUSHHAND_MAX_BODY_BYTES` (413
///   `REQUEST_TOO_LARGE` above it, reading stops there); a file over the media limit within
///   it is refused by `uploadImage` (`IMAGE_TOO_LARGE`).
/// - One operation (`BATCH_NOT_SUPPORTED` for a list); a body that is not such a request is
///   400 `BAD_REQUEST`.
async fn multipart(
    state: &HttpState,
    headers: &HeaderMap,
    client: SocketAddr,
    body: axum::body::Body,
) -> Response {
    use async_graphql::BatchRequest;
    use http_body_util::BodyExt as _;
    if !headers.contains_key(header::AUTHORIZATION) {
        return http_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "multipart requests (uploads) need an `Authorization` header".into(),
        );
    }
    let limit = state
        .app
        .config
        .limits
        .max_body_bytes
        .saturating_add(state.app.media.limits().max_bytes);
    let body = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return http_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "REQUEST_TOO_LARGE",
                format!("the request body is over {limit} bytes"),
            );
        }
        Err(e) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("the body could not be read: {e}"),
            );
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let options = async_graphql::http::MultipartOptions::default();
    match async_graphql::http::receive_batch_body(content_type, &body[..], options).await {
        Ok(BatchRequest::Single(req)) => run(state, headers, client, req).await,
        Ok(BatchRequest::Batch(_)) => batch_refused(),
        Err(e) => http_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the body is not a GraphQL multipart request: {e}"),
        ),
    }
}

/// Whether the request's `Content-Type` is `multipart/form-data`.
fn multipart_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Whether the request's `Content-Type` is `application/json` or
/// `application/graphql-response+json`, parameters (`charset=utf-8`) allowed. Anything else
/// — `text/plain`, forms, none at all — is refused: a browser sends those cross-site
/// without a preflight (a CSRF "simple request"), and a cookie-less API still must not run
/// a mutation it was tricked into.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("application/graphql-response+json")
}

/// A refusal before GraphQL execution, in the GraphQL response shape.
fn http_error(status: StatusCode, code: &str, message: String) -> Response {
    let body =
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

pub async fn get(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> Response {
    let mut req = req.into_inner();
    if let Err(refusal) = state.persisted.resolve(&mut req).await {
        return refusal.into_response();
    }
    if let Err(refusal) = state.api.front_door(&req) {
        return for_client(&headers, refuse(&state, refusal));
    }
    // Documents that do not parse (or that the limits refuse) go on to execution, which
    // reports why.
    if let Ok(parsed) = state.api.document(&req.query) {
        match operation_type(&parsed.doc, req.operation_name.as_deref()) {
            Some(OperationType::Query) | None => {}
            Some(_) => {
                let refusal = http_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    "only queries may be sent with GET; use POST for mutations and WebSocket \
                     for subscriptions"
                        .into(),
                );
                return ([("allow", "POST")], refusal).into_response();
            }
        }
    }
    let resp = execute(&state, &headers, client, req).await;
    for_client(&headers, http_cache(&state, &headers, resp))
}

/// HTTP caching of a GET answer that carries an `ETag` (one from the response cache): an
/// anonymous one may be kept by browsers and shared caches for `PUSHHAND_HTTP_MAX_AGE_SECONDS`
/// (`Cache-Control: public`, varying with `Authorization` too, so a cache never hands it to a
/// signed-in request); a signed-in one gets no `Cache-Control`. `If-None-Match` naming the
/// current tag is answered 304 without a body.
fn http_cache(state: &HttpState, headers: &HeaderMap, mut resp: Response) -> Response {
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let Some(etag) = resp.headers().get(header::ETAG).cloned() else {
        return resp;
    };
    let max_age = state.app.config.http_max_age_seconds;
    if max_age > 0 && !headers.contains_key(header::AUTHORIZATION) {
        if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
            resp.headers_mut().insert(header::CACHE_CONTROL, value);
        }
        resp.headers_mut()
            .append(header::VARY, HeaderValue::from_static("authorization"));
    }
    if !none_match(headers, &etag) {
        let mut not_modified = Response::new(axum::body::Body::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        for name in [header::ETAG, header::CACHE_CONTROL, header::VARY] {
            for value in resp.headers().get_all(&name) {
                not_modified.headers_mut().append(&name, value.clone());
            }
        }
        return not_modified;
    }
    resp
}

/// Whether `If-None-Match` lets the answer tagged `etag` through: false when it names the
/// tag (weak comparison, RFC 9110 §13.1.2) or is `*`.
fn none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let Ok(ours) = etag.to_str().map(strip) else {
        return true;
    };
    !headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || strip(t) == ours)
}
