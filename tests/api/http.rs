//! The HTTP surface: GraphiQL, GraphQL over GET and POST, WebSocket, health and metrics.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::fixtures;
use crate::helpers::{TestApp, error_code, metric_value};

#[tokio::test]
async fn graphiql_is_served_at_the_root() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/")).send().await.expect("sent");
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.expect("body");
    assert!(html.to_lowercase().contains("graphiql"));
    assert!(html.contains("/graphql"), "points GraphiQL at the endpoint");
}

#[tokio::test]
async fn get_runs_queries_but_refuses_mutations() {
    let app = TestApp::spawn().await;
    fixtures::catalog(app.db(), 2).await;

    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[(
            "query",
            "{ products(first: 1) { edges { node { name } } } }",
        )])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["data"]["products"]["edges"].as_array().map(Vec::len),
        Some(1)
    );

    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { anything }")])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(error_code(&body), Some("METHOD_NOT_ALLOWED"));
}

#[tokio::test]
async fn malformed_requests_get_client_errors_not_server_errors() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .expect("sent");
    assert!(resp.status().is_client_error(), "status {}", resp.status());

    // A syntax error in the document is a GraphQL error in a normal response.
    let resp = app.gql("{ products(first: ", json!({})).await;
    assert!(resp["errors"][0]["message"].as_str().is_some(), "{resp}");
}

#[tokio::test]
async fn websocket_endpoint_speaks_graphql_transport_ws() {
    let app = TestApp::spawn().await;
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    ws.send(Message::Text(
        json!({ "type": "connection_init" }).to_string().into(),
    ))
    .await
    .expect("send init");
    let reply = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .expect("reply in time")
        .expect("a message")
        .expect("not an error");
    let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("json");
    assert_eq!(reply["type"], json!("connection_ack"));
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);

    let resp = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["database"], json!("ok"));
    let expected_redis = if crate::helpers::redis_url().is_some() {
        "ok"
    } else {
        "not_configured"
    };
    assert_eq!(body["redis"], json!(expected_redis));
}

#[tokio::test]
async fn an_unreachable_redis_degrades_readiness_but_not_service() {
    // Port 1 on loopback: nothing listens there. The server still starts.
    let app = TestApp::spawn_with(&["--redis-url", "redis://127.0.0.1:1"]).await;
    let resp = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200, "the database is what readiness needs");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["redis"], json!("unavailable"));
    assert_eq!(body["degraded"], json!(true));
    assert_eq!(
        body["events"],
        json!({ "backend": "redis", "connected": false })
    );
    assert_eq!(body["database"], json!("ok"));
    // Liveness is unaffected, and so are queries.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("sent")
            .status(),
        200
    );
    app.data("{ categories { id } }", json!({})).await;
}

#[tokio::test]
async fn metrics_count_requests_errors_and_statements() {
    let app = TestApp::spawn().await;
    fixtures::catalog(app.db(), 2).await;

    app.data("{ categories { id } }", json!({})).await;
    app.gql("{ node(id: \"garbage\") { id } }", json!({})).await;
    app.gql("{ node(id: \"garbage\") { id } }", json!({})).await;

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert_eq!(
        metric_value(
            &text,
            "pushhand_graphql_requests_total{operation=\"query\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        metric_value(&text, "pushhand_graphql_errors_total{code=\"VALIDATION\"}"),
        Some(2.0)
    );
    assert!(metric_value(&text, "pushhand_db_statements_total").is_some_and(|n| n > 0.0));
    assert!(text.contains("pushhand_graphql_request_duration_seconds_bucket"));
    assert!(metric_value(&text, "pushhand_db_pool_connections{state=\"idle\"}").is_some());
}
