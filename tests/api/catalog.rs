//! The product listing: paging, every filter and sort, the category tree, and bad input.

use std::collections::HashSet;

use entity::product;
use pushhand::graphql::ids::Kind;
use pushhand::service::catalog::{NewProduct, ProductRows};
use pushhand::service::members::CliRole;
use sea_orm::TransactionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::{self, Fixture, gid, uuid_of};
use crate::helpers::{TestApp, error_code};

const PAGE: &str = r#"
query Page($first: Int, $after: String, $sort: ProductSort, $filter: ProductFilter) {
  products(first: $first, after: $after, sort: $sort, filter: $filter) {
    edges { cursor node { id name minPrice salesCount publishedAt } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"#;

/// Follows `endCursor` to the end and returns the product ids in the order served.
async fn walk(app: &TestApp, sort: &str, filter: Value, first: i32) -> Vec<Uuid> {
    let mut out = Vec::new();
    let mut after = Value::Null;
    for _ in 0..1_000 {
        let data = app
            .data(
                PAGE,
                json!({ "first": first, "after": after, "sort": sort, "filter": filter }),
            )
            .await;
        let conn = &data["products"];
        let edges = conn["edges"].as_array().expect("edges");
        assert!(edges.len() <= first as usize);
        out.extend(
            edges
                .iter()
                .map(|e| uuid_of(e["node"]["id"].as_str().expect("id"))),
        );
        if !conn["pageInfo"]["hasNextPage"]
            .as_bool()
            .expect("hasNextPage")
        {
            return out;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    panic!("paging did not end");
}

fn min_price(p: &NewProduct) -> i64 {
    p.skus
        .iter()
        .map(|s| s.price.fen())
        .min()
        .expect("has SKUs")
}

/// The order the server must produce, computed from the fixture's own values.
fn expected(f: &Fixture, sort: &str, keep: impl Fn(&NewProduct) -> bool) -> Vec<Uuid> {
    let mut ps: Vec<&NewProduct> = f.published.values().filter(|p| keep(p)).collect();
    match sort {
        "NEWEST" => ps.sort_by_key(|p| std::cmp::Reverse((p.published_at, p.id))),
        "PRICE_ASC" => ps.sort_by_key(|p| (min_price(p), p.id)),
        "PRICE_DESC" => ps.sort_by_key(|p| std::cmp::Reverse((min_price(p), p.id))),
        "REBATE_DESC" => ps.sort_by_key(|p| std::cmp::Reverse((p.rebate_rate, p.id))),
        "SALES_DESC" => ps.sort_by_key(|p| std::cmp::Reverse((p.sales_count, p.id))),
        other => panic!("unknown sort {other}"),
    }
    ps.into_iter().map(|p| p.id).collect()
}

const SORTS: [&str; 5] = [
    "NEWEST",
    "PRICE_ASC",
    "PRICE_DESC",
    "REBATE_DESC",
    "SALES_DESC",
];

#[tokio::test]
async fn every_sort_pages_through_all_published_products_in_order() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 23).await;

    for sort in SORTS {
        let served = walk(&app, sort, Value::Null, 4).await;
        assert_eq!(served, expected(&f, sort, |_| true), "order of {sort}");
        let unique: HashSet<_> = served.iter().collect();
        assert_eq!(unique.len(), served.len(), "{sort} repeated a product");
        assert!(
            !served.contains(&f.draft) && !served.contains(&f.unpublished),
            "{sort} listed a hidden product"
        );
    }
}

#[tokio::test]
async fn first_page_reports_no_previous_page_and_default_size_is_20() {
    let app = TestApp::spawn().await;
    fixtures::catalog(app.db(), 25).await;

    let data = app.data(PAGE, json!({})).await;
    assert_eq!(data["products"]["edges"].as_array().map(Vec::len), Some(20));
    assert_eq!(
        data["products"]["pageInfo"]["hasPreviousPage"],
        json!(false)
    );
    assert_eq!(data["products"]["pageInfo"]["hasNextPage"], json!(true));
    let after = data["products"]["pageInfo"]["endCursor"].clone();
    let next = app.data(PAGE, json!({ "after": after })).await;
    assert_eq!(next["products"]["edges"].as_array().map(Vec::len), Some(5));
    assert_eq!(next["products"]["pageInfo"]["hasPreviousPage"], json!(true));
    assert_eq!(next["products"]["pageInfo"]["hasNextPage"], json!(false));
}

#[tokio::test]
async fn first_is_capped_at_100_and_must_not_be_negative() {
    // Whole pages of 100 with many fields: over the default complexity limit (tested in
    // `limits`), which is not what this test is about.
    let app = TestApp::spawn_with(&["--max-complexity", "100000"]).await;
    fixtures::catalog(app.db(), 105).await;

    let data = app.data(PAGE, json!({ "first": 1000 })).await;
    assert_eq!(
        data["products"]["edges"].as_array().map(Vec::len),
        Some(100)
    );
    assert_eq!(data["products"]["pageInfo"]["hasNextPage"], json!(true));

    let resp = app.gql(PAGE, json!({ "first": -1 })).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    assert_eq!(resp["errors"][0]["extensions"]["field"], json!("first"));
}

#[tokio::test]
async fn cursors_stay_correct_while_products_are_listed_concurrently() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 30).await;
    let original: HashSet<Uuid> = f.published.keys().copied().collect();

    // Twenty products get listed by another task while a client is half-way through a
    // PRICE_ASC walk: cheap ones sort before the client's cursor, dear ones after it.
    let newcomers: Vec<NewProduct> = (0..20)
        .map(|i| {
            let mut p = fixtures::product(&f, 100 + i, product::Status::Published);
            let price = if i % 2 == 0 { 1 } else { 1_000_000 };
            if price == 1 {
                // Each cheap one sorts before the cheap ones listed before it (ids going
                // down), so it lands before any cursor the walk holds, even one on a cheap
                // newcomer of page 1 (with ids going up, a fast lister made it land after).
                p.id = Uuid::from_u128(u128::MAX - i as u128);
            }
            p.skus[0].price = entity::Money::from_fen(price);
            p.skus[1].price = entity::Money::from_fen(price + 1);
            p
        })
        .collect();
    let mut price: std::collections::HashMap<Uuid, i64> =
        f.published.values().map(|p| (p.id, min_price(p))).collect();
    price.extend(newcomers.iter().map(|p| (p.id, min_price(p))));
    let cheap: HashSet<Uuid> = newcomers
        .iter()
        .filter(|p| min_price(p) == 1)
        .map(|p| p.id)
        .collect();
    let dear: HashSet<Uuid> = newcomers
        .iter()
        .filter(|p| min_price(p) > 1)
        .map(|p| p.id)
        .collect();

    let db = app.db().clone();
    let inserter = tokio::spawn(async move {
        for p in newcomers {
            let mut rows = ProductRows::default();
            rows.push(p, Uuid::now_v7).expect("valid");
            let txn = db.begin().await.expect("begin");
            rows.insert(&txn).await.expect("insert");
            txn.commit().await.expect("commit");
        }
    });
    let mut inserter = Some(inserter);

    let mut served = Vec::new();
    let mut after = Value::Null;
    for page in 0.. {
        let data = app
            .data(
                PAGE,
                json!({ "first": 4, "after": after, "sort": "PRICE_ASC" }),
            )
            .await;
        let edges = data["products"]["edges"].as_array().expect("edges").clone();
        served.extend(
            edges
                .iter()
                .map(|e| uuid_of(e["node"]["id"].as_str().expect("id"))),
        );
        if page == 1 {
            // From here on every newcomer is in the table.
            inserter.take().expect("once").await.expect("inserter");
        }
        if !data["products"]["pageInfo"]["hasNextPage"]
            .as_bool()
            .expect("bool")
        {
            break;
        }
        after = data["products"]["pageInfo"]["endCursor"].clone();
    }

    let unique: HashSet<Uuid> = served.iter().copied().collect();
    assert_eq!(unique.len(), served.len(), "a product was served twice");
    assert!(
        original.is_subset(&unique),
        "an original product was skipped"
    );
    assert!(
        dear.is_subset(&unique),
        "products listed after the cursor must show up"
    );
    let keys: Vec<(i64, Uuid)> = served.iter().map(|id| (price[id], *id)).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "the walk left PRICE_ASC order"
    );
    // Cheap newcomers sort before the cursor of page 2 and may only have been served on the
    // first two pages (if they landed that early).
    let late: Vec<&Uuid> = served[8..].iter().filter(|id| cheap.contains(id)).collect();
    assert!(
        late.is_empty(),
        "products listed before the cursor leaked into later pages"
    );
}

