//! Coupons: templates validated all at once and audited; claims that never pass the total
//! nor the per-member limit however many run at once; welcome coupons at registration; a
//! coupon spread over the lines it applies to, with every rebate on what was paid after it;
//! the preview's reasons; one coupon, one order under concurrency; the coupon back on
//! cancellation, expiry and full refund of the lines it touched.

use chrono::{Duration, SubsecRound};
use entity::member::Tier;
use entity::{coupon, coupon_template};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::checkouts::Checkout;
use pushhand::service::coupons;
use pushhand::service::members::CliRole;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cart::token_of;
use crate::checkouts::{checkout, rows_of, stock};
use crate::earnings::{another_product, pay};
use crate::fixtures::{self, gid, uuid_of};
use crate::helpers::{TestApp, error_code};

const CREATE: &str = "mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) {
  id name kind amountOff rateOff maxOff minSpend scope scopeIds validDays totalQuantity issued
  remaining perMemberLimit distribution enabled } }";

const CLAIM: &str = "mutation($t: ID!) { claimCoupon(templateId: $t) { id status expiresAt
  template { name } } }";

const MY_COUPONS: &str = "query($s: CouponStatus) { me { coupons(status: $s) { edges { node {
  id status orderId } } } } }";

const PREVIEW: &str = "query($i: CheckoutPreviewInput!) { checkoutPreview(input: $i) {
  goodsTotal discount total
  coupon { id applies code reason discount }
  lines { lineTotal couponShare paidAmount
    earnings { kind amount explanation { baseAmount listAmount couponShare couponRule summary } } } } }";

const PLACE: &str = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) {
  id total goodsTotal discount couponId lines { id amount couponShare paidAmount } } }";

const EARNINGS: &str = "{ me { earnings(first: 50) { edges { node { kind status amount
  explanation { baseAmount listAmount couponShare couponRule summary } } } } } }";

/// A FIXED template over the whole catalog: `off` off from `min`, claimed, valid 30 days.
fn fixed(off: &str, min: &str, total: i32, per_member: i32) -> Value {
    json!({ "name": "新人立减", "kind": "FIXED", "amountOff": off, "minSpend": min,
            "scope": "ALL", "validDays": 30, "totalQuantity": total,
            "perMemberLimit": per_member, "distribution": "CLAIM" })
}

async fn template(app: &TestApp, admin: &str, input: Value) -> String {
    app.data_as(admin, CREATE, json!({ "i": input })).await["createCouponTemplate"]["id"]
        .as_str()
        .expect("template id")
        .to_owned()
}

async fn claim(app: &TestApp, token: &str, template: &str) -> String {
    app.data_as(token, CLAIM, json!({ "t": template })).await["claimCoupon"]["id"]
        .as_str()
        .expect("coupon id")
        .to_owned()
}

