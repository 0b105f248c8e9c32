//! The cart (购物车) and the checkout preview.
//!
//! A member's cart holds at most [`MAX_LINES`] lines, one per SKU, of 1 to [`MAX_QUANTITY`]
//! units each (`CART_FULL` beyond the first, `VALIDATION` on `quantity` outside the second).
//! Adding a SKU already in the cart adds its units to the line; concurrent adds of one SKU
//! add both (every write of a member's cart takes the member's row first, as addresses do,
//! and the unique index on member and SKU backs the one line up).
//!
//! A line keeps the share code it was added with; adding again with another code replaces
//! it (the last click wins), adding without one keeps it. Who gets credit is the rule of
//! SPEC §2.4, worked out as the payment would ([`earnings::attribution_of`]): the buyer's
//! own purchase as a push-hand or partner (`SELF_PURCHASE`); else the share link's push-hand
//! or partner (`PROMOTION`); else the buyer's active upline (`BOUND_REBATE`, or
//! `PARTNER_REWARD` through a partner's link); a membership-activity product's referrer earns
//! a fixed `MEMBERSHIP_REWARD` instead. The cart says so per line, in the rule names an
//! earning's explanation uses.
//!
//! Lines are never dropped silently: a line whose SKU was deleted, whose product is no longer
//! on sale, or whose SKU lacks the units stays, marked unavailable with the reason
//! ([`Unavailable`]); a line remembers the price it was added at, so a price change since is
//! flagged. Another member's line is `NOT_FOUND`.
//!
//! Reading a cart costs a fixed number of statements whatever its number of lines: the lines,
//! their SKUs with their products, the share links, their members, the buyer's binding and
//! upline — one statement each. Every write publishes the member's change after its commit,
//! so no cache keeps an old cart.
//!
//! [`checkout_preview`] works out an order without writing anything ([`orders::prepare`],
//! the same reads and rules `placeOrder` uses): lines, parcels and their shipping, totals,
//! and per line who earns, and what the viewer itself would earn — its own amounts only.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{Money, binding, cart_line, earning, member, order_line, product, sku};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::earnings::{self, Attribution, Planned, Policy};
use super::funnel::{self, Codes, Via};
use super::orders::{self, OrderLimits, OrderRequest};
use super::{hierarchy, shipping};
use crate::error::{Error, Result};
use crate::events::{Event, Events, Kind};

/// The most lines one cart holds.
pub const MAX_LINES: u64 = 100;
/// The most units one cart line holds.
pub const MAX_QUANTITY: i32 = 999;
/// The most units of one line ordered at once (an order line's own limit).
const MAX_ORDERED: i32 = 99;

/// Why a cart line cannot be ordered now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// The SKU no longer exists.
    Deleted,
    /// Its product is not on sale (delisted, or back in curation).
    Unpublished,
    /// No units left.
    OutOfStock,
    /// Fewer units left than the line holds.
    NotEnoughStock,
}

/// Who would get credit for a line, and by which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credit {
    pub attribution: Attribution,
    /// The level-1 earner's display name (`None`: nobody).
    pub earner_name: Option<String>,
    /// A membership-activity line with a referrer: a fixed reward instead of a rate.
    pub membership_reward: bool,
    /// The line's share code names a link that does not count (the buyer's own, a plain
    /// buyer's): why, for the summary.
    pub code_ignored: bool,
    /// Through a note: its public title (the summary names it).
    pub note_title: Option<String>,
}

impl Credit {
    /// The rule that would book the level-1 earning; `None` when nobody earns.
    pub fn rule(&self) -> Option<earning::Kind> {
        if self.membership_reward {
            return Some(earning::Kind::MembershipReward);
        }
        match self.attribution {
            Attribution::SelfPurchase { .. } => Some(earning::Kind::SelfPurchase),
            Attribution::Promotion { .. } => Some(earning::Kind::Promotion),
            Attribution::Bound { partner: true, .. } => Some(earning::Kind::PartnerReward),
            Attribution::Bound { .. } => Some(earning::Kind::BoundRebate),
            Attribution::Nobody => None,
        }
    }

