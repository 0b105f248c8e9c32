//! Leaderboards (issue #30 item 5): the boards and `me.rank` against a recomputation from the
//! ledger — settled, unsettled, refunded before and after settlement (whole and in part), a
//! claw-back in a later week, a frozen member, a tie — masking, `first`'s bounds, and
//! settlements and claw-backs racing each other on the same counters.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, TimeZone, Utc, Weekday};
use entity::member::Tier;
use entity::{Money, earning, leaderboard_counter, ledger_entry, member, order, order_line};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::earnings::{self, Explanation, Policy};
use pushhand::service::leaderboards::{Board, Period, mask};
use pushhand::service::members::CliRole;
use pushhand::service::{fulfilment, ledger, orders as orders_svc};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::{self, gid};
use crate::helpers::{TestApp, error_code};

const BOARD: &str = "query($k: LeaderboardKind!, $p: LeaderboardPeriod!, $n: Int) {
  leaderboard(kind: $k, period: $p, first: $n) {
    kind period startsAt endsAt rules entries { rank name amount isViewer } } }";
const RANK: &str = "query($k: LeaderboardKind!, $p: LeaderboardPeriod!) {
  me { rank(kind: $k, period: $p) { kind period rank amount gapToNext startsAt endsAt } } }";

const KINDS: [(Board, &str); 2] = [
    (Board::Earnings, "EARNINGS"),
    (Board::TeamSales, "TEAM_SALES"),
];
const PERIODS: [(Period, &str); 2] = [(Period::Week, "WEEK"), (Period::Month, "MONTH")];

fn policy() -> Policy {
    Policy {
        commission_levels: 2,
        membership_reward: Money::from_fen(6_000),
        membership_reward_daily_cap: None,
    }
}

/// Noon (Asia/Shanghai) of the next Wednesday between the 8th and the 20th of a month: a week
/// later is still the same month, and no period boundary is near.
fn mid_period(now: DateTime<Utc>) -> DateTime<Utc> {
    let shanghai = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let mut day = now.with_timezone(&shanghai).date_naive() + Duration::days(1);
    while !(day.weekday() == Weekday::Wed && (8..=20).contains(&day.day())) {
        day += Duration::days(1);
    }
    shanghai
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).expect("noon"))
        .single()
        .expect("one instant")
        .with_timezone(&Utc)
}

/// A token for a member made by [`fixtures::member`] (which has no password).
fn token(m: &member::Model) -> String {
    let secret = pushhand::config::Secret::new("test-secret-test-secret-test-secret-0123");
    pushhand::service::auth::issue_token(&secret, m, pushhand::service::now(), Duration::days(90))
        .map_err(anyhow::Error::from)
        .expect("token")
}

