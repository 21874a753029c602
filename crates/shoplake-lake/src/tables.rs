//! The declaration of every lake table: layer, name, partitioning, grain and columns.
//!
//! This is the single source of truth for table layouts. Writers build their batches
//! against [`TableDef::arrow_schema`], the SQL catalog registers tables by
//! [`TableDef::qualified_name`], and `shoplake docs` renders the data dictionary from the
//! descriptions below, so a column is described exactly once.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The nine columns of the store's event export, in order.
pub const SOURCE_COLUMNS: [&str; 9] = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
];

/// The export's header line: [`SOURCE_COLUMNS`] joined by commas (a test holds them equal).
pub const EXPORT_HEADER: &str =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";

/// The reason codes of `clean.rejects` (the pipeline's rules give each row its first failing
/// rule's code).
pub const REJECT_REASONS: [&str; 9] = [
    "malformed_row",
    "bad_timestamp",
    "unknown_event_type",
    "bad_product_id",
    "bad_category_id",
    "bad_user_id",
    "bad_price",
    "null_session",
    "non_positive_price",
];

/// The category id of a row whose id was lost (a spreadsheet's scientific notation that no
/// single known category matches): the unknown member of `model.dim_categories`.
pub const UNKNOWN_CATEGORY_ID: i64 = -1;

/// What `clean.events.data_issue` says of a row whose category id was repaired.
pub const CATEGORY_ID_REPAIRED: &str = "category_id_repaired";

/// What `clean.events.data_issue` says of a row whose category id is unknown.
pub const CATEGORY_ID_UNKNOWN: &str = "category_id_unknown";

/// The event types of the export, in funnel order.
pub const EVENT_TYPES: [&str; 4] = ["view", "cart", "remove_from_cart", "purchase"];

/// Name of the partition column shared by all event tables.
pub const EVENT_DATE: &str = "event_date";

/// One column of a lake table.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// Column name.
    pub name: &'static str,
    /// Arrow type as stored.
    pub data_type: DataType,
    /// Whether the column may be null.
    pub nullable: bool,
    /// What the column means.
    pub description: &'static str,
    /// Where its value comes from.
    pub source: &'static str,
}

/// One lake table.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Layer: `raw`, `clean`, `model` or `meta`.
    pub layer: &'static str,
    /// Table name inside the layer.
    pub name: &'static str,
    /// Partition column, if any.
    pub partition_by: Option<&'static str>,
    /// A column a day partition's rows arrive sorted by, written one file per value, so that
    /// every file's (and row group's) statistics show one value of it: counts by that column
    /// come from file footers (see `shoplake-sql`'s `stats_counts`) and a filter on it skips whole files.
    pub file_per_value_of: Option<&'static str>,
    /// What one row is.
    pub grain: &'static str,
    /// What the table is for.
    pub description: &'static str,
    /// Columns in storage order.
    pub columns: Vec<ColumnDef>,
}

impl TableDef {
    /// `layer.name`, as used in SQL.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.layer, self.name)
    }

    /// Path of the table below the lake root.
    pub fn relative_path(&self) -> String {
        format!("{}/{}", self.layer, self.name)
    }

    /// Arrow schema of the table, in storage order.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// Names of the columns in storage order.
    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }
}

pub(crate) fn col(
    name: &'static str,
    data_type: DataType,
    nullable: bool,
    description: &'static str,
    source: &'static str,
) -> ColumnDef {
    ColumnDef {
        name,
        data_type,
        nullable,
        description,
        source,
    }
}

/// Timestamp type of every instant in the lake: microseconds, UTC.
pub fn timestamp_utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Type of a price: exact cents.
pub fn price_type() -> DataType {
    DataType::Decimal128(10, 2)
}

/// Type of a sum of prices (revenue).
pub fn money_type() -> DataType {
    DataType::Decimal128(18, 2)
}

fn event_date_col(source: &'static str) -> ColumnDef {
    col(
        EVENT_DATE,
        DataType::Date32,
        false,
        "UTC calendar day of the event; the partition column.",
        source,
    )
}

/// The nine source columns, kept as delivered text.
fn raw_source_columns() -> Vec<ColumnDef> {
    let s = |name, description| {
        col(
            name,
            DataType::Utf8,
            true,
            description,
            "source file, as delivered",
        )
    };
    vec![
        s(
            "event_time",
            "Event instant as text, `YYYY-MM-DD HH:MM:SS UTC`. Null only on a malformed line.",
        ),
        s(
            "event_type",
            "view, cart, remove_from_cart or purchase, as text.",
        ),
        s("product_id", "Product identifier, as text."),
        s(
            "category_id",
            "Category identifier (a 19-digit integer), as text.",
        ),
        s(
            "category_code",
            "Dotted category path (`appliances.kitchen.washer`), often empty.",
        ),
        s("brand", "Brand name, often empty."),
        s("price", "Price with two decimals, as text."),
        s("user_id", "User identifier, as text."),
        s("user_session", "Session UUID, empty in a few rows."),
    ]
}