    /// The rule in words, named as an earning's explanation names it, e.g. "PROMOTION
    /// (推广赚钱): bought through 小王's share link".
    pub fn summary(&self) -> String {
        let name = self.earner_name.as_deref().unwrap_or("?");
        let how = match self.attribution {
            Attribution::SelfPurchase { .. } => {
                "your own purchase as a push-hand or partner (自购省钱); a share code does not \
                 change that"
                    .to_owned()
            }
            Attribution::Promotion { note: Some(_), .. } => format!(
                "bought through {name}'s note «{}»",
                self.note_title.as_deref().unwrap_or("?")
            ),
            Attribution::Promotion { .. } => format!("bought through {name}'s share link"),
            Attribution::Bound { partner: true, .. } => {
                format!("bought by a member bound through {name}'s partner link")
            }
            Attribution::Bound { .. } => format!("bought by a member bound to {name}"),
            Attribution::Nobody => {
                "nobody: no share link of a push-hand or partner, and no upline".to_owned()
            }
        };
        let mut out = match self.rule() {
            Some(earning::Kind::MembershipReward) => format!(
                "{}: fixed reward for a membership sale to {name}, {how}",
                earnings::kind_name(earning::Kind::MembershipReward)
            ),
            Some(rule) => format!("{}: {how}", earnings::kind_name(rule)),
            None => how,
        };
        if self.code_ignored {
            out.push_str(" (the share code does not count: it is the buyer's own or a buyer's)");
        }
        out
    }
}

/// A cart line with what the cart shows about it.
#[derive(Clone, Debug)]
pub struct Line {
    pub row: cart_line::Model,
    /// `None` once deleted.
    pub sku: Option<sku::Model>,
    /// `None` once deleted; may be unpublished.
    pub product: Option<product::Model>,
    pub unavailable: Option<Unavailable>,
    pub credit: Credit,
}

impl Line {
    /// The SKU's price now (`None` once deleted).
    pub fn unit_price(&self) -> Option<Money> {
        self.sku.as_ref().map(|s| s.price)
    }

    /// Whether the price now differs from the price when the line was added.
    pub fn price_changed(&self) -> bool {
        self.sku
            .as_ref()
            .is_some_and(|s| s.price != self.row.unit_price)
    }
}

/// A member's cart: its lines, oldest first.
#[derive(Clone, Debug)]
pub struct Cart {
    pub lines: Vec<Line>,
}

impl Cart {
    /// The available lines at today's prices.
    pub fn subtotal(&self) -> Money {
        Money::from_fen(
            self.lines
                .iter()
                .filter(|l| l.unavailable.is_none())
                .filter_map(|l| Some(l.unit_price()?.fen() * i64::from(l.row.quantity)))
                .sum(),
        )
    }
}

/// The people a set of lines may credit, read once for all of them: the share codes' members
/// and the buyer's upline with its binding.
pub(crate) struct Credits {
    buyer: member::Model,
    sharers: HashMap<Uuid, member::Model>,
    upline: Option<(member::Model, binding::Model)>,
}

impl Credits {
    /// Reads the members of `owners` (the share codes' members; one statement) and, for a
    /// plain buyer with an upline, its binding and upline (two).
    pub(crate) async fn load(
        db: &impl ConnectionTrait,
        buyer: &member::Model,
        owners: impl IntoIterator<Item = Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Credits> {
        let mut credits = Credits {
            buyer: buyer.clone(),
            sharers: HashMap::new(),
            upline: None,
        };
        // A push-hand's or partner's own purchase: nothing else counts.
        if buyer.tier != member::Tier::Buyer {
            return Ok(credits);
        }
        let mut ids: Vec<Uuid> = owners.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            credits.sharers = member::Entity::find()
                .filter(super::one_of(db, member::Column::Id, ids))
                .all(db)
                .await?
                .into_iter()
                .map(|m| (m.id, m))
                .collect();
        }
        if buyer.upline_id.is_some()
            && let Some(b) = hierarchy::active_binding(db, buyer.id, now).await?
            && let Some(u) = member::Entity::find_by_id(b.upline_id).one(db).await?
        {
            credits.upline = Some((u, b));
        }
        Ok(credits)
    }

