//! Property test of the money paths: random sequences of checkouts, (duplicated) payments,
//! shipping and completion, clock moves, settlements, refunds, withdrawals and reviews, run
//! through the services against a fresh database per case. After every step: balances equal
//! the fold of the ledger, no line pays more than 30 % in percentage earnings, nothing settles
//! before its window. At the end, replaying every idempotent operation changes nothing.
//!
//! Cases: `PROPTEST_CASES` (default 24 here; CI runs the default, raise it by hand).

use chrono::{DateTime, Duration, Utc};
use entity::{Money, Rate, earning, member, order_line, product};
use proptest::prelude::*;
use pushhand::service::catalog::{self as catalog_svc, NewProduct, NewSku};
use pushhand::service::earnings::{self, Policy};
use pushhand::service::{Clock, ledger, orders, withdrawals};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::fixtures;
use crate::helpers::TestApp;

#[derive(Clone, Debug)]
enum Op {
    /// Buyer index (0 plain buyer, 1 push-hand), quantity, through the sharer's link?
    Order {
        buyer: usize,
        qty: i32,
        via_link: bool,
    },
    /// Pay order `i` (mod count), `times` callbacks with the same reference.
    Pay {
        i: usize,
        times: usize,
    },
    Ship {
        i: usize,
    },
    Complete {
        i: usize,
    },
    Advance {
        days: i64,
    },
    Settle,
    /// A settlement as of a recorded time (what a replay of `Settle` runs).
    SettleAt(DateTime<Utc>),
    /// Refund `units` of each line of order `i` (0 = all that is left).
    Refund {
        i: usize,
        units: i32,
    },
    /// Member index (0..3), amount in yuan, key number.
    Withdraw {
        who: usize,
        yuan: i64,
        key: u8,
    },
    Review {
        i: usize,
        approve: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..2, 1i32..4, any::<bool>()).prop_map(|(buyer, qty, via_link)| Op::Order { buyer, qty, via_link }),
        3 => (0usize..8, 1usize..4).prop_map(|(i, times)| Op::Pay { i, times }),
        2 => (0usize..8).prop_map(|i| Op::Ship { i }),
        2 => (0usize..8).prop_map(|i| Op::Complete { i }),
        2 => (1i64..10).prop_map(|days| Op::Advance { days }),
        2 => Just(Op::Settle),
        2 => (0usize..8, 0i32..3).prop_map(|(i, units)| Op::Refund { i, units }),
        2 => (0usize..3, 5i64..80, 0u8..4).prop_map(|(who, yuan, key)| Op::Withdraw { who, yuan, key }),
        1 => (0usize..8, any::<bool>()).prop_map(|(i, approve)| Op::Review { i, approve }),
    ]
}

struct World {
    app: TestApp,
    /// founder ← sharer ← push-hand buyer; plus a plain buyer bound to nobody.
    members: Vec<member::Model>,
    plain_buyer: member::Model,
    sku: Uuid,
    share_code: String,
    orders: Vec<Uuid>,
    withdrawals: Vec<Uuid>,
    replay: Vec<Op>,
    policy: Policy,
}

async fn add_member(
    app: &TestApp,
    name: &str,
    tier: member::Tier,
    upline: Option<Uuid>,
) -> member::Model {
    fixtures::member(app, name, tier, upline).await
}

async fn world() -> World {
    let app = TestApp::spawn_with(&["--redis-url", ""]).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let now = app.clock_now();
    let p = NewProduct {
        id: Uuid::now_v7(),
        merchant_id: f.merchant.id,
        brand_id: f.brands[0].id,
        category_id: f.leaves[0].id,
        name: "测试".into(),
        name_en: None,
        description: None,
        status: product::Status::Published,
        // 33.33 at 19 % / 11 %: rounding at the fen on every line, the 30 % cap exactly reached.
        rebate_rate: Rate::from_bp(1900),
        team_rebate_rate: Rate::from_bp(1100),
        membership_activity: false,
        sales_count: 0,
        created_at: now,
        published_at: Some(now),
        skus: vec![NewSku {
            name: "x".into(),
            price: Money::from_fen(3333),
            stock: 1_000,
        }],
        images: vec![],
        tags: vec![],
    };
    let product_id = catalog_svc::create_product(app.db(), p)
        .await
        .map_err(anyhow::Error::from)
        .expect("product");
    let sku = entity::sku::Entity::find()
        .filter(entity::sku::Column::ProductId.eq(product_id))
        .one(app.db())
        .await
        .expect("query")
        .expect("sku")
        .id;
    let founder = add_member(&app, "founder", member::Tier::PushHand, None).await;
    let sharer = add_member(&app, "sharer", member::Tier::PushHand, Some(founder.id)).await;
    let self_buyer = add_member(&app, "selfbuyer", member::Tier::PushHand, Some(sharer.id)).await;
    let plain_buyer = add_member(&app, "plain", member::Tier::Buyer, None).await;
    let link = orders::share_link(app.db(), &sharer, product_id, now)
        .await
        .map_err(anyhow::Error::from)
        .expect("link");
    World {
        app,
        members: vec![founder, sharer, self_buyer],
        plain_buyer,
        sku,
        share_code: link.code,
        orders: Vec::new(),
        withdrawals: Vec::new(),
        replay: Vec::new(),
        policy: Policy {
            commission_levels: 3,
            membership_reward: Money::from_fen(6_000),
            membership_reward_daily_cap: None,
        },
    }
}

