//! A report's table: its rows as the engine answered them, rendered as text, CSV or JSON
//! (the JSON that `shoplake report --format json` prints and the API answers).

use std::fmt::Write as _;

use serde_json::{Map, Value};
use shoplake_lake::arrow::array::{Array, RecordBatch};
use shoplake_lake::arrow::datatypes::{DataType, SchemaRef};
use shoplake_lake::arrow::util::display::{ArrayFormatter, FormatOptions};

/// One table of a report.
#[derive(Debug, Clone)]
pub struct Table {
    /// Short name (a JSON key: `per_day`, `top_viewed`).
    pub name: String,
    /// What it shows.
    pub title: String,
    /// Its columns.
    pub schema: SchemaRef,
    /// Its rows.
    pub batches: Vec<RecordBatch>,
}

impl Table {
    /// A table of these rows.
    pub fn new(name: &str, title: &str, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Table {
            name: name.to_string(),
            title: title.to_string(),
            schema,
            batches,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Column names.
    pub fn columns(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// Every cell as text (empty for null), row by row.
    pub fn cells(&self) -> Vec<Vec<String>> {
        self.cells_with(&FormatOptions::default().with_null(""))
    }

    fn cells_with(&self, options: &FormatOptions) -> Vec<Vec<String>> {
        let mut out = Vec::with_capacity(self.rows());
        for batch in &self.batches {
            let formatters: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), options))
                .collect::<Result<_, _>>()
                .expect("every column type of a report has a text form");
            for row in 0..batch.num_rows() {
                out.push(
                    formatters
                        .iter()
                        .map(|f| f.value(row).to_string())
                        .collect(),
                );
            }
        }
        out
    }

    /// `{"name", "title", "columns", "rows": [{column: value}]}`: numbers as JSON numbers,
    /// dates and text as strings, null as null.
    pub fn to_json(&self) -> Value {
        let columns = self.columns();
        let mut rows = Vec::with_capacity(self.rows());
        for batch in &self.batches {
            let formatters: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()))
                .collect::<Result<_, _>>()
                .expect("every column type of a report has a text form");
            for row in 0..batch.num_rows() {
                let mut object = Map::new();
                for (i, name) in columns.iter().enumerate() {
                    let column = batch.column(i);
                    let value = if column.is_null(row) {
                        Value::Null
                    } else {
                        let text = formatters[i].value(row).to_string();
                        json_value(column.data_type(), text)
                    };
                    object.insert(name.clone(), value);
                }
                rows.push(Value::Object(object));
            }
        }
        serde_json::json!({
            "name": self.name,
            "title": self.title,
            "columns": columns,
            "rows": rows,
        })
    }

    /// Aligned text: the title, a header, the rows (numbers right-aligned).
    pub fn to_text(&self) -> String {
        let columns = self.columns();
        let cells = self.cells();
        let numeric: Vec<bool> = self
            .schema
            .fields()
            .iter()
            .map(|f| is_number(f.data_type()))
            .collect();
        let mut width: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
        for row in &cells {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        let line = |out: &mut String, row: &[String]| {
            let parts: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    if numeric[i] {
                        format!("{cell:>w$}", w = width[i])
                    } else {
                        format!("{cell:<w$}", w = width[i])
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&mut out, &columns);
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "{}", rule.join("  "));
        for row in &cells {
            line(&mut out, row);
        }
        if cells.is_empty() {
            let _ = writeln!(out, "(no rows)");
        }
        out
    }

    /// CSV with a header (RFC 4180 quoting).
    pub fn to_csv(&self) -> String {
        let quote = |cell: &str| {
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell.to_string()
            }
        };
        let mut out = String::new();
        let header: Vec<String> = self.columns().iter().map(|c| quote(c)).collect();
        let _ = writeln!(out, "{}", header.join(","));
        for row in self.cells() {
            let row: Vec<String> = row.iter().map(|c| quote(c)).collect();
            let _ = writeln!(out, "{}", row.join(","));
        }
        out
    }
}

fn is_number(data_type: &DataType) -> bool {
    data_type.is_integer()
        || data_type.is_floating()
        || matches!(data_type, DataType::Decimal128(..))
}

/// A cell's JSON value from its text: numbers as numbers (a decimal's text is exact, and
/// reads back as the nearest double), the rest as strings.
fn json_value(data_type: &DataType, text: String) -> Value {
    if is_number(data_type) {
        match serde_json::from_str::<serde_json::Number>(&text) {
            Ok(n) => Value::Number(n),
            // NaN or infinity: not a JSON number.
            Err(_) => Value::Null,
        }
    } else if matches!(data_type, DataType::Boolean) {
        Value::Bool(text == "true")
    } else {
        Value::String(text)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shoplake_lake::arrow::array::{Decimal128Array, Float64Array, Int64Array, StringArray};
    use shoplake_lake::arrow::datatypes::{Field, Schema};

    use super::*;

    fn table() -> Table {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("revenue", DataType::Decimal128(18, 2), true),
            Field::new("rate", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("a,\"b\""), None])),
                Arc::new(Int64Array::from(vec![Some(12), Some(3)])),
                Arc::new(
                    Decimal128Array::from(vec![Some(127_999), None])
                        .with_precision_and_scale(18, 2)
                        .unwrap(),
                ),
                Arc::new(Float64Array::from(vec![Some(28.57), Some(f64::NAN)])),
            ],
        )
        .unwrap();
        Table::new("t", "A table", schema, vec![batch])
    }

    #[test]
    fn renders_the_same_rows_three_ways() {
        let t = table();
        assert_eq!(
            t.to_json(),
            serde_json::json!({
                "name": "t", "title": "A table",
                "columns": ["name", "n", "revenue", "rate"],
                "rows": [
                    {"name": "a,\"b\"", "n": 12, "revenue": 1279.99, "rate": 28.57},
                    {"name": null, "n": 3, "revenue": null, "rate": null},
                ]
            })
        );
        assert_eq!(
            t.to_csv(),
            "name,n,revenue,rate\n\"a,\"\"b\"\"\",12,1279.99,28.57\n,3,,NaN\n"
        );
        assert_eq!(
            t.to_text(),
            "A table\nname    n  revenue   rate\n-----  --  -------  -----\na,\"b\"  12  1279.99  28.57\n        3             NaN\n"
        );
    }
}
