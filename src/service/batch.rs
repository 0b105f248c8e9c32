//! Writes sent to the database together: on PostgreSQL as one statement whose parts are
//! data-modifying CTEs (one round trip instead of one per part), on SQLite as one text of
//! several statements (one round trip to the connection's thread), in order.
//!
//! On PostgreSQL a statement's parts run in a fixed order: its main statement first, then
//! its CTEs from the last to the first (`ExecPostprocessPlan`; the integration test
//! `batch::parts_run_in_the_order_pushed` checks it on each store the suite runs on). The parts are laid out so that
//! they run in the order they were pushed, which is what keeps two batches that lock the
//! same rows from deadlocking: callers push rows they lock in a fixed order (by key) and the
//! hottest rows last. Foreign keys are checked at the end of the statement, so a part may
//! reference a row a part before it inserts. One part must not change a row another part of
//! the same batch changes (PostgreSQL leaves that outcome undefined): callers sum such moves
//! first.
//!
//! Many rows in one part, on PostgreSQL: [`insert_json`] and [`recordset`] pass them as one
//! JSON parameter read by `jsonb_populate_recordset`, so the part's text — and the prepared
//! statement and plan kept for it — is the same for any number of rows (the checkouts' orders,
//! lines and coupons, a group of short-link visits).

use chrono::SecondsFormat;
use sea_orm::sea_query::{
    Alias, CommonTableExpression, Expr, ExprTrait, Func, FunctionCall, InsertStatement, Query,
    SubQueryStatement, WithClause,
};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityName,
    EntityTrait, IdenStatic, Iterable, ModelTrait, QueryTrait, Statement, Value,
};

/// Statements to run together, in the order pushed.
#[derive(Debug, Default)]
pub struct Batch(Vec<SubQueryStatement>);

