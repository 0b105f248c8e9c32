//! The audit log: every staff action leaves one entry — actor, action, target, the arguments
//! that matter, time, client address — written in the action's transaction; a refused action
//! leaves none, an action whose entry cannot be written does not happen, nobody can change or
//! remove an entry, and admins alone read it.

use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::{Value, json};

use crate::curation::{PUBLISH, STAGES, create_brand, score, setup, stage, submit};
use crate::fixtures::gid;
use crate::helpers::{TestApp, error_code};

const LOG: &str =
    "query($actor: ID, $action: AuditAction, $target: ID, $first: Int, $after: String) {
  auditLog(first: $first, after: $after, actorId: $actor, action: $action, targetId: $target) {
    edges { node { id actorId action targetId arguments clientAddress at } }
    pageInfo { hasNextPage endCursor } } }";

/// The entries `vars` selects, newest first.
async fn entries(app: &TestApp, admin: &str, vars: Value) -> Vec<Value> {
    let data = app.data_as(admin, LOG, vars).await;
    data["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect()
}

#[tokio::test]
async fn curation_and_catalog_actions_are_audited_with_their_actor() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (merchant, m) = app.user("m@example.com", CliRole::Merchant).await;
    let (curator, c) = app.user("c@example.com", CliRole::Curator).await;
    let (_, leaf) = setup(&app).await;
    let brand = create_brand(&app, &merchant, "Acme").await;
    let product = submit(&app, &merchant, &brand, &leaf, "好水壶").await;
    for s in STAGES {
        let resp = stage(&app, &curator, &product, s, "PASS").await;
        assert!(resp["errors"].is_null(), "{resp}");
    }
    let resp = score(&app, &curator, &product, [5, 4, 4, 3]).await;
    assert!(resp["errors"].is_null(), "{resp}");
    app.data_as(&curator, PUBLISH, json!({ "p": product }))
        .await;
    app.data_as(
        &curator,
        "mutation($p: ID!) { unpublishProduct(productId: $p, reason: \"recall\") { status } }",
        json!({ "p": product }),
    )
    .await;
    // A second product fails its first stage, is resubmitted, and is refused publishing.
    let other = submit(&app, &merchant, &brand, &leaf, "坏水壶").await;
    let failed = stage(&app, &curator, &other, STAGES[0], "FAIL").await;
    assert!(failed["errors"].is_null(), "{failed}");
    app.data_as(
        &merchant,
        "mutation($p: ID!) { resubmitProduct(productId: $p) { status } }",
        json!({ "p": other }),
    )
    .await;
    let refused = app.gql_as(&curator, PUBLISH, json!({ "p": other })).await;
    assert_eq!(error_code(&refused), Some("CURATION_INCOMPLETE"));

    // The product's trail, newest first, each entry by the curator from this client.
    let trail = entries(&app, &admin, json!({ "target": product })).await;
    let mut expected = vec!["PRODUCT_UNPUBLISHED", "PRODUCT_PUBLISHED", "PRODUCT_SCORED"];
    expected.extend(["CURATION_STAGE_RECORDED"; 5]);
    expected.push("PRODUCT_SUBMITTED");
    assert_eq!(actions(&trail), expected);
    let curator_id = gid(Kind::Member, c.id);
    let merchant_id = gid(Kind::Member, m.id);
    for e in &trail[..8] {
        assert_eq!(e["actorId"], json!(curator_id), "{e}");
    }
    assert_eq!(trail[8]["actorId"], json!(merchant_id));
    for e in &trail {
        assert_eq!(e["targetId"], json!(product));
        assert_eq!(e["clientAddress"], json!("127.0.0.1"));
    }
    assert_eq!(trail[0]["arguments"], json!({ "reason": "recall" }));
    assert_eq!(trail[2]["arguments"]["essentialNeed"], json!(5));
    assert_eq!(trail[7]["arguments"]["stage"], json!(STAGES[0]));
    assert_eq!(trail[7]["arguments"]["result"], json!("PASS"));
    assert_eq!(trail[8]["arguments"]["name"], json!("好水壶"));

    // The refused publish left nothing; the failure and the resubmission did.
    let other_trail = entries(&app, &admin, json!({ "target": other })).await;
    assert_eq!(
        actions(&other_trail),
        [
            "PRODUCT_RESUBMITTED",
            "CURATION_STAGE_RECORDED",
            "PRODUCT_SUBMITTED"
        ]
    );
    assert_eq!(other_trail[1]["arguments"]["result"], json!("FAIL"));

    // Narrowed by actor and by action.
    let by_merchant = entries(&app, &admin, json!({ "actor": merchant_id })).await;
    assert_eq!(
        actions(&by_merchant),
        [
            "PRODUCT_RESUBMITTED",
            "PRODUCT_SUBMITTED",
            "PRODUCT_SUBMITTED",
            "BRAND_CREATED"
        ]
    );
    assert_eq!(by_merchant[3]["targetId"], json!(brand));
    assert_eq!(by_merchant[3]["arguments"], json!({ "name": "Acme" }));
    let published = entries(&app, &admin, json!({ "action": "PRODUCT_PUBLISHED" })).await;
    assert_eq!(published.len(), 1);

    // Pages: newest first, no entry twice.
    let first = app
        .data_as(&admin, LOG, json!({ "first": 5, "actor": curator_id }))
        .await;
    assert_eq!(first["auditLog"]["pageInfo"]["hasNextPage"], json!(true));
    let after = first["auditLog"]["pageInfo"]["endCursor"].clone();
    let rest = entries(
        &app,
        &admin,
        json!({ "first": 50, "actor": curator_id, "after": after }),
    )
    .await;
    let by_curator = entries(&app, &admin, json!({ "actor": curator_id })).await;
    assert_eq!(by_curator.len(), 9, "8 on the product, 1 on the other");
    assert_eq!(rest.len(), 4);
    assert_eq!(rest[..], by_curator[5..]);
}