#[tokio::test]
async fn filters_narrow_the_listing() {
    // Whole pages of 100 with many fields: over the default complexity limit (tested in
    // `limits`), which is not what this test is about.
    let app = TestApp::spawn_with(&["--max-complexity", "100000"]).await;
    let f = fixtures::catalog(app.db(), 40).await;
    let ids = |filter: Value| {
        let app = &app;
        async move {
            let mut v = walk(app, "PRICE_ASC", filter, 100).await;
            v.sort();
            v
        }
    };
    let exp = |keep: &dyn Fn(&NewProduct) -> bool| {
        let mut v = expected(&f, "PRICE_ASC", keep);
        v.sort();
        v
    };

    // A top-level category includes its leaves; a leaf only itself.
    let top0 = gid(Kind::Category, f.tops[0].id);
    let leaf_ids = [f.leaves[0].id, f.leaves[1].id];
    assert_eq!(
        ids(json!({ "categoryId": top0 })).await,
        exp(&|p| leaf_ids.contains(&p.category_id))
    );
    let leaf3 = f.leaves[3].id;
    assert_eq!(
        ids(json!({ "categoryId": gid(Kind::Category, leaf3) })).await,
        exp(&|p| p.category_id == leaf3)
    );

    let brand1 = f.brands[1].id;
    assert_eq!(
        ids(json!({ "brandId": gid(Kind::Brand, brand1) })).await,
        exp(&|p| p.brand_id == brand1)
    );

    // Search: Chinese substring, English case-insensitively, LIKE wildcards taken literally.
    assert_eq!(
        ids(json!({ "search": "净水" })).await,
        exp(&|p| p.name.contains("净水"))
    );
    assert_eq!(
        ids(json!({ "search": "  mi WATER " })).await,
        exp(&|p| p.name == "小米净水器")
    );
    assert_eq!(
        ids(json!({ "search": "100%" })).await,
        exp(&|p| p.name.contains("100%"))
    );
    assert_eq!(
        ids(json!({ "search": "%" })).await,
        exp(&|p| p.name.contains('%'))
    );
    assert_eq!(ids(json!({ "search": "_" })).await, Vec::<Uuid>::new());

    // Prices match SKUs: every product has SKUs at base and base + 50 yuan, bases run from
    // 10 to 59 yuan. 30..=40 yuan only catches products with a base in that range, not ones
    // whose two SKUs straddle it.
    let in_range = |lo: i64, hi: i64| {
        move |p: &NewProduct| p.skus.iter().any(|s| (lo..=hi).contains(&s.price.fen()))
    };
    assert_eq!(
        ids(json!({ "minPrice": "30", "maxPrice": "40.00" })).await,
        exp(&in_range(3_000, 4_000))
    );
    assert_eq!(
        ids(json!({ "minPrice": "100.00" })).await,
        exp(&in_range(10_000, i64::MAX))
    );
    assert_eq!(
        ids(json!({ "maxPrice": "12.5" })).await,
        exp(&in_range(0, 1_250))
    );

    assert_eq!(
        ids(json!({ "membershipActivity": true })).await,
        exp(&|p| p.membership_activity)
    );
    assert_eq!(
        ids(json!({ "membershipActivity": false })).await,
        exp(&|p| !p.membership_activity)
    );

    // Conditions combine.
    assert_eq!(
        ids(json!({ "categoryId": top0, "brandId": gid(Kind::Brand, brand1), "maxPrice": "45" }))
            .await,
        exp(&|p| leaf_ids.contains(&p.category_id)
            && p.brand_id == brand1
            && in_range(0, 4_500)(p))
    );
}

