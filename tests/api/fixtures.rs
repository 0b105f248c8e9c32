//! A small catalog with known values, built straight through the service layer.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use entity::{Money, Rate, brand, category, merchant, product};
use pushhand::graphql::ids::{self, Kind};
use pushhand::service::catalog::{self as svc, NewProduct, NewSku, ProductRows};
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

pub struct Fixture {
    /// Two top-level categories.
    pub tops: Vec<category::Model>,
    /// Four leaves: 0 and 1 under `tops[0]`, 2 and 3 under `tops[1]`.
    pub leaves: Vec<category::Model>,
    pub merchant: merchant::Model,
    pub brands: Vec<brand::Model>,
    /// Published products by id, as stored.
    pub published: HashMap<Uuid, NewProduct>,
    pub draft: Uuid,
    pub unpublished: Uuid,
}

pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0)
        .single()
        .expect("valid time")
}

/// Product `i` of the fixture: values repeat with different periods, so every sort order
/// has ties that the id must break.
pub fn product(f: &Fixture, i: usize, status: product::Status) -> NewProduct {
    let base = 1_000 + (i as i64 * 37 % 50) * 100;
    let (name, name_en) = match i {
        0 => ("小米净水器".to_owned(), "Mi Water Purifier".to_owned()),
        1 => ("100% 纯棉毛巾".to_owned(), "100% Cotton Towel".to_owned()),
        _ => (format!("测试商品{i}"), format!("Test Product {i}")),
    };
    NewProduct {
        id: Uuid::now_v7(),
        merchant_id: f.merchant.id,
        brand_id: f.brands[i % f.brands.len()].id,
        category_id: f.leaves[i % f.leaves.len()].id,
        name,
        name_en: Some(name_en),
        description: None,
        status,
        rebate_rate: Rate::from_bp(500 + (i as i32 % 4) * 500),
        team_rebate_rate: Rate::from_bp(100),
        membership_activity: i.is_multiple_of(10),
        sales_count: (i as i64 * 7) % 10,
        created_at: base_time(),
        published_at: (status != product::Status::InCuration)
            .then(|| base_time() + Duration::minutes((i % 5) as i64)),
        skus: vec![
            NewSku {
                name: "标准".into(),
                price: Money::from_fen(base),
                stock: 100,
            },
            NewSku {
                name: "大号".into(),
                price: Money::from_fen(base + 5_000),
                stock: 0,
            },
        ],
        images: vec![format!("https://img.example/{i}.jpg")],
        tags: vec!["新品".into()],
    }
}

/// Builds the fixture with `n` published products, one draft and one delisted product.
pub async fn catalog(db: &DatabaseConnection, n: usize) -> Fixture {
    let mut tops = Vec::new();
    let mut leaves = Vec::new();
    for t in 0..2 {
        let top = svc::create_category(
            db,
            None,
            &format!("top-{t}"),
            &format!("顶级{t}"),
            &format!("Top {t}"),
            t,
        )
        .await
        .expect("category");
        for l in 0..2 {
            let slug = format!("leaf-{t}-{l}");
            leaves.push(
                svc::create_category(db, Some(top.id), &slug, &format!("叶{t}{l}"), &slug, l)
                    .await
                    .expect("leaf"),
            );
        }
        tops.push(top);
    }
    let merchant = svc::create_merchant(db, "测试商家")
        .await
        .expect("merchant");
    let mut brands = Vec::new();
    for b in 0..3 {
        brands.push(
            svc::create_brand(db, merchant.id, &format!("Brand {b}"))
                .await
                .expect("brand"),
        );
    }
    let mut f = Fixture {
        tops,
        leaves,
        merchant,
        brands,
        published: HashMap::new(),
        draft: Uuid::nil(),
        unpublished: Uuid::nil(),
    };
    let mut rows = ProductRows::default();
    for i in 0..n {
        let p = product(&f, i, product::Status::Published);
        f.published.insert(p.id, p.clone());
        rows.push(p, Uuid::now_v7).expect("valid product");
    }
    let draft = product(&f, n, product::Status::InCuration);
    let unpublished = product(&f, n + 1, product::Status::Unpublished);
    f.draft = draft.id;
    f.unpublished = unpublished.id;
    rows.push(draft, Uuid::now_v7).expect("valid product");
    rows.push(unpublished, Uuid::now_v7).expect("valid product");
    let txn = db.begin().await.expect("begin");
    rows.insert(&txn).await.expect("insert fixture");
    txn.commit().await.expect("commit");
    f
}