    /// The buyer's binding and upline, when it has an active one.
    pub(crate) fn upline(&self) -> Option<&(member::Model, binding::Model)> {
        self.upline.as_ref()
    }

    /// Who a line through `via` (a share link or a note, if any) of a product (a
    /// membership-activity one or not) credits.
    pub(crate) fn of(&self, via: Option<&Via>, membership_activity: bool) -> Credit {
        let sharer = via.and_then(|v| Some((v.referral, self.sharers.get(&v.referral.member_id)?)));
        let upline = self.upline.as_ref().map(|(u, b)| (u, b));
        let attribution = earnings::attribution_of(&self.buyer, sharer, upline);
        let earner_name = match attribution {
            Attribution::SelfPurchase { .. } => Some(self.buyer.display_name.clone()),
            Attribution::Promotion { sharer, .. } => {
                self.sharers.get(&sharer.id).map(|m| m.display_name.clone())
            }
            Attribution::Bound { .. } => self.upline.as_ref().map(|(u, _)| u.display_name.clone()),
            Attribution::Nobody => None,
        };
        let referred = !matches!(
            attribution,
            Attribution::SelfPurchase { .. } | Attribution::Nobody
        );
        Credit {
            attribution,
            earner_name,
            membership_reward: membership_activity && referred,
            code_ignored: via.is_some()
                && !matches!(
                    attribution,
                    Attribution::Promotion { .. } | Attribution::SelfPurchase { .. }
                ),
            note_title: match attribution {
                Attribution::Promotion { note: Some(_), .. } => {
                    via.and_then(|v| v.note_title.clone())
                }
                _ => None,
            },
        }
    }
}

/// The member's cart, oldest line first.
pub async fn cart(
    db: &impl ConnectionTrait,
    buyer: &member::Model,
    now: DateTime<Utc>,
) -> Result<Cart> {
    let rows = rows(db, buyer.id).await?;
    detail(db, buyer, rows, now).await
}

/// The member's cart lines as stored, oldest first: one statement. What the cart shows about
/// them (SKU, availability, credit) is [`detail`]'s, read only when asked for.
pub async fn rows(db: &impl ConnectionTrait, member_id: Uuid) -> Result<Vec<cart_line::Model>> {
    Ok(cart_line::Entity::find()
        .filter(cart_line::Column::MemberId.eq(member_id))
        .order_by_asc(cart_line::Column::CreatedAt)
        .order_by_asc(cart_line::Column::Id)
        .all(db)
        .await?)
}

/// What the cart shows about `rows` (the buyer's lines): their SKUs with their products, the
/// share links, their members, the buyer's binding and upline — one statement each, whatever
/// the number of lines.
pub async fn detail(
    db: &impl ConnectionTrait,
    buyer: &member::Model,
    rows: Vec<cart_line::Model>,
    now: DateTime<Utc>,
) -> Result<Cart> {
    if rows.is_empty() {
        return Ok(Cart { lines: Vec::new() });
    }
    let skus: HashMap<Uuid, (sku::Model, Option<product::Model>)> =
        super::skus_with_products(db, rows.iter().map(|l| l.sku_id)).await?;
    let codes = Codes::read(db, rows.iter().filter_map(|l| l.share_code.clone())).await?;
    let credits = Credits::load(db, buyer, codes.owners(), now).await?;
    let lines = rows
        .into_iter()
        .map(|row| {
            let (sku, product) = match skus.get(&row.sku_id) {
                Some((s, p)) => (Some(s.clone()), p.clone()),
                None => (None, None),
            };
            let unavailable = match (&sku, &product) {
                (None, _) => Some(Unavailable::Deleted),
                (Some(_), p)
                    if !p
                        .as_ref()
                        .is_some_and(|p| p.status == product::Status::Published) =>
                {
                    Some(Unavailable::Unpublished)
                }
                (Some(s), _) if s.stock <= 0 => Some(Unavailable::OutOfStock),
                (Some(s), _) if s.stock < row.quantity => Some(Unavailable::NotEnoughStock),
                _ => None,
            };
            let via = match (&row.share_code, &sku) {
                (Some(c), Some(s)) => codes.for_product(c, s.product_id),
                _ => None,
            };
            let membership = product.as_ref().is_some_and(|p| p.membership_activity);
            let credit = credits.of(via.as_ref(), membership);
            Line {
                row,
                sku,
                product,
                unavailable,
                credit,
            }
        })
        .collect();
    Ok(Cart { lines })
}

