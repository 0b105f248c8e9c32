//! Orders and money: the §2.4 rules with hand-computed amounts, the whole path from checkout
//! to payout and clawback through GraphQL, and the concurrency that must never double or lose
//! a fen.

use std::str::FromStr;

use chrono::Duration;
use entity::{Money, Rate, earning};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::earnings::{Attribution, LineFacts, Person, Policy, plan};
use pushhand::service::members::CliRole;
use pushhand::service::{ledger, orders as orders_svc};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::{self, gid};
use crate::helpers::{PASSWORD, TestApp, error_code};

fn money(s: &str) -> Money {
    Money::from_decimal(Decimal::from_str(s).expect("decimal")).expect("two places")
}

fn policy(levels: u8) -> Policy {
    Policy {
        commission_levels: levels,
        membership_reward: money("60.00"),
        membership_reward_daily_cap: None,
    }
}

fn person() -> Person {
    Person {
        id: Uuid::now_v7(),
        frozen: false,
    }
}

fn line(amount: &str, rate: i32, team: i32) -> LineFacts {
    LineFacts {
        amount: money(amount),
        quantity: 1,
        rebate_rate: Rate::from_bp(rate),
        team_rebate_rate: Rate::from_bp(team),
        membership_activity: false,
    }
}

fn amounts(planned: &[pushhand::service::earnings::Planned]) -> Vec<(earning::Kind, i16, String)> {
    planned
        .iter()
        .map(|p| (p.kind, p.level, p.amount.to_string()))
        .collect()
}

/// A rule case: name, line, attribution, commission levels, expected (kind, level, amount).
type RuleCase = (
    &'static str,
    LineFacts,
    Attribution,
    u8,
    Vec<(earning::Kind, i16, &'static str)>,
);

#[test]
fn rules_with_hand_computed_amounts() {
    use earning::Kind::*;
    let (me, up1, up2) = (person(), person(), person());
    let link = Uuid::now_v7();
    let binding = Uuid::now_v7();
    let cases: Vec<RuleCase> = vec![
        // 199.00 × 15 % = 29.85; × 5 % = 9.95.
        (
            "self purchase",
            line("199.00", 1500, 500),
            Attribution::SelfPurchase { buyer: me },
            2,
            vec![(SelfPurchase, 1, "29.85"), (TeamRebate, 2, "9.95")],
        ),
        (
            "promotion",
            line("199.00", 1500, 500),
            Attribution::Promotion {
                sharer: me,
                share_link: Some(link),
                note: None,
            },
            2,
            vec![(Promotion, 1, "29.85"), (TeamRebate, 2, "9.95")],
        ),
        (
            "bound",
            line("199.00", 1500, 500),
            Attribution::Bound {
                upline: me,
                binding,
                partner: false,
            },
            2,
            vec![(BoundRebate, 1, "29.85"), (TeamRebate, 2, "9.95")],
        ),
        (
            "partner",
            line("199.00", 1500, 500),
            Attribution::Bound {
                upline: me,
                binding,
                partner: true,
            },
            2,
            vec![(PartnerReward, 1, "29.85"), (TeamRebate, 2, "9.95")],
        ),
        // Rounding down at the fen: 33.33 × 15 % = 4.9995 → 4.99; × 5 % = 1.6665 → 1.66.
        (
            "rounds down",
            line("33.33", 1500, 500),
            Attribution::SelfPurchase { buyer: me },
            2,
            vec![(SelfPurchase, 1, "4.99"), (TeamRebate, 2, "1.66")],
        ),
        // 0.06 × 15 % = 0.009 → nothing at all (no zero earnings).
        (
            "below a fen",
            line("0.06", 1500, 500),
            Attribution::SelfPurchase { buyer: me },
            2,
            vec![],
        ),
        (
            "one level",
            line("199.00", 1500, 500),
            Attribution::SelfPurchase { buyer: me },
            1,
            vec![(SelfPurchase, 1, "29.85")],
        ),
        // Three levels, 20 % + 10 % + 10 %: the 30 % cap leaves nothing for level 3.
        (
            "cap",
            line("100.00", 2000, 1000),
            Attribution::SelfPurchase { buyer: me },
            3,
            vec![(SelfPurchase, 1, "20.00"), (TeamRebate, 2, "10.00")],
        ),
        // 18 % + 6 % + 6 % of 99.99: 17.99 + 5.99 + 5.99 = 29.97 ≤ 29.99 (the cap).
        (
            "three levels",
            line("99.99", 1800, 600),
            Attribution::SelfPurchase { buyer: me },
            3,
            vec![
                (SelfPurchase, 1, "17.99"),
                (TeamRebate, 2, "5.99"),
                (TeamRebate, 3, "5.99"),
            ],
        ),
        // 25 % + 5 % + 5 % of 10.00: level 3 is cut from 0.50 to what is left (0.00).
        (
            "cap cuts level 3",
            line("10.00", 2500, 500),
            Attribution::SelfPurchase { buyer: me },
            3,
            vec![(SelfPurchase, 1, "2.50"), (TeamRebate, 2, "0.50")],
        ),
        (
            "nobody",
            line("199.00", 1500, 500),
            Attribution::Nobody,
            2,
            vec![],
        ),
    ];
    for (name, facts, who, levels, expected) in cases {
        let got = plan(&facts, who, [Some(up1), Some(up2)], &policy(levels));
        let expected: Vec<(earning::Kind, i16, String)> = expected
            .into_iter()
            .map(|(k, l, a)| (k, l, a.to_owned()))
            .collect();
        assert_eq!(amounts(&got), expected, "{name}");
        let total: i64 = got.iter().map(|p| p.amount.fen()).sum();
        assert!(
            total * 10_000 <= facts.amount.fen() * 3_000,
            "{name}: never above 30 % of the line"
        );
        assert!(
            got.iter().all(
                |p| p.explanation.policy_version == pushhand::service::earnings::POLICY_VERSION
            )
        );
    }
    // The cut is explained.
    let cut = plan(
        &line("10.00", 2500, 1000),
        Attribution::SelfPurchase { buyer: me },
        [Some(up1), Some(up2)],
        &policy(3),
    );
    assert_eq!(cut[1].amount, money("0.50"));
    assert_eq!(
        cut[1].explanation.uncapped_amount,
        Some(Decimal::from_str("1.00").expect("d"))
    );
}

#[test]
fn frozen_members_earn_nothing_and_membership_sales_pay_a_fixed_reward() {
    use earning::Kind::*;
    let (me, up1) = (person(), person());
    let frozen = Person {
        frozen: true,
        ..person()
    };
    let got = plan(
        &line("199.00", 1500, 500),
        Attribution::SelfPurchase { buyer: frozen },
        [Some(up1), None],
        &policy(2),
    );
    assert_eq!(
        amounts(&got),
        vec![(TeamRebate, 2, "9.95".to_owned())],
        "the chain continues past a frozen member"
    );
    assert_eq!(got[0].member, up1.id);

    let mut membership = line("399.00", 1500, 500);
    membership.membership_activity = true;
    membership.quantity = 2;
    let got = plan(
        &membership,
        Attribution::Promotion {
            sharer: me,
            share_link: Some(Uuid::now_v7()),
            note: None,
        },
        [Some(up1), None],
        &policy(2),
    );
    assert_eq!(
        amounts(&got),
        vec![(MembershipReward, 1, "120.00".to_owned())],
        "60.00 per unit, no team rebate"
    );
    assert_eq!(got[0].explanation.units, Some(2));
    // A push-hand buying the membership product for itself gets the ordinary percentages.
    let got = plan(
        &membership,
        Attribution::SelfPurchase { buyer: me },
        [Some(up1), None],
        &policy(2),
    );
    // (The line's amount is 399.00: 15 % = 59.85, 5 % = 19.95.)
    assert_eq!(
        amounts(&got),
        vec![
            (SelfPurchase, 1, "59.85".to_owned()),
            (TeamRebate, 2, "19.95".to_owned())
        ]
    );
}

/// A published product with known numbers: 199.00, 15 % / 5 %, `stock` units.
pub(crate) async fn product(app: &TestApp, stock: i32, membership: bool) -> (Uuid, Uuid) {
    let f = fixtures::catalog(app.db(), 0).await;
    another_product(app, &f, stock, membership).await
}

/// A product as [`product`] makes, in a catalog that is already there.
pub(crate) async fn another_product(
    app: &TestApp,
    f: &fixtures::Fixture,
    stock: i32,
    membership: bool,
) -> (Uuid, Uuid) {
    let listing = fixtures::Listing {
        membership,
        ..fixtures::Listing::usual(f, stock)
    };
    fixtures::listed_product(app, f, listing).await
}

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

const ORDER: &str = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status total lines { id amount } } }";
const PAY: &str =
    "mutation($i: ConfirmPaymentInput!) { confirmPayment(input: $i) { status paymentReference } }";
