//! Rows to JSON, by column type.

use postgres::types::Type;
use postgres::Row;
use serde_json::{Map, Value};

/// The row as a JSON object keyed by column name. Integers, floats, booleans
/// and text map to JSON; `text[]` to an array of strings; NULL to `null`.
/// The queries cast every other type (timestamps, addresses) to one of
/// these in SQL.
pub(crate) fn row_object(row: &Row) -> Map<String, Value> {
    let mut out = Map::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        out.insert(col.name().to_owned(), cell(row, i, col.type_()));
    }
    out
}

fn cell(row: &Row, i: usize, ty: &Type) -> Value {
    fn get<'a, T: postgres::types::FromSql<'a> + Into<Value>>(row: &'a Row, i: usize) -> Value {
        match row.try_get::<_, Option<T>>(i) {
            Ok(Some(v)) => v.into(),
            _ => Value::Null,
        }
    }
    match *ty {
        Type::INT2 => get::<i16>(row, i),
        Type::INT4 => get::<i32>(row, i),
        Type::INT8 => get::<i64>(row, i),
        Type::BOOL => get::<bool>(row, i),
        Type::FLOAT8 => match row.try_get::<_, Option<f64>>(i) {
            Ok(Some(v)) if v.is_finite() => v.into(),
            _ => Value::Null,
        },
        Type::TEXT_ARRAY => get::<Vec<String>>(row, i),
        _ => get::<String>(row, i),
    }
}
