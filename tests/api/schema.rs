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

/// Every type, field, argument, input field and enum value of the served schema has a
/// description (frontends read the schema as the API's documentation: units, what null
/// means, which errors), and none merely restates its name.
#[test]
fn every_schema_element_is_described() {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

    let sdl = pushhand::graphql::sdl();
    let doc = parse_schema(&sdl).expect("the SDL parses");
    let mut missing = Vec::new();
    let mut check = |what: String, name: &str, desc: Option<&str>| {
        let words = |s: &str| -> String {
            let mut out = String::new();
            for c in s.chars() {
                if c.is_uppercase() && !out.is_empty() {
                    out.push(' ');
                }
                if c.is_alphanumeric() {
                    out.extend(c.to_lowercase());
                } else {
                    out.push(' ');
                }
            }
            out.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        match desc.map(str::trim) {
            None | Some("") => missing.push(format!("{what}: no description")),
            Some(d) if words(d) == words(name) => {
                missing.push(format!("{what}: the description only restates the name"))
            }
            Some(_) => {}
        }
    };
    for def in &doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let ty = &ty.node;
        let name = ty.name.node.as_str();
        let desc =
            |d: &Option<async_graphql::Positioned<String>>| d.as_ref().map(|d| d.node.clone());
        check(
            format!("type {name}"),
            name,
            desc(&ty.description).as_deref(),
        );
        let fields = match &ty.kind {
            TypeKind::Object(o) => Some(&o.fields),
            TypeKind::Interface(i) => Some(&i.fields),
            _ => None,
        };
        for field in fields.into_iter().flatten() {
            let f = &field.node;
            let fname = f.name.node.as_str();
            check(
                format!("field {name}.{fname}"),
                fname,
                desc(&f.description).as_deref(),
            );
            for arg in &f.arguments {
                let a = arg.node.name.node.as_str();
                check(
                    format!("argument {name}.{fname}({a})"),
                    a,
                    desc(&arg.node.description).as_deref(),
                );
            }
        }
        match &ty.kind {
            TypeKind::InputObject(i) => {
                for field in &i.fields {
                    let f = field.node.name.node.as_str();
                    check(
                        format!("input field {name}.{f}"),
                        f,
                        desc(&field.node.description).as_deref(),
                    );
                }
            }
            TypeKind::Enum(e) => {
                for value in &e.values {
                    let v = value.node.value.node.as_str();
                    check(
                        format!("enum value {name}.{v}"),
                        v,
                        desc(&value.node.description).as_deref(),
                    );
                }
            }
            _ => {}
        }
    }
    assert!(
        missing.is_empty(),
        "{} schema elements lack a description:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

/// Custom scalars that follow a published specification say so with `@specifiedBy`, in the
/// exported SDL and in introspection.
#[tokio::test]
async fn scalars_name_their_specification() {
    let sdl = pushhand::graphql::sdl();
    assert!(
        sdl.contains(
            "scalar DateTime @specifiedBy(url: \"https://datatracker.ietf.org/doc/html/rfc3339\")"
        ),
        "DateTime names RFC 3339"
    );
    let app = TestApp::spawn().await;
    let data = app
        .data(
            r#"{ t: __type(name: "DateTime") { specifiedByURL }
                 j: __type(name: "JSON") { specifiedByURL } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["t"]["specifiedByURL"],
        json!("https://datatracker.ietf.org/doc/html/rfc3339")
    );
    assert_eq!(
        data["j"]["specifiedByURL"],
        json!("https://datatracker.ietf.org/doc/html/rfc8259")
    );
}
