//! A browser frontend's view of the API (issue #25): CORS preflights and the WebSocket's
//! origin check, clean configuration errors, GraphQL over HTTP status codes, compression
//! and HTTP caching, request IDs.

use serde_json::json;

use crate::helpers::TestApp;

/// A preflight for `POST /graphql` with a bearer token, from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight sent")
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_with_the_cors_headers() {
    let app = TestApp::spawn_with(&["--cors-origins", "https://shop.example"]).await;
    let resp = preflight(&app, "https://shop.example").await;
    assert!(resp.status().is_success(), "status {}", resp.status());
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    let allowed = header(&resp, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(allowed.contains("content-type"), "{allowed}");
    assert!(
        header(&resp, "access-control-allow-methods")
            .unwrap_or_default()
            .contains("POST")
    );
    let max_age: u64 = header(&resp, "access-control-max-age")
        .and_then(|v| v.parse().ok())
        .expect("a max-age");
    assert!(max_age > 0);

    // The actual request carries the origin back too.
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("origin", "https://shop.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example")
    );
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_allow_origin() {
    let app = TestApp::spawn_with(&["--cors-origins", "https://shop.example"]).await;
    for origin in [
        "https://evil.example",
        "http://shop.example",
        "http://localhost:5173",
    ] {
        let resp = preflight(&app, origin).await;
        assert!(
            header(&resp, "access-control-allow-origin").is_none(),
            "{origin} was allowed"
        );
    }
}

#[tokio::test]
async fn development_allows_localhost_on_any_port_by_default() {
    let app = TestApp::spawn().await;
    for origin in ["http://localhost:5173", "http://127.0.0.1:3000"] {
        let resp = preflight(&app, origin).await;
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(origin));
    }
    let resp = preflight(&app, "https://evil.example").await;
    assert!(header(&resp, "access-control-allow-origin").is_none());
}

/// The WebSocket handshake's status with `origin` (101 when upgraded).
async fn ws_status(app: &TestApp, origin: Option<&str>) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    if let Some(origin) = origin {
        req.headers_mut()
            .insert("origin", origin.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("handshake failed otherwise: {e}"),
    }
}

#[tokio::test]
async fn a_websocket_from_another_origin_is_refused() {
    let app = TestApp::spawn_with(&["--cors-origins", "https://shop.example"]).await;
    assert_eq!(ws_status(&app, Some("https://evil.example")).await, 403);
    assert_eq!(ws_status(&app, Some("https://shop.example")).await, 101);
    // Not a browser: allowed.
    assert_eq!(ws_status(&app, None).await, 101);
    // A page the server itself serves (GraphiQL) is same-origin.
    let own = format!("http://{}", app.addr);
    assert_eq!(ws_status(&app, Some(&own)).await, 101);
}

#[tokio::test]
async fn a_taken_address_fails_before_the_database_is_migrated() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = crate::helpers::fresh_database_url(&dir).await;
    let data_dir = dir.path().display().to_string();
    let config = pushhand::config::from_args([
        "pushhand",
        "--database-url",
        &db_url,
        "--bind-addr",
        &addr,
        "--data-dir",
        &data_dir,
        "--jwt-secret",
        "test-secret-test-secret-test-secret-0123",
        "--seed-demo",
        "true",
    ])
    .expect("config parses");
    let err = match pushhand::app::App::build(config).await {
        Ok(_) => panic!("the address is taken"),
        Err(e) => pushhand::telemetry::error_message(&e),
    };
    assert!(err.contains(&addr), "{err}");
    let db = sea_orm::Database::connect(&db_url).await.expect("connects");
    use sea_orm::ConnectionTrait;
    assert!(
        db.execute_unprepared("SELECT count(*) FROM seaql_migrations")
            .await
            .is_err(),
        "nothing was migrated"
    );
}

#[test]
fn an_error_repeating_its_cause_is_printed_once() {
    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("pool timed out")
        }
    }
    impl std::error::Error for Inner {}
    #[derive(Debug)]
    struct Outer(Inner);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Connection Error: {}", self.0)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let e = anyhow::Error::new(Outer(Inner)).context("connecting to postgres://db");
    assert_eq!(
        pushhand::telemetry::error_message(&e),
        "connecting to postgres://db: Connection Error: pool timed out"
    );
}
