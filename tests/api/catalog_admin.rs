//! Catalog management (#31): admins build the two-level category tree, merchants and brand
//! ownership; every bad field is named at once; writes are audited; a change shows at once
//! on every instance, through the rows each keeps in memory and the cached answers.

use std::time::{Duration, Instant};

use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use serde_json::{Value, json};

use crate::curation::{PUBLISH, SUBMIT, pass_all, staff, submission, submit};
use crate::fixtures::{self, gid};
use crate::helpers::{TestApp, error_code, without_redis};

const CREATE: &str = "mutation($i: CreateCategoryInput!) { createCategory(input: $i) {
  id slug nameZh nameEn parent { id } } }";
const UPDATE: &str =
    "mutation($i: UpdateCategoryInput!) { updateCategory(input: $i) { id slug nameZh nameEn } }";
const MOVE: &str =
    "mutation($i: MoveCategoryInput!) { moveCategory(input: $i) { id parent { id } } }";
const ARCHIVE: &str = "mutation($id: ID!) { archiveCategory(id: $id) { id } }";
const TREE: &str = "{ categories { id slug nameZh children { id slug nameZh } } }";
const LOG: &str = "query($action: AuditAction) { auditLog(action: $action) { edges { node { action targetId arguments } } } }";

async fn create(app: &TestApp, admin: &str, input: Value) -> Value {
    app.gql_as(admin, CREATE, json!({ "i": input })).await
}

