//! `service::batch`: the parts of a batch run in the order they were pushed, on PostgreSQL
//! (where they are one statement) as on SQLite (one text of several statements, each bound
//! to its own values). The order is what keeps
//! two batches locking the same rows from deadlocking. A guarded batch runs only when its
//! guard updates its row.

use pushhand::service::batch::Batch;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbBackend};

use crate::helpers::TestApp;

/// A batch inserting each of `tags` into `table`, in order.
fn inserts(table: &str, tags: &[&str]) -> Batch {
    let mut batch = Batch::default();
    for tag in tags {
        batch.push(
            Query::insert()
                .into_table(Alias::new(table))
                .columns([Alias::new("tag")])
                .values_panic([Expr::val(*tag)])
                .to_owned(),
        );
    }
    batch
}

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
    inserts("batch_probe", &tags)
        .run_alone(db)
        .await
        .expect("batch");
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

/// Parts with different numbers of values (none, two, one) each get their own: on SQLite
/// one text binds its statements' values one after the other. A part that fails leaves none
/// of the batch written, and the connection it ran on serves the next batch.
#[tokio::test]
async fn each_part_gets_its_own_values_and_a_failing_part_writes_nothing() {
    let app = TestApp::spawn().await;
    let db = app.db();
    db.execute_unprepared(
        "CREATE TABLE values_probe (tag TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT)",
    )
    .await
    .expect("table");
    let row = |tag: &str, n: i64, note: Option<&str>| {
        Query::insert()
            .into_table(Alias::new("values_probe"))
            .columns([Alias::new("tag"), Alias::new("n"), Alias::new("note")])
            .values_panic([
                Expr::val(tag),
                Expr::val(n),
                Expr::val(note.map(str::to_owned)),
            ])
            .to_owned()
    };
    // Rows the updates change: one part must not change a row another part writes
    // (`service::batch`: PostgreSQL leaves that undefined).
    for sql in [
        "INSERT INTO values_probe (tag, n) VALUES ('y', 5)",
        "INSERT INTO values_probe (tag, n) VALUES ('z', 7)",
    ] {
        db.execute_unprepared(sql).await.expect("set-up");
    }
    let mut batch = Batch::default();
    batch.push(row("a", 1, Some("first")));
    // No value of its own.
    batch.push(
        Query::update()
            .table(Alias::new("values_probe"))
            .value(Alias::new("n"), Expr::cust("n * 2"))
            .and_where(Expr::cust("tag = 'z'"))
            .to_owned(),
    );
    // Two values.
    batch.push(
        Query::update()
            .table(Alias::new("values_probe"))
            .value(Alias::new("note"), Expr::val("second"))
            .and_where(Expr::col(Alias::new("tag")).eq("y"))
            .to_owned(),
    );
    batch.push(row("b", 2, None));
    batch.run_alone(db).await.expect("batch");
    let read = || async {
        db.query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT tag, n, note FROM values_probe ORDER BY tag",
        ))
        .await
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "tag").expect("tag"),
                r.try_get::<i64>("", "n").expect("n"),
                r.try_get::<Option<String>>("", "note").expect("note"),
            )
        })
        .collect::<Vec<_>>()
    };
    let written = vec![
        ("a".to_owned(), 1, Some("first".to_owned())),
        ("b".to_owned(), 2, None),
        ("y".to_owned(), 5, Some("second".to_owned())),
        ("z".to_owned(), 14, None),
    ];
    assert_eq!(read().await, written);
    // The middle part breaks the primary key: the first part is not kept either.
    for _ in 0..3 {
        let mut failing = Batch::default();
        failing.push(row("c", 3, None));
        failing.push(row("a", 4, None));
        failing.push(row("d", 5, None));
        let e = failing.run_alone(db).await.expect_err("a duplicate key");
        assert!(pushhand::db::is_unique_violation(&e), "{e:?}");
        assert_eq!(read().await, written, "nothing of a failed batch");
    }
    let mut next = Batch::default();
    next.push(row("e", 6, None));
    next.run_alone(db).await.expect("the next batch");
    assert_eq!(read().await.len(), written.len() + 1);
}