async fn statuses(app: &TestApp, token: &str) -> Vec<String> {
    let d = app.data_as(token, MY_COUPONS, json!({})).await;
    d["me"]["coupons"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn line(sku: Uuid, qty: i32) -> Value {
    json!({ "skuId": gid(Kind::Sku, sku), "quantity": qty })
}

#[tokio::test]
async fn templates_are_checked_field_by_field_at_once_and_audited() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (member, _) = app.user("m@example.com", CliRole::PushHand).await;

    // Every bad field at once.
    let bad = json!({ "name": " ", "kind": "PERCENT", "rateOff": "1.5", "maxOff": "-1",
        "amountOff": "5", "minSpend": "-3", "scope": "BRANDS", "validFrom": "2030-01-02T00:00:00Z",
        "validUntil": "2030-01-01T00:00:00Z", "totalQuantity": 0, "perMemberLimit": 0,
        "distribution": "CLAIM" });
    let resp = app.gql_as(&admin, CREATE, json!({ "i": bad })).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    let fields: Vec<&str> = resp["errors"][0]["extensions"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    for f in [
        "input.name",
        "input.rateOff",
        "input.amountOff",
        "input.maxOff",
        "input.minSpend",
        "input.scopeIds",
        "input.validUntil",
        "input.totalQuantity",
        "input.perMemberLimit",
    ] {
        assert!(fields.contains(&f), "{f} missing in {fields:?}");
    }
    // An unknown scope id is named by its index.
    let f = fixtures::catalog(app.db(), 0).await;
    let resp = app
        .gql_as(
            &admin,
            CREATE,
            json!({ "i": { "name": "品牌券", "kind": "FIXED",
            "amountOff": "5", "scope": "BRANDS",
            "scopeIds": [gid(Kind::Brand, f.brands[0].id), gid(Kind::Brand, Uuid::now_v7())],
            "validDays": 7, "totalQuantity": 10, "perMemberLimit": 1, "distribution": "CLAIM" } }),
        )
        .await;
    assert_eq!(
        resp["errors"][0]["extensions"]["field"],
        "input.scopeIds[1]"
    );
    // Members may not create templates.
    let resp = app
        .gql_as(&member, CREATE, json!({ "i": fixed("5", "0", 1, 1) }))
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
    assert_eq!(
        coupon_template::Entity::find()
            .count(app.db())
            .await
            .expect("count"),
        0,
        "nothing half-written"
    );

    // A good one, then disabled: not claimable, not claimed.
    let pct = app
        .data_as(
            &admin,
            CREATE,
            json!({ "i": { "name": "八五折", "kind": "PERCENT",
            "rateOff": "0.15", "maxOff": "50", "scope": "CATEGORIES",
            "scopeIds": [gid(Kind::Category, f.tops[0].id)], "validDays": 7,
            "totalQuantity": 10, "perMemberLimit": 2, "distribution": "CLAIM" } }),
        )
        .await["createCouponTemplate"]
        .clone();
    assert_eq!(pct["rateOff"], "0.15");
    assert_eq!(pct["maxOff"], "50.00");
    // A top-level category covers its children.
    assert_eq!(pct["scopeIds"].as_array().map(Vec::len), Some(3), "{pct}");
    let id = pct["id"].as_str().expect("id").to_owned();
    let listed = app
        .data_as(
            &member,
            "{ claimableCoupons { template { id } canClaim held } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["claimableCoupons"][0]["template"]["id"], id.as_str());
    app.data_as(
        &admin,
        "mutation($t: ID!) { setCouponTemplateEnabled(id: $t, enabled: false) { enabled } }",
        json!({ "t": id }),
    )
    .await;
    let resp = app.gql_as(&member, CLAIM, json!({ "t": id })).await;
    assert_eq!(error_code(&resp), Some("COUPON_DISABLED"));
    let listed = app
        .data_as(
            &member,
            "{ claimableCoupons { template { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["claimableCoupons"], json!([]));
    let log = app
        .data_as(
            &admin,
            "{ auditLog(first: 10) { edges { node { action } } } }",
            json!({}),
        )
        .await;
    let actions: Vec<&str> = log["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["action"].as_str())
        .collect();
    assert!(actions.contains(&"COUPON_TEMPLATE_CREATED"), "{actions:?}");
    assert!(
        actions.contains(&"COUPON_TEMPLATE_ENABLED_SET"),
        "{actions:?}"
    );
}

/// 1,000 claims at once for 100 coupons, from 200 members allowed one each: exactly 100
/// coupons, none to a member twice; 50 claims at once of one member allowed 3: exactly 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_never_pass_the_total_nor_the_per_member_limit() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let t = uuid_of(&template(&app, &admin, fixed("5", "0", 100, 1)).await);
    let mut members = Vec::new();
    for i in 0..200 {
        members.push(fixtures::member(&app, &format!("m{i}"), Tier::Buyer, None).await);
    }
    let now = app.clock_now();
    let claims = members
        .iter()
        .flat_map(|m| (0..5).map(|_| coupons::claim(app.db(), &app.state.events, m.id, t, now)));
    let outcomes = join_all(claims).await;
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, 100);
    for o in &outcomes {
        if let Err(e) = o {
            assert!(
                matches!(e.code(), "COUPONS_EXHAUSTED" | "COUPON_LIMIT_REACHED"),
                "{}",
                e.code()
            );
        }
    }
    let db = app.db();
    let row = coupon_template::Entity::find_by_id(t)
        .one(db)
        .await
        .expect("read")
        .expect("template");
    assert_eq!(row.issued, 100);
    let rows = coupon::Entity::find()
        .filter(coupon::Column::TemplateId.eq(t))
        .all(db)
        .await
        .expect("coupons");
    assert_eq!(rows.len(), 100);
    let holders: std::collections::HashSet<Uuid> = rows.iter().map(|c| c.member_id).collect();
    assert_eq!(holders.len(), 100, "one coupon per member");

    // One member, a limit of 3, 50 claims at once.
    let t = uuid_of(&template(&app, &admin, fixed("5", "0", 1000, 3)).await);
    let greedy = &members[0];
    let outcomes =
        join_all((0..50).map(|_| coupons::claim(db, &app.state.events, greedy.id, t, now))).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 3);
    assert!(
        outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .all(|e| e.code() == "COUPON_LIMIT_REACHED")
    );
    let held = coupon::Entity::find()
        .filter(coupon::Column::TemplateId.eq(t))
        .count(db)
        .await
        .expect("count");
    assert_eq!(held, 3);
}

#[tokio::test]
async fn welcome_coupons_are_granted_in_registration_while_any_are_left() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let mut input = fixed("10", "0", 1, 1);
    input["distribution"] = json!("ON_REGISTER");
    let t = template(&app, &admin, input).await;
    // Not claimable.
    let (member, _) = app.user("m@example.com", CliRole::PushHand).await;
    let resp = app.gql_as(&member, CLAIM, json!({ "t": t })).await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
    let first = app.register("first@example.com", None, None).await;
    let second = app.register("second@example.com", None, None).await;
    assert!(first["data"].is_object() && second["data"].is_object());
    let first = app
        .login("first@example.com", crate::helpers::PASSWORD)
        .await;
    let second = app
        .login("second@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(statuses(&app, &first).await, ["AVAILABLE"]);
    assert!(
        statuses(&app, &second).await.is_empty(),
        "the only coupon went"
    );

    // Twelve registrations at once for three welcome coupons: every registration succeeds,
    // exactly three coupons are issued and the template counts exactly three.
    let mut input = fixed("5", "0", 3, 1);
    input["distribution"] = json!("ON_REGISTER");
    let t = uuid_of(&template(&app, &admin, input).await);
    let emails: Vec<String> = (0..12).map(|i| format!("rush{i}@example.com")).collect();
    let answers = join_all(emails.iter().map(|e| app.register(e, None, None))).await;
    for a in &answers {
        assert!(a["data"]["register"]["token"].is_string(), "{a}");
    }
    let db = app.db();
    let issued = coupon::Entity::find()
        .filter(coupon::Column::TemplateId.eq(t))
        .count(db)
        .await
        .expect("count");
    assert_eq!(issued, 3);
    let row = coupon_template::Entity::find_by_id(t)
        .one(db)
        .await
        .expect("template")
        .expect("exists");
    assert_eq!(row.issued, 3);
}

/// A push-hand's own purchase of two lines with a 10.00 coupon: 199.00 and 398.00 share it
/// as 3.33 and 6.67 (the fen left over to the larger line); the preview and the booked
/// SELF_PURCHASE rebates are 15 % of 195.67 and 391.33; the coupon is used, stays used when
/// one line is refunded, and comes back when the other is too.
#[tokio::test]
async fn a_coupon_is_spread_over_its_lines_and_rebates_are_on_what_was_paid() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (_, a) = another_product(&app, &f, 50, false).await;
    let (_, b) = another_product(&app, &f, 50, false).await;
    let t = template(&app, &admin, fixed("10", "100", 10, 1)).await;
    let buyer = fixtures::member(&app, "ph", Tier::PushHand, None).await;
    let token = token_of(&app, &buyer);
    let c = claim(&app, &token, &t).await;

    let lines = json!([line(a, 1), line(b, 2)]);
    let p = app
        .data_as(
            &token,
            PREVIEW,
            json!({ "i": { "lines": lines, "couponId": c } }),
        )
        .await["checkoutPreview"]
        .clone();
    assert_eq!(p["coupon"]["applies"], true, "{p}");
    assert_eq!(
        (&p["goodsTotal"], &p["discount"], &p["total"]),
        (&json!("597.00"), &json!("10.00"), &json!("587.00"))
    );
    assert_eq!(p["lines"][0]["couponShare"], "3.33");
    assert_eq!(p["lines"][1]["couponShare"], "6.67");
    assert_eq!(p["lines"][0]["paidAmount"], "195.67");
    let e = &p["lines"][0]["earnings"][0];
    assert_eq!(e["amount"], "29.35", "{e}");
    assert_eq!(e["explanation"]["baseAmount"], "195.67");
    assert_eq!(e["explanation"]["listAmount"], "199.00");
    assert_eq!(e["explanation"]["couponShare"], "3.33");
    assert_eq!(p["lines"][1]["earnings"][0]["amount"], "58.69");

    let o = app
        .data_as(
            &token,
            PLACE,
            json!({ "i": { "lines": lines, "couponId": c } }),
        )
        .await["placeOrder"]
        .clone();
    assert_eq!(
        (
            &o["total"],
            &o["goodsTotal"],
            &o["discount"],
            &o["couponId"]
        ),
        (
            &json!("587.00"),
            &json!("587.00"),
            &json!("10.00"),
            &json!(c)
        )
    );
    assert_eq!(statuses(&app, &token).await, ["USED"]);
    let order_id = o["id"].as_str().expect("id");
    let paid = pay(&app, &admin, order_id, "ref-coupon-1", "587.00").await;
    assert!(paid.get("errors").is_none(), "{paid}");
    let earnings = app.data_as(&token, EARNINGS, json!({})).await;
    let mut amounts: Vec<(String, String, String)> = earnings["me"]["earnings"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["amount"].as_str().unwrap_or_default().to_owned(),
                n["explanation"]["baseAmount"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                n["explanation"]["listAmount"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    amounts.sort();
    assert_eq!(
        amounts,
        [
            ("29.35".into(), "195.67".into(), "199.00".into()),
            ("58.69".into(), "391.33".into(), "398.00".into())
        ]
    );
    let rule = &earnings["me"]["earnings"]["edges"][0]["node"]["explanation"];
    assert!(
        rule["couponRule"]
            .as_str()
            .is_some_and(|r| r.contains("push-hand's own purchase")),
        "{rule}"
    );
    assert!(
        rule["summary"]
            .as_str()
            .is_some_and(|s| s.contains("coupon share")),
        "{rule}"
    );

    // Refunding the first line leaves the coupon used; the second line's last unit brings it
    // back.
    let refund =
        "mutation($l: ID!, $q: Int) { refundOrderLine(orderLineId: $l, quantity: $q) { status } }";
    let line_a = o["lines"][0]["id"].as_str().expect("line");
    let line_b = o["lines"][1]["id"].as_str().expect("line");
    app.data_as(&admin, refund, json!({ "l": line_a })).await;
    assert_eq!(statuses(&app, &token).await, ["USED"]);
    app.data_as(&admin, refund, json!({ "l": line_b, "q": 1 }))
        .await;
    assert_eq!(statuses(&app, &token).await, ["USED"]);
    app.data_as(&admin, refund, json!({ "l": line_b, "q": 1 }))
        .await;
    assert_eq!(statuses(&app, &token).await, ["AVAILABLE"]);
    // What was paid for line B's units, part by part, adds up to its paid amount.
    let paid_b = 39_133;
    let parts: i64 = (0..2)
        .map(|u| pushhand::service::earnings::refund_portion(paid_b, 2, u, u + 1))
        .sum();
    assert_eq!(parts, paid_b);
}

#[tokio::test]
async fn the_preview_says_why_a_coupon_does_not_apply_and_placing_refuses_it() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (_, a) = another_product(&app, &f, 50, false).await;
    let (other, _) = another_product(&app, &f, 50, false).await;
    let buyer = fixtures::member(&app, "b", Tier::Buyer, None).await;
    let token = token_of(&app, &buyer);
    let lines = json!([line(a, 1)]);
    let reason = |p: &Value| {
        (
            p["checkoutPreview"]["coupon"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            p["checkoutPreview"]["coupon"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };

    // 199.00 of a 500.00 minimum: 301.00 short.
    let t = template(&app, &admin, fixed("50", "500", 10, 1)).await;
    let c = claim(&app, &token, &t).await;
    let p = app
        .data_as(
            &token,
            PREVIEW,
            json!({ "i": { "lines": lines, "couponId": c } }),
        )
        .await;
    let (code, why) = reason(&p);
    assert_eq!(code, "COUPON_MIN_SPEND");
    assert!(why.starts_with("¥301.00 short of the minimum"), "{why}");
    assert_eq!(p["checkoutPreview"]["total"], "199.00");
    assert_eq!(p["checkoutPreview"]["coupon"]["applies"], false);
    let resp = app
        .gql_as(
            &token,
            PLACE,
            json!({ "i": { "lines": lines, "couponId": c } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("COUPON_MIN_SPEND"));

    // Another product only.
    let mut input = fixed("5", "0", 10, 1);
    input["scope"] = json!("PRODUCTS");
    input["scopeIds"] = json!([gid(Kind::Product, other)]);
    let t = template(&app, &admin, input).await;
    let c = claim(&app, &token, &t).await;
    let p = app
        .data_as(
            &token,
            PREVIEW,
            json!({ "i": { "lines": lines, "couponId": c } }),
        )
        .await;
    assert_eq!(reason(&p).0, "COUPON_NO_ELIGIBLE_LINE");

    // Expired: 30 days from claiming, and 31 went by.
    let t = template(&app, &admin, fixed("5", "0", 10, 1)).await;
    let c = claim(&app, &token, &t).await;
    app.clock.advance(Duration::days(31));
    let p = app
        .data_as(
            &token,
            PREVIEW,
            json!({ "i": { "lines": lines, "couponId": c } }),
        )
        .await;
    assert_eq!(reason(&p).0, "COUPON_EXPIRED");
    assert!(statuses(&app, &token).await.contains(&"EXPIRED".to_owned()));

    // Another member's coupon is not found.
    let (stranger, _) = app.user("s@example.com", CliRole::PushHand).await;
    let resp = app
        .gql_as(
            &stranger,
            PREVIEW,
            json!({ "i": { "lines": lines, "couponId": c } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
}

/// Ten orders at once with one coupon (five of one SKU, five of another): one is placed,
/// the others are COUPON_USED; cancelling it gives the coupon back, and an expired order
/// does too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_coupon_goes_to_one_order_and_comes_back_when_it_is_cancelled() {
    let app = TestApp::spawn_with(&["--max-unpaid-orders", "20"]).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (_, a) = another_product(&app, &f, 50, false).await;
    let (_, b) = another_product(&app, &f, 50, false).await;
    let buyer = fixtures::member(&app, "b", Tier::Buyer, None).await;
    let token = token_of(&app, &buyer);
    let t = template(&app, &admin, fixed("5", "0", 10, 1)).await;
    let c = claim(&app, &token, &t).await;
    let tries = (0..10).map(|i| {
        let sku = if i % 2 == 0 { a } else { b };
        app.gql_as(
            &token,
            PLACE,
            json!({ "i": { "lines": [line(sku, 1)], "couponId": c } }),
        )
    });
    let outcomes = join_all(tries).await;
    let placed: Vec<&Value> = outcomes
        .iter()
        .filter(|r| r.get("errors").is_none())
        .collect();
    assert_eq!(placed.len(), 1, "{outcomes:?}");
    for r in outcomes.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(error_code(r), Some("COUPON_USED"), "{r}");
    }
    let order_id = placed[0]["data"]["placeOrder"]["id"].as_str().expect("id");
    // Stock: only the placed order took a unit.
    let orders = entity::order::Entity::find()
        .count(app.db())
        .await
        .expect("count");
    assert_eq!(orders, 1);

    // Cancel racing pay: one wins, and the coupon follows it.
    let cancel = app.gql_as(
        &token,
        "mutation($o: ID!) { cancelOrder(orderId: $o) { status } }",
        json!({ "o": order_id }),
    );
    let paying = pay(&app, &admin, order_id, "ref-race", "194.00");
    let (cancelled, paid) = tokio::join!(cancel, paying);
    let cancelled_won = cancelled.get("errors").is_none()
        && cancelled["data"]["cancelOrder"]["status"] == "CANCELLED";
    let paid_won = paid.get("errors").is_none();
    assert!(cancelled_won != paid_won, "{cancelled} {paid}");
    let expected = if cancelled_won { "AVAILABLE" } else { "USED" };
    assert_eq!(statuses(&app, &token).await, [expected]);
    if paid_won {
        return;
    }

    // Placed again, left to expire: back again.
    let o = app
        .data_as(
            &token,
            PLACE,
            json!({ "i": { "lines": [line(a, 1)], "couponId": c } }),
        )
        .await;
    assert_eq!(o["placeOrder"]["total"], "194.00");
    app.clock.advance(Duration::hours(2));
    pushhand::service::orders::expire_unpaid(app.db(), &app.state.events, app.clock_now())
        .await
        .map_err(anyhow::Error::from)
        .expect("expire");
    assert_eq!(statuses(&app, &token).await, ["AVAILABLE"]);
}

/// Orders written together (one statement on PostgreSQL, one part for all their coupons)
/// each take their own coupon, marked with their order; two orders of one statement with
/// one coupon break its CHECK, and written again alone, the first has it.
#[tokio::test]
async fn coupons_of_orders_written_together_go_to_their_own_orders() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product, sku) = another_product(&app, &f, 50, false).await;
    let t = template(&app, &admin, fixed("5", "0", 10, 1)).await;
    let at = chrono::Utc::now().trunc_subsecs(6);
    let mut checkouts = Vec::new();
    for i in 0..4 {
        let buyer = fixtures::member(&app, &format!("together{i}"), Tier::Buyer, None).await;
        claim(&app, &token_of(&app, &buyer), &t).await;
        let c = coupon::Entity::find()
            .filter(coupon::Column::MemberId.eq(buyer.id))
            .one(app.db())
            .await
            .expect("query")
            .expect("coupon");
        let mut order = checkout(buyer.id, product, sku, 1, at + Duration::microseconds(i));
        order.coupon = Some(c.id);
        order.order.coupon_id = Some(c.id);
        checkouts.push(order);
    }
    let last = checkouts.pop().expect("four checkouts");
    let outcomes = app.state.checkouts.write_all(&checkouts).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(app.metric("pushhand_checkout_splits_total").await, 0.0);
    for c in &checkouts {
        assert_eq!(coupon_use(&app, c).await, used(c));
    }

    // The fourth buyer's coupon in two orders of one statement.
    let mut twin = checkout(last.order.buyer_id, product, sku, 1, at);
    twin.coupon = last.coupon;
    twin.order.coupon_id = last.coupon;
    let pair = [last, twin];
    let outcomes = app.state.checkouts.write_all(&pair).await;
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(
        outcomes[1]
            .as_ref()
            .is_err_and(pushhand::db::is_check_violation),
        "{outcomes:?}"
    );
    assert_eq!(app.metric("pushhand_checkout_splits_total").await, 1.0);
    assert_eq!(coupon_use(&app, &pair[0]).await, used(&pair[0]));
    assert_eq!(rows_of(&app, &pair[1]).await, (None, vec![]));
    assert_eq!(stock(&app, sku).await, 50 - 4);
}

/// What a coupon of `c`'s says of its use: `in_use`, the order, when.
async fn coupon_use(
    app: &TestApp,
    c: &Checkout,
) -> (i32, Option<Uuid>, Option<chrono::DateTime<chrono::Utc>>) {
    let c = coupon::Entity::find_by_id(c.coupon.expect("a coupon"))
        .one(app.db())
        .await
        .expect("query")
        .expect("coupon");
    (c.in_use, c.order_id, c.used_at)
}

/// The use `c` makes of its coupon.
fn used(c: &Checkout) -> (i32, Option<Uuid>, Option<chrono::DateTime<chrono::Utc>>) {
    (1, Some(c.order.id), Some(c.order.created_at))
}

/// A published product at `price` (fen) with a self-purchase rebate of `rate_bp`: its SKU.
async fn priced_product(app: &TestApp, f: &fixtures::Fixture, price: i64, rate_bp: i32) -> Uuid {
    let listing = fixtures::Listing {
        name: format!("随机商品 {price}"),
        price_fen: price,
        rebate_bp: rate_bp,
        team_bp: 0,
        ..fixtures::Listing::usual(f, 10_000)
    };
    fixtures::listed_product(app, f, listing).await.1
}

/// Fen of a decimal answer ("195.67" → 19567).
fn fen(v: &Value) -> i64 {
    let d: rust_decimal::Decimal = v
        .as_str()
        .unwrap_or_else(|| panic!("an amount: {v}"))
        .parse()
        .expect("decimal");
    i64::try_from(d * rust_decimal::Decimal::from(100)).expect("fen")
}

/// The money rules of #29 on random carts, coupons and partial refunds (seeded: the seed is
/// in every message; `PUSHHAND_PROP_SEED` replays one): the lines' paid amounts add up to
/// what the buyer paid and their coupon shares to the discount; every rebate is its rate ×
/// its line's paid amount, rounded down to the fen; a line's refunds through the provider
/// are the cumulative portions of its paid amount and never more than it.
#[tokio::test]
async fn money_rules_hold_for_random_carts_coupons_and_partial_refunds() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("PUSHHAND_PROP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let mut products = Vec::new();
    for _ in 0..6 {
        let price = rng.random_range(1_000..=99_999);
        let rate = rng.random_range(100..=2_500);
        products.push((priced_product(&app, &f, price, rate).await, rate));
    }
    const ORDER: &str = "query($o: ID!) { node(id: $o) { ... on Order { total discount
      lines { id quantity amount couponShare paidAmount refundedQuantity refunds { amount } } } } }";
    const REFUND: &str =
        "mutation($l: ID!, $q: Int) { refundOrderLine(orderLineId: $l, quantity: $q) { status } }";
    const OWN: &str = "{ me { earnings(first: 50) { edges { node { kind amount
      explanation { baseAmount rate uncappedAmount } } } } } }";
    for round in 0..10 {
        let at = format!("seed {seed}, round {round}");
        let buyer = fixtures::member(&app, &format!("prop{round}"), Tier::PushHand, None).await;
        let token = token_of(&app, &buyer);
        let coupon = if rng.random_bool(0.5) {
            let off = rng.random_range(1..=999);
            json!({ "name": "随机立减", "kind": "FIXED", "amountOff": format!("{}.{:02}", off / 100, off % 100),
                    "scope": "ALL", "validDays": 30, "totalQuantity": 1, "perMemberLimit": 1,
                    "distribution": "CLAIM" })
        } else {
            let rate = rng.random_range(1..=90);
            let mut t = json!({ "name": "随机折扣", "kind": "PERCENT", "rateOff": format!("0.{rate:02}"),
                    "scope": "ALL", "validDays": 30, "totalQuantity": 1, "perMemberLimit": 1,
                    "distribution": "CLAIM" });
            if rng.random_bool(0.5) {
                t["maxOff"] = json!(format!("{}.00", rng.random_range(1..=300)));
            }
            t
        };
        let t = template(&app, &admin, coupon.clone()).await;
        let c = claim(&app, &token, &t).await;
        let n = rng.random_range(1..=4);
        let mut picked: Vec<usize> = (0..products.len()).collect();
        for i in 0..n {
            let j = rng.random_range(i..picked.len());
            picked.swap(i, j);
        }
        let lines: Vec<Value> = picked[..n]
            .iter()
            .map(|&i| line(products[i].0, rng.random_range(1..=3)))
            .collect();
        let placed = app
            .gql_as(
                &token,
                PLACE,
                json!({ "i": { "lines": lines, "couponId": c } }),
            )
            .await;
        let o = &placed["data"]["placeOrder"];
        assert!(o["id"].is_string(), "{at}: {coupon} {lines:?} → {placed}");
        let paid: i64 = o["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| fen(&l["paidAmount"]))
            .sum();
        let shares: i64 = o["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| fen(&l["couponShare"]))
            .sum();
        assert_eq!(
            paid,
            fen(&o["total"]),
            "{at}: paid amounts add up to the total: {o}"
        );
        assert_eq!(
            shares,
            fen(&o["discount"]),
            "{at}: shares add up to the discount: {o}"
        );
        for l in o["lines"].as_array().expect("lines") {
            assert_eq!(
                fen(&l["amount"]) - fen(&l["couponShare"]),
                fen(&l["paidAmount"]),
                "{at}: {l}"
            );
            assert!(
                fen(&l["couponShare"]) >= 0 && fen(&l["paidAmount"]) >= 0,
                "{at}: {l}"
            );
        }
        let order_id = o["id"].as_str().expect("id");
        // Paid through the sandbox provider, so refunds go back through it with amounts.
        let intent = app
            .data_as(
                &token,
                "mutation($o: ID!) { createPayment(orderId: $o, channel: SANDBOX) { id } }",
                json!({ "o": order_id }),
            )
            .await;
        let intent = intent["createPayment"]["id"].as_str().expect("intent");
        let paid = app
            .client
            .post(app.url(&format!("/payments/sandbox/{intent}/pay")))
            .send()
            .await
            .expect("sent");
        assert_eq!(paid.status(), 204, "{at}");

        // Every rebate: rate × its line's paid amount, rounded down to the fen.
        let own = app.data_as(&token, OWN, json!({})).await;
        let mut bases: Vec<i64> = Vec::new();
        for e in own["me"]["earnings"]["edges"].as_array().expect("edges") {
            let node = &e["node"];
            let x = &node["explanation"];
            let rate: rust_decimal::Decimal =
                x["rate"].as_str().expect("rate").parse().expect("rate");
            let base = fen(&x["baseAmount"]);
            let by_rate = (rate * rust_decimal::Decimal::from(base)).floor();
            let by_rate = i64::try_from(by_rate).expect("fen");
            if x["uncappedAmount"].is_string() {
                // Cut by the 30 % cap: what the rate gave is stated, and more than was paid.
                assert_eq!(fen(&x["uncappedAmount"]), by_rate, "{at}: {node}");
                assert!(fen(&node["amount"]) < by_rate, "{at}: {node}");
            } else {
                assert_eq!(
                    fen(&node["amount"]),
                    by_rate,
                    "{at}: rate × base, floored: {node}"
                );
            }
            bases.push(base);
        }
        let mut line_paid: Vec<i64> = o["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| fen(&l["paidAmount"]))
            .filter(|p| *p > 0)
            .collect();
        bases.sort_unstable();
        line_paid.sort_unstable();
        assert_eq!(
            bases, line_paid,
            "{at}: a rebate per line, on its paid amount: {own}"
        );

        // Partial refunds, a random number of units of random lines, in random steps.
        let before = app.data_as(&token, ORDER, json!({ "o": order_id })).await;
        for l in before["node"]["lines"].as_array().expect("lines") {
            let q = l["quantity"].as_i64().expect("quantity") as i32;
            let mut done = 0;
            while done < q && rng.random_bool(0.6) {
                let step = rng.random_range(1..=q - done);
                let r = app
                    .gql_as(&admin, REFUND, json!({ "l": l["id"], "q": step }))
                    .await;
                assert!(r.get("errors").is_none(), "{at}: refund {step} of {l}: {r}");
                // The provider confirms it.
                for row in entity::refund::Entity::find()
                    .filter(entity::refund::Column::Status.eq(entity::refund::Status::Processing))
                    .all(app.db())
                    .await
                    .expect("refunds")
                {
                    let url = format!("/payments/sandbox/refunds/{}/succeed", row.id);
                    let ok = app.client.post(app.url(&url)).send().await.expect("sent");
                    assert_eq!(ok.status(), 204, "{at}");
                }
                done += step;
            }
        }
        let after = app.data_as(&token, ORDER, json!({ "o": order_id })).await;
        for l in after["node"]["lines"].as_array().expect("lines") {
            let q = l["quantity"].as_i64().expect("quantity") as i32;
            let refunded_q = l["refundedQuantity"].as_i64().expect("refunded") as i32;
            let back: i64 = l["refunds"]
                .as_array()
                .expect("refunds")
                .iter()
                .map(|r| fen(&r["amount"]))
                .sum();
            let paid = fen(&l["paidAmount"]);
            assert_eq!(
                back,
                pushhand::service::earnings::refund_portion(paid, q, 0, refunded_q),
                "{at}: refunds are the paid amount's portions: {l}"
            );
            assert!(back <= paid, "{at}: never more than was paid: {l}");
        }
    }
}
