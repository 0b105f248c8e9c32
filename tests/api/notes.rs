//! 种草 notes: drafts go through review before the public reads them and an edit under
//! review leaves the approved version public; bad input is reported field by field; only
//! push-hands and partners write, only curators review, drafts are nobody else's; the feeds
//! filter and paginate, HOT follows its formula; likes and reports count once per member
//! under concurrency, frozen members' likes do not count, the N-th report hides a note once;
//! cached anonymous answers follow every change.

use chrono::Duration;
use entity::member::Tier;
use entity::{audit_entry, note, note_like, product};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::audit::Actor;
use pushhand::service::members::{self, CliRole};
use pushhand::service::notes::hot_rank;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cart::token_of;
use crate::fixtures::{self, Fixture, gid};
use crate::helpers::{TestApp, error_code};

const NOTE_FIELDS: &str = "id title body imageUrls likeCount publishedAt products { id }
  author { displayName badge } review { status reason public hiddenAt reportCount title }";

fn create_q() -> String {
    format!("mutation($i: NoteInput!) {{ createNote(input: $i) {{ {NOTE_FIELDS} }} }}")
}

fn update_q() -> String {
    format!(
        "mutation($id: ID!, $i: NoteInput!) {{ updateNote(id: $id, input: $i) {{ {NOTE_FIELDS} }} }}"
    )
}

fn submit_q() -> String {
    format!("mutation($id: ID!) {{ submitNote(id: $id) {{ {NOTE_FIELDS} }} }}")
}

fn review_q() -> String {
    format!(
        "mutation($id: ID!, $a: Boolean!, $r: String) {{ reviewNote(id: $id, approve: $a, reason: $r) {{ {NOTE_FIELDS} }} }}"
    )
}

fn read_q() -> String {
    format!("query($id: ID!) {{ note(id: $id) {{ {NOTE_FIELDS} }} }}")
}

const FEED: &str = "query($f: NoteFeed, $c: ID, $p: ID, $a: ID, $first: Int, $after: String) {
  notes(feed: $f, categoryId: $c, productId: $p, authorId: $a, first: $first, after: $after) {
    edges { cursor node { id title likeCount publishedAt } } pageInfo { hasNextPage endCursor } } }";

const LIKE: &str = "mutation($id: ID!) { likeNote(id: $id) { likeCount } }";
const UNLIKE: &str = "mutation($id: ID!) { unlikeNote(id: $id) { likeCount } }";
const REPORT: &str = "mutation($id: ID!) { reportNote(id: $id, reason: \"spam\") }";

/// Published products of the fixture, in a fixed order (by id).
fn products(f: &Fixture) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = f.published.keys().copied().collect();
    ids.sort();
    ids
}

fn input(title: &str, products: &[Uuid]) -> Value {
    json!({
        "title": title,
        "body": "好用！\n<script>alert(1)</script>",
        "imageUrls": ["https://img.example/n.jpg"],
        "productIds": products.iter().map(|p| gid(Kind::Product, *p)).collect::<Vec<_>>(),
    })
}

struct Cast {
    author: String,
    curator: String,
}

async fn cast(app: &TestApp) -> Cast {
    let (author, _) = app.user("author@example.com", CliRole::PushHand).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    Cast { author, curator }
}

/// Creates a note as `token` and returns its ID.
async fn create(app: &TestApp, token: &str, title: &str, products: &[Uuid]) -> String {
    let d = app
        .data_as(token, &create_q(), json!({ "i": input(title, products) }))
        .await;
    d["createNote"]["id"].as_str().expect("id").to_owned()
}

/// Creates, submits and (when it links products) approves a note: public afterwards.
async fn publish(app: &TestApp, c: &Cast, title: &str, products: &[Uuid]) -> String {
    let id = create(app, &c.author, title, products).await;
    let d = app
        .data_as(&c.author, &submit_q(), json!({ "id": id }))
        .await;
    if !products.is_empty() {
        assert_eq!(d["submitNote"]["review"]["status"], "PENDING");
        app.data_as(&c.curator, &review_q(), json!({ "id": id, "a": true }))
            .await;
    }
    id
}

