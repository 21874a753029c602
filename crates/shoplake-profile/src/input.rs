//! Turning any event input into the two views every profile query reads.
//!
//! The profile accepts the export's text columns (a CSV read as text, `raw.events`) and typed
//! lake tables (`clean.events`, `model.fact_user_events`, whose session column is `session_id`).
//! Rather than writing every query twice, the input is normalised once, in SQL:
//!
//! - the *base* view: the nine source columns under their export names, as delivered (types
//!   kept), with the empty string turned into null (an export writes a missing value as an
//!   empty field), plus `raw_line` (the text of a malformed line, when the input has lineage
//!   columns) and `malformed`; the sample, when asked for, is applied here;
//! - the *typed* view: the base plus `ts` (the event time; for text parsed strictly as
//!   `YYYY-MM-DD HH:MM:SS UTC`, null when it does not parse, never an error), `price_value`
//!   (DECIMAL(10,2); for text only a number with at most two decimals, like the cleaning
//!   rules), `ev_day` and `ev_hour`.
//!
//! An input that can be read only once (a file streamed through a channel) is first written to
//! a temporary Parquet directory, with bounded memory, so that the profile's many queries can
//! read it again; the directory is removed when the profile is done.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};

use crate::model::InputKind;
use crate::sample::{SAMPLE_UNIT_FUNCTION, SampleUnit};
use crate::{ProfileError, Sample};

pub use shoplake_lake::tables::{EVENT_TYPES, SOURCE_COLUMNS};

/// A well-formed export timestamp (hours 00-23, minutes and seconds 00-59); the date itself is
/// then checked by the cast (no 30 February).
const TIME_PATTERN: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9] UTC$";

/// A price as the cleaning rules accept it: at most eight integer digits and two decimals.
const PRICE_PATTERN: &str = r"^-?([0-9]{1,8}(\.[0-9]{1,2})?|\.[0-9]{1,2})$";

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The registered views of one profile run; dropping it unregisters them and removes any
/// temporary copy of the input.
pub struct Prepared {
    ctx: SessionContext,
    /// Name of the base view.
    pub base: String,
    /// Name of the typed view.
    pub typed: String,
    /// Text or typed input.
    pub kind: InputKind,
    /// Whether the input has lineage columns (`_error`), so malformed lines can be told apart.
    pub has_lineage: bool,
    names: Vec<String>,
    temp: Option<TempDir>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        for name in &self.names {
            // A name that is already gone is not a problem.
            let _ = self.ctx.deregister_table(name.as_str());
        }
        self.temp.take();
    }
}

fn is_text(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric()
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Finds the input's column for a source column (`user_session` may be called `session_id`).
fn find<'a>(schema: &'a Schema, name: &str) -> Option<&'a str> {
    let candidates: &[&str] = if name == "user_session" {
        &["user_session", "session_id"]
    } else {
        std::slice::from_ref(&name)
    };
    candidates.iter().find_map(|c| {
        schema
            .fields()
            .iter()
            .find(|f| f.name() == c)
            .map(|f| f.name().as_str())
    })
}

fn type_of<'a>(schema: &'a Schema, column: &str) -> &'a DataType {
    schema
        .field_with_name(column)
        .map(|f| f.data_type())
        .unwrap_or(&DataType::Null)
}