#[tokio::test]
async fn bad_filters_and_cursors_are_validation_errors() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 5).await;

    let cases = [
        (
            json!({ "filter": { "minPrice": "50", "maxPrice": "10" } }),
            "filter.minPrice",
        ),
        (
            json!({ "filter": { "minPrice": "1.234" } }),
            "filter.minPrice",
        ),
        (json!({ "filter": { "maxPrice": "-1" } }), "filter.maxPrice"),
        (
            json!({ "filter": { "categoryId": gid(Kind::Brand, f.brands[0].id) } }),
            "filter.categoryId",
        ),
        (
            json!({ "filter": { "brandId": "garbage" } }),
            "filter.brandId",
        ),
        (
            json!({ "filter": { "search": "x".repeat(101) } }),
            "filter.search",
        ),
        (json!({ "after": "not-a-cursor" }), "after"),
    ];
    for (vars, field) in cases {
        let resp = app.gql(PAGE, vars.clone()).await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{vars}: {resp}");
        assert_eq!(
            resp["errors"][0]["extensions"]["field"],
            json!(field),
            "{vars}"
        );
        assert_eq!(resp["data"], Value::Null, "{vars}");
    }

    // A cursor of one sort order is refused by another.
    let data = app
        .data(PAGE, json!({ "first": 1, "sort": "PRICE_ASC" }))
        .await;
    let cursor = data["products"]["pageInfo"]["endCursor"].clone();
    let resp = app
        .gql(
            PAGE,
            json!({ "first": 1, "sort": "SALES_DESC", "after": cursor }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));

    // Money never goes through a float: a JSON number with a fraction is refused.
    let resp = app
        .gql(PAGE, json!({ "filter": { "minPrice": 10.5 } }))
        .await;
    assert!(resp["errors"].is_array(), "{resp}");
}

