//! Managing the catalog's frame (issue #31, item 2): the admins' writes to the two-level
//! category tree, to merchants (created, and members linked to act for them) and to which
//! merchant a brand belongs.
//!
//! Rules:
//! - The tree has two levels: a top-level category (no parent) holds leaf categories, and
//!   products sit in leaves. A parent must be a top-level, unarchived category; a category
//!   with subcategories cannot get a parent (`CATEGORY_HAS_CHILDREN`), and one with products
//!   cannot become top-level (`CATEGORY_HAS_PRODUCTS`).
//! - Archiving hides a category from the tree (`categories`, `children`) and closes it to new
//!   submissions and publishing (`CATEGORY_ARCHIVED`). A category with published products —
//!   its own or, for a top-level one, its leaves' — cannot be archived
//!   (`CATEGORY_HAS_PUBLISHED_PRODUCTS`), nor a top-level one with unarchived leaves
//!   (`CATEGORY_HAS_CHILDREN`). Archived categories are not changed or moved again.
//! - A brand moves to another merchant only while it has no products
//!   (`BRAND_HAS_PRODUCTS`): a product's merchant is its brand's.
//! - A member acts for one merchant (`linkMerchantUser` gives it the MERCHANT role, or moves
//!   it to another merchant); curators and admins are not linked (`MEMBER_IS_STAFF`).
//! - The brand cap per leaf category is unchanged: checked when publishing.
//!
//! Every write checks every field of its input at once (one `VALIDATION` naming each bad
//! field), writes its audit entry in its transaction, and after the commit publishes
//! [`Kind::CatalogRowChanged`](crate::events::Kind::CatalogRowChanged) for the row it
//! changed: every instance's kept rows ([`super::immutable`]) and the cached catalog
//! answers drop it.
//!
//! Concurrency: category writes take the `catalog` lock row first, so two moves cannot
//! together make a third level; archiving takes the `publishing` lock after it, the one
//! publishing takes, so a product cannot be published into a category being archived.
//! A brand's reassignment takes the brand's row; a submission reads it shared in its
//! transaction, so a product is never submitted under a brand that has just moved.

use chrono::{DateTime, Utc};
use entity::{brand, category, member, merchant, product};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events};

/// Longest category name (Chinese or English), in characters.
pub const MAX_CATEGORY_NAME: usize = 64;
/// Longest slug, in characters.
pub const MAX_SLUG: usize = 64;
/// Longest merchant name, in characters.
pub const MAX_MERCHANT_NAME: usize = 120;
/// Largest display position.
pub const MAX_POSITION: i32 = 100_000;

/// A category as an admin creates it.
#[derive(Clone, Debug, Default)]
pub struct NewCategory {
    /// `None`: top-level.
    pub parent_id: Option<Uuid>,
    pub slug: String,
    pub name_zh: String,
    pub name_en: String,
    pub position: i32,
}

/// What `updateCategory` changes: the fields given.
#[derive(Clone, Debug, Default)]
pub struct CategoryChanges {
    pub slug: Option<String>,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
}

/// A slug: 1 to [`MAX_SLUG`] lower-case ASCII letters, digits and inner hyphens.
fn slug(field: &'static str, raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = !s.is_empty()
        && s.len() <= MAX_SLUG
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::validation(
            field,
            format!(
                "1 to {MAX_SLUG} lower-case letters, digits and hyphens, not starting or ending with one"
            ),
        ))
    }
}

fn position(field: &'static str, p: i32) -> Result<i32> {
    if (0..=MAX_POSITION).contains(&p) {
        Ok(p)
    } else {
        Err(Error::validation(
            field,
            format!("must be between 0 and {MAX_POSITION}"),
        ))
    }
}

/// Takes the `catalog` lock row: the first statement of every category write.
async fn lock_catalog(txn: &impl ConnectionTrait) -> Result<()> {
    txn.execute_unprepared("UPDATE write_locks SET version = version + 1 WHERE name = 'catalog'")
        .await?;
    Ok(())
}

fn slug_taken(e: sea_orm::DbErr) -> Error {
    if crate::db::is_unique_violation(&e) {
        Error::rule("CATEGORY_SLUG_TAKEN", "a category with this slug exists")
    } else {
        e.into()
    }
}

fn archived() -> Error {
    Error::rule("CATEGORY_ARCHIVED", "the category is archived")
}