/// An order of `units` of `sku` by `buyer`, paid at `now`; its one line.
async fn paid(
    app: &TestApp,
    buyer: &member::Model,
    sku: Uuid,
    units: i32,
    now: DateTime<Utc>,
) -> (order::Model, order_line::Model) {
    let line = orders_svc::LineRequest {
        sku_id: sku,
        quantity: units,
        share_code: None,
    };
    let (o, lines) = orders_svc::place_order(
        &app.state.checkouts,
        buyer,
        vec![line],
        Duration::minutes(30),
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("placed");
    let reference = format!("ref-{}", o.id);
    orders_svc::confirm_payment(
        app.db(),
        &app.state.events,
        &app.state.units_sold,
        orders_svc::Payment {
            order_id: o.id,
            reference: &reference,
            amount: o.total,
            actor: None,
            intent: None,
        },
        &policy(),
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("paid");
    (o, lines.into_iter().next().expect("a line"))
}

/// Ships and completes an order at `now`: its earnings may settle 7 days later.
async fn completed(app: &TestApp, o: &order::Model, now: DateTime<Utc>) {
    fulfilment::ship_all(app.db(), &app.state.events, o.id, now)
        .await
        .map_err(anyhow::Error::from)
        .expect("shipped");
    orders_svc::complete(app.db(), &app.state.events, o.id, Duration::days(7), now)
        .await
        .map_err(anyhow::Error::from)
        .expect("completed");
}

/// Settles, at `now`, every earning due by `as_of`.
async fn settle(app: &TestApp, as_of: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    earnings::settle(app.db(), &app.state.events, as_of, now)
        .await
        .map_err(anyhow::Error::from)
        .expect("settled")
        .0
}

async fn refund(app: &TestApp, line: &order_line::Model, units: Option<i32>, now: DateTime<Utc>) {
    orders_svc::refund_line(
        app.db(),
        &app.state.events,
        &app.state.units_sold,
        line.id,
        units,
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("refunded");
}

/// (board, period, the date it starts on, member) → fen.
type Counters = HashMap<(Board, Period, String, Uuid), i64>;

fn starts_on(period: Period, at: DateTime<Utc>) -> String {
    period.of(at).starts_on.format("%Y-%m-%d").to_string()
}

/// The boards' counters recomputed from the ledger: every entry that moved money into the
/// available balance from an earning (`SETTLED`) or out of it again (`ADJUSTED`, a refund
/// after settlement), in the week and month the money settled in — for a claw-back, when the
/// earning it corrects settled. Team sales: for entries of team rebates (level 2), the paid
/// amount of the line, or minus the refunded units' part of it for an adjustment.
async fn from_ledger(app: &TestApp) -> Counters {
    let db = app.db();
    let earnings: HashMap<Uuid, earning::Model> = earning::Entity::find()
        .all(db)
        .await
        .expect("earnings")
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let lines: HashMap<Uuid, order_line::Model> = order_line::Entity::find()
        .all(db)
        .await
        .expect("lines")
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let mut out = Counters::new();
    for entry in ledger_entry::Entity::find().all(db).await.expect("entries") {
        let counts = match entry.event.as_str() {
            "SETTLED" => true,
            "ADJUSTED" => entry.available_delta != Money::ZERO,
            _ => false,
        };
        if !counts {
            continue;
        }
        let e = &earnings[&entry.earning_id.expect("an earning's entry")];
        let x: Explanation = serde_json::from_str(&e.explanation).expect("explanation");
        let at = if entry.event == "ADJUSTED" {
            let of = x
                .adjusts_earning_id
                .expect("an adjustment names its earning");
            earnings[&of].settled_at.expect("it had settled")
        } else {
            entry.created_at
        };
        let sales = if e.level >= 2 {
            let line = &lines[&e.order_line_id.expect("a line")];
            let paid = line.paid().fen();
            if e.kind == earning::Kind::Adjustment {
                // One refund per line here, from its first unit: the floor of its share.
                -(paid * i64::from(x.units.expect("units")) / i64::from(line.quantity))
            } else {
                paid
            }
        } else {
            0
        };
        for (period, _) in PERIODS {
            let key = starts_on(period, at);
            *out.entry((Board::Earnings, period, key.clone(), e.member_id))
                .or_default() += entry.available_delta.fen();
            if e.level >= 2 {
                *out.entry((Board::TeamSales, period, key, e.member_id))
                    .or_default() += sales;
            }
        }
    }
    out.retain(|_, fen| *fen != 0);
    out
}

/// The counters as stored (without zeros).
async fn stored(app: &TestApp) -> Counters {
    let mut out = Counters::new();
    for c in leaderboard_counter::Entity::find()
        .all(app.db())
        .await
        .expect("counters")
    {
        let board = match c.board.as_str() {
            "EARNINGS" => Board::Earnings,
            _ => Board::TeamSales,
        };
        let period = match c.period.as_str() {
            "WEEK" => Period::Week,
            _ => Period::Month,
        };
        if c.amount != Money::ZERO {
            out.insert((board, period, c.starts_on, c.member_id), c.amount.fen());
        }
    }
    out
}

/// A board as it should read: positive amounts of members not frozen, best first, equal
/// amounts by member id.
fn expected_board(
    counters: &Counters,
    board: Board,
    period: Period,
    at: DateTime<Utc>,
    frozen: &[Uuid],
) -> Vec<(Uuid, i64)> {
    let key = starts_on(period, at);
    let mut rows: Vec<(Uuid, i64)> = counters
        .iter()
        .filter(|((b, p, k, m), fen)| {
            *b == board && *p == period && *k == key && **fen > 0 && !frozen.contains(m)
        })
        .map(|((_, _, _, m), fen)| (*m, *fen))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    rows
}

fn yuan(fen: i64) -> Value {
    json!(Money::from_fen(fen).to_string())
}

/// Every one of `people`'s own standing (`me.rank`) on every board at `at`, as the counters
/// recomputed from the ledger say; `frozen` are left out (and not asked).
async fn check_ranks(
    app: &TestApp,
    people: &[&member::Model],
    counters: &Counters,
    frozen: &[Uuid],
    at: DateTime<Utc>,
) {
    for (board, kind) in KINDS {
        for (period, name) in PERIODS {
            let want = expected_board(counters, board, period, at, frozen);
            for p in people.iter().filter(|p| !frozen.contains(&p.id)) {
                let r = app
                    .data_as(&token(p), RANK, json!({ "k": kind, "p": name }))
                    .await;
                let r = &r["me"]["rank"];
                let place = want.iter().position(|(id, _)| *id == p.id);
                let own = counters
                    .get(&(board, period, starts_on(period, at), p.id))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(r["amount"], yuan(own), "{} {kind} {name}", p.display_name);
                assert_eq!(
                    r["rank"],
                    json!(place.map(|i| i + 1)),
                    "{} {kind} {name}",
                    p.display_name
                );
                let ahead = match place {
                    Some(0) => None,
                    Some(i) => Some(want[i - 1].1),
                    None => want.last().map(|(_, fen)| *fen),
                };
                assert_eq!(
                    r["gapToNext"],
                    ahead.map_or(Value::Null, |a| yuan(a - own + 1)),
                    "{} {kind} {name}",
                    p.display_name
                );
            }
        }
    }
}

#[tokio::test]
async fn boards_and_ranks_agree_with_a_recomputation_from_the_ledger() {
    let app = TestApp::spawn().await;
    let start = mid_period(app.clock_now());
    app.clock.advance(start - app.clock_now());
    let now = app.clock_now();
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, sku) = crate::earnings::product(&app, 1_000, false).await;
    let m = |name: &'static str, upline: Option<Uuid>| {
        let app = &app;
        async move { fixtures::member(app, name, Tier::PushHand, upline).await }
    };
    // 王小明 ← 李雷 ← 张三, 王小明 ← Alice; Bob, 赵六, Carol and Dave alone.
    let wang = m("王小明", None).await;
    let li = m("李雷", Some(wang.id)).await;
    let zhang = m("张三", Some(li.id)).await;
    let alice = m("Alice", Some(wang.id)).await;
    let bob = m("Bob", None).await;
    let zhao = m("赵六", None).await;
    let carol = m("Carol", None).await;
    let dave = m("Dave", None).await;
    let people = [&wang, &li, &zhang, &alice, &bob, &zhao, &carol, &dave];

    // Each a self-purchase at 199.00 a unit: 29.85 to the buyer, 9.95 to its upline.
    let (o1, l1) = paid(&app, &zhang, sku, 3, now).await; // partly refunded after settlement
    let (o2, _) = paid(&app, &li, sku, 1, now).await;
    let (o3, _) = paid(&app, &alice, sku, 1, now).await; // Alice and Bob tie at 29.85
    let (o4, _) = paid(&app, &bob, sku, 1, now).await;
    let (o5, _) = paid(&app, &zhao, sku, 5, now).await; // frozen later
    let (_o6, _) = paid(&app, &carol, sku, 1, now).await; // never completes: unsettled
    let (_o7, l7) = paid(&app, &dave, sku, 1, now).await; // refunded before settlement
    let (o8, l8) = paid(&app, &zhang, sku, 3, now).await; // a unit refunded before settlement
    let (o9, l9) = paid(&app, &li, sku, 2, now).await; // refunded whole a week after settling
    refund(&app, &l7, None, now).await;
    for o in [&o1, &o2, &o3, &o4, &o5, &o8, &o9] {
        completed(&app, o, now).await;
    }
    refund(&app, &l8, Some(1), now).await;
    let settled_at = now + Duration::hours(1);
    assert!(settle(&app, now + Duration::days(8), settled_at).await > 0);
    // After settlement: one unit of o1 back (a settled adjustment, this week).
    refund(&app, &l1, Some(1), settled_at).await;
    // Frozen members are left out.
    app.data_as(
        &admin,
        "mutation($m: ID!) { freezeMember(memberId: $m, reason: \"tests\") { id } }",
        json!({ "m": gid(Kind::Member, zhao.id) }),
    )
    .await;
    // A week later (same month): o9 refunded whole. It comes off last week's board.
    app.clock.advance(Duration::days(7));
    let later = app.clock_now();
    refund(&app, &l9, None, later).await;

    let counters = from_ledger(&app).await;
    assert_eq!(
        stored(&app).await,
        counters,
        "counters = the ledger, every period"
    );
    let last_week = starts_on(Period::Week, now);
    // Li's last week: 29.85 + 2 × 29.85 (o9) − 2 × 29.85 (its refund) + team rebates of
    // Zhang's 3 + 3 units, less one of each refunded = 4 × 9.95.
    assert_eq!(
        counters.get(&(Board::Earnings, Period::Week, last_week, li.id)),
        Some(&(2_985 + 4 * 995))
    );
    assert!(
        !counters
            .keys()
            .any(|(_, p, k, _)| *p == Period::Week && *k == starts_on(Period::Week, later)),
        "nothing settled this week: the refund went to the week its earning settled in"
    );

    let names: HashMap<Uuid, String> = people
        .iter()
        .map(|p| (p.id, p.display_name.clone()))
        .collect();
    let frozen = [zhao.id];
    // This week's boards (empty: nothing settled yet) and this month's, as every member and
    // the recomputation see them.
    for (board, kind) in KINDS {
        for (period, name) in PERIODS {
            let want = expected_board(&counters, board, period, later, &frozen);
            let got = app
                .data_as(
                    &token(&alice),
                    BOARD,
                    json!({ "k": kind, "p": name, "n": 100 }),
                )
                .await;
            let b = &got["leaderboard"];
            assert_eq!(b["kind"], json!(kind));
            assert_eq!(b["period"], json!(name));
            let instant = |v: &Value| {
                DateTime::parse_from_rfc3339(v.as_str().expect("a time")).map(|t| t.to_utc())
            };
            assert_eq!(
                instant(&b["startsAt"]).ok(),
                Some(period.of(later).starts_at)
            );
            assert_eq!(instant(&b["endsAt"]).ok(), Some(period.of(later).ends_at));
            let entries: Vec<Value> = want
                .iter()
                .enumerate()
                .map(|(i, (id, fen))| {
                    json!({
                        "rank": i + 1,
                        "name": mask(&names[id]),
                        "amount": yuan(*fen),
                        "isViewer": *id == alice.id,
                    })
                })
                .collect();
            assert_eq!(b["entries"], json!(entries), "{kind} {name}");
            // Every member's own standing, on the board or not.
            for p in people.iter().filter(|p| p.id != zhao.id) {
                let r = app
                    .data_as(&token(p), RANK, json!({ "k": kind, "p": name }))
                    .await;
                let r = &r["me"]["rank"];
                let place = want.iter().position(|(id, _)| *id == p.id);
                let own = counters
                    .get(&(board, period, starts_on(period, later), p.id))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(r["amount"], yuan(own), "{} {kind} {name}", p.display_name);
                assert_eq!(
                    r["rank"],
                    json!(place.map(|i| i + 1)),
                    "{} {kind} {name}",
                    p.display_name
                );
                let ahead = match place {
                    Some(0) => None,
                    Some(i) => Some(want[i - 1].1),
                    None => want.last().map(|(_, fen)| *fen),
                };
                assert_eq!(
                    r["gapToNext"],
                    ahead.map_or(Value::Null, |a| yuan(a - own + 1)),
                    "{} {kind} {name}",
                    p.display_name
                );
            }
        }
    }

    // The month's earnings board, by hand: Zhang 2 × 29.85 (o1 after one unit back) + 2 ×
    // 29.85 (o8's two kept units); Li 29.85 + 4 × 9.95 (o9 came and went); Alice and Bob tie
    // at 29.85 (Alice joined first); Wang 2 × 9.95; Zhao frozen; Carol and Dave nothing.
    let month = app
        .data(BOARD, json!({ "k": "EARNINGS", "p": "MONTH", "n": 100 }))
        .await;
    let rows: Vec<(String, String)> = month["leaderboard"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("name").to_owned(),
                e["amount"].as_str().expect("amount").to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("张**", "119.40"),
        ("李**", "69.65"),
        ("A**", "29.85"),
        ("B**", "29.85"),
        ("王**", "19.90"),
    ]
    .iter()
    .map(|(n, a)| (n.to_string(), a.to_string()))
    .collect();
    assert_eq!(rows, want);
    // Team sales of the month: Li's team (Zhang) 2 × 199.00 + 2 × 199.00; Wang's (Li,
    // Alice) 199.00 + 199.00 (o9's 398.00 came and went).
    let teams = app
        .data(BOARD, json!({ "k": "TEAM_SALES", "p": "MONTH" }))
        .await;
    assert_eq!(
        teams["leaderboard"]["entries"],
        json!([
            { "rank": 1, "name": "李**", "amount": "796.00", "isViewer": false },
            { "rank": 2, "name": "王**", "amount": "398.00", "isViewer": false },
        ])
    );

    // Outside the top: with only two places shown, Alice still learns she is third.
    let top2 = app
        .data_as(
            &token(&alice),
            BOARD,
            json!({ "k": "EARNINGS", "p": "MONTH", "n": 2 }),
        )
        .await;
    assert_eq!(
        top2["leaderboard"]["entries"].as_array().map(Vec::len),
        Some(2)
    );
    let r = app
        .data_as(
            &token(&alice),
            RANK,
            json!({ "k": "EARNINGS", "p": "MONTH" }),
        )
        .await;
    assert_eq!(r["me"]["rank"]["rank"], json!(3));
    assert_eq!(
        r["me"]["rank"]["gapToNext"],
        json!("39.81"),
        "69.65 − 29.85 + 0.01"
    );
    // Bob ties with Alice and ranks after her: one fen more passes her.
    let r = app
        .data_as(&token(&bob), RANK, json!({ "k": "EARNINGS", "p": "MONTH" }))
        .await;
    assert_eq!(r["me"]["rank"]["rank"], json!(4));
    assert_eq!(r["me"]["rank"]["gapToNext"], json!("0.01"));
    // Unfrozen, Zhao is back at the top (149.25).
    app.data_as(
        &admin,
        "mutation($m: ID!) { unfreezeMember(memberId: $m) { id } }",
        json!({ "m": gid(Kind::Member, zhao.id) }),
    )
    .await;
    let back = app
        .data(BOARD, json!({ "k": "EARNINGS", "p": "MONTH", "n": 1 }))
        .await;
    assert_eq!(
        back["leaderboard"]["entries"],
        json!([{ "rank": 1, "name": "赵**", "amount": "149.25", "isViewer": false }])
    );

    let (_, mismatches) = ledger::check(app.db())
        .await
        .map_err(anyhow::Error::from)
        .expect("check");
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

#[tokio::test]
async fn first_is_checked_and_anyone_may_read_a_board() {
    let app = TestApp::spawn().await;
    for bad in [0, -5, 101] {
        let resp = app
            .gql(BOARD, json!({ "k": "EARNINGS", "p": "WEEK", "n": bad }))
            .await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{bad}: {resp}");
        assert_eq!(resp["errors"][0]["extensions"]["field"], json!("first"));
    }
    let empty = app
        .data(BOARD, json!({ "k": "TEAM_SALES", "p": "MONTH" }))
        .await;
    assert_eq!(empty["leaderboard"]["entries"], json!([]));
    assert!(
        empty["leaderboard"]["rules"]
            .as_str()
            .is_some_and(|r| r.contains("recruits"))
    );
    // A member with nothing on an empty board: no place, nobody ahead.
    let (t, _) = app.user("nobody@example.com", CliRole::PushHand).await;
    let r = app
        .data_as(&t, RANK, json!({ "k": "EARNINGS", "p": "WEEK" }))
        .await;
    assert_eq!(
        r["me"]["rank"],
        json!({
            "kind": "EARNINGS", "period": "WEEK", "rank": null, "amount": "0.00",
            "gapToNext": null,
            "startsAt": r["me"]["rank"]["startsAt"], "endsAt": r["me"]["rank"]["endsAt"],
        })
    );
    // `me` is null for anonymous requests.
    let anon = app
        .data(RANK, json!({ "k": "EARNINGS", "p": "WEEK" }))
        .await;
    assert_eq!(anon["me"], Value::Null);
}

/// Settlements and claw-backs at once, all moving the same upline's counters (and each
/// buyer's): every move lands exactly once, and the counters equal the ledger's sums.
#[tokio::test]
async fn concurrent_settlements_and_claw_backs_keep_the_counters_exact() {
    let app = TestApp::spawn().await;
    let start = mid_period(app.clock_now());
    app.clock.advance(start - app.clock_now());
    let now = app.clock_now();
    let (_, sku) = crate::earnings::product(&app, 10_000, false).await;
    let top = fixtures::member(&app, "top", Tier::PushHand, None).await;
    let mut buyers = Vec::new();
    for i in 0..8 {
        buyers.push(fixtures::member(&app, &format!("b{i}"), Tier::PushHand, Some(top.id)).await);
    }
    // 16 orders settle first (completed now); 16 more complete an hour later.
    let mut first = Vec::new();
    let mut second = Vec::new();
    for i in 0..32 {
        let (o, l) = paid(
            &app,
            &buyers[i % buyers.len()],
            sku,
            1 + (i % 3) as i32,
            now,
        )
        .await;
        if i < 16 {
            completed(&app, &o, now).await;
            first.push(l);
        } else {
            completed(&app, &o, now + Duration::hours(1)).await;
            second.push(l);
        }
    }
    let settled_at = now + Duration::days(7) + Duration::minutes(30);
    assert_eq!(
        settle(&app, settled_at, settled_at).await,
        32,
        "16 × 2 earnings"
    );
    let at = settled_at + Duration::hours(1);
    // Ranks asked now: this instance copies the boards, and keeps up with what follows.
    app.clock.advance(at - app.clock_now());
    let everyone: Vec<&member::Model> = std::iter::once(&top).chain(&buyers).collect();
    check_ranks(&app, &everyone, &from_ledger(&app).await, &[], at).await;
    // Three settlement runs for the second half, and every line of the first half refunded
    // after settlement (whole, or one unit), all at once, while ranks are read.
    let runs = join_all(
        (0..3).map(|_| earnings::settle(app.db(), &app.state.events, now + Duration::days(8), at)),
    );
    let refunds = join_all(first.iter().enumerate().map(|(i, l)| {
        orders_svc::refund_line(
            app.db(),
            &app.state.events,
            &app.state.units_sold,
            l.id,
            (i % 2 == 0).then_some(1),
            at,
        )
    }));
    let reads = join_all((0..16).map(|i| {
        let (kind, period) = (KINDS[i % 2].1, PERIODS[i / 2 % 2].1);
        let viewer = token(everyone[i % everyone.len()]);
        let app = &app;
        async move {
            app.data_as(&viewer, RANK, json!({ "k": kind, "p": period }))
                .await
        }
    }));
    let (runs, refunds, _) = tokio::join!(runs, refunds, reads);
    let mut settled = 0;
    for r in runs {
        settled += r.map_err(anyhow::Error::from).expect("a settlement run").0;
    }
    assert_eq!(settled, 32, "each earning of the second half settled once");
    for r in refunds {
        r.map_err(anyhow::Error::from).expect("a refund");
    }
    let counters = from_ledger(&app).await;
    assert_eq!(stored(&app).await, counters);
    check_ranks(&app, &everyone, &counters, &[], at).await;
    // The upline's team sales: every unit of the second half, and of the first half the
    // units kept (odd lines refunded whole, even lines less one unit).
    let units: i64 = second.iter().map(|l| i64::from(l.quantity)).sum::<i64>()
        + first
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i % 2 == 0 {
                    i64::from(l.quantity) - 1
                } else {
                    0
                }
            })
            .sum::<i64>();
    assert_eq!(
        counters.get(&(
            Board::TeamSales,
            Period::Month,
            starts_on(Period::Month, now),
            top.id
        )),
        Some(&(units * 19_900))
    );
    let (_, mismatches) = ledger::check(app.db())
        .await
        .map_err(anyhow::Error::from)
        .expect("check");
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

/// Ranks are searched in this instance's copy of each board, made by the first rank asked
/// about it: the settlements, claw-backs, freezes and unfreezes after the copy are counted
/// all the same (settlements' events tell the copy; who is frozen is read fresh), every
/// member's rank, amount and gap equal to the recomputation from the ledger at each step.
#[tokio::test]
async fn ranks_follow_every_change_made_after_the_copy_of_a_board() {
    let app = TestApp::spawn().await;
    let start = mid_period(app.clock_now());
    app.clock.advance(start - app.clock_now());
    let now = app.clock_now();
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, sku) = crate::earnings::product(&app, 1_000, false).await;
    let top = fixtures::member(&app, "Top", Tier::PushHand, None).await;
    let mut people = vec![top.clone()];
    for i in 0..5 {
        people.push(fixtures::member(&app, &format!("M{i}"), Tier::PushHand, Some(top.id)).await);
    }
    let everyone: Vec<&member::Model> = people.iter().collect();
    // First: members 1 to 3 buy 1 to 3 units, settled an hour later.
    let mut lines = Vec::new();
    for (i, p) in people[1..4].iter().enumerate() {
        let (o, l) = paid(&app, p, sku, i as i32 + 1, now).await;
        completed(&app, &o, now).await;
        lines.push(l);
    }
    assert!(settle(&app, now + Duration::days(8), now + Duration::hours(1)).await > 0);
    assert_eq!(app.state.leaderboards.held(), 0, "no board asked about yet");
    check_ranks(&app, &everyone, &from_ledger(&app).await, &[], now).await;
    assert_eq!(
        app.state.leaderboards.held(),
        4,
        "a copy of each board asked about"
    );

    // After the copies: member 4 buys 5 units and member 5 two (a tie with member 2), both
    // settled; member 1's line is refunded whole after settlement (a claw-back), member 3's
    // by a unit.
    let (o4, _) = paid(&app, &people[4], sku, 5, now).await;
    let (o5, _) = paid(&app, &people[5], sku, 2, now).await;
    completed(&app, &o4, now).await;
    completed(&app, &o5, now).await;
    assert!(settle(&app, now + Duration::days(8), now + Duration::hours(2)).await > 0);
    refund(&app, &lines[0], None, now + Duration::hours(3)).await;
    refund(&app, &lines[2], Some(1), now + Duration::hours(3)).await;
    check_ranks(&app, &everyone, &from_ledger(&app).await, &[], now).await;

    // Frozen after the copies: left out, the members behind it move up; unfrozen: back.
    let freeze = |m: Uuid, on: bool| {
        let (app, admin) = (&app, &admin);
        async move {
            let q = if on {
                "mutation($m: ID!) { freezeMember(memberId: $m, reason: \"tests\") { id } }"
            } else {
                "mutation($m: ID!) { unfreezeMember(memberId: $m) { id } }"
            };
            app.data_as(admin, q, json!({ "m": gid(Kind::Member, m) }))
                .await;
        }
    };
    freeze(people[4].id, true).await;
    check_ranks(
        &app,
        &everyone,
        &from_ledger(&app).await,
        &[people[4].id],
        now,
    )
    .await;
    freeze(people[4].id, false).await;
    // The freeze revoked its tokens: a new one, from its row as it is now.
    let thawed = member::Entity::find_by_id(people[4].id)
        .one(app.db())
        .await
        .expect("read")
        .expect("the member");
    let mut everyone = everyone;
    everyone[4] = &thawed;
    check_ranks(&app, &everyone, &from_ledger(&app).await, &[], now).await;
    assert_eq!(
        app.state.leaderboards.held(),
        4,
        "the same copies throughout"
    );
}

