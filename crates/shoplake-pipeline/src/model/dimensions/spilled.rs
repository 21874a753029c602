//! The spilled days: each day's fold is written to two Arrow IPC files in the scratch
//! directory, in key order, and read back a row at a time by the merges.
//!
//! - parts: one row per (session, user) of the day, ordered by session id, then user; the
//!   session's distinct products of the day on its first user's row only;
//! - users: one row per user of the day with the day's totals, ordered by user.
//!
//! Columns are written and read by name; both files end with the same count columns.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use shoplake_lake::arrow::array::{
    ArrayRef, AsArray, Decimal128Array, Int64Array, Int64Builder, ListArray, ListBuilder,
    RecordBatch, StringArray, StringBuilder,
};
use shoplake_lake::arrow::datatypes::{
    DataType, Decimal128Type, Field, Int64Type, Schema, SchemaRef,
};
use shoplake_lake::arrow::ipc::reader::FileReader;

use super::day_fold::Part;
use super::scratch_error;
use super::users::User;
use crate::error::{PipelineError, Result};
use crate::model::columns::Counts;

const SESSION_ID: &str = "session_id";
const USER_ID: &str = "user_id";
/// A part's first event: its time and id (the order of events).
const FIRST_TIME: &str = "first_time";
const FIRST_ID: &str = "first_id";
const LAST_TIME: &str = "last_time";
const PRODUCTS: &str = "products";
const FIRST_SEEN: &str = "first_seen";
const LAST_SEEN: &str = "last_seen";
const SESSIONS: &str = "sessions";
const EVENTS: &str = "events";
const VIEWS: &str = "views";
const CARTS: &str = "carts";
const REMOVES: &str = "removes";
const PURCHASES: &str = "purchases";
const REVENUE_CENTS: &str = "revenue_cents";

fn int_field(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

/// Revenue in cents, summed: wider than any price column.
const REVENUE_TYPE: DataType = DataType::Decimal128(38, 0);

fn count_fields() -> [Field; 6] {
    [
        int_field(EVENTS),
        int_field(VIEWS),
        int_field(CARTS),
        int_field(REMOVES),
        int_field(PURCHASES),
        Field::new(REVENUE_CENTS, REVENUE_TYPE, false),
    ]
}

fn product_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Int64, false))
}

/// The columns of a spilled day of (session, user) parts.
pub(super) fn part_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new(SESSION_ID, DataType::Utf8, false),
        int_field(USER_ID),
        int_field(FIRST_TIME),
        int_field(FIRST_ID),
        int_field(LAST_TIME),
    ];
    fields.extend(count_fields());
    fields.push(Field::new(PRODUCTS, DataType::List(product_item()), false));
    Arc::new(Schema::new(fields))
}

/// The columns of a spilled day of users.
pub(super) fn user_schema() -> SchemaRef {
    let mut fields = vec![
        int_field(USER_ID),
        int_field(FIRST_SEEN),
        int_field(LAST_SEEN),
        int_field(SESSIONS),
    ];
    fields.extend(count_fields());
    Arc::new(Schema::new(fields))
}

pub(super) fn create(path: &Path) -> Result<BufWriter<File>> {
    Ok(BufWriter::new(
        File::create(path).map_err(|e| scratch_error(path, e))?,
    ))
}

/// The count columns being built.
#[derive(Default)]
struct CountColumns {
    events: Vec<i64>,
    views: Vec<i64>,
    carts: Vec<i64>,
    removes: Vec<i64>,
    purchases: Vec<i64>,
    revenue_cents: Vec<i128>,
}

impl CountColumns {
    fn push(&mut self, c: &Counts) {
        self.events.push(c.events);
        self.views.push(c.views);
        self.carts.push(c.carts);
        self.removes.push(c.removes);
        self.purchases.push(c.purchases);
        self.revenue_cents.push(c.revenue_cents);
    }

    /// In the order of [`count_fields`].
    fn finish(self) -> Result<[ArrayRef; 6]> {
        let int = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
        Ok([
            int(self.events),
            int(self.views),
            int(self.carts),
            int(self.removes),
            int(self.purchases),
            Arc::new(Decimal128Array::from(self.revenue_cents).with_precision_and_scale(38, 0)?),
        ])
    }
}