fn lineage_columns() -> Vec<ColumnDef> {
    vec![
        col(
            "_line",
            DataType::Int64,
            false,
            "Line number in the source file (the header is line 1).",
            "ingest",
        ),
        col(
            "_error",
            DataType::Utf8,
            true,
            "Why the line could not be split into the nine fields (`wrong_field_count`, `invalid_utf8`, `line_too_long` for a line over 1 MiB); null for a well-formed line.",
            "ingest",
        ),
        col(
            "_raw_line",
            DataType::Utf8,
            true,
            "The original line text (invalid UTF-8 replaced) when `_error` is set; null otherwise.",
            "ingest",
        ),
        col(
            "_source",
            DataType::Utf8,
            false,
            "File name the row was read from.",
            "ingest",
        ),
        col(
            "_batch_id",
            DataType::Utf8,
            false,
            "Ingest batch: the content hash of the source file (xxh3-128, hex).",
            "ingest",
        ),
        col(
            "_ingested_at",
            timestamp_utc(),
            false,
            "When the batch was ingested.",
            "ingest",
        ),
    ]
}

/// `raw.events`: events as delivered.
pub fn raw_events() -> TableDef {
    let mut columns = raw_source_columns();
    columns.extend(lineage_columns());
    columns.push(event_date_col(
        "date part of event_time; for a line without a valid date, the last valid date before it in the same file (lines before the first dated line take the first date after them; 1970-01-01 when the file has no date at all)",
    ));
    TableDef {
        layer: "raw",
        name: "events",
        partition_by: Some(EVENT_DATE),
        file_per_value_of: None,
        grain: "one line of a source file",
        description: "Every ingested line, kept as delivered (text), with its lineage. Append only; a file is ingested once (by content hash).",
        columns,
    }
}

/// `clean.events`: typed, deduplicated events.
pub fn clean_events() -> TableDef {
    TableDef {
        layer: "clean",
        name: "events",
        partition_by: Some(EVENT_DATE),
        file_per_value_of: Some("event_type"),
        grain: "one distinct valid event",
        description: "Typed events that passed every cleaning rule, exact duplicates removed. Each partition is rebuilt from the same raw partition; within a day, rows are ordered by event_type, then event_time and event_id, one file per event type.",
        columns: vec![
            col(
                "event_id",
                DataType::Int64,
                false,
                "Stable event identifier: xxh3-64 of the nine source fields, as a signed integer. Numbers are hashed in their canonical form (ids as integers, price with two decimals, a repaired category id as the id), so the same event printed differently by a spreadsheet (`33.2`, `33.20`) has one id; for an export written by the store the canonical form is the text as delivered.",
                "derived",
            ),
            col(
                "event_time",
                timestamp_utc(),
                false,
                "Event instant, UTC.",
                "raw event_time",
            ),
            col(
                "event_type",
                DataType::Utf8,
                false,
                "One of view, cart, remove_from_cart, purchase.",
                "raw event_type",
            ),
            col(
                "product_id",
                DataType::Int64,
                false,
                "Product identifier.",
                "raw product_id",
            ),
            col(
                "category_id",
                DataType::Int64,
                false,
                "Category identifier. An id a spreadsheet printed in scientific notation is repaired from the known categories when exactly one with the same category_code rounds to it, else it is -1, the unknown member of model.dim_categories (`data_issue` says which).",
                "raw category_id",
            ),
            col(
                "category_code",
                DataType::Utf8,
                false,
                "Dotted category path, `unknown` when the source had none.",
                "raw category_code",
            ),
            col(
                "brand",
                DataType::Utf8,
                false,
                "Brand, `unknown` when the source had none.",
                "raw brand",
            ),
            col(
                "price",
                price_type(),
                false,
                "Price in exact cents (always > 0).",
                "raw price",
            ),
            col(
                "user_id",
                DataType::Int64,
                false,
                "User identifier.",
                "raw user_id",
            ),
            col(
                "user_session",
                DataType::Utf8,
                false,
                "Session identifier (never empty).",
                "raw user_session",
            ),
            event_date_col("date of event_time"),
            col(
                "data_issue",
                DataType::Utf8,
                true,
                "What was repaired or lost of a kept row, null when nothing: `category_id_repaired` (a category id printed in scientific notation, matched to the one known category with the same code that rounds to it) or `category_id_unknown` (no single such category: category_id is -1).",
                "derived",
            ),
        ],
    }
}

