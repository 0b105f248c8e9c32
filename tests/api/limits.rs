//! Abuse limits (SPEC §5): each limit with a document just under and just over it, the
//! fragment-bomb family refused by the guard while other requests are served, the HTTP
//! policy (body size, batches, malformed bodies), and the same guard on WebSocket.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};
use crate::ws::{TRANSPORT_WS, Ws};

/// `n` levels of fragments, each spreading the previous one twice: 2^n selections.
pub fn fragment_bomb(levels: usize) -> String {
    let mut doc = String::from("fragment F0 on Query { __typename }");
    for i in 1..=levels {
        doc.push_str(&format!(
            " fragment F{i} on Query {{ ...F{} ...F{} }}",
            i - 1,
            i - 1
        ));
    }
    doc.push_str(&format!(" query {{ ...F{levels} }}"));
    doc
}

async fn code(app: &TestApp, query: &str) -> Option<String> {
    let resp = app.gql(query, json!({})).await;
    error_code(&resp).map(str::to_owned)
}

/// `{ categories { <fields> } }` with `fields` repeated.
fn categories_with(fields: &[String]) -> String {
    format!("{{ categories {{ {} }} }}", fields.join(" "))
}

#[tokio::test]
async fn each_guard_limit_just_under_and_just_over() {
    // Complexity lifted so that the guard's own limits are the ones that bind.
    let app = TestApp::spawn_with(&["--max-complexity", "1000000"]).await;

    // Expanded selections: `categories` + 1,999 fields = 2,000; one more is refused.
    let ids = |n: usize| vec!["id".to_owned(); n];
    assert_eq!(code(&app, &categories_with(&ids(1_999))).await, None);
    assert_eq!(
        code(&app, &categories_with(&ids(2_000))).await.as_deref(),
        Some("QUERY_TOO_LARGE")
    );

    // Fragment definitions: 50, then 51.
    let fragments = |n: usize| {
        let defs: Vec<String> = (0..n)
            .map(|i| format!("fragment G{i} on Category {{ id }}"))
            .collect();
        let spreads: Vec<String> = (0..n).map(|i| format!("...G{i}")).collect();
        format!("{} {}", categories_with(&spreads), defs.join(" "))
    };
    assert_eq!(code(&app, &fragments(50)).await, None);
    assert_eq!(
        code(&app, &fragments(51)).await.as_deref(),
        Some("TOO_MANY_FRAGMENTS")
    );

    // Aliases: 30, then 31 — and 16 aliases in a fragment spread twice are 32.
    let aliases = |n: usize| (0..n).map(|i| format!("a{i}: id")).collect::<Vec<_>>();
    assert_eq!(code(&app, &categories_with(&aliases(30))).await, None);
    assert_eq!(
        code(&app, &categories_with(&aliases(31))).await.as_deref(),
        Some("TOO_MANY_ALIASES")
    );
    let twice = format!(
        "{{ categories {{ ...A }} c2: categories {{ ...A }} }} fragment A on Category {{ {} }}",
        aliases(15).join(" ")
    );
    assert_eq!(
        code(&app, &twice).await.as_deref(),
        Some("TOO_MANY_ALIASES")
    );

    // Root fields: 20, then 21.
    let roots = |n: usize| format!("{{ {} }}", vec!["__typename"; n].join(" "));
    assert_eq!(code(&app, &roots(20)).await, None);
    assert_eq!(
        code(&app, &roots(21)).await.as_deref(),
        Some("TOO_MANY_ROOT_FIELDS")
    );

    // A fragment cycle is refused by the guard too (validation would report it as well).
    let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
    assert_eq!(
        code(&app, cycle).await.as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED")
    );
}