/// A batch of (session, user) parts being built, in [`part_schema`].
#[derive(Default)]
pub(super) struct PartRows {
    session: StringBuilder,
    user: Vec<i64>,
    first_time: Vec<i64>,
    first_id: Vec<i64>,
    last_time: Vec<i64>,
    counts: CountColumns,
    products: ListBuilder<Int64Builder>,
}

impl PartRows {
    pub(super) fn push(&mut self, session: &str, user: i64, part: &Part, products: &[i64]) {
        self.session.append_value(session);
        self.user.push(user);
        self.first_time.push(part.first.0);
        self.first_id.push(part.first.1);
        self.last_time.push(part.last_time);
        self.counts.push(&part.counts);
        self.products.values().append_slice(products);
        self.products.append(true);
    }

    pub(super) fn finish(mut self) -> Result<RecordBatch> {
        let int = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.session.finish()),
            int(self.user),
            int(self.first_time),
            int(self.first_id),
            int(self.last_time),
        ];
        columns.extend(self.counts.finish()?);
        // The builder declares nullable items; the spilled schema says they are not.
        let (_, offsets, values, nulls) = self.products.finish().into_parts();
        columns.push(Arc::new(ListArray::try_new(
            product_item(),
            offsets,
            values,
            nulls,
        )?));
        Ok(RecordBatch::try_new(part_schema(), columns)?)
    }
}

/// A batch of users' day totals, in [`user_schema`].
pub(super) fn user_batch(users: &[(i64, User)]) -> Result<RecordBatch> {
    let int = |f: fn(&(i64, User)) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(users.iter().map(f)))
    };
    let mut counts = CountColumns::default();
    for (_, u) in users {
        counts.push(&u.counts);
    }
    let mut columns = vec![
        int(|(id, _)| *id),
        int(|(_, u)| u.first_seen),
        int(|(_, u)| u.last_seen),
        int(|(_, u)| u.sessions),
    ];
    columns.extend(counts.finish()?);
    Ok(RecordBatch::try_new(user_schema(), columns)?)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| PipelineError::Contract(format!("a spilled day file has no column {name}")))
}

fn int64(batch: &RecordBatch, name: &str) -> Result<Int64Array> {
    Ok(column(batch, name)?.as_primitive::<Int64Type>().clone())
}

/// The count columns of a spilled batch.
struct SpilledCounts {
    events: Int64Array,
    views: Int64Array,
    carts: Int64Array,
    removes: Int64Array,
    purchases: Int64Array,
    revenue_cents: Decimal128Array,
}

impl SpilledCounts {
    fn of(batch: &RecordBatch) -> Result<Self> {
        Ok(SpilledCounts {
            events: int64(batch, EVENTS)?,
            views: int64(batch, VIEWS)?,
            carts: int64(batch, CARTS)?,
            removes: int64(batch, REMOVES)?,
            purchases: int64(batch, PURCHASES)?,
            revenue_cents: column(batch, REVENUE_CENTS)?
                .as_primitive::<Decimal128Type>()
                .clone(),
        })
    }

    fn get(&self, row: usize) -> Counts {
        Counts {
            events: self.events.value(row),
            views: self.views.value(row),
            carts: self.carts.value(row),
            removes: self.removes.value(row),
            purchases: self.purchases.value(row),
            revenue_cents: self.revenue_cents.value(row),
        }
    }
}

/// A spilled batch of (session, user) parts, its columns found once.
pub(super) struct PartColumns {
    session: StringArray,
    user: Int64Array,
    first_time: Int64Array,
    first_id: Int64Array,
    last_time: Int64Array,
    counts: SpilledCounts,
    products: ListArray,
}

impl PartColumns {
    pub(super) fn of(batch: &RecordBatch) -> Result<Self> {
        Ok(PartColumns {
            session: column(batch, SESSION_ID)?.as_string::<i32>().clone(),
            user: int64(batch, USER_ID)?,
            first_time: int64(batch, FIRST_TIME)?,
            first_id: int64(batch, FIRST_ID)?,
            last_time: int64(batch, LAST_TIME)?,
            counts: SpilledCounts::of(batch)?,
            products: column(batch, PRODUCTS)?.as_list::<i32>().clone(),
        })
    }

