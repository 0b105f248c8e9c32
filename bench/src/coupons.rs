//! S11's and S12's coupons (#29).
//!
//! S11 places S9's three SKUs (two merchants) from explicit lines with a coupon — ¥5 off
//! anything, a `GRANT` template's, `per_shopper` of them written beforehand for each of S6's
//! shoppers, one an order — then pays (orders/s; target ≥ 0.8 × S6 in the same run). No
//! address, so no shipping: what it adds to S6 is two more lines and the coupon (its check,
//! the discount's spread over the lines, the rebates on the paid amounts, its use).
//!
//! S12: `claimers` members claim from one `CLAIM` template of half as many coupons at the
//! same moment, each from a connection of their own (claims/s over the burst); exactly the
//! total is issued and the rest refused `COUPONS_EXHAUSTED`, which the run checks.

use chrono::{DateTime, Utc};
use entity::Money;
use entity::coupon_template::{self as template, Distribution, Kind, Scope};
use pushhand::graphql::ids;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::bulk::{Loader, MEMBER_COLUMNS, Rows, push_hand};

/// What S11 and S12 use.
pub struct Coupons {
    /// S11: for each of S6's shoppers (in their order), the global IDs of their coupons.
    pub s11: Vec<Vec<String>>,
    /// S12's template: global ID and row id.
    pub s12_template: String,
    pub s12_template_id: Uuid,
    /// S12's coupons: half its claimers.
    pub s12_total: i32,
    /// S12's claimers, signed in (tokens issued here: 1,000 sign-ins would measure argon2).
    pub s12_claimers: Vec<String>,
}

fn new_template(
    name: &str,
    distribution: Distribution,
    total: i32,
    per_member: i32,
    admin: Uuid,
    now: DateTime<Utc>,
) -> template::Model {
    template::Model {
        id: Uuid::now_v7(),
        name: name.into(),
        kind: Kind::Fixed,
        amount_off: Some(Money::from_fen(500)),
        rate_off: None,
        max_off: None,
        min_spend: Money::from_fen(0),
        scope: Scope::All,
        scope_ids: "[]".into(),
        valid_from: None,
        valid_until: None,
        valid_days: Some(30),
        total_quantity: total,
        issued: 0,
        per_member_limit: per_member,
        distribution,
        enabled: true,
        created_by: Some(admin),
        created_at: now,
    }
}

pub async fn generate(
    db: &DatabaseConnection,
    admin: Uuid,
    shoppers: &[Uuid],
    per_shopper: usize,
    claimers: usize,
    secret: &pushhand::config::Secret,
    now: DateTime<Utc>,
) -> anyhow::Result<Coupons> {
    let per = i32::try_from(per_shopper)?;
    let granted = i32::try_from(shoppers.len() * per_shopper)?.max(1);
    let s11 = new_template(
        "S11 ¥5",
        Distribution::Grant,
        granted,
        per.max(1),
        admin,
        now,
    );
    template::ActiveModel::from(s11.clone()).insert(db).await?;
    let s12_total = i32::try_from(claimers / 2)?.max(1);
    let s12 = new_template("S12 ¥5", Distribution::Claim, s12_total, 1, admin, now);
    template::ActiveModel::from(s12.clone()).insert(db).await?;

    let (mut loader, format) = Loader::begin(db).await?;
    let mut coupons = Rows::new(
        "coupons",
        "id, template_id, member_id, seq, claimed_at, valid_from, expires_at, in_use, order_id, used_at",
        format,
    );
    let expires = now + chrono::Duration::days(30);
    let mut s11_ids = Vec::with_capacity(shoppers.len());
    for shopper in shoppers {
        let mut mine = Vec::with_capacity(per_shopper);
        for seq in 1..=per_shopper {
            let id = Uuid::now_v7();
            coupons
                .row()
                .uuid(id)
                .uuid(s11.id)
                .uuid(*shopper)
                .int(seq as i64)
                .time(now)
                .time(now)
                .time(expires)
                .int(0)
                .null()
                .null()
                .end();
            mine.push(ids::encode(ids::Kind::Coupon, id).to_string());
            if coupons.rows >= format.chunk() {
                loader.flush(&mut coupons).await?;
            }
        }
        s11_ids.push(mine);
    }
    loader.flush(&mut coupons).await?;
    let password_hash = pushhand::service::auth::hash_password(crate::PASSWORD.into()).await?;
    let mut members = Rows::new("members", MEMBER_COLUMNS, format);
    for i in 0..claimers {
        // Beyond the team tree's codes (from 0) and the carts' shoppers' (from 2^39);
        // codes are 40 bits.
        push_hand(
            &mut members,
            Uuid::now_v7(),
            &format!("claimer{i}@bench.example"),
            &password_hash,
            &format!("领券会员{i}"),
            (3 << 38) + i as u64,
            now,
        );
        if members.rows >= format.chunk() {
            loader.flush(&mut members).await?;
        }
    }
    loader.flush(&mut members).await?;
    loader.commit().await?;
    template::Entity::update_many()
        .col_expr(
            template::Column::Issued,
            sea_orm::sea_query::Expr::value(granted),
        )
        .filter(template::Column::Id.eq(s11.id))
        .exec(db)
        .await?;
    // Tokens from the rows as stored (a token names the member's token version).
    let mut s12_claimers = Vec::with_capacity(claimers);
    for m in entity::member::Entity::find()
        .filter(entity::member::Column::Email.starts_with("claimer"))
        .all(db)
        .await?
    {
        s12_claimers.push(
            pushhand::service::auth::issue_token(secret, &m, now, chrono::Duration::days(1))
                .map_err(anyhow::Error::from)?,
        );
    }
    anyhow::ensure!(
        s12_claimers.len() == claimers,
        "S12's claimers not all written"
    );
    Ok(Coupons {
        s11: s11_ids,
        s12_template: ids::encode(ids::Kind::CouponTemplate, s12.id).to_string(),
        s12_template_id: s12.id,
        s12_total,
        s12_claimers,
    })
}

/// How many coupons `template` has issued, counted from its coupons and from its counter.
pub async fn issued(db: &DatabaseConnection, template: Uuid) -> anyhow::Result<(u64, i32)> {
    use sea_orm::PaginatorTrait;
    let rows = entity::coupon::Entity::find()
        .filter(entity::coupon::Column::TemplateId.eq(template))
        .count(db)
        .await?;
    let counter = template::Entity::find_by_id(template)
        .one(db)
        .await?
        .map_or(-1, |t| t.issued);
    Ok((rows, counter))
}