async fn feed(app: &TestApp, vars: Value) -> Vec<String> {
    let d = app.data(FEED, vars).await;
    d["notes"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every page of a feed, `first` at a time.
async fn all_pages(app: &TestApp, mut vars: Value, first: i32) -> Vec<String> {
    let mut out = Vec::new();
    vars["first"] = json!(first);
    loop {
        let d = app.data(FEED, vars.clone()).await;
        let conn = &d["notes"];
        for e in conn["edges"].as_array().expect("edges") {
            out.push(e["node"]["title"].as_str().unwrap_or_default().to_owned());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        vars["after"] = conn["pageInfo"]["endCursor"].clone();
    }
}

async fn audit_count(app: &TestApp, action: &str) -> u64 {
    audit_entry::Entity::find()
        .filter(audit_entry::Column::Action.eq(action))
        .count(app.db())
        .await
        .expect("count")
}

/// Every note's public products are the same in its row (`published_product_ids`, what
/// pages read) and in `note_products` (what filters read), in display order; none without
/// a public version.
async fn links_agree(app: &TestApp) {
    use entity::note_product;
    use sea_orm::QueryOrder;
    let (notes, by_position) =
        crate::catalog::read_both_ways::<note::Entity>(app.db(), note::Column::Id).await;
    assert_eq!(by_position, notes, "a note read by column position");
    for n in notes {
        let rows: Vec<Uuid> = note_product::Entity::find()
            .filter(note_product::Column::NoteId.eq(n.id))
            .order_by_asc(note_product::Column::Position)
            .all(app.db())
            .await
            .expect("links")
            .into_iter()
            .map(|l| l.product_id)
            .collect();
        assert_eq!(
            n.published_product_ids.is_some(),
            n.published_title.is_some(),
            "{n:?}"
        );
        assert_eq!(pushhand::service::notes::public_products(&n), rows, "{n:?}");
    }
}

#[tokio::test]
async fn a_note_is_public_after_review_and_an_edit_keeps_the_approved_version() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 2).await;
    let p = products(&f);
    let c = cast(&app).await;

    // A draft: its author sees it, the public does not.
    let d = app
        .data_as(&c.author, &create_q(), json!({ "i": input("v1", &p[..1]) }))
        .await;
    let note = &d["createNote"];
    let id = note["id"].as_str().expect("id").to_owned();
    assert_eq!(note["review"]["status"], "DRAFT");
    assert_eq!(note["body"], "好用！\n<script>alert(1)</script>");
    assert_eq!(
        note["author"],
        json!({ "displayName": "author", "badge": "PUSH_HAND" })
    );
    let anon = app.gql(&read_q(), json!({ "id": id })).await;
    assert_eq!(error_code(&anon), Some("NOT_FOUND"), "{anon}");

    // Submitted, rejected (a reason is required), submitted again, approved.
    let d = app
        .data_as(&c.author, &submit_q(), json!({ "id": id }))
        .await;
    assert_eq!(d["submitNote"]["review"]["status"], "PENDING");
    assert_eq!(
        error_code(&app.gql(&read_q(), json!({ "id": id })).await),
        Some("NOT_FOUND")
    );
    let r = app
        .gql_as(&c.curator, &review_q(), json!({ "id": id, "a": false }))
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    let d = app
        .data_as(
            &c.curator,
            &review_q(),
            json!({ "id": id, "a": false, "r": "图片模糊" }),
        )
        .await;
    assert_eq!(d["reviewNote"]["review"]["status"], "REJECTED");
    assert_eq!(d["reviewNote"]["review"]["reason"], "图片模糊");
    app.data_as(&c.author, &submit_q(), json!({ "id": id }))
        .await;
    let d = app
        .data_as(&c.curator, &review_q(), json!({ "id": id, "a": true }))
        .await;
    assert_eq!(d["reviewNote"]["review"]["status"], "APPROVED");
    assert_eq!(audit_count(&app, "NOTE_REJECTED").await, 1);
    assert_eq!(audit_count(&app, "NOTE_APPROVED").await, 1);

    let public = app.data(&read_q(), json!({ "id": id })).await;
    assert_eq!(public["note"]["title"], "v1");
    assert_eq!(
        public["note"]["review"],
        Value::Null,
        "the public sees no review"
    );
    assert_eq!(
        public["note"]["products"],
        json!([{ "id": gid(Kind::Product, p[0]) }])
    );
    let first_published = public["note"]["publishedAt"].clone();
    assert_eq!(feed(&app, json!({})).await, ["v1"]);
    links_agree(&app).await;
    // Nothing new to review.
    let r = app
        .gql_as(&c.author, &submit_q(), json!({ "id": id }))
        .await;
    assert_eq!(error_code(&r), Some("NOTE_UNCHANGED"), "{r}");
    let r = app
        .gql_as(&c.curator, &review_q(), json!({ "id": id, "a": true }))
        .await;
    assert_eq!(error_code(&r), Some("NOTE_NOT_UNDER_REVIEW"), "{r}");

    // An edit: back to review, the approved version stays public meanwhile.
    app.clock.advance(Duration::hours(1));
    let d = app
        .data_as(
            &c.author,
            &update_q(),
            json!({ "id": id, "i": input("v2", &p) }),
        )
        .await;
    assert_eq!(
        d["updateNote"]["title"], "v1",
        "fields show the public version"
    );
    assert_eq!(d["updateNote"]["review"]["title"], "v2");
    assert_eq!(d["updateNote"]["review"]["status"], "DRAFT");
    assert_eq!(d["updateNote"]["review"]["public"], true);
    app.data_as(&c.author, &submit_q(), json!({ "id": id }))
        .await;
    let public = app.data(&read_q(), json!({ "id": id })).await;
    assert_eq!(public["note"]["title"], "v1");
    assert_eq!(public["note"]["products"].as_array().map(Vec::len), Some(1));
    assert_eq!(feed(&app, json!({})).await, ["v1"]);
    links_agree(&app).await;
    // Rejecting the edit leaves v1 public; approving the next one publishes v2.
    app.data_as(
        &c.curator,
        &review_q(),
        json!({ "id": id, "a": false, "r": "no" }),
    )
    .await;
    assert_eq!(feed(&app, json!({})).await, ["v1"]);
    app.data_as(&c.author, &submit_q(), json!({ "id": id }))
        .await;
    app.data_as(&c.curator, &review_q(), json!({ "id": id, "a": true }))
        .await;
    let public = app.data(&read_q(), json!({ "id": id })).await;
    assert_eq!(public["note"]["title"], "v2");
    assert_eq!(public["note"]["products"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        public["note"]["publishedAt"], first_published,
        "LATEST keeps its place"
    );
    links_agree(&app).await;

    // A note without products needs no review.
    let plain = create(&app, &c.author, "plain", &[]).await;
    let d = app
        .data_as(&c.author, &submit_q(), json!({ "id": plain }))
        .await;
    assert_eq!(d["submitNote"]["review"]["status"], "APPROVED");
    assert_eq!(feed(&app, json!({})).await, ["plain", "v2"]);

    // Deleted: gone for everyone, and likes of it are refused.
    let d = app
        .data_as(
            &c.author,
            "mutation($id: ID!) { deleteNote(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(d["deleteNote"], json!(id));
    assert_eq!(
        error_code(&app.gql(&read_q(), json!({ "id": id })).await),
        Some("NOT_FOUND")
    );
    let r = app.gql_as(&c.curator, LIKE, json!({ "id": id })).await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
    assert_eq!(feed(&app, json!({})).await, ["plain"]);
}

#[tokio::test]
async fn every_bad_field_of_a_note_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 10).await;
    let c = cast(&app).await;
    let mut ids: Vec<Value> = products(&f)
        .iter()
        .map(|p| json!(gid(Kind::Product, *p)))
        .collect();
    ids[1] = json!(gid(Kind::Product, f.unpublished));
    ids[2] = json!(gid(Kind::Brand, f.brands[0].id));
    ids[3] = ids[0].clone();
    let mut images: Vec<Value> = (0..10)
        .map(|i| json!(format!("https://img.example/{i}.jpg")))
        .collect();
    images[4] = json!("ftp://img.example/x.jpg");
    images[5] = json!("javascript:alert(1)");
    let r = app
        .gql_as(
            &c.author,
            &create_q(),
            json!({ "i": { "title": "  ", "body": "a\u{202E}b", "imageUrls": images, "productIds": ids } }),
        )
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    let fields: Vec<&str> = r["errors"][0]["extensions"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["field"].as_str().unwrap_or_default())
        .collect();
    for want in [
        "input.title",
        "input.body",
        "input.imageUrls",
        "input.imageUrls[4]",
        "input.imageUrls[5]",
        "input.productIds",
        "input.productIds[1]",
        "input.productIds[2]",
        "input.productIds[3]",
    ] {
        assert!(fields.contains(&want), "{want} missing from {fields:?}");
    }
    assert_eq!(fields.len(), 9, "{fields:?}");
    assert_eq!(
        note::Entity::find().count(app.db()).await.expect("count"),
        0
    );

    // A product delisted after the note was written is refused at submission.
    let p = products(&f);
    let id = create(&app, &c.author, "ok", &p[..1]).await;
    product::Entity::update_many()
        .col_expr(
            product::Column::Status,
            sea_orm::sea_query::Expr::value("UNPUBLISHED"),
        )
        .filter(product::Column::Id.eq(p[0]))
        .exec(app.db())
        .await
        .expect("delist");
    let r = app
        .gql_as(&c.author, &submit_q(), json!({ "id": id }))
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["field"], "input.productIds[0]");
}

