//! Push-hand levels and privileges (issue #29, items 4 and 5): levels reached on settled, net
//! sales (a refund lowers them), never on headcount; a downgrade only after the grace
//! period; badges, coupon packs and prizes granted once per rule and period however many
//! evaluations run at once on two instances; the prize claim → ship flow and expiry; roles
//! and every bad field.

use chrono::Duration;
use entity::member::Tier;
use entity::{coupon, coupon_template, privilege_grant};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::levels;
use pushhand::service::members::CliRole;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cart::token_of;
use crate::earnings::{order, pay, product};
use crate::fixtures::{self, gid};
use crate::helpers::{TestApp, error_code};

const CREATE_LEVEL: &str = "mutation($i: LevelInput!) { createLevel(input: $i) { id name rank
  minSales periodDays graceDays minTeamMembers } }";

const CREATE_RULE: &str = "mutation($i: PrivilegeRuleInput!) { createPrivilegeRule(input: $i) {
  id name kind audience period prizeClaimDays } }";

const MY_LEVEL: &str = "{ me { level { name since graceEndsAt sales benefits { name kind }
  next { name progress sales missingSales missing } } } }";

const EVALUATE: &str = "mutation { runLevelEvaluation }";

const MY_PRIVILEGES: &str = "{ me { privileges(first: 50) { edges { node { id kind name source
  period active couponIds } } } } }";

const MY_PRIZES: &str = "{ me { prizes { edges { node { id name status expiresAt
  address { recipientName regionText detail } carrier trackingNumber } } } } }";

fn level(name: &str, rank: i32, min_sales: &str, grace: i32) -> Value {
    json!({ "name": name, "rank": rank, "minSales": min_sales, "periodDays": 30,
            "graceDays": grace })
}

async fn create_level(app: &TestApp, admin: &str, input: Value) -> String {
    app.data_as(admin, CREATE_LEVEL, json!({ "i": input }))
        .await["createLevel"]["id"]
        .as_str()
        .expect("level id")
        .to_owned()
}

async fn create_rule(app: &TestApp, admin: &str, input: Value) -> String {
    app.data_as(admin, CREATE_RULE, json!({ "i": input })).await["createPrivilegeRule"]["id"]
        .as_str()
        .expect("rule id")
        .to_owned()
}

/// `buyer` orders one unit of `sku` (199.00), paid, shipped and received: completed now.
async fn completed_order(app: &TestApp, admin: &str, buyer: &str, sku: Uuid) -> (String, String) {
    let o = order(app, buyer, sku, 1, None).await["data"]["placeOrder"].clone();
    let id = o["id"].as_str().expect("order id").to_owned();
    let line = o["lines"][0]["id"].as_str().expect("line id").to_owned();
    let paid = pay(app, admin, &id, &format!("ref-{id}"), "199.00").await;
    assert!(paid.get("errors").is_none(), "{paid}");
    app.data_as(
        admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": id }),
    )
    .await;
    app.data_as(
        buyer,
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
        json!({ "o": id }),
    )
    .await;
    (id, line)
}

fn policy(app: &TestApp) -> levels::Policy {
    levels::Policy {
        commission_levels: app.state.config.policy.commission_levels,
        return_window: Duration::days(i64::from(app.state.config.policy.return_window_days)),
    }
}

