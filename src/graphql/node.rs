//! The Relay `Node` interface and the root `node(id:)` field: any object with a global ID can
//! be fetched again from its ID alone, with the same visibility rules as its own root field.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::catalog::{Brand, Category, Merchant, Product, Sku};
use super::ids::{self, Kind};
use super::state;
use crate::service::catalog as svc;

/// An object with a globally unique, opaque ID.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque global ID."))]
pub enum Node {
    Product(Product),
    Sku(Sku),
    Brand(Brand),
    Category(Category),
    Merchant(Merchant),
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
            (Kind::Product, id) => Node::Product(Product(svc::published_product(db, id).await?)),
            (Kind::Sku, id) => Node::Sku(Sku(svc::published_sku(db, id).await?)),
            (Kind::Brand, id) => Node::Brand(Brand(svc::brand(db, id).await?)),
            (Kind::Category, id) => Node::Category(Category(svc::category(db, id).await?)),
            (Kind::Merchant, id) => Node::Merchant(Merchant(svc::merchant(db, id).await?)),
        };
        Ok(Some(node))
    }
}
