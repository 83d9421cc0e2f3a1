//! Reading rows into domain values. A row that does not parse is corruption, reported as
//! such rather than papered over.

use caja_core::time::{self, Timestamp};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::StoreError;

pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String, StoreError> {
    Ok(row.try_get::<String, _>(col)?)
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(crate) fn timestamp(row: &AnyRow, col: &'static str) -> Result<Timestamp, StoreError> {
    Ok(time::parse(col, &text(row, col)?)?)
}

pub(crate) fn opt_timestamp(
    row: &AnyRow,
    col: &'static str,
) -> Result<Option<Timestamp>, StoreError> {
    opt_text(row, col)?
        .map(|s| time::parse(col, &s).map_err(StoreError::from))
        .transpose()
}
