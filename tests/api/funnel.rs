//! Notes that sell, the share funnel and "who gets credit now" (issue #30, items 2, 4, 6): a
//! note's share code takes a visitor through `/s/{code}`, registration, an order and its
//! payment to an earning whose explanation names the note, and the author's `Note.stats` and
//! `me.funnel` count each step; a visitor hammering a short link counts once a day, also
//! concurrently; `creditPreview` says who would be credited and why for bound and unbound
//! buyers; bad codes are refused (GraphQL) or ignored (short links, registration).

use chrono::Duration;
use entity::member::Tier;
use entity::{share_signup, share_visit, share_visit_count};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cart::{ADD, token_of};
use crate::earnings::{order, pay, product};
use crate::fixtures::{self, gid};
use crate::helpers::{PASSWORD, TestApp, error_code};

const NOTE: &str = "query($id: ID!) { note(id: $id) { id shareCode
  stats { views productClicks orders earnings } } }";
const PREVIEW: &str = "query($p: ID!, $c: String) { creditPreview(productId: $p, shareCode: $c) {
  attribution { rule earnerName summary } codeCounts noteId bindingKind bindingExpiresAt
  bindingDecides rules } }";
const FUNNEL: &str = "query($p: FunnelPeriod) { me { funnel(period: $p) {
  since rows { code shareLink { code } product { id } note { id }
    counts { visits productClicks registrations firstOrders paidOrders earnings
             registeredNeverBought } }
  totals { visits registrations paidOrders earnings registeredNeverBought } } } }";
const EARNINGS: &str = "{ me { earnings(first: 10) { edges { node { kind amount
  explanation { rule noteId noteTitle shareLinkId summary } } } } } }";

/// A client that does not follow redirects, with a fixed User-Agent.
fn browser(agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent)
        .build()
        .expect("client")
}

