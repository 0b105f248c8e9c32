//! The Relay `Node` interface and the root `node(id:)` field: any object with a global ID can
//! be fetched again from its ID alone, with the same visibility rules as its own root field.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::addresses::Address;
use super::cart::CartLine;
use super::catalog::{Brand, Category, Merchant, Product, Sku};
use super::earnings::{Earning, Withdrawal};
use super::members::{Member, MemberProfile};
use super::orders::{Order, OrderLine};
use crate::error::Error;
use crate::graphql::context::{state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::service::catalog as svc;
use crate::service::members::{self, MemberView};

/// An object with a globally unique, opaque ID (the Relay `Node` interface): no two objects
/// of any types share an ID, and `node(id:)` fetches the object again from its ID alone.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "Opaque global ID, unique across all types: store it as a string, never parse it. \
            `node(id:)` answers it with an object of the same type."
))]
pub enum Node {
    Product(Product),
    Sku(Sku),
    Brand(Brand),
    Category(Category),
    Merchant(Merchant),
    Member(Member),
    MemberProfile(MemberProfile),
    Order(Order),
    OrderLine(OrderLine),
    Earning(Earning),
    Withdrawal(Withdrawal),
    Address(Address),
    Shipment(super::fulfilment::Shipment),
    CartLine(CartLine),
    Note(super::notes::Note),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Fetches any object by its global ID, as the type that gave out the ID. Unknown IDs
    /// (and objects the viewer may not see, such as unpublished products or another member's
    /// private `Member`) are `NOT_FOUND`; malformed IDs are `VALIDATION`. A `Member` ID is
    /// answered to the member itself and admins only; a `MemberProfile` ID also to the
    /// members it is in the team of (up to three levels up) and to those whose active upline
    /// it is. A profile's ID from
    /// before profiles had their own (it was the member's ID) is read as a `Member` ID:
    /// `NOT_FOUND` unless the viewer is that member or an admin — fetch the profile again
    /// (e.g. `me { upline { id } }`) for its current ID.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global ID from any object's `id` field.")] id: ID,
    ) -> Result<Option<Node>> {
        let db = &state(ctx)?.db;
        let node = match ids::decode(&id, "id")? {
            (Kind::Product, id) => Node::Product(Product::of(
                svc::visible_product(db, viewer(ctx)?, id).await?,
            )),
            (Kind::Sku, id) => Node::Sku(Sku(svc::visible_sku(db, viewer(ctx)?, id).await?)),
            (Kind::Brand, id) => Node::Brand(Brand(svc::brand(db, id).await?)),
            (Kind::Category, id) => Node::Category(Category(svc::category(db, id).await?)),
            (Kind::Merchant, id) => Node::Merchant(Merchant(svc::merchant(db, id).await?)),
            (Kind::Member, id) => match member_view(ctx, id).await? {
                MemberView::Private(m) => Node::Member(Member(m)),
                // The private view is the member's own and admins'; to anyone else its
                // `Member` ID is unknown (its profile has an ID of its own).
                MemberView::Profile(_) => return Err(Error::not_found("member").into()),
            },
            (Kind::MemberProfile, id) => match member_view(ctx, id).await? {
                MemberView::Private(m) | MemberView::Profile(m) => {
                    Node::MemberProfile(MemberProfile(m))
                }
            },
            (Kind::Order, id) => Node::Order(Order(super::orders::order_node(ctx, id).await?)),
            (Kind::OrderLine, id) => {
                Node::OrderLine(OrderLine(super::orders::order_line_node(ctx, id).await?))
            }
            (Kind::Earning, id) => {
                Node::Earning(Earning(super::earnings::earning_node(ctx, id).await?))
            }
            (Kind::Withdrawal, id) => {
                Node::Withdrawal(Withdrawal(super::earnings::withdrawal_node(ctx, id).await?))
            }
            (Kind::Address, id) => {
                Node::Address(Address(super::addresses::address_node(ctx, id).await?))
            }
            (Kind::Shipment, id) => {
                Node::Shipment(super::fulfilment::shipment_node(ctx, id).await?)
            }
            (Kind::CartLine, id) => Node::CartLine(super::cart::cart_line_node(ctx, id).await?),
            (Kind::Note, id) => Node::Note(super::notes::note_node(ctx, id).await?),
            // Coupons are read through `couponTemplates` and `me.coupons`, not as nodes.
            (
                Kind::CouponTemplate
                | Kind::Coupon
                | Kind::WebhookEndpoint
                | Kind::WebhookDelivery
                | Kind::Level
                | Kind::PrivilegeRule
                | Kind::Privilege
                | Kind::Image
                | Kind::ImageUpload,
                _,
            ) => return Ok(None),
        };
        Ok(Some(node))
    }
}

/// Member `id` as the viewer may see it (the rule is the service's).
async fn member_view(ctx: &Context<'_>, id: uuid::Uuid) -> Result<MemberView> {
    let st = state(ctx)?;
    Ok(members::visible(&st.db, viewer(ctx)?, id, st.clock.now()).await?)
}