#[tokio::test]
async fn only_push_hands_and_partners_write_and_only_curators_review() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 2).await;
    let p = products(&f);
    let c = cast(&app).await;
    let (partner, _) = app.user("partner@example.com", CliRole::Partner).await;
    let buyer_row = fixtures::member(&app, "buyer", Tier::Buyer, None).await;
    let buyer = token_of(&app, &buyer_row);

    for token in [&buyer, &c.curator] {
        let r = app
            .gql_as(token, &create_q(), json!({ "i": input("x", &[]) }))
            .await;
        assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    }
    let anon = app.gql(&create_q(), json!({ "i": input("x", &[]) })).await;
    assert_eq!(error_code(&anon), Some("UNAUTHENTICATED"));

    let id = create(&app, &c.author, "mine", &p[..1]).await;
    // Another writer can neither read, edit, submit nor delete it.
    for (q, vars) in [
        (read_q(), json!({ "id": id })),
        (update_q(), json!({ "id": id, "i": input("theirs", &[]) })),
        (submit_q(), json!({ "id": id })),
        (
            "mutation($id: ID!) { deleteNote(id: $id) }".to_owned(),
            json!({ "id": id }),
        ),
    ] {
        let r = app.gql_as(&partner, &q, vars).await;
        assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
    }
    let node = app
        .gql_as(
            &buyer,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&node), Some("NOT_FOUND"), "{node}");
    // Curators see drafts (with their review) and review; writers do not review.
    let d = app
        .data_as(&c.curator, &read_q(), json!({ "id": id }))
        .await;
    assert_eq!(d["note"]["review"]["status"], "DRAFT");
    app.data_as(&c.author, &submit_q(), json!({ "id": id }))
        .await;
    let r = app
        .gql_as(&partner, &review_q(), json!({ "id": id, "a": true }))
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    let q = app
        .data_as(
            &c.curator,
            "{ noteReviewQueue { edges { node { id review { status } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(q["noteReviewQueue"]["edges"][0]["node"]["id"], json!(id));
    let r = app
        .gql_as(
            &partner,
            "{ noteReviewQueue { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    // The author's own list has every status; a partner's badge says so.
    let mine = app
        .data_as(
            &c.author,
            "{ me { notes { edges { node { id review { status } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine["me"]["notes"]["edges"][0]["node"]["review"]["status"],
        "PENDING"
    );
    let pid = publish(
        &app,
        &Cast {
            author: partner.clone(),
            curator: c.curator.clone(),
        },
        "by partner",
        &[],
    )
    .await;
    let d = app.data(&read_q(), json!({ "id": pid })).await;
    assert_eq!(d["note"]["author"]["badge"], "PARTNER");
}

#[tokio::test]
async fn feeds_filter_by_category_product_and_author_and_paginate() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 4).await;
    let p = products(&f);
    let leaf = |id: &Uuid| f.published[id].category_id;
    let c = cast(&app).await;
    // Five notes, one an hour (n4 newest).
    let links: [Vec<Uuid>; 5] = [vec![p[0]], vec![p[1]], vec![p[2]], vec![], vec![p[0], p[2]]];
    for (i, l) in links.iter().enumerate() {
        publish(&app, &c, &format!("n{i}"), l).await;
        app.clock.advance(Duration::hours(1));
    }
    let all = feed(&app, json!({})).await;
    assert_eq!(all, ["n4", "n3", "n2", "n1", "n0"]);
    for first in [1, 2, 3] {
        assert_eq!(
            all_pages(&app, json!({}), first).await,
            all,
            "pages of {first}"
        );
        assert_eq!(all_pages(&app, json!({ "f": "HOT" }), first).await.len(), 5);
    }
    // By product, and by category: a top-level category covers its leaves.
    let by_product = feed(&app, json!({ "p": gid(Kind::Product, p[0]) })).await;
    assert_eq!(by_product, ["n4", "n0"]);
    let by_leaf = feed(&app, json!({ "c": gid(Kind::Category, leaf(&p[1])) })).await;
    let want_leaf: Vec<String> = (0..5)
        .rev()
        .filter(|i| links[*i].iter().any(|x| leaf(x) == leaf(&p[1])))
        .map(|i| format!("n{i}"))
        .collect();
    assert_eq!(by_leaf, want_leaf);
    for top in &f.tops {
        let want: Vec<String> = (0..5)
            .rev()
            .filter(|i| {
                links[*i].iter().any(|x| {
                    f.leaves
                        .iter()
                        .any(|l| l.id == leaf(x) && l.parent_id == Some(top.id))
                })
            })
            .map(|i| format!("n{i}"))
            .collect();
        let got = all_pages(&app, json!({ "c": gid(Kind::Category, top.id) }), 1).await;
        assert_eq!(got, want, "top {}", top.slug);
    }
    // Product.notes, the author's notes.
    let d = app
        .data(
            "query($id: ID!) { product(id: $id) { notes { edges { node { title author { id } } } } } }",
            json!({ "id": gid(Kind::Product, p[2]) }),
        )
        .await;
    let titles: Vec<&str> = d["product"]["notes"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["title"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(titles, ["n4", "n2"]);
    let author_id = d["product"]["notes"]["edges"][0]["node"]["author"]["id"].clone();
    assert_eq!(feed(&app, json!({ "a": author_id })).await, all);
    let d = app
        .data(
            "query($id: ID!) { note(id: $id) { author { notes(first: 2) { edges { node { title } } } } } }",
            json!({ "id": app.data(FEED, json!({})).await["notes"]["edges"][0]["node"]["id"] }),
        )
        .await;
    assert_eq!(
        d["note"]["author"]["notes"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // A cursor of one feed is refused by the other.
    let d = app.data(FEED, json!({ "first": 1 })).await;
    let cursor = d["notes"]["pageInfo"]["endCursor"].clone();
    let r = app.gql(FEED, json!({ "f": "HOT", "after": cursor })).await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
}

#[tokio::test]
async fn hot_ranks_by_likes_with_time_decay_ties_by_id() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let mut likers = Vec::new();
    for i in 0..3 {
        let m = fixtures::member(&app, &format!("liker{i}"), Tier::Buyer, None).await;
        likers.push(token_of(&app, &m));
    }
    // a: day 0, 3 likes; b: day 1, 1 like; c: day 2, no like; d: day 2, 1 like.
    let mut notes = Vec::new();
    for (title, day_gap, likes) in [("a", 0, 3), ("b", 24, 1), ("c", 24, 0), ("d", 0, 1)] {
        app.clock.advance(Duration::hours(day_gap));
        let id = publish(&app, &c, title, &[]).await;
        for token in &likers[..likes] {
            app.data_as(token, LIKE, json!({ "id": id })).await;
        }
        notes.push(id);
    }
    let d = app.data(FEED, json!({ "f": "HOT" })).await;
    let edges = d["notes"]["edges"].as_array().expect("edges").clone();
    let got: Vec<&str> = edges
        .iter()
        .map(|e| e["node"]["title"].as_str().unwrap_or_default())
        .collect();
    // The formula: log2(1 + likes) + hours since the epoch / 24, ties by the greater id.
    let mut want: Vec<(i64, Uuid, String)> = edges
        .iter()
        .map(|e| {
            let n = &e["node"];
            let at: chrono::DateTime<chrono::Utc> = n["publishedAt"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .expect("time");
            let likes = n["likeCount"].as_i64().unwrap_or_default() as i32;
            (
                hot_rank(likes, at),
                fixtures::uuid_of(n["id"].as_str().unwrap_or_default()),
                n["title"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    want.sort_by_key(|w| std::cmp::Reverse((w.0, w.1)));
    let want: Vec<&str> = want.iter().map(|w| w.2.as_str()).collect();
    assert_eq!(got, want);
    // d (2 days, 1 like) beats c (2 days, none); a's 3 likes a day older tie with b's 1,
    // and with c's none two days younger: (1 + 3) = 2 × (1 + 1) = 4 × (1 + 0).
    assert_eq!(got[0], "d");
    assert_eq!(&got[1..], ["c", "b", "a"], "ties broken by the greater id");
}

#[tokio::test]
async fn concurrent_likes_and_unlikes_count_exactly_once_per_member() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let id = publish(&app, &c, "hot", &[]).await;
    let mut tokens = Vec::new();
    for i in 0..24 {
        let m = fixtures::member(&app, &format!("fan{i}"), Tier::Buyer, None).await;
        tokens.push(token_of(&app, &m));
    }
    // Every member likes twice at once.
    let likes = join_all(
        tokens
            .iter()
            .chain(tokens.iter())
            .map(|t| app.gql_as(t, LIKE, json!({ "id": id }))),
    )
    .await;
    assert!(likes.iter().all(|r| r.get("errors").is_none()), "{likes:?}");
    let count = |app: &TestApp| {
        let id = id.clone();
        let db = app.db().clone();
        async move {
            let row = note::Entity::find_by_id(fixtures::uuid_of(&id))
                .one(&db)
                .await
                .expect("read")
                .expect("note");
            let rows = note_like::Entity::find()
                .filter(note_like::Column::NoteId.eq(row.id))
                .count(&db)
                .await
                .expect("count");
            (row.like_count, rows, row.hot_rank)
        }
    };
    let (n, rows, _) = count(&app).await;
    assert_eq!((n, rows), (24, 24));
    // Half unlike while the other half like again, all at once.
    let mixed = join_all(tokens.iter().enumerate().map(|(i, t)| {
        let q = if i % 2 == 0 { UNLIKE } else { LIKE };
        app.gql_as(t, q, json!({ "id": id }))
    }))
    .await;
    assert!(mixed.iter().all(|r| r.get("errors").is_none()), "{mixed:?}");
    let (n, rows, rank) = count(&app).await;
    assert_eq!((n, rows), (12, 12));
    let row = note::Entity::find_by_id(fixtures::uuid_of(&id))
        .one(app.db())
        .await
        .expect("read")
        .expect("note");
    assert_eq!(
        rank,
        hot_rank(12, row.first_published_at.expect("published"))
    );
    let d = app.data(&read_q(), json!({ "id": id })).await;
    assert_eq!(d["note"]["likeCount"], 12);
}

#[tokio::test]
async fn likes_of_frozen_members_do_not_count() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (_, admin) = app.user("admin@example.com", CliRole::Admin).await;
    let id = publish(&app, &c, "liked", &[]).await;
    let mut fans = Vec::new();
    for i in 0..3 {
        let m = fixtures::member(&app, &format!("fan{i}"), Tier::Buyer, None).await;
        app.data_as(&token_of(&app, &m), LIKE, json!({ "id": id }))
            .await;
        fans.push(m);
    }
    let likes =
        || async { app.data(&read_q(), json!({ "id": id })).await["note"]["likeCount"].clone() };
    assert_eq!(likes().await, 3);
    let actor = Actor::new(admin.id, None);
    let freeze = |reason: Option<&'static str>| {
        let (db, events, fan) = (app.db().clone(), app.state.events.clone(), fans[0].id);
        let now = app.clock_now();
        async move {
            members::set_frozen(&db, &events, &actor, fan, reason, now)
                .await
                .map_err(anyhow::Error::from)
                .expect("freeze");
        }
    };
    freeze(Some("刷赞")).await;
    assert_eq!(likes().await, 2, "a frozen member's like does not count");
    // Freezing again changes nothing; the member cannot like meanwhile.
    freeze(Some("again")).await;
    assert_eq!(likes().await, 2);
    let frozen = members::get(app.db(), fans[0].id)
        .await
        .map_err(anyhow::Error::from)
        .expect("member");
    let r = app
        .gql_as(&token_of(&app, &frozen), LIKE, json!({ "id": id }))
        .await;
    assert!(
        matches!(error_code(&r), Some("FORBIDDEN" | "UNAUTHENTICATED")),
        "{r}"
    );
    // Others' likes still count exactly; unfreezing counts the like again.
    app.data_as(&token_of(&app, &fans[1]), UNLIKE, json!({ "id": id }))
        .await;
    assert_eq!(likes().await, 1);
    freeze(None).await;
    assert_eq!(likes().await, 2);
}

#[tokio::test]
async fn the_nth_report_hides_a_note_once_and_a_curator_decides() {
    let app = TestApp::spawn_with(&["--note-report-threshold", "3"]).await;
    let f = fixtures::catalog(app.db(), 1).await;
    let c = cast(&app).await;
    let id = publish(&app, &c, "reported", &products(&f)).await;
    let mut tokens = Vec::new();
    for i in 0..8 {
        let m = fixtures::member(&app, &format!("r{i}"), Tier::Buyer, None).await;
        tokens.push(token_of(&app, &m));
    }
    // One member's flood counts once; the author cannot report.
    let flood = join_all((0..5).map(|_| app.gql_as(&tokens[0], REPORT, json!({ "id": id })))).await;
    let counted = flood
        .iter()
        .filter(|r| r["data"]["reportNote"] == "COUNTED")
        .count();
    assert_eq!(counted, 1, "{flood:?}");
    let r = app.gql_as(&c.author, REPORT, json!({ "id": id })).await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    // Seven more at once (threshold 3): exactly one report hides it.
    let outcomes = join_all(
        tokens[1..]
            .iter()
            .map(|t| app.gql_as(t, REPORT, json!({ "id": id }))),
    )
    .await;
    let hidden = outcomes
        .iter()
        .filter(|r| r["data"]["reportNote"] == "HIDDEN")
        .count();
    let counted = outcomes
        .iter()
        .filter(|r| r["data"]["reportNote"] == "COUNTED")
        .count();
    let not_found = outcomes
        .iter()
        .filter(|r| error_code(r) == Some("NOT_FOUND"))
        .count();
    assert_eq!((hidden, counted, not_found), (1, 1, 5), "{outcomes:?}");
    assert_eq!(
        error_code(&app.gql(&read_q(), json!({ "id": id })).await),
        Some("NOT_FOUND")
    );
    assert!(feed(&app, json!({})).await.is_empty());
    let d = app.data_as(&c.author, &read_q(), json!({ "id": id })).await;
    assert_eq!(d["note"]["review"]["reportCount"], 3);
    assert!(d["note"]["review"]["hiddenAt"].is_string());
    // The curator shows it again (its reports cleared)…
    let d = app
        .data_as(&c.curator, &review_q(), json!({ "id": id, "a": true }))
        .await;
    assert_eq!(d["reviewNote"]["review"]["reportCount"], 0);
    assert_eq!(feed(&app, json!({})).await, ["reported"]);
    // …and after new reports, takes it down.
    for t in &tokens[..3] {
        app.data_as(t, REPORT, json!({ "id": id })).await;
    }
    assert!(feed(&app, json!({})).await.is_empty());
    let d = app
        .data_as(
            &c.curator,
            &review_q(),
            json!({ "id": id, "a": false, "r": "违规" }),
        )
        .await;
    assert_eq!(d["reviewNote"]["review"]["status"], "REJECTED");
    assert_eq!(d["reviewNote"]["review"]["public"], false);
    assert_eq!(audit_count(&app, "NOTE_REJECTED").await, 1);
    assert!(feed(&app, json!({})).await.is_empty());
    // Taken down: no public products left in either place.
    links_agree(&app).await;
    let row = note::Entity::find_by_id(fixtures::uuid_of(&id))
        .one(app.db())
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.published_product_ids, None);
}

/// The public feed as a storefront reads it — notes with their authors and their products'
/// names, prices and images — costs the same statements for a page of 2 as of 12: the notes
/// with their authors, the products, the products' images (the links are in the notes' rows).
#[tokio::test]
async fn a_page_of_notes_costs_three_statements_at_any_size() {
    const PAGE: &str = "query($first: Int) { notes(feed: HOT, first: $first) { edges { node {
      id title author { displayName badge } products { id name minPrice images { url } } } } } }";
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    let f = fixtures::catalog(app.db(), 4).await;
    let p = products(&f);
    let c = cast(&app).await;
    for i in 0..12 {
        publish(&app, &c, &format!("n{i}"), &[p[i % 4], p[(i + 1) % 4]]).await;
    }
    let mut counts = Vec::new();
    for first in [2, 12] {
        let before = app.statements().await;
        let d = app.data(PAGE, json!({ "first": first })).await;
        let edges = d["notes"]["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), first);
        for e in edges {
            assert_eq!(e["node"]["author"]["displayName"], "author");
            assert_eq!(e["node"]["products"].as_array().map(Vec::len), Some(2));
        }
        counts.push(app.statements().await - before);
    }
    println!(
        "a page of 2 notes → {} statements, of 12 → {}",
        counts[0], counts[1]
    );
    assert_eq!(counts[0], counts[1], "statements grow with the page");
    assert!(counts[1] <= 3, "{counts:?}");
}

