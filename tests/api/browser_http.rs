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

/// POSTs `query` with `accept` (none when `None`); the status, content type and body.
async fn post_accepting(
    app: &TestApp,
    query: &str,
    accept: Option<&str>,
) -> (u16, String, serde_json::Value) {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }));
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let resp = req.send().await.expect("sent");
    let status = resp.status().as_u16();
    let content_type = header(&resp, "content-type").unwrap_or_default().to_owned();
    (status, content_type, resp.json().await.expect("JSON body"))
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

#[tokio::test]
async fn documents_that_never_execute_answer_400_with_the_graphql_response_type() {
    let app = TestApp::spawn_with(&["--max-depth", "4", "--max-complexity", "10"]).await;
    let cases = [
        ("{ products {", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
        (
            "{ products(first: 1) { edges { node { brand { id } } } } }",
            "QUERY_TOO_DEEP",
        ),
        (
            "{ products(first: 50) { edges { node { id } } } }",
            "QUERY_TOO_COMPLEX",
        ),
    ];
    for (query, code) in cases {
        for accept in [None, Some("*/*"), Some(GRAPHQL_RESPONSE)] {
            let (status, content_type, body) = post_accepting(&app, query, accept).await;
            assert_eq!(status, 400, "{query} with {accept:?}: {body}");
            assert!(content_type.starts_with(GRAPHQL_RESPONSE), "{content_type}");
            assert_eq!(crate::helpers::error_code(&body), Some(code), "{body}");
            assert!(body.get("data").is_none_or(|d| d.is_null()), "{body}");
        }
        // An older client: 200 and application/json, as before.
        let (status, content_type, body) =
            post_accepting(&app, query, Some("application/json")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert_eq!(crate::helpers::error_code(&body), Some(code), "{body}");
    }
    // GET too.
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ noSuchField }")])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    // Apollo Client's Accept: the new type first.
    let (status, _, _) = post_accepting(
        &app,
        "{ noSuchField }",
        Some("application/graphql-response+json,application/json;q=0.9"),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_executed_document_answers_200_even_with_errors() {
    let app = TestApp::spawn().await;
    let (status, content_type, body) =
        post_accepting(&app, "{ node(id: \"abc\") { id } }", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with(GRAPHQL_RESPONSE));
    assert!(body["errors"].as_array().is_some_and(|e| !e.is_empty()));
    let (status, content_type, _) =
        post_accepting(&app, "{ __typename }", Some("application/json")).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
}

#[tokio::test]
async fn every_validation_error_of_a_document_comes_back_at_once() {
    let app = TestApp::spawn().await;
    let (status, _, body) = post_accepting(
        &app,
        "{ nope1 products(first: \"x\") { edges { nope2 } } nope3 }",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert!(errors.len() >= 4, "{body:#}");
    for e in errors {
        assert_eq!(e["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{e}");
        assert!(
            e["locations"].as_array().is_some_and(|l| !l.is_empty()),
            "{e}"
        );
    }
}

#[tokio::test]
async fn root_fields_come_back_in_the_order_asked() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query":
            "{ z: __typename products(first: 1) { pageInfo { hasNextPage } } a: __typename m: categories { id } }" }))
        .send()
        .await
        .expect("sent");
    let text = resp.text().await.expect("body");
    let at = |key: &str| {
        text.find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("{key} in {text}"))
    };
    assert!(at("z") < at("products"), "{text}");
    assert!(at("products") < at("a"), "{text}");
    assert!(at("a") < at("m"), "{text}");
}

/// The JSON that `br` holds.
pub fn unbrotli(br: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut brotli_decompressor::Decompressor::new(br, 4096),
        &mut out,
    )
    .expect("valid brotli");
    out
}

fn gunzip(gzip: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzip), &mut out)
        .expect("valid gzip");
    out
}

/// The product card listing (well over 1 KiB for 10 products).
const LIST: &str = "query($first: Int) { products(first: $first) { edges { node { id name status minPrice skus { id name stock } } } } }";

