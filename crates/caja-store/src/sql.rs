//! The writer's SQL, once, over either driver.
//!
//! Every statement a write batch runs (and the readers it shares with the read path) is
//! written against [`Sql`]: run a [`Query`] and get rows back by column name, or the
//! number of rows it changed. sqlx's `Any` driver implements it for PostgreSQL and for
//! every SQLite connection but one; the SQLite writer's own connection implements it
//! directly ([`crate::direct`]), on the writer's thread, with no hop to a driver thread
//! per statement.

use std::borrow::Cow;
use std::future::Future;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Arguments, Row, Transaction};

use crate::StoreError;

/// One bound value. A null keeps the type its column has, since PostgreSQL types the
/// parameters of a `VALUES` list from what is bound to them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'q> {
    Int(i64),
    Text(Cow<'q, str>),
    NullInt,
    NullText,
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::NullInt, Value::Int)
    }
}

impl<'q> From<&'q str> for Value<'q> {
    fn from(v: &'q str) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}

impl<'q> From<&'q String> for Value<'q> {
    fn from(v: &'q String) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Cow::Owned(v))
    }
}

impl<'q> From<Option<&'q str>> for Value<'q> {
    fn from(v: Option<&'q str>) -> Self {
        v.map_or(Value::NullText, |s| Value::Text(Cow::Borrowed(s)))
    }
}

impl From<Option<String>> for Value<'_> {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::NullText, |s| Value::Text(Cow::Owned(s)))
    }
}

/// A statement and its values, bound in order.
#[derive(Debug)]
pub(crate) struct Query<'q> {
    pub(crate) sql: &'q str,
    pub(crate) args: Vec<Value<'q>>,
}

/// A statement to bind values to, as `sqlx::query` starts one.
pub(crate) fn query(sql: &str) -> Query<'_> {
    sized(sql, 0)
}

/// The same, with room for `values` values: a multi-row statement binds a thousand, and
/// growing to that by doubling copied them all several times over.
pub(crate) fn sized(sql: &str, values: usize) -> Query<'_> {
    Query {
        sql,
        args: Vec::with_capacity(values),
    }
}

impl<'q> Query<'q> {
    pub(crate) fn bind(mut self, value: impl Into<Value<'q>>) -> Self {
        self.args.push(value.into());
        self
    }

    pub(crate) async fn fetch_all<S: Sql + ?Sized>(
        self,
        db: &mut S,
    ) -> Result<Vec<S::Row>, StoreError> {
        db.fetch_all(self).await
    }

    /// The first row; [`StoreError::NotFound`] when there is none.
    pub(crate) async fn fetch_one<S: Sql + ?Sized>(self, db: &mut S) -> Result<S::Row, StoreError> {
        db.fetch_all(self)
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    /// How many rows the statement inserted, updated or deleted.
    pub(crate) async fn execute<S: Sql + ?Sized>(self, db: &mut S) -> Result<u64, StoreError> {
        db.execute(self).await
    }

    /// The same statement for sqlx, its values moved into arguments sized once.
    fn into_sqlx(self) -> Result<sqlx::query::Query<'q, Any, AnyArguments<'q>>, StoreError> {
        let mut args = AnyArguments::default();
        args.reserve(self.args.len(), 0);
        for value in self.args {
            match value {
                Value::Int(v) => args.add(v),
                Value::Text(Cow::Borrowed(v)) => args.add(v),
                Value::Text(Cow::Owned(v)) => args.add(v),
                Value::NullInt => args.add(None::<i64>),
                Value::NullText => args.add(None::<String>),
            }
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
        }
        Ok(sqlx::query_with(self.sql, args))
    }
}

/// A row's values by column name. A value of another type than asked is an error, as a
/// row that does not parse.
pub(crate) trait Columns {
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
}

impl Columns for AnyRow {
    fn text(&self, col: &str) -> Result<String, StoreError> {
        Ok(self.try_get::<String, _>(col)?)
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get::<Option<String>, _>(col)?)
    }

    fn int(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get::<i64, _>(col)?)
    }

    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get::<Option<i64>, _>(col)?)
    }
}

/// Somewhere to run statements: a connection, a transaction or a pool.
pub(crate) trait Sql: Send {
    type Row: Columns + Send;

    /// Every row the statement returns.
    fn fetch_all(
        &mut self,
        query: Query<'_>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;

    /// How many rows the statement changed.
    fn execute(&mut self, query: Query<'_>)
        -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Whether each statement is a round trip to a server or a thread (sqlx), so that
    /// fewer, wider statements pay; not when SQLite runs in the caller's thread.
    fn round_trips(&self) -> bool {
        true
    }
}

/// A write transaction: what it wrote becomes visible, durably, at [`WriteTx::commit`],
/// and is gone at [`WriteTx::rollback`] or when dropped unfinished.
pub(crate) trait WriteTx: Sql + Sized {
    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn rollback(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl Sql for AnyConnection {
    type Row = AnyRow;

    async fn fetch_all(&mut self, query: Query<'_>) -> Result<Vec<AnyRow>, StoreError> {
        Ok(query.into_sqlx()?.fetch_all(self).await?)
    }

    async fn execute(&mut self, query: Query<'_>) -> Result<u64, StoreError> {
        Ok(query.into_sqlx()?.execute(self).await?.rows_affected())
    }
}

impl Sql for Transaction<'_, Any> {
    type Row = AnyRow;

    async fn fetch_all(&mut self, query: Query<'_>) -> Result<Vec<AnyRow>, StoreError> {
        Ok(query.into_sqlx()?.fetch_all(&mut **self).await?)
    }

    async fn execute(&mut self, query: Query<'_>) -> Result<u64, StoreError> {
        Ok(query
            .into_sqlx()?
            .execute(&mut **self)
            .await?
            .rows_affected())
    }
}

impl WriteTx for Transaction<'_, Any> {
    async fn commit(self) -> Result<(), StoreError> {
        Ok(Transaction::commit(self).await?)
    }

    async fn rollback(self) -> Result<(), StoreError> {
        Ok(Transaction::rollback(self).await?)
    }
}

impl Sql for &AnyPool {
    type Row = AnyRow;

    async fn fetch_all(&mut self, query: Query<'_>) -> Result<Vec<AnyRow>, StoreError> {
        Ok(query.into_sqlx()?.fetch_all(*self).await?)
    }

    async fn execute(&mut self, query: Query<'_>) -> Result<u64, StoreError> {
        Ok(query.into_sqlx()?.execute(*self).await?.rows_affected())
    }
}
