//! `csatwatch migrate-data`: copies every table from one database to another
//! (SQLite to PostgreSQL when a team outgrows one instance, or back),
//! keeping ids, so nothing is lost and alerts already sent stay sent.
//!
//! The copy reads the target's own column list and types, so it follows
//! the schema as migrations grow it without a change here: both dialects
//! keep the same table and column names by design.

use sqlx::Row as _;

use super::{Store, StoreError, StoreResult, on_pool};

/// Tables in an order that satisfies their foreign keys; tables added by
/// later migrations that are not listed are copied after these.
const ORDERED: &[&str] = &["deliveries", "ratings", "rating_history", "alerts"];
const BATCH: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Text,
    Bytes,
    Bool,
}

#[derive(Debug, Clone)]
enum Value {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
}

/// Rows copied per table, in copy order.
pub type CopyReport = Vec<(String, u64)>;

impl Store {
    /// Copies everything in `self` into `target`, which must be migrated and
    /// empty. `progress` is told each table's running count.
    pub async fn copy_into(
        &self,
        target: &Store,
        mut progress: impl FnMut(&str, u64),
    ) -> anyhow::Result<CopyReport> {
        let tables = target.tables().await?;
        for table in ["deliveries", "ratings"] {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let n: i64 = on_pool!(target, |pool| {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(pool)
                    .await
                    .map_err(StoreError::from)?
            });
            if n > 0 {
                anyhow::bail!(
                    "the target database already holds {n} row(s) in {table}; migrate-data only fills a new, empty database"
                );
            }
        }
        let mut order: Vec<String> = ORDERED.iter().map(|t| t.to_string()).collect();
        order.extend(
            tables
                .iter()
                .filter(|t| !ORDERED.contains(&t.as_str()))
                .cloned(),
        );
        let mut report = Vec::new();
        for table in order {
            if !tables.contains(&table) {
                continue;
            }
            let columns = target.columns(&table).await?;
            let copied = self
                .copy_table(target, &table, &columns, &mut progress)
                .await?;
            report.push((table, copied));
        }
        target.reset_identities(&report).await?;
        Ok(report)
    }

    async fn copy_table(
        &self,
        target: &Store,
        table: &str,
        columns: &[(String, Kind)],
        progress: &mut impl FnMut(&str, u64),
    ) -> StoreResult<u64> {
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        // Tables keyed by id are read in pages; the few small tables with
        // another key (cursors, leases) are read whole.
        let paged = names.contains(&"id");
        let select = if paged {
            format!(
                "SELECT {} FROM {table} WHERE id > $1 ORDER BY id LIMIT {BATCH}",
                names.join(", ")
            )
        } else {
            format!("SELECT {} FROM {table} WHERE $1 = $1", names.join(", "))
        };
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        );
        let id_at = names.iter().position(|n| *n == "id").unwrap_or(0);
        let (mut last_id, mut copied) = (i64::MIN, 0u64);
        loop {
            let rows: Vec<Vec<Value>> = on_pool!(self, |pool| {
                let raw = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                    .bind(last_id)
                    .fetch_all(pool)
                    .await?;
                let mut rows = Vec::with_capacity(raw.len());
                for row in &raw {
                    let mut values = Vec::with_capacity(columns.len());
                    for (i, (_, kind)) in columns.iter().enumerate() {
                        values.push(match kind {
                            Kind::Int => Value::Int(row.try_get(i)?),
                            Kind::Float => Value::Float(row.try_get(i)?),
                            Kind::Text => Value::Text(row.try_get(i)?),
                            Kind::Bytes => Value::Bytes(row.try_get(i)?),
                            Kind::Bool => Value::Bool(row.try_get(i)?),
                        });
                    }
                    rows.push(values);
                }
                rows
            });
            if rows.is_empty() {
                break;
            }
            if let Some(Value::Int(Some(id))) = rows.last().and_then(|r| r.get(id_at)) {
                last_id = *id;
            }
            let mut tx = target.begin().await?;
            for row in &rows {
                super::on_tx!(tx, |conn| {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
                    for value in row {
                        q = match value {
                            Value::Int(v) => q.bind(*v),
                            Value::Float(v) => q.bind(*v),
                            Value::Text(v) => q.bind(v.clone()),
                            Value::Bytes(v) => q.bind(v.clone()),
                            Value::Bool(v) => q.bind(*v),
                        };
                    }
                    q.execute(&mut *conn).await?.rows_affected()
                });
            }
            tx.commit().await?;
            copied += rows.len() as u64;
            progress(table, copied);
            if !paged {
                break;
            }
        }
        Ok(copied)
    }

    /// The application's tables (not sqlx's own).
    async fn tables(&self) -> StoreResult<Vec<String>> {
        let sql = self.dialect().list_tables();
        let names: Vec<String> = on_pool!(self, |pool| {
            sqlx::query_scalar(sql).fetch_all(pool).await?
        });
        Ok(names)
    }

    /// A table's columns and how to carry their values.
    async fn columns(&self, table: &str) -> StoreResult<Vec<(String, Kind)>> {
        let sql = self.dialect().list_columns();
        let raw: Vec<(String, String)> = on_pool!(self, |pool| {
            sqlx::query_as(sql).bind(table).fetch_all(pool).await?
        });
        Ok(raw
            .into_iter()
            .map(|(name, ty)| {
                let ty = ty.to_ascii_lowercase();
                let kind = if ty.contains("int") {
                    Kind::Int
                } else if ty.contains("real")
                    || ty.contains("double")
                    || ty.contains("float")
                    || ty.contains("numeric")
                {
                    Kind::Float
                } else if ty.contains("blob") || ty.contains("bytea") {
                    Kind::Bytes
                } else if ty.contains("bool") {
                    Kind::Bool
                } else {
                    Kind::Text
                };
                (name, kind)
            })
            .collect())
    }

    /// After explicit ids were inserted, moves the id generators past them.
    async fn reset_identities(&self, report: &CopyReport) -> StoreResult<()> {
        for (table, _) in report {
            let Some(sql) = self.dialect().reset_identity(table) else {
                continue;
            };
            if !self
                .columns(table)
                .await?
                .iter()
                .any(|(name, _)| name == "id")
            {
                continue;
            }
            on_pool!(self, |pool| {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(())
    }
}