const SUMMARY: &str = "{ me { earningsSummary { pending available reserved withdrawn lifetime thisMonth }
  earnings(first: 50) { edges { node { id kind status amount level settleAfter
    explanation { rule level baseAmount rate uncappedAmount shareLinkId policyVersion summary } } } } } }";

pub(crate) async fn order(
    app: &TestApp,
    token: &str,
    sku: Uuid,
    qty: i32,
    share: Option<&str>,
) -> Value {
    app.gql_as(token, ORDER, json!({ "i": { "lines": [{ "skuId": gid(Kind::Sku, sku), "quantity": qty, "shareCode": share }] } })).await
}

pub(crate) async fn pay(
    app: &TestApp,
    admin: &str,
    order: &str,
    reference: &str,
    amount: &str,
) -> Value {
    app.gql_as(
        admin,
        PAY,
        json!({ "i": { "orderId": order, "paymentReference": reference, "amount": amount } }),
    )
    .await
}

fn summary(v: &Value) -> Value {
    v["me"]["earningsSummary"].clone()
}

#[tokio::test]
async fn share_link_sale_to_payout_and_clawback() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (founder_token, founder) = app.user("founder@example.com", CliRole::PushHand).await;
    let x = app
        .register("x@example.com", founder.invite_code.as_deref(), None)
        .await;
    assert!(x["data"].is_object(), "{x}");
    let x_token = app.login("x@example.com", PASSWORD).await;
    let buyer = app.register("buyer@example.com", None, None).await;
    assert!(buyer["data"].is_object());
    let buyer_token = app.login("buyer@example.com", PASSWORD).await;
    let (product_id, sku) = product(&app, 10, false).await;

    // X shares; the buyer orders through the link.
    let link = app
        .data_as(
            &x_token,
            "mutation($p: ID!) { createShareLink(productId: $p) { code url } }",
            json!({ "p": gid(Kind::Product, product_id) }),
        )
        .await;
    let code = link["createShareLink"]["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let again = app
        .data_as(
            &x_token,
            "mutation($p: ID!) { createShareLink(productId: $p) { code } }",
            json!({ "p": gid(Kind::Product, product_id) }),
        )
        .await;
    assert_eq!(
        again["createShareLink"]["code"],
        json!(code),
        "one link per member and product"
    );
    let placed = order(&app, &buyer_token, sku, 1, Some(&code)).await;
    let o = &placed["data"]["placeOrder"];
    assert_eq!(o["status"], json!("PENDING_PAYMENT"), "{placed}");
    assert_eq!(o["total"], json!("199.00"));
    let order_id = o["id"].as_str().expect("id").to_owned();
    let line_id = o["lines"][0]["id"].as_str().expect("line").to_owned();

    // The provider calls back 200 times at once: one transition, one set of earnings.
    let results =
        join_all((0..200).map(|_| pay(&app, &admin, &order_id, "wx-pay-0001", "199.00"))).await;
    for r in &results {
        assert_eq!(r["data"]["confirmPayment"]["status"], json!("PAID"), "{r}");
    }
    let xs = app.data_as(&x_token, SUMMARY, json!({})).await;
    assert_eq!(summary(&xs)["pending"], json!("29.85"));
    let edges = xs["me"]["earnings"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert_eq!(edges.len(), 1, "exactly one earning for X");
    let e = &edges[0]["node"];
    assert_eq!(
        (e["kind"].clone(), e["level"].clone(), e["status"].clone()),
        (json!("PROMOTION"), json!(1), json!("PENDING"))
    );
    assert_eq!(e["explanation"]["rate"], json!("0.15"));
    assert_eq!(e["explanation"]["baseAmount"], json!("199.00"));
    assert!(e["explanation"]["shareLinkId"].is_string());
    assert!(
        e["explanation"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("15% of 199.00"))
    );
    let fs = app.data_as(&founder_token, SUMMARY, json!({})).await;
    assert_eq!(
        summary(&fs)["pending"],
        json!("9.95"),
        "the founder's team rebate"
    );
    assert_eq!(
        fs["me"]["earnings"]["edges"][0]["node"]["kind"],
        json!("TEAM_REBATE")
    );
    let bs = app.data_as(&buyer_token, SUMMARY, json!({})).await;
    assert_eq!(
        summary(&bs)["lifetime"],
        json!("0.00"),
        "a plain buyer earns nothing"
    );

    // Ship, receive; nothing settles before the return window has passed.
    app.data_as(
        &admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": order_id }),
    )
    .await;
    let resp = app
        .gql_as(
            &x_token,
            "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
            json!({ "o": order_id }),
        )
        .await;
    assert_eq!(
        error_code(&resp),
        Some("NOT_FOUND"),
        "only the buyer confirms receipt"
    );
    app.data_as(
        &buyer_token,
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
        json!({ "o": order_id }),
    )
    .await;
    let settle = "mutation($t: DateTime) { runSettlement(asOf: $t) { settled amount } }";
    let early = app
        .data_as(
            &admin,
            settle,
            json!({ "t": (app.clock_now() + Duration::days(6)).to_rfc3339() }),
        )
        .await;
    assert_eq!(
        early["runSettlement"],
        json!({ "settled": 0, "amount": "0.00" })
    );
    app.clock.advance(Duration::days(8));
    let due = app.data_as(&admin, settle, json!({ "t": null })).await;
    assert_eq!(
        due["runSettlement"],
        json!({ "settled": 2, "amount": "39.80" })
    );
    let replay = app.data_as(&admin, settle, json!({ "t": null })).await;
    assert_eq!(
        replay["runSettlement"]["settled"],
        json!(0),
        "settling again changes nothing"
    );
    let xs = app.data_as(&x_token, SUMMARY, json!({})).await;
    assert_eq!(summary(&xs)["available"], json!("29.85"));
    assert_eq!(summary(&xs)["pending"], json!("0.00"));

    // X withdraws; the admin pays out.
    let withdraw = "mutation($a: Decimal!, $k: String!) { requestWithdrawal(amount: $a, idempotencyKey: $k) { id amount status } }";
    let w = app
        .data_as(&x_token, withdraw, json!({ "a": "29.85", "k": "payout-1" }))
        .await;
    let wid = w["requestWithdrawal"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let review =
        "mutation($id: ID!, $ok: Boolean!) { reviewWithdrawal(id: $id, approve: $ok) { status } }";
    app.data_as(&admin, review, json!({ "id": wid, "ok": true }))
        .await;
    let resp = app
        .gql_as(&admin, review, json!({ "id": wid, "ok": true }))
        .await;
    assert_eq!(error_code(&resp), Some("ALREADY_REVIEWED"), "paid out once");
    // A MANUAL payout: the admin pays the bank card and records the reference.
    let paid = app
        .data_as(
            &admin,
            "mutation($id: ID!) { markPayoutPaid(withdrawalId: $id, reference: \"BANK-1\") { status } }",
            json!({ "id": wid }),
        )
        .await;
    assert_eq!(paid["markPayoutPaid"]["status"], json!("PAID"));
    let xs = app.data_as(&x_token, SUMMARY, json!({})).await;
    assert_eq!(summary(&xs)["withdrawn"], json!("29.85"));
    assert_eq!(summary(&xs)["available"], json!("0.00"));

    // A refund after the payout claws the earning back: the balance goes negative and
    // blocks withdrawals.
    let refund = "mutation($l: ID!) { refundOrderLine(orderLineId: $l) { status } }";
    let r = app.data_as(&admin, refund, json!({ "l": line_id })).await;
    assert_eq!(r["refundOrderLine"]["status"], json!("REFUNDED"));
    let resp = app.gql_as(&admin, refund, json!({ "l": line_id })).await;
    assert_eq!(error_code(&resp), Some("ALREADY_REFUNDED"));
    let xs = app.data_as(&x_token, SUMMARY, json!({})).await;
    assert_eq!(summary(&xs)["available"], json!("-29.85"));
    assert_eq!(summary(&xs)["lifetime"], json!("0.00"));
    assert_eq!(
        xs["me"]["earnings"]["edges"][0]["node"]["kind"],
        json!("ADJUSTMENT")
    );
    assert_eq!(
        xs["me"]["earnings"]["edges"][0]["node"]["amount"],
        json!("-29.85")
    );
    let resp = app
        .gql_as(&x_token, withdraw, json!({ "a": "10.00", "k": "payout-2" }))
        .await;
    assert_eq!(error_code(&resp), Some("INSUFFICIENT_BALANCE"));

    // The books balance.
    let check = app
        .data_as(
            &admin,
            "{ ledgerCheck { membersChecked mismatches { memberId } } }",
            json!({}),
        )
        .await;
    assert_eq!(check["ledgerCheck"]["mismatches"], json!([]));
    assert!(
        check["ledgerCheck"]["membersChecked"]
            .as_i64()
            .is_some_and(|n| n >= 2)
    );
}

#[tokio::test]
async fn payment_callbacks_are_idempotent_and_checked() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (token, _) = app.user("ph@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 10, false).await;
    let first = order(&app, &token, sku, 1, None).await["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let second = order(&app, &token, sku, 2, None).await["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    assert_eq!(
        error_code(&pay(&app, &admin, &first, "ref-1", "198.99").await),
        Some("PAYMENT_MISMATCH")
    );
    assert_eq!(
        error_code(&pay(&app, &admin, &first, "ref-1", "199.001").await),
        Some("VALIDATION")
    );
    let s = app.data_as(&token, SUMMARY, json!({})).await;
    assert_eq!(
        summary(&s)["lifetime"],
        json!("0.00"),
        "a refused payment books nothing"
    );

    assert_eq!(
        pay(&app, &admin, &first, "ref-1", "199.00").await["data"]["confirmPayment"]["status"],
        json!("PAID")
    );
    assert_eq!(
        pay(&app, &admin, &first, "ref-1", "199.00").await["data"]["confirmPayment"]["paymentReference"],
        json!("ref-1")
    );
    assert_eq!(
        error_code(&pay(&app, &admin, &first, "ref-2", "199.00").await),
        Some("PAYMENT_CONFLICT")
    );
    assert_eq!(
        error_code(&pay(&app, &admin, &second, "ref-1", "398.00").await),
        Some("PAYMENT_CONFLICT"),
        "a reference pays one order"
    );
    let resp = app
        .gql_as(
            &token,
            PAY,
            json!({ "i": { "orderId": second, "paymentReference": "x", "amount": "398.00" } }),
        )
        .await;
    assert_eq!(
        error_code(&resp),
        Some("FORBIDDEN"),
        "only the provider (admin) confirms payments"
    );
    let s = app.data_as(&token, SUMMARY, json!({})).await;
    assert_eq!(
        summary(&s)["pending"],
        json!("29.85"),
        "self purchase, booked once"
    );
}

#[tokio::test]
async fn the_last_units_are_never_oversold() {
    // One buyer races for the stock: the cap on unpaid orders is not what this measures.
    let app = TestApp::spawn_with(&["--max-unpaid-orders", "100"]).await;
    let (token, _) = app.user("ph@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 5, false).await;
    let results = join_all((0..20).map(|_| order(&app, &token, sku, 1, None))).await;
    let ok = results
        .iter()
        .filter(|r| r["data"]["placeOrder"].is_object())
        .count();
    let out = results
        .iter()
        .filter(|r| error_code(r) == Some("OUT_OF_STOCK"))
        .count();
    assert_eq!((ok, out), (5, 15), "{results:#?}");
    let left = entity::sku::Entity::find_by_id(sku)
        .one(app.db())
        .await
        .expect("query")
        .expect("sku");
    assert_eq!(left.stock, 0);

    // Unpaid orders expire and give their stock back.
    app.clock.advance(Duration::minutes(31));
    let expired = orders_svc::expire_unpaid(app.db(), &app.state.events, app.clock_now())
        .await
        .map_err(anyhow::Error::from)
        .expect("expire");
    assert_eq!(expired, 5);
    let left = entity::sku::Entity::find_by_id(sku)
        .one(app.db())
        .await
        .expect("query")
        .expect("sku");
    assert_eq!(left.stock, 5);
    let resp = order(&app, &token, sku, 0, None).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    let resp = order(&app, &token, sku, 6, None).await;
    assert_eq!(error_code(&resp), Some("OUT_OF_STOCK"));
}

#[tokio::test]
async fn a_checkout_short_of_one_sku_takes_nothing() {
    let app = TestApp::spawn().await;
    let (token, buyer) = app.user("short@example.com", CliRole::PushHand).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (_, plenty) = another_product(&app, &f, 10, false).await;
    let (_, scarce) = another_product(&app, &f, 3, false).await;
    let (p, q) = (gid(Kind::Sku, plenty), gid(Kind::Sku, scarce));
    let place = |lines: serde_json::Value| {
        let (app, token) = (&app, &token);
        async move {
            app.gql_as(token, ORDER, json!({ "i": { "lines": lines } }))
                .await
        }
    };
    // The scarce SKU comes second in the request and is short by one unit.
    let resp = place(json!([
        { "skuId": p, "quantity": 2 },
        { "skuId": q, "quantity": 4 }
    ]))
    .await;
    assert_eq!(error_code(&resp), Some("OUT_OF_STOCK"), "{resp}");
    let message = resp["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("fewer than 4"), "{message}");
    // Two lines of one SKU take their sum: 2 + 2 > 3.
    let resp = place(json!([
        { "skuId": q, "quantity": 2 },
        { "skuId": q, "quantity": 2 }
    ]))
    .await;
    assert_eq!(error_code(&resp), Some("OUT_OF_STOCK"), "{resp}");
    let db = app.db();
    let stock = |id: Uuid| async move {
        entity::sku::Entity::find_by_id(id)
            .one(db)
            .await
            .expect("query")
            .expect("sku")
            .stock
    };
    assert_eq!((stock(plenty).await, stock(scarce).await), (10, 3));
    let orders = entity::order::Entity::find()
        .filter(entity::order::Column::BuyerId.eq(buyer.id))
        .all(app.db())
        .await
        .expect("query");
    assert!(orders.is_empty(), "no order is half-written: {orders:?}");
    // What is there can be had, in one order.
    let resp = place(json!([
        { "skuId": p, "quantity": 2 },
        { "skuId": q, "quantity": 1 },
        { "skuId": q, "quantity": 2 }
    ]))
    .await;
    assert_eq!(
        resp["data"]["placeOrder"]["total"],
        json!("995.00"),
        "{resp}"
    );
    assert_eq!((stock(plenty).await, stock(scarce).await), (8, 0));
}

/// A member with `available` CNY settled, by a self purchase of `units` × 199.00 at 15 %.
async fn funded(app: &TestApp, admin: &str, email: &str, units: i32) -> String {
    let (token, _) = app.user(email, CliRole::PushHand).await;
    let (_, sku) = product(app, 100, false).await;
    let o = order(app, &token, sku, units, None).await["data"]["placeOrder"].clone();
    let id = o["id"].as_str().expect("id").to_owned();
    pay(
        app,
        admin,
        &id,
        &format!("ref-{email}"),
        o["total"].as_str().expect("total"),
    )
    .await;
    app.data_as(
        admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": id }),
    )
    .await;
    app.data_as(
        &token,
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
        json!({ "o": id }),
    )
    .await;
    let later = (app.clock_now() + Duration::days(8)).to_rfc3339();
    app.data_as(
        admin,
        "mutation($t: DateTime) { runSettlement(asOf: $t) { settled } }",
        json!({ "t": later }),
    )
    .await;
    token
}

const WITHDRAW: &str = "mutation($a: Decimal!, $k: String!) { requestWithdrawal(amount: $a, idempotencyKey: $k) { id amount fee status } }";

#[tokio::test]
async fn concurrent_withdrawals_never_overdraw() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    // 4 × 199.00 × 15 % = 119.40 available; 100 requests of 60.00 each: one fits.
    let token = funded(&app, &admin, "rich@example.com", 4).await;
    let s = app.data_as(&token, SUMMARY, json!({})).await;
    assert_eq!(summary(&s)["available"], json!("119.40"));
    let results = join_all((0..100).map(|i| {
        app.gql_as(
            &token,
            WITHDRAW,
            json!({ "a": "60.00", "k": format!("k-{i}") }),
        )
    }))
    .await;
    let ok = results
        .iter()
        .filter(|r| r["data"]["requestWithdrawal"].is_object())
        .count();
    let refused = results
        .iter()
        .filter(|r| error_code(r) == Some("INSUFFICIENT_BALANCE"))
        .count();
    assert_eq!((ok, refused), (1, 99));
    let s = app.data_as(&token, SUMMARY, json!({})).await;
    assert_eq!(summary(&s)["available"], json!("59.40"));
    assert_eq!(summary(&s)["reserved"], json!("60.00"));

    // Retries with one key, at once: the same withdrawal, reserved once.
    let same = join_all(
        (0..10).map(|_| app.gql_as(&token, WITHDRAW, json!({ "a": "20.00", "k": "retry" }))),
    )
    .await;
    let ids: std::collections::HashSet<String> = same
        .iter()
        .filter_map(|r| {
            r["data"]["requestWithdrawal"]["id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(ids.len(), 1, "{same:#?}");
    let s = app.data_as(&token, SUMMARY, json!({})).await;
    assert_eq!(summary(&s)["available"], json!("39.40"));
    let resp = app
        .gql_as(&token, WITHDRAW, json!({ "a": "25.00", "k": "retry" }))
        .await;
    assert_eq!(error_code(&resp), Some("IDEMPOTENCY_CONFLICT"));
    let check = app
        .data_as(
            &admin,
            "{ ledgerCheck { mismatches { memberId } } }",
            json!({}),
        )
        .await;
    assert_eq!(check["ledgerCheck"]["mismatches"], json!([]));
}

#[tokio::test]
async fn withdrawal_rules() {
    let app = TestApp::spawn_with(&["--withdrawal-fee-rate", "0.006"]).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let token = funded(&app, &admin, "m@example.com", 2).await; // 59.70 available
    assert_eq!(
        error_code(
            &app.gql_as(&token, WITHDRAW, json!({ "a": "9.99", "k": "a" }))
                .await
        ),
        Some("WITHDRAWAL_BELOW_MINIMUM")
    );
    assert_eq!(
        error_code(
            &app.gql_as(&token, WITHDRAW, json!({ "a": "59.71", "k": "b" }))
                .await
        ),
        Some("INSUFFICIENT_BALANCE")
    );
    assert_eq!(
        error_code(
            &app.gql_as(&token, WITHDRAW, json!({ "a": "10.001", "k": "c" }))
                .await
        ),
        Some("VALIDATION")
    );

    // 0.6 % of 50.00 = 0.30, kept as the fee.
    let w = app
        .data_as(&token, WITHDRAW, json!({ "a": "50.00", "k": "d" }))
        .await;
    assert_eq!(w["requestWithdrawal"]["fee"], json!("0.30"));
    // Rejected: the funds come back.
    let review =
        "mutation($id: ID!, $ok: Boolean!) { reviewWithdrawal(id: $id, approve: $ok) { status } }";
    app.data_as(
        &admin,
        review,
        json!({ "id": w["requestWithdrawal"]["id"], "ok": false }),
    )
    .await;
    let s = app.data_as(&token, SUMMARY, json!({})).await;
    assert_eq!(summary(&s)["available"], json!("59.70"));
    assert_eq!(summary(&s)["reserved"], json!("0.00"));

    // Frozen members cannot withdraw.
    let me = app.data_as(&token, "{ me { id } }", json!({})).await;
    app.data_as(
        &admin,
        "mutation($id: ID!) { freezeMember(memberId: $id, reason: \"review\") { frozen } }",
        json!({ "id": me["me"]["id"] }),
    )
    .await;
    let again = app.login("m@example.com", PASSWORD).await;
    assert_eq!(
        error_code(
            &app.gql_as(&again, WITHDRAW, json!({ "a": "20.00", "k": "e" }))
                .await
        ),
        Some("MEMBER_FROZEN")
    );
}

#[tokio::test]
async fn refunds_before_settlement_reverse_and_membership_sales_promote() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (x_token, x) = app.user("x@example.com", CliRole::PushHand).await;
    let (product_id, sku) = product(&app, 10, true).await;
    let link = app
        .data_as(
            &x_token,
            "mutation($p: ID!) { createShareLink(productId: $p) { code } }",
            json!({ "p": gid(Kind::Product, product_id) }),
        )
        .await;
    let code = link["createShareLink"]["code"]
        .as_str()
        .expect("code")
        .to_owned();
    app.register("b@example.com", None, None).await;
    let b_token = app.login("b@example.com", PASSWORD).await;

    // Two membership orders through X's link: 60.00 each to X.
    let mut ids = Vec::new();
    for i in 0..2 {
        let o = order(&app, &b_token, sku, 1, Some(&code)).await["data"]["placeOrder"].clone();
        pay(
            &app,
            &admin,
            o["id"].as_str().expect("id"),
            &format!("m-{i}"),
            "199.00",
        )
        .await;
        ids.push((
            o["id"].as_str().expect("id").to_owned(),
            o["lines"][0]["id"].as_str().expect("line").to_owned(),
        ));
    }
    let xs = app.data_as(&x_token, SUMMARY, json!({})).await;
    assert_eq!(summary(&xs)["pending"], json!("120.00"));
    assert_eq!(
        xs["me"]["earnings"]["edges"][0]["node"]["kind"],
        json!("MEMBERSHIP_REWARD")
    );

    // Refunding one before it settles reverses its reward.
    app.data_as(
        &admin,
        "mutation($l: ID!) { refundOrderLine(orderLineId: $l) { status } }",
        json!({ "l": ids[0].1 }),
    )
    .await;
    let xs = app.data_as(&x_token, SUMMARY, json!({})).await;
    assert_eq!(summary(&xs)["pending"], json!("60.00"));
    assert_eq!(summary(&xs)["lifetime"], json!("60.00"));
    let reversed = app
        .data_as(
            &x_token,
            "{ me { earnings(status: REVERSED) { edges { node { amount } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        reversed["me"]["earnings"]["edges"].as_array().map(Vec::len),
        Some(1)
    );

    // Completing the other makes the buyer a push-hand bound to X.
    app.data_as(
        &admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": ids[1].0 }),
    )
    .await;
    app.data_as(
        &b_token,
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
        json!({ "o": ids[1].0 }),
    )
    .await;
    let me = app
        .data_as(
            &b_token,
            "{ me { roles inviteCode upline { id } bindings { kind } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["roles"], json!(["PUSH_HAND"]));
    assert!(me["me"]["inviteCode"].is_string());
    assert_eq!(
        me["me"]["upline"]["id"],
        json!(gid(Kind::MemberProfile, x.id))
    );
    assert_eq!(
        me["me"]["bindings"][0]["kind"],
        json!("MEMBERSHIP_PURCHASE")
    );

    let (checked, mismatches) = ledger::check(app.db())
        .await
        .map_err(anyhow::Error::from)
        .expect("check");
    assert!(checked >= 1 && mismatches.is_empty(), "{mismatches:?}");
}

#[tokio::test]
async fn orders_earnings_and_withdrawals_are_private() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let token = funded(&app, &admin, "owner@example.com", 1).await;
    let (other, _) = app.user("other@example.com", CliRole::PushHand).await;
    let w = app
        .data_as(&token, WITHDRAW, json!({ "a": "10.00", "k": "w" }))
        .await;
    let mine = app
        .data_as(&token, "{ me { orders { edges { node { id lines { id } } } } earnings { edges { node { id } } } } }", json!({}))
        .await;
    let ids = [
        mine["me"]["orders"]["edges"][0]["node"]["id"].clone(),
        mine["me"]["orders"]["edges"][0]["node"]["lines"][0]["id"].clone(),
        mine["me"]["earnings"]["edges"][0]["node"]["id"].clone(),
        w["requestWithdrawal"]["id"].clone(),
    ];
    let q = "query($id: ID!) { node(id: $id) { id } }";
    for id in &ids {
        assert_eq!(
            app.data_as(&token, q, json!({ "id": id })).await["node"]["id"],
            *id,
            "the owner sees it"
        );
        assert_eq!(
            app.data_as(&admin, q, json!({ "id": id })).await["node"]["id"],
            *id,
            "admins see it"
        );
        let theirs = app.gql_as(&other, q, json!({ "id": id })).await;
        assert_eq!(error_code(&theirs), Some("NOT_FOUND"), "{id}: {theirs}");
        assert_eq!(
            error_code(&app.gql(q, json!({ "id": id })).await),
            Some("NOT_FOUND")
        );
    }
    let _ = Money::ZERO;
}

#[tokio::test]
async fn team_sales_and_the_earnings_chart() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (founder_token, founder) = app.user("founder@example.com", CliRole::PushHand).await;
    app.register("y@example.com", founder.invite_code.as_deref(), None)
        .await;
    let y = app.login("y@example.com", PASSWORD).await;
    let (_, sku) = product(&app, 10, false).await;
    let o = order(&app, &y, sku, 2, None).await["data"]["placeOrder"].clone();
    pay(
        &app,
        &admin,
        o["id"].as_str().expect("id"),
        "team-1",
        "398.00",
    )
    .await;

    let stats = "{ me { teamStats { salesThisMonth levels { level salesThisMonth } } } }";
    let s = app.data_as(&founder_token, stats, json!({})).await;
    assert_eq!(s["me"]["teamStats"]["salesThisMonth"], json!("398.00"));
    assert_eq!(
        s["me"]["teamStats"]["levels"][0],
        json!({ "level": 1, "salesThisMonth": "398.00" })
    );

    let today = app.clock_now();
    let chart = "query($f: DateTime!, $t: DateTime!) { me { earningsSeries(granularity: DAY, from: $f, to: $t) { period amount } } }";
    let from = (today - Duration::days(2)).to_rfc3339();
    let to = (today + Duration::days(1)).to_rfc3339();
    let c = app.data_as(&y, chart, json!({ "f": from, "t": to })).await;
    let points = c["me"]["earningsSeries"]
        .as_array()
        .expect("points")
        .clone();
    assert_eq!(points.len(), 3, "{points:?}");
    assert_eq!(points[0]["amount"], json!("0.00"));
    assert_eq!(
        points[2]["period"],
        json!(today.format("%Y-%m-%d").to_string())
    );
    assert_eq!(points[2]["amount"], json!("59.70"), "15 % of 398.00");
    let resp = app.gql_as(&y, chart, json!({ "f": to, "t": from })).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));

    // A refund takes the sale off the month it was paid in.
    app.data_as(
        &admin,
        "mutation($l: ID!) { refundOrderLine(orderLineId: $l) { status } }",
        json!({ "l": o["lines"][0]["id"] }),
    )
    .await;
    let s = app.data_as(&founder_token, stats, json!({})).await;
    assert_eq!(s["me"]["teamStats"]["salesThisMonth"], json!("0.00"));
}

#[tokio::test]
async fn shipped_orders_complete_by_themselves_after_the_configured_days() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (token, _) = app.user("ph@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 10, false).await;
    let o = order(&app, &token, sku, 1, None).await["data"]["placeOrder"].clone();
    let id = o["id"].as_str().expect("id").to_owned();
    pay(&app, &admin, &id, "auto-1", "199.00").await;
    app.data_as(
        &admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": id }),
    )
    .await;

    let (auto, window) = (Duration::days(10), Duration::days(7));
    app.clock.advance(Duration::days(9));
    let done =
        orders_svc::auto_complete(app.db(), &app.state.events, auto, window, app.clock_now())
            .await
            .map_err(anyhow::Error::from)
            .expect("run");
    assert_eq!(done, 0, "not yet: shipped nine days ago");
    app.clock.advance(Duration::days(2));
    let done =
        orders_svc::auto_complete(app.db(), &app.state.events, auto, window, app.clock_now())
            .await
            .map_err(anyhow::Error::from)
            .expect("run");
    assert_eq!(done, 1);
    let s = app.data_as(&token, "{ me { orders { edges { node { status } } } earnings { edges { node { settleAfter } } } } }", json!({})).await;
    assert_eq!(
        s["me"]["orders"]["edges"][0]["node"]["status"],
        json!("COMPLETED")
    );
    let settle_after: chrono::DateTime<chrono::Utc> =
        s["me"]["earnings"]["edges"][0]["node"]["settleAfter"]
            .as_str()
            .expect("window started")
            .parse()
            .expect("RFC 3339");
    assert!(
        (settle_after - (app.clock_now() + window))
            .num_seconds()
            .abs()
            < 5
    );
}

#[test]
fn partial_refunds_take_back_exactly_the_whole_in_parts() {
    use pushhand::service::earnings::refund_portion;
    // 14.99 over 3 units: 4.99, then 5.00, then 5.00 — never more than the earning.
    assert_eq!(refund_portion(1_499, 3, 0, 1), 499);
    assert_eq!(refund_portion(1_499, 3, 1, 2), 500);
    assert_eq!(refund_portion(1_499, 3, 2, 3), 500);
    for (amount, q) in [(1_499i64, 3i32), (1, 7), (9_999, 10), (12_345, 99)] {
        for split in 1..=q {
            let (mut total, mut before) = (0, 0);
            let step = split;
            while before < q {
                let after = (before + step).min(q);
                total += refund_portion(amount, q, before, after);
                before = after;
            }
            assert_eq!(total, amount, "{amount} over {q} in steps of {split}");
        }
    }
}

#[tokio::test]
async fn partial_refunds_reverse_in_proportion() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (founder_token, founder) = app.user("founder@example.com", CliRole::PushHand).await;
    app.register("y@example.com", founder.invite_code.as_deref(), None)
        .await;
    let y = app.login("y@example.com", PASSWORD).await;
    let (_, sku) = product(&app, 10, false).await;
    // 3 × 199.00 = 597.00: 15 % = 89.55 to y, 5 % = 29.85 to the founder.
    let o = order(&app, &y, sku, 3, None).await["data"]["placeOrder"].clone();
    pay(
        &app,
        &admin,
        o["id"].as_str().expect("id"),
        "partial-1",
        "597.00",
    )
    .await;
    let line = o["lines"][0]["id"].clone();
    let refund = "mutation($l: ID!, $q: Int) { refundOrderLine(orderLineId: $l, quantity: $q) { status lines { refundedQuantity } } }";

    let r = app
        .data_as(&admin, refund, json!({ "l": line, "q": 1 }))
        .await;
    assert_eq!(
        r["refundOrderLine"]["status"],
        json!("PAID"),
        "still paid: two units remain"
    );
    assert_eq!(
        r["refundOrderLine"]["lines"][0]["refundedQuantity"],
        json!(1)
    );
    let s = app.data_as(&y, SUMMARY, json!({})).await;
    assert_eq!(summary(&s)["pending"], json!("59.70"), "89.55 − 29.85");
    let f = app.data_as(&founder_token, SUMMARY, json!({})).await;
    assert_eq!(summary(&f)["pending"], json!("19.90"), "29.85 − 9.95");
    let resp = app
        .gql_as(&admin, refund, json!({ "l": line, "q": 3 }))
        .await;
    assert_eq!(
        error_code(&resp),
        Some("VALIDATION"),
        "only two units are left"
    );

    let r = app
        .data_as(&admin, refund, json!({ "l": line, "q": null }))
        .await;
    assert_eq!(r["refundOrderLine"]["status"], json!("REFUNDED"));
    let s = app.data_as(&y, SUMMARY, json!({})).await;
    assert_eq!(summary(&s)["pending"], json!("0.00"));
    assert_eq!(summary(&s)["lifetime"], json!("0.00"));
    let left = entity::sku::Entity::find_by_id(sku)
        .one(app.db())
        .await
        .expect("query")
        .expect("sku");
    assert_eq!(left.stock, 10, "every unit is back in stock");
    let check = app
        .data_as(
            &admin,
            "{ ledgerCheck { mismatches { memberId } } }",
            json!({}),
        )
        .await;
    assert_eq!(check["ledgerCheck"]["mismatches"], json!([]));
}

#[tokio::test]
async fn units_sold_follow_payments_and_refunds() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (token, _) = app.user("pusher@example.com", CliRole::PushHand).await;
    let (product_id, sku) = product(&app, 10, false).await;
    let sold = || async {
        let q = "query($p: ID!) { product(id: $p) { salesCount } }";
        app.data(q, json!({ "p": gid(Kind::Product, product_id) }))
            .await["product"]["salesCount"]
            .as_i64()
            .expect("salesCount")
    };
    assert_eq!(sold().await, 0);
    let placed = order(&app, &token, sku, 3, None).await;
    let o = &placed["data"]["placeOrder"];
    let id = o["id"].as_str().expect("id").to_owned();
    assert_eq!(sold().await, 0, "an unpaid order sells nothing");
    pay(&app, &admin, &id, "ref-sold", "597.00").await;
    assert_eq!(
        sold().await,
        0,
        "tallied, not yet written (the interval is a second)"
    );
    app.state.write_units_sold().await;
    assert_eq!(
        sold().await,
        3,
        "written: three units sold (and the cached answer is gone)"
    );
    app.data_as(
        &admin,
        "mutation($l: ID!) { refundOrderLine(orderLineId: $l, quantity: 1) { status } }",
        json!({ "l": o["lines"][0]["id"] }),
    )
    .await;
    app.state.write_units_sold().await;
    assert_eq!(sold().await, 2, "one unit came back");
}

/// The server writes the tallied units sold on its own, every interval, and once more when
/// it shuts down.
#[tokio::test]
async fn units_sold_are_written_every_interval_and_at_shutdown() {
    let mut app = TestApp::spawn_with(&["--units-sold-interval-ms", "50"]).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (token, _) = app.user("pusher@example.com", CliRole::PushHand).await;
    let (product_id, sku) = product(&app, 10, false).await;
    let q = "query($p: ID!) { product(id: $p) { salesCount } }";
    let vars = json!({ "p": gid(Kind::Product, product_id) });
    assert_eq!(app.data(q, vars.clone()).await["product"]["salesCount"], 0);
    let placed = order(&app, &token, sku, 2, None).await;
    let id = placed["data"]["placeOrder"]["id"].as_str().expect("id");
    pay(&app, &admin, id, "ref-interval", "398.00").await;
    let mut seen = json!(0);
    for _ in 0..200 {
        seen = app.data(q, vars.clone()).await["product"]["salesCount"].clone();
        if seen == json!(2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        seen, 2,
        "written within an interval, past the cached answer"
    );

    // At shutdown: an interval far longer than the test, so only the shutdown writes.
    let mut app2 = TestApp::spawn_sharing(&app, &["--units-sold-interval-ms", "3600000"]).await;
    let placed = order(&app2, &token, sku, 1, None).await;
    let id = placed["data"]["placeOrder"]["id"].as_str().expect("id");
    pay(&app2, &admin, id, "ref-shutdown", "199.00").await;
    let stored = || async {
        entity::product::Entity::find_by_id(product_id)
            .one(app.db())
            .await
            .expect("query")
            .expect("product")
            .sales_count
    };
    assert_eq!(stored().await, 2, "tallied on the second instance only");
    app2.begin_shutdown();
    app2.stopped
        .take()
        .expect("running")
        .await
        .expect("joined")
        .expect("stopped cleanly");
    assert_eq!(stored().await, 3, "written at shutdown");
    app.begin_shutdown();
}

/// Many orders of buyers in one team, paid at once: each payment moves the balances of the
/// buyer and its uplines in one statement at its end (on PostgreSQL), so concurrent payments
/// lock the same rows; in key order, none deadlocks, and every fen lands once. The units sold
/// are tallied and written meanwhile, by writes racing the payments: every unit lands once.
#[tokio::test]
async fn concurrent_payments_of_one_team_move_every_counter_once() {
    use sea_orm::EntityTrait;

    let app = TestApp::spawn().await;
    let Team {
        top,
        mid,
        buyers,
        product: product_id,
        orders,
    } = team(&app, 40, 3).await;
    let now = app.clock_now();
    let policy = policy(3);
    let paid = pay_all(&app, &orders, &policy, now);
    let writes = async {
        for _ in 0..40 {
            app.state.write_units_sold().await;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    };
    let (paid, _) = tokio::join!(paid, writes);
    app.state.write_units_sold().await;
    for p in &paid {
        assert!(p.is_ok(), "{p:?}");
    }

    let (members, mismatches) = ledger::check(app.db())
        .await
        .map_err(anyhow::Error::from)
        .expect("check");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert_eq!(members, 6, "four buyers and two uplines earned");
    let earnings = earning::Entity::find()
        .all(app.db())
        .await
        .expect("earnings");
    for m in [&top, &mid, &buyers[0], &buyers[3]] {
        let earned: i64 = earnings
            .iter()
            .filter(|e| e.member_id == m.id)
            .map(|e| e.amount.fen())
            .sum();
        let balance = entity::balance::Entity::find_by_id(m.id)
            .one(app.db())
            .await
            .expect("query")
            .expect("a balance row");
        assert!(earned > 0);
        assert_eq!(balance.pending.fen(), earned, "{}", m.display_name);
        assert_eq!(balance.lifetime.fen(), earned, "{}", m.display_name);
    }
    let units: i64 = orders.iter().map(|o| o.total.fen() / 19_900).sum();
    let sold = entity::product::Entity::find_by_id(product_id)
        .one(app.db())
        .await
        .expect("query")
        .expect("product");
    assert_eq!(sold.sales_count, units);
    assert_eq!(units, (0..40).map(|i| 1 + i % 3).sum::<i64>());
}

/// The daily cap on membership rewards holds under concurrent payments: twelve membership
/// orders shared by one push-hand, paid at once under a cap of 150.00, earn that push-hand
/// exactly 150.00 (60 + 60 + 30, the cut one saying so), whatever the interleaving; a refund
/// gives its reward's room back to the day, and the next payment takes it.
#[tokio::test]
async fn the_daily_cap_on_membership_rewards_holds_under_concurrent_payments() {
    use sea_orm::EntityTrait;

    let app = TestApp::spawn().await;
    let (x_token, x, mut orders) = membership_sales(&app, 13).await;
    let now = app.clock_now();
    let last = orders.pop().expect("a thirteenth order");
    let policy = Policy {
        membership_reward_daily_cap: Some(money("150.00")),
        ..policy(2)
    };
    let paid = pay_all(&app, &orders, &policy, now).await;
    for p in &paid {
        assert!(p.is_ok(), "every order is paid, capped or not: {p:?}");
    }
    let rewards = || async {
        let mut found: Vec<earning::Model> = earning::Entity::find()
            .all(app.db())
            .await
            .expect("earnings")
            .into_iter()
            .filter(|e| e.member_id == x.id && e.kind == earning::Kind::MembershipReward)
            .filter(|e| e.status != earning::Status::Reversed)
            .collect();
        found.sort_by_key(|e| std::cmp::Reverse(e.amount));
        found
    };
    let day = || reward_day(&app, x.id, now);
    let held = rewards().await;
    let amounts: Vec<i64> = held.iter().map(|e| e.amount.fen()).collect();
    assert_eq!(amounts, vec![6000, 6000, 3000], "60 + 60 + 30 under 150");
    assert_eq!(day().await, Some(15_000));
    let (_, mismatches) = ledger::check(app.db())
        .await
        .map_err(anyhow::Error::from)
        .expect("check");
    assert!(mismatches.is_empty(), "{mismatches:#?}");

    // The cut reward says what the fixed reward gave and why it is less.
    let listed = app
        .data_as(
            &x_token,
            "{ me { earnings(first: 50, kind: MEMBERSHIP_REWARD) { edges { node { amount
               explanation { uncappedAmount summary } } } } } }",
            json!({}),
        )
        .await;
    let cut: Vec<&Value> = listed["me"]["earnings"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| e["node"]["amount"] == json!("30.00"))
        .collect();
    assert_eq!(cut.len(), 1, "{listed}");
    let explanation = &cut[0]["node"]["explanation"];
    assert_eq!(explanation["uncappedAmount"], json!("60.00"));
    assert_eq!(
        explanation["summary"],
        json!(
            "60.00 × 1 unit(s) = 60.00, cut to 30.00 by the daily cap (MEMBERSHIP_REWARD reward)"
        )
    );

    // Refunding a full reward's line gives its 60.00 back to the day; the next payment takes
    // it, and the one after that finds the day full again.
    let refunded = held[0].order_line_id.expect("a line");
    orders_svc::refund_line(
        app.db(),
        &app.state.events,
        &app.state.units_sold,
        refunded,
        None,
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("refunded");
    assert_eq!(day().await, Some(9_000));
    for p in pay_all(&app, &[last], &policy, now).await {
        p.map_err(anyhow::Error::from).expect("paid");
    }
    let amounts: Vec<i64> = rewards().await.iter().map(|e| e.amount.fen()).collect();
    assert_eq!(
        amounts,
        vec![6000, 6000, 3000],
        "the refunded 60.00 came back as room"
    );
    assert_eq!(day().await, Some(15_000));
    let (_, mismatches) = ledger::check(app.db())
        .await
        .map_err(anyhow::Error::from)
        .expect("check");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// Payments, refunds and a settlement of one team at once. Each moves the balances of the
/// same members (the buyers, their upline and its upline), always in key order and after
/// every other row it changes, so none waits for another in a circle (PostgreSQL would abort
/// one of them as a deadlock): every one succeeds, and the ledger agrees with the balances.
#[tokio::test]
async fn payments_refunds_and_settlement_of_one_team_at_once_never_deadlock() {
    use sea_orm::EntityTrait;

    let app = TestApp::spawn().await;
    let Team {
        top,
        mid,
        buyers,
        orders,
        ..
    } = team(&app, 36, 2).await;
    let now = app.clock_now();
    let (db, events, sold) = (app.db(), &app.state.events, &app.state.units_sold);
    let policy = policy(3);
    // Orders 0..12 paid and completed (to settle), 12..24 paid (to refund), 24..36 unpaid.
    for p in pay_all(&app, &orders[..24], &policy, now).await {
        p.map_err(anyhow::Error::from).expect("paid");
    }
    for o in &orders[..12] {
        pushhand::service::fulfilment::ship_all(db, events, o.id, now)
            .await
            .map_err(anyhow::Error::from)
            .expect("shipped");
        orders_svc::complete(db, events, o.id, Duration::days(7), now)
            .await
            .map_err(anyhow::Error::from)
            .expect("completed");
    }
    let refunded: Vec<uuid::Uuid> = orders[12..24].iter().map(|o| o.id).collect();
    let lines = orders_svc::lines_of(db, &refunded)
        .await
        .map_err(anyhow::Error::from)
        .expect("lines");
    let later = now + Duration::days(8);

    let (paid, refunds, settled) = tokio::join!(
        pay_all(&app, &orders[24..], &policy, now),
        join_all(
            lines
                .iter()
                .map(|l| orders_svc::refund_line(db, events, sold, l.id, None, now))
        ),
        ledger_settle(&app, later),
    );
    for p in &paid {
        assert!(p.is_ok(), "{p:?}");
    }
    for r in &refunds {
        assert!(r.is_ok(), "{r:?}");
    }
    let (count, _) = settled.expect("settled");

    let (_, mismatches) = ledger::check(db)
        .await
        .map_err(anyhow::Error::from)
        .expect("check");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    let earnings = earning::Entity::find().all(db).await.expect("earnings");
    let of = |ids: &[entity::order::Model]| {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|o| o.id).collect();
        earnings
            .iter()
            .filter(move |e| e.order_id.is_some_and(|id| ids.contains(&id)))
            .collect::<Vec<_>>()
    };
    let completed = of(&orders[..12]);
    assert_eq!(count as usize, completed.len(), "each settled once");
    assert!(
        completed
            .iter()
            .all(|e| e.status == earning::Status::Settled)
    );
    assert!(
        of(&orders[12..24])
            .iter()
            .all(|e| e.status == earning::Status::Reversed)
    );
    for m in [&top, &mid, &buyers[0]] {
        let settled: i64 = completed
            .iter()
            .filter(|e| e.member_id == m.id)
            .map(|e| e.amount.fen())
            .sum();
        let pending: i64 = of(&orders[24..])
            .iter()
            .filter(|e| e.member_id == m.id)
            .map(|e| e.amount.fen())
            .sum();
        let balance = entity::balance::Entity::find_by_id(m.id)
            .one(db)
            .await
            .expect("query")
            .expect("a balance row");
        assert!(settled > 0 && pending > 0, "{}", m.display_name);
        assert_eq!(balance.available.fen(), settled, "{}", m.display_name);
        assert_eq!(balance.pending.fen(), pending, "{}", m.display_name);
    }
}