impl World {
    fn now(&self) -> DateTime<Utc> {
        self.app.clock.now()
    }

    fn order(&self, i: usize) -> Option<Uuid> {
        (!self.orders.is_empty()).then(|| self.orders[i % self.orders.len()])
    }

    async fn apply(&mut self, op: &Op, replaying: bool) {
        let mut succeeded = true;
        let db = self.app.db().clone();
        let events = self.app.state.events.clone();
        let ev = &events;
        let sold = self.app.state.units_sold.clone();
        let checkouts = self.app.state.checkouts.clone();
        let now = self.now();
        let window = Duration::days(7);
        match op {
            Op::Order {
                buyer,
                qty,
                via_link,
            } => {
                if replaying {
                    return;
                }
                let who = if *buyer == 0 {
                    self.plain_buyer.clone()
                } else {
                    self.members[2].clone()
                };
                let line = orders::LineRequest {
                    sku_id: self.sku,
                    quantity: *qty,
                    share_code: via_link.then(|| self.share_code.clone()),
                };
                if let Ok((o, _)) =
                    orders::place_order(&checkouts, &who, vec![line], Duration::minutes(30), now)
                        .await
                {
                    self.orders.push(o.id);
                }
            }
            Op::Pay { i, times } => {
                let Some(id) = self.order(*i) else { return };
                let o = orders::get(&db, id)
                    .await
                    .map_err(anyhow::Error::from)
                    .expect("order");
                let reference = format!("ref-{id}");
                let futures = (0..*times).map(|_| {
                    orders::confirm_payment(
                        &db,
                        ev,
                        &sold,
                        orders::Payment {
                            order_id: id,
                            reference: &reference,
                            amount: o.total,
                            actor: None,
                            intent: None,
                        },
                        &self.policy,
                        now,
                    )
                });
                let results = futures_util::future::join_all(futures).await;
                succeeded = results.iter().any(Result::is_ok);
            }
            Op::Ship { i } => {
                if let Some(id) = self.order(*i) {
                    succeeded = pushhand::service::fulfilment::ship_all(&db, ev, id, now)
                        .await
                        .is_ok();
                }
            }
            Op::Complete { i } => {
                if let Some(id) = self.order(*i) {
                    succeeded = orders::complete(&db, ev, id, window, now).await.is_ok();
                }
            }
            Op::Advance { days } => {
                if !replaying {
                    self.app.clock.advance(Duration::days(*days));
                }
            }
            Op::Settle => {
                earnings::settle(&db, ev, now, now)
                    .await
                    .map_err(anyhow::Error::from)
                    .expect("settle");
            }
            Op::SettleAt(as_of) => {
                earnings::settle(&db, ev, *as_of, now)
                    .await
                    .map_err(anyhow::Error::from)
                    .expect("settle");
            }
            Op::Refund { i, units } => {
                let Some(id) = self.order(*i) else { return };
                let lines = orders::lines_of(&db, &[id])
                    .await
                    .map_err(anyhow::Error::from)
                    .expect("lines");
                succeeded = false;
                for l in lines {
                    let units = (*units > 0).then_some(*units);
                    succeeded |= orders::refund_line(&db, ev, &sold, l.id, units, now)
                        .await
                        .is_ok();
                }
            }
            Op::Withdraw { who, yuan, key } => {
                let m = self.members[*who].clone();
                let amount = rust_decimal::Decimal::new(yuan * 100, 2);
                match withdrawals::request(
                    &db,
                    ev,
                    &m,
                    amount,
                    &format!("key-{key}"),
                    withdrawals::Terms {
                        minimum: Money::from_fen(1_000),
                        fee_rate: Rate::ZERO,
                    },
                    now,
                )
                .await
                {
                    Ok(w) if !self.withdrawals.contains(&w.id) => self.withdrawals.push(w.id),
                    Ok(_) => {}
                    Err(_) => succeeded = false,
                }
            }
            Op::Review { i, approve } => {
                if self.withdrawals.is_empty() {
                    return;
                }
                let id = self.withdrawals[i % self.withdrawals.len()];
                succeeded = withdrawals::review(&db, ev, self.members[0].id, id, *approve, now)
                    .await
                    .is_ok();
            }
        }
        // Only what took effect is replayed: a replay must then change nothing. (An
        // operation refused in its moment, like a refund before payment, may rightly succeed
        // in a later state, so it is no replay.)
        // A partial refund has no idempotency key: doing it again refunds more units, which
        // is a new request, not a replay.
        let partial = matches!(op, Op::Refund { units, .. } if *units > 0);
        if !replaying && succeeded && !partial {
            self.replay.push(self.resolved(op));
        }
    }

