//! Members' own answers from the response cache (`me` with its earnings, balances and team):
//! after every kind of change a member's views can show — earnings booked, scheduled,
//! settled, reversed; withdrawals; team members joining, leaving, lapsing, being promoted or
//! buying; cart writes and a checkout from the cart; the month turning; freezing — the
//! cached answer of every member equals the same document computed afresh, and a revoked
//! token is never served a stored answer.

use chrono::Duration;
use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::earnings::{order, pay, product};
use crate::fixtures::gid;
use crate::helpers::{PASSWORD, TestApp, error_code, without_redis};

/// Everything a member's own answers may hold (three team levels, as aliases).
const OWN: &str = "{ me { id displayName roles inviteCode frozen
  earningsSummary { pending available reserved withdrawn lifetime thisMonth }
  earnings(first: 20) { edges { cursor node { id kind amount status level settleAfter settledAt
    explanation { rule summary } } } pageInfo { hasNextPage endCursor } }
  teamStats { totalMembers newThisMonth salesThisMonth levels { level members newThisMonth salesThisMonth } }
  l1: team(level: 1, first: 10) { edges { node { id displayName roles joinedAt } } }
  l2: team(level: 2, first: 10) { edges { node { id roles } } }
  l3: team(level: 3, first: 10) { nodes { id roles } pageInfo { hasNextPage } } } }";

/// The same document plus a field own answers never hold: always computed afresh.
fn fresh_doc() -> String {
    OWN.replacen(
        "{ me {",
        "{ me { withdrawals(first: 1) { pageInfo { hasNextPage } }",
        1,
    )
}

async fn hits(app: &TestApp) -> f64 {
    app.metric("pushhand_response_cache_total{outcome=\"hit\"}")
        .await
}

/// Asks every member its own answer (filling the cache where it is empty).
async fn prime(app: &TestApp, members: &[(&str, &str)]) {
    for (_, token) in members {
        let got = app.gql_as(token, OWN, json!({})).await;
        assert!(got.get("errors").is_none(), "{got}");
    }
}

/// The cached answer of each member equals the fresh one; returns how many were hits.
async fn agree(app: &TestApp, step: &str, members: &[(&str, &str)]) -> f64 {
    let before = hits(app).await;
    for (who, token) in members {
        let cached = app.gql_as(token, OWN, json!({})).await;
        let mut fresh = app.gql_as(token, &fresh_doc(), json!({})).await;
        if let Some(me) = fresh["data"]["me"].as_object_mut() {
            me.remove("withdrawals");
        }
        assert_eq!(cached, fresh, "{who}'s answer after {step}");
    }
    hits(app).await - before
}

