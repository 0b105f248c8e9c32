//! Checkouts written together (`service::checkouts`): orders combined into one statement
//! read back exactly as placed; a combined statement that fails leaves each order the
//! outcome it would have had alone; many checkouts of one SKU at once take its stock exactly.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use entity::member::Tier;
use entity::{Money, Rate, order, order_line, sku};
use futures_util::future::join_all;
use pushhand::service::checkouts::Checkout;
use pushhand::service::orders::{self as orders_svc, LineRequest};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::earnings::another_product;
use crate::fixtures;
use crate::helpers::TestApp;

/// A checkout of `quantity` units of `sku` (of `product`, at 199.00) by `buyer`, placed `at`.
pub(crate) fn checkout(
    buyer: Uuid,
    product: Uuid,
    sku: Uuid,
    quantity: i32,
    at: DateTime<Utc>,
) -> Checkout {
    let order_id = Uuid::now_v7();
    let amount = Money::from_fen(19_900 * i64::from(quantity));
    let line = order_line::Model {
        id: Uuid::now_v7(),
        order_id,
        product_id: product,
        sku_id: sku,
        quantity,
        unit_price: Money::from_fen(19_900),
        amount,
        rebate_rate: Rate::from_bp(1500),
        team_rebate_rate: Rate::from_bp(500),
        membership_activity: quantity % 2 == 0,
        share_link_id: None,
        refunded_at: None,
        refunded_quantity: 0,
        cart_line_id: None,
        refunding_quantity: 0,
        coupon_share: Money::ZERO,
        note_id: None,
    };
    Checkout {
        order: order::Model {
            id: order_id,
            buyer_id: buyer,
            status: order::Status::PendingPayment,
            total: amount,
            payment_reference: None,
            created_at: at,
            expires_at: at + Duration::minutes(30),
            paid_at: None,
            shipped_at: None,
            completed_at: None,
            cancelled_at: None,
            shipping_fee: Money::ZERO,
            buyer_note: None,
            ship_recipient_name: None,
            ship_phone: None,
            ship_province_code: None,
            ship_province_name: None,
            ship_city_code: None,
            ship_city_name: None,
            ship_district_code: None,
            ship_district_name: None,
            ship_detail: None,
            ship_postal_code: None,
            coupon_id: None,
            discount: Money::ZERO,
        },
        lines: vec![line],
        stock: BTreeMap::from([(sku, quantity)]),
        key: None,
        cart_lines: Vec::new(),
        coupon: None,
    }
}

pub(crate) async fn stock(app: &TestApp, id: Uuid) -> i32 {
    sku::Entity::find_by_id(id)
        .one(app.db())
        .await
        .expect("query")
        .expect("sku")
        .stock
}

pub(crate) async fn rows_of(
    app: &TestApp,
    c: &Checkout,
) -> (Option<order::Model>, Vec<order_line::Model>) {
    let o = order::Entity::find_by_id(c.order.id)
        .one(app.db())
        .await
        .expect("query");
    let lines = order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(c.order.id))
        .order_by_asc(order_line::Column::Id)
        .all(app.db())
        .await
        .expect("query");
    (o, lines)
}

#[tokio::test]
async fn orders_written_together_read_back_as_placed() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product, sku) = another_product(&app, &f, 10, false).await;
    let (other_product, other_sku) = another_product(&app, &f, 10, false).await;
    let buyer = fixtures::member(&app, "together", Tier::PushHand, None).await;
    // Microseconds, as the databases keep them.
    let at = Utc::now().trunc_subsecs(6);
    let mut two_skus = checkout(buyer.id, product, sku, 2, at);
    let mut second = checkout(buyer.id, other_product, other_sku, 3, at).lines;
    second[0].order_id = two_skus.order.id;
    two_skus.lines.append(&mut second);
    two_skus.stock.insert(other_sku, 3);
    let checkouts = [
        checkout(buyer.id, product, sku, 1, at),
        two_skus,
        checkout(buyer.id, product, sku, 4, at + Duration::microseconds(1)),
    ];
    let statements = app.metric("pushhand_checkout_statement_orders_count").await;
    let orders = app.metric("pushhand_checkout_statement_orders_sum").await;
    let outcomes = app.state.checkouts.write_all(&checkouts).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    // One statement for the three.
    assert_eq!(
        app.metric("pushhand_checkout_statement_orders_count").await - statements,
        1.0
    );
    assert_eq!(
        app.metric("pushhand_checkout_statement_orders_sum").await - orders,
        3.0
    );
    assert_eq!(app.metric("pushhand_checkout_splits_total").await, 0.0);
    for c in &checkouts {
        let (o, lines) = rows_of(&app, c).await;
        assert_eq!(o.as_ref(), Some(&c.order));
        assert_eq!(lines, c.lines);
    }
    assert_eq!(stock(&app, sku).await, 10 - 1 - 2 - 4);
    assert_eq!(stock(&app, other_sku).await, 10 - 3);
}