async fn ledger_settle(
    app: &TestApp,
    as_of: chrono::DateTime<chrono::Utc>,
) -> pushhand::error::Result<(u64, Money)> {
    pushhand::service::earnings::settle(app.db(), &app.state.events, as_of, as_of).await
}

/// An order of `quantity` units of `sku` placed by `buyer` at `now` (through the service).
async fn place(
    app: &TestApp,
    buyer: &entity::member::Model,
    sku: Uuid,
    quantity: i32,
    share_code: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> entity::order::Model {
    let line = orders_svc::LineRequest {
        sku_id: sku,
        quantity,
        share_code,
    };
    let (o, _) = orders_svc::place_order(
        &app.state.checkouts,
        buyer,
        vec![line],
        Duration::minutes(30),
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("placed");
    o
}

/// A team for the concurrency tests: `top` ← `mid` ← four push-hand buyers, and `n` orders
/// of a product of 1,000 units placed round the buyers, order `i` of `1 + i % most` units.
struct Team {
    top: entity::member::Model,
    mid: entity::member::Model,
    buyers: Vec<entity::member::Model>,
    product: Uuid,
    orders: Vec<entity::order::Model>,
}

async fn team(app: &TestApp, n: i32, most: i32) -> Team {
    use entity::member::Tier;
    let top = fixtures::member(app, "top", Tier::PushHand, None).await;
    let mid = fixtures::member(app, "mid", Tier::PushHand, Some(top.id)).await;
    let mut buyers = Vec::new();
    for i in 0..4 {
        buyers.push(fixtures::member(app, &format!("b{i}"), Tier::PushHand, Some(mid.id)).await);
    }
    let (product, sku) = product(app, 1000, false).await;
    let now = app.clock_now();
    let mut orders = Vec::new();
    for i in 0..n {
        let buyer = &buyers[i as usize % buyers.len()];
        orders.push(place(app, buyer, sku, 1 + i % most, None, now).await);
    }
    Team {
        top,
        mid,
        buyers,
        product,
        orders,
    }
}

/// Pays every order at once (the provider's callbacks, reference `ref-<order id>`).
async fn pay_all(
    app: &TestApp,
    orders: &[entity::order::Model],
    policy: &Policy,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<pushhand::error::Result<entity::order::Model>> {
    let references: Vec<String> = orders.iter().map(|o| format!("ref-{}", o.id)).collect();
    join_all(orders.iter().zip(&references).map(|(o, reference)| {
        orders_svc::confirm_payment(
            app.db(),
            &app.state.events,
            &app.state.units_sold,
            orders_svc::Payment {
                order_id: o.id,
                reference,
                amount: o.total,
                actor: None,
                intent: None,
            },
            policy,
            now,
        )
    }))
    .await
}

/// Expiry gives stock back as checkouts take it: both lock the SKUs in SKU order (an
/// expiring order's lines are in the order they were asked for, here the reverse), so
/// neither waits for the other in a circle (PostgreSQL would abort one as a deadlock), and
/// every unit is accounted for.
#[tokio::test]
async fn expiry_and_checkouts_of_the_same_skus_at_once_never_deadlock() {
    use entity::member::Tier;
    use sea_orm::EntityTrait;

    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (_, first) = another_product(&app, &f, 1000, false).await;
    let (_, second) = another_product(&app, &f, 1000, false).await;
    let buyer = fixtures::member(&app, "buyer", Tier::PushHand, None).await;
    let order_of = |skus: [Uuid; 2]| {
        let (app, buyer) = (&app, &buyer);
        async move {
            let lines = skus
                .into_iter()
                .map(|sku_id| orders_svc::LineRequest {
                    sku_id,
                    quantity: 1,
                    share_code: None,
                })
                .collect();
            orders_svc::place_order(
                &app.state.checkouts,
                buyer,
                lines,
                Duration::minutes(30),
                app.clock_now(),
            )
            .await
        }
    };
    // Lines asked for in the reverse of SKU order.
    let (low, high) = (first.min(second), first.max(second));
    for _ in 0..30 {
        order_of([high, low])
            .await
            .map_err(anyhow::Error::from)
            .expect("placed");
    }
    app.clock.advance(Duration::minutes(31));
    let now = app.clock_now();
    let expire = || orders_svc::expire_unpaid(app.db(), &app.state.events, now);
    let (placed, expired, again) = tokio::join!(
        join_all((0..30).map(|_| order_of([low, high]))),
        expire(),
        expire(),
    );
    for p in &placed {
        assert!(p.is_ok(), "{p:?}");
    }
    let (expired, again) = (
        expired.map_err(anyhow::Error::from).expect("expired"),
        again.map_err(anyhow::Error::from).expect("expired"),
    );
    assert_eq!(expired + again, 30, "each expired once");
    for sku in [low, high] {
        let left = entity::sku::Entity::find_by_id(sku)
            .one(app.db())
            .await
            .expect("query")
            .expect("sku");
        assert_eq!(left.stock, 1000 - 30, "the new orders' units only");
    }
}

/// Orders refunded as they complete: a refund takes its order's row first, as completion
/// does, so the two never wait for each other in a circle (PostgreSQL would abort one as a
/// deadlock). Every refund succeeds; a completion loses only to a refund that came first
/// (the order is refunded, not shipped), and every fen is accounted for.
#[tokio::test]
async fn refunds_racing_completions_never_deadlock() {
    let app = TestApp::spawn().await;
    let Team { orders, .. } = team(&app, 48, 1).await;
    let now = app.clock_now();
    let (db, events, sold) = (app.db(), &app.state.events, &app.state.units_sold);
    for p in pay_all(&app, &orders, &policy(3), now).await {
        p.map_err(anyhow::Error::from).expect("paid");
    }
    for o in &orders {
        pushhand::service::fulfilment::ship_all(db, events, o.id, now)
            .await
            .map_err(anyhow::Error::from)
            .expect("shipped");
    }
    let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let lines = orders_svc::lines_of(db, &ids)
        .await
        .map_err(anyhow::Error::from)
        .expect("lines");
    // Each order's completion starts a little after its refund, by a different delay, so
    // that some come between the refund's first write and its last.
    let (completed, refunded): (Vec<_>, Vec<_>) = join_all(
        orders
            .iter()
            .zip(&lines)
            .enumerate()
            .map(|(i, (o, l))| async move {
                let complete = async {
                    tokio::time::sleep(std::time::Duration::from_micros(250 * i as u64)).await;
                    orders_svc::complete(db, events, o.id, Duration::days(7), now).await
                };
                tokio::join!(
                    complete,
                    orders_svc::refund_line(db, events, sold, l.id, None, now)
                )
            }),
    )
    .await
    .into_iter()
    .unzip();
    for r in &refunded {
        assert!(r.is_ok(), "{r:?}");
    }
    for c in &completed {
        if let Err(e) = c {
            assert_eq!(e.code(), "ORDER_NOT_COMPLETABLE", "{e:?}");
        }
    }
    let (_, mismatches) = ledger::check(db)
        .await
        .map_err(anyhow::Error::from)
        .expect("check");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    for o in &orders {
        let o = orders_svc::get(db, o.id)
            .await
            .map_err(anyhow::Error::from)
            .expect("order");
        assert_eq!(o.status, entity::order::Status::Refunded);
    }
}

/// The day counter's migration fills it from the earnings already there: rolled back and
/// applied again over membership rewards (one of them reversed), it arrives at the figure the
/// payments and the refund kept.
#[tokio::test]
async fn the_reward_day_migration_fills_the_counter_from_the_earnings() {
    let app = TestApp::spawn().await;
    let (_, x, orders) = membership_sales(&app, 3).await;
    let now = app.clock_now();
    for p in pay_all(&app, &orders, &policy(2), now).await {
        p.map_err(anyhow::Error::from).expect("paid");
    }
    let first = orders_svc::lines_of(app.db(), &[orders[0].id])
        .await
        .map_err(anyhow::Error::from)
        .expect("lines");
    orders_svc::refund_line(
        app.db(),
        &app.state.events,
        &app.state.units_sold,
        first[0].id,
        None,
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("refunded");
    let day = || reward_day(&app, x.id, now);
    assert_eq!(day().await, Some(12_000), "kept: 3 × 60.00, one reversed");

    crate::helpers::redo_migration(app.db(), "m20261129_000008_membership_reward_days").await;
    assert_eq!(day().await, Some(12_000), "filled from the earnings");
}

/// Members joining a team as its members' orders are paid: a binding and a payment both
/// move the uplines' team counters, nearest upline first, so neither waits for the other in
/// a circle (PostgreSQL would abort one as a deadlock), and every count lands.
#[tokio::test]
async fn members_joining_as_the_team_pays_never_deadlock() {
    use entity::member::Tier;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let app = TestApp::spawn().await;
    let Team {
        top, mid, orders, ..
    } = team(&app, 24, 1).await;
    let now = app.clock_now();
    let policy = policy(3);
    let joiners = join_all((0..24).map(|i| {
        let app = &app;
        let mid = mid.id;
        async move { fixtures::member(app, &format!("joiner{i}"), Tier::Buyer, Some(mid)).await }
    }));
    let (paid, _) = tokio::join!(pay_all(&app, &orders, &policy, now), joiners);
    for p in &paid {
        assert!(p.is_ok(), "{p:?}");
    }
    let counters = entity::team_counter::Entity::find()
        .filter(entity::team_counter::Column::AncestorId.is_in([top.id, mid.id]))
        .all(app.db())
        .await
        .expect("counters");
    let members = |who: Uuid, depth: i16| {
        counters
            .iter()
            .filter(|c| c.ancestor_id == who && c.depth == depth)
            .map(|c| c.members)
            .sum::<i64>()
    };
    // Four buyers and 24 joiners under mid; under top, mid and then them.
    assert_eq!(members(mid.id, 1), 28);
    assert_eq!((members(top.id, 1), members(top.id, 2)), (1, 28));
}

/// A push-hand X (its token and row) and `n` orders of one unit of a membership product,
/// each by a new buyer through X's share link, unpaid.
async fn membership_sales(
    app: &TestApp,
    n: usize,
) -> (String, entity::member::Model, Vec<entity::order::Model>) {
    use entity::member::Tier;
    let (token, x) = app.user("x@example.com", CliRole::PushHand).await;
    let (product_id, sku) = product(app, 100, true).await;
    let now = app.clock_now();
    let link = orders_svc::share_link(app.db(), &x, product_id, now)
        .await
        .map_err(anyhow::Error::from)
        .expect("link");
    let mut orders = Vec::new();
    for i in 0..n {
        let buyer = fixtures::member(app, &format!("buyer{i}"), Tier::Buyer, None).await;
        orders.push(place(app, &buyer, sku, 1, Some(link.code.clone()), now).await);
    }
    (token, x, orders)
}

/// The membership rewards `member` holds from the day of `now`, by the day's counter.
async fn reward_day(
    app: &TestApp,
    member: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<i64> {
    use sea_orm::EntityTrait;
    entity::membership_reward_day::Entity::find_by_id((
        member,
        pushhand::service::reward_days::day(now),
    ))
    .one(app.db())
    .await
    .expect("query")
    .map(|d| d.amount.fen())
}
