//! The Relay `Node` interface and the root `node(id:)` field: any object with a global ID can
//! be fetched again from its ID alone, with the same visibility rules as its own root field.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::addresses::Address;
use super::catalog::{Brand, Category, Merchant, Product, Sku};
use super::earnings::{Earning, Withdrawal};
use super::ids::{self, Kind};
use super::members::{Member, MemberProfile};
use super::orders::{Order, OrderLine};
use super::{state, viewer};
use crate::error::Error;
use crate::service::catalog as svc;
use crate::service::{hierarchy, members, team};

/// An object with a globally unique, opaque ID.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque global ID."))]
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
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Fetches any object by its global ID. Unknown IDs (and objects the viewer may not see,
    /// such as unpublished products) are `NOT_FOUND`; malformed IDs are `VALIDATION`.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        let db = &state(ctx)?.db;
        let node = match ids::decode(&id, "id")? {
            (Kind::Product, id) => Node::Product(Product::of(
                svc::visible_product(db, viewer(ctx)?, id).await?,
            )),
            (Kind::Sku, id) => Node::Sku(Sku(svc::visible_sku(db, viewer(ctx)?, id).await?)),
            (Kind::Brand, id) => Node::Brand(Brand(svc::brand(db, id).await?)),
            (Kind::Category, id) => Node::Category(Category(svc::category(db, id).await?)),
            (Kind::Merchant, id) => Node::Merchant(Merchant(svc::merchant(db, id).await?)),
            (Kind::Member, id) => member_node(ctx, id).await?,
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
        };
        Ok(Some(node))
    }
}

/// A member's own ID and admins get the private `Member`; its active upline and the members
/// above it (within three levels) get the public `MemberProfile`; anyone else gets
/// `NOT_FOUND`, exactly as for an ID that does not exist.
async fn member_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Node> {
    let st = state(ctx)?;
    let not_found = || Error::not_found("member");
    let Ok(me) = viewer(ctx)?.member() else {
        return Err(not_found().into());
    };
    let target = members::get(&st.db, id).await.map_err(|_| not_found())?;
    if me.id == id || viewer(ctx)?.is_admin() {
        return Ok(Node::Member(Member(target)));
    }
    let is_my_upline = hierarchy::active_binding(&st.db, me.id, st.clock.now())
        .await?
        .is_some_and(|b| b.upline_id == id);
    if is_my_upline || team::in_team(&st.db, me.id, id).await? {
        return Ok(Node::MemberProfile(MemberProfile(target)));
    }
    Err(not_found().into())
}