#[tokio::test]
async fn cached_anonymous_note_answers_follow_every_change() {
    let app = TestApp::spawn_with(&["--note-report-threshold", "1"]).await;
    let f = fixtures::catalog(app.db(), 1).await;
    let p = products(&f);
    let c = cast(&app).await;
    let fan = fixtures::member(&app, "fan", Tier::Buyer, None).await;
    let fan = token_of(&app, &fan);
    const PRODUCT_NOTES: &str =
        "query($id: ID!) { product(id: $id) { notes { edges { node { title likeCount } } } } }";
    let product_notes = || async {
        app.data(PRODUCT_NOTES, json!({ "id": gid(Kind::Product, p[0]) }))
            .await["product"]["notes"]["edges"]
            .clone()
    };
    let hits = || async {
        app.metric("pushhand_response_cache_total{outcome=\"hit\"}")
            .await
    };
    let first = publish(&app, &c, "first", &p).await;
    assert_eq!(feed(&app, json!({})).await, ["first"]);
    let before = hits().await;
    assert_eq!(feed(&app, json!({})).await, ["first"]);
    assert_eq!(product_notes().await.as_array().map(Vec::len), Some(1));
    assert_eq!(product_notes().await.as_array().map(Vec::len), Some(1));
    assert!(
        hits().await >= before + 2.0,
        "anonymous note reads are cached"
    );

    // A newly approved note shows at once.
    publish(&app, &c, "second", &p).await;
    assert_eq!(feed(&app, json!({})).await, ["second", "first"]);
    assert_eq!(product_notes().await.as_array().map(Vec::len), Some(2));
    // A like shows at once.
    app.data_as(&fan, LIKE, json!({ "id": first })).await;
    let edges = product_notes().await;
    assert_eq!(edges[1]["node"]["likeCount"], 1);
    // An approved edit shows at once.
    app.data_as(
        &c.author,
        &update_q(),
        json!({ "id": first, "i": input("first v2", &p) }),
    )
    .await;
    app.data_as(&c.author, &submit_q(), json!({ "id": first }))
        .await;
    assert_eq!(feed(&app, json!({})).await, ["second", "first"]);
    app.data_as(&c.curator, &review_q(), json!({ "id": first, "a": true }))
        .await;
    assert_eq!(feed(&app, json!({})).await, ["second", "first v2"]);
    // A note hidden by reports goes at once.
    app.data_as(&fan, REPORT, json!({ "id": first })).await;
    assert_eq!(feed(&app, json!({})).await, ["second"]);
    assert_eq!(product_notes().await.as_array().map(Vec::len), Some(1));
    let r = app
        .gql(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": first }),
        )
        .await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
}

