//! Row decoding helpers shared by the query modules.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, StoreError};

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn time(row: &AnyRow, col: &str) -> Result<DateTime<Utc>> {
    let v: i64 = row.try_get(col)?;
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Corrupt(format!("{col} is not a timestamp")))
}

pub(crate) fn opt_time(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = row.try_get(col)?;
    Ok(v.and_then(DateTime::from_timestamp_millis))
}

pub(crate) fn parse<T: std::str::FromStr>(row: &AnyRow, col: &str) -> Result<T> {
    let v: String = row.try_get(col)?;
    v.parse()
        .map_err(|_| StoreError::Corrupt(format!("{col} holds {v:?}")))
}

pub(crate) fn json_map(
    row: &AnyRow,
    col: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let v: String = row.try_get(col)?;
    serde_json::from_str(&v).map_err(|_| StoreError::Corrupt(format!("{col} is not a JSON object")))
}

pub(crate) fn opt_json<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    col: &str,
) -> Result<Option<T>> {
    let v: Option<String> = row.try_get(col)?;
    v.map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("{col} does not hold what it should: {e}")))
}

/// Maps "no row updated" to the right error for an optimistic write.
pub(crate) fn expect_one(affected: u64, missing: StoreError) -> Result<()> {
    if affected == 1 { Ok(()) } else { Err(missing) }
}
