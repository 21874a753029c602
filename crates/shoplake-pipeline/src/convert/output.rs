//! The converted output: one Parquet file per worker and day, under `event_date=YYYY-MM-DD/`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shoplake_lake::arrow::array::{
    ArrayRef, Decimal128Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use shoplake_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use shoplake_lake::datafusion::parquet::arrow::ArrowWriter;
use shoplake_lake::datafusion::parquet::basic::{Compression, ZstdLevel};
use shoplake_lake::datafusion::parquet::file::properties::WriterProperties;
use shoplake_lake::time::{MICROS_PER_DAY, MICROS_PER_HOUR, days_to_date};

use super::ConvertError;
use crate::clean::rules::TypedEvent;
use crate::model::fact_user_events::iso_weekday;

/// Rows gathered before they are handed to the Parquet encoder.
const BATCH_ROWS: usize = 32 * 1024;

/// Columns of the converted files (the partition column `event_date` is in the path).
pub fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("product_id", DataType::Int64, false),
        Field::new("category_id", DataType::Int64, false),
        Field::new("category_code", DataType::Utf8, false),
        Field::new("brand", DataType::Utf8, false),
        Field::new("price", shoplake_lake::tables::price_type(), false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("user_session", DataType::Utf8, false),
        Field::new("hour_of_day", DataType::Int32, false),
        Field::new("day_of_week", DataType::Int32, false),
        // As in clean.events: what was repaired or lost of the row, null when nothing.
        Field::new("data_issue", DataType::Utf8, true),
    ]))
}

/// Parquet settings: zstd at `level`, row groups of up to 1 Mi rows.
pub(crate) fn writer_properties(level: i32) -> Result<WriterProperties, ConvertError> {
    let level = ZstdLevel::try_new(level)
        .map_err(|e| ConvertError::Usage(format!("bad zstd level {level}: {e}")))?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(1024 * 1024))
        .build())
}

/// The directory of a day's partition.
pub(crate) fn partition_dir(root: &Path, day: i32) -> PathBuf {
    root.join(format!(
        "event_date={}",
        days_to_date(day).format("%Y-%m-%d")
    ))
}

/// What one worker writes for one day.
pub(crate) struct DayOutput {
    day: i32,
    path: PathBuf,
    rows: Rows,
    writer: Option<ArrowWriter<BufWriter<File>>>,
    /// Rows handed to the writer.
    pub written: u64,
    /// Rows of this day dropped as duplicates by this worker.
    pub duplicates: u64,
}

impl DayOutput {
    pub(crate) fn new(root: &Path, worker: usize, day: i32) -> Self {
        DayOutput {
            day,
            path: partition_dir(root, day).join(format!("part-{worker:03}.parquet")),
            rows: Rows::new(),
            writer: None,
            written: 0,
            duplicates: 0,
        }
    }

    /// Adds a row; encodes a batch when enough rows are gathered.
    pub(crate) fn push(
        &mut self,
        e: &TypedEvent<'_>,
        issue: Option<&str>,
        props: &WriterProperties,
    ) -> Result<(), ConvertError> {
        self.rows.push(e, issue, self.day);
        if self.rows.len == BATCH_ROWS {
            self.encode(props)?;
        }
        Ok(())
    }