#[tokio::test]
async fn categories_form_a_two_level_tree_in_display_order() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 1).await;

    let data = app
        .data("{ categories { id slug nameZh nameEn parent { id } children { slug parent { slug } children { id } } } }", json!({}))
        .await;
    let tops = data["categories"].as_array().expect("list");
    assert_eq!(tops.len(), 2);
    assert_eq!(tops[0]["slug"], json!("top-0"));
    assert_eq!(tops[0]["id"], json!(gid(Kind::Category, f.tops[0].id)));
    assert_eq!(tops[0]["parent"], Value::Null);
    assert_eq!(tops[1]["nameEn"], json!("Top 1"));
    let children = tops[1]["children"].as_array().expect("children");
    let slugs: Vec<&str> = children.iter().filter_map(|c| c["slug"].as_str()).collect();
    assert_eq!(slugs, ["leaf-1-0", "leaf-1-1"]);
    assert_eq!(children[0]["parent"]["slug"], json!("top-1"));
    assert_eq!(children[0]["children"], json!([]));
}

#[tokio::test]
async fn product_fields_come_back_exactly() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 3).await;
    let (id, p) = f
        .published
        .iter()
        .find(|(_, p)| p.name == "小米净水器")
        .expect("fixture product");

    let data = app
        .data(
            "query($id: ID!) { product(id: $id) { id name nameEn status membershipActivity minPrice maxPrice
               salesCount publishedAt brand { name merchant { name } } category { slug parent { slug } }
               skus { name price stock product { id } } images { url } tags } }",
            json!({ "id": gid(Kind::Product, *id) }),
        )
        .await;
    let got = &data["product"];
    assert_eq!(got["name"], json!("小米净水器"));
    assert_eq!(got["nameEn"], json!("Mi Water Purifier"));
    assert_eq!(got["status"], json!("PUBLISHED"));
    assert_eq!(got["membershipActivity"], json!(true));
    // Money is a string with two places.
    assert_eq!(got["minPrice"], json!("10.00"));
    assert_eq!(got["maxPrice"], json!("60.00"));
    assert_eq!(got["brand"]["name"], json!("Brand 0"));
    assert_eq!(got["brand"]["merchant"]["name"], json!("测试商家"));
    assert_eq!(got["category"]["slug"], json!("leaf-0-0"));
    assert_eq!(got["category"]["parent"]["slug"], json!("top-0"));
    assert_eq!(
        got["skus"][1],
        json!({ "name": "大号", "price": "60.00", "stock": 0, "product": { "id": gid(Kind::Product, *id) } })
    );
    assert_eq!(
        got["images"],
        json!([{ "url": "https://img.example/0.jpg" }])
    );
    assert_eq!(got["tags"], json!(["新品"]));
    assert_eq!(got["salesCount"], json!(p.sales_count));
}