    pub(super) fn session(&self, row: usize) -> &str {
        self.session.value(row)
    }

    pub(super) fn user(&self, row: usize) -> i64 {
        self.user.value(row)
    }

    pub(super) fn part(&self, row: usize) -> Part {
        Part {
            first: (self.first_time.value(row), self.first_id.value(row)),
            last_time: self.last_time.value(row),
            counts: self.counts.get(row),
        }
    }

    /// Appends the row's products to `into`.
    pub(super) fn products(&self, row: usize, into: &mut Vec<i64>) {
        let offsets = self.products.value_offsets();
        let (from, to) = (offsets[row] as usize, offsets[row + 1] as usize);
        let values = self.products.values().as_primitive::<Int64Type>().values();
        into.extend_from_slice(&values[from..to]);
    }
}

/// A spilled batch of users' day totals, its columns found once.
pub(super) struct UserColumns {
    user: Int64Array,
    first_seen: Int64Array,
    last_seen: Int64Array,
    sessions: Int64Array,
    counts: SpilledCounts,
}

impl UserColumns {
    pub(super) fn of(batch: &RecordBatch) -> Result<Self> {
        Ok(UserColumns {
            user: int64(batch, USER_ID)?,
            first_seen: int64(batch, FIRST_SEEN)?,
            last_seen: int64(batch, LAST_SEEN)?,
            sessions: int64(batch, SESSIONS)?,
            counts: SpilledCounts::of(batch)?,
        })
    }

    pub(super) fn id(&self, row: usize) -> i64 {
        self.user.value(row)
    }

    /// The user's totals of that day (one active day).
    pub(super) fn user(&self, row: usize) -> User {
        User {
            first_seen: self.first_seen.value(row),
            last_seen: self.last_seen.value(row),
            active_days: 1,
            sessions: self.sessions.value(row),
            counts: self.counts.get(row),
        }
    }
}

/// A row of a spilled file: its batch's columns (shared by the batch's rows), the row, and
/// which file (a day, in day order) it comes from, which breaks ties in a merge.
pub(super) struct Row<C> {
    pub(super) columns: Rc<C>,
    pub(super) row: usize,
    pub(super) run: usize,
}

/// The rows of a spilled file, in the order they were written (empty batches skipped).
pub(super) struct SpilledRows<C> {
    reader: FileReader<BufReader<File>>,
    schema: SchemaRef,
    decode: fn(&RecordBatch) -> Result<C>,
    batch: Option<(Rc<C>, usize)>,
    next: usize,
    run: usize,
}

impl<C> SpilledRows<C> {
    /// Opens the spilled file `path` of schema `schema`, the `run`-th of its merge.
    pub(super) fn open(
        path: &Path,
        schema: SchemaRef,
        decode: fn(&RecordBatch) -> Result<C>,
        run: usize,
    ) -> Result<Self> {
        let file = File::open(path).map_err(|e| scratch_error(path, e))?;
        Ok(SpilledRows {
            reader: FileReader::try_new(BufReader::new(file), None)?,
            schema,
            decode,
            batch: None,
            next: 0,
            run,
        })
    }

    /// Moves to the next batch with rows; false at the end of the file.
    fn next_batch(&mut self) -> Result<bool> {
        self.batch = None;
        self.next = 0;
        for batch in self.reader.by_ref() {
            let batch = batch?;
            if batch.schema() != self.schema {
                return Err(PipelineError::Contract(
                    "a spilled day of sessions or users has an unexpected schema".into(),
                ));
            }
            if batch.num_rows() > 0 {
                self.batch = Some((Rc::new((self.decode)(&batch)?), batch.num_rows()));
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl<C> Iterator for SpilledRows<C> {
    type Item = Result<Row<C>>;

    fn next(&mut self) -> Option<Self::Item> {
        let exhausted = self
            .batch
            .as_ref()
            .is_none_or(|(_, rows)| self.next >= *rows);
        if exhausted {
            match self.next_batch() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
        let (columns, _) = self.batch.as_ref()?;
        let row = Row {
            columns: columns.clone(),
            row: self.next,
            run: self.run,
        };
        self.next += 1;
        Some(Ok(row))
    }
}
