//! Catalog management in GraphQL (issue #31): the admins' mutations on the category tree,
//! merchants and brand ownership. The rules are the service's
//! ([`crate::service::catalog_admin`]); every mutation is ADMIN only (`FORBIDDEN` to anyone
//! else), audited, and seen by every instance at once (the rows each keeps in memory drop on
//! an event over the bus).

use async_graphql::{Context, ID, InputObject, Object, Result};

use super::catalog::{Brand, Category, Merchant};
use super::members::Member;
use crate::graphql::context::{actor, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::service::catalog_admin as svc;

/// A new category.
#[derive(InputObject)]
pub struct CreateCategoryInput {
    /// A top-level, unarchived category to put it under (a leaf); omit for a top-level
    /// category.
    pub parent_id: Option<ID>,
    /// 1–64 lower-case letters, digits and inner hyphens; unique (`CATEGORY_SLUG_TAKEN`).
    pub slug: String,
    /// Chinese name, 1–64 characters.
    pub name_zh: String,
    /// English name, 1–64 characters.
    pub name_en: String,
    /// Display order among its siblings, 0–100000 (default 0; ties in creation order).
    #[graphql(default)]
    pub position: i32,
}

/// What to change of a category: the fields given (at least one).
#[derive(InputObject)]
pub struct UpdateCategoryInput {
    /// The category.
    pub id: ID,
    /// A new slug (rules as in `CreateCategoryInput`).
    pub slug: Option<String>,
    /// A new Chinese name.
    pub name_zh: Option<String>,
    /// A new English name.
    pub name_en: Option<String>,
}

/// Where to move a category.
#[derive(InputObject)]
pub struct MoveCategoryInput {
    /// The category.
    pub id: ID,
    /// Its new parent, a top-level unarchived category; omit or null to make it top-level.
    pub parent_id: Option<ID>,
    /// Its display order among its new siblings, 0–100000.
    pub position: i32,
}

fn category_id(id: &ID, field: &'static str) -> Result<uuid::Uuid> {
    Ok(ids::decode_as(id, Kind::Category, field)?)
}

#[derive(Default)]
pub struct CatalogAdminMutation;

#[Object]
impl CatalogAdminMutation {
    /// ADMIN: creates a category. Every bad field is named at once (`VALIDATION`, with
    /// `extensions.fields`); a taken slug is `CATEGORY_SLUG_TAKEN`.
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The category.")] input: CreateCategoryInput,
    ) -> Result<Category> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let parent_id = input
            .parent_id
            .as_ref()
            .map(|p| category_id(p, "input.parentId"))
            .transpose()?;
        let created = svc::create_category(
            &st.db,
            &st.events,
            &actor(ctx, admin),
            svc::NewCategory {
                parent_id,
                slug: input.slug,
                name_zh: input.name_zh,
                name_en: input.name_en,
                position: input.position,
            },
            st.clock.now(),
        )
        .await?;
        Ok(Category(created))
    }

    /// ADMIN: renames a category or changes its slug; every instance answers with the new
    /// names at once. `CATEGORY_ARCHIVED` for an archived one.
    async fn update_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The category and the fields to change.")] input: UpdateCategoryInput,
    ) -> Result<Category> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = category_id(&input.id, "input.id")?;
        let updated = svc::update_category(
            &st.db,
            &st.events,
            &actor(ctx, admin),
            id,
            svc::CategoryChanges {
                slug: input.slug,
                name_zh: input.name_zh,
                name_en: input.name_en,
            },
            st.clock.now(),
        )
        .await?;
        Ok(Category(updated))
    }

    /// ADMIN: moves a category under another top-level category or to the top level, and
    /// sets its position. The tree keeps two levels: `CATEGORY_HAS_CHILDREN` when a
    /// category with subcategories would get a parent, `CATEGORY_HAS_PRODUCTS` when one with
    /// products would become top-level.
    async fn move_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The category, its new parent and position.")] input: MoveCategoryInput,
    ) -> Result<Category> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = category_id(&input.id, "input.id")?;
        let parent = input
            .parent_id
            .as_ref()
            .map(|p| category_id(p, "input.parentId"))
            .transpose()?;
        let moved = svc::move_category(
            &st.db,
            &st.events,
            &actor(ctx, admin),
            id,
            parent,
            input.position,
            st.clock.now(),
        )
        .await?;
        Ok(Category(moved))
    }

    /// ADMIN: archives a category: it leaves the tree and takes no new products (its
    /// products keep pointing at it). `CATEGORY_HAS_PUBLISHED_PRODUCTS` while it (or, for a
    /// top-level one, a subcategory) has published products; `CATEGORY_HAS_CHILDREN` while a
    /// top-level one has unarchived subcategories. Archiving it again changes nothing.
    async fn archive_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The category.")] id: ID,
    ) -> Result<Category> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = category_id(&id, "id")?;
        let archived =
            svc::archive_category(&st.db, &st.events, &actor(ctx, admin), id, st.clock.now())
                .await?;
        Ok(Category(archived))
    }

    /// ADMIN: creates a merchant (a supplier). Give it brands (`createBrand` with its
    /// `merchantId`) and users (`linkMerchantUser`).
    async fn create_merchant(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Its trading name, 1–120 characters.")] name: String,
    ) -> Result<Merchant> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let m = svc::create_merchant(
            &st.db,
            &st.events,
            &actor(ctx, admin),
            &name,
            st.clock.now(),
        )
        .await?;
        Ok(Merchant(m))
    }

    /// ADMIN: has a member act for a merchant (it gets the MERCHANT role), or moves it to
    /// another merchant. Curators and admins are `MEMBER_IS_STAFF`. Takes effect on the
    /// member's next request (on another instance, within `PUSHHAND_VIEWER_TTL_MS`).
    async fn link_merchant_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member (its `Member` or `MemberProfile` ID).")] member_id: ID,
        #[graphql(desc = "The merchant.")] merchant_id: ID,
    ) -> Result<Member> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let member = ids::decode_member(&member_id, "memberId")?;
        let merchant = ids::decode_as(&merchant_id, Kind::Merchant, "merchantId")?;
        let m = svc::link_merchant_user(
            &st.db,
            &st.events,
            &actor(ctx, admin),
            member,
            merchant,
            st.clock.now(),
        )
        .await?;
        Ok(Member(m))
    }

    /// ADMIN: gives a brand to another merchant; `BRAND_HAS_PRODUCTS` once it has products
    /// (a product's merchant is its brand's).
    async fn assign_brand(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The brand.")] brand_id: ID,
        #[graphql(desc = "Its new merchant.")] merchant_id: ID,
    ) -> Result<Brand> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let brand = ids::decode_as(&brand_id, Kind::Brand, "brandId")?;
        let merchant = ids::decode_as(&merchant_id, Kind::Merchant, "merchantId")?;
        let b = svc::assign_brand(
            &st.db,
            &st.events,
            &actor(ctx, admin),
            brand,
            merchant,
            st.clock.now(),
        )
        .await?;
        Ok(Brand(b))
    }
}