/// `clean.rejects`: quarantined rows with a reason.
pub fn clean_rejects() -> TableDef {
    let mut columns = vec![
        col(
            "reason",
            DataType::Utf8,
            false,
            "Reason code: malformed_row, bad_timestamp, unknown_event_type, bad_product_id, bad_category_id, bad_user_id, bad_price, null_session, non_positive_price.",
            "cleaning rules",
        ),
        col(
            "detail",
            DataType::Utf8,
            false,
            "Human explanation with the offending value.",
            "cleaning rules",
        ),
    ];
    columns.extend(raw_source_columns());
    columns.extend(lineage_columns());
    columns.push(event_date_col("raw event_date"));
    TableDef {
        layer: "clean",
        name: "rejects",
        partition_by: Some(EVENT_DATE),
        file_per_value_of: None,
        grain: "one raw row that failed a cleaning rule",
        description: "Quarantine: every raw row that did not pass, with its original text and the first rule it failed. Raw rows = clean rows + duplicates removed + rejects, per day.",
        columns,
    }
}

/// `model.fact_user_events`: the star schema's fact table.
pub fn fact_user_events() -> TableDef {
    TableDef {
        layer: "model",
        name: "fact_user_events",
        partition_by: Some(EVENT_DATE),
        file_per_value_of: Some("event_type"),
        grain: "one clean event",
        description: "The fact table of the star schema: one row per clean event, with calendar attributes and denormalised product attributes. Within a day, rows are ordered by event_type, then event_time and event_id, one file per event type, so a query on one type (purchases, say) skips the other types' files, and counts by day and type come from the files' statistics.",
        columns: vec![
            col(
                "event_id",
                DataType::Int64,
                false,
                "Stable event identifier (see clean.events).",
                "clean.events",
            ),
            col(
                "event_time",
                timestamp_utc(),
                false,
                "Event instant, UTC.",
                "clean.events",
            ),
            event_date_col("clean.events"),
            col(
                "hour_of_day",
                DataType::Int32,
                false,
                "Hour of event_time, 0-23 (UTC).",
                "derived",
            ),
            col(
                "day_of_week",
                DataType::Int32,
                false,
                "ISO day of week, 1 = Monday ... 7 = Sunday.",
                "derived",
            ),
            col(
                "event_type",
                DataType::Utf8,
                false,
                "view, cart, remove_from_cart or purchase.",
                "clean.events",
            ),
            col(
                "user_id",
                DataType::Int64,
                false,
                "User; key of model.dim_users.",
                "clean.events",
            ),
            col(
                "session_id",
                DataType::Utf8,
                false,
                "Session; key of model.dim_sessions.",
                "clean.events user_session",
            ),
            col(
                "product_id",
                DataType::Int64,
                false,
                "Product; key of model.dim_products.",
                "clean.events",
            ),
            col(
                "category_id",
                DataType::Int64,
                false,
                "Category; key of model.dim_categories.",
                "clean.events",
            ),
            col(
                "category_code",
                DataType::Utf8,
                false,
                "Dotted category path or `unknown`.",
                "clean.events",
            ),
            col(
                "category_l1",
                DataType::Utf8,
                false,
                "First level of category_code (`electronics`), `unknown` when none.",
                "derived",
            ),
            col(
                "category_l2",
                DataType::Utf8,
                true,
                "Second level of category_code, null when absent.",
                "derived",
            ),
            col(
                "category_l3",
                DataType::Utf8,
                true,
                "Remaining levels of category_code (dotted), null when absent.",
                "derived",
            ),
            col(
                "brand",
                DataType::Utf8,
                false,
                "Brand or `unknown`.",
                "clean.events",
            ),
            col(
                "price",
                price_type(),
                false,
                "Price in exact cents.",
                "clean.events",
            ),
            col(
                "device_type",
                DataType::Utf8,
                false,
                "Device of the session; `unknown` when the source has none (file exports have none).",
                "source when available",
            ),
            col(
                "source_channel",
                DataType::Utf8,
                false,
                "Acquisition channel; `unknown` when the source has none (file exports have none).",
                "source when available",
            ),
        ],
    }
}

fn counts() -> Vec<ColumnDef> {
    vec![
        col(
            "events",
            DataType::Int64,
            false,
            "Number of events.",
            "count over model.fact_user_events",
        ),
        col(
            "views",
            DataType::Int64,
            false,
            "Number of view events.",
            "count over model.fact_user_events",
        ),
        col(
            "carts",
            DataType::Int64,
            false,
            "Number of cart events.",
            "count over model.fact_user_events",
        ),
        col(
            "removes",
            DataType::Int64,
            false,
            "Number of remove_from_cart events.",
            "count over model.fact_user_events",
        ),
        col(
            "purchases",
            DataType::Int64,
            false,
            "Number of purchase events.",
            "count over model.fact_user_events",
        ),
        col(
            "revenue",
            money_type(),
            false,
            "Sum of price over purchase events.",
            "sum over model.fact_user_events",
        ),
    ]
}