/// Every plain field of a public note with its author and products (and theirs).
const PLAIN_NOTE: &str = "__typename id title body imageUrls likeCount publishedAt approvedAt
    createdAt shareCode again: title author { __typename id displayName badge }
    products { __typename id name minPrice rebateRate estimatedEarning brand { name }
    skus { id price stock } images { url alt } }";

/// A page of public notes is answered without async-graphql's per-field resolvers when the
/// selection is plain fields (its authors and products read for the page at once); inside
/// inline fragments the same selection goes through the resolvers and DataLoaders. Both
/// answer alike, for every viewer, with a product taken off sale left out, and with fields
/// only the resolvers know mixed in.
#[tokio::test]
async fn plain_and_resolved_note_pages_answer_alike() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 4).await;
    let p = products(&f);
    let c = cast(&app).await;
    let links: [Vec<Uuid>; 4] = [vec![p[0], p[1]], vec![], vec![p[2], p[0], p[3]], vec![p[1]]];
    for (i, l) in links.iter().enumerate() {
        publish(&app, &c, &format!("n{i}"), l).await;
        app.clock.advance(Duration::hours(1));
    }
    let (partner, _) = app.user("partner@example.com", CliRole::Partner).await;
    let note = create(&app, &partner, "by a partner", &[]).await;
    app.data_as(&partner, &submit_q(), json!({ "id": note }))
        .await;
    app.data_as(&c.author, LIKE, json!({ "id": note })).await;
    app.data_as(
        &c.curator,
        "mutation($p: ID!) { unpublishProduct(productId: $p, reason: \"recall\") { status } }",
        json!({ "p": gid(Kind::Product, p[0]) }),
    )
    .await;
    let (push_hand, _) = app.user("ph@example.com", CliRole::PushHand).await;
    for token in [None, Some(&push_hand), Some(&c.curator)] {
        for (feed, extra) in [
            ("HOT", ""),
            ("LATEST", "review { status }"),
            ("HOT", "stats { views }"),
        ] {
            let sel = format!("{PLAIN_NOTE} {extra}");
            let query = |node: &str, wrap: &dyn Fn(&str, &str) -> String| {
                let page = format!(
                    "__typename edges {{ {} }} nodes {{ {node} }} pageInfo {{ {} }}",
                    wrap("NoteEdge", &format!("__typename cursor node {{ {node} }}")),
                    wrap(
                        "PageInfo",
                        "__typename hasNextPage hasPreviousPage startCursor endCursor"
                    ),
                );
                format!(
                    "{{ notes(feed: {feed}, first: 4) {{ {} }} }}",
                    wrap("NoteConnection", &page)
                )
            };
            let plain = query(&sel, &|_, s| s.to_owned());
            let resolved = query(&format!("... on Note {{ {sel} }}"), &|t, s| {
                format!("... on {t} {{ {s} }}")
            });
            let (a, b) = match token {
                Some(t) => (
                    app.data_as(t, &plain, json!({})).await,
                    app.data_as(t, &resolved, json!({})).await,
                ),
                None => (
                    app.data(&plain, json!({})).await,
                    app.data(&resolved, json!({})).await,
                ),
            };
            assert_eq!(a, b, "viewer {token:?}, {feed} {extra:?}");
            let page = &a["notes"];
            assert_eq!(page["__typename"], json!("NoteConnection"));
            assert_eq!(page["edges"][0]["__typename"], json!("NoteEdge"));
            assert_eq!(page["pageInfo"]["hasNextPage"], json!(true));
            assert_eq!(page["pageInfo"]["endCursor"], page["edges"][3]["cursor"]);
            let nodes = page["nodes"].as_array().expect("nodes");
            assert_eq!(nodes.len(), 4);
            let titles: Vec<&str> = nodes.iter().filter_map(|n| n["title"].as_str()).collect();
            if feed == "HOT" {
                assert_eq!(
                    titles[0], "by a partner",
                    "the liked note first: {titles:?}"
                );
                assert_eq!(nodes[0]["author"]["badge"], json!("PARTNER"));
            } else {
                assert_eq!(titles, ["by a partner", "n3", "n2", "n1"]);
            }
            let n2 = nodes
                .iter()
                .find(|n| n["title"] == "n2")
                .expect("n2 on the page");
            let shown: Vec<&Value> = n2["products"]
                .as_array()
                .expect("products")
                .iter()
                .map(|p| &p["id"])
                .collect();
            // In display order; the one taken off sale left out, but for staff (who see
            // every product).
            let want: Vec<Value> = [p[2], p[0], p[3]]
                .iter()
                .filter(|id| **id != p[0] || token == Some(&c.curator))
                .map(|id| json!(gid(Kind::Product, *id)))
                .collect();
            assert_eq!(shown, want.iter().collect::<Vec<_>>());
            assert_eq!(n2["again"], n2["title"]);
            assert_eq!(n2["products"][0]["__typename"], json!("Product"));
            assert_eq!(n2["author"]["__typename"], json!("NoteAuthor"));
            assert_eq!(n2["products"][0]["rebateRate"].is_null(), token.is_none());
        }
    }
}
