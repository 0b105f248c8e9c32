//! Automatic persisted queries (issue #25, item 3), as Apollo's `PersistedQueryLink` speaks
//! them: a hash alone (a miss asks for the text), the text with its hash (stored, run), the
//! hash alone again over POST, GET and WebSocket; a hash that is not the text's is refused
//! and stores nothing; the front door checks the stored text; instances sharing Redis share
//! the documents.
//!
//! Every document carries a fresh comment: Redis outlives a test run, and a document stored
//! by an earlier run would not miss.

use pushhand::http::persisted::sha256_hex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fixtures;
use crate::helpers::{TestApp, error_code, without_redis};
use crate::ws::{TRANSPORT_WS, Ws};

const CATALOG: &str = "query Names { products(first: 5) { edges { node { name } } } }";

/// `doc` made unique by a trailing comment (a different text, so a different hash).
fn unique(doc: &str) -> String {
    format!("{doc}\n# {}", uuid::Uuid::now_v7())
}

fn extension(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// POSTs `body`; the status, the `Cache-Control` header and the JSON answer.
async fn post(app: &TestApp, body: Value) -> (StatusCode, Option<String>, Value) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = resp.status();
    let cache = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, cache, resp.json().await.expect("JSON answer"))
}

/// GETs `/graphql` with the hash alone (`extensions` as URL-encoded JSON, as Apollo's
/// `useGETForHashedQueries` sends it).
async fn get_hash(app: &TestApp, hash: &str) -> (StatusCode, Value) {
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("extensions", extension(hash).to_string())])
        .send()
        .await
        .expect("sent");
    (resp.status(), resp.json().await.expect("JSON answer"))
}

