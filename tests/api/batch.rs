//! `service::batch`: the parts of a batch run in the order they were pushed, on PostgreSQL
//! (where they are one statement) as on SQLite (one statement each). The order is what keeps
//! two batches locking the same rows from deadlocking.

use pushhand::service::batch::Batch;
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, DbBackend};

use crate::helpers::TestApp;

#[tokio::test]
async fn parts_run_in_the_order_pushed() {
    let app = TestApp::spawn().await;
    let db = app.db();
    let numbered = match db.get_database_backend() {
        DbBackend::Postgres => "n serial PRIMARY KEY",
        _ => "n INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    db.execute_unprepared(&format!(
        "CREATE TABLE batch_probe ({numbered}, tag TEXT NOT NULL)"
    ))
    .await
    .expect("table");
    let tags = ["first", "second", "third", "fourth"];
    let mut batch = Batch::default();
    for tag in tags {
        batch.push(
            Query::insert()
                .into_table(Alias::new("batch_probe"))
                .columns([Alias::new("tag")])
                .values_panic([Expr::val(tag)])
                .to_owned(),
        );
    }
    batch.run_alone(db).await.expect("batch");
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT tag FROM batch_probe ORDER BY n",
        ))
        .await
        .expect("rows");
    let ran: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "tag").expect("tag"))
        .collect();
    assert_eq!(ran, tags, "numbered in the order they ran");
}
