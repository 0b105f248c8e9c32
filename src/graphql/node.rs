//! The Relay `Node` interface and the root `node(id:)` field: any object with a global ID can
//! be fetched again from its ID alone, with the same visibility rules as its own root field.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::catalog::{Brand, Category, Merchant, Product, Sku};
use super::earnings::{Earning, Withdrawal};
use super::ids::{self, Kind};
use super::members::{Member, MemberProfile};
use super::orders::{Order, OrderLine};
use super::{state, viewer};
use crate::service::catalog as svc;
use crate::service::members::{self, MemberView};

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
            (Kind::Member, id) => {
                let now = state(ctx)?.clock.now();
                match members::visible(db, viewer(ctx)?, id, now).await? {
                    MemberView::Private(m) => Node::Member(Member(m)),
                    MemberView::Profile(m) => Node::MemberProfile(MemberProfile(m)),
                }
            }
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
        };
        Ok(Some(node))
    }
}