async fn create_ok(app: &TestApp, admin: &str, input: Value) -> String {
    let resp = create(app, admin, input).await;
    assert!(resp["errors"].is_null(), "{resp}");
    resp["data"]["createCategory"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn top(slug: &str) -> Value {
    json!({ "slug": slug, "nameZh": format!("中{slug}"), "nameEn": format!("En {slug}") })
}

fn leaf(slug: &str, parent: &str) -> Value {
    json!({ "slug": slug, "nameZh": format!("中{slug}"), "nameEn": format!("En {slug}"), "parentId": parent })
}

fn fields(resp: &Value) -> Vec<String> {
    let mut f: Vec<String> = resp["errors"][0]["extensions"]["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    f.sort();
    f
}

#[tokio::test]
async fn admins_build_the_tree_and_no_one_else_may() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (merchant, _) = app.user("m@example.com", CliRole::Merchant).await;
    let (curator, _) = app.user("c@example.com", CliRole::Curator).await;

    let home = create_ok(&app, &admin, top("home")).await;
    let kitchen = create_ok(&app, &admin, top("kitchen")).await;
    let bedding = create_ok(&app, &admin, leaf("bedding", &home)).await;
    let knives = create_ok(&app, &admin, leaf("knives", &kitchen)).await;
    let tree = app.data(TREE, json!({})).await;
    assert_eq!(tree["categories"][0]["id"], json!(home));
    assert_eq!(
        tree["categories"][0]["children"][0]["slug"],
        json!("bedding")
    );

    let data = app
        .data_as(
            &admin,
            UPDATE,
            json!({ "i": { "id": bedding, "nameZh": "床品", "slug": "bed" } }),
        )
        .await;
    assert_eq!(data["updateCategory"]["nameZh"], json!("床品"));
    assert_eq!(data["updateCategory"]["slug"], json!("bed"));
    assert_eq!(data["updateCategory"]["nameEn"], json!("En bedding"));
    let data = app
        .data_as(
            &admin,
            MOVE,
            json!({ "i": { "id": knives, "parentId": home, "position": 3 } }),
        )
        .await;
    assert_eq!(data["moveCategory"]["parent"]["id"], json!(home));
    app.data_as(&admin, ARCHIVE, json!({ "id": knives })).await;
    let tree = app.data(TREE, json!({})).await;
    let children = tree["categories"][0]["children"]
        .as_array()
        .expect("children");
    assert_eq!(children.len(), 1, "the archived leaf is gone: {tree}");
    assert_eq!(children[0]["nameZh"], json!("床品"), "renamed at once");

    // Audited, each with its target.
    for action in [
        "CATEGORY_CREATED",
        "CATEGORY_UPDATED",
        "CATEGORY_MOVED",
        "CATEGORY_ARCHIVED",
    ] {
        let log = app.data_as(&admin, LOG, json!({ "action": action })).await;
        let entries = log["auditLog"]["edges"].as_array().expect("edges");
        assert!(!entries.is_empty(), "{action}");
    }
    let log = app
        .data_as(&admin, LOG, json!({ "action": "CATEGORY_UPDATED" }))
        .await;
    let entry = &log["auditLog"]["edges"][0]["node"];
    assert_eq!(entry["targetId"], json!(bedding));
    assert_eq!(entry["arguments"]["nameZh"]["previous"], json!("中bedding"));

    // Nobody else.
    for token in [&merchant, &curator] {
        for (q, v) in [
            (CREATE, json!({ "i": top("x") })),
            (UPDATE, json!({ "i": { "id": home, "nameZh": "x" } })),
            (MOVE, json!({ "i": { "id": bedding, "position": 0 } })),
            (ARCHIVE, json!({ "id": bedding })),
            ("mutation { createMerchant(name: \"x\") { id } }", json!({})),
        ] {
            let resp = app.gql_as(token, q, v).await;
            assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{q}: {resp}");
        }
    }
}

#[tokio::test]
async fn every_bad_field_is_named_at_once_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let home = create_ok(&app, &admin, top("home")).await;
    let bedding = create_ok(&app, &admin, leaf("bedding", &home)).await;
    let resp = create(
        &app,
        &admin,
        json!({ "slug": "Not A Slug", "nameZh": "  ", "nameEn": "ok\u{202E}", "position": -1,
                "parentId": bedding }),
    )
    .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    assert_eq!(
        fields(&resp),
        [
            "input.nameEn",
            "input.nameZh",
            "input.parentId",
            "input.position",
            "input.slug"
        ]
    );
    let resp = app
        .gql_as(
            &admin,
            UPDATE,
            json!({ "i": { "id": bedding, "slug": "-x", "nameZh": "" } }),
        )
        .await;
    assert_eq!(fields(&resp), ["input.nameZh", "input.slug"]);
    let resp = app
        .gql_as(&admin, UPDATE, json!({ "i": { "id": bedding } }))
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    let resp = create(&app, &admin, top("home")).await;
    assert_eq!(error_code(&resp), Some("CATEGORY_SLUG_TAKEN"), "{resp}");
    let resp = app
        .gql_as(
            &admin,
            UPDATE,
            json!({ "i": { "id": bedding, "slug": "home" } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("CATEGORY_SLUG_TAKEN"), "{resp}");
    let tree = app.data(TREE, json!({})).await;
    assert_eq!(tree["categories"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        tree["categories"][0]["children"][0]["slug"],
        json!("bedding")
    );
    let log = app
        .data_as(&admin, LOG, json!({ "action": "CATEGORY_UPDATED" }))
        .await;
    assert_eq!(
        log["auditLog"]["edges"],
        json!([]),
        "refusals leave no entry"
    );
}

#[tokio::test]
async fn the_tree_keeps_two_levels_and_published_products_keep_their_category() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 4).await;
    let top0 = gid(Kind::Category, f.tops[0].id);
    let top1 = gid(Kind::Category, f.tops[1].id);
    let leaf0 = gid(Kind::Category, f.leaves[0].id);

    let resp = app
        .gql_as(
            &admin,
            MOVE,
            json!({ "i": { "id": top0, "parentId": top1, "position": 0 } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("CATEGORY_HAS_CHILDREN"), "{resp}");
    let resp = app
        .gql_as(
            &admin,
            MOVE,
            json!({ "i": { "id": top1, "parentId": leaf0, "position": 0 } }),
        )
        .await;
    assert_eq!(
        resp["errors"][0]["extensions"]["field"],
        json!("input.parentId")
    );
    let resp = app
        .gql_as(
            &admin,
            MOVE,
            json!({ "i": { "id": top0, "parentId": top0, "position": 0 } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    let resp = app
        .gql_as(&admin, MOVE, json!({ "i": { "id": leaf0, "position": 0 } }))
        .await;
    assert_eq!(error_code(&resp), Some("CATEGORY_HAS_PRODUCTS"), "{resp}");

    // Published products hold their leaf and its parent.
    let resp = app.gql_as(&admin, ARCHIVE, json!({ "id": leaf0 })).await;
    assert_eq!(
        error_code(&resp),
        Some("CATEGORY_HAS_PUBLISHED_PRODUCTS"),
        "{resp}"
    );
    let resp = app.gql_as(&admin, ARCHIVE, json!({ "id": top0 })).await;
    assert_eq!(error_code(&resp), Some("CATEGORY_HAS_CHILDREN"), "{resp}");

    // A leaf moves to another parent; the listing follows.
    let data = app
        .data_as(
            &admin,
            MOVE,
            json!({ "i": { "id": leaf0, "parentId": top1, "position": 9 } }),
        )
        .await;
    assert_eq!(data["moveCategory"]["parent"]["id"], json!(top1));
    let listed = app
        .data(
            "query($c: ID!) { products(first: 50, filter: { categoryId: $c }) { edges { node { category { parent { id } } } } } }",
            json!({ "c": top1 }),
        )
        .await;
    let edges = listed["products"]["edges"].as_array().expect("edges");
    assert_eq!(
        edges.len(),
        3,
        "leaf-0 (products 0) and leaves 2, 3 (2 and 3)"
    );
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["category"]["parent"]["id"] == json!(top1))
    );
}

#[tokio::test]
async fn an_archived_category_takes_no_submission_and_no_publication() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let s = staff(&app, "Acme").await;
    let home = create_ok(&app, &admin, top("home")).await;
    let bedding = create_ok(&app, &admin, leaf("bedding", &home)).await;
    let towels = create_ok(&app, &admin, leaf("towels", &home)).await;
    let in_curation = submit(&app, &s.merchant, &s.brand, &towels, "毛巾").await;
    pass_all(&app, &s.curator, &in_curation).await;

    app.data_as(&admin, ARCHIVE, json!({ "id": towels })).await;
    let again = app.data_as(&admin, ARCHIVE, json!({ "id": towels })).await;
    assert_eq!(again["archiveCategory"]["id"], json!(towels), "idempotent");
    let resp = app
        .gql_as(&s.curator, PUBLISH, json!({ "p": in_curation }))
        .await;
    assert_eq!(error_code(&resp), Some("CATEGORY_ARCHIVED"), "{resp}");
    let resp = app
        .gql_as(
            &s.merchant,
            SUBMIT,
            json!({ "i": submission(&s.brand, &towels, "又一条毛巾") }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("CATEGORY_ARCHIVED"), "{resp}");
    let resp = app
        .gql_as(
            &admin,
            UPDATE,
            json!({ "i": { "id": towels, "nameZh": "x" } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("CATEGORY_ARCHIVED"), "{resp}");
    let resp = create(&app, &admin, leaf("under-archived", &towels)).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");

    // The other leaf still works; archive it, then the top.
    let p = submit(&app, &s.merchant, &s.brand, &bedding, "被子").await;
    pass_all(&app, &s.curator, &p).await;
    app.data_as(&s.curator, PUBLISH, json!({ "p": p })).await;
    let resp = app.gql_as(&admin, ARCHIVE, json!({ "id": home })).await;
    assert_eq!(error_code(&resp), Some("CATEGORY_HAS_CHILDREN"), "{resp}");
    app.data_as(
        &s.curator,
        "mutation($p: ID!) { unpublishProduct(productId: $p, reason: \"moving\") { status } }",
        json!({ "p": p }),
    )
    .await;
    app.data_as(&admin, ARCHIVE, json!({ "id": bedding })).await;
    app.data_as(&admin, ARCHIVE, json!({ "id": home })).await;
    assert_eq!(app.data(TREE, json!({})).await["categories"], json!([]));
}

#[tokio::test]
async fn admins_create_merchants_give_them_brands_and_users() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, pusher) = app.user("p@example.com", CliRole::PushHand).await;
    let (_, curator) = app.user("c@example.com", CliRole::Curator).await;
    let (other_merchant, _) = app.user("m@example.com", CliRole::Merchant).await;

    let data = app
        .data_as(
            &admin,
            "mutation { createMerchant(name: \" 远方工厂 \") { id name } }",
            json!({}),
        )
        .await;
    assert_eq!(data["createMerchant"]["name"], json!("远方工厂"));
    let merchant = data["createMerchant"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let resp = app
        .gql_as(
            &admin,
            "mutation { createMerchant(name: \"\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(resp["errors"][0]["extensions"]["field"], json!("name"));

    // Brands: admins name the merchant; a merchant only its own.
    const BRAND: &str = "mutation($n: String!, $m: ID) { createBrand(name: $n, merchantId: $m) { id name merchant { id name } } }";
    let data = app
        .data_as(&admin, BRAND, json!({ "n": "远方", "m": merchant }))
        .await;
    assert_eq!(data["createBrand"]["merchant"]["id"], json!(merchant));
    let brand = data["createBrand"]["id"].as_str().expect("id").to_owned();
    let resp = app.gql_as(&admin, BRAND, json!({ "n": "无主" })).await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp}");
    let resp = app
        .gql_as(&other_merchant, BRAND, json!({ "n": "抢", "m": merchant }))
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp}");

    // Users.
    const LINK: &str = "mutation($u: ID!, $m: ID!) { linkMerchantUser(memberId: $u, merchantId: $m) { roles merchant { id } } }";
    let data = app
        .data_as(
            &admin,
            LINK,
            json!({ "u": gid(Kind::Member, pusher.id), "m": merchant }),
        )
        .await;
    assert_eq!(data["linkMerchantUser"]["merchant"]["id"], json!(merchant));
    assert!(
        data["linkMerchantUser"]["roles"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("MERCHANT")))
    );
    let resp = app
        .gql_as(
            &admin,
            LINK,
            json!({ "u": gid(Kind::Member, curator.id), "m": merchant }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("MEMBER_IS_STAFF"), "{resp}");
    // The linked member acts for the merchant from its next request.
    let linked = app.login("p@example.com", crate::helpers::PASSWORD).await;
    let data = app
        .data_as(
            &linked,
            "{ myProducts { totalCount } me { merchant { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["me"]["merchant"]["name"], json!("远方工厂"));
    assert_eq!(data["myProducts"]["totalCount"], json!(0));

    // A brand moves while it has no products, and not after.
    const ASSIGN: &str = "mutation($b: ID!, $m: ID!) { assignBrand(brandId: $b, merchantId: $m) { id merchant { id } } }";
    let other_id = app
        .data_as(&other_merchant, "{ me { merchant { id } } }", json!({}))
        .await["me"]["merchant"]["id"]
        .clone();
    let data = app
        .data_as(&admin, ASSIGN, json!({ "b": brand, "m": other_id }))
        .await;
    assert_eq!(data["assignBrand"]["merchant"]["id"], other_id);
    let home = create_ok(&app, &admin, top("home")).await;
    let bedding = create_ok(&app, &admin, leaf("bedding", &home)).await;
    submit(&app, &other_merchant, &brand, &bedding, "被子").await;
    let resp = app
        .gql_as(&admin, ASSIGN, json!({ "b": brand, "m": merchant }))
        .await;
    assert_eq!(error_code(&resp), Some("BRAND_HAS_PRODUCTS"), "{resp}");

    for action in [
        "MERCHANT_CREATED",
        "MERCHANT_USER_LINKED",
        "BRAND_ASSIGNED",
        "BRAND_CREATED",
    ] {
        let log = app.data_as(&admin, LOG, json!({ "action": action })).await;
        assert_eq!(
            log["auditLog"]["edges"].as_array().map(Vec::len),
            Some(1),
            "{action}: {log}"
        );
    }
}

const CARD: &str = "{ products(first: 1) { edges { node { id brand { name merchant { name } } category { nameZh parent { nameZh } } } } } }";

/// Renamed rows show at once on the instance that wrote them: through the rows it keeps in
/// memory and its cached answers (the response cache is on).
#[tokio::test]
async fn a_renamed_category_shows_at_once_in_cached_answers() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 1).await;
    let before = app.data(CARD, json!({})).await;
    assert_eq!(app.data(CARD, json!({})).await, before, "served again");
    let leaf = &before["products"]["edges"][0]["node"]["category"];
    assert_eq!(leaf["nameZh"], json!("叶00"));
    app.data_as(
        &admin,
        UPDATE,
        json!({ "i": { "id": gid(Kind::Category, f.tops[0].id), "nameZh": "新顶级" } }),
    )
    .await;
    app.data_as(
        &admin,
        UPDATE,
        json!({ "i": { "id": gid(Kind::Category, f.leaves[0].id), "nameZh": "新叶" } }),
    )
    .await;
    let after = app.data(CARD, json!({})).await;
    let leaf = &after["products"]["edges"][0]["node"]["category"];
    assert_eq!(leaf["nameZh"], json!("新叶"));
    assert_eq!(leaf["parent"]["nameZh"], json!("新顶级"));
}

/// Two instances on one database and one Redis: B keeps the category in memory and has
/// cached answers; a rename on A shows on B. Needs Redis (skipped without).
#[tokio::test]
async fn a_second_instance_sees_a_renamed_category() {
    if without_redis() {
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_sharing(&a, &[]).await;
    for app in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !app.state.events.connected() {
            assert!(Instant::now() < deadline, "event bus never connected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (admin, _) = a.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(a.db(), 1).await;
    let leaf_of = |v: &Value| v["products"]["edges"][0]["node"]["category"]["nameZh"].clone();
    // B reads (and keeps) the rows, anonymous and as a signed-in member (no cache).
    let (member, _) = b.user("p@example.com", CliRole::PushHand).await;
    assert_eq!(leaf_of(&b.data(CARD, json!({})).await), json!("叶00"));
    assert_eq!(
        leaf_of(&b.data_as(&member, CARD, json!({})).await),
        json!("叶00")
    );

    a.data_as(
        &admin,
        UPDATE,
        json!({ "i": { "id": gid(Kind::Category, f.leaves[0].id), "nameZh": "改名" } }),
    )
    .await;
    let sent = Instant::now();
    loop {
        let anonymous = leaf_of(&b.data(CARD, json!({})).await);
        let signed_in = leaf_of(&b.data_as(&member, CARD, json!({})).await);
        if anonymous == json!("改名") && signed_in == json!("改名") {
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "B still shows {anonymous} / {signed_in}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("the rename reached B after {:?}", sent.elapsed());
    // And stays: nothing puts the old row back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(leaf_of(&b.data(CARD, json!({})).await), json!("改名"));
}

/// Concurrent moves never build a third level: a leaf moved under a top while that top is
/// moved under another — one of the two is refused.
#[tokio::test]
async fn concurrent_moves_keep_the_tree_two_levels_deep() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    for round in 0..5 {
        let x = create_ok(&app, &admin, top(&format!("x{round}"))).await;
        let t = create_ok(&app, &admin, top(&format!("t{round}"))).await;
        let u = create_ok(&app, &admin, top(&format!("u{round}"))).await;
        let (r1, r2) = tokio::join!(
            app.gql_as(
                &admin,
                MOVE,
                json!({ "i": { "id": x, "parentId": t, "position": 0 } })
            ),
            app.gql_as(
                &admin,
                MOVE,
                json!({ "i": { "id": t, "parentId": u, "position": 0 } })
            ),
        );
        let ok = [&r1, &r2].iter().filter(|r| r["errors"].is_null()).count();
        assert_eq!(ok, 1, "exactly one move wins: {r1} {r2}");
        let tree = app
            .data(
                "{ categories { id children { id children { id } } } }",
                json!({}),
            )
            .await;
        for top in tree["categories"].as_array().expect("tops") {
            for child in top["children"].as_array().expect("children") {
                assert_eq!(child["children"], json!([]), "a third level: {tree}");
            }
        }
    }
}