#[tokio::test]
async fn depth_and_complexity_just_under_and_just_over() {
    let app = TestApp::spawn().await;
    // Depth: `categories` + k × `children` + `id`.
    let nested = |k: usize| {
        format!(
            "{{ categories {{ {}id{} }} }}",
            "children { ".repeat(k),
            " }".repeat(k)
        )
    };
    assert_eq!(code(&app, &nested(10)).await, None, "12 deep");
    assert_eq!(
        code(&app, &nested(11)).await.as_deref(),
        Some("QUERY_TOO_DEEP"),
        "13 deep"
    );

    // Cost (scalars 0, objects 1, a connection `first` × one item): a node selecting ten
    // objects costs 11 an item; 1 + 90 × 11 = 991 passes, 1 + 91 × 11 = 1,002 does not.
    let ten = "brand { name } b2: brand { name } category { nameZh } c2: category { nameZh } \
               skus { price } s2: skus { price } curation { passed } u2: curation { passed } \
               images { url } i2: images { url }";
    let page = |first: usize| {
        format!("{{ products(first: {first}) {{ edges {{ node {{ id {ten} }} }} }} }}")
    };
    assert_eq!(code(&app, &page(90)).await, None);
    let resp = app.gql(&page(91), json!({})).await;
    assert_eq!(error_code(&resp), Some("QUERY_TOO_COMPLEX"), "{resp}");
    let message = resp["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("1002") && message.contains("1000"),
        "the refusal says the cost and the limit: {message}"
    );
    // `first` beyond the cap is costed at the cap (and served at it); scalars are free.
    assert_eq!(
        code(
            &app,
            "{ products(first: 5000) { edges { node { id name nameEn description salesCount createdAt publishedAt status } } } }"
        )
        .await,
        None
    );
    // A variable's page size is read from the request.
    let by_variable =
        format!("query($n: Int) {{ products(first: $n) {{ edges {{ node {{ id {ten} }} }} }} }}");
    let resp = app.gql(&by_variable, json!({ "n": 91 })).await;
    assert_eq!(error_code(&resp), Some("QUERY_TOO_COMPLEX"), "{resp}");
    let resp = app.gql(&by_variable, json!({ "n": 90 })).await;
    assert_eq!(error_code(&resp), None, "{resp}");
}

