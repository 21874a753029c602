//! The reproducible sample: a row is kept when a seeded hash of its content falls below the
//! fraction.
//!
//! Why a content hash rather than a random generator: the draw must not depend on how the input
//! is split into batches or partitions (which varies with the number of threads), only on the
//! row and the seed, so the same seed draws the same rows on any machine. A consequence worth
//! knowing: identical rows hash alike, so exact duplicates are drawn (or not) together.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Name under which the sampling function is registered in SQL.
pub const SAMPLE_UNIT_FUNCTION: &str = "shoplake_profile_sample_unit";

/// Marks a null field in the hashed bytes (distinct from the empty string).
const NULL_MARK: u8 = 0x1e;
/// Separates fields in the hashed bytes.
const FIELD_SEPARATOR: u8 = 0x1f;

/// Where a row falls in [0, 1) for `seed`: xxh3-64 (seeded) of its fields as text, separated by
/// 0x1f, nulls written as 0x1e, scaled to [0, 1) from its top 53 bits.
pub fn unit_of(seed: u64, fields: &[Option<&str>]) -> f64 {
    let mut bytes = Vec::with_capacity(128);
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            bytes.push(FIELD_SEPARATOR);
        }
        match field {
            Some(text) => bytes.extend_from_slice(text.as_bytes()),
            None => bytes.push(NULL_MARK),
        }
    }
    let hash = xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, seed);
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// `shoplake_profile_sample_unit(seed, field, ...) -> DOUBLE`: [`unit_of`] in SQL. The seed is a
/// constant unsigned 64-bit integer, written as text (`'18446744073709551615'`) so that every
/// `u64` survives SQL literal parsing; fields of any type are hashed as their text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SampleUnit {
    signature: Signature,
}

impl SampleUnit {
    /// The function, ready to register.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(SampleUnit {
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for SampleUnit {
    fn name(&self) -> &str {
        SAMPLE_UNIT_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some((seed, fields)) = args.args.split_first() else {
            return exec_err!("{SAMPLE_UNIT_FUNCTION} needs a seed and at least one field");
        };
        let seed = match seed {
            ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Utf8)? {
                ScalarValue::Utf8(Some(text)) => match text.parse::<u64>() {
                    Ok(v) => v,
                    Err(_) => {
                        return exec_err!(
                            "{SAMPLE_UNIT_FUNCTION}: the seed '{text}' is not an unsigned 64-bit integer"
                        );
                    }
                },
                _ => return exec_err!("{SAMPLE_UNIT_FUNCTION}: the seed must not be null"),
            },
            ColumnarValue::Array(_) => {
                return exec_err!("{SAMPLE_UNIT_FUNCTION}: the seed must be a constant");
            }
        };
        let rows = args.number_rows;
        let texts: Vec<StringArray> = fields
            .iter()
            .map(|f| -> Result<StringArray> {
                let array: ArrayRef = f.to_array(rows)?;
                let text = cast(&array, &DataType::Utf8)?;
                Ok(text
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .cloned()
                    .unwrap_or_else(|| StringArray::new_null(rows)))
            })
            .collect::<Result<_>>()?;
        let mut row_fields: Vec<Option<&str>> = Vec::with_capacity(texts.len());
        let units: Float64Array = (0..rows)
            .map(|r| {
                row_fields.clear();
                row_fields.extend(texts.iter().map(|a| (!a.is_null(r)).then(|| a.value(r))));
                Some(unit_of(seed, &row_fields))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(units)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_stable_and_spread() {
        let a = unit_of(7, &[Some("a"), None, Some("")]);
        assert_eq!(a, unit_of(7, &[Some("a"), None, Some("")]));
        assert_ne!(a, unit_of(8, &[Some("a"), None, Some("")]));
        // Null and empty differ, and field boundaries matter.
        assert_ne!(unit_of(7, &[None]), unit_of(7, &[Some("")]));
        assert_ne!(
            unit_of(7, &[Some("ab"), Some("c")]),
            unit_of(7, &[Some("a"), Some("bc")])
        );
        let below = (0..10_000)
            .filter(|i| unit_of(1, &[Some(&i.to_string())]) < 0.25)
            .count();
        assert!((2_300..2_700).contains(&below), "{below}");
        assert!((0..1000).all(|i| (0.0..1.0).contains(&unit_of(3, &[Some(&i.to_string())]))));
    }
}