/// POSTs `query` accepting `encoding` (none when empty): the content encoding and the body.
async fn post_encoded(app: &TestApp, query: &str, encoding: &str) -> (String, Vec<u8>) {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": { "first": 10 } }));
    if !encoding.is_empty() {
        req = req.header("accept-encoding", encoding);
    }
    let resp = req.send().await.expect("sent");
    assert_eq!(resp.status(), 200);
    let coding = header(&resp, "content-encoding")
        .unwrap_or_default()
        .to_owned();
    (coding, resp.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn executed_answers_are_compressed_as_the_client_prefers_above_the_threshold() {
    // No response cache: every answer is executed and compressed on the way out.
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    crate::fixtures::catalog(app.db(), 10).await;
    let (coding, plain) = post_encoded(&app, LIST, "").await;
    assert_eq!(coding, "");
    assert!(plain.len() > 1024, "{} bytes", plain.len());
    let (coding, gz) = post_encoded(&app, LIST, "gzip").await;
    assert_eq!(coding, "gzip");
    assert_eq!(gunzip(&gz), plain);
    assert!(gz.len() < plain.len() / 2);
    let (coding, br) = post_encoded(&app, LIST, "br").await;
    assert_eq!(coding, "br");
    assert_eq!(unbrotli(&br), plain);
    let (coding, _) = post_encoded(&app, LIST, "identity").await;
    assert_eq!(coding, "");
    // Below the threshold: as it is.
    let (coding, small) = post_encoded(&app, "{ __typename }", "gzip, br").await;
    assert_eq!(coding, "");
    assert!(small.starts_with(b"{"));
    // Off.
    let off =
        TestApp::spawn_with(&["--response-cache", "false", "--compress-from-bytes", "0"]).await;
    crate::fixtures::catalog(off.db(), 10).await;
    let (coding, _) = post_encoded(&off, LIST, "gzip, br").await;
    assert_eq!(coding, "");
}

/// GETs the listing, with `If-None-Match` and a token when given.
async fn get_list(
    app: &TestApp,
    if_none_match: Option<&str>,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", LIST), ("variables", "{\"first\":10}")]);
    if let Some(tag) = if_none_match {
        req = req.header("if-none-match", tag);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("sent")
}

#[tokio::test]
async fn anonymous_catalog_gets_are_cacheable_and_revalidate_with_their_etag() {
    let app = TestApp::spawn().await;
    crate::fixtures::catalog(app.db(), 10).await;
    let first = get_list(&app, None, None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "cache-control"), Some("public, max-age=5"));
    let etag = header(&first, "etag").expect("an ETag").to_owned();
    let vary: Vec<String> = first
        .headers()
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .collect();
    assert!(vary.iter().any(|v| v.contains("authorization")), "{vary:?}");
    let listing: serde_json::Value = first.json().await.expect("JSON");

    // The same tag again (a hit): 304, no body.
    let again = get_list(&app, Some(&etag), None).await;
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), Some(etag.as_str()));
    assert!(again.bytes().await.expect("body").is_empty());
    let other = get_list(&app, Some("W/\"other\""), None).await;
    assert_eq!(other.status(), 200);

    // The catalog changes: the old tag no longer matches.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let sku = listing["data"]["products"]["edges"][0]["node"]["skus"][0]["id"]
        .as_str()
        .expect("a SKU")
        .to_owned();
    entity::sku::Entity::update_many()
        .col_expr(
            entity::sku::Column::Stock,
            sea_orm::sea_query::Expr::value(3),
        )
        .filter(entity::sku::Column::Id.eq(crate::fixtures::uuid_of(&sku)))
        .exec(app.db())
        .await
        .expect("update stock");
    app.state
        .events
        .publish(vec![pushhand::events::Event::catalog(None)])
        .await;
    let changed = get_list(&app, Some(&etag), None).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(header(&changed, "etag"), Some(etag.as_str()));

    // POST answers and signed-in answers get no Cache-Control.
    let (token, _) = app
        .user(
            "buyer@example.com",
            pushhand::service::members::CliRole::PushHand,
        )
        .await;
    let signed_in = get_list(&app, None, Some(&token)).await;
    assert_eq!(signed_in.status(), 200);
    assert!(header(&signed_in, "cache-control").is_none());
    let post = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": LIST, "variables": { "first": 10 } }))
        .send()
        .await
        .expect("sent");
    assert!(header(&post, "cache-control").is_none());
}

#[tokio::test]
async fn every_answer_carries_a_request_id_given_or_made() {
    let app = TestApp::spawn().await;
    let given = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", "checkout-7f3a")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&given, "x-request-id"), Some("checkout-7f3a"));
    let mut made = Vec::new();
    for path in [
        "/graphql?query=%7B__typename%7D",
        "/healthz",
        "/graphql?query=%7B",
    ] {
        let resp = app.client.get(app.url(path)).send().await.expect("sent");
        let id = header(&resp, "x-request-id")
            .expect("a request ID")
            .to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        made.push(id);
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 3, "each request has its own ID");
}