/// GETs `/s/{code}` (with `query`) as `agent`; returns the redirect's `Location`.
async fn visit(app: &TestApp, agent: &str, code: &str, query: &str) -> String {
    let resp = browser(agent)
        .get(app.url(&format!("/s/{code}{query}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), reqwest::StatusCode::FOUND);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned()
}

/// Registers through the API with `shareCode`; returns the whole response.
async fn register_via(app: &TestApp, email: &str, code: Option<&str>) -> Value {
    app.gql(
        "mutation($i: RegisterInput!) { register(input: $i) { token member { id } } }",
        json!({ "i": { "email": email, "password": PASSWORD, "displayName": email,
                       "shareCode": code } }),
    )
    .await
}

/// A public note by `author` linking `products`, approved by `curator`: its ID.
async fn public_note(
    app: &TestApp,
    author: &str,
    curator: &str,
    title: &str,
    products: &[Uuid],
) -> String {
    let d = app
        .data_as(
            author,
            "mutation($i: NoteInput!) { createNote(input: $i) { id } }",
            json!({ "i": { "title": title, "body": "好用", "imageUrls": [],
                "productIds": products.iter().map(|p| gid(Kind::Product, *p)).collect::<Vec<_>>() } }),
        )
        .await;
    let id = d["createNote"]["id"].as_str().expect("id").to_owned();
    app.data_as(
        author,
        "mutation($id: ID!) { submitNote(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    app.data_as(
        curator,
        "mutation($id: ID!) { reviewNote(id: $id, approve: true) { id } }",
        json!({ "id": id }),
    )
    .await;
    id
}

async fn funnel(app: &TestApp, token: &str, period: &str) -> Value {
    app.data_as(token, FUNNEL, json!({ "p": period })).await["me"]["funnel"].clone()
}

#[tokio::test]
async fn a_note_sells_for_its_author_and_the_funnel_shows_each_step() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let (author, author_row) = app.user("author@example.com", CliRole::PushHand).await;
    let (product_id, sku) = product(&app, 100, false).await;
    let note = public_note(&app, &author, &curator, "净水器一个月体验", &[product_id]).await;

    // Every published note carries a share code; its numbers are the author's alone.
    let mine = app.data_as(&author, NOTE, json!({ "id": note })).await;
    let code = mine["note"]["shareCode"]
        .as_str()
        .expect("share code")
        .to_owned();
    assert_eq!(code.len(), 12);
    assert_eq!(
        mine["note"]["stats"],
        json!({ "views": 0, "productClicks": 0, "orders": 0, "earnings": "0.00" })
    );
    let public = app.data(NOTE, json!({ "id": note })).await;
    assert_eq!(public["note"]["shareCode"], json!(code));
    assert!(public["note"]["stats"].is_null(), "anonymous: null");

    // Two visitors (one of them twice), one product click.
    let location = visit(&app, "phone-a", &code, "").await;
    assert_eq!(location, format!("http://localhost:5173/?code={code}"));
    visit(&app, "phone-a", &code.to_lowercase(), "").await;
    visit(&app, "phone-b", &code, "").await;
    let p = gid(Kind::Product, product_id);
    let location = visit(&app, "phone-b", &code, &format!("?p={p}")).await;
    assert!(location.contains(&format!("code={code}")), "{location}");
    assert!(location.contains("p="), "{location}");

    // Two register through the note; one buys, the other never does.
    let r = register_via(&app, "buyer@example.com", Some(&code)).await;
    assert!(r["data"].is_object(), "{r}");
    let buyer = r["data"]["register"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let r = register_via(&app, "browser@example.com", Some(&code)).await;
    assert!(r["data"].is_object(), "{r}");
    let other = r["data"]["register"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(
        app.data_as(&other, NOTE, json!({ "id": note })).await["note"]["stats"].is_null(),
        "another member: null"
    );

    // Before buying: the note's author would be credited, and the preview says so in the
    // cart's words.
    let pre = app
        .data_as(&buyer, PREVIEW, json!({ "p": p, "c": code }))
        .await["creditPreview"]
        .clone();
    assert_eq!(pre["attribution"]["rule"], "PROMOTION");
    assert_eq!(pre["attribution"]["earnerName"], "author");
    let said = pre["attribution"]["summary"].as_str().expect("summary");
    assert!(said.contains("note «净水器一个月体验»"), "{said}");
    assert_eq!(pre["codeCounts"], true);
    assert_eq!(pre["noteId"], json!(note));
    let added = app
        .data_as(
            &buyer,
            ADD,
            json!({ "s": gid(Kind::Sku, sku), "q": 1, "c": code }),
        )
        .await;
    assert_eq!(
        added["addToCart"]["lines"][0]["attribution"]["summary"],
        json!(said),
        "the cart and the preview say the same"
    );

    // The order through the note's code, paid: PROMOTION to the author, naming the note.
    let placed = order(&app, &buyer, sku, 1, Some(&code)).await;
    let order_id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{placed}"))
        .to_owned();
    let paid = pay(&app, &admin, &order_id, "wx-note-1", "199.00").await;
    assert_eq!(paid["data"]["confirmPayment"]["status"], "PAID", "{paid}");
    let earned = app.data_as(&author, EARNINGS, json!({})).await;
    let e = &earned["me"]["earnings"]["edges"][0]["node"];
    assert_eq!(e["kind"], "PROMOTION");
    assert_eq!(e["amount"], "29.85");
    assert_eq!(e["explanation"]["noteId"], json!(note));
    assert_eq!(e["explanation"]["noteTitle"], "净水器一个月体验");
    assert!(e["explanation"]["shareLinkId"].is_null());
    let s = e["explanation"]["summary"].as_str().expect("summary");
    assert!(
        s.contains("15% of 199.00") && s.contains("«净水器一个月体验»"),
        "{s}"
    );

    // The author's numbers.
    let mine = app.data_as(&author, NOTE, json!({ "id": note })).await;
    assert_eq!(
        mine["note"]["stats"],
        json!({ "views": 2, "productClicks": 1, "orders": 1, "earnings": "29.85" })
    );
    for period in ["TODAY", "LAST_7_DAYS", "ALL_TIME"] {
        let f = funnel(&app, &author, period).await;
        let rows = f["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 1, "{f}");
        assert_eq!(rows[0]["code"], json!(code));
        assert_eq!(rows[0]["note"]["id"], json!(note));
        assert!(rows[0]["shareLink"].is_null());
        assert_eq!(
            rows[0]["counts"],
            json!({ "visits": 2, "productClicks": 1, "registrations": 2, "firstOrders": 1,
                    "paidOrders": 1, "earnings": "29.85", "registeredNeverBought": 1 }),
            "{period}"
        );
        assert_eq!(f["totals"]["paidOrders"], 1);
    }
    // Registrations bind nobody.
    let signups = share_signup::Entity::find()
        .all(app.db())
        .await
        .expect("signups");
    assert_eq!(signups.len(), 2);
    assert!(signups.iter().all(|s| s.owner_id == author_row.id));

    // A week on, today's funnel is empty; all time keeps everything.
    app.clock.advance(Duration::days(8));
    let f = funnel(&app, &author, "LAST_7_DAYS").await;
    assert_eq!(f["rows"], json!([]));
    let f = funnel(&app, &author, "ALL_TIME").await;
    assert_eq!(f["totals"]["visits"], 2);
    assert!(f["since"].is_null());
}

/// Visits go through connections of their own on PostgreSQL, whose commits do not wait for
/// the log's flush (`db::connect_visit_recorder`); every other write keeps waiting for it.
/// On SQLite they share the one pool.
#[tokio::test]
async fn visits_alone_commit_without_waiting_for_the_flush() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = TestApp::spawn().await;
    let setting = |db: sea_orm::DatabaseConnection| async move {
        db.query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_setting('synchronous_commit') AS s",
        ))
        .await
        .expect("setting")
        .expect("row")
        .try_get::<String>("", "s")
        .expect("s")
    };
    if app.db().get_database_backend() == DbBackend::Postgres {
        assert_eq!(setting(app.state.visits_db.clone()).await, "off");
        assert_eq!(setting(app.db().clone()).await, "on");
    } else {
        assert_eq!(
            app.state.visits_db.get_database_backend(),
            app.db().get_database_backend()
        );
    }
}

#[tokio::test]
async fn a_visitor_hammering_a_short_link_counts_once_a_day() {
    let app = TestApp::spawn().await;
    let (sharer, _) = app.user("sharer@example.com", CliRole::PushHand).await;
    let (product_id, _) = product(&app, 10, false).await;
    let code = crate::cart::share_code(&app, &sharer, product_id).await;

    // 40 requests at once from one visitor: one visit.
    let all = join_all((0..40).map(|_| visit(&app, "same-phone", &code, ""))).await;
    assert!(all.iter().all(|l| l.ends_with(&format!("?code={code}"))));
    assert_eq!(
        share_visit::Entity::find()
            .count(app.db())
            .await
            .expect("n"),
        1
    );
    let f = funnel(&app, &sharer, "TODAY").await;
    assert_eq!(f["rows"][0]["shareLink"]["code"], json!(code));
    assert_eq!(
        f["rows"][0]["product"]["id"],
        json!(gid(Kind::Product, product_id))
    );
    assert_eq!(f["rows"][0]["counts"]["visits"], 1);
    assert_eq!(f["rows"][0]["counts"]["productClicks"], 0);

    // A product parameter on a share link's code is the link itself.
    visit(&app, "same-phone", &code, "?p=whatever").await;
    assert_eq!(
        share_visit::Entity::find()
            .count(app.db())
            .await
            .expect("n"),
        1
    );

    // The next day the same visitor counts again (a new daily salt).
    app.clock.advance(Duration::days(1));
    join_all((0..10).map(|_| visit(&app, "same-phone", &code, ""))).await;
    let rows = share_visit::Entity::find()
        .all(app.db())
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2);
    assert_ne!(
        rows[0].visitor, rows[1].visitor,
        "the visitor's hash changes daily"
    );
    assert!(rows.iter().all(|r| r.visitor.len() == 32));
    assert_eq!(funnel(&app, &sharer, "TODAY").await["totals"]["visits"], 1);
    assert_eq!(
        funnel(&app, &sharer, "ALL_TIME").await["totals"]["visits"],
        2
    );

    // Visits are recorded in groups (whatever arrives while one is written): 60 visitors
    // three times each, and 20 visits of codes that name nothing, all at once — each
    // visitor counts once, every answer is its own, and nothing is recorded for the rest.
    let mut requests = Vec::new();
    for round in 0..3 {
        for v in 0..60 {
            requests.push((format!("phone-{v}"), code.clone(), round));
        }
    }
    for v in 0..20 {
        requests.push((format!("lost-{v}"), "ZZZZZZZZZZ".to_owned(), 0));
    }
    let answers = join_all(
        requests
            .iter()
            .map(|(agent, c, _)| visit(&app, agent, c, "")),
    )
    .await;
    for ((_, c, _), location) in requests.iter().zip(&answers) {
        assert_eq!(
            location.ends_with(&format!("?code={code}")),
            *c == code,
            "{location}"
        );
    }
    assert_eq!(funnel(&app, &sharer, "TODAY").await["totals"]["visits"], 61);
    assert_eq!(
        share_visit::Entity::find()
            .count(app.db())
            .await
            .expect("n"),
        62
    );
    assert_counts_are_the_rows(&app).await;

    // The database keeps the counts: a visit deleted by hand (as an operator erasing a
    // day's data would) is no longer counted, in the same statement.
    let gone = share_visit::Entity::delete_many()
        .filter(share_visit::Column::Visitor.eq(rows[0].visitor.as_str()))
        .exec(app.db())
        .await
        .expect("delete");
    assert_eq!(gone.rows_affected, 1);
    assert_counts_are_the_rows(&app).await;
    assert_eq!(
        funnel(&app, &sharer, "ALL_TIME").await["totals"]["visits"],
        61
    );
}

/// Every daily count the database keeps is the number of visit rows it counts.
async fn assert_counts_are_the_rows(app: &TestApp) {
    let mut recount: std::collections::BTreeMap<(String, String, String), i64> = Default::default();
    for v in share_visit::Entity::find()
        .all(app.db())
        .await
        .expect("visits")
    {
        *recount.entry((v.code, v.target, v.day)).or_default() += 1;
    }
    let kept: std::collections::BTreeMap<(String, String, String), i64> =
        share_visit_count::Entity::find()
            .all(app.db())
            .await
            .expect("counts")
            .into_iter()
            .filter(|c| c.visits != 0)
            .map(|c| ((c.code, c.target, c.day), c.visits))
            .collect();
    assert_eq!(kept, recount);
}

#[tokio::test]
async fn credit_preview_says_who_gets_credit_and_why() {
    let app = TestApp::spawn().await;
    let (x, x_row) = app.user("x@example.com", CliRole::PushHand).await;
    let (_, partner) = app.user("partner@example.com", CliRole::Partner).await;
    let (product_id, _) = product(&app, 10, false).await;
    let p = gid(Kind::Product, product_id);
    let code = crate::cart::share_code(&app, &x, product_id).await;
    let preview = |token: String, c: Option<String>| {
        let app = &app;
        let p = p.clone();
        async move {
            app.data_as(&token, PREVIEW, json!({ "p": p, "c": c }))
                .await["creditPreview"]
                .clone()
        }
    };

    // An unbound buyer: nobody without a code, the code's owner with one.
    let loner = fixtures::member(&app, "loner", Tier::Buyer, None).await;
    let loner = token_of(&app, &loner);
    let v = preview(loner.clone(), None).await;
    assert!(v["attribution"]["rule"].is_null());
    assert!(v["bindingKind"].is_null() && v["bindingDecides"] == false);
    assert!(
        v["rules"]
            .as_str()
            .is_some_and(|r| r.contains("BOUND_REBATE"))
    );
    let v = preview(loner.clone(), Some(code.clone())).await;
    assert_eq!(v["attribution"]["rule"], "PROMOTION");
    assert_eq!(v["attribution"]["earnerName"], "x");
    assert_eq!(v["codeCounts"], true);
    assert!(v["noteId"].is_null());

    // A buyer bound for good by an invite: the binding without a code, the code with one.
    let bound = fixtures::member(&app, "bound", Tier::Buyer, Some(x_row.id)).await;
    let bound = token_of(&app, &bound);
    let v = preview(bound.clone(), None).await;
    assert_eq!(v["attribution"]["rule"], "BOUND_REBATE");
    assert_eq!(v["bindingKind"], "INVITE_CODE");
    assert!(v["bindingExpiresAt"].is_null(), "permanent");
    assert_eq!(v["bindingDecides"], true);

    // Bound through a partner's link: PARTNER_REWARD until the binding lapses.
    let r = app
        .register(
            "linked@example.com",
            None,
            partner.partner_link_code.as_deref(),
        )
        .await;
    assert!(r["data"].is_object(), "{r}");
    let linked = app.login("linked@example.com", PASSWORD).await;
    let v = preview(linked.clone(), None).await;
    assert_eq!(v["attribution"]["rule"], "PARTNER_REWARD");
    assert_eq!(v["attribution"]["earnerName"], "partner");
    assert_eq!(v["bindingKind"], "PARTNER_LINK");
    assert!(v["bindingExpiresAt"].is_string());
    let v = preview(linked.clone(), Some(code.clone())).await;
    assert_eq!(
        v["attribution"]["rule"], "PROMOTION",
        "a share code beats a binding"
    );
    assert_eq!(v["bindingKind"], "PARTNER_LINK");
    assert_eq!(v["bindingDecides"], false);
    app.clock.advance(Duration::days(366));
    let v = preview(linked, None).await;
    assert!(v["attribution"]["rule"].is_null(), "lapsed: {v}");
    assert!(v["bindingKind"].is_null());

    // A push-hand's own purchase: the code does not count.
    let v = preview(x.clone(), Some(code.clone())).await;
    assert_eq!(v["attribution"]["rule"], "SELF_PURCHASE");
    assert_eq!(v["codeCounts"], false);

    // Anonymous: UNAUTHENTICATED.
    let resp = app.gql(PREVIEW, json!({ "p": p, "c": code })).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn bad_codes_are_refused_or_ignored() {
    let app = TestApp::spawn().await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let (author, _) = app.user("author@example.com", CliRole::PushHand).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (one, _) = crate::earnings::another_product(&app, &f, 10, false).await;
    let (two, two_sku) = crate::earnings::another_product(&app, &f, 10, false).await;
    let link = crate::cart::share_code(&app, &author, one).await;
    let note = public_note(&app, &author, &curator, "只推荐一件", &[one]).await;
    let code = app.data(NOTE, json!({ "id": note })).await["note"]["shareCode"]
        .as_str()
        .expect("code")
        .to_owned();
    let buyer = fixtures::member(&app, "buyer", Tier::Buyer, None).await;
    let buyer = token_of(&app, &buyer);

    // creditPreview and placeOrder: VALIDATION on the code, whatever is wrong with it.
    for bad in ["nonsense!", "ZZZZZZZZZZ", "ZZZZZZZZZZZZ", &link, &code] {
        let resp = app
            .gql_as(
                &buyer,
                PREVIEW,
                json!({ "p": gid(Kind::Product, two), "c": bad }),
            )
            .await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{bad}: {resp}");
        assert_eq!(resp["errors"][0]["extensions"]["field"], "shareCode");
    }
    let resp = order(&app, &buyer, two_sku, 1, Some(&code)).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    let resp = app
        .gql_as(
            &buyer,
            ADD,
            json!({ "s": gid(Kind::Sku, two_sku), "q": 1, "c": code }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    let resp = app
        .gql_as(&buyer, PREVIEW, json!({ "p": gid(Kind::Sku, two_sku) }))
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "a SKU's ID: {resp}");
    let resp = app
        .gql_as(
            &buyer,
            PREVIEW,
            json!({ "p": gid(Kind::Product, f.unpublished) }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp}");

    // Short links: a code that names nothing goes to the storefront without one, and
    // nothing is recorded.
    for bad in ["nonsense", "ZZZZZZZZZZ", &"A".repeat(40), "%F0%9F%98%80"] {
        let location = visit(&app, "phone", bad, "").await;
        assert_eq!(location, "http://localhost:5173/", "{bad}");
    }
    assert_eq!(
        share_visit::Entity::find()
            .count(app.db())
            .await
            .expect("n"),
        0
    );

    // Registration: a malformed code is VALIDATION; one that names nothing is ignored.
    let r = register_via(&app, "a@example.com", Some("not a code!")).await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["field"], "shareCode");
    let r = register_via(&app, "b@example.com", Some("ZZZZZZZZZZZZ")).await;
    assert!(r["data"].is_object(), "{r}");
    assert_eq!(
        share_signup::Entity::find()
            .count(app.db())
            .await
            .expect("n"),
        0
    );

    // A deleted note stops counting: its code names nothing any more.
    app.data_as(
        &author,
        "mutation($id: ID!) { deleteNote(id: $id) }",
        json!({ "id": note }),
    )
    .await;
    let resp = app
        .gql_as(
            &buyer,
            PREVIEW,
            json!({ "p": gid(Kind::Product, one), "c": code }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    assert_eq!(
        visit(&app, "phone", &code, "").await,
        "http://localhost:5173/"
    );
}

/// Migration 33 counts the visits already there: rolled back (the visits back in a table of
/// their own ids) and applied again over two days' visits of two codes, the counts are the
/// rows' and the funnel reads what it read before.
#[tokio::test]
async fn the_visit_count_migration_counts_the_visits_already_there() {
    let app = TestApp::spawn().await;
    let (sharer, _) = app.user("sharer@example.com", CliRole::PushHand).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (first, _) = crate::earnings::another_product(&app, &f, 10, false).await;
    let (second, _) = crate::earnings::another_product(&app, &f, 12, false).await;
    let codes = [
        crate::cart::share_code(&app, &sharer, first).await,
        crate::cart::share_code(&app, &sharer, second).await,
    ];
    for day in 0..2 {
        for (i, code) in codes.iter().enumerate() {
            let agents: Vec<String> = (0..3 + i).map(|v| format!("phone-{v}")).collect();
            join_all(agents.iter().map(|a| visit(&app, a, code, ""))).await;
        }
        if day == 0 {
            app.clock.advance(Duration::days(1));
        }
    }
    let before = funnel(&app, &sharer, "ALL_TIME").await;
    assert_eq!(before["totals"]["visits"], 14);
    assert_counts_are_the_rows(&app).await;

    crate::helpers::redo_migration(app.db(), "m20261210_000033_visit_counts").await;
    assert_counts_are_the_rows(&app).await;
    assert_eq!(
        share_visit_count::Entity::find()
            .count(app.db())
            .await
            .expect("n"),
        4,
        "one count per code and day"
    );
    assert_eq!(funnel(&app, &sharer, "ALL_TIME").await, before);
    assert_eq!(funnel(&app, &sharer, "TODAY").await["totals"]["visits"], 7);
}