/// `model.dim_users`.
pub fn dim_users() -> TableDef {
    let mut columns = vec![
        col(
            "user_id",
            DataType::Int64,
            false,
            "User identifier (key).",
            "model.fact_user_events",
        ),
        col(
            "first_seen",
            timestamp_utc(),
            false,
            "First event of the user.",
            "min event_time",
        ),
        col(
            "last_seen",
            timestamp_utc(),
            false,
            "Last event of the user.",
            "max event_time",
        ),
        col(
            "active_days",
            DataType::Int64,
            false,
            "Distinct days with at least one event.",
            "count distinct event_date",
        ),
        col(
            "sessions",
            DataType::Int64,
            false,
            "Distinct sessions.",
            "count distinct session_id",
        ),
    ];
    columns.extend(counts());
    TableDef {
        layer: "model",
        name: "dim_users",
        partition_by: None,
        file_per_value_of: None,
        grain: "one user",
        description: "Users with their activity, rebuilt from the fact table on every run so it always agrees with it.",
        columns,
    }
}

/// `model.dim_products`.
pub fn dim_products() -> TableDef {
    let mut columns = vec![
        col(
            "product_id",
            DataType::Int64,
            false,
            "Product identifier (key).",
            "model.fact_user_events",
        ),
        col(
            "category_id",
            DataType::Int64,
            false,
            "Category of the product's latest event whose category id is known (-1 when none is: ids lost in a spreadsheet).",
            "latest event with a known category",
        ),
        col(
            "category_code",
            DataType::Utf8,
            false,
            "Category path of the product's latest event whose category id is known (of the latest event when none is).",
            "latest event with a known category",
        ),
        col(
            "brand",
            DataType::Utf8,
            false,
            "Brand of the product's latest event.",
            "latest event",
        ),
        col(
            "last_price",
            price_type(),
            false,
            "Price of the product's latest event.",
            "latest event",
        ),
        col(
            "min_price",
            price_type(),
            false,
            "Lowest price seen.",
            "min price",
        ),
        col(
            "max_price",
            price_type(),
            false,
            "Highest price seen.",
            "max price",
        ),
        col(
            "first_seen",
            timestamp_utc(),
            false,
            "First event of the product.",
            "min event_time",
        ),
        col(
            "last_seen",
            timestamp_utc(),
            false,
            "Last event of the product.",
            "max event_time",
        ),
    ];
    columns.extend(counts());
    TableDef {
        layer: "model",
        name: "dim_products",
        partition_by: None,
        file_per_value_of: None,
        grain: "one product",
        description: "Products with their latest attributes and activity, rebuilt from the fact table on every run.",
        columns,
    }
}

/// `model.dim_categories`.
pub fn dim_categories() -> TableDef {
    let mut columns = vec![
        col(
            "category_id",
            DataType::Int64,
            false,
            "Category identifier (key); -1 is the unknown member, the category of rows whose id a spreadsheet lost (its code is `unknown`).",
            "model.fact_user_events",
        ),
        col(
            "category_code",
            DataType::Utf8,
            false,
            "Category path of the category's latest event.",
            "latest event",
        ),
        col(
            "category_l1",
            DataType::Utf8,
            false,
            "First level of category_code.",
            "latest event",
        ),
        col(
            "category_l2",
            DataType::Utf8,
            true,
            "Second level, null when absent.",
            "latest event",
        ),
        col(
            "category_l3",
            DataType::Utf8,
            true,
            "Remaining levels, null when absent.",
            "latest event",
        ),
        col(
            "products",
            DataType::Int64,
            false,
            "Distinct products seen in the category.",
            "count distinct product_id",
        ),
    ];
    columns.extend(counts());
    TableDef {
        layer: "model",
        name: "dim_categories",
        partition_by: None,
        file_per_value_of: None,
        grain: "one category id",
        description: "Categories with their path split into levels and their activity, rebuilt from the fact table on every run.",
        columns,
    }
}

/// `model.dim_sessions`.
pub fn dim_sessions() -> TableDef {
    let mut columns = vec![
        col(
            "session_id",
            DataType::Utf8,
            false,
            "Session identifier (key).",
            "model.fact_user_events",
        ),
        col(
            "user_id",
            DataType::Int64,
            false,
            "User of the session's first event.",
            "first event",
        ),
        col(
            "session_start",
            timestamp_utc(),
            false,
            "First event of the session.",
            "min event_time",
        ),
        col(
            "session_end",
            timestamp_utc(),
            false,
            "Last event of the session.",
            "max event_time",
        ),
        col(
            "duration_seconds",
            DataType::Int64,
            false,
            "session_end - session_start, in whole seconds.",
            "derived",
        ),
        col(
            "start_date",
            DataType::Date32,
            false,
            "UTC day of session_start.",
            "derived",
        ),
        col(
            "distinct_products",
            DataType::Int64,
            false,
            "Distinct products touched.",
            "count distinct product_id",
        ),
        col(
            "converted",
            DataType::Boolean,
            false,
            "Whether the session has at least one purchase.",
            "purchases > 0",
        ),
    ];
    columns.extend(counts());
    TableDef {
        layer: "model",
        name: "dim_sessions",
        partition_by: None,
        file_per_value_of: None,
        grain: "one session",
        description: "Sessions: start, end, duration, counts per event type, conversion and revenue. Rebuilt from the fact table on every run, so sessions crossing midnight are whole.",
        columns,
    }
}

