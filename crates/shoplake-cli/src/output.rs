//! Printing query results as a table, CSV or JSON lines.

use std::io::Write;

use anyhow::Result;
use shoplake_lake::arrow::array::RecordBatch;
use shoplake_lake::arrow::csv::WriterBuilder;
use shoplake_lake::arrow::datatypes::Schema;
use shoplake_lake::arrow::json::WriterBuilder as JsonWriterBuilder;
use shoplake_lake::arrow::json::writer::LineDelimited;
use shoplake_lake::arrow::util::pretty::pretty_format_batches_with_schema;

use crate::cli::OutputFormat;

/// Writes `batches` to `out` in `format`.
pub fn write_batches(
    out: &mut dyn Write,
    schema: &Schema,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<()> {
    match format {
        OutputFormat::Table => {
            // With the schema, an empty result still shows its column names.
            let schema = std::sync::Arc::new(schema.clone());
            writeln!(
                out,
                "{}",
                pretty_format_batches_with_schema(schema, batches)?
            )?;
        }
        OutputFormat::Csv => {
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            if rows == 0 {
                // The CSV writer only writes a header with a first batch; an empty result
                // still gets its header line.
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(out, "{}", names.join(","))?;
            } else {
                let mut writer = WriterBuilder::new().with_header(true).build(&mut *out);
                for b in batches.iter().filter(|b| b.num_rows() > 0) {
                    writer.write(b)?;
                }
            }
        }
        OutputFormat::Json => {
            // Nulls are written as `null` rather than dropped: a reader sees every column.
            let mut writer = JsonWriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut *out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
    }
    Ok(())
}

/// Runs a read-only query and prints its rows as a table under `title`; prints nothing when
/// the result is empty and `skip_empty` is set. Returns the number of rows.
pub async fn print_query(
    catalog: &shoplake_sql::SqlCatalog,
    title: &str,
    sql: &str,
    skip_empty: bool,
) -> Result<usize> {
    let df = catalog.sql(sql).await?;
    let schema = df.schema().inner().clone();
    let batches = df.collect().await?;
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    if rows > 0 || !skip_empty {
        println!("\n{title}:");
        write_batches(
            &mut std::io::stdout().lock(),
            &schema,
            &batches,
            OutputFormat::Table,
        )?;
    }
    Ok(rows)
}

/// `12345678` as `12,345,678`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(5000), "5,000");
        assert_eq!(super::thousands(12_345_678), "12,345,678");
    }
}