/// The 50-card product grid a storefront shows (issue #25's document) fits the cost limit,
/// and an answer reports its cost in `extensions.cost` when the server is told to.
#[tokio::test]
async fn a_product_grid_fits_and_reports_its_cost() {
    let app = TestApp::spawn_with(&["--report-cost", "true"]).await;
    let grid = "{ products(first: 50) { edges { cursor node { id name status rebateRate \
                teamRebateRate membershipActivity category { id nameZh } brand { id name } \
                skus { id price stock } curation { passed } } } pageInfo { hasNextPage endCursor } } }";
    let resp = app.gql(grid, json!({})).await;
    assert!(resp.get("errors").is_none(), "{resp}");
    assert_eq!(
        resp["extensions"]["cost"],
        json!({ "requestedQueryCost": 1 + 50 * 5 + 1, "maximumAvailable": 1000 })
    );
    // On a default server, the `x-pushhand-cost` header asks for one answer's cost, even
    // for a read the response cache has kept.
    let app = TestApp::spawn().await;
    let plain = app.gql(grid, json!({})).await;
    assert!(plain.get("extensions").is_none(), "{plain}");
    let asked: Value = app
        .client
        .post(app.url("/graphql"))
        .header("x-pushhand-cost", "1")
        .json(&json!({ "query": grid }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        asked["extensions"]["cost"]["requestedQueryCost"], 252,
        "{asked}"
    );
    assert_eq!(asked["data"], plain["data"]);
}

/// GraphiQL's introspection query (graphql-js 16 `getIntrospectionQuery()`, 13 levels deep
/// with its seven `ofType`s) passes every limit: schema tools keep working.
#[tokio::test]
async fn graphiql_introspection_passes_the_limits() {
    let app = TestApp::spawn().await;
    let query = include_str!("introspection.graphql");
    let resp = app.gql(query, json!({})).await;
    assert!(resp.get("errors").is_none(), "{resp}");
    assert_eq!(
        resp["data"]["__schema"]["subscriptionType"]["name"],
        json!("Subscription")
    );
}

#[tokio::test]
async fn fragment_bombs_are_refused_by_the_guard_while_others_are_served() {
    let app = TestApp::spawn().await;
    let bombs = (16..=60).map(|levels| {
        let doc = fragment_bomb(levels);
        let app = &app;
        async move {
            let resp = app.gql(&doc, json!({})).await;
            (levels, error_code(&resp).map(str::to_owned))
        }
    });
    let served = async {
        let mut served = 0;
        for _ in 0..20 {
            let data = app.data("{ categories { id } }", json!({})).await;
            assert!(data["categories"].is_array());
            served += 1;
        }
        served
    };
    let (refusals, served) = tokio::join!(join_all(bombs), served);
    assert_eq!(served, 20);
    for (levels, code) in refusals {
        // Up to 49 levels (50 fragments) the guard measures 2^levels selections; beyond,
        // it counts the fragments first. Both codes come from the guard alone.
        let expected = if levels < 50 {
            "QUERY_TOO_LARGE"
        } else {
            "TOO_MANY_FRAGMENTS"
        };
        assert_eq!(code.as_deref(), Some(expected), "{levels} levels");
    }
}

#[tokio::test]
async fn the_http_policy() {
    let app = TestApp::spawn().await;
    let post = |body: String| {
        app.client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // Exactly 256 KiB is accepted; one byte more is 413 before any parsing.
    let limit = 256 * 1024;
    let padded = |len: usize| {
        let skeleton = json!({ "query": "{ __typename }" }).to_string();
        format!("{}{}", " ".repeat(len - skeleton.len()), skeleton)
    };
    let ok = post(padded(limit)).await.expect("sent");
    assert_eq!(ok.status(), 200);
    let big = post(padded(limit + 1)).await.expect("sent");
    assert_eq!(big.status(), 413);
    let body: Value = big.json().await.expect("JSON error body");
    assert_eq!(error_code(&body), Some("REQUEST_TOO_LARGE"));

    // Batches are refused, with a JSON error.
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    let resp = post(batch.to_string()).await.expect("sent");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(error_code(&body), Some("BATCH_NOT_SUPPORTED"));

    // Malformed bodies are 400 with a JSON error, never 5xx.
    for bad in ["{ not json", "{\"variables\": {}}", "\"just a string\"", ""] {
        let resp = post(bad.to_owned()).await.expect("sent");
        assert_eq!(resp.status(), 400, "{bad:?}");
        let body: Value = resp.json().await.expect("JSON");
        assert_eq!(error_code(&body), Some("BAD_REQUEST"), "{bad:?}");
    }

    // A syntax error in the document is a GraphQL error with its code.
    let resp = app.gql("{ products(first: ", json!({})).await;
    assert_eq!(error_code(&resp), Some("GRAPHQL_PARSE_FAILED"));
    let resp = app.gql("{ noSuchField }", json!({})).await;
    assert_eq!(error_code(&resp), Some("GRAPHQL_VALIDATION_FAILED"));
}

#[tokio::test]
async fn the_guard_also_covers_websocket_operations() {
    let app = TestApp::spawn().await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.send(json!({ "type": "subscribe", "id": "b",
                    "payload": { "query": fragment_bomb(30) } }))
        .await;
    let msg = ws.json().await;
    assert_eq!(msg["type"], json!("error"), "{msg}");
    assert_eq!(
        msg["payload"][0]["extensions"]["code"],
        json!("QUERY_TOO_LARGE")
    );
    // The connection is still good.
    ws.send(json!({ "type": "subscribe", "id": "q", "payload": { "query": "{ __typename }" } }))
        .await;
    assert_eq!(ws.next("q").await["data"]["__typename"], json!("Query"));
    assert_eq!(ws.json().await, json!({ "type": "complete", "id": "q" }));
}