/// `model.dim_time`.
pub fn dim_time() -> TableDef {
    let i = |name, description| col(name, DataType::Int32, false, description, "calendar");
    TableDef {
        layer: "model",
        name: "dim_time",
        partition_by: None,
        file_per_value_of: None,
        grain: "one calendar day",
        description: "Calendar of every day from the first to the last day of the fact table (days without events included).",
        columns: vec![
            col(
                "date",
                DataType::Date32,
                false,
                "The day (key; joins fact event_date).",
                "calendar",
            ),
            i("year", "Year."),
            i("quarter", "Quarter, 1-4."),
            i("month", "Month, 1-12."),
            col(
                "month_name",
                DataType::Utf8,
                false,
                "Month name in English.",
                "calendar",
            ),
            i("day_of_month", "Day of month, 1-31."),
            i("day_of_year", "Day of year, 1-366."),
            i("day_of_week", "ISO day of week, 1 = Monday ... 7 = Sunday."),
            col(
                "day_name",
                DataType::Utf8,
                false,
                "Day name in English.",
                "calendar",
            ),
            i("iso_week", "ISO week number."),
            col(
                "is_weekend",
                DataType::Boolean,
                false,
                "Saturday or Sunday.",
                "calendar",
            ),
            col(
                "has_events",
                DataType::Boolean,
                false,
                "Whether the fact table has events that day.",
                "model.fact_user_events",
            ),
        ],
    }
}

/// `meta.ingests`: one row per ingested file.
pub fn meta_ingests() -> TableDef {
    TableDef {
        layer: "meta",
        name: "ingests",
        partition_by: None,
        file_per_value_of: None,
        grain: "one ingested file",
        description: "Log of ingest batches: which file, how many lines, which days it touched.",
        columns: vec![
            col(
                "batch_id",
                DataType::Utf8,
                false,
                "Hash of the file's bytes as stored (xxh3-128, hex); key, and `_batch_id` of its rows.",
                "ingest",
            ),
            col(
                "content_hash",
                DataType::Utf8,
                false,
                "xxh3-128 (hex) of the file's decompressed text: the same export compressed differently has the same hash and is not ingested twice.",
                "ingest",
            ),
            col(
                "source",
                DataType::Utf8,
                false,
                "File path as given.",
                "ingest",
            ),
            col(
                "rows",
                DataType::Int64,
                false,
                "Data lines landed in raw.events.",
                "ingest",
            ),
            col(
                "malformed_rows",
                DataType::Int64,
                false,
                "Lines that could not be split into nine fields.",
                "ingest",
            ),
            col(
                "bytes",
                DataType::Int64,
                false,
                "File size in bytes.",
                "ingest",
            ),
            col(
                "first_date",
                DataType::Date32,
                true,
                "Earliest event_date touched.",
                "ingest",
            ),
            col(
                "last_date",
                DataType::Date32,
                true,
                "Latest event_date touched.",
                "ingest",
            ),
            col(
                "raw_version",
                DataType::Int64,
                false,
                "Version of raw.events that holds the batch.",
                "ingest",
            ),
            col(
                "ingested_at",
                timestamp_utc(),
                false,
                "When the batch was committed.",
                "ingest",
            ),
            col(
                "seconds",
                DataType::Float64,
                false,
                "Wall time of the ingest.",
                "ingest",
            ),
            col(
                "scientific_category_ids",
                DataType::Int64,
                true,
                "Lines whose category_id is in scientific notation (the file went through a spreadsheet); null for ingests recorded before it was counted.",
                "ingest",
            ),
        ],
    }
}

