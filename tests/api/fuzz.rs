//! A grammar fuzzer over the whole request path — parse, guard, validate, execute — against
//! the real schema on a real (SQLite) database, seeded with the hostile shapes of SPEC §5:
//! fragment bombs, alias floods, deep nesting, fragment cycles, directive piles, huge
//! literals, deep literal nesting (lists, input objects, directive arguments: up to 200,000
//! levels, which once overflowed the parser's stack), NUL characters, introspection shapes
//! (`interfaces { possibleTypes { … } }` chains, long `ofType` chains, GraphiQL's query),
//! and random documents built from the schema's own field names.
//!
//! Why proptest rather than cargo-fuzz: cargo-fuzz needs a nightly toolchain, which this
//! project's machines do not have; a generator that knows GraphQL's grammar reaches the
//! validator and resolvers far more often than byte mutation would, and it runs in the
//! ordinary test binary on both stores. It runs for a time budget
//! (`PUSHHAND_FUZZ_SECONDS`, default 10; CI gives it 120) and reports the slowest input.
//!
//! Every input must come back (no panic, no hang) and every error must carry a code.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use pushhand::service::auth::Viewer;
use serde_json::json;

use crate::helpers::TestApp;
use crate::limits::fragment_bomb;

const FIELDS: &[&str] = &[
    "products(first: 3)",
    "products(first: 100)",
    "products(first: -1)",
    "products(after: \"bogus\")",
    "product(id: \"UHJvZHVjdDp4\")",
    "categories",
    "children",
    "parent",
    "id",
    "name",
    "nameEn",
    "nameZh",
    "brand",
    "category",
    "merchant",
    "skus",
    "price",
    "stock",
    "images",
    "tags",
    "curation",
    "passed",
    "badges",
    "stages",
    "result",
    "edges",
    "node",
    "cursor",
    "pageInfo",
    "hasNextPage",
    "endCursor",
    "__typename",
    "me",
    "earningsSummary",
    "pending",
    "team(level: 9)",
    "node(id: \"not-an-id\")",
    "__schema",
    "types",
    "fields",
    "ofType",
    "kind",
    "__type(name: \"Product\")",
    "interfaces",
    "possibleTypes",
    "inputFields",
    "enumValues",
    "noSuchField",
    "estimatedEarning",
];

fn field() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(FIELDS),
        proptest::option::weighted(0.2, "[a-z]{1,3}"),
        proptest::option::weighted(0.1, Just("@skip(if: false)")),
    )
        .prop_map(|(f, alias, dir)| {
            let alias = alias.map(|a| format!("{a}: ")).unwrap_or_default();
            format!("{alias}{f} {}", dir.unwrap_or_default())
        })
}

/// A selection set of schema field names, nested, with inline fragments and spreads of
/// `F0..F3` (which may or may not be defined).
fn selection_set() -> impl Strategy<Value = String> {
    let leaf = prop::collection::vec(field(), 1..4).prop_map(|fs| fs.join(" "));
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop::collection::vec(
            prop_oneof![
                4 => (field(), inner.clone()).prop_map(|(f, s)| format!("{f} {{ {s} }}")),
                2 => field(),
                1 => inner.clone().prop_map(|s| format!("... on Product {{ {s} }}")),
                1 => (0..4u8).prop_map(|i| format!("...F{i}")),
            ],
            1..6,
        )
        .prop_map(|items| items.join(" "))
    })
}

/// Valid documents with random arguments, so that execution (resolvers, loaders, cursors,
/// id decoding) is reached, not only validation.
fn valid() -> impl Strategy<Value = String> {
    let product_fields = prop::sample::subsequence(
        vec![
            "id",
            "name",
            "nameEn",
            "description",
            "salesCount",
            "status",
            "brand { id name }",
            "category { id nameZh parent { id } }",
            "skus { id price stock }",
            "curation { passed badges }",
            "images { url }",
            "tags",
            "merchant { id }",
        ],
        1..8,
    )
    .prop_map(|f| f.join(" "));
    let first = prop_oneof![
        Just("".to_owned()),
        (-5i32..150).prop_map(|n| format!("first: {n}"))
    ];
    let after = prop_oneof![
        Just("".to_owned()),
        "[A-Za-z0-9_-]{0,40}".prop_map(|c| format!("after: \"{c}\"")),
    ];
    let id = prop_oneof![
        "[A-Za-z0-9_-]{0,60}",
        Just("UHJvZHVjdDowMTliNzZkYWIyZWI3MTVkOWFjMTgzN2FjOTU0N2I2Mw".to_owned()),
        Just("TWVtYmVyOjAxOWI3NmRhYjJlYjcxNWQ5YWMxODM3YWM5NTQ3YjYz".to_owned()),
    ];
    prop_oneof![
        (first, after, product_fields.clone()).prop_map(|(f, a, fields)| {
            format!("{{ products({f} {a}) {{ edges {{ cursor node {{ {fields} }} }} pageInfo {{ hasNextPage endCursor }} }} }}")
        }),
        (id.clone(), product_fields.clone())
            .prop_map(|(id, fields)| format!("{{ product(id: \"{id}\") {{ {fields} }} }}")),
        (id, product_fields)
            .prop_map(|(id, fields)| format!("{{ node(id: \"{id}\") {{ id ... on Product {{ {fields} }} }} }}")),
        Just("{ categories { id nameZh children { id nameZh } } me { id } }".to_owned()),
    ]
}

fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => valid(),
        // Schema-shaped documents with some fragment definitions.
        6 => (
            selection_set(),
            prop::collection::vec(selection_set(), 0..4),
            proptest::sample::select(&["query", "mutation", "subscription", "query Q($x: Int)"][..]),
        )
            .prop_map(|(root, frags, op)| {
                let defs: Vec<String> = frags
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("fragment F{i} on Query {{ {s} }}"))
                    .collect();
                format!("{op} {{ {root} }} {}", defs.join(" "))
            }),
        // Fragment bombs, 1 to 70 levels.
        2 => (1usize..70).prop_map(fragment_bomb),
        // Alias floods.
        1 => (1usize..200).prop_map(|n| {
            let a: Vec<String> = (0..n).map(|i| format!("a{i}: __typename")).collect();
            format!("{{ categories {{ {} }} }}", a.join(" "))
        }),
        // Deep nesting.
        1 => (1usize..120).prop_map(|d| {
            format!("{{ categories {{ {}id{} }} }}", "children { ".repeat(d), " }".repeat(d))
        }),
        // Cycles and self-spreads.
        1 => (1usize..10).prop_map(|n| {
            let defs: Vec<String> = (0..n)
                .map(|i| format!("fragment C{i} on Query {{ ...C{} }}", (i + 1) % n))
                .collect();
            format!("{{ ...C0 }} {}", defs.join(" "))
        }),
        // Directive piles and huge literals.
        1 => (1usize..40, 0usize..100_000).prop_map(|(d, len)| {
            format!(
                "{{ product(id: \"{}\") {{ id {} }} }}",
                "x".repeat(len),
                "@include(if: true) ".repeat(d)
            )
        }),
        // Deep literal nesting: a list argument, nested input objects, a directive's list.
        2 => (0usize..3, prop_oneof![1usize..100, 100usize..200_000]).prop_map(|(shape, n)| {
            match shape {
                0 => format!("{{ node(id: {}1{}) {{ id }} }}", "[".repeat(n), "]".repeat(n)),
                1 => format!(
                    "{{ products(filter: {}\"x\"{}) {{ edges {{ cursor }} }} }}",
                    "{search: ".repeat(n),
                    "}".repeat(n)
                ),
                _ => format!("{{ __typename @include(if: {}true{}) }}", "[".repeat(n), "]".repeat(n)),
            }
        }),
        // NUL characters, raw and escaped.
        1 => prop_oneof![Just("\u{0}"), Just("\\u0000"), Just("\\u{0}")].prop_map(|nul| {
            format!("{{ products(filter: {{search: \"a{nul}b\"}}) {{ edges {{ cursor }} }} }}")
        }),
        // Introspection shapes: self-multiplying pairs, long ofType chains, GraphiQL's query.
        2 => prop_oneof![
            (0usize..8).prop_map(|pairs| format!(
                "{{ __schema {{ types {{ name {}{} }} }} }}",
                "interfaces { name possibleTypes { name ".repeat(pairs),
                "} }".repeat(pairs)
            )),
            (1usize..40).prop_map(|d| format!(
                "{{ __type(name: \"Product\") {{ {}name{} }} }}",
                "ofType { ".repeat(d),
                " }".repeat(d)
            )),
            Just(include_str!("introspection.graphql").to_owned()),
        ],
        // Anything at all.
        1 => ".{0,400}",
    ]
}

#[tokio::test]
async fn the_request_path_survives_generated_and_hostile_documents() {
    let budget = std::env::var("PUSHHAND_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(10);
    let app = TestApp::spawn().await;
    crate::fixtures::catalog(app.db(), 5).await;
    let schema = pushhand::graphql::build(app.state.clone());
    let mut runner = TestRunner::new(Config::default());
    let strategy = document();
    let deadline = Instant::now() + Duration::from_secs(budget);
    let (mut runs, mut clean, mut slowest) = (0u64, 0u64, (Duration::ZERO, String::new()));
    while Instant::now() < deadline {
        let doc = strategy
            .new_tree(&mut runner)
            .expect("a generated document")
            .current();
        let request = async_graphql::Request::new(doc.clone())
            .data(pushhand::graphql::loaders::for_request(&app.state))
            .data(Viewer::Anonymous);
        let started = Instant::now();
        let response = tokio::time::timeout(Duration::from_secs(30), schema.execute(request))
            .await
            .unwrap_or_else(|_| panic!("hung on: {doc}"));
        let took = started.elapsed();
        for e in &response.errors {
            let code = e.extensions.as_ref().and_then(|x| x.get("code"));
            assert!(code.is_some(), "error without a code: {e:?} for {doc}");
            let text = serde_json::to_string(&e.message).unwrap_or_default();
            assert!(!text.contains("panicked"), "{text} for {doc}");
        }
        if response.errors.is_empty() {
            clean += 1;
        }
        if took > slowest.0 {
            slowest = (took, doc);
        }
        runs += 1;
    }
    let shown: String = slowest.1.chars().take(300).collect();
    let report = json!({
        "seconds": budget,
        "inputs": runs,
        "executed_without_errors": clean,
        "slowest_ms": slowest.0.as_secs_f64() * 1e3,
        "slowest_input_prefix": shown,
        "slowest_input_len": slowest.1.len(),
    });
    eprintln!("fuzz: {report:#}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-report.json");
    std::fs::write(&path, format!("{report:#}\n")).ok();
    assert!(runs > 0);
}
