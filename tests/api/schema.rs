//! `schema.graphql` is the contract frontends build against: it must be exactly what the
//! server serves. Regenerate with `cargo run -- export-schema -o schema.graphql`.

use serde_json::json;

use crate::helpers::TestApp;

#[test]
fn schema_file_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let on_disk = std::fs::read_to_string(path).expect("schema.graphql exists");
    let served = pushhand::graphql::sdl();
    assert!(
        on_disk == served,
        "schema.graphql is out of date: run `cargo run -- export-schema -o schema.graphql`"
    );
}

#[tokio::test]
async fn contract_names_are_served() {
    let app = TestApp::spawn().await;
    let data = app
        .data(
            r#"{ __schema { queryType { fields { name } } }
                 filter: __type(name: "ProductFilter") { inputFields { name } }
                 sort: __type(name: "ProductSort") { enumValues { name } }
                 decimal: __type(name: "Decimal") { kind } }"#,
            json!({}),
        )
        .await;
    let names = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v.as_array()
            .expect("list")
            .iter()
            .filter_map(|x| x[key].as_str().map(str::to_owned))
            .collect()
    };
    let roots = names(&data["__schema"]["queryType"]["fields"], "name");
    for root in ["node", "product", "products", "categories"] {
        assert!(roots.iter().any(|r| r == root), "missing root field {root}");
    }
    let mut filter = names(&data["filter"]["inputFields"], "name");
    filter.sort();
    assert_eq!(
        filter,
        [
            "brandId",
            "categoryId",
            "maxPrice",
            "membershipActivity",
            "minPrice",
            "search"
        ]
    );
    let mut sorts = names(&data["sort"]["enumValues"], "name");
    sorts.sort();
    assert_eq!(
        sorts,
        [
            "NEWEST",
            "PRICE_ASC",
            "PRICE_DESC",
            "REBATE_DESC",
            "SALES_DESC"
        ]
    );
    assert_eq!(data["decimal"]["kind"], json!("SCALAR"));
}