impl Batch {
    pub fn push(&mut self, statement: impl Into<SubQueryStatement>) {
        self.0.push(statement.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Runs every part: in one statement on PostgreSQL (atomic on its own, so `conn` may be
    /// the pool), on SQLite as one text of statements run one after the other (then `conn`
    /// must be a transaction for the batch to be atomic).
    pub async fn run(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let statement = match conn.get_database_backend() {
            DbBackend::Postgres => self.postgres(),
            _ => self.sqlite(),
        };
        if let Some(statement) = statement {
            conn.execute_raw(statement).await?;
        }
        Ok(())
    }

    /// The batch as one SQLite text of several statements, separated by `;`, with every
    /// part's values in order: sqlx runs a text's statements one after the other and binds
    /// each one's `?` parameters from where the last one's ended, so the parts run in the
    /// order pushed, stopping at the first that fails — in one round trip to the
    /// connection's thread instead of one per part.
    fn sqlite(self) -> Option<Statement> {
        let mut sql = String::new();
        let mut values = Vec::new();
        for part in self.0 {
            let s = build(DbBackend::Sqlite, part);
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            sql.push_str(&s.sql);
            values.extend(s.values.map(|v| v.0).unwrap_or_default());
        }
        (!sql.is_empty()).then(|| Statement::from_sql_and_values(DbBackend::Sqlite, sql, values))
    }

    /// Runs every part in a transaction of its own: the one statement on PostgreSQL (no
    /// `BEGIN` and `COMMIT` round trips), a write transaction elsewhere.
    pub async fn run_alone(self, db: &DatabaseConnection) -> Result<(), DbErr> {
        if db.get_database_backend() == DbBackend::Postgres {
            return self.run(db).await;
        }
        let txn = crate::db::begin_write(db).await?;
        self.run(&txn).await?;
        txn.commit().await
    }

    /// Runs every part, in a transaction of its own, only if each of `guards` (a write of
    /// exactly one row: the transition that makes a payment happen once, a counter moved from
    /// the figure read) changes its row; returns whether they all did. On PostgreSQL one
    /// statement: the guards as CTEs that the main statement (`SELECT 1 / (…)`, the product
    /// of the guards' row counts) runs first, in order, so that a guard changing nothing
    /// divides by zero and aborts the statement with every part of it. The parts run after
    /// the main statement, in the order pushed. Elsewhere a write transaction: the guards
    /// (all of them changing their row, or nothing is kept), the parts, the commit.
    pub async fn run_guarded(
        self,
        db: &DatabaseConnection,
        guards: Vec<SubQueryStatement>,
    ) -> Result<bool, DbErr> {
        let backend = db.get_database_backend();
        if backend != DbBackend::Postgres {
            let txn = crate::db::begin_write(db).await?;
            for guard in guards {
                if txn
                    .execute_raw(build(backend, guard))
                    .await?
                    .rows_affected()
                    != 1
                {
                    return Ok(false);
                }
            }
            self.run(&txn).await?;
            txn.commit().await?;
            return Ok(true);
        }
        let mut with = WithClause::new();
        let mut counts = Vec::new();
        for (i, guard) in guards.into_iter().enumerate() {
            let name = format!("{GUARD}{}", i + 1);
            with.cte(
                CommonTableExpression::new()
                    .query(returning_all(guard)?)
                    .table_name(Alias::new(name.clone()))
                    .to_owned(),
            );
            counts.push(format!("(SELECT COUNT(*) FROM \"{name}\")"));
        }
        if counts.is_empty() {
            return Err(DbErr::Custom("a guarded batch without a guard".into()));
        }
        self.into_ctes(&mut with);
        let main = Query::select()
            .expr(Expr::cust(format!("1 / ({})", counts.join(" * "))))
            .to_owned();
        match db
            .execute_raw(DbBackend::Postgres.build(&with.query(main)))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if crate::db::is_division_by_zero(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lists the parts as CTEs of `with`, last to first (so that they run in the order
    /// pushed), named `p1`, `p2`, … in that order.
    fn into_ctes(self, with: &mut WithClause) {
        let parts: Vec<(usize, SubQueryStatement)> = self.0.into_iter().enumerate().collect();
        for (i, part) in parts.into_iter().rev() {
            with.cte(
                CommonTableExpression::new()
                    .query(part)
                    .table_name(Alias::new(format!("p{}", i + 1)))
                    .to_owned(),
            );
        }
    }

    /// The batch as one PostgreSQL statement: the first part as the main statement, the
    /// others as CTEs listed last to first (so that they run in the order pushed).
    fn postgres(self) -> Option<Statement> {
        let mut parts = self.0.into_iter();
        let main = parts.next()?;
        let rest = Batch(parts.collect());
        if rest.is_empty() {
            return Some(build(DbBackend::Postgres, main));
        }
        let mut with = WithClause::new();
        rest.into_ctes(&mut with);
        Some(DbBackend::Postgres.build(&with.query(main)))
    }
}

/// The guards' CTEs in [`Batch::run_guarded`]: `guard1`, `guard2`, ….
const GUARD: &str = "guard";

/// A guard that says which rows it changed, so that its CTE can be counted.
fn returning_all(guard: SubQueryStatement) -> Result<SubQueryStatement, DbErr> {
    Ok(match guard {
        SubQueryStatement::UpdateStatement(mut s) => {
            s.returning_all();
            s.into()
        }
        SubQueryStatement::InsertStatement(mut s) => {
            s.returning_all();
            s.into()
        }
        SubQueryStatement::DeleteStatement(mut s) => {
            s.returning_all();
            s.into()
        }
        _ => return Err(DbErr::Custom("a guard must write rows".into())),
    })
}

impl Batch {
    /// Each part's SQL with its values inlined, in the order the parts run (for tests).
    #[cfg(test)]
    pub fn sql_for_tests(&self) -> Vec<String> {
        use sea_orm::sea_query::PostgresQueryBuilder as Pg;
        self.0
            .iter()
            .map(|part| match part {
                SubQueryStatement::InsertStatement(s) => s.to_string(Pg),
                SubQueryStatement::UpdateStatement(s) => s.to_string(Pg),
                SubQueryStatement::DeleteStatement(s) => s.to_string(Pg),
                SubQueryStatement::SelectStatement(s) => s.to_string(Pg),
                SubQueryStatement::WithStatement(s) => s.to_string(Pg),
            })
            .collect()
    }
}

/// One part as a statement of its own.
fn build(backend: DbBackend, part: SubQueryStatement) -> Statement {
    match part {
        SubQueryStatement::InsertStatement(s) => backend.build(&s),
        SubQueryStatement::UpdateStatement(s) => backend.build(&s),
        SubQueryStatement::DeleteStatement(s) => backend.build(&s),
        SubQueryStatement::SelectStatement(s) => backend.build(&s),
        SubQueryStatement::WithStatement(s) => backend.build(&s),
    }
}

/// `jsonb_populate_recordset(NULL::table, $1)`: `records` (objects keyed by `table`'s column
/// names) as rows of `table`, one JSON parameter whatever their number.
pub(crate) fn recordset(table: &impl EntityName, records: Vec<serde_json::Value>) -> FunctionCall {
    Func::cust("jsonb_populate_recordset")
        .arg(Expr::cust(format!("NULL::\"{}\"", table.table_name())))
        .arg(Expr::val(serde_json::Value::Array(records).to_string()).cast_as("jsonb"))
}

/// `INSERT INTO t (every column) SELECT every column FROM jsonb_populate_recordset(NULL::t,
/// $1)`: `rows`, every column of each, as one JSON parameter (PostgreSQL).
pub(crate) fn insert_json<'a, M: ModelTrait + 'a>(
    rows: impl IntoIterator<Item = &'a M>,
) -> Result<InsertStatement, DbErr> {
    let columns: Vec<<M::Entity as EntityTrait>::Column> =
        <M::Entity as EntityTrait>::Column::iter().collect();
    let mut records = Vec::new();
    for row in rows {
        let mut record = serde_json::Map::with_capacity(columns.len());
        for column in &columns {
            record.insert(column.as_str().to_owned(), json_of(row.get(*column))?);
        }
        records.push(serde_json::Value::Object(record));
    }
    let table = M::Entity::default();
    let rows = recordset(&table, records);
    let select = Query::select()
        .columns(columns.iter().copied())
        .from_function(rows, Alias::new("r"))
        .to_owned();
    let mut insert = Query::insert();
    insert
        .into_table(table)
        .columns(columns)
        .select_from(select)
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    Ok(insert)
}

/// Every row of `rows` in one insert, whatever their number: as one JSON parameter on
/// PostgreSQL ([`insert_json`]: the same text for any number of rows), as `VALUES` on
/// SQLite. `A` is the rows' active model; `rows` must not be empty.
pub(crate) fn insert_rows<'a, M, A>(
    backend: DbBackend,
    rows: impl IntoIterator<Item = &'a M>,
) -> Result<InsertStatement, DbErr>
where
    M: ModelTrait + Clone + 'a,
    A: ActiveModelTrait<Entity = M::Entity> + From<M>,
{
    if backend == DbBackend::Postgres {
        return insert_json(rows);
    }
    let rows: Vec<A> = rows.into_iter().cloned().map(A::from).collect();
    if rows.is_empty() {
        return Err(DbErr::Custom("an insert of no rows".into()));
    }
    Ok(M::Entity::insert_many(rows).into_query())
}

/// A column's value as `jsonb_populate_recordset` reads it back into the column's type.
pub(crate) fn json_of(value: Value) -> Result<serde_json::Value, DbErr> {
    use serde_json::Value as J;
    Ok(match value {
        Value::Bool(b) => b.map_or(J::Null, J::Bool),
        Value::SmallInt(n) => n.map_or(J::Null, J::from),
        Value::Int(n) => n.map_or(J::Null, J::from),
        Value::BigInt(n) => n.map_or(J::Null, J::from),
        Value::String(s) => s.map_or(J::Null, J::String),
        Value::Uuid(u) => u.map_or(J::Null, |u| J::String(u.to_string())),
        Value::ChronoDateTimeUtc(t) => t.map_or(J::Null, |t| {
            J::String(t.to_rfc3339_opts(SecondsFormat::Micros, true))
        }),
        other => return Err(DbErr::Custom(format!("no JSON form for {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};

    use super::*;

    fn insert(tag: &str) -> sea_orm::sea_query::InsertStatement {
        Query::insert()
            .into_table(Alias::new("t"))
            .columns([Alias::new("tag")])
            .values_panic([Expr::val(tag)])
            .to_owned()
    }

    #[test]
    fn later_parts_are_listed_first_as_ctes_after_the_main_statement() {
        let mut b = Batch::default();
        for tag in ["a", "b", "c"] {
            b.push(insert(tag));
        }
        let Statement { sql, values, .. } = b.postgres().expect("parts");
        let values = values.expect("values").0;
        assert!(sql.starts_with(r#"WITH "p2" AS (INSERT"#), "{sql}");
        assert!(sql.contains(r#", "p1" AS (INSERT"#), "{sql}");
        assert!(sql.contains(r#") INSERT INTO "t""#), "{sql}");
        let tags: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(tags.len(), 3);
        assert!(tags[0].contains("\"c\""), "{tags:?}");
        assert!(tags[2].contains("\"a\""), "{tags:?}");
        assert!(Batch::default().postgres().is_none());
        let mut one = Batch::default();
        one.push(insert("a"));
        let one = one.postgres().expect("a part").sql;
        assert!(one.starts_with("INSERT INTO"), "{one}");
    }

    #[test]
    fn on_sqlite_the_parts_are_one_text_with_their_values_in_order() {
        let mut b = Batch::default();
        b.push(insert("a"));
        b.push(
            Query::update()
                .table(Alias::new("u"))
                .value(Alias::new("n"), Expr::val(7))
                .and_where(Expr::col(Alias::new("tag")).eq("b"))
                .to_owned(),
        );
        b.push(insert("c"));
        let Statement { sql, values, .. } = b.sqlite().expect("parts");
        let values = values.expect("values").0;
        let statements: Vec<&str> = sql.split(";\n").collect();
        assert_eq!(statements.len(), 3, "{sql}");
        assert!(statements[0].starts_with(r#"INSERT INTO "t""#), "{sql}");
        assert!(statements[1].starts_with(r#"UPDATE "u""#), "{sql}");
        assert_eq!(sql.matches('?').count(), values.len(), "{sql}");
        let shown: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert!(shown[0].contains("\"a\""), "{shown:?}");
        assert!(shown[1].contains('7'), "{shown:?}");
        assert!(shown[2].contains("\"b\""), "{shown:?}");
        assert!(shown[3].contains("\"c\""), "{shown:?}");
        assert!(Batch::default().sqlite().is_none());
    }
}