/// Registers the base and typed views of `input` in `ctx`.
pub async fn prepare(
    ctx: &SessionContext,
    input: DataFrame,
    sample: Option<&Sample>,
    scan_once: bool,
) -> Result<Prepared, ProfileError> {
    let schema: Schema = input.schema().as_arrow().clone();
    let missing: Vec<String> = SOURCE_COLUMNS
        .iter()
        .filter(|c| find(&schema, c).is_none())
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ProfileError::NotEventTable { missing });
    }
    let column = |name: &str| find(&schema, name).unwrap_or(name).to_string();
    let wrong = |name: &str, expected: &str| ProfileError::ColumnType {
        column: column(name),
        found: type_of(&schema, &column(name)).to_string(),
        expected: expected.to_string(),
    };
    for name in ["event_type", "category_code", "brand", "user_session"] {
        if !is_text(type_of(&schema, &column(name))) {
            return Err(wrong(name, "text"));
        }
    }
    let time_type = type_of(&schema, &column("event_time")).clone();
    let kind = if is_text(&time_type) {
        InputKind::Text
    } else if matches!(time_type, DataType::Timestamp(_, _)) {
        InputKind::Typed
    } else {
        return Err(wrong("event_time", "text or a timestamp"));
    };
    let price_type = type_of(&schema, &column("price")).clone();
    if !is_text(&price_type) && !is_numeric(&price_type) {
        return Err(wrong("price", "text or a number"));
    }
    let has_error = schema.field_with_name("_error").is_ok();
    let has_raw_line = schema.field_with_name("_raw_line").is_ok();

    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("shoplake_profile_{}_{id}", std::process::id());
    let input_name = format!("{prefix}_input");
    let base = format!("{prefix}_base");
    let typed = format!("{prefix}_typed");
    let mut prepared = Prepared {
        ctx: ctx.clone(),
        base: base.clone(),
        typed: typed.clone(),
        kind,
        has_lineage: has_error,
        names: vec![input_name.clone()],
        temp: None,
    };
    ctx.register_table(input_name.as_str(), input.into_view())?;

    // The base view.
    let mut select: Vec<String> = SOURCE_COLUMNS
        .iter()
        .map(|name| {
            let src = column(name);
            if is_text(type_of(&schema, &src)) {
                format!("NULLIF({}, '') AS {name}", quote(&src))
            } else {
                format!("{} AS {name}", quote(&src))
            }
        })
        .collect();
    select.push(if has_raw_line {
        "CAST(\"_raw_line\" AS VARCHAR) AS raw_line".to_string()
    } else {
        "CAST(NULL AS VARCHAR) AS raw_line".to_string()
    });
    select.push(if has_error {
        "(\"_error\" IS NOT NULL) AS malformed".to_string()
    } else {
        "false AS malformed".to_string()
    });
    let filter = match sample {
        Some(s) => {
            ctx.register_udf(SampleUnit::udf());
            let mut fields: Vec<String> =
                SOURCE_COLUMNS.iter().map(|c| quote(&column(c))).collect();
            if has_raw_line {
                fields.push(quote("_raw_line"));
            }
            format!(
                " WHERE {SAMPLE_UNIT_FUNCTION}('{}', {}) < {:.17}",
                s.seed,
                fields.join(", "),
                s.fraction
            )
        }
        None => String::new(),
    };
    let base_sql = format!(
        "SELECT {} FROM {}{filter}",
        select.join(", "),
        quote(&input_name)
    );
    let base_df = ctx.sql(&base_sql).await?;
    if scan_once {
        let temp = TempDir::new()?;
        let dir = format!("{}/", temp.path().display());
        base_df
            .write_parquet(&dir, DataFrameWriteOptions::new(), None)
            .await?;
        ctx.register_parquet(base.as_str(), &dir, ParquetReadOptions::default())
            .await?;
        prepared.temp = Some(temp);
    } else {
        ctx.register_table(base.as_str(), base_df.into_view())?;
    }
    prepared.names.push(base.clone());

    // The typed view.
    let ts = match kind {
        InputKind::Text => format!(
            "CASE WHEN regexp_like(event_time, '{TIME_PATTERN}') \
             THEN TRY_CAST(substr(event_time, 1, 19) AS TIMESTAMP) END"
        ),
        InputKind::Typed => "event_time".to_string(),
    };
    let price = if is_text(&price_type) {
        format!(
            "CASE WHEN regexp_like(price, '{PRICE_PATTERN}') \
             THEN TRY_CAST(price AS DECIMAL(10, 2)) END"
        )
    } else {
        "TRY_CAST(price AS DECIMAL(10, 2))".to_string()
    };
    let typed_sql = format!(
        "SELECT *, CAST(ts AS DATE) AS ev_day, CAST(date_part('hour', ts) AS BIGINT) AS ev_hour \
         FROM (SELECT *, {ts} AS ts, {price} AS price_value FROM {})",
        quote(&base)
    );
    let typed_df = ctx.sql(&typed_sql).await?;
    ctx.register_table(typed.as_str(), typed_df.into_view())?;
    prepared.names.push(typed);
    Ok(prepared)
}

/// A temporary directory removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self, ProfileError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "shoplake-profile-{}-{}-{nanos}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).map_err(|source| ProfileError::TempDir {
            path: path.clone(),
            source,
        })?;
        Ok(TempDir { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