async fn audit_actions(app: &TestApp, admin: &str) -> Vec<(String, Value)> {
    let log = app
        .data_as(
            admin,
            "{ auditLog(first: 100) { edges { node { action actorId } } } }",
            json!({}),
        )
        .await;
    log["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["node"]["action"].as_str().unwrap_or_default().to_owned(),
                e["node"]["actorId"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn levels_follow_settled_net_sales_refunds_lower_them_and_grace_delays_the_fall() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, sku) = product(&app, 100, false).await;
    let m = fixtures::member(&app, "m", Tier::PushHand, None).await;
    let t = fixtures::member(&app, "t", Tier::PushHand, Some(m.id)).await;
    let (m_token, t_token) = (token_of(&app, &m), token_of(&app, &t));
    create_level(&app, &admin, level("银牌推手", 1, "300", 10)).await;
    create_level(&app, &admin, level("金牌推手", 2, "1000", 10)).await;

    // Below the first level: nothing held, the first is next.
    app.data_as(&admin, EVALUATE, json!({})).await;
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["name"], Value::Null, "{lv}");
    assert_eq!(lv["next"]["name"], "银牌推手");
    assert_eq!(lv["next"]["missingSales"], "300.00");

    // Its own purchase and its team's: 398.00 once settled, not before.
    completed_order(&app, &admin, &m_token, sku).await;
    let (_, t_line) = completed_order(&app, &admin, &t_token, sku).await;
    app.data_as(&admin, EVALUATE, json!({})).await;
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["name"], Value::Null, "completed, not settled: {lv}");
    assert_eq!(lv["next"]["sales"], "0.00");

    // Past the return window the settlement moves the member up.
    app.clock.advance(Duration::days(8));
    app.data_as(&admin, "mutation { runSettlement { settled } }", json!({}))
        .await;
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["name"], "银牌推手", "{lv}");
    assert!(lv["since"].is_string());
    assert_eq!(lv["sales"], "398.00");
    assert_eq!(lv["next"]["name"], "金牌推手");
    assert_eq!(lv["next"]["progress"], "0.398");
    assert_eq!(lv["next"]["missingSales"], "602.00");
    // The team member's own sales are its own alone (no downline).
    let tl = app.data_as(&t_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(
        (tl["name"].clone(), tl["sales"].clone()),
        (Value::Null, json!("199.00"))
    );
    let actions = audit_actions(&app, &admin).await;
    assert!(
        actions
            .iter()
            .any(|(a, actor)| a == "MEMBER_LEVEL_CHANGED" && actor.is_null()),
        "{actions:?}"
    );

    // A refund after settlement lowers the sales: short of the level, the grace starts.
    let refunded = app
        .gql_as(
            &admin,
            "mutation($l: ID!) { refundOrderLine(orderLineId: $l) { status } }",
            json!({ "l": t_line }),
        )
        .await;
    assert!(refunded.get("errors").is_none(), "{refunded}");
    app.data_as(&admin, EVALUATE, json!({})).await;
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["sales"], "199.00", "{lv}");
    assert_eq!(lv["name"], "银牌推手", "kept during the grace period");
    assert!(lv["graceEndsAt"].is_string(), "{lv}");

    // Still inside the grace period: kept.
    app.clock.advance(Duration::days(9));
    app.data_as(&admin, EVALUATE, json!({})).await;
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["name"], "银牌推手", "{lv}");
    // Past it: down.
    app.clock.advance(Duration::days(2));
    app.data_as(&admin, EVALUATE, json!({})).await;
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["name"], Value::Null, "{lv}");
    assert_eq!(lv["graceEndsAt"], Value::Null);
}

#[tokio::test]
async fn headcount_alone_never_upgrades() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, sku) = product(&app, 100, false).await;
    // A level asking for nothing but heads is refused.
    let resp = app
        .gql_as(
            &admin,
            CREATE_LEVEL,
            json!({ "i": { "name": "人头", "rank": 1, "minSales": "0", "periodDays": 30,
                           "graceDays": 0, "minTeamMembers": 3 } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    assert_eq!(resp["errors"][0]["extensions"]["field"], "input.minSales");
    let mut l = level("团队长", 1, "100", 0);
    l["minTeamMembers"] = json!(3);
    create_level(&app, &admin, l).await;

    // Twenty recruits, no sales: no level.
    let m = fixtures::member(&app, "m", Tier::PushHand, None).await;
    for i in 0..20 {
        fixtures::member(&app, &format!("r{i}"), Tier::PushHand, Some(m.id)).await;
    }
    let m_token = token_of(&app, &m);
    app.clock.advance(Duration::days(8));
    app.data_as(&admin, EVALUATE, json!({})).await;
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["name"], Value::Null, "{lv}");
    assert_eq!(lv["next"]["missingSales"], "100.00");
    assert_eq!(
        lv["next"]["missing"][0],
        "¥100.00 more settled sales in the last 30 days"
    );

    // Sales (settled) with the heads: the level.
    completed_order(&app, &admin, &m_token, sku).await;
    app.clock.advance(Duration::days(8));
    app.data_as(&admin, EVALUATE, json!({})).await;
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["name"], "团队长", "{lv}");
}

