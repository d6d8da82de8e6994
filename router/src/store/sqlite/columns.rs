//! Reading typed values out of rows: text columns parsed into domain types, a value that
//! does not parse reported as a conversion error.

use rusqlite::Row;

/// Column `index` read as text and parsed into its domain type; a value that does not
/// parse is a conversion error, as a wrong SQL type would be.
pub(super) fn parsed<T, E: std::fmt::Display>(
    row: &Row<'_>,
    index: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("`{text}`: {e}").into(),
        )
    })
}

/// As [`parsed`], for a column that may be NULL.
pub(super) fn parsed_opt<T, E: std::fmt::Display>(
    row: &Row<'_>,
    index: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<Option<T>> {
    match row.get_ref(index)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => parsed(row, index, parse).map(Some),
    }
}

pub(super) fn known<T>(value: Option<T>) -> Result<T, &'static str> {
    value.ok_or("not a known value")
}