fn check_quantity(quantity: i32) -> Result<()> {
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(Error::validation(
            "quantity",
            format!("must be 1 to {MAX_QUANTITY}"),
        ));
    }
    Ok(())
}

/// Adds `quantity` units of a SKU on sale to the member's cart, through `share_code` if
/// given (a code of a link to the SKU's product; `VALIDATION` on `shareCode` otherwise), and
/// answers the cart's lines. A SKU already in the cart gets the units added (at most
/// [`MAX_QUANTITY`] in all), the code replaced when one is given, and today's price as its
/// price when added; a new SKU needs room (`CART_FULL` at [`MAX_LINES`]). A SKU not on sale
/// is `NOT_FOUND`.
///
/// One statement does it all ([`upsert`]), in a transaction holding the member's row (the
/// cart's line count is then the member's alone to change); only a refusal reads more, to
/// say why.
pub async fn add(
    db: &DatabaseConnection,
    events: &Events,
    buyer: &member::Model,
    sku_id: Uuid,
    quantity: i32,
    share_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<cart_line::Model>> {
    check_quantity(quantity)?;
    let code = match share_code.map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => Some(
            funnel::normalise(raw)
                .ok_or_else(|| Error::validation("shareCode", "unknown share code"))?,
        ),
    };
    let txn = super::begin_as_member(db, buyer.id).await?;
    let added = upsert(&txn, buyer.id, sku_id, quantity, code.as_deref(), now).await;
    match added {
        Ok(true) => {}
        Ok(false) => {
            drop(txn);
            return Err(why_not_added(db, sku_id, code.as_deref()).await);
        }
        Err(e) if crate::db::is_check_violation(&e) => {
            drop(txn);
            let held = cart_line::Entity::find()
                .filter(cart_line::Column::MemberId.eq(buyer.id))
                .filter(cart_line::Column::SkuId.eq(sku_id))
                .one(db)
                .await?
                .map_or(0, |l| l.quantity);
            return Err(Error::validation(
                "quantity",
                format!("the line holds {held} units; at most {MAX_QUANTITY} in all"),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    txn.commit().await?;
    changed(events, buyer.id).await;
    rows(db, buyer.id).await
}

/// Adds the units to the member's line of the SKU, or a new line, in one statement: the SKU
/// (its product on sale), the share code (a link to its product) and the room (the line
/// exists, or fewer than [`MAX_LINES`] do) are conditions of the insert; the units of an
/// existing line are added in the database, whose check refuses more than
/// [`MAX_QUANTITY`]. `false` when a condition failed (nothing written).
async fn upsert(
    db: &impl ConnectionTrait,
    member_id: Uuid,
    sku_id: Uuid,
    quantity: i32,
    code: Option<&str>,
    now: DateTime<Utc>,
) -> std::result::Result<bool, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let sql = "INSERT INTO cart_lines \
         (id, member_id, sku_id, quantity, share_code, unit_price, created_at, updated_at) \
         SELECT $1, $2, s.id, $3, $4, s.price, $5, $5 \
         FROM skus s JOIN products p ON p.id = s.product_id \
         WHERE s.id = $6 AND p.status = $7 \
         AND ($4 IS NULL OR EXISTS (SELECT 1 FROM share_links l \
              WHERE l.code = $4 AND l.product_id = s.product_id) \
              OR EXISTS (SELECT 1 FROM notes n JOIN note_products np ON np.note_id = n.id \
              WHERE n.share_code = $4 AND n.is_public = $9 AND np.product_id = s.product_id)) \
         AND (EXISTS (SELECT 1 FROM cart_lines c WHERE c.member_id = $2 AND c.sku_id = s.id) \
              OR (SELECT COUNT(*) FROM cart_lines c WHERE c.member_id = $2) < $8) \
         ON CONFLICT (member_id, sku_id) DO UPDATE SET \
         quantity = cart_lines.quantity + excluded.quantity, \
         unit_price = excluded.unit_price, \
         share_code = COALESCE(excluded.share_code, cart_lines.share_code), \
         updated_at = excluded.updated_at";
    // SQLite numbers its parameters `?N`.
    let sql = if backend == sea_orm::DbBackend::Sqlite {
        sql.replace('$', "?")
    } else {
        sql.to_owned()
    };
    let values: [sea_orm::Value; 9] = [
        Uuid::now_v7().into(),
        member_id.into(),
        quantity.into(),
        code.map(str::to_owned).into(),
        now.into(),
        sku_id.into(),
        "PUBLISHED".into(),
        (MAX_LINES as i64).into(),
        true.into(),
    ];
    let done = db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend, sql, values,
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Why [`upsert`] wrote nothing: the SKU is not on sale (`NOT_FOUND`), the share code is not
/// a link to its product (`VALIDATION`), or the cart is full (`CART_FULL`).
async fn why_not_added(db: &DatabaseConnection, sku_id: Uuid, code: Option<&str>) -> Error {
    let found = match sku::Entity::find_by_id(sku_id)
        .find_also_related(product::Entity)
        .one(db)
        .await
    {
        Ok(found) => found,
        Err(e) => return e.into(),
    };
    let Some((s, _)) = found.filter(|(_, p)| {
        p.as_ref()
            .is_some_and(|p| p.status == product::Status::Published)
    }) else {
        return Error::not_found("SKU");
    };
    if let Some(code) = code {
        match Codes::read(db, [code.to_owned()]).await {
            Err(e) => return e,
            Ok(codes) if codes.for_product(code, s.product_id).is_none() => {
                return Error::validation("shareCode", "unknown share code for this product");
            }
            Ok(_) => {}
        }
    }
    Error::rule(
        "CART_FULL",
        format!("a cart holds at most {MAX_LINES} lines: remove one first"),
    )
}

/// Sets the units of one of the member's cart lines (1 to [`MAX_QUANTITY`]) and answers the
/// cart's lines. Another member's line is `NOT_FOUND`.
pub async fn update_line(
    db: &DatabaseConnection,
    events: &Events,
    buyer: &member::Model,
    line_id: Uuid,
    quantity: i32,
    now: DateTime<Utc>,
) -> Result<Vec<cart_line::Model>> {
    let member_id = buyer.id;
    check_quantity(quantity)?;
    let updated = cart_line::Entity::update_many()
        .col_expr(cart_line::Column::Quantity, Expr::value(quantity))
        .col_expr(cart_line::Column::UpdatedAt, Expr::value(now))
        .filter(cart_line::Column::Id.eq(line_id))
        .filter(cart_line::Column::MemberId.eq(member_id))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(Error::not_found("cart line"));
    }
    changed(events, member_id).await;
    rows(db, member_id).await
}

/// Removes lines from the member's cart, all or none, and answers the cart's lines: one that is not
/// the member's (or gone) is `NOT_FOUND` and nothing is removed.
pub async fn remove_lines(
    db: &DatabaseConnection,
    events: &Events,
    buyer: &member::Model,
    ids: &[Uuid],
) -> Result<Vec<cart_line::Model>> {
    let member_id = buyer.id;
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(Error::validation("lineIds", "name at least one line"));
    }
    if ids.len() as u64 > MAX_LINES {
        return Err(Error::validation(
            "lineIds",
            format!("at most {MAX_LINES} lines"),
        ));
    }
    let txn = super::begin_as_member(db, member_id).await?;
    let deleted = cart_line::Entity::delete_many()
        .filter(super::one_of(
            &txn,
            cart_line::Column::Id,
            ids.iter().copied(),
        ))
        .filter(cart_line::Column::MemberId.eq(member_id))
        .exec(&txn)
        .await?;
    if deleted.rows_affected != ids.len() as u64 {
        // Dropped with the transaction: nothing is removed.
        return Err(Error::not_found("cart line"));
    }
    txn.commit().await?;
    changed(events, member_id).await;
    rows(db, member_id).await
}

/// The member's cart lines `ids` for a checkout, in that order, with their SKUs and those
/// SKUs' products (a deleted SKU is absent), in one statement: one that is not the member's,
/// or gone, is `NOT_FOUND`; one of more units than an order line takes is `VALIDATION` on
/// `cartLineIds[i]`.
pub async fn for_checkout(
    db: &impl ConnectionTrait,
    member_id: Uuid,
    ids: &[Uuid],
) -> Result<(Vec<cart_line::Model>, super::SkusWithProducts)> {
    let rows = lines_with_skus(member_id, ids, db)
        .into_model::<super::rows::ByPosition<(cart_line::Model, sku::Model, product::Model)>>()
        .all(db)
        .await?;
    let rows = rows.into_iter().map(|row| row.0);
    lines_found(db, member_id, ids, rows).await
}

/// The member's cart lines `ids` (inner-)joined to their SKUs and products, every column
/// of the three, to be read by position (`service::rows`).
fn lines_with_skus(
    member_id: Uuid,
    ids: &[Uuid],
    db: &impl ConnectionTrait,
) -> sea_orm::Select<cart_line::Entity> {
    use sea_orm::{Iterable, JoinType, QuerySelect, RelationDef, RelationTrait};
    let to_sku: RelationDef = cart_line::Entity::belongs_to(sku::Entity)
        .from(cart_line::Column::SkuId)
        .to(sku::Column::Id)
        .into();
    // A line whose SKU was deleted is not in the inner joins; [`lines_found`] reads it alone.
    cart_line::Entity::find()
        .join(JoinType::InnerJoin, to_sku)
        .join(JoinType::InnerJoin, sku::Relation::Product.def())
        .columns(sku::Column::iter())
        .columns(product::Column::iter())
        .filter(super::one_of(
            db,
            cart_line::Column::Id,
            ids.iter().copied(),
        ))
        .filter(cart_line::Column::MemberId.eq(member_id))
}

/// What a cart checkout to an address reads beside its lines ([`for_checkout_to`]): the
/// address, and the shipping rules of the lines' merchants, each with its surcharge to the
/// address's province only (all a quote to that province looks at).
pub struct Destination {
    pub address: entity::address::Model,
    pub rules: HashMap<Uuid, shipping::Rule>,
}

/// A row of [`for_checkout_to`]: a cart line, its SKU and product, the address (`None`:
/// not the member's, or none), the product's merchant's rule and its surcharge to the
/// address's province, if any.
struct LineToAddress {
    line: cart_line::Model,
    sku: sku::Model,
    product: product::Model,
    address: Option<entity::address::Model>,
    rule: Option<entity::shipping_rule::Model>,
    surcharge: Option<Money>,
}

impl super::rows::Positional for LineToAddress {
    fn read(c: &mut super::rows::Columns<'_>) -> std::result::Result<Self, sea_orm::DbErr> {
        use sea_orm::Iterable;
        Ok(LineToAddress {
            line: super::rows::Positional::read(c)?,
            sku: super::rows::Positional::read(c)?,
            product: super::rows::Positional::read(c)?,
            address: c.optional(entity::address::Column::iter().count())?,
            rule: c.optional(entity::shipping_rule::Column::iter().count())?,
            surcharge: c.optional_money()?,
        })
    }
}

/// [`for_checkout`] to the member's address `address_id`, in the same one statement: each
/// line's row also carries the address (left-joined on its id and the member) and its
/// merchant's shipping rule with the surcharge to the address's province (left-joined), so
/// that a cart checkout reads its lines, SKUs, products, address and shipping rules in one
/// round trip. The destination is `None` when no line came back (every line gone, another
/// member's, or of a deleted SKU): the caller reads the address alone, as before. An address
/// that is not the member's is `NOT_FOUND`, as [`super::addresses::get`] says.
pub async fn for_checkout_to(
    db: &impl ConnectionTrait,
    member_id: Uuid,
    ids: &[Uuid],
    address_id: Uuid,
) -> Result<(
    Vec<cart_line::Model>,
    super::SkusWithProducts,
    Option<Destination>,
)> {
    use entity::{address, shipping_rule, shipping_surcharge};
    use sea_orm::sea_query::{Condition, ExprTrait, JoinType};
    use sea_orm::{Iterable, QuerySelect, QueryTrait};
    let mut select = lines_with_skus(member_id, ids, db)
        .columns(address::Column::iter())
        .columns(shipping_rule::Column::iter())
        .column(shipping_surcharge::Column::Amount);
    let merchant = Expr::col((product::Entity, product::Column::MerchantId));
    QueryTrait::query(&mut select)
        .join(
            JoinType::LeftJoin,
            address::Entity,
            Condition::all()
                .add(Expr::col((address::Entity, address::Column::Id)).eq(address_id))
                .add(Expr::col((address::Entity, address::Column::MemberId)).eq(member_id)),
        )
        .join(
            JoinType::LeftJoin,
            shipping_rule::Entity,
            Expr::col((shipping_rule::Entity, shipping_rule::Column::MerchantId))
                .equals((product::Entity, product::Column::MerchantId)),
        )
        .join(
            JoinType::LeftJoin,
            shipping_surcharge::Entity,
            Condition::all()
                .add(
                    Expr::col((
                        shipping_surcharge::Entity,
                        shipping_surcharge::Column::MerchantId,
                    ))
                    .eq(merchant),
                )
                .add(
                    Expr::col((
                        shipping_surcharge::Entity,
                        shipping_surcharge::Column::ProvinceCode,
                    ))
                    .equals((address::Entity, address::Column::ProvinceCode)),
                ),
        );
    let rows = select
        .into_model::<super::rows::ByPosition<LineToAddress>>()
        .all(db)
        .await?;
    let mut destination: Option<Destination> = None;
    let mut not_found = false;
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        let LineToAddress {
            line,
            sku,
            product,
            address,
            rule,
            surcharge,
        } = row.0;
        lines.push((line, sku, product));
        let Some(address) = address else {
            not_found = true;
            continue;
        };
        let d = destination.get_or_insert_with(|| Destination {
            address,
            rules: HashMap::new(),
        });
        if let Some(rule) = rule {
            d.rules
                .entry(rule.merchant_id)
                .or_insert_with(|| shipping::Rule {
                    surcharges: surcharge
                        .map(|amount| (d.address.province_code.clone(), amount))
                        .into_iter()
                        .collect(),
                    row: rule,
                });
        }
    }
    // The lines' errors first, as when the address was read after them.
    let (lines, skus) = lines_found(db, member_id, ids, lines.into_iter()).await?;
    if not_found {
        return Err(Error::not_found("address"));
    }
    Ok((lines, skus, destination))
}

/// The lines `ids` in that order from the joined `rows`, a line missing from them (its SKU
/// deleted, or not the member's, or gone) read alone: `NOT_FOUND` unless it is the member's.
async fn lines_found(
    db: &impl ConnectionTrait,
    member_id: Uuid,
    ids: &[Uuid],
    rows: impl ExactSizeIterator<Item = (cart_line::Model, sku::Model, product::Model)>,
) -> Result<(Vec<cart_line::Model>, super::SkusWithProducts)> {
    let mut skus = HashMap::with_capacity(rows.len());
    let mut found: HashMap<Uuid, cart_line::Model> = HashMap::with_capacity(rows.len());
    for (line, s, p) in rows {
        skus.insert(s.id, (s, Some(p)));
        found.insert(line.id, line);
    }
    let missing: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| !found.contains_key(id))
        .collect();
    if !missing.is_empty() {
        // Lines of deleted SKUs (or not the member's, or gone: not found either way).
        for line in cart_line::Entity::find()
            .filter(super::one_of(db, cart_line::Column::Id, missing))
            .filter(cart_line::Column::MemberId.eq(member_id))
            .all(db)
            .await?
        {
            found.insert(line.id, line);
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let line = found
            .remove(id)
            .ok_or_else(|| Error::not_found("cart line"))?;
        if line.quantity > MAX_ORDERED {
            return Err(Error::validation(
                format!("cartLineIds[{i}]"),
                format!(
                    "at most {MAX_ORDERED} units of a line are ordered at once; lower it first"
                ),
            ));
        }
        out.push(line);
    }
    Ok((out, skus))
}

/// One line of a checkout preview.
#[derive(Clone)]
pub struct PreviewLine {
    /// The line as `placeOrder` would write it (unit price, amount, rates).
    pub line: order_line::Model,
    /// The SKU as read for the preview.
    pub sku: Option<sku::Model>,
    /// The share code it would be credited through, if any.
    pub share_code: Option<String>,
    pub credit: Credit,
    /// What the viewer itself would earn on it (its own earnings only; empty for a plain
    /// buyer, who earns nothing on its own purchase), before any daily cap.
    pub earnings: Vec<Planned>,
}

/// What an order would be: [`checkout_preview`]'s answer.
pub struct Preview {
    pub lines: Vec<PreviewLine>,
    pub address: Option<entity::address::Model>,
    pub parcels: Vec<shipping::Quote>,
    pub goods: Money,
    pub shipping_fee: Money,
    /// goods − the coupon's discount + shipping.
    pub total: Money,
    /// The coupon asked for: what it takes off, or why it does not apply.
    pub coupon: Option<orders::CouponOutcome>,
}

/// Works out the order `req` would place for `buyer`, writing nothing: the same checks and
/// reads as `placeOrder` (and the same errors, but for stock and the unpaid cap, which only
/// placing decides), then who earns on each line and what the buyer itself would.
pub async fn checkout_preview(
    db: &impl ConnectionTrait,
    buyer: &member::Model,
    req: OrderRequest,
    limits: OrderLimits,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Preview> {
    orders::check_lines(&req.lines)?;
    let p = orders::prepare(db, buyer, req, limits, now).await?;
    let credits = Credits::load(db, buyer, p.codes.owners(), now).await?;
    let lines = p
        .lines
        .into_iter()
        .map(|line| {
            let via = p.codes.of_line(&line);
            let credit = credits.of(via.as_ref(), line.membership_activity);
            // The base is the line's paid amount, after its coupon share.
            let facts = earnings::line_facts(&line);
            // Level 1 is worked out before the uplines' share of the budget, so the
            // viewer's own amount needs no upline.
            let earnings = earnings::plan(&facts, credit.attribution, [None, None], policy)
                .into_iter()
                .filter(|e| e.member == buyer.id)
                .map(|mut e| {
                    earnings::explain_coupon(&mut e.explanation, &line);
                    e
                })
                .collect();
            PreviewLine {
                sku: p.skus.get(&line.sku_id).cloned(),
                share_code: via.map(|v| v.code),
                line,
                credit,
                earnings,
            }
        })
        .collect();
    Ok(Preview {
        lines,
        address: p.address,
        parcels: p.quotes,
        goods: p.goods,
        shipping_fee: p.shipping_fee,
        total: p.total,
        coupon: p.coupon,
    })
}

/// Puts back into the member's cart the lines of an order that withdrew right after it was
/// placed from the cart (the unpaid-order cap, checked again once written, found it one too
/// many): each line as it was ordered — SKU, units, share code, price — as a new cart line
/// (the old one's id stays with the withdrawn order's line). A SKU the member has added to
/// the cart again meanwhile keeps the line it has.
pub async fn restore(
    db: &DatabaseConnection,
    events: &Events,
    member_id: Uuid,
    lines: &[order_line::Model],
    codes: &HashMap<Uuid, String>,
    now: DateTime<Utc>,
) -> Result<()> {
    use sea_orm::sea_query::OnConflict;
    let rows: Vec<cart_line::ActiveModel> = lines
        .iter()
        .filter(|l| l.cart_line_id.is_some())
        .map(|l| {
            cart_line::ActiveModel::from(cart_line::Model {
                id: Uuid::now_v7(),
                member_id,
                sku_id: l.sku_id,
                quantity: l.quantity,
                share_code: l
                    .share_link_id
                    .or(l.note_id)
                    .and_then(|id| codes.get(&id).cloned()),
                unit_price: l.unit_price,
                created_at: now,
                updated_at: now,
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    cart_line::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([cart_line::Column::MemberId, cart_line::Column::SkuId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    changed(events, member_id).await;
    Ok(())
}

/// Tells every cache that the member's own views changed (its cart is one; its row did
/// not), after the write committed.
async fn changed(events: &Events, member: Uuid) {
    events
        .publish(vec![Event::new(member, Kind::OwnChanged, member)])
        .await;
}