/// `meta.runs`: one row per pipeline run.
pub fn meta_runs() -> TableDef {
    let n = |name, description| col(name, DataType::Int64, false, description, "run");
    TableDef {
        layer: "meta",
        name: "runs",
        partition_by: None,
        file_per_value_of: None,
        grain: "one run of `shoplake run` that got to its end, held days and dimensions included",
        description: "Run log: what each run rebuilt, its row accounting and its timings.",
        columns: vec![
            col(
                "run_id",
                DataType::Utf8,
                false,
                "Run identifier (key).",
                "run",
            ),
            col(
                "started_at",
                timestamp_utc(),
                false,
                "Start of the run.",
                "run",
            ),
            col(
                "finished_at",
                timestamp_utc(),
                false,
                "End of the run.",
                "run",
            ),
            col(
                "trigger",
                DataType::Utf8,
                false,
                "`incremental`, or the dates asked for.",
                "run",
            ),
            n("days", "Partitions rebuilt."),
            n("raw_rows", "Raw rows read."),
            n("clean_rows", "Clean rows written."),
            n("duplicates", "Exact duplicates removed."),
            n("rejected", "Rows quarantined in clean.rejects."),
            n("fact_rows", "Fact rows written."),
            col(
                "seconds",
                DataType::Float64,
                false,
                "Wall time of the run.",
                "run",
            ),
            col(
                "steps",
                DataType::Utf8,
                false,
                "Wall seconds of the run's steps as a JSON object: days_seconds (with its parts waiting_for_cleaning_seconds, day_checks_seconds, day_writes_seconds), dimensions_seconds (dimension_build_seconds, dimension_fold_seconds, dimension_checks_seconds, dimension_writes_seconds), month_marts_seconds.",
                "run",
            ),
        ],
    }
}

/// `meta.run_days`: per-day accounting of each run; the planner's memory.
pub fn meta_run_days() -> TableDef {
    let n = |name, description| col(name, DataType::Int64, false, description, "run");
    TableDef {
        layer: "meta",
        name: "run_days",
        partition_by: None,
        file_per_value_of: None,
        grain: "one partition rebuilt by one run",
        description: "Row accounting per rebuilt day (raw = clean + duplicates + rejected) and the fingerprint of the raw files it was built from; a day whose raw files no longer match its latest fingerprint is rebuilt by the next run.",
        columns: vec![
            col(
                "run_id",
                DataType::Utf8,
                false,
                "Run that rebuilt the day.",
                "run",
            ),
            col(EVENT_DATE, DataType::Date32, false, "The day.", "run"),
            n("raw_rows", "Raw rows of the day."),
            n("clean_rows", "Clean rows of the day."),
            n("duplicates", "Exact duplicates removed."),
            n("rejected", "Rows quarantined."),
            col(
                "raw_fingerprint",
                DataType::Utf8,
                false,
                "Hash of the raw files of the day when it was rebuilt.",
                "run",
            ),
            col(
                "processed_at",
                timestamp_utc(),
                false,
                "When the day was committed.",
                "run",
            ),
            col(
                "repaired",
                DataType::Int64,
                true,
                "Clean rows of the day whose category id was repaired (part of clean_rows); null for days recorded before it was counted.",
                "run",
            ),
            col(
                "unknown_category",
                DataType::Int64,
                true,
                "Clean rows of the day whose category id is unknown (part of clean_rows); null for days recorded before it was counted.",
                "run",
            ),
        ],
    }
}

/// `quality.results`: the outcome of every check of every run.
pub fn quality_results() -> TableDef {
    let t = |name, description| col(name, DataType::Utf8, false, description, "checks");
    TableDef {
        layer: "quality",
        name: "results",
        partition_by: None,
        file_per_value_of: None,
        grain: "one check evaluated on one table (or one day partition of it) by one run",
        description: "Every check result of every run and of `shoplake check`: what was checked, whether it passed, what was observed against which threshold, and a sample of failing rows.",
        columns: vec![
            t(
                "run_id",
                "Run (or `check-...` for `shoplake check`) that evaluated the check.",
            ),
            col(
                "checked_at",
                timestamp_utc(),
                false,
                "When the check was evaluated.",
                "checks",
            ),
            t("table_name", "Table checked (`layer.table`)."),
            col(
                EVENT_DATE,
                DataType::Date32,
                true,
                "Day partition checked; null when the whole table was checked.",
                "checks",
            ),
            t("check_name", "Name of the check (unique per table)."),
            t(
                "kind",
                "not_null, unique, accepted_values, range, row_count, freshness, referential, schema, row_accounting or custom_sql.",
            ),
            t(
                "severity",
                "`error` (blocks publishing) or `warn` (recorded only).",
            ),
            col(
                "passed",
                DataType::Boolean,
                false,
                "Whether the check passed.",
                "checks",
            ),
            t(
                "observed",
                "What was measured (a count of offending rows, a row count, a timestamp...).",
            ),
            t("threshold", "What was required."),
            t(
                "failing_sample",
                "Up to 5 offending rows as JSON lines; empty when passed.",
            ),
            t(
                "published",
                "Whether the checked data was published (`yes`, `no`, or `-` for checks on published data).",
            ),
        ],
    }
}

/// The count columns of a mart: events of each type and the revenue of the purchases.
fn mart_counts(source: &'static str) -> Vec<ColumnDef> {
    let n = move |name, description| col(name, DataType::Int64, false, description, source);
    vec![
        n("views", "View events."),
        n("carts", "Cart events."),
        n("removes", "remove_from_cart events."),
        n("purchases", "Purchase events (units purchased)."),
        col(
            "revenue",
            money_type(),
            false,
            "Sum of the purchases' prices.",
            source,
        ),
    ]
}