    /// `op` with its order or withdrawal index pinned to the one it used now (the lists
    /// grow, so `i % len` would pick another one on replay).
    fn resolved(&self, op: &Op) -> Op {
        let pin = |i: usize, len: usize| if len == 0 { i } else { i % len };
        let (o, w) = (self.orders.len(), self.withdrawals.len());
        match op.clone() {
            Op::Pay { i, times } => Op::Pay {
                i: pin(i, o),
                times,
            },
            Op::Ship { i } => Op::Ship { i: pin(i, o) },
            Op::Complete { i } => Op::Complete { i: pin(i, o) },
            Op::Refund { i, units } => Op::Refund {
                i: pin(i, o),
                units,
            },
            Op::Review { i, approve } => Op::Review {
                i: pin(i, w),
                approve,
            },
            Op::Settle => Op::SettleAt(self.now()),
            other => other,
        }
    }

    /// The invariants that must hold after every step.
    async fn check(&self, step: usize) {
        let db = self.app.db();
        let (_, mismatches) = ledger::check(db)
            .await
            .map_err(anyhow::Error::from)
            .expect("check");
        assert!(
            mismatches.is_empty(),
            "step {step}: balances differ from the ledger: {mismatches:?}"
        );
        let all = earning::Entity::find().all(db).await.expect("earnings");
        let lines = order_line::Entity::find().all(db).await.expect("lines");
        // Units sold, once the tally is written, are the units of paid lines not refunded.
        self.app.state.write_units_sold().await;
        let paid: std::collections::HashSet<Uuid> = entity::order::Entity::find()
            .all(db)
            .await
            .expect("orders")
            .into_iter()
            .filter(|o| o.paid_at.is_some())
            .map(|o| o.id)
            .collect();
        let ordered = entity::sku::Entity::find_by_id(self.sku)
            .find_also_related(product::Entity)
            .one(db)
            .await
            .expect("query")
            .and_then(|(_, p)| p)
            .expect("the ordered product");
        let units: i64 = lines
            .iter()
            .filter(|l| paid.contains(&l.order_id))
            .map(|l| i64::from(l.quantity - l.refunded_quantity))
            .sum();
        assert_eq!(ordered.sales_count, units, "step {step}: units sold");
        for l in &lines {
            let net: i64 = all
                .iter()
                .filter(|e| e.order_line_id == Some(l.id) && e.status != earning::Status::Reversed)
                .map(|e| e.amount.fen())
                .sum();
            assert!(
                net >= 0,
                "step {step}: line {} clawed back more than it paid ({net})",
                l.id
            );
            let paid: i64 = all
                .iter()
                .filter(|e| {
                    e.order_line_id == Some(l.id)
                        && e.kind != earning::Kind::Adjustment
                        && e.kind != earning::Kind::MembershipReward
                })
                .map(|e| e.amount.fen())
                .sum();
            assert!(
                paid * 10_000 <= l.amount.fen() * 3_000,
                "step {step}: line {} pays {paid} of {}",
                l.id,
                l.amount
            );
        }
        for e in &all {
            if e.status == earning::Status::Settled && e.kind != earning::Kind::Adjustment {
                let after = e.settle_after.expect("a settled earning had a window");
                let at = e.settled_at.expect("settled at");
                assert!(
                    at >= after,
                    "step {step}: earning {} settled at {at}, before {after}",
                    e.id
                );
            }
            if e.kind != earning::Kind::Adjustment {
                assert!(e.amount.fen() > 0, "step {step}: non-positive earning");
            }
        }
    }

    async fn fingerprint(&self) -> (Vec<(Uuid, i64, i64, i64, i64, i64)>, usize, usize) {
        let db = self.app.db();
        let mut balances: Vec<_> = entity::balance::Entity::find()
            .all(db)
            .await
            .expect("balances")
            .into_iter()
            .map(|b| {
                (
                    b.member_id,
                    b.pending.fen(),
                    b.available.fen(),
                    b.reserved.fen(),
                    b.withdrawn.fen(),
                    b.lifetime.fen(),
                )
            })
            .collect();
        balances.sort();
        let entries = entity::ledger_entry::Entity::find()
            .all(db)
            .await
            .expect("entries")
            .len();
        let earnings = earning::Entity::find()
            .all(db)
            .await
            .expect("earnings")
            .len();
        (balances, entries, earnings)
    }
}

fn run(ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut w = world().await;
        for (step, op) in ops.iter().enumerate() {
            w.apply(op, false).await;
            w.check(step).await;
        }
        let before = w.fingerprint().await;
        for op in w.replay.clone() {
            w.apply(&op, true).await;
        }
        let after = w.fingerprint().await;
        assert_eq!(
            before, after,
            "replaying the idempotent operations changed the books"
        );
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn money_invariants_hold_on_random_histories(ops in prop::collection::vec(op(), 5..30)) {
        run(ops);
    }
}