#[tokio::test]
async fn member_actions_are_audited_and_an_unfreeze_keeps_the_freeze() {
    let app = TestApp::spawn().await;
    let (admin, a) = app.user("admin@example.com", CliRole::Admin).await;
    let (p_token, p) = app.user("p@example.com", CliRole::PushHand).await;
    let (q_token, q) = app.user("q@example.com", CliRole::PushHand).await;
    let (_, r) = app.user("r@example.com", CliRole::PushHand).await;
    let apply = "mutation { applyForPartner { id } }";
    app.data_as(&p_token, apply, json!({})).await;
    app.data_as(&q_token, apply, json!({})).await;
    let review = |name: &str| format!("mutation($m: ID!) {{ {name}(memberId: $m) {{ id }} }}");
    let (p_id, q_id, r_id) = (
        gid(Kind::Member, p.id),
        gid(Kind::Member, q.id),
        gid(Kind::Member, r.id),
    );
    app.data_as(&admin, &review("approvePartner"), json!({ "m": p_id }))
        .await;
    app.data_as(&admin, &review("rejectPartner"), json!({ "m": q_id }))
        .await;
    // A second review of a decided application is refused and leaves nothing.
    let again = app
        .gql_as(&admin, &review("approvePartner"), json!({ "m": p_id }))
        .await;
    assert_eq!(error_code(&again), Some("NO_PENDING_APPLICATION"));

    app.data_as(
        &admin,
        "mutation($m: ID!) { freezeMember(memberId: $m, reason: \"fraud check\") { id } }",
        json!({ "m": q_id }),
    )
    .await;
    app.data_as(&admin, &review("unfreezeMember"), json!({ "m": q_id }))
        .await;

    // b joins under p, and is rebound under r.
    let b = app
        .register("b@example.com", p.invite_code.as_deref(), None)
        .await;
    let b_id = b["data"]["register"]["member"]["id"]
        .as_str()
        .expect("b")
        .to_owned();
    app.data_as(
        &admin,
        "mutation($m: ID!, $u: ID!) { rebindMember(memberId: $m, uplineId: $u) { id } }",
        json!({ "m": b_id, "u": r_id }),
    )
    .await;
    app.data_as(&admin, "mutation { expireBindings }", json!({}))
        .await;

    let admin_id = gid(Kind::Member, a.id);
    let all = entries(&app, &admin, json!({ "actor": admin_id })).await;
    assert_eq!(
        actions(&all),
        [
            "BINDINGS_EXPIRED",
            "MEMBER_REBOUND",
            "MEMBER_UNFROZEN",
            "MEMBER_FROZEN",
            "PARTNER_REJECTED",
            "PARTNER_APPROVED"
        ]
    );
    assert_eq!(all[0]["targetId"], Value::Null);
    assert_eq!(all[0]["arguments"], json!({ "ended": 0 }));
    assert_eq!(all[1]["targetId"], json!(b_id));
    assert_eq!(all[1]["arguments"]["uplineId"], json!(r.id.to_string()));
    assert_eq!(
        all[1]["arguments"]["previousUplineId"],
        json!(p.id.to_string())
    );
    // The unfreeze cleared the member's columns; the log keeps what it lifted.
    let q_trail = entries(&app, &admin, json!({ "target": q_id })).await;
    assert_eq!(
        actions(&q_trail),
        ["MEMBER_UNFROZEN", "MEMBER_FROZEN", "PARTNER_REJECTED"]
    );
    assert_eq!(q_trail[1]["arguments"], json!({ "reason": "fraud check" }));
    assert_eq!(
        q_trail[0]["arguments"]["frozenReason"],
        json!("fraud check")
    );
    assert!(q_trail[0]["arguments"]["frozenAt"].is_string());
    let member = app
        .data_as(
            &admin,
            "query($m: ID!) { node(id: $m) { ... on Member { frozen frozenReason } } }",
            json!({ "m": q_id }),
        )
        .await;
    assert_eq!(member["node"]["frozen"], json!(false));
    assert_eq!(member["node"]["frozenReason"], Value::Null);

    // Admins alone read the log.
    let by_member = app.gql_as(&p_token, LOG, json!({})).await;
    assert_eq!(error_code(&by_member), Some("FORBIDDEN"));
    let anonymous = app.gql(LOG, json!({})).await;
    assert_eq!(error_code(&anonymous), Some("UNAUTHENTICATED"));
}