/// `model.mart_funnel_daily`: the day's events by type and its users at each funnel step.
pub fn mart_funnel_daily() -> TableDef {
    let n = |name, description| {
        col(
            name,
            DataType::Int64,
            false,
            description,
            "model.fact_user_events",
        )
    };
    let mut columns = vec![event_date_col("model.fact_user_events")];
    columns.extend(mart_counts("model.fact_user_events"));
    columns.extend([
        n("users", "Distinct users active that day."),
        n("users_viewed", "Distinct users with a view that day."),
        n("users_carted", "Distinct users with a cart event that day."),
        n(
            "users_removed",
            "Distinct users with a remove_from_cart that day.",
        ),
        n(
            "users_purchased",
            "Distinct users with a purchase that day.",
        ),
    ]);
    TableDef {
        layer: "model",
        name: "mart_funnel_daily",
        partition_by: Some(EVENT_DATE),
        file_per_value_of: None,
        grain: "one day",
        description: "The funnel of each day (report `funnel`): events by type, revenue, and the day's distinct users at each step. Rebuilt with the day's fact partition. Users do not add up across days: a report over several days counts them from model.mart_user_daily.",
        columns,
    }
}

/// `model.mart_hourly`: events by hour of day and type.
pub fn mart_hourly() -> TableDef {
    TableDef {
        layer: "model",
        name: "mart_hourly",
        partition_by: Some(EVENT_DATE),
        file_per_value_of: None,
        grain: "one (day, hour of day, event type)",
        description: "Events by UTC hour and type (report `trends`). Rebuilt with the day's fact partition; every figure adds up across days.",
        columns: vec![
            event_date_col("model.fact_user_events"),
            col(
                "hour_of_day",
                DataType::Int32,
                false,
                "UTC hour, 0-23.",
                "model.fact_user_events",
            ),
            col(
                "event_type",
                DataType::Utf8,
                false,
                "The event type.",
                "model.fact_user_events",
            ),
            col(
                "events",
                DataType::Int64,
                false,
                "Events.",
                "model.fact_user_events",
            ),
            col(
                "revenue",
                money_type(),
                false,
                "Sum of the purchases' prices (0 for other types).",
                "model.fact_user_events",
            ),
        ],
    }
}

/// The key columns of the product marts after their day or month: the product and the
/// (category, brand, price) its events carried.
fn product_key_cols(source: &'static str) -> Vec<ColumnDef> {
    let text = |name, description| col(name, DataType::Utf8, false, description, source);
    vec![
        col("product_id", DataType::Int64, false, "Product.", source),
        col(
            "category_id",
            DataType::Int64,
            false,
            "The events' category id.",
            source,
        ),
        text("category_code", "The events' category code."),
        text("category_l1", "First level of the category code."),
        text("brand", "The events' brand."),
        col("price", price_type(), false, "The events' price.", source),
    ]
}

/// `model.mart_product_daily`: each product's events by type, at each price it had that day.
pub fn mart_product_daily() -> TableDef {
    let f = "model.fact_user_events";
    let mut columns = vec![event_date_col(f)];
    columns.extend(product_key_cols(f));
    columns.extend(mart_counts(f));
    TableDef {
        layer: "model",
        name: "mart_product_daily",
        partition_by: Some(EVENT_DATE),
        file_per_value_of: None,
        grain: "one (day, product, category, brand, price)",
        description: "Each product's events of the day by type at each (category, brand, price) its events carried (reports `products`, `categories`, `brands`, `prices`). Rebuilt with the day's fact partition; every figure adds up across days.",
        columns,
    }
}

/// `model.mart_user_daily`: each user's events of the day.
pub fn mart_user_daily() -> TableDef {
    let f = "model.fact_user_events";
    let mut columns = vec![
        event_date_col(f),
        col("user_id", DataType::Int64, false, "User.", f),
        col(
            "events",
            DataType::Int64,
            false,
            "Events of the user that day.",
            f,
        ),
    ];
    columns.extend(mart_counts(f));
    TableDef {
        layer: "model",
        name: "mart_user_daily",
        partition_by: Some(EVENT_DATE),
        file_per_value_of: None,
        grain: "one (day, user)",
        description: "Each active user's events of the day by type (reports `users`, `funnel`, `sessions`): distinct users over any range of days are the distinct user_id of its rows. Rebuilt with the day's fact partition.",
        columns,
    }
}

/// The `month` column of the month marts.
fn month_col(source: &'static str) -> ColumnDef {
    col(
        "month",
        DataType::Date32,
        false,
        "First day of the calendar month (UTC).",
        source,
    )
}