/// The copies' staleness, made visible: a counter moved without an event (nothing in the
/// server moves one so; a direct write here) is not seen by a copy — except by its own
/// member, whose amount is always read fresh — until an event names the member, as a
/// settlement's does; and when events may have been lost (a resync), the copies are dropped
/// and the next rank makes a new one.
#[tokio::test]
async fn a_copy_sees_a_move_once_its_event_is_heard_and_a_resync_drops_it() {
    use pushhand::events::{Event, Kind as EventKind};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};

    let app = TestApp::spawn().await;
    let now = app.clock_now();
    let (ta, a) = app.user("a@example.com", CliRole::PushHand).await;
    let (tb, b) = app.user("b@example.com", CliRole::PushHand).await;
    for (m, fen) in [(a.id, 10_000), (b.id, 5_000)] {
        leaderboard_counter::Entity::insert(leaderboard_counter::ActiveModel {
            board: Set("EARNINGS".into()),
            period: Set("WEEK".into()),
            starts_on: Set(starts_on(Period::Week, now)),
            member_id: Set(m),
            amount: Set(Money::from_fen(fen)),
        })
        .exec(app.db())
        .await
        .expect("a counter");
    }
    let set = |m: Uuid, fen: i64| {
        let app = &app;
        async move {
            leaderboard_counter::Entity::update_many()
                .col_expr(leaderboard_counter::Column::Amount, Expr::value(fen))
                .filter(leaderboard_counter::Column::MemberId.eq(m))
                .exec(app.db())
                .await
                .expect("moved");
        }
    };
    let rank_of = |t: String| {
        let app = &app;
        async move {
            let r = app
                .data_as(&t, RANK, json!({ "k": "EARNINGS", "p": "WEEK" }))
                .await;
            (
                r["me"]["rank"]["rank"].clone(),
                r["me"]["rank"]["gapToNext"].clone(),
            )
        }
    };
    assert_eq!(rank_of(tb.clone()).await, (json!(2), json!("50.01")));
    assert_eq!(app.state.leaderboards.held(), 1);

    // A falls behind B in the database alone: B's copy still has A ahead; A sees its own.
    set(a.id, 1_000).await;
    assert_eq!(
        rank_of(tb.clone()).await,
        (json!(2), json!("50.01")),
        "stale until the event"
    );
    assert_eq!(rank_of(ta.clone()).await, (json!(2), json!("40.01")));
    // The event a settlement publishes: heard before `publish` returns.
    app.state
        .events
        .publish(vec![Event::new(
            a.id,
            EventKind::EarningSettled,
            Uuid::nil(),
        )])
        .await;
    assert_eq!(rank_of(tb.clone()).await, (json!(1), Value::Null));
    assert_eq!(rank_of(ta.clone()).await, (json!(2), json!("40.01")));

    // Moved again without an event, then events lost: the copy goes, the next is exact.
    set(a.id, 20_000).await;
    app.state.leaderboards.lost();
    assert_eq!(app.state.leaderboards.held(), 0);
    assert_eq!(rank_of(tb).await, (json!(2), json!("150.01")));
    assert_eq!(app.state.leaderboards.held(), 1);
}
