//! The staff's work lists (#31): `withdrawals`, `partnerApplications`, `members`, `orders`
//! and `curationQueue` — who may read them, their filters, `totalCount`, keyset pages
//! without gaps or repeats, and a statement count that does not grow with the page.

use std::collections::HashSet;

use chrono::Duration;
use entity::{Money, member, withdrawal};
use pushhand::service::members::CliRole;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures;
use crate::helpers::{TestApp, error_code};

const MEMBERS: &str =
    "query($search: String, $role: Role, $frozen: Boolean, $first: Int, $after: String) {
  members(search: $search, role: $role, frozen: $frozen, first: $first, after: $after) {
    totalCount edges { cursor node { id displayName email phone inviteCode frozen roles } }
    pageInfo { hasNextPage endCursor } } }";

const APPLICATIONS: &str = "query($status: PartnerApplicationStatus, $first: Int, $after: String) {
  partnerApplications(status: $status, first: $first, after: $after) {
    totalCount edges { node { id partnerApplication } } pageInfo { hasNextPage endCursor } } }";

const WITHDRAWALS: &str =
    "query($status: WithdrawalStatus, $member: ID, $first: Int, $after: String) {
  withdrawals(status: $status, memberId: $member, first: $first, after: $after) {
    totalCount edges { node { id status amount member { id displayName } } }
    pageInfo { hasNextPage endCursor } } }";

const ORDERS: &str =
    "query($first: Int) { orders(first: $first) { totalCount edges { node { id } } } }";

const QUEUE: &str = "query($status: ProductStatus, $first: Int, $after: String) {
  curationQueue(status: $status, first: $first, after: $after) {
    totalCount edges { node { id status } } pageInfo { hasNextPage endCursor } } }";

/// A member row straight into the table (no password hashing: dozens per test).
fn member_row(i: usize, tier: member::Tier) -> member::ActiveModel {
    let now = fixtures::base_time() + Duration::seconds(i as i64 / 3);
    member::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(Some(format!("person{i:02}@example.com"))),
        phone: Set(Some(format!("+86138000000{i:02}"))),
        password_hash: Set("not-a-hash".into()),
        display_name: Set(format!("名字{i:02}")),
        tier: Set(tier),
        staff_role: Set(None),
        invite_code: Set((tier != member::Tier::Buyer).then(|| format!("INV{i:03}"))),
        partner_link_code: Set(None),
        partner_application: Set(None),
        upline_id: Set(None),
        frozen_at: Set(None),
        frozen_reason: Set(None),
        token_version: Set(0),
        created_at: Set(now),
        merchant_id: Set(None),
    }
}

