//! A parse worker: chunks of lines in, rules applied, new rows appended to its day files.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use shoplake_ingest::files::{MAX_LINE_BYTES, split_fields};
use shoplake_lake::datafusion::parquet::file::properties::WriterProperties;

use super::ConvertError;
use super::chunks::Chunk;
use super::deferred::{Deferred, DeferredFile, DeferredWriter};
use super::output::{DayOutput, FinishedDay};
use super::rejects::{Reject, RejectSink};
use super::seen::{DayHandle, SeenRows};
use crate::clean::categories::KnownCategories;
use crate::clean::rules::{
    RawFields, RejectReason, RuleOptions, identity, malformed_detail, validate,
};
use shoplake_lake::tables::{CATEGORY_ID_REPAIRED, CATEGORY_ID_UNKNOWN};

/// Rejects gathered before they are handed to the shared rejects file.
const REJECT_BUFFER: usize = 4096;

/// Counts of one worker, merged by the coordinator.
#[derive(Debug, Default)]
pub(crate) struct WorkerTotals {
    pub lines: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub days: Vec<FinishedDay>,
    /// Rows written whose category id was repaired, or is unknown.
    pub repaired: u64,
    pub unknown_category: u64,
    /// Lines whose category id is in scientific notation, kept for the end of the conversion
    /// (when every exact row has been seen, so every category is known).
    pub deferred: Option<DeferredFile>,
}

pub(crate) struct Worker {
    id: usize,
    staging: PathBuf,
    props: WriterProperties,
    seen: Arc<SeenRows>,
    rejects: Arc<Mutex<RejectSink>>,
    /// Bytes of encoded row groups this worker may hold before it flushes the largest.
    budget: usize,
    /// Day outputs, and where each day is in `days`.
    days: Vec<DayOutput>,
    /// The duplicate-check keys of each day in `days`.
    keys: Vec<DayHandle>,
    /// Days (positions in `days`) that received rows in the current chunk.
    touched: Vec<usize>,
    day_index: HashMap<i32, usize>,
    /// The day of the previous row: exports come roughly in time order.
    last_day: Option<(i32, usize)>,
    pending_rejects: Vec<Reject>,
    totals: WorkerTotals,
    scratch: csv::StringRecord,
    rules: RuleOptions,
    /// The categories that repair mangled ids; until they are known (`None`), lines with
    /// one are deferred.
    repair: Option<Arc<KnownCategories>>,
    deferred: DeferredWriter,
}

/// What every worker of a conversion shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub staging: PathBuf,
    pub props: WriterProperties,
    pub seen: Arc<SeenRows>,
    pub rejects: Arc<Mutex<RejectSink>>,
    /// Bytes of encoded row groups each worker may hold.
    pub budget: usize,
    pub rules: RuleOptions,
    /// Where deferred lines are staged.
    pub spill: PathBuf,
}

impl Worker {
    pub(crate) fn new(id: usize, shared: Shared, repair: Option<Arc<KnownCategories>>) -> Self {
        let Shared {
            staging,
            props,
            seen,
            rejects,
            budget,
            rules,
            spill,
        } = shared;
        Worker {
            id,
            staging,
            props,
            seen,
            rejects,
            budget,
            days: Vec::new(),
            keys: Vec::new(),
            touched: Vec::new(),
            day_index: HashMap::new(),
            last_day: None,
            pending_rejects: Vec::new(),
            totals: WorkerTotals::default(),
            scratch: csv::StringRecord::new(),
            rules,
            repair,
            deferred: DeferredWriter::new(&spill, id),
        }
    }

    /// Applies the rules to every line of `chunk`.
    pub(crate) fn process(&mut self, chunk: &Chunk) -> Result<(), ConvertError> {
        if chunk.too_long {
            self.totals.lines += 1;
            self.reject(
                chunk.file,
                chunk.first_line,
                &chunk.data,
                RejectReason::MalformedRow,
                malformed_detail("line_too_long"),
            );
            return self.flush_rejects_if_full();
        }
        let mut data: &[u8] = &chunk.data;
        if let [rest @ .., b'\n'] = data {
            data = rest;
        }
        for (line_no, raw) in (chunk.first_line..).zip(data.split(|b| *b == b'\n')) {
            self.totals.lines += 1;
            let mut line = raw;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            self.line(chunk.file, line_no, line)?;
        }
        self.end_of_batch()
    }

    /// After a batch of lines: rejects handed over when many, the days touched marked as
    /// recent for the duplicate check, memory kept within bounds.
    fn end_of_batch(&mut self) -> Result<(), ConvertError> {
        self.flush_rejects_if_full()?;
        for slot in self.touched.drain(..) {
            self.seen.touch(&self.keys[slot]);
        }
        if let Some((_, slot)) = self.last_day {
            self.touched.push(slot);
        }
        self.seen.bound_memory()?;
        self.bound_memory()
    }