/// Whether `parent` may hold leaves: it exists, is top-level and is not archived; else the
/// message for `field`.
async fn check_parent(
    db: &impl ConnectionTrait,
    parent: Uuid,
    child: Option<Uuid>,
) -> Result<std::result::Result<category::Model, &'static str>> {
    if Some(parent) == child {
        return Ok(Err("a category cannot be its own parent"));
    }
    Ok(match category::Entity::find_by_id(parent).one(db).await? {
        None => Err("no such category"),
        Some(p) if p.archived_at.is_some() => Err("the category is archived"),
        Some(p) if p.parent_id.is_some() => {
            Err("must be a top-level category (the tree has two levels)")
        }
        Some(p) => Ok(p),
    })
}

async fn category_in(txn: &impl ConnectionTrait, id: Uuid) -> Result<category::Model> {
    category::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| Error::not_found("category"))
}

/// Creates a category (top-level, or a leaf under a top-level one). Audited.
pub async fn create_category(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    input: NewCategory,
    now: DateTime<Utc>,
) -> Result<category::Model> {
    let mut errors = FieldErrors::default();
    let slug = errors.check(slug("input.slug", &input.slug));
    let name_zh = errors.check(super::text::name(
        "input.nameZh",
        &input.name_zh,
        MAX_CATEGORY_NAME,
    ));
    let name_en = errors.check(super::text::name(
        "input.nameEn",
        &input.name_en,
        MAX_CATEGORY_NAME,
    ));
    let position = errors.check(position("input.position", input.position));
    let txn = crate::db::begin_write(db).await?;
    lock_catalog(&txn).await?;
    if let Some(parent) = input.parent_id
        && let Err(message) = check_parent(&txn, parent, None).await?
    {
        errors.push("input.parentId", message);
    }
    errors.finish()?;
    let (Some(slug), Some(name_zh), Some(name_en), Some(position)) =
        (slug, name_zh, name_en, position)
    else {
        return Err(Error::internal(anyhow::anyhow!("checked fields missing")));
    };
    let model = category::Model {
        id: Uuid::now_v7(),
        parent_id: input.parent_id,
        slug,
        name_zh,
        name_en,
        position,
        archived_at: None,
    };
    category::Entity::insert(category::ActiveModel::from(model.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(slug_taken)?;
    audit::record(
        &txn,
        actor,
        Action::CategoryCreated,
        Some((TargetType::Category, model.id)),
        json!({ "parentId": model.parent_id, "slug": model.slug, "nameZh": model.name_zh,
                "nameEn": model.name_en, "position": model.position }),
        now,
    )
    .await?;
    txn.commit().await?;
    events.publish(vec![Event::catalog_row(model.id)]).await;
    Ok(model)
}

/// Renames a category or changes its slug (the fields given; none is `VALIDATION` on
/// `input`). Audited with the previous values.
pub async fn update_category(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    changes: CategoryChanges,
    now: DateTime<Utc>,
) -> Result<category::Model> {
    let mut errors = FieldErrors::default();
    let slug = changes
        .slug
        .as_deref()
        .and_then(|s| errors.check(slug("input.slug", s)));
    let name_zh = changes
        .name_zh
        .as_deref()
        .and_then(|s| errors.check(super::text::name("input.nameZh", s, MAX_CATEGORY_NAME)));
    let name_en = changes
        .name_en
        .as_deref()
        .and_then(|s| errors.check(super::text::name("input.nameEn", s, MAX_CATEGORY_NAME)));
    if changes.slug.is_none() && changes.name_zh.is_none() && changes.name_en.is_none() {
        errors.push("input", "give at least one of slug, nameZh and nameEn");
    }
    errors.finish()?;
    let txn = crate::db::begin_write(db).await?;
    lock_catalog(&txn).await?;
    let before = category_in(&txn, id).await?;
    if before.archived_at.is_some() {
        return Err(archived());
    }
    let mut update = category::Entity::update_many().filter(category::Column::Id.eq(id));
    let mut changed = serde_json::Map::new();
    if let Some(s) = &slug {
        update = update.col_expr(category::Column::Slug, Expr::value(s.clone()));
        changed.insert(
            "slug".into(),
            json!({ "value": s, "previous": before.slug }),
        );
    }
    if let Some(s) = &name_zh {
        update = update.col_expr(category::Column::NameZh, Expr::value(s.clone()));
        changed.insert(
            "nameZh".into(),
            json!({ "value": s, "previous": before.name_zh }),
        );
    }
    if let Some(s) = &name_en {
        update = update.col_expr(category::Column::NameEn, Expr::value(s.clone()));
        changed.insert(
            "nameEn".into(),
            json!({ "value": s, "previous": before.name_en }),
        );
    }
    update.exec(&txn).await.map_err(slug_taken)?;
    audit::record(
        &txn,
        actor,
        Action::CategoryUpdated,
        Some((TargetType::Category, id)),
        serde_json::Value::Object(changed),
        now,
    )
    .await?;
    let after = category_in(&txn, id).await?;
    txn.commit().await?;
    events.publish(vec![Event::catalog_row(id)]).await;
    Ok(after)
}

/// Moves a category under another top-level one (`parent` `Some`), or to the top level
/// (`None`), at `position` among its new siblings. Audited with the previous place.
pub async fn move_category(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    parent: Option<Uuid>,
    new_position: i32,
    now: DateTime<Utc>,
) -> Result<category::Model> {
    let mut errors = FieldErrors::default();
    let new_position = errors.check(position("input.position", new_position));
    let txn = crate::db::begin_write(db).await?;
    lock_catalog(&txn).await?;
    let before = category_in(&txn, id).await?;
    if before.archived_at.is_some() {
        return Err(archived());
    }
    if let Some(p) = parent
        && let Err(message) = check_parent(&txn, p, Some(id)).await?
    {
        errors.push("input.parentId", message);
    }
    errors.finish()?;
    let Some(new_position) = new_position else {
        return Err(Error::internal(anyhow::anyhow!("checked position missing")));
    };
    if parent.is_some() {
        let children = category::Entity::find()
            .filter(category::Column::ParentId.eq(id))
            .count(&txn)
            .await?;
        if children > 0 {
            return Err(Error::rule(
                "CATEGORY_HAS_CHILDREN",
                "a category with subcategories stays top-level (the tree has two levels)",
            ));
        }
    } else if before.parent_id.is_some() {
        let products = product::Entity::find()
            .filter(product::Column::CategoryId.eq(id))
            .count(&txn)
            .await?;
        if products > 0 {
            return Err(Error::rule(
                "CATEGORY_HAS_PRODUCTS",
                "a category with products stays a leaf (products sit in leaf categories)",
            ));
        }
    }
    category::Entity::update_many()
        .col_expr(category::Column::ParentId, Expr::value(parent))
        .col_expr(category::Column::Position, Expr::value(new_position))
        .filter(category::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        Action::CategoryMoved,
        Some((TargetType::Category, id)),
        json!({ "parentId": parent, "position": new_position,
                "previous": { "parentId": before.parent_id, "position": before.position } }),
        now,
    )
    .await?;
    let after = category_in(&txn, id).await?;
    txn.commit().await?;
    events.publish(vec![Event::catalog_row(id)]).await;
    Ok(after)
}

/// Archives a category (see the module's rules). Archiving an archived category changes
/// nothing and answers it as it is. Audited.
pub async fn archive_category(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<category::Model> {
    let txn = crate::db::begin_write(db).await?;
    lock_catalog(&txn).await?;
    // Publishing's lock: no product is published into the category while it is archived.
    txn.execute_unprepared(
        "UPDATE write_locks SET version = version + 1 WHERE name = 'publishing'",
    )
    .await?;
    let before = category_in(&txn, id).await?;
    if before.archived_at.is_some() {
        return Ok(before);
    }
    let live_children = category::Entity::find()
        .filter(category::Column::ParentId.eq(id))
        .filter(category::Column::ArchivedAt.is_null())
        .count(&txn)
        .await?;
    if live_children > 0 {
        return Err(Error::rule(
            "CATEGORY_HAS_CHILDREN",
            "archive its subcategories first",
        ));
    }
    let in_tree = Condition::any()
        .add(product::Column::CategoryId.eq(id))
        .add(
            product::Column::CategoryId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(category::Column::Id)
                    .from(category::Entity)
                    .and_where(category::Column::ParentId.eq(id))
                    .to_owned(),
            ),
        );
    let published = product::Entity::find()
        .select_only()
        .column(product::Column::Id)
        .filter(in_tree)
        .filter(product::Column::Status.eq(product::Status::Published))
        .limit(1)
        .into_tuple::<Uuid>()
        .one(&txn)
        .await?;
    if published.is_some() {
        return Err(Error::rule(
            "CATEGORY_HAS_PUBLISHED_PRODUCTS",
            "unpublish its products first",
        ));
    }
    category::Entity::update_many()
        .col_expr(category::Column::ArchivedAt, Expr::value(Some(now)))
        .filter(category::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        Action::CategoryArchived,
        Some((TargetType::Category, id)),
        json!({}),
        now,
    )
    .await?;
    let after = category_in(&txn, id).await?;
    txn.commit().await?;
    events.publish(vec![Event::catalog_row(id)]).await;
    Ok(after)
}

/// Creates a merchant. Audited.
pub async fn create_merchant(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    name: &str,
    now: DateTime<Utc>,
) -> Result<merchant::Model> {
    let name = super::text::name("name", name, MAX_MERCHANT_NAME)?;
    let txn = crate::db::begin_write(db).await?;
    let m = super::catalog::create_merchant(&txn, &name).await?;
    audit::record(
        &txn,
        actor,
        Action::MerchantCreated,
        Some((TargetType::Merchant, m.id)),
        json!({ "name": m.name }),
        now,
    )
    .await?;
    txn.commit().await?;
    events.publish(vec![Event::catalog_row(m.id)]).await;
    Ok(m)
}

/// Has `member_id` act for `merchant_id` (the MERCHANT staff role), or moves it there from
/// another merchant. Linking it where it is already changes nothing. Audited with the
/// previous merchant.
pub async fn link_merchant_user(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    member_id: Uuid,
    merchant_id: Uuid,
    now: DateTime<Utc>,
) -> Result<member::Model> {
    let txn = crate::db::begin_write(db).await?;
    let m = super::members::get(&txn, member_id).await?;
    super::catalog::merchant(&txn, merchant_id).await?;
    match m.staff_role {
        Some(member::StaffRole::Merchant) if m.merchant_id == Some(merchant_id) => return Ok(m),
        Some(member::StaffRole::Curator | member::StaffRole::Admin) => {
            return Err(Error::rule(
                "MEMBER_IS_STAFF",
                "curators and admins do not act for a merchant",
            ));
        }
        _ => {}
    }
    member::Entity::update_many()
        .col_expr(
            member::Column::StaffRole,
            Expr::value(member::StaffRole::Merchant),
        )
        .col_expr(member::Column::MerchantId, Expr::value(Some(merchant_id)))
        .filter(member::Column::Id.eq(member_id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        Action::MerchantUserLinked,
        Some((TargetType::Member, member_id)),
        json!({ "merchantId": merchant_id, "previous": m.merchant_id }),
        now,
    )
    .await?;
    let after = super::members::get(&txn, member_id).await?;
    txn.commit().await?;
    // Its remembered row goes (on this instance; elsewhere within the viewer TTL).
    events.publish(Event::changed([member_id], member_id)).await;
    Ok(after)
}

/// Gives brand `brand_id` to merchant `merchant_id` (`BRAND_HAS_PRODUCTS` once it has
/// products). Giving it to its merchant changes nothing. Audited with the previous owner.
pub async fn assign_brand(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    brand_id: Uuid,
    merchant_id: Uuid,
    now: DateTime<Utc>,
) -> Result<brand::Model> {
    let txn = crate::db::begin_write(db).await?;
    let b = brand::Entity::find_by_id(brand_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("brand"))?;
    super::catalog::merchant(&txn, merchant_id).await?;
    if b.merchant_id == merchant_id {
        return Ok(b);
    }
    let products = product::Entity::find()
        .filter(product::Column::BrandId.eq(brand_id))
        .count(&txn)
        .await?;
    if products > 0 {
        return Err(Error::rule(
            "BRAND_HAS_PRODUCTS",
            "a brand with products stays with its merchant",
        ));
    }
    brand::Entity::update_many()
        .col_expr(brand::Column::MerchantId, Expr::value(merchant_id))
        .filter(brand::Column::Id.eq(brand_id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        Action::BrandAssigned,
        Some((TargetType::Brand, brand_id)),
        json!({ "merchantId": merchant_id, "previous": b.merchant_id }),
        now,
    )
    .await?;
    txn.commit().await?;
    events.publish(vec![Event::catalog_row(brand_id)]).await;
    Ok(brand::Model { merchant_id, ..b })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_words_joined_by_hyphens() {
        for good in ["home", "home-bedding", "a1", "x"] {
            assert_eq!(slug("s", good).ok().as_deref(), Some(good));
        }
        for bad in [
            "",
            "Home",
            "home bedding",
            "-home",
            "home-",
            "家居",
            &"a".repeat(65),
        ] {
            assert!(slug("s", bad).is_err(), "{bad:?}");
        }
    }
}