/// Every node of a list, page by page (`first` a page), checking that pages neither repeat
/// nor skip: each page starts after the previous one's end, and `totalCount` holds on all.
async fn every_page(
    app: &TestApp,
    token: &str,
    query: &str,
    field: &str,
    vars: Value,
    first: i32,
) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    let mut total = None;
    loop {
        let mut v = vars.clone();
        v["first"] = json!(first);
        v["after"] = after.clone();
        let data = app.data_as(token, query, v).await;
        let conn = &data[field];
        let t = conn["totalCount"].as_u64().expect("totalCount");
        assert_eq!(*total.get_or_insert(t), t, "totalCount moves between pages");
        let edges = conn["edges"].as_array().expect("edges");
        assert!(edges.len() <= first as usize);
        nodes.extend(edges.iter().map(|e| e["node"].clone()));
        if conn["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    let ids: HashSet<&str> = nodes
        .iter()
        .map(|n| n["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), nodes.len(), "a row repeats across pages");
    assert_eq!(Some(nodes.len() as u64), total, "pages miss rows");
    nodes
}

#[tokio::test]
async fn work_lists_are_forbidden_to_every_other_role() {
    let app = TestApp::spawn().await;
    let (merchant, _) = app.user("m@example.com", CliRole::Merchant).await;
    let (curator, _) = app.user("c@example.com", CliRole::Curator).await;
    let (pusher, _) = app.user("p@example.com", CliRole::PushHand).await;
    let admin_only = [
        ("withdrawals", WITHDRAWALS),
        ("partnerApplications", APPLICATIONS),
        ("members", MEMBERS),
        ("orders", ORDERS),
    ];
    for (name, query) in admin_only {
        for token in [&merchant, &curator, &pusher] {
            let resp = app.gql_as(token, query, json!({})).await;
            assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{name}: {resp}");
        }
        let resp = app.gql(query, json!({})).await;
        assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"), "{name}: {resp}");
    }
    for token in [&merchant, &pusher] {
        let resp = app.gql_as(token, QUEUE, json!({})).await;
        assert_eq!(
            error_code(&resp),
            Some("FORBIDDEN"),
            "curationQueue: {resp}"
        );
    }
    app.data_as(&curator, QUEUE, json!({})).await;
}

#[tokio::test]
async fn members_page_without_gaps_and_filter_by_search_role_and_frozen() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let mut rows = Vec::new();
    for i in 0..24 {
        let tier = match i % 4 {
            0 => member::Tier::Buyer,
            1 | 2 => member::Tier::PushHand,
            _ => member::Tier::Partner,
        };
        let mut row = member_row(i, tier);
        if i % 5 == 0 {
            row.frozen_at = Set(Some(fixtures::base_time()));
            row.frozen_reason = Set(Some("test".into()));
        }
        rows.push(row);
    }
    member::Entity::insert_many(rows)
        .exec_without_returning(app.db())
        .await
        .expect("members");

    // Everyone (the admin too), in pages of 7, newest first.
    let all = every_page(&app, &admin, MEMBERS, "members", json!({}), 7).await;
    assert_eq!(all.len(), 25);
    let all_at_once = app.data_as(&admin, MEMBERS, json!({ "first": 100 })).await;
    let ids = |nodes: &[Value]| -> Vec<String> {
        nodes
            .iter()
            .map(|n| n["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let one_page: Vec<Value> = all_at_once["members"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert_eq!(ids(&all), ids(&one_page), "pages keep the one order");

    let count = |vars: Value| {
        let app = &app;
        let admin = &admin;
        async move {
            let data = app.data_as(admin, MEMBERS, vars).await;
            let n = data["members"]["totalCount"].as_u64().expect("count");
            let edges = data["members"]["edges"].as_array().expect("edges").clone();
            (n, edges)
        }
    };
    // Search: email, phone, display name and invite code, case-insensitively.
    let (n, edges) = count(json!({ "search": "PERSON07@" })).await;
    assert_eq!(n, 1);
    assert_eq!(edges[0]["node"]["email"], json!("person07@example.com"));
    let (n, edges) = count(json!({ "search": "0000011" })).await;
    assert_eq!(n, 1);
    assert_eq!(edges[0]["node"]["phone"], json!("+8613800000011"));
    let (n, _) = count(json!({ "search": "名字1" })).await;
    assert_eq!(n, 10, "名字10 … 名字19");
    let (n, edges) = count(json!({ "search": "inv013" })).await;
    assert_eq!(n, 1);
    assert_eq!(edges[0]["node"]["inviteCode"], json!("INV013"));
    let (n, _) = count(json!({ "search": "100%_" })).await;
    assert_eq!(n, 0, "LIKE wildcards are literal");
    let (n, _) = count(json!({ "search": "   " })).await;
    assert_eq!(n, 25, "blank searches nothing");
    let resp = app
        .gql_as(&admin, MEMBERS, json!({ "search": "x".repeat(101) }))
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    assert_eq!(resp["errors"][0]["extensions"]["field"], json!("search"));

    // Roles: push-hands include partners; staff roles.
    let (n, _) = count(json!({ "role": "BUYER" })).await;
    assert_eq!(n, 7, "six and the admin");
    let (n, _) = count(json!({ "role": "PUSH_HAND" })).await;
    assert_eq!(n, 18);
    let (n, edges) = count(json!({ "role": "PARTNER" })).await;
    assert_eq!(n, 6);
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["roles"] == json!(["PUSH_HAND", "PARTNER"]))
    );
    let (n, _) = count(json!({ "role": "ADMIN" })).await;
    assert_eq!(n, 1);

    // Frozen, and conditions together.
    let (n, edges) = count(json!({ "frozen": true })).await;
    assert_eq!(n, 5);
    assert!(edges.iter().all(|e| e["node"]["frozen"] == json!(true)));
    let (n, _) = count(json!({ "frozen": false })).await;
    assert_eq!(n, 20);
    let (n, _) = count(json!({ "frozen": true, "role": "BUYER" })).await;
    assert_eq!(n, 2, "0 and 20");
    let every = every_page(
        &app,
        &admin,
        MEMBERS,
        "members",
        json!({ "role": "PUSH_HAND", "frozen": false }),
        4,
    )
    .await;
    assert_eq!(every.len(), 15, "18 less 5, 10 and 15");
}

#[tokio::test]
async fn partner_applications_list_the_pending_ones_by_default() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let mut rows = Vec::new();
    for i in 0..9 {
        let mut row = member_row(i, member::Tier::PushHand);
        row.partner_application = Set(Some(match i % 3 {
            0 => member::PartnerApplication::Pending,
            1 => member::PartnerApplication::Approved,
            _ => member::PartnerApplication::Rejected,
        }));
        rows.push(row);
    }
    rows.push(member_row(9, member::Tier::PushHand));
    member::Entity::insert_many(rows)
        .exec_without_returning(app.db())
        .await
        .expect("members");
    let pending = every_page(
        &app,
        &admin,
        APPLICATIONS,
        "partnerApplications",
        json!({}),
        2,
    )
    .await;
    assert_eq!(pending.len(), 3);
    assert!(
        pending
            .iter()
            .all(|n| n["partnerApplication"] == json!("PENDING"))
    );
    let rejected = every_page(
        &app,
        &admin,
        APPLICATIONS,
        "partnerApplications",
        json!({ "status": "REJECTED" }),
        2,
    )
    .await;
    assert_eq!(rejected.len(), 3);
}

/// Inserts `n` withdrawals of `member`, cycling through the statuses.
async fn withdrawals(app: &TestApp, member: Uuid, n: usize) {
    let statuses = [
        withdrawal::Status::Pending,
        withdrawal::Status::Processing,
        withdrawal::Status::Paid,
        withdrawal::Status::Rejected,
    ];
    let rows: Vec<withdrawal::ActiveModel> = (0..n)
        .map(|i| withdrawal::ActiveModel {
            id: Set(Uuid::now_v7()),
            member_id: Set(member),
            amount: Set(Money::from_fen(10_000 + i as i64)),
            fee: Set(Money::ZERO),
            idempotency_key: Set(format!("{member}-{i}")),
            status: Set(statuses[i % statuses.len()]),
            // Ties in pairs: the id breaks them.
            created_at: Set(fixtures::base_time() + Duration::seconds(i as i64 / 2)),
            reviewed_at: Set(None),
            reviewer_id: Set(None),
            payout_channel: Set(Some("MANUAL".into())),
            payout_account: Set(None),
            payout_holder: Set(None),
            payout_bank: Set(None),
            payout_reference: Set(None),
            payout_error: Set(None),
            payout_client_params: Set(None),
            finished_at: Set(None),
        })
        .collect();
    withdrawal::Entity::insert_many(rows)
        .exec_without_returning(app.db())
        .await
        .expect("withdrawals");
}

#[tokio::test]
async fn withdrawals_list_every_members_by_status_with_their_member() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (a_token, a) = app.user("a@example.com", CliRole::PushHand).await;
    let (_, b) = app.user("b@example.com", CliRole::PushHand).await;
    withdrawals(&app, a.id, 10).await;
    withdrawals(&app, b.id, 7).await;

    let all = every_page(&app, &admin, WITHDRAWALS, "withdrawals", json!({}), 4).await;
    assert_eq!(all.len(), 17);
    let pending = every_page(
        &app,
        &admin,
        WITHDRAWALS,
        "withdrawals",
        json!({ "status": "PENDING" }),
        2,
    )
    .await;
    assert_eq!(pending.len(), 3 + 2);
    assert!(pending.iter().all(|w| w["status"] == json!("PENDING")));
    let of_b = every_page(
        &app,
        &admin,
        WITHDRAWALS,
        "withdrawals",
        json!({ "member": fixtures::gid(pushhand::graphql::ids::Kind::Member, b.id) }),
        3,
    )
    .await;
    assert_eq!(of_b.len(), 7);
    assert!(
        of_b.iter()
            .all(|w| w["member"]["displayName"] == json!(b.display_name))
    );

    // The member's own list counts too.
    let data = app
        .data_as(
            &a_token,
            "{ me { withdrawals(first: 3) { totalCount edges { node { id member { id } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["me"]["withdrawals"]["totalCount"], json!(10));
    assert_eq!(
        data["me"]["withdrawals"]["edges"].as_array().map(Vec::len),
        Some(3)
    );
}

#[tokio::test]
async fn orders_and_the_curation_queue_count_their_rows() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    fixtures::catalog(app.db(), 5).await;
    let data = app.data_as(&admin, ORDERS, json!({ "first": 1 })).await;
    assert_eq!(data["orders"]["totalCount"], json!(0));
    let queue = every_page(&app, &admin, QUEUE, "curationQueue", json!({}), 1).await;
    assert_eq!(queue.len(), 1, "the fixture's one draft");
    let published = every_page(
        &app,
        &admin,
        QUEUE,
        "curationQueue",
        json!({ "status": "PUBLISHED" }),
        2,
    )
    .await;
    assert_eq!(published.len(), 5);
}

/// Statements one request costs.
async fn statements(app: &TestApp, token: &str, query: &str, vars: Value) -> u64 {
    let before = app.statements().await;
    app.data_as(token, query, vars).await;
    app.statements().await - before
}

#[tokio::test]
async fn a_work_list_page_costs_the_same_statements_at_any_size() {
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let rows: Vec<member::ActiveModel> = (0..60)
        .map(|i| member_row(i, member::Tier::PushHand))
        .collect();
    let ids: Vec<Uuid> = rows
        .iter()
        .map(|r| match &r.id {
            Set(id) => *id,
            _ => Uuid::nil(),
        })
        .collect();
    member::Entity::insert_many(rows)
        .exec_without_returning(app.db())
        .await
        .expect("members");
    for id in &ids {
        withdrawals(&app, *id, 1).await;
    }
    // The admin's row is remembered after its first request.
    app.data_as(&admin, "{ me { id } }", json!({})).await;
    for (name, query) in [("members", MEMBERS), ("withdrawals", WITHDRAWALS)] {
        let five = statements(&app, &admin, query, json!({ "first": 5 })).await;
        let fifty = statements(&app, &admin, query, json!({ "first": 50 })).await;
        println!("{name}: first 5 → {five} statements, first 50 → {fifty}");
        assert_eq!(five, fifty, "{name}: statements grow with the page");
        // The page, its count, and the withdrawals' members (one batch).
        assert!(fifty <= 3, "{name}: {fifty} statements");
    }
    // Without totalCount, no count.
    let counted = statements(
        &app,
        &admin,
        "{ members(first: 50) { totalCount edges { node { id } } } }",
        json!({}),
    )
    .await;
    let plain = statements(
        &app,
        &admin,
        "{ members(first: 50) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(plain, counted - 1, "the count runs only when asked for");
}