#[tokio::test]
async fn bad_input_names_every_field_and_wrong_roles_are_forbidden() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (member, m) = app.user("m@example.com", CliRole::PushHand).await;

    let resp = app
        .gql_as(
            &admin,
            CREATE_LEVEL,
            json!({ "i": { "name": " ", "rank": 0, "minSales": "-1", "periodDays": 0,
                           "graceDays": -1, "minTeamMembers": -5, "description": "x".repeat(501) } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    let fields = |resp: &Value| -> Vec<String> {
        resp["errors"][0]["extensions"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|f| f["field"].as_str().map(str::to_owned))
            .collect()
    };
    let got = fields(&resp);
    for f in [
        "input.name",
        "input.rank",
        "input.minSales",
        "input.periodDays",
        "input.graceDays",
        "input.minTeamMembers",
        "input.description",
    ] {
        assert!(got.iter().any(|g| g == f), "{f} missing in {got:?}");
    }
    // A taken rank and name.
    create_level(&app, &admin, level("一级", 1, "100", 0)).await;
    let resp = app
        .gql_as(
            &admin,
            CREATE_LEVEL,
            json!({ "i": level("一级", 1, "200", 0) }),
        )
        .await;
    let got = fields(&resp);
    assert!(got.contains(&"input.name".to_owned()) && got.contains(&"input.rank".to_owned()));

    let resp = app
        .gql_as(
            &admin,
            CREATE_RULE,
            json!({ "i": { "name": "", "kind": "COUPON_PACK", "audience": "LEVEL",
                           "period": "MONTHLY", "prizeClaimDays": 3 } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    let got = fields(&resp);
    for f in [
        "input.name",
        "input.levelId",
        "input.couponTemplateIds",
        "input.prizeClaimDays",
    ] {
        assert!(got.iter().any(|g| g == f), "{f} missing in {got:?}");
    }
    // A pack of a CLAIM template, a prize without its window.
    let claim = app
        .data_as(
            &admin,
            "mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }",
            json!({ "i": { "name": "领券", "kind": "FIXED", "amountOff": "5", "scope": "ALL",
                "validDays": 30, "totalQuantity": 10, "perMemberLimit": 1, "distribution": "CLAIM" } }),
        )
        .await["createCouponTemplate"]["id"]
        .clone();
    let resp = app
        .gql_as(
            &admin,
            CREATE_RULE,
            json!({ "i": { "name": "券包", "kind": "COUPON_PACK", "audience": "MANUAL",
                           "period": "ONCE", "couponTemplateIds": [claim] } }),
        )
        .await;
    assert_eq!(
        resp["errors"][0]["extensions"]["field"],
        "input.couponTemplateIds[0]"
    );
    let resp = app
        .gql_as(
            &admin,
            CREATE_RULE,
            json!({ "i": { "name": "奖品", "kind": "PRIZE", "audience": "MANUAL", "period": "ONCE" } }),
        )
        .await;
    assert_eq!(
        resp["errors"][0]["extensions"]["field"],
        "input.prizeClaimDays"
    );
    let rule = create_rule(
        &app,
        &admin,
        json!({ "name": "徽章", "kind": "BADGE", "audience": "MANUAL", "period": "ONCE" }),
    )
    .await;

    // Members may not act as admins.
    let member_id = gid(Kind::Member, m.id);
    for (q, vars) in [
        (CREATE_LEVEL, json!({ "i": level("二级", 2, "100", 0) })),
        (
            CREATE_RULE,
            json!({ "i": { "name": "x", "kind": "BADGE", "audience": "MANUAL", "period": "ONCE" } }),
        ),
        (EVALUATE, json!({})),
        (
            "mutation($r: ID!, $m: ID!) { grantPrivilege(ruleId: $r, memberId: $m) { id } }",
            json!({ "r": rule, "m": member_id }),
        ),
        ("{ privilegeRules { id } }", json!({})),
        ("{ prizesToShip { id } }", json!({})),
        (
            "mutation($id: ID!) { shipPrize(id: $id, carrier: SF, trackingNumber: \"SF1234567890\") { id } }",
            json!({ "id": gid(Kind::Privilege, Uuid::now_v7()) }),
        ),
    ] {
        let resp = app.gql_as(&member, q, vars).await;
        assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{q}: {resp}");
    }
    let resp = app.gql("{ levels { name } }", json!({})).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"), "{resp}");
    let listed = app
        .data_as(&member, "{ levels { name rank } }", json!({}))
        .await;
    assert_eq!(listed["levels"][0]["name"], "一级");
    assert_eq!(
        privilege_grant::Entity::find()
            .count(app.db())
            .await
            .expect("count"),
        0
    );
}

#[tokio::test]
async fn badges_and_coupon_packs_are_granted_once_however_many_runs_on_two_instances() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn_sharing(&app, &[]).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, sku) = product(&app, 100, false).await;
    let up = fixtures::member(&app, "up", Tier::PushHand, None).await;
    let m = fixtures::member(&app, "m", Tier::PushHand, Some(up.id)).await;
    let (up_token, m_token) = (token_of(&app, &up), token_of(&app, &m));
    let mut l = level("金牌推手", 1, "100", 5);
    l["periodDays"] = json!(366);
    let level_id = create_level(&app, &admin, l).await;
    let mut templates = Vec::new();
    for name in ["满100减10", "满200减30"] {
        templates.push(
            app.data_as(
                &admin,
                "mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }",
                json!({ "i": { "name": name, "kind": "FIXED", "amountOff": "10", "minSpend": "100",
                    "scope": "ALL", "validDays": 30, "totalQuantity": 100, "perMemberLimit": 12,
                    "distribution": "GRANT" } }),
            )
            .await["createCouponTemplate"]["id"]
                .clone(),
        );
    }
    create_rule(
        &app,
        &admin,
        json!({ "name": "金牌推手", "kind": "BADGE", "audience": "LEVEL", "levelId": level_id,
                "period": "ONCE" }),
    )
    .await;
    create_rule(
        &app,
        &admin,
        json!({ "name": "月度券包", "kind": "COUPON_PACK", "audience": "LEVEL",
                "levelId": level_id, "period": "MONTHLY", "couponTemplateIds": templates }),
    )
    .await;
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["next"]["name"], "金牌推手");

    completed_order(&app, &admin, &m_token, sku).await;
    app.clock.advance(Duration::days(8));
    other.clock.advance(Duration::days(8));

    // Ten evaluations on each instance at once.
    let mid = m.id;
    let evaluate_all = |n: usize| {
        let runs = (0..n).flat_map(|_| {
            [&app, &other].map(|a| {
                let policy = policy(a);
                async move {
                    levels::evaluate(a.db(), &a.state.events, &policy, mid, a.clock_now()).await
                }
            })
        });
        join_all(runs)
    };
    for r in evaluate_all(10).await {
        r.map_err(anyhow::Error::from).expect("evaluated");
    }
    let grants = || async {
        privilege_grant::Entity::find()
            .filter(privilege_grant::Column::MemberId.eq(m.id))
            .count(app.db())
            .await
            .expect("count")
    };
    let coupons = || async {
        coupon::Entity::find()
            .filter(coupon::Column::MemberId.eq(m.id))
            .count(app.db())
            .await
            .expect("count")
    };
    assert_eq!(grants().await, 2, "a badge and one pack");
    assert_eq!(coupons().await, 2, "one coupon of each template");
    for t in coupon_template::Entity::find()
        .all(app.db())
        .await
        .expect("templates")
    {
        assert_eq!(t.issued, 1, "{}", t.name);
    }
    let lv = app.data_as(&m_token, MY_LEVEL, json!({})).await["me"]["level"].clone();
    assert_eq!(lv["name"], "金牌推手");
    assert_eq!(lv["benefits"].as_array().map(Vec::len), Some(2), "{lv}");
    let privileges = app.data_as(&m_token, MY_PRIVILEGES, json!({})).await;
    let edges = privileges["me"]["privileges"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert_eq!(edges.len(), 2);
    assert!(edges.iter().all(|e| e["node"]["source"] == "LEVEL"));
    let pack = edges
        .iter()
        .find(|e| e["node"]["kind"] == "COUPON_PACK")
        .expect("pack");
    assert_eq!(pack["node"]["couponIds"].as_array().map(Vec::len), Some(2));
    let badge_id = edges
        .iter()
        .find(|e| e["node"]["kind"] == "BADGE")
        .expect("badge")["node"]["id"]
        .clone();
    let mine = app
        .data_as(
            &m_token,
            "{ me { coupons { edges { node { status } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine["me"]["coupons"]["edges"].as_array().map(Vec::len),
        Some(2)
    );
    // The badge on the public profile, as the upline's team page shows it.
    let team =
        "{ me { team(level: 1) { edges { node { displayName badges { name source } } } } } }";
    let seen = app.data_as(&up_token, team, json!({})).await;
    assert_eq!(
        seen["me"]["team"]["edges"][0]["node"]["badges"],
        json!([{ "name": "金牌推手", "source": "LEVEL" }])
    );
    let actions = audit_actions(&app, &admin).await;
    assert_eq!(
        actions
            .iter()
            .filter(|(a, actor)| a == "PRIVILEGE_GRANTED" && actor.is_null())
            .count(),
        2,
        "{actions:?}"
    );

    // Next month: the pack again (once), the badge not.
    app.clock.advance(Duration::days(31));
    other.clock.advance(Duration::days(31));
    for r in evaluate_all(5).await {
        r.map_err(anyhow::Error::from).expect("evaluated");
    }
    assert_eq!(grants().await, 3);
    assert_eq!(coupons().await, 4);

    // An admin's revocation sticks through evaluations; the admin's grant gives it back.
    app.data_as(
        &admin,
        "mutation($id: ID!) { revokePrivilege(id: $id) { active } }",
        json!({ "id": badge_id }),
    )
    .await;
    app.data_as(&admin, EVALUATE, json!({})).await;
    let seen = app.data_as(&up_token, team, json!({})).await;
    assert_eq!(seen["me"]["team"]["edges"][0]["node"]["badges"], json!([]));
    let resp = app
        .gql_as(
            &admin,
            "mutation($id: ID!) { revokePrivilege(id: $id) { active } }",
            json!({ "id": badge_id }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("PRIVILEGE_REVOKED"));
    let rules = app
        .data_as(&admin, "{ privilegeRules { id kind } }", json!({}))
        .await;
    let badge_rule = rules["privilegeRules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["kind"] == "BADGE")
        .expect("badge rule")["id"]
        .clone();
    let again = app
        .data_as(
            &admin,
            "mutation($r: ID!, $m: ID!) { grantPrivilege(ruleId: $r, memberId: $m) { id active } }",
            json!({ "r": badge_rule, "m": gid(Kind::MemberProfile, m.id) }),
        )
        .await;
    assert_eq!(again["grantPrivilege"]["id"], badge_id);
    assert_eq!(again["grantPrivilege"]["active"], true);
    let actions = audit_actions(&app, &admin).await;
    assert!(actions.iter().any(|(a, _)| a == "PRIVILEGE_REVOKED"));
    assert_eq!(grants().await, 3);
}

#[tokio::test]
async fn prizes_are_claimed_to_an_address_shipped_and_expire_unclaimed() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (member, m) = app.user("m@example.com", CliRole::Partner).await;
    let (other, _) = app.user("o@example.com", CliRole::PushHand).await;
    let address = |name: &str| {
        json!({ "recipientName": name, "phone": "13912345678", "provinceCode": "650000",
                "cityCode": "650100", "districtCode": "650102", "detail": "解放北路 1 号",
                "postalCode": "830000" })
    };
    let add = "mutation($i: AddressInput!) { addAddress(input: $i) { id } }";
    let mine = app
        .data_as(&member, add, json!({ "i": address("王五") }))
        .await["addAddress"]["id"]
        .clone();
    let theirs = app
        .data_as(&other, add, json!({ "i": address("赵六") }))
        .await["addAddress"]["id"]
        .clone();
    let rule = create_rule(
        &app,
        &admin,
        json!({ "name": "米家台灯", "kind": "PRIZE", "audience": "MANUAL", "period": "ONCE",
                "prizeClaimDays": 7 }),
    )
    .await;
    let grant = "mutation($r: ID!, $m: ID!) { grantPrivilege(ruleId: $r, memberId: $m) { id prize { status } } }";
    let vars = json!({ "r": rule, "m": gid(Kind::Member, m.id) });
    let first = app.data_as(&admin, grant, vars.clone()).await["grantPrivilege"].clone();
    let again = app.data_as(&admin, grant, vars).await["grantPrivilege"].clone();
    assert_eq!(first["id"], again["id"], "one grant per rule and period");
    assert_eq!(first["prize"]["status"], "UNCLAIMED");
    let prize = first["id"].clone();

    let claim = "mutation($p: ID!, $a: ID!) { claimPrize(entitlementId: $p, addressId: $a) {
      status address { recipientName regionText } } }";
    let resp = app
        .gql_as(&member, claim, json!({ "p": prize, "a": theirs }))
        .await;
    assert_eq!(
        error_code(&resp),
        Some("NOT_FOUND"),
        "another member's address"
    );
    let resp = app
        .gql_as(&other, claim, json!({ "p": prize, "a": theirs }))
        .await;
    assert_eq!(
        error_code(&resp),
        Some("NOT_FOUND"),
        "another member's prize"
    );
    // Claimed once, however many claims run at once.
    let claims =
        join_all((0..10).map(|_| app.gql_as(&member, claim, json!({ "p": prize, "a": mine }))))
            .await;
    let won: Vec<&Value> = claims
        .iter()
        .filter(|r| r.get("errors").is_none())
        .collect();
    assert_eq!(won.len(), 1, "{claims:?}");
    assert_eq!(won[0]["data"]["claimPrize"]["status"], "CLAIMED");
    assert_eq!(
        won[0]["data"]["claimPrize"]["address"]["recipientName"],
        "王五"
    );
    assert!(
        claims
            .iter()
            .filter(|r| r.get("errors").is_some())
            .all(|r| error_code(r) == Some("PRIZE_ALREADY_CLAIMED"))
    );

    let queue = app
        .data_as(&admin, "{ prizesToShip { id name } }", json!({}))
        .await;
    assert_eq!(queue["prizesToShip"][0]["id"], prize);
    let ship =
        "mutation($id: ID!, $t: String!) { shipPrize(id: $id, carrier: SF, trackingNumber: $t) {
      status carrier trackingNumber } }";
    let resp = app
        .gql_as(&admin, ship, json!({ "id": prize, "t": "x" }))
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    assert_eq!(resp["errors"][0]["extensions"]["field"], "trackingNumber");
    let shipped = app
        .data_as(&admin, ship, json!({ "id": prize, "t": "sf1234567890" }))
        .await;
    assert_eq!(shipped["shipPrize"]["status"], "SHIPPED");
    assert_eq!(shipped["shipPrize"]["trackingNumber"], "SF1234567890");
    let resp = app
        .gql_as(&admin, ship, json!({ "id": prize, "t": "SF1234567890" }))
        .await;
    assert_eq!(error_code(&resp), Some("PRIZE_ALREADY_SHIPPED"));
    let resp = app
        .gql_as(
            &admin,
            "mutation($id: ID!) { revokePrivilege(id: $id) { active } }",
            json!({ "id": prize }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("PRIZE_SHIPPED"));

    // A second prize left unclaimed expires.
    let late = create_rule(
        &app,
        &admin,
        json!({ "name": "米家背包", "kind": "PRIZE", "audience": "PARTNERS", "period": "ONCE",
                "prizeClaimDays": 7 }),
    )
    .await;
    let _ = late;
    // Partners get it from the evaluation.
    app.data_as(&admin, EVALUATE, json!({})).await;
    let prizes = app.data_as(&member, MY_PRIZES, json!({})).await;
    let edges = prizes["me"]["prizes"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert_eq!(edges.len(), 2, "{prizes}");
    let backpack = edges
        .iter()
        .find(|e| e["node"]["name"] == "米家背包")
        .expect("backpack")["node"]
        .clone();
    assert_eq!(backpack["status"], "UNCLAIMED");
    app.clock.advance(Duration::days(8));
    let prizes = app.data_as(&member, MY_PRIZES, json!({})).await;
    let statuses: Vec<&str> = prizes["me"]["prizes"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["status"].as_str())
        .collect();
    assert_eq!(statuses, vec!["EXPIRED", "SHIPPED"]);
    let resp = app
        .gql_as(&member, claim, json!({ "p": backpack["id"], "a": mine }))
        .await;
    assert_eq!(error_code(&resp), Some("PRIZE_EXPIRED"));
    let resp = app
        .gql_as(
            &admin,
            ship,
            json!({ "id": backpack["id"], "t": "SF1234567890" }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("PRIZE_NOT_CLAIMED"));
    // The partner's privileges list both with their sources.
    let privileges = app.data_as(&member, MY_PRIVILEGES, json!({})).await;
    let sources: Vec<&str> = privileges["me"]["privileges"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["source"].as_str())
        .collect();
    assert_eq!(sources, vec!["PARTNER", "ADMIN"]);
    let actions = audit_actions(&app, &admin).await;
    assert!(actions.iter().any(|(a, _)| a == "PRIZE_SHIPPED"));
}