pub fn gid(kind: Kind, id: Uuid) -> String {
    ids::encode(kind, id).to_string()
}

/// The row id behind a product's global ID.
pub fn uuid_of(gid: &str) -> Uuid {
    ids::decode(gid, "id").expect("valid global id").1
}

/// Inserts a member row directly (tests need many; hashing a password for each would only
/// slow them down) and, with an upline, binds it through the hierarchy service.
pub async fn member(
    app: &crate::helpers::TestApp,
    name: &str,
    tier: entity::member::Tier,
    upline: Option<Uuid>,
) -> entity::member::Model {
    use entity::{binding, member};
    use pushhand::service::hierarchy::{self, NewBinding};
    use sea_orm::EntityTrait;
    let now = app.clock_now();
    let m = member::Model {
        id: Uuid::now_v7(),
        email: Some(format!("{name}@example.com")),
        phone: None,
        password_hash: "unused".into(),
        display_name: name.into(),
        tier,
        staff_role: None,
        invite_code: None,
        partner_link_code: None,
        partner_application: None,
        upline_id: None,
        frozen_at: None,
        frozen_reason: None,
        token_version: 0,
        created_at: now,
        merchant_id: None,
    };
    let txn = pushhand::db::begin_write(app.db()).await.expect("begin");
    member::Entity::insert(member::ActiveModel::from(m.clone()))
        .exec_without_returning(&txn)
        .await
        .expect("insert member");
    if let Some(upline) = upline {
        hierarchy::lock(&txn)
            .await
            .map_err(anyhow::Error::from)
            .expect("lock");
        let b = NewBinding {
            member: m.id,
            upline,
            kind: binding::Kind::InviteCode,
            expires_at: None,
            created_by: None,
        };
        hierarchy::attach(&txn, b, now, &mut Vec::new())
            .await
            .map_err(anyhow::Error::from)
            .expect("attach");
    }
    txn.commit().await.expect("commit");
    m
}

/// A published product of one SKU, as [`listed_product`] makes it.
pub struct Listing {
    pub merchant: Uuid,
    pub name: String,
    pub price_fen: i64,
    pub rebate_bp: i32,
    pub team_bp: i32,
    pub stock: i32,
    pub membership: bool,
}

impl Listing {
    /// 199.00, 15 % / 5 %, of `f`'s merchant: the tests' usual product.
    pub fn usual(f: &Fixture, stock: i32) -> Listing {
        Listing {
            merchant: f.merchant.id,
            name: "米家净水器".into(),
            price_fen: 19_900,
            rebate_bp: 1500,
            team_bp: 500,
            stock,
            membership: false,
        }
    }
}

/// Publishes `l` in `f`'s first brand and leaf category: the product's and its SKU's ids.
pub async fn listed_product(
    app: &crate::helpers::TestApp,
    f: &Fixture,
    l: Listing,
) -> (Uuid, Uuid) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let p = NewProduct {
        id: Uuid::now_v7(),
        merchant_id: l.merchant,
        brand_id: f.brands[0].id,
        category_id: f.leaves[0].id,
        name: l.name,
        name_en: None,
        description: None,
        status: product::Status::Published,
        rebate_rate: Rate::from_bp(l.rebate_bp),
        team_rebate_rate: Rate::from_bp(l.team_bp),
        membership_activity: l.membership,
        sales_count: 0,
        created_at: app.clock_now(),
        published_at: Some(app.clock_now()),
        skus: vec![NewSku {
            name: "标准".into(),
            price: Money::from_fen(l.price_fen),
            stock: l.stock,
        }],
        images: vec![],
        tags: vec![],
    };
    let id = svc::create_product(app.db(), p)
        .await
        .map_err(anyhow::Error::from)
        .expect("product");
    let sku = entity::sku::Entity::find()
        .filter(entity::sku::Column::ProductId.eq(id))
        .one(app.db())
        .await
        .expect("query")
        .expect("sku");
    (id, sku.id)
}
