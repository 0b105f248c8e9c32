//! Relay global IDs and `node(id:)`: every type resolves, hidden products stay hidden, bad
//! IDs get the right codes.

use entity::sku;
use pushhand::graphql::ids::Kind;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{self, gid};
use crate::helpers::{TestApp, error_code};

const NODE: &str = r#"query($id: ID!) { node(id: $id) { __typename id
  ... on Product { name } ... on Sku { price } ... on Brand { name }
  ... on Category { slug } ... on Merchant { name } } }"#;

#[tokio::test]
async fn node_resolves_every_type_from_its_id() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 2).await;
    let (pid, p) = f.published.iter().next().expect("a product");
    let sku = sku::Entity::find()
        .filter(sku::Column::ProductId.eq(*pid))
        .one(app.db())
        .await
        .expect("query")
        .expect("a SKU");

    let cases = [
        (gid(Kind::Product, *pid), "Product", "name", json!(p.name)),
        (
            gid(Kind::Sku, sku.id),
            "Sku",
            "price",
            json!(sku.price.to_decimal().to_string()),
        ),
        (
            gid(Kind::Brand, f.brands[0].id),
            "Brand",
            "name",
            json!("Brand 0"),
        ),
        (
            gid(Kind::Category, f.leaves[2].id),
            "Category",
            "slug",
            json!("leaf-1-0"),
        ),
        (
            gid(Kind::Merchant, f.merchant.id),
            "Merchant",
            "name",
            json!("测试商家"),
        ),
    ];
    for (id, typename, field, value) in cases {
        let data = app.data(NODE, json!({ "id": id })).await;
        assert_eq!(data["node"]["__typename"], json!(typename));
        assert_eq!(data["node"]["id"], json!(id), "the ID round-trips");
        assert_eq!(data["node"][field], value, "{typename}.{field}");
    }
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_malformed_ones_are_validation_errors() {
    let app = TestApp::spawn().await;
    fixtures::catalog(app.db(), 1).await;

    for kind in [
        Kind::Product,
        Kind::Sku,
        Kind::Brand,
        Kind::Category,
        Kind::Merchant,
    ] {
        let resp = app
            .gql(NODE, json!({ "id": gid(kind, Uuid::now_v7()) }))
            .await;
        assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{kind:?}: {resp}");
        assert_eq!(resp["data"]["node"], json!(null));
    }
    use base64::Engine;
    let unknown_type = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("Basket:{}", Uuid::now_v7().simple()));
    for bad in ["", "abc", "UHJvZHVjdDpub3QtYS11dWlk", unknown_type.as_str()] {
        let resp = app.gql(NODE, json!({ "id": bad })).await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{bad:?}: {resp}");
        assert_eq!(resp["errors"][0]["extensions"]["field"], json!("id"));
    }
    // product(id:) wants a product's ID.
    let resp = app
        .gql(
            "query($id: ID!) { product(id: $id) { id } }",
            json!({ "id": gid(Kind::Brand, Uuid::now_v7()) }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
}

#[tokio::test]
async fn drafts_and_delisted_products_are_invisible_to_the_public() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 3).await;

    for hidden in [f.draft, f.unpublished] {
        let id = gid(Kind::Product, hidden);
        let resp = app
            .gql(
                "query($id: ID!) { product(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp}");
        let resp = app.gql(NODE, json!({ "id": id })).await;
        assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp}");
        // Nor can its SKUs be reached.
        let sku = sku::Entity::find()
            .filter(sku::Column::ProductId.eq(hidden))
            .one(app.db())
            .await
            .expect("query")
            .expect("SKU");
        let resp = app.gql(NODE, json!({ "id": gid(Kind::Sku, sku.id) })).await;
        assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp}");
    }
    let data = app
        .data(
            "{ products(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["products"]["edges"].as_array().map(Vec::len), Some(3));
}