/// The listing reads its products and SKUs by column position (`service::rows`): the same
/// rows read by SeaORM's by-name decoder come out identical, for products with every
/// optional column set and unset, in every status.
#[tokio::test]
async fn rows_by_position_match_rows_by_name() {
    use entity::sku;

    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 3).await;
    assert!(!f.published.is_empty());
    let (by_name, by_position) =
        read_both_ways::<product::Entity>(app.db(), product::Column::Id).await;
    assert_eq!(by_position, by_name);
    // Both kinds of optional columns occur: some set, some not.
    assert!(by_name.iter().any(|p| p.published_at.is_some()));
    assert!(by_name.iter().any(|p| p.published_at.is_none()));
    let statuses: HashSet<product::Status> = by_name.iter().map(|p| p.status).collect();
    assert!(statuses.len() > 1, "{statuses:?}");

    let (skus, skus_by_position) = read_both_ways::<sku::Entity>(app.db(), sku::Column::Id).await;
    assert!(!skus.is_empty());
    assert_eq!(skus_by_position, skus);

    // Product images, as the detail and the notes' products read them.
    let (images, images_by_position) = read_both_ways::<entity::product_image::Entity>(
        app.db(),
        entity::product_image::Column::Id,
    )
    .await;
    assert!(!images.is_empty());
    assert_eq!(images_by_position, images);

    // Joined rows: SKUs with their products, as a checkout reads them.
    use sea_orm::{
        ColumnTrait, EntityTrait, Iterable, JoinType, QueryFilter, QueryOrder, QuerySelect,
        RelationTrait,
    };
    let joined_by_name: Vec<(sku::Model, product::Model)> = sku::Entity::find()
        .order_by_asc(sku::Column::Id)
        .find_also_related(product::Entity)
        .all(app.db())
        .await
        .expect("by name")
        .into_iter()
        .map(|(s, p)| (s, p.expect("a SKU's product")))
        .collect();
    let joined_by_position: Vec<(sku::Model, product::Model)> = read_by_position(
        app.db(),
        sku::Entity::find()
            .join(JoinType::InnerJoin, sku::Relation::Product.def())
            .columns(product::Column::iter())
            .order_by_asc(sku::Column::Id),
    )
    .await;
    assert_eq!(joined_by_position, joined_by_name);

    // Cart lines, with and without a share code.
    app.user("rows@example.com", CliRole::PushHand).await;
    let member = entity::member::Entity::find()
        .filter(entity::member::Column::Email.eq("rows@example.com"))
        .one(app.db())
        .await
        .expect("query")
        .expect("member");
    let now = app.clock_now();
    for (i, s) in skus.iter().take(4).enumerate() {
        entity::cart_line::Entity::insert(entity::cart_line::ActiveModel::from(
            entity::cart_line::Model {
                id: uuid::Uuid::now_v7(),
                member_id: member.id,
                sku_id: s.id,
                quantity: i as i32 + 1,
                share_code: (i % 2 == 0).then(|| format!("CODE{i}")),
                unit_price: s.price,
                created_at: now,
                updated_at: now,
            },
        ))
        .exec_without_returning(app.db())
        .await
        .expect("cart line");
    }
    let (lines, lines_by_position) =
        read_both_ways::<entity::cart_line::Entity>(app.db(), entity::cart_line::Column::Id).await;
    assert_eq!(lines.len(), 4);
    assert_eq!(lines_by_position, lines);
    // Cart lines with their SKUs and products, as a checkout from the cart reads them.
    let to_sku: sea_orm::RelationDef = entity::cart_line::Entity::belongs_to(sku::Entity)
        .from(entity::cart_line::Column::SkuId)
        .to(sku::Column::Id)
        .into();
    let three_by_name: Vec<(entity::cart_line::Model, sku::Model, product::Model)> =
        entity::cart_line::Entity::find()
            .join(JoinType::LeftJoin, to_sku.clone())
            .order_by_asc(entity::cart_line::Column::Id)
            .select_also(sku::Entity)
            .find_also(sku::Entity, product::Entity)
            .all(app.db())
            .await
            .expect("by name")
            .into_iter()
            .map(|(l, s, p)| (l, s.expect("sku"), p.expect("product")))
            .collect();
    let three_by_position: Vec<(entity::cart_line::Model, sku::Model, product::Model)> =
        read_by_position(
            app.db(),
            entity::cart_line::Entity::find()
                .join(JoinType::InnerJoin, to_sku)
                .join(JoinType::InnerJoin, sku::Relation::Product.def())
                .columns(sku::Column::iter())
                .columns(product::Column::iter())
                .order_by_asc(entity::cart_line::Column::Id),
        )
        .await;
    assert_eq!(three_by_position.len(), 4);
    assert_eq!(three_by_position, three_by_name);
}

