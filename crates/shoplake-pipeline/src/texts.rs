//! A text column as a scan delivers it, read in place: DataFusion reads Parquet strings as
//! views, and casting them to plain strings would copy every string of the batch.

use shoplake_lake::arrow::array::{Array, AsArray, RecordBatch, StringArray, StringViewArray};
use shoplake_lake::arrow::datatypes::DataType;

use crate::error::{PipelineError, Result};

/// A text column of a batch, plain or views.
pub(crate) enum Texts<'a> {
    Utf8(&'a StringArray),
    View(&'a StringViewArray),
}

impl<'a> Texts<'a> {
    /// Column `name` of a batch of `table` (named in the error when the column is missing or
    /// not text).
    pub(crate) fn of(batch: &'a RecordBatch, table: &str, name: &str) -> Result<Self> {
        let array = batch.column_by_name(name).ok_or_else(|| {
            PipelineError::Contract(format!("{table} rows have no column {name}"))
        })?;
        match array.data_type() {
            DataType::Utf8 => Ok(Texts::Utf8(array.as_string::<i32>())),
            DataType::Utf8View => Ok(Texts::View(array.as_string_view())),
            other => Err(PipelineError::Contract(format!(
                "{table}.{name} is {other}, not text"
            ))),
        }
    }

    pub(crate) fn null_count(&self) -> usize {
        match self {
            Texts::Utf8(a) => a.null_count(),
            Texts::View(a) => a.null_count(),
        }
    }

    pub(crate) fn is_null(&self, i: usize) -> bool {
        match self {
            Texts::Utf8(a) => a.is_null(i),
            Texts::View(a) => a.is_null(i),
        }
    }

    /// Row `i`'s text (whatever a null row holds, "" in practice).
    pub(crate) fn value(&self, i: usize) -> &'a str {
        match self {
            Texts::Utf8(a) => a.value(i),
            Texts::View(a) => a.value(i),
        }
    }

    /// Row `i`'s text, "" when null.
    pub(crate) fn get(&self, i: usize) -> &'a str {
        if self.is_null(i) { "" } else { self.value(i) }
    }
}
