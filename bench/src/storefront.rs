//! S8's and S9's storefront: two merchants with shipping rules (a flat fee under a free
//! threshold, one with a remote-province surcharge), products of each with stock for any run,
//! and a default address for every shopper. S8 previews a push-hand's 5-line cart; S9 checks
//! out a cart filled beforehand — `placeOrder` from its three lines with the address, the
//! payment callback — a 3-line order across 2 merchants, with shipping ([`carts`]: a shopper
//! per order, since a cart holds one line per SKU and ordering empties it); S9-path is the
//! buyer's whole path per order, the three `addToCart` included.

use chrono::{DateTime, Utc};
use entity::sku;
use pushhand::service::addresses::{self, AddressInput};
use pushhand::service::audit::Actor;
use pushhand::service::catalog::{self, NewProduct, NewSku};
use pushhand::service::shipping::{self, RuleInput, SurchargeInput};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

/// What S8 and S9 use, as global IDs.
pub struct Storefront {
    /// S9's three SKUs: two of merchant A's product, one of merchant B's.
    pub order_skus: [String; 3],
    /// S8's five SKUs (the three above and two more of merchant A's second product).
    pub cart_skus: [String; 5],
    /// Each shopper's default address, in the shoppers' order.
    pub shopper_addresses: Vec<String>,
    /// The S8 push-hand's address.
    pub buyer_address: String,
    /// S9's three SKUs with their prices (fen), for the carts filled beforehand.
    pub order_sku_rows: [(Uuid, i64); 3],
    /// The S8 push-hand's address as stored: the fields of every filled cart's address.
    pub address_row: entity::address::Model,
}

/// A cart filled before S9 runs: its shopper's token, its three lines, the address.
pub struct FilledCart {
    pub token: String,
    pub line_ids: Vec<String>,
    pub address_id: String,
}

/// Makes `n` push-hand shoppers, each with a default address (the fields of `like`, a row
/// made through the service) and a cart of S9's three SKUs, one unit each, written in bulk;
/// answers them with their tokens, signed with `secret`.
pub async fn carts(
    db: &DatabaseConnection,
    front: &Storefront,
    n: usize,
    secret: &pushhand::config::Secret,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<FilledCart>> {
    use crate::bulk::{Loader, MEMBER_COLUMNS, Rows, push_hand};
    use pushhand::graphql::ids::Kind;
    let password_hash = pushhand::service::auth::hash_password(crate::PASSWORD.into()).await?;
    let (mut loader, format) = Loader::begin(db).await?;
    let mut members = Rows::new("members", MEMBER_COLUMNS, format);
    let mut addresses = Rows::new(
        "addresses",
        "id, member_id, recipient_name, phone, province_code, province_name, city_code, city_name, \
         district_code, district_name, detail, postal_code, is_default, created_at, updated_at",
        format,
    );
    let mut lines = Rows::new(
        "cart_lines",
        "id, member_id, sku_id, quantity, share_code, unit_price, created_at, updated_at",
        format,
    );
    let like = &front.address_row;
    let mut out = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let member = Uuid::now_v7();
        ids.push(member);
        // Beyond the team tree's codes (its members are numbered from 0).
        push_hand(
            &mut members,
            member,
            &format!("cart{i}@bench.example"),
            &password_hash,
            &format!("购物车买家{i}"),
            (1 << 39) + i as u64,
            now,
        );
        let address = Uuid::now_v7();
        let row = addresses.row().uuid(address).uuid(member);
        row.text(&like.recipient_name)
            .text(&like.phone)
            .text(&like.province_code)
            .text(&like.province_name)
            .text(&like.city_code)
            .text(&like.city_name)
            .text(&like.district_code)
            .text(&like.district_name)
            .text(&like.detail);
        match &like.postal_code {
            Some(code) => row.text(code),
            None => row.null(),
        }
        .bool(true)
        .time(now)
        .time(now)
        .end();
        let mut line_ids = Vec::with_capacity(3);
        for (k, (sku, price)) in front.order_sku_rows.iter().enumerate() {
            let id = Uuid::now_v7();
            // Oldest first, in S9's SKU order.
            let at = now + chrono::Duration::milliseconds(k as i64);
            lines
                .row()
                .uuid(id)
                .uuid(member)
                .uuid(*sku)
                .int(1)
                .null()
                .int(*price)
                .time(at)
                .time(at)
                .end();
            line_ids.push(gid(Kind::CartLine, id));
        }
        out.push(FilledCart {
            token: String::new(),
            line_ids,
            address_id: gid(Kind::Address, address),
        });
        if members.rows >= format.chunk() || i + 1 == n {
            loader.flush(&mut members).await?;
            loader.flush(&mut addresses).await?;
            loader.flush(&mut lines).await?;
        }
    }
    loader.commit().await?;
    // Tokens from the rows as stored (a token names the member's token version).
    let rows: std::collections::HashMap<Uuid, entity::member::Model> =
        entity::member::Entity::find()
            .filter(entity::member::Column::Email.starts_with("cart"))
            .all(db)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
    for (cart, id) in out.iter_mut().zip(&ids) {
        let m = rows
            .get(id)
            .ok_or_else(|| anyhow::anyhow!("cart shopper {id} not written"))?;
        cart.token =
            pushhand::service::auth::issue_token(secret, m, now, chrono::Duration::days(1))
                .map_err(anyhow::Error::from)?;
    }
    Ok(out)
}