/// A product's detail reads the product with its SKUs, images and tags in one statement, the
/// lists as JSON (`service::catalog::visible_detail`): what comes back is what the loaders
/// read row by row, text that JSON must escape included, in display order, and only the
/// lists asked for. Hidden products stay `NOT_FOUND`.
#[tokio::test]
async fn a_detail_in_one_statement_matches_the_loaders() {
    use entity::product_image;
    use pushhand::service::auth::Viewer;
    use pushhand::service::catalog::{self as svc, DetailLists, NewSku};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};

    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let awkward = "引号\"反斜杠\\ 换行\n制表\t\u{1}😀 </script>";
    let mut p = fixtures::product(&f, 0, product::Status::Published);
    p.skus = (0..5)
        .map(|i| NewSku {
            name: format!("{awkward} {i}"),
            price: entity::Money::from_fen(9_999_999 - i),
            stock: 1_000_000 + i as i32,
        })
        .collect();
    p.images = vec![format!("https://img.example/a.jpg?q=\"{awkward}\"")];
    p.tags = vec![awkward.to_owned(), "新品".to_owned(), String::new()];
    let id = p.id;
    let mut rows = ProductRows::default();
    rows.push(p, Uuid::now_v7).expect("product");
    let hidden = fixtures::product(&f, 1, product::Status::InCuration);
    let hidden_id = hidden.id;
    rows.push(hidden, Uuid::now_v7).expect("hidden product");
    let txn = app.db().begin().await.expect("begin");
    rows.insert(&txn).await.expect("insert");
    txn.commit().await.expect("commit");
    // Images with alternative text (and one without, first in display order).
    for (position, alt) in [(2, Some(awkward)), (-1, None), (1, Some(""))] {
        product_image::ActiveModel {
            id: Set(Uuid::now_v7()),
            product_id: Set(id),
            url: Set(format!("https://img.example/{position}.jpg")),
            alt: Set(alt.map(str::to_owned)),
            position: Set(position),
        }
        .insert(app.db())
        .await
        .expect("image");
    }

    let all = DetailLists {
        skus: true,
        images: true,
        tags: true,
    };
    let d = svc::visible_detail(app.db(), &Viewer::Anonymous, id, all)
        .await
        .expect("detail");
    let ids = [id];
    let product = svc::products_by_ids(app.db(), &ids).await.expect("product");
    assert_eq!(Some(&d.product), product.get(&id));
    let skus = svc::skus_by_product_ids(app.db(), &ids)
        .await
        .expect("skus");
    assert_eq!(d.skus.as_ref(), skus.get(&id));
    assert_eq!(d.skus.as_ref().map(Vec::len), Some(5));
    let images = svc::images_by_product_ids(app.db(), &ids)
        .await
        .expect("images");
    assert_eq!(d.images.as_ref(), images.get(&id));
    let alts: Vec<Option<&str>> = d
        .images
        .iter()
        .flatten()
        .map(|i| i.alt.as_deref())
        .collect();
    assert_eq!(alts, [None, None, Some(""), Some(awkward)]);
    let tags = svc::tags_by_product_ids(app.db(), &ids)
        .await
        .expect("tags");
    assert_eq!(d.tags.as_ref(), tags.get(&id));
    assert_eq!(
        d.tags,
        Some(vec![awkward.to_owned(), "新品".to_owned(), String::new()])
    );

    // Only the lists asked for; none at all for a product that has none.
    let only_tags = DetailLists {
        tags: true,
        ..DetailLists::default()
    };
    let d = svc::visible_detail(app.db(), &Viewer::Anonymous, id, only_tags)
        .await
        .expect("detail");
    assert!(d.skus.is_none() && d.images.is_none());
    assert_eq!(d.tags.map(|t| t.len()), Some(3));
    let bare = fixtures::product(&f, 2, product::Status::Published);
    let bare_id = bare.id;
    let mut rows = ProductRows::default();
    let mut bare = bare;
    bare.images.clear();
    bare.tags.clear();
    rows.push(bare, Uuid::now_v7).expect("bare product");
    let txn = app.db().begin().await.expect("begin");
    rows.insert(&txn).await.expect("insert");
    txn.commit().await.expect("commit");
    let d = svc::visible_detail(app.db(), &Viewer::Anonymous, bare_id, all)
        .await
        .expect("detail");
    assert_eq!(d.images, Some(vec![]));
    assert_eq!(d.tags, Some(vec![]));

    // Hidden and unknown products are not found.
    for missing in [hidden_id, Uuid::now_v7()] {
        let err = svc::visible_detail(app.db(), &Viewer::Anonymous, missing, all)
            .await
            .expect_err("not visible");
        assert!(
            matches!(err, pushhand::error::Error::NotFound(_)),
            "{err:?}"
        );
    }
}