#[tokio::test]
async fn a_failed_statement_leaves_each_order_its_own_outcome() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product, sku) = another_product(&app, &f, 3, false).await;
    let buyer = fixtures::member(&app, "alone", Tier::PushHand, None).await;
    let at = Utc::now().trunc_subsecs(6);
    // 2 + 2 + 1 > 3: together they fail; in turn the first and the last fit.
    let short = [
        checkout(buyer.id, product, sku, 2, at),
        checkout(buyer.id, product, sku, 2, at),
        checkout(buyer.id, product, sku, 1, at),
    ];
    let outcomes = app.state.checkouts.write_all(&short).await;
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
    assert!(
        outcomes[1]
            .as_ref()
            .is_err_and(pushhand::db::is_check_violation),
        "{outcomes:?}"
    );
    assert_eq!(stock(&app, sku).await, 0);
    assert_eq!(
        rows_of(&app, &short[1]).await,
        (None, vec![]),
        "nothing half-written"
    );
    for c in [&short[0], &short[2]] {
        assert_eq!(rows_of(&app, c).await.0.as_ref(), Some(&c.order));
    }

    // A buyer that does not exist breaks a foreign key: that order alone fails.
    let (product, sku) = another_product(&app, &f, 5, false).await;
    let mixed = [
        checkout(buyer.id, product, sku, 1, at),
        checkout(Uuid::now_v7(), product, sku, 1, at),
        checkout(buyer.id, product, sku, 1, at),
    ];
    let outcomes = app.state.checkouts.write_all(&mixed).await;
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
    assert!(outcomes[1].is_err(), "{outcomes:?}");
    assert_eq!(rows_of(&app, &mixed[1]).await, (None, vec![]));
    assert_eq!(stock(&app, sku).await, 3);
    // Both combined statements failed and were split: 2 × (1 + 3) statements.
    assert_eq!(app.metric("pushhand_checkout_splits_total").await, 2.0);
    assert_eq!(
        app.metric("pushhand_checkout_statement_orders_count").await,
        8.0
    );
}

/// Many shoppers at a flash sale's last units, all at once: the units sold are exactly the
/// stock there was, every refusal is `OUT_OF_STOCK` for more units than are left, and a
/// refused order leaves no row.
#[tokio::test]
async fn concurrent_checkouts_of_one_sku_take_exactly_its_stock() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (_, sku) = another_product(&app, &f, 100, false).await;
    let buyer = fixtures::member(&app, "crowd", Tier::PushHand, None).await;
    let now = app.clock_now();
    let tries = join_all((0..120).map(|i| {
        let (app, buyer) = (&app, &buyer);
        let quantity = 1 + i % 3;
        async move {
            let line = LineRequest {
                sku_id: sku,
                quantity,
                share_code: None,
            };
            let placed = orders_svc::place_order(
                &app.state.checkouts,
                buyer,
                vec![line],
                Duration::minutes(30),
                now,
            )
            .await;
            (quantity, placed)
        }
    }))
    .await;
    let left = stock(&app, sku).await;
    assert!(left >= 0);
    let mut sold = 0;
    for (quantity, placed) in &tries {
        match placed {
            Ok((o, lines)) => {
                sold += quantity;
                assert_eq!(lines.len(), 1);
                let stored = order::Entity::find_by_id(o.id)
                    .one(app.db())
                    .await
                    .expect("query");
                assert_eq!(stored.as_ref(), Some(o));
            }
            Err(e) => {
                assert_eq!(e.code(), "OUT_OF_STOCK", "{e:?}");
                assert!(left < *quantity, "refused {quantity} with {left} left");
            }
        }
    }
    assert_eq!(sold, 100 - left, "units sold against units taken");
    let rows = order::Entity::find()
        .filter(order::Column::BuyerId.eq(buyer.id))
        .all(app.db())
        .await
        .expect("query");
    let placed = tries.iter().filter(|(_, p)| p.is_ok()).count();
    assert_eq!(rows.len(), placed, "no refused order left a row");
    let lines: i32 = order_line::Entity::find()
        .filter(order_line::Column::SkuId.eq(sku))
        .all(app.db())
        .await
        .expect("query")
        .iter()
        .map(|l| l.quantity)
        .sum();
    assert_eq!(lines, sold);
}
