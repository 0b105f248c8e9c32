//! The shop's past orders: completed checkouts of the S6 product by the S6 shoppers over 18
//! months, bulk-loaded so that S6 books into tables the size a live shop's are, with
//! planner statistics to match. (On empty tables PostgreSQL's cached plans go on
//! scanning `orders` whole as it grows under the load, until autovacuum's next pass.)

use chrono::Duration;
use entity::sku;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::bulk::{Format, Loader, Rows, at, id_at, random_times};

/// What the orders were for.
pub struct Checkout<'a> {
    pub buyers: &'a [Uuid],
    pub sku: &'a sku::Model,
    pub rebate_rate: entity::Rate,
    pub team_rebate_rate: entity::Rate,
}

/// Writes `orders` completed orders of one unit each, the buyers taking turns; the
/// product's sales count includes them. Returns the number of orders written.
pub async fn generate(
    db: &DatabaseConnection,
    orders: usize,
    c: &Checkout<'_>,
) -> anyhow::Result<usize> {
    if orders == 0 || c.buyers.is_empty() {
        return Ok(0);
    }
    let now = pushhand::service::now();
    let mut rng = ChaCha8Rng::seed_from_u64(0x0DE5_4157_2026);
    let times = random_times(
        &mut rng,
        orders,
        now - Duration::days(540),
        now - Duration::days(30),
    );

    let (mut loader, format) = Loader::begin(db).await?;
    let mut order_rows = Rows::new(
        "orders",
        "id, buyer_id, status, total, payment_reference, created_at, expires_at, paid_at, shipped_at, completed_at",
        format,
    );
    let mut line_rows = Rows::new(
        "order_lines",
        "id, order_id, product_id, sku_id, quantity, unit_price, amount, rebate_rate, team_rebate_rate, membership_activity, refunded_quantity",
        format,
    );
    let price = c.sku.price.fen();
    for (i, ms) in times.into_iter().enumerate() {
        let created = at(ms);
        let id = id_at(ms, &mut rng);
        order_rows
            .row()
            .uuid(id)
            .uuid(c.buyers[i % c.buyers.len()])
            .text("COMPLETED")
            .int(price)
            .text(&format!("history-{}", id.simple()))
            .time(created)
            .time(created + Duration::minutes(30))
            .time(created + Duration::minutes(2))
            .time(created + Duration::days(1))
            .time(created + Duration::days(8))
            .end();
        line_rows
            .row()
            .uuid(id_at(ms, &mut rng))
            .uuid(id)
            .uuid(c.sku.product_id)
            .uuid(c.sku.id)
            .int(1)
            .int(price)
            .int(price)
            .int(c.rebate_rate.bp().into())
            .int(c.team_rebate_rate.bp().into())
            .bool(false)
            .int(0)
            .end();
        if order_rows.rows >= format.chunk() || i + 1 == orders {
            loader.flush(&mut order_rows).await?;
            loader.flush(&mut line_rows).await?;
        }
    }
    loader.commit().await?;
    let product = match format {
        Format::SqliteValues => format!("X'{}'", c.sku.product_id.simple()),
        Format::PostgresCopy => format!("'{}'", c.sku.product_id.hyphenated()),
    };
    db.execute_unprepared(&format!(
        "UPDATE products SET sales_count = sales_count + {orders} WHERE id = {product}"
    ))
    .await?;
    Ok(orders)
}