/// Every row of `E` in `id` order, read by SeaORM's decoder and by position.
pub(crate) async fn read_both_ways<E>(
    db: &sea_orm::DatabaseConnection,
    id: E::Column,
) -> (Vec<E::Model>, Vec<E::Model>)
where
    E: sea_orm::EntityTrait,
    E::Model: pushhand::service::rows::Positional + Send + Sync,
{
    use sea_orm::QueryOrder;

    let by_name = E::find().order_by_asc(id).all(db).await.expect("by name");
    let by_position = read_by_position(db, E::find().order_by_asc(id)).await;
    (by_name, by_position)
}

/// The rows of `select` read by position as `M` (a model, or a tuple of models for a join).
async fn read_by_position<E, M>(
    db: &sea_orm::DatabaseConnection,
    select: sea_orm::Select<E>,
) -> Vec<M>
where
    E: sea_orm::EntityTrait,
    M: pushhand::service::rows::Positional + Send + Sync,
{
    use pushhand::service::rows::ByPosition;
    select
        .into_model::<ByPosition<M>>()
        .all(db)
        .await
        .expect("by position")
        .into_iter()
        .map(|row| row.0)
        .collect()
}

/// Every plain field of a listed product, its brand, category, SKUs and passport.
const PLAIN_PRODUCT: &str = "__typename id name nameEn description status membershipActivity
    minPrice maxPrice salesCount publishedAt createdAt rebateRate teamRebateRate estimatedEarning
    unpublishedReason brand { __typename id name } category { __typename id slug nameZh nameEn }
    skus { __typename id name price stock } curation { __typename passed badges nextStage publishedAt }
    again: name";