/// SQL that makes every insert into the audit log fail, as a full disk or a lost permission
/// would.
fn refuse_audit_inserts(backend: DbBackend) -> Vec<&'static str> {
    match backend {
        DbBackend::Postgres => vec![
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ],
        _ => vec![
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END",
        ],
    }
}

#[tokio::test]
async fn an_action_whose_entry_cannot_be_written_does_not_happen() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (member, m) = app.user("m@example.com", CliRole::PushHand).await;
    let db = app.db();
    for sql in refuse_audit_inserts(db.get_database_backend()) {
        db.execute_unprepared(sql)
            .await
            .expect("install the refusal");
    }
    let freeze = app
        .gql_as(
            &admin,
            "mutation($m: ID!) { freezeMember(memberId: $m, reason: \"test\") { id } }",
            json!({ "m": gid(Kind::Member, m.id) }),
        )
        .await;
    assert_eq!(error_code(&freeze), Some("INTERNAL"), "{freeze}");
    // Not frozen: its token still works, and its row says so.
    let me = app.data_as(&member, "{ me { frozen } }", json!({})).await;
    assert_eq!(me["me"]["frozen"], json!(false));
}

#[tokio::test]
async fn nobody_can_change_or_remove_an_entry() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, m) = app.user("m@example.com", CliRole::PushHand).await;
    app.data_as(
        &admin,
        "mutation($m: ID!) { freezeMember(memberId: $m, reason: \"test\") { id } }",
        json!({ "m": gid(Kind::Member, m.id) }),
    )
    .await;
    let db = app.db();
    let mut attempts = vec![
        "UPDATE audit_log SET action = 'MEMBER_UNFROZEN'",
        "UPDATE audit_log SET arguments = '{}'",
        "DELETE FROM audit_log",
    ];
    if db.get_database_backend() == DbBackend::Postgres {
        attempts.push("TRUNCATE audit_log");
    }
    for sql in attempts {
        let refused = db.execute_unprepared(sql).await;
        assert!(refused.is_err(), "{sql} was allowed");
    }
    let left = entries(&app, &admin, json!({})).await;
    assert_eq!(actions(&left), ["MEMBER_FROZEN"]);
    assert_eq!(left[0]["arguments"], json!({ "reason": "test" }));
}

