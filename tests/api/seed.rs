//! The demo catalog: the promised shape, within the curation rules, deterministic and
//! idempotent.

use std::collections::{HashMap, HashSet};

use entity::{brand, category, merchant, product, sku};
use pushhand::seed;
use sea_orm::{EntityTrait, PaginatorTrait, QueryOrder};

use crate::helpers::TestApp;

#[tokio::test]
async fn seed_builds_the_demo_catalog_once() {
    let app = TestApp::spawn().await;
    let db = app.db();

    let report = seed::run(db, &app.state.events)
        .await
        .map_err(anyhow::Error::from)
        .expect("seed runs");
    assert!(!report.already_seeded);

    let categories = category::Entity::find().all(db).await.expect("categories");
    let tops: Vec<_> = categories
        .iter()
        .filter(|c| c.parent_id.is_none())
        .collect();
    assert_eq!(tops.len(), 17);
    for name in [
        "家居", "日用", "家电", "餐厨", "影音", "智能", "服饰", "健康", "出行", "洗护", "箱包",
        "婴童",
    ] {
        assert!(
            tops.iter().any(|c| c.name_zh == name),
            "missing top-level category {name}"
        );
    }
    assert!(categories.iter().all(|c| !c.name_en.is_empty()));
    assert!(merchant::Entity::find().count(db).await.expect("count") >= 400);

    let products = product::Entity::find().all(db).await.expect("products");
    let published: Vec<_> = products
        .iter()
        .filter(|p| p.status == product::Status::Published)
        .collect();
    assert!(published.len() >= 3_000, "{} published", published.len());
    assert!(products.iter().any(|p| p.membership_activity));
    let leaf_ids: HashSet<_> = categories
        .iter()
        .filter(|c| c.parent_id.is_some())
        .map(|c| c.id)
        .collect();
    let mut brands_per_leaf: HashMap<_, HashSet<_>> = HashMap::new();
    for p in &products {
        assert!(
            leaf_ids.contains(&p.category_id),
            "products live in leaf categories"
        );
        let (rebate, team) = (p.rebate_rate.bp(), p.team_rebate_rate.bp());
        assert!((500..=2_000).contains(&rebate) && (100..=500).contains(&team));
        assert!(rebate + team <= 3_000);
        assert!(
            p.min_price.fen() >= 990 && p.max_price.fen() <= 499_900 && p.min_price <= p.max_price
        );
        if p.status == product::Status::Published {
            brands_per_leaf
                .entry(p.category_id)
                .or_default()
                .insert(p.brand_id);
        }
    }
    assert!(
        brands_per_leaf.values().all(|b| b.len() <= 8),
        "the brand cap holds in the demo data"
    );

    let skus = sku::Entity::find().all(db).await.expect("skus");
    let mut per_product: HashMap<_, usize> = HashMap::new();
    for s in &skus {
        *per_product.entry(s.product_id).or_default() += 1;
        assert!(s.price.fen() >= 990 && s.price.fen() <= 499_900);
        assert!(s.stock >= 0);
    }
    assert!(per_product.values().all(|n| (1..=4).contains(n)));
    assert_eq!(per_product.len(), products.len());

    // Curation: every listed product passed the gate; the rest sit at every stage, some
    // rejected with the curator's notes.
    let passports = pushhand::service::curation::summaries_by_ids(
        db,
        &products.iter().map(|p| p.id).collect::<Vec<_>>(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("passports");
    for p in &published {
        assert!(
            passports[&p.id].passed(3),
            "published product {} has a passing passport",
            p.id
        );
    }
    let waiting: Vec<_> = products
        .iter()
        .filter(|p| p.status != product::Status::Published)
        .collect();
    let stages: HashSet<i16> = waiting.iter().map(|p| p.stages_passed).collect();
    assert!(
        stages.len() >= 4,
        "products in curation sit at several stages: {stages:?}"
    );
    let rejected: Vec<_> = waiting
        .iter()
        .filter(|p| p.status == product::Status::Rejected)
        .collect();
    assert!(!rejected.is_empty());
    for p in rejected {
        let failed = passports[&p.id]
            .stages
            .iter()
            .find(|e| !e.passed)
            .expect("a failed stage");
        assert!(failed.notes.as_deref().is_some_and(|n| !n.is_empty()));
    }
    assert!(report.curated >= products.len());

    // A second run adds nothing.
    let again = seed::run(db, &app.state.events)
        .await
        .map_err(anyhow::Error::from)
        .expect("seed runs again");
    assert!(again.already_seeded);
    assert_eq!(
        product::Entity::find().count(db).await.expect("count"),
        products.len() as u64
    );
    assert_eq!(
        brand::Entity::find().count(db).await.expect("count"),
        report.brands as u64
    );
}

#[tokio::test]
async fn seed_is_deterministic() {
    let (a, b) = (TestApp::spawn().await, TestApp::spawn().await);
    let first_ids = |app: &TestApp| {
        let db = app.db().clone();
        let events = app.state.events.clone();
        async move {
            seed::run(&db, &events)
                .await
                .map_err(anyhow::Error::from)
                .expect("seed");
            product::Entity::find()
                .order_by_asc(product::Column::Id)
                .all(&db)
                .await
                .expect("products")
                .into_iter()
                .map(|p| (p.id, p.name, p.min_price, p.published_at))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(first_ids(&a).await, first_ids(&b).await);
}

#[tokio::test]
async fn production_refuses_demo_accounts_but_takes_the_catalog_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let db_url = crate::helpers::fresh_database_url(&dir).await;
    let seed = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pushhand"))
            .args(["--database-url", &db_url, "--data-dir"])
            .arg(dir.path())
            .args([
                "--env",
                "production",
                "--jwt-secret",
                "test-secret-test-secret-test-secret-0123",
                "seed",
            ])
            .args(extra)
            .output()
            .expect("runs")
    };
    let refused = seed(&[]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refused in production"), "{stderr}");
    assert!(stderr.contains("--catalog-only"), "{stderr}");

    let catalog = seed(&["--catalog-only"]);
    assert!(
        catalog.status.success(),
        "{}",
        String::from_utf8_lossy(&catalog.stderr)
    );
    let db = sea_orm::Database::connect(db_url.as_str())
        .await
        .expect("connect");
    assert!(product::Entity::find().count(&db).await.expect("count") > 3_000);
    // No demo account, so no published password.
    assert_eq!(
        entity::member::Entity::find()
            .count(&db)
            .await
            .expect("count"),
        0
    );
    db.close().await.ok();
}