    /// Bytes held by the writer for the row group in progress.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.in_progress_size())
    }

    /// Writes the row group in progress to the file, freeing its memory.
    pub(crate) fn flush_row_group(&mut self) -> Result<(), ConvertError> {
        if let Some(w) = self.writer.as_mut() {
            w.flush().map_err(|e| ConvertError::write(&self.path, e))?;
        }
        Ok(())
    }

    fn encode(&mut self, props: &WriterProperties) -> Result<(), ConvertError> {
        if self.rows.len == 0 {
            return Ok(());
        }
        let batch = self.rows.finish()?;
        if self.writer.is_none() {
            let dir = self.path.parent().expect("partition file has a directory");
            std::fs::create_dir_all(dir).map_err(|e| ConvertError::write(dir, e))?;
            let file = File::create(&self.path).map_err(|e| ConvertError::write(&self.path, e))?;
            let writer = ArrowWriter::try_new(
                BufWriter::with_capacity(1 << 20, file),
                output_schema(),
                Some(props.clone()),
            )
            .map_err(|e| ConvertError::write(&self.path, e))?;
            self.writer = Some(writer);
        }
        let writer = self.writer.as_mut().expect("writer was just created");
        writer
            .write(&batch)
            .map_err(|e| ConvertError::write(&self.path, e))?;
        self.written += batch.num_rows() as u64;
        Ok(())
    }

    /// Writes what is left and closes the file; returns the rows the file's footer holds.
    pub(crate) fn finish(mut self, props: &WriterProperties) -> Result<FinishedDay, ConvertError> {
        self.encode(props)?;
        let rows_in_file = match self.writer.take() {
            Some(w) => w
                .close()
                .map_err(|e| ConvertError::write(&self.path, e))?
                .file_metadata()
                .num_rows() as u64,
            None => 0,
        };
        Ok(FinishedDay {
            day: self.day,
            written: self.written,
            rows_in_file,
            duplicates: self.duplicates,
        })
    }
}

/// Counts of a closed day output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinishedDay {
    pub day: i32,
    pub written: u64,
    pub rows_in_file: u64,
    pub duplicates: u64,
}

/// Column builders for one batch.
struct Rows {
    len: usize,
    event_time: TimestampMicrosecondBuilder,
    event_type: StringBuilder,
    product_id: Int64Builder,
    category_id: Int64Builder,
    category_code: StringBuilder,
    brand: StringBuilder,
    price: Decimal128Builder,
    user_id: Int64Builder,
    user_session: StringBuilder,
    hour_of_day: Int32Builder,
    day_of_week: Int32Builder,
    data_issue: StringBuilder,
}

impl Rows {
    fn new() -> Self {
        let n = BATCH_ROWS;
        Rows {
            len: 0,
            event_time: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            event_type: StringBuilder::with_capacity(n, n * 5),
            product_id: Int64Builder::with_capacity(n),
            category_id: Int64Builder::with_capacity(n),
            category_code: StringBuilder::with_capacity(n, n * 20),
            brand: StringBuilder::with_capacity(n, n * 8),
            price: Decimal128Builder::with_capacity(n)
                .with_data_type(shoplake_lake::tables::price_type()),
            user_id: Int64Builder::with_capacity(n),
            user_session: StringBuilder::with_capacity(n, n * 36),
            hour_of_day: Int32Builder::with_capacity(n),
            day_of_week: Int32Builder::with_capacity(n),
            data_issue: StringBuilder::new(),
        }
    }

    fn push(&mut self, e: &TypedEvent<'_>, issue: Option<&str>, day: i32) {
        self.data_issue.append_option(issue);
        let micros_of_day = e.event_time_micros - i64::from(day) * MICROS_PER_DAY;
        self.event_time.append_value(e.event_time_micros);
        self.event_type.append_value(e.event_type);
        self.product_id.append_value(e.product_id);
        self.category_id.append_value(e.category_id);
        self.category_code.append_value(e.category_code);
        self.brand.append_value(e.brand);
        self.price.append_value(e.price_cents);
        self.user_id.append_value(e.user_id);
        self.user_session.append_value(e.user_session);
        self.hour_of_day
            .append_value((micros_of_day / MICROS_PER_HOUR) as i32);
        self.day_of_week.append_value(iso_weekday(day));
        self.len += 1;
    }

    fn finish(&mut self) -> Result<RecordBatch, ConvertError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_time.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.product_id.finish()),
            Arc::new(self.category_id.finish()),
            Arc::new(self.category_code.finish()),
            Arc::new(self.brand.finish()),
            Arc::new(self.price.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.user_session.finish()),
            Arc::new(self.hour_of_day.finish()),
            Arc::new(self.day_of_week.finish()),
            Arc::new(self.data_issue.finish()),
        ];
        self.len = 0;
        RecordBatch::try_new(output_schema(), columns).map_err(ConvertError::Arrow)
    }
}