#[tokio::test]
async fn a_miss_asks_for_the_text_and_after_it_the_hash_alone_runs() {
    let app = TestApp::spawn().await;
    fixtures::catalog(app.db(), 3).await;
    let doc = unique(CATALOG);
    let hash = sha256_hex(&doc);
    let expected = app.data(&doc, json!({})).await;

    // The hash alone, unknown: the error Apollo's link retries on, never cacheable.
    let (status, cache, miss) = post(&app, json!({ "extensions": extension(&hash) })).await;
    assert_eq!(status, StatusCode::OK, "{miss}");
    assert_eq!(
        error_code(&miss),
        Some("PERSISTED_QUERY_NOT_FOUND"),
        "{miss}"
    );
    assert_eq!(miss["errors"][0]["message"], "PersistedQueryNotFound");
    assert!(
        cache.as_deref().is_some_and(|c| c.contains("no-cache")),
        "{cache:?}"
    );
    let (status, miss) = get_hash(&app, &hash).await;
    assert_eq!(status, StatusCode::OK, "{miss}");
    assert_eq!(
        error_code(&miss),
        Some("PERSISTED_QUERY_NOT_FOUND"),
        "{miss}"
    );

    // The text with its hash: stored and run.
    let (status, _, registered) = post(
        &app,
        json!({ "query": doc, "operationName": "Names", "extensions": extension(&hash) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["data"], expected, "{registered}");

    // The hash alone: the stored document, over POST and GET (an upper-case hash is the same).
    let (status, _, hit) = post(&app, json!({ "extensions": extension(&hash) })).await;
    assert_eq!(status, StatusCode::OK, "{hit}");
    assert_eq!(hit["data"], expected, "{hit}");
    let (status, hit) = get_hash(&app, &hash.to_uppercase()).await;
    assert_eq!(status, StatusCode::OK, "{hit}");
    assert_eq!(hit["data"], expected, "{hit}");
}

#[tokio::test]
async fn a_hash_that_is_not_the_texts_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let doc = unique("{ __typename }");
    let other = unique("{ __typename }");
    let wrong = sha256_hex(&other);

    let (status, _, refused) = post(
        &app,
        json!({ "query": doc, "extensions": extension(&wrong) }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        error_code(&refused),
        Some("PERSISTED_QUERY_HASH_MISMATCH"),
        "{refused}"
    );
    assert!(refused.get("data").is_none(), "not run: {refused}");
    // Stored under neither hash.
    for hash in [wrong, sha256_hex(&doc)] {
        let (_, _, miss) = post(&app, json!({ "extensions": extension(&hash) })).await;
        assert_eq!(
            error_code(&miss),
            Some("PERSISTED_QUERY_NOT_FOUND"),
            "{miss}"
        );
    }

    // Not the protocol's shape: a version other than 1, a hash that is not 64 hex digits.
    let hash = sha256_hex(&doc);
    for ext in [
        json!({ "persistedQuery": { "version": 2, "sha256Hash": hash } }),
        json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } }),
        json!({ "persistedQuery": "yes" }),
    ] {
        let (status, _, refused) = post(&app, json!({ "query": doc, "extensions": ext })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(
            error_code(&refused),
            Some("PERSISTED_QUERY_INVALID"),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn the_stored_text_goes_through_the_front_door_and_get_runs_queries_only() {
    let app = TestApp::spawn().await;
    // Deeper than PUSHHAND_MAX_NESTING (64): refused by the front door's scan, by hash too.
    let deep = unique(&format!(
        "{{ node(id: {}1{}) {{ id }} }}",
        "[".repeat(100),
        "]".repeat(100)
    ));
    let hash = sha256_hex(&deep);
    let (_, _, refused) = post(
        &app,
        json!({ "query": deep, "extensions": extension(&hash) }),
    )
    .await;
    assert_eq!(error_code(&refused), Some("QUERY_TOO_DEEP"), "{refused}");
    let (_, _, refused) = post(&app, json!({ "extensions": extension(&hash) })).await;
    assert_eq!(error_code(&refused), Some("QUERY_TOO_DEEP"), "{refused}");

    // A mutation known by its hash is still no GET.
    let mutation = unique("mutation { applyForPartner { id } }");
    let hash = sha256_hex(&mutation);
    post(
        &app,
        json!({ "query": mutation, "extensions": extension(&hash) }),
    )
    .await;
    let (status, refused) = get_hash(&app, &hash).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{refused}");
}

#[tokio::test]
async fn a_websocket_operation_may_be_sent_by_hash() {
    let app = TestApp::spawn().await;
    let doc = unique("{ __typename }");
    let hash = sha256_hex(&doc);
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;

    ws.send(json!({ "type": "subscribe", "id": "1",
                    "payload": { "extensions": extension(&hash) } }))
        .await;
    let miss = ws.json().await;
    assert_eq!(miss["type"], "error", "{miss}");
    assert_eq!(
        miss["payload"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{miss}"
    );

    ws.send(json!({ "type": "subscribe", "id": "2",
                    "payload": { "query": doc, "extensions": extension(&hash) } }))
        .await;
    assert_eq!(ws.next("2").await["data"]["__typename"], "Query");
    ws.send(json!({ "type": "subscribe", "id": "3",
                    "payload": { "extensions": extension(&hash) } }))
        .await;
    // "2" completes before "3" answers.
    let mut answer = ws.json().await;
    while answer["id"] != "3" {
        answer = ws.json().await;
    }
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["payload"]["data"]["__typename"], "Query", "{answer}");
}

#[tokio::test]
async fn instances_sharing_redis_share_the_documents() {
    if without_redis() {
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_sharing(&a, &[]).await;
    let doc = unique("{ __typename }");
    let hash = sha256_hex(&doc);
    let (_, _, miss) = post(&b, json!({ "extensions": extension(&hash) })).await;
    assert_eq!(
        error_code(&miss),
        Some("PERSISTED_QUERY_NOT_FOUND"),
        "{miss}"
    );

    let (_, _, registered) =
        post(&a, json!({ "query": doc, "extensions": extension(&hash) })).await;
    assert_eq!(registered["data"]["__typename"], "Query", "{registered}");
    let (status, hit) = get_hash(&b, &hash).await;
    assert_eq!(status, StatusCode::OK, "{hit}");
    assert_eq!(hit["data"]["__typename"], "Query", "{hit}");
}

#[tokio::test]
async fn switched_off_a_hash_is_answered_not_supported() {
    let app = TestApp::spawn_with(&["--persisted-queries", "false"]).await;
    let doc = unique("{ __typename }");
    let (status, _, refused) = post(
        &app,
        json!({ "query": doc, "extensions": extension(&sha256_hex(&doc)) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!(
        error_code(&refused),
        Some("PERSISTED_QUERY_NOT_SUPPORTED"),
        "{refused}"
    );
    assert_eq!(
        refused["errors"][0]["message"],
        "PersistedQueryNotSupported"
    );
}