/// A page's products are answered without async-graphql's per-field resolvers when the
/// selection is plain fields (`graphql::transport::plain`); inside an inline fragment the same selection
/// goes through the resolvers. Both answer alike, whoever asks, and with fields only the
/// resolvers know mixed in.
#[tokio::test]
async fn plain_and_resolved_products_answer_alike() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 3).await;
    let (push_hand, _) = app.user("ph@example.com", CliRole::PushHand).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    for token in [None, Some(&push_hand), Some(&curator)] {
        for extra in ["", "category { parent { slug } }", "images { url } tags"] {
            let sel = format!("{PLAIN_PRODUCT} {extra}");
            // The page itself too: plain as a whole, or each part through its resolver.
            let query = |node: &str, wrap: &dyn Fn(&str, &str) -> String| {
                let page = format!(
                    "__typename edges {{ {} }} nodes {{ {node} }} pageInfo {{ {} }}",
                    wrap(
                        "ProductEdge",
                        &format!("__typename cursor node {{ {node} }}")
                    ),
                    wrap(
                        "PageInfo",
                        "__typename hasNextPage hasPreviousPage startCursor endCursor"
                    ),
                );
                format!(
                    "{{ products(first: 2) {{ {} }} }}",
                    wrap("ProductConnection", &page)
                )
            };
            let plain = query(&sel, &|_, s| s.to_owned());
            let resolved = query(&format!("... on Product {{ {sel} }}"), &|t, s| {
                format!("... on {t} {{ {s} }}")
            });
            let (a, b) = match token {
                Some(t) => (
                    app.data_as(t, &plain, json!({})).await,
                    app.data_as(t, &resolved, json!({})).await,
                ),
                None => (
                    app.data(&plain, json!({})).await,
                    app.data(&resolved, json!({})).await,
                ),
            };
            assert_eq!(a, b, "viewer {token:?}, extra {extra:?}");
            let page = &a["products"];
            assert_eq!(page["__typename"], json!("ProductConnection"));
            assert_eq!(page["edges"][0]["__typename"], json!("ProductEdge"));
            assert_eq!(page["pageInfo"]["__typename"], json!("PageInfo"));
            assert_eq!(page["pageInfo"]["hasNextPage"], json!(true));
            assert_eq!(page["pageInfo"]["endCursor"], page["edges"][1]["cursor"]);
            let nodes = page["nodes"].as_array().expect("nodes");
            assert_eq!(nodes.len(), 2.min(f.published.len()));
            assert_eq!(page["edges"][0]["node"], nodes[0]);
            // The plain page's cursor continues the listing where the resolvers' would.
            let rest = app
                .data(
                    "query($after: String) { products(first: 100, after: $after) { nodes { id } } }",
                    json!({ "after": page["pageInfo"]["endCursor"] }),
                )
                .await;
            let rest = rest["products"]["nodes"].as_array().expect("rest").len();
            assert_eq!(2 + rest, f.published.len());
            let first = &nodes[0];
            assert_eq!(first["__typename"], json!("Product"));
            assert_eq!(first["again"], first["name"]);
            assert_eq!(first["skus"][0]["__typename"], json!("Sku"));
            assert!(first["skus"][0]["price"].is_string());
            assert_eq!(first["curation"]["__typename"], json!("CurationReport"));
            // The viewer shows: rates for programme members and staff only.
            assert_eq!(first["rebateRate"].is_null(), token.is_none());
            assert_eq!(
                first["estimatedEarning"].is_null(),
                token != Some(&push_hand)
            );
        }
    }
}

/// A product's detail is answered like a listed product: plainly when its selection allows,
/// with every relation (brand and its merchant, category and its parent, SKUs, images, tags,
/// the passport's stages) from rows read together. Inside an inline fragment the same
/// selection goes through the resolvers; both answer alike, whoever asks.
#[tokio::test]
async fn plain_and_resolved_details_answer_alike() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 3).await;
    let (push_hand, _) = app.user("ph@example.com", CliRole::PushHand).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let id = fixtures::gid(
        Kind::Product,
        *f.published.keys().next().expect("a product"),
    );
    let sel = format!(
        "{PLAIN_PRODUCT} brand {{ merchant {{ __typename id name }} }}
         category {{ parent {{ __typename id nameZh parent {{ id }} }} }}
         images {{ __typename url alt }} tags
         curation {{ stages {{ __typename stage result recordedAt notes evidenceUrls reviewerId }} }}"
    );
    let plain = format!("query($id: ID!) {{ product(id: $id) {{ {sel} }} }}");
    let resolved =
        format!("query($id: ID!) {{ product(id: $id) {{ ... on Product {{ {sel} }} }} }}");
    for token in [None, Some(&push_hand), Some(&curator)] {
        let (a, b) = match token {
            Some(t) => (
                app.data_as(t, &plain, json!({ "id": id })).await,
                app.data_as(t, &resolved, json!({ "id": id })).await,
            ),
            None => (
                app.data(&plain, json!({ "id": id })).await,
                app.data(&resolved, json!({ "id": id })).await,
            ),
        };
        assert_eq!(a, b, "viewer {token:?}");
        let p = &a["product"];
        assert_eq!(p["brand"]["merchant"]["__typename"], json!("Merchant"));
        assert_eq!(p["category"]["parent"]["parent"], Value::Null);
        assert_eq!(p["images"][0]["__typename"], json!("ProductImage"));
        assert_eq!(p["tags"], json!(["新品"]));
        assert_eq!(
            p["curation"]["stages"].as_array().map(Vec::len),
            Some(5),
            "{p}"
        );
        assert_eq!(p["estimatedEarning"].is_null(), token != Some(&push_hand));
    }
}