#[tokio::test]
async fn money_actions_are_audited_with_their_actor_target_and_arguments() {
    use crate::earnings::{order, pay, product};
    let app = TestApp::spawn().await;
    let (admin, admin_m) = app.user("admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("b@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 100, false).await;
    let o = order(&app, &buyer, sku, 2, None).await["data"]["placeOrder"].clone();
    let oid = o["id"].as_str().expect("order").to_owned();
    let line = o["lines"][0]["id"].as_str().expect("line").to_owned();
    let r = pay(&app, &admin, &oid, "wx-audit", "398.00").await;
    assert!(r["errors"].is_null(), "{r}");
    // A refused or repeated callback changes nothing and leaves no entry.
    pay(&app, &admin, &oid, "wx-audit", "398.00").await;
    pay(&app, &admin, &oid, "wx-audit", "1.00").await;
    app.data_as(
        &admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": oid }),
    )
    .await;
    let refund = "mutation($l: ID!, $k: String) {
      refundOrderLine(orderLineId: $l, quantity: 1, idempotencyKey: $k) { status } }";
    for _ in 0..2 {
        let r = app
            .gql_as(&admin, refund, json!({ "l": line, "k": "k-audit" }))
            .await;
        assert!(r["errors"].is_null(), "{r}");
    }
    app.data_as(
        &buyer,
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
        json!({ "o": oid }),
    )
    .await;
    let later = (app.clock_now() + chrono::Duration::days(8)).to_rfc3339();
    let r = app
        .data_as(
            &admin,
            "mutation($t: DateTime) { runSettlement(asOf: $t) { settled } }",
            json!({ "t": later }),
        )
        .await;
    assert_eq!(r["runSettlement"]["settled"], json!(2), "{r}");
    let withdraw = "mutation($a: Decimal!, $k: String!) { requestWithdrawal(amount: $a, idempotencyKey: $k) { id } }";
    let review =
        "mutation($id: ID!, $ok: Boolean!) { reviewWithdrawal(id: $id, approve: $ok) { status } }";
    let mut withdrawals = Vec::new();
    for (amount, ok) in [("10.00", true), ("12.00", false)] {
        let w = app
            .data_as(&buyer, withdraw, json!({ "a": amount, "k": amount }))
            .await;
        let id = w["requestWithdrawal"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        app.data_as(&admin, review, json!({ "id": id, "ok": ok }))
            .await;
        withdrawals.push(id);
    }

    let actor = gid(Kind::Member, admin_m.id);
    let one = |list: Vec<Value>| {
        assert_eq!(list.len(), 1, "{list:#?}");
        let e = list[0].clone();
        assert_eq!(e["actorId"], json!(actor), "{e}");
        assert!(e["clientAddress"].is_string(), "{e}");
        e
    };
    let e = one(entries(&app, &admin, json!({ "action": "PAYMENT_CONFIRMED" })).await);
    assert_eq!(e["targetId"], json!(oid));
    assert_eq!(
        e["arguments"],
        json!({ "paymentReference": "wx-audit", "amount": "398.00" })
    );
    let e = one(entries(&app, &admin, json!({ "action": "ORDER_SHIPPED" })).await);
    assert_eq!(e["targetId"], json!(oid));
    let e = one(entries(&app, &admin, json!({ "action": "ORDER_LINE_REFUNDED" })).await);
    assert_eq!(e["targetId"], json!(line));
    assert_eq!(
        e["arguments"],
        json!({ "quantity": 1, "idempotencyKey": "k-audit" })
    );
    let e = one(entries(&app, &admin, json!({ "action": "SETTLEMENT_RUN" })).await);
    assert!(e["targetId"].is_null());
    let as_of = e["arguments"]["asOf"].as_str().expect("asOf");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(as_of).expect("time"),
        chrono::DateTime::parse_from_rfc3339(&later).expect("time")
    );
    assert_eq!(e["arguments"]["settled"], json!(2));
    let e = one(entries(&app, &admin, json!({ "action": "WITHDRAWAL_APPROVED" })).await);
    assert_eq!(e["targetId"], json!(withdrawals[0]));
    assert_eq!(e["arguments"]["amount"], json!("10.00"));
    let e = one(entries(&app, &admin, json!({ "action": "WITHDRAWAL_REJECTED" })).await);
    assert_eq!(e["targetId"], json!(withdrawals[1]));
    assert_eq!(e["arguments"]["amount"], json!("12.00"));
}