/// A guarded batch runs its parts (in order) only when its guard updates its row: a guard
/// that updates nothing leaves every part unwritten, and many guarded batches racing on one
/// row make exactly one of them run.
#[tokio::test]
async fn a_guarded_batch_runs_only_when_its_guard_updates_its_row() {
    let app = TestApp::spawn().await;
    let db = app.db();
    let backend = db.get_database_backend();
    let numbered = match backend {
        DbBackend::Postgres => "n serial PRIMARY KEY",
        _ => "n INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    for sql in [
        format!("CREATE TABLE guarded_probe ({numbered}, tag TEXT NOT NULL)"),
        "CREATE TABLE guarded_gate (id INTEGER PRIMARY KEY, open INTEGER NOT NULL)".to_owned(),
        "INSERT INTO guarded_gate (id, open) VALUES (1, 1)".to_owned(),
    ] {
        db.execute_unprepared(&sql).await.expect("set-up");
    }
    let batch = |tags: &[&str]| inserts("guarded_probe", tags);
    // Closes gate `id` if it is open.
    let close = |id: i32| -> sea_orm::sea_query::SubQueryStatement {
        Query::update()
            .table(Alias::new("guarded_gate"))
            .value(Alias::new("open"), 0)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .and_where(Expr::col(Alias::new("open")).eq(1))
            .to_owned()
            .into()
    };
    let tags = || async {
        db.query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT tag FROM guarded_probe ORDER BY n",
        ))
        .await
        .expect("rows")
        .iter()
        .map(|r| r.try_get::<String>("", "tag").expect("tag"))
        .collect::<Vec<_>>()
    };

    let racing = futures_util::future::join_all((0..8).map(|i| {
        let tag = format!("winner {i}");
        let b = batch(&[tag.as_str(), "then"]);
        b.run_guarded(db, vec![close(1)])
    }))
    .await;
    let made: Vec<bool> = racing
        .into_iter()
        .map(|r| r.expect("a guarded batch"))
        .collect();
    assert_eq!(made.iter().filter(|m| **m).count(), 1, "{made:?}");
    let ran = tags().await;
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(ran[0].starts_with("winner "), "{ran:?}");
    assert_eq!(ran[1], "then", "the parts ran in the order pushed");

    // The gate is closed: nothing more is written.
    let made = batch(&["late"])
        .run_guarded(db, vec![close(1)])
        .await
        .expect("a guarded batch");
    assert!(!made);
    assert_eq!(tags().await.len(), 2);

    // Every guard must change its row: when the second changes nothing (there is no gate 2),
    // the first one's change is undone with everything else.
    let open = || async {
        db.query_one_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT open FROM guarded_gate WHERE id = 1",
        ))
        .await
        .expect("row")
        .expect("gate 1")
        .try_get::<i32>("", "open")
        .expect("open")
    };
    db.execute_unprepared("UPDATE guarded_gate SET open = 1 WHERE id = 1")
        .await
        .expect("reopened");
    let made = batch(&["two gates"])
        .run_guarded(db, vec![close(1), close(2)])
        .await
        .expect("a guarded batch");
    assert!(!made);
    assert_eq!(open().await, 1, "the first guard's change is undone");
    assert_eq!(tags().await.len(), 2);
    db.execute_unprepared("INSERT INTO guarded_gate (id, open) VALUES (2, 1)")
        .await
        .expect("gate 2");
    let made = batch(&["two gates"])
        .run_guarded(db, vec![close(1), close(2)])
        .await
        .expect("a guarded batch");
    assert!(made);
    assert_eq!(open().await, 0);
    assert_eq!(tags().await.last().map(String::as_str), Some("two gates"));
}
