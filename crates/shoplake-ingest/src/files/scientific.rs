//! Numbers in scientific notation, as a spreadsheet saves them: an export opened and saved in
//! a spreadsheet carries every 19-digit `category_id` as `2.05301E+18` (a spreadsheet keeps
//! 15 significant digits, and prints fewer), so the id is lost; 7-9 digit product and user
//! ids survive. This reads such a number exactly as written, to tell which ids round to it.

/// A decimal number written as `M.FFFFE±X` (or `ME±X`): the digits of its mantissa as one
/// integer, and the power of ten of the last digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scientific {
    /// The mantissa's digits, the point removed (`2.05301` -> 205301).
    pub digits: i128,
    /// The power of ten of the last digit (`2.05301E+18` -> 13).
    pub exponent: i32,
    /// Whether it is negative.
    pub negative: bool,
}

impl Scientific {
    /// Reads `text` when it is a number in scientific notation (an `E` or `e` and an
    /// exponent are required; a plain integer is not scientific).
    pub fn parse(text: &str) -> Option<Scientific> {
        let text = text.trim();
        let (mantissa, exponent) = text.split_once(['E', 'e'])?;
        let (negative, mantissa) = match mantissa.as_bytes().first()? {
            b'-' => (true, &mantissa[1..]),
            b'+' => (false, &mantissa[1..]),
            _ => (false, mantissa),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        // Up to 30 digits fit an i128 with room to spare; a spreadsheet writes at most 15.
        if whole.len() + fraction.len() > 30 {
            return None;
        }
        let exponent: i32 = exponent
            .strip_prefix('+')
            .unwrap_or(exponent)
            .parse()
            .ok()?;
        let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
        Some(Scientific {
            digits,
            exponent: exponent.checked_sub(i32::try_from(fraction.len()).ok()?)?,
            negative,
        })
    }

    /// Whether `value` prints as this number: rounded to its precision (half away from
    /// zero), either as the integer it is or as the nearest double, which is what a
    /// spreadsheet or a dataframe library holds and prints (`2053013555631882655` is the
    /// double 2053013555631882752, printed `2.0530135556318828e+18`).
    pub fn rounds_from(&self, value: i64) -> bool {
        self.rounds_from_integer(i128::from(value))
            || self.rounds_from_integer((value as f64) as i128)
    }

    fn rounds_from_integer(&self, value: i128) -> bool {
        if (value < 0) != self.negative && value != 0 {
            return false;
        }
        let magnitude = value.abs();
        if self.exponent <= 0 {
            // The number has as many digits as the integer, or more: equal, or not at all.
            let Some(scale) = 10i128.checked_pow(self.exponent.unsigned_abs()) else {
                return false;
            };
            return magnitude.checked_mul(scale) == Some(self.digits);
        }
        let Some(unit) = 10i128.checked_pow(self.exponent.unsigned_abs()) else {
            return false;
        };
        (magnitude + unit / 2) / unit == self.digits
    }
}

/// [`is_scientific`] as a SQL regular expression (`regexp_like(column, SCIENTIFIC_SQL)`).
pub const SCIENTIFIC_SQL: &str = r"^\s*[+-]?[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+\s*$";

/// Whether `text` is a number in scientific notation (see [`Scientific::parse`]).
pub fn is_scientific(text: &str) -> bool {
    // Most values have no E at all: that is decided without parsing.
    text.bytes().any(|b| b == b'E' || b == b'e') && Scientific::parse(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_a_spreadsheet_writes() {
        let s = Scientific::parse("2.05301E+18").unwrap();
        assert_eq!((s.digits, s.exponent, s.negative), (205301, 13, false));
        let s = Scientific::parse("2E18").unwrap();
        assert_eq!((s.digits, s.exponent), (2, 18));
        let s = Scientific::parse("1.5e-2").unwrap();
        assert_eq!((s.digits, s.exponent), (15, -3));
        let s = Scientific::parse("-3.1E+05").unwrap();
        assert!(s.negative);
        for not in [
            "2053013552226107603",
            "",
            "E+18",
            "2.0E",
            "2.0E+x",
            "2.x5E+3",
            "1,5E+3",
            "nan",
        ] {
            assert_eq!(Scientific::parse(not), None, "{not}");
            assert!(!is_scientific(not), "{not}");
        }
        assert!(is_scientific("2.05301E+18"));
    }

    #[test]
    fn an_id_rounds_to_the_printed_value_or_not() {
        let s = Scientific::parse("2.05301E+18").unwrap();
        assert!(s.rounds_from(2_053_013_552_226_107_603));
        // The ends of the interval that prints as 2.05301E+18: half away from zero.
        assert!(s.rounds_from(2_053_005_000_000_000_000));
        // Below it, but its nearest double is 2053005000000000000, which does.
        assert!(s.rounds_from(2_053_004_999_999_999_999));
        // Below it, as is its nearest double (2053004999999999744).
        assert!(!s.rounds_from(2_053_004_999_999_999_871));
        assert!(s.rounds_from(2_053_014_999_999_999_999));
        assert!(!s.rounds_from(2_053_015_000_000_000_000));
        assert!(!s.rounds_from(-2_053_013_552_226_107_603));
        // Fifteen digits, as a spreadsheet keeps them.
        let s = Scientific::parse("2.05301355222611E+18").unwrap();
        assert!(s.rounds_from(2_053_013_552_226_107_603));
        assert!(!s.rounds_from(2_053_013_552_226_207_603));
        // A mantissa with more digits than the integer: only the exact value.
        let s = Scientific::parse("1.25E+1").unwrap();
        assert!(!s.rounds_from(12) && !s.rounds_from(13));
        let s = Scientific::parse("1.2E+1").unwrap();
        assert!(s.rounds_from(12));
        let s = Scientific::parse("1E+400").unwrap();
        assert!(!s.rounds_from(i64::MAX));
        // As a dataframe library prints the double of the id (17 digits).
        let s = Scientific::parse("2.0530135556318828e+18").unwrap();
        assert!(s.rounds_from(2_053_013_555_631_882_655));
        assert!(!s.rounds_from(2_053_013_555_631_892_655));
        // As a spreadsheet keeps 15 digits of the double: 2053013552226104999 is the double
        // 2053013552226105088, which rounds up where the integer rounds down.
        let s = Scientific::parse("2.05301355222611E+18").unwrap();
        assert!(s.rounds_from(2_053_013_552_226_104_999));
    }
}