    /// A group of lines held back earlier, now that the categories are known (see `repair`).
    pub(crate) fn process_deferred(&mut self, lines: &[Deferred]) -> Result<(), ConvertError> {
        for d in lines {
            self.line(d.file, d.line, &d.text)?;
        }
        self.end_of_batch()
    }

    fn line(&mut self, file: usize, line_no: u64, line: &[u8]) -> Result<(), ConvertError> {
        if line.len() > MAX_LINE_BYTES {
            self.reject(
                file,
                line_no,
                &line[..MAX_LINE_BYTES],
                RejectReason::MalformedRow,
                malformed_detail("line_too_long"),
            );
            return Ok(());
        }
        let fields = match split_fields(line, &mut self.scratch) {
            Ok(f) => f,
            Err(why) => {
                let detail = malformed_detail(why);
                self.reject(file, line_no, line, RejectReason::MalformedRow, detail);
                return Ok(());
            }
        };
        let f = RawFields::from_fields(fields);
        let mut event = match validate(&f, &self.rules) {
            Ok(e) => e,
            Err(r) => {
                let (reason, detail) = (r.reason, r.detail);
                self.reject(file, line_no, line, reason, detail);
                return Ok(());
            }
        };
        let issue = match (event.category_mangled, &self.repair) {
            (None, _) => None,
            (Some(_), None) => return self.deferred.push(file, line_no, line),
            (Some(printed), Some(known)) => {
                match known.repair(event.product_id, event.category_code, &printed) {
                    Some(id) => {
                        event.category_id = id;
                        Some(CATEGORY_ID_REPAIRED)
                    }
                    None => Some(CATEGORY_ID_UNKNOWN),
                }
            }
        };
        let slot = match self.last_day {
            Some((d, slot)) if d == event.event_date => slot,
            _ => {
                let (days, keys, staging, id) =
                    (&mut self.days, &mut self.keys, &self.staging, self.id);
                let seen = &self.seen;
                let slot = *self.day_index.entry(event.event_date).or_insert_with(|| {
                    days.push(DayOutput::new(staging, id, event.event_date));
                    keys.push(seen.day(event.event_date));
                    days.len() - 1
                });
                self.last_day = Some((event.event_date, slot));
                if !self.touched.contains(&slot) {
                    self.touched.push(slot);
                }
                slot
            }
        };
        let first_time = self.seen.insert(&self.keys[slot], identity(&f, &event).1)?;
        let day = &mut self.days[slot];
        if first_time {
            match issue {
                Some(CATEGORY_ID_REPAIRED) => self.totals.repaired += 1,
                Some(_) => self.totals.unknown_category += 1,
                None => {}
            }
            day.push(&event, issue, &self.props)
        } else {
            day.duplicates += 1;
            Ok(())
        }
    }

    fn reject(
        &mut self,
        file: usize,
        line: u64,
        text: &[u8],
        reason: RejectReason,
        detail: String,
    ) {
        *self.totals.rejected.entry(reason.code()).or_default() += 1;
        self.pending_rejects.push(Reject {
            file,
            line,
            reason: reason.code(),
            detail,
            raw_line: String::from_utf8_lossy(text).into_owned(),
        });
    }

    fn flush_rejects_if_full(&mut self) -> Result<(), ConvertError> {
        if self.pending_rejects.len() >= REJECT_BUFFER {
            self.flush_rejects()?;
        }
        Ok(())
    }

    fn flush_rejects(&mut self) -> Result<(), ConvertError> {
        if self.pending_rejects.is_empty() {
            return Ok(());
        }
        let mut sink = self
            .rejects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sink.write(self.pending_rejects.drain(..))
    }

    /// Keeps the encoded row groups in progress within the budget by writing out the largest.
    fn bound_memory(&mut self) -> Result<(), ConvertError> {
        loop {
            let total: usize = self.days.iter().map(DayOutput::buffered_bytes).sum();
            if total <= self.budget {
                return Ok(());
            }
            let largest = self
                .days
                .iter_mut()
                .max_by_key(|d| d.buffered_bytes())
                .expect("over budget means some day holds bytes");
            largest.flush_row_group()?;
        }
    }

    /// Closes every day file and returns the worker's counts.
    pub(crate) fn finish(mut self) -> Result<WorkerTotals, ConvertError> {
        self.flush_rejects()?;
        let mut totals = std::mem::take(&mut self.totals);
        totals.deferred = self.deferred.finish()?;
        for day in self.days.drain(..) {
            totals.days.push(day.finish(&self.props)?);
        }
        Ok(totals)
    }
}
