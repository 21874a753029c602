//! A staged dimension: a Parquet file in its table's schema in the scratch directory, read
//! back by the dimension's checks and its write (written even when empty, so that it can be
//! read back).

use std::fs::File;
use std::path::Path;

use shoplake_lake::arrow::array::RecordBatch;
use shoplake_lake::datafusion::parquet::arrow::ArrowWriter;
use shoplake_lake::datafusion::parquet::file::properties::WriterProperties;
use shoplake_lake::tables::TableDef;

use super::scratch_error;
use crate::error::Result;

/// Rows per batch of the spilled day files and of the staged dimensions.
pub(super) const CHUNK: usize = 16 * 1024;

pub(super) struct Staging {
    writer: ArrowWriter<File>,
}

impl Staging {
    pub(super) fn create(def: &TableDef, path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| scratch_error(path, e))?;
        // Read once, by this run: no dictionaries (session ids are all distinct) and no
        // compression.
        let properties = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .build();
        Ok(Staging {
            writer: ArrowWriter::try_new(file, def.arrow_schema(), Some(properties))?,
        })
    }

    pub(super) fn write(&mut self, batch: RecordBatch) -> Result<()> {
        Ok(self.writer.write(&batch)?)
    }

    pub(super) fn close(self) -> Result<()> {
        self.writer.close()?;
        Ok(())
    }
}
