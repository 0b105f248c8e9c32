//! The N+1 bar (SPEC §6): a page of products with brand, category and SKUs costs the same
//! small number of SQL statements whatever the page size.
//!
//! The bar is about executing the query, so these apps run without the response cache: a hit
//! runs no SQL at all and would say nothing about the resolvers.

use serde_json::json;

use crate::fixtures;
use crate::helpers::TestApp;

const LISTING: &str = "query($first: Int) { products(first: $first) { edges { node {
  id name minPrice brand { id name } category { id nameZh } skus { id price stock } } } } }";

const RICH: &str = "query($first: Int) { products(first: $first) { edges { node {
  id name brand { name merchant { name } } category { nameZh parent { nameEn } }
  skus { id price } images { url } tags } } } }";

async fn statements_for(app: &TestApp, query: &str, first: i32) -> u64 {
    let before = app.statements().await;
    let data = app.data(query, json!({ "first": first })).await;
    assert_eq!(
        data["products"]["edges"].as_array().map(Vec::len),
        Some(first as usize)
    );
    app.statements().await - before
}

/// Statements for one page of `first` on a fresh app (cold in-memory caches: brands,
/// merchants and categories are kept once read, which would flatter a second page).
async fn cold(query: &str, first: i32) -> u64 {
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    fixtures::catalog(app.db(), 60).await;
    statements_for(&app, query, first).await
}

#[tokio::test]
async fn product_listing_costs_a_constant_number_of_statements() {
    let five = cold(LISTING, 5).await;
    let fifty = cold(LISTING, 50).await;
    println!(
        "products with brand, category, SKUs: first 5 → {five} statements, first 50 → {fifty}"
    );
    // The bar: the same small count at either page size (one statement per relation: 4).
    assert_eq!(five, fifty, "statement count grows with the page size");
    assert!(fifty <= 5, "{fifty} statements for one page");

    // Every relation of the product card, two levels deep, is still constant.
    let five = cold(RICH, 5).await;
    let fifty = cold(RICH, 50).await;
    println!("products with every relation: first 5 → {five} statements, first 50 → {fifty}");
    // Seven relations plus the page itself: 8, whatever the page size.
    assert_eq!(five, fifty);
    assert!(fifty <= 8, "{fifty} statements for one rich page");

    // Warm, the rows that never change (brands, merchants, categories) come from memory:
    // the same page again costs only the page, its SKUs, images and tags.
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    fixtures::catalog(app.db(), 60).await;
    let first = statements_for(&app, RICH, 50).await;
    let again = statements_for(&app, RICH, 50).await;
    println!("the rich page again: {first} → {again} statements");
    assert_eq!(
        again,
        first - 4,
        "brand, merchant, category and parent from memory"
    );
}