/// Each step changes what some members see; before it every member's answer is cached, and
/// after it every member's answer must be the fresh one.
#[tokio::test]
async fn own_answers_follow_every_change_they_show() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (a, _) = app.user("a@example.com", CliRole::PushHand).await;
    let (p, p_row) = app.user("p@example.com", CliRole::Partner).await;
    let code = |v: &Value| {
        v["data"]["register"]["member"]["inviteCode"]
            .as_str()
            .unwrap_or_else(|| panic!("registered: {v}"))
            .to_owned()
    };
    let token = |v: &Value| {
        v["data"]["register"]["token"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    let me_code = app.data_as(&a, "{ me { inviteCode } }", json!({})).await;
    let a_code = me_code["me"]["inviteCode"].as_str().expect("code");
    // A ← B ← C ← D: a chain four deep, so that D is in A's third level.
    let b_reg = app.register("b@example.com", Some(a_code), None).await;
    let c_reg = app
        .register("c@example.com", Some(&code(&b_reg)), None)
        .await;
    let d_reg = app
        .register("d@example.com", Some(&code(&c_reg)), None)
        .await;
    let (b, c, d) = (token(&b_reg), token(&c_reg), token(&d_reg));
    let c_id = c_reg["data"]["register"]["member"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let d_id = d_reg["data"]["register"]["member"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut members = vec![
        ("A", a.as_str()),
        ("B", &b),
        ("C", &c),
        ("D", &d),
        ("P", &p),
    ];

    prime(&app, &members).await;
    assert_eq!(
        agree(&app, "nothing", &members).await,
        5.0,
        "unchanged answers are hits"
    );

    // A fifth member joins under D: the teams of D, C and B grow.
    let e_reg = app
        .register("e@example.com", Some(&code(&d_reg)), None)
        .await;
    let e = token(&e_reg);
    let e_id = e_reg["data"]["register"]["member"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    agree(&app, "a registration", &members).await;
    members.push(("E", &e));
    prime(&app, &members).await;

    // D buys through C's share link: earnings for D and its uplines, team sales above D.
    let (product_id, sku) = product(&app, 100, false).await;
    let link = app
        .data_as(
            &c,
            "mutation($p: ID!) { createShareLink(productId: $p) { code } }",
            json!({ "p": gid(Kind::Product, product_id) }),
        )
        .await;
    let share = link["createShareLink"]["code"].as_str().expect("code");
    let placed = order(&app, &d, sku, 2, Some(share)).await;
    let first = placed["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("placed: {placed}"))
        .to_owned();
    prime(&app, &members).await;
    pay(&app, &admin, &first, "own-1", "398.00").await;
    agree(&app, "a payment", &members).await;

    // Shipped and received: the earnings now show when they settle.
    app.data_as(
        &admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": first }),
    )
    .await;
    prime(&app, &members).await;
    app.data_as(
        &d,
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
        json!({ "o": first }),
    )
    .await;
    agree(&app, "a completion", &members).await;

    // A second order, paid, then half refunded: reversals and team sales taken back.
    let placed = order(&app, &d, sku, 2, None).await;
    let second = placed["data"]["placeOrder"].clone();
    let second_id = second["id"].as_str().expect("id").to_owned();
    pay(&app, &admin, &second_id, "own-2", "398.00").await;
    prime(&app, &members).await;
    app.data_as(
        &admin,
        "mutation($l: ID!, $q: Int) { refundOrderLine(orderLineId: $l, quantity: $q) { status } }",
        json!({ "l": second["lines"][0]["id"], "q": 1 }),
    )
    .await;
    agree(&app, "a refund", &members).await;

    // D's cart: added through C's link, changed, ordered from the cart and paid, emptied.
    prime(&app, &members).await;
    let added = app
        .data_as(
            &d,
            "mutation($s: ID!, $c: String) { addToCart(skuId: $s, quantity: 3, shareCode: $c) { lines { id } } }",
            json!({ "s": gid(Kind::Sku, sku), "c": share }),
        )
        .await;
    let line = added["addToCart"]["lines"][0]["id"].clone();
    agree(&app, "an add to the cart", &members).await;
    app.data_as(
        &d,
        "mutation($l: ID!) { updateCartLine(lineId: $l, quantity: 1) { subtotal } }",
        json!({ "l": line }),
    )
    .await;
    agree(&app, "a cart line changed", &members).await;
    let placed = app
        .data_as(
            &d,
            "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }",
            json!({ "i": { "cartLineIds": [line] } }),
        )
        .await;
    let from_cart = placed["placeOrder"]["id"].as_str().expect("id").to_owned();
    prime(&app, &members).await;
    let paid = pay(&app, &admin, &from_cart, "own-cart", "199.00").await;
    assert!(paid.get("errors").is_none(), "{paid:#}");
    agree(&app, "a cart checkout paid", &members).await;
    let added = app
        .data_as(
            &d,
            "mutation($s: ID!) { addToCart(skuId: $s, quantity: 1) { lines { id } } }",
            json!({ "s": gid(Kind::Sku, sku) }),
        )
        .await;
    prime(&app, &members).await;
    app.data_as(
        &d,
        "mutation($l: [ID!]!) { removeCartLines(lineIds: $l) { subtotal } }",
        json!({ "l": [added["addToCart"]["lines"][0]["id"]] }),
    )
    .await;
    agree(&app, "cart lines removed", &members).await;

    // Settlement after the return window, then a withdrawal requested and approved.
    prime(&app, &members).await;
    let later = (app.clock_now() + Duration::days(8)).to_rfc3339();
    let settled = app
        .data_as(
            &admin,
            "mutation($t: DateTime) { runSettlement(asOf: $t) { settled } }",
            json!({ "t": later }),
        )
        .await;
    assert!(settled["runSettlement"]["settled"].as_i64() > Some(0));
    agree(&app, "settlement", &members).await;
    let withdrawal = app
        .data_as(
            &d,
            "mutation { requestWithdrawal(amount: \"20.00\", idempotencyKey: \"w1\") { id } }",
            json!({}),
        )
        .await;
    agree(&app, "a withdrawal request", &members).await;
    app.data_as(
        &admin,
        "mutation($w: ID!) { reviewWithdrawal(id: $w, approve: true) { status } }",
        json!({ "w": withdrawal["requestWithdrawal"]["id"] }),
    )
    .await;
    agree(&app, "a withdrawal approval", &members).await;

    // C becomes a partner: its roles show in B's and A's teams.
    app.data_as(&c, "mutation { applyForPartner { id } }", json!({}))
        .await;
    prime(&app, &members).await;
    app.data_as(
        &admin,
        "mutation($m: ID!) { approvePartner(memberId: $m) { roles } }",
        json!({ "m": c_id }),
    )
    .await;
    agree(&app, "a partner approval", &members).await;

    // D (with E below it) is rebound under P: C, B and A lose them, P gains them.
    app.data_as(
        &admin,
        "mutation($m: ID!, $u: ID!) { rebindMember(memberId: $m, uplineId: $u) { id } }",
        json!({ "m": d_id, "u": gid(Kind::Member, p_row.id) }),
    )
    .await;
    agree(&app, "a rebinding", &members).await;

    // A buyer follows P's partner link; the binding lapses 40 days on, in another month.
    let p_link = app
        .data_as(&p, "{ me { partnerLinkCode } }", json!({}))
        .await;
    let f_reg = app
        .register(
            "f@example.com",
            None,
            p_link["me"]["partnerLinkCode"].as_str(),
        )
        .await;
    let f = token(&f_reg);
    agree(&app, "a partner-link registration", &members).await;
    members.push(("F", &f));

    // F, a buyer, completes a membership purchase: promoted, its new role shows in P's team.
    entity::product::Entity::update_many()
        .col_expr(
            entity::product::Column::MembershipActivity,
            sea_orm::sea_query::Expr::value(true),
        )
        .filter(entity::product::Column::Id.eq(product_id))
        .exec(app.db())
        .await
        .expect("the product becomes a membership product");
    let placed = order(&app, &f, sku, 1, None).await;
    let third = placed["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("placed: {placed}"))
        .to_owned();
    pay(&app, &admin, &third, "own-3", "199.00").await;
    app.data_as(
        &admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": third }),
    )
    .await;
    prime(&app, &members).await;
    let received = app
        .data_as(
            &f,
            "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
            json!({ "o": third }),
        )
        .await;
    assert_eq!(received["confirmReceipt"]["status"], json!("COMPLETED"));
    agree(&app, "a promotion", &members).await;

    prime(&app, &members).await;
    app.clock.advance(Duration::days(400));
    agree(&app, "the months turning", &members).await;
    let ended = app
        .data_as(&admin, "mutation { expireBindings }", json!({}))
        .await;
    assert!(ended["expireBindings"].as_i64() > Some(0), "{ended}");
    agree(&app, "a lapsed binding", &members).await;

    // Freezing E revokes its token: the stored answer is not served to it, nor after the
    // unfreeze (a new sign-in is needed).
    prime(&app, &members).await;
    app.data_as(
        &admin,
        "mutation($m: ID!) { freezeMember(memberId: $m, reason: \"audit\") { frozen } }",
        json!({ "m": e_id }),
    )
    .await;
    let refused = app.gql_as(&e, OWN, json!({})).await;
    assert_eq!(error_code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    members.retain(|(who, _)| *who != "E");
    agree(&app, "a freeze", &members).await;
    app.data_as(
        &admin,
        "mutation($m: ID!) { unfreezeMember(memberId: $m) { frozen } }",
        json!({ "m": e_id }),
    )
    .await;
    let refused = app.gql_as(&e, OWN, json!({})).await;
    assert_eq!(error_code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    let e_again = app.login("e@example.com", PASSWORD).await;
    members.push(("E", &e_again));
    agree(&app, "an unfreeze", &members).await;

    // With nothing changing, every answer is a hit again.
    assert_eq!(agree(&app, "nothing", &members).await, members.len() as f64);
}

/// A member's own answer is its own: another member asking the same document gets its own,
/// and a changed password's old token is refused rather than served.
#[tokio::test]
async fn own_answers_belong_to_their_member_and_token() {
    let app = TestApp::spawn().await;
    let (a, _) = app.user("a@example.com", CliRole::PushHand).await;
    let (b, _) = app.user("b@example.com", CliRole::PushHand).await;
    let id_of = |v: &Value| v["data"]["me"]["id"].clone();
    let a1 = app.gql_as(&a, OWN, json!({})).await;
    let b1 = app.gql_as(&b, OWN, json!({})).await;
    assert_ne!(id_of(&a1), id_of(&b1));
    assert_eq!(app.gql_as(&a, OWN, json!({})).await, a1);
    assert_eq!(app.gql_as(&b, OWN, json!({})).await, b1);

    let changed = app
        .data_as(
            &a,
            "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) { token } }",
            json!({ "o": PASSWORD, "n": "another-password-2" }),
        )
        .await;
    let refused = app.gql_as(&a, OWN, json!({})).await;
    assert_eq!(error_code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    let new_token = changed["changePassword"]["token"].as_str().expect("token");
    assert_eq!(
        id_of(&app.gql_as(new_token, OWN, json!({})).await),
        id_of(&a1)
    );
}

/// With Redis, a member's own answer stored by one instance is served by another, and a
/// change committed on either drops it on both.
#[tokio::test]
async fn own_answers_are_shared_and_dropped_across_instances() {
    if without_redis() {
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_sharing(&a, &[]).await;
    let (admin, _) = a.user("admin@example.com", CliRole::Admin).await;
    let (pusher, _) = a.user("pusher@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&a, 10, false).await;

    let filled = a.gql_as(&pusher, OWN, json!({})).await;
    let before = hits(&b).await;
    assert_eq!(b.gql_as(&pusher, OWN, json!({})).await, filled);
    assert_eq!(hits(&b).await - before, 1.0, "B served A's answer");

    // A payment on B: A's next answer shows the earning.
    let placed = order(&b, &pusher, sku, 1, None).await;
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("placed: {placed}"))
        .to_owned();
    pay(&b, &admin, &id, "shared-1", "199.00").await;
    let after = a.gql_as(&pusher, OWN, json!({})).await;
    assert_eq!(
        after["data"]["me"]["earningsSummary"]["pending"],
        json!("29.85"),
        "{after}"
    );
    assert_eq!(after, b.gql_as(&pusher, OWN, json!({})).await);
}

/// A freeze whose bump of the member's version Redis refuses is refused itself: committed,
/// it would leave the revoked token reading the member's cached answers (served on the
/// token's signature alone) until they expire.
#[tokio::test]
async fn a_revocation_redis_does_not_take_changes_nothing() {
    if without_redis() {
        return;
    }
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (token, m) = app.user("m@example.com", CliRole::PushHand).await;
    let cached = app.data_as(&token, OWN, json!({})).await;
    let before = hits(&app).await;
    assert_eq!(app.data_as(&token, OWN, json!({})).await, cached);
    assert_eq!(hits(&app).await - before, 1.0, "the answer is cached");

    // The member's version key now holds a list: Redis refuses to bump it (WRONGTYPE).
    let namespace = pushhand::db::namespace(app.db()).await.expect("namespace");
    let key = format!("pushhand:member:version:{namespace}:{}", m.id);
    let client =
        redis::Client::open(crate::helpers::redis_url().expect("Redis URL")).expect("Redis URL");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let _: () = redis::pipe()
        .cmd("DEL")
        .arg(&key)
        .ignore()
        .cmd("RPUSH")
        .arg(&key)
        .arg("not a version")
        .ignore()
        .query_async(&mut redis)
        .await
        .expect("break the key");
    let freeze = "mutation($m: ID!) { freezeMember(memberId: $m, reason: \"fraud\") { frozen } }";
    let refused = app
        .gql_as(&admin, freeze, json!({ "m": gid(Kind::Member, m.id) }))
        .await;
    assert_eq!(error_code(&refused), Some("UNAVAILABLE"), "{refused}");
    let row = entity::member::Entity::find_by_id(m.id)
        .one(app.db())
        .await
        .expect("read")
        .expect("member");
    assert!(row.frozen_at.is_none(), "the refused freeze committed");
    assert_eq!(row.token_version, m.token_version);

    // Redis takes bumps again: the freeze goes through and the token reads nothing more.
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("repair the key");
    app.data_as(&admin, freeze, json!({ "m": gid(Kind::Member, m.id) }))
        .await;
    let revoked = app.gql_as(&token, OWN, json!({})).await;
    assert_eq!(error_code(&revoked), Some("UNAUTHENTICATED"), "{revoked}");
}