/// `model.mart_user_monthly`: each user's month, from the days of `model.mart_user_daily`.
pub fn mart_user_monthly() -> TableDef {
    let u = "model.mart_user_daily";
    let n = |name, description| col(name, DataType::Int64, false, description, u);
    let mut columns = vec![
        month_col(u),
        col("user_id", DataType::Int64, false, "User.", u),
        n("active_days", "Days of the month the user had an event."),
        n("purchase_days", "Days of the month the user bought."),
        n("events", "Events of the user in the month."),
    ];
    columns.extend(mart_counts(u));
    TableDef {
        layer: "model",
        name: "mart_user_monthly",
        partition_by: None,
        file_per_value_of: None,
        grain: "one (calendar month, user)",
        description: "Each active user's month (reports `users`, `funnel`, `summary`, `sessions`): a report over whole months reads these rows instead of the month's user-day rows, and distinct users over a range that is one month are its rows. Rebuilt by every run from model.mart_user_daily, one month at a time, each month in files of its own.",
        columns,
    }
}

/// `model.mart_product_monthly`: each product's month at each (category, brand, price), from
/// the days of `model.mart_product_daily`.
pub fn mart_product_monthly() -> TableDef {
    let p = "model.mart_product_daily";
    let mut columns = vec![month_col(p)];
    columns.extend(product_key_cols(p));
    columns.extend(mart_counts(p));
    TableDef {
        layer: "model",
        name: "mart_product_monthly",
        partition_by: None,
        file_per_value_of: None,
        grain: "one (calendar month, product, category, brand, price)",
        description: "Each product's events of the month by type at each (category, brand, price) its events carried (reports `products`, `categories`, `brands`, `prices`, and `summary` under a filter): a report over whole months reads these rows instead of the month's product-day rows. Rebuilt by every run from model.mart_product_daily, one month at a time, each month in files of its own; every figure adds up across months.",
        columns,
    }
}

/// `model.mart_session_daily`: sessions by the day they start, by duration and by events.
pub fn mart_session_daily() -> TableDef {
    let s = "model.dim_sessions";
    let n = |name, description| col(name, DataType::Int64, false, description, s);
    TableDef {
        layer: "model",
        name: "mart_session_daily",
        partition_by: None,
        file_per_value_of: None,
        grain: "one (start day, measure, value)",
        description: "Sessions counted on the day they start, by exact duration (`measure` = 'duration_seconds') and by number of events (`measure` = 'events'), each session once per measure (reports `sessions` and `funnel`): medians and distributions over any range of days come exactly from these counts. Rebuilt from model.dim_sessions with the dimensions (a session that crosses midnight changes with either day).",
        columns: vec![
            col(
                EVENT_DATE,
                DataType::Date32,
                false,
                "The day the sessions start (UTC).",
                s,
            ),
            col(
                "measure",
                DataType::Utf8,
                false,
                "`duration_seconds` or `events`.",
                s,
            ),
            n("value", "The session's duration in seconds, or its events."),
            n("sessions", "Sessions with that start day and value."),
            n("with_view", "Of them, sessions with a view."),
            n("with_cart", "Of them, sessions with a cart event."),
            n("with_purchase", "Of them, sessions with a purchase."),
        ],
    }
}

/// Every table of the lake, in dependency order.
pub fn all() -> Vec<TableDef> {
    vec![
        raw_events(),
        clean_events(),
        clean_rejects(),
        fact_user_events(),
        dim_users(),
        dim_products(),
        dim_categories(),
        dim_sessions(),
        dim_time(),
        mart_funnel_daily(),
        mart_hourly(),
        mart_product_daily(),
        mart_user_daily(),
        mart_session_daily(),
        mart_user_monthly(),
        mart_product_monthly(),
        meta_ingests(),
        meta_runs(),
        meta_run_days(),
        quality_results(),
    ]
    .into_iter()
    .chain(crate::cdc_tables::all_cdc())
    .chain([crate::cdc_tables::meta_cdc_progress()])
    .collect()
}

/// Looks a table up by its qualified name (`clean.events`).
pub fn by_name(qualified: &str) -> Option<TableDef> {
    all().into_iter().find(|t| t.qualified_name() == qualified)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_export_header_is_the_source_columns() {
        assert_eq!(EXPORT_HEADER, SOURCE_COLUMNS.join(","));
    }

    use super::*;

    #[test]
    fn names_are_unique_and_partition_columns_exist() {
        let tables = all();
        let mut names: Vec<_> = tables.iter().map(|t| t.qualified_name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), tables.len());
        for t in &tables {
            if let Some(p) = t.partition_by {
                assert!(
                    t.column_names().contains(&p),
                    "{} lacks {p}",
                    t.qualified_name()
                );
            }
            let mut cols = t.column_names();
            cols.sort();
            cols.dedup();
            assert_eq!(
                cols.len(),
                t.columns.len(),
                "duplicate column in {}",
                t.qualified_name()
            );
        }
    }
}