fn gid(kind: pushhand::graphql::ids::Kind, id: Uuid) -> String {
    pushhand::graphql::ids::encode(kind, id).to_string()
}

async fn product(
    db: &DatabaseConnection,
    template: &entity::product::Model,
    merchant_id: Uuid,
    name: &str,
    prices_fen: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<sku::Model>> {
    let id = catalog::create_product(
        db,
        NewProduct {
            id: Uuid::now_v7(),
            merchant_id,
            brand_id: template.brand_id,
            category_id: template.category_id,
            name: name.into(),
            name_en: None,
            description: None,
            status: entity::product::Status::Published,
            rebate_rate: entity::Rate::from_bp(1000),
            team_rebate_rate: entity::Rate::from_bp(300),
            membership_activity: false,
            sales_count: 0,
            created_at: now,
            published_at: Some(now),
            skus: prices_fen
                .iter()
                .enumerate()
                .map(|(i, fen)| NewSku {
                    name: format!("规格{}", i + 1),
                    price: entity::Money::from_fen(*fen),
                    stock: 1_000_000_000,
                })
                .collect(),
            images: vec![],
            tags: vec![],
        },
    )
    .await
    .map_err(anyhow::Error::from)?;
    Ok(sku::Entity::find()
        .filter(sku::Column::ProductId.eq(id))
        .order_by_asc(sku::Column::Id)
        .all(db)
        .await?)
}

fn address(name: &str) -> AddressInput {
    AddressInput {
        recipient_name: name.into(),
        phone: "13812345678".into(),
        province_code: "110000".into(),
        city_code: "110100".into(),
        district_code: "110105".into(),
        detail: "建国路 88 号 1 号楼 1001".into(),
        postal_code: Some("100022".into()),
        is_default: Some(true),
    }
}

/// Creates the storefront's merchants, rules, products and addresses.
pub async fn generate(
    db: &DatabaseConnection,
    template: &entity::product::Model,
    admin: Uuid,
    buyer: Uuid,
    shoppers: &[Uuid],
    now: DateTime<Utc>,
) -> anyhow::Result<Storefront> {
    use pushhand::graphql::ids::Kind;
    let a = catalog::create_merchant(db, "压测商家甲")
        .await
        .map_err(anyhow::Error::from)?;
    let b = catalog::create_merchant(db, "压测商家乙")
        .await
        .map_err(anyhow::Error::from)?;
    let actor = Actor::new(admin, None);
    // A: 8.00 under 99.00 (an S9 order's A part is 69.80: charged); B: 12.00 under 199.00,
    // Xinjiang +20.00.
    for (merchant, fee, free, surcharges) in [
        (a.id, 800, 9_900, vec![]),
        (
            b.id,
            1_200,
            19_900,
            vec![SurchargeInput {
                province_codes: vec!["650000".into()],
                amount: Decimal::new(2_000, 2),
            }],
        ),
    ] {
        shipping::set_rule(
            db,
            &actor,
            merchant,
            &RuleInput {
                base_fee: Decimal::new(fee, 2),
                free_threshold: Some(Decimal::new(free, 2)),
                surcharges,
            },
            now,
        )
        .await
        .map_err(anyhow::Error::from)?;
    }
    let a1 = product(db, template, a.id, "压测·甲一", &[2_990, 3_990], now).await?;
    let a2 = product(db, template, a.id, "压测·甲二", &[1_500, 2_500], now).await?;
    let b1 = product(db, template, b.id, "压测·乙一", &[5_900], now).await?;
    let events = pushhand::events::Events::in_process(pushhand::metrics::Metrics::new());
    let mut shopper_addresses = Vec::with_capacity(shoppers.len());
    for (i, s) in shoppers.iter().enumerate() {
        let row = addresses::add(db, &events, *s, &address(&format!("买家{i}")), now)
            .await
            .map_err(anyhow::Error::from)?;
        shopper_addresses.push(gid(Kind::Address, row.id));
    }
    let buyer_address = addresses::add(db, &events, buyer, &address("推手"), now)
        .await
        .map_err(anyhow::Error::from)?;
    let order_sku_rows = [&a1[0], &a1[1], &b1[0]].map(|s| (s.id, s.price.fen()));
    let order_skus = order_sku_rows.map(|(id, _)| gid(Kind::Sku, id));
    let cart_skus = [a1[0].id, a1[1].id, b1[0].id, a2[0].id, a2[1].id].map(|id| gid(Kind::Sku, id));
    Ok(Storefront {
        order_skus,
        cart_skus,
        shopper_addresses,
        buyer_address: gid(Kind::Address, buyer_address.id),
        order_sku_rows,
        address_row: buyer_address,
    })
}
