//! The row accounting every run, check and conversion must satisfy: each raw row is a clean
//! row, a duplicate removed, or a rejected row, so raw = clean + duplicates + rejected. Of
//! the clean rows, some may have had their category id repaired, or lost (unknown).

use std::fmt;
use std::ops::AddAssign;

use serde::Serialize;

/// Where a set of raw rows went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Raw rows read.
    pub raw: u64,
    /// Rows kept, typed and distinct.
    pub clean: u64,
    /// Valid rows dropped as exact duplicates of a kept row.
    pub duplicates: u64,
    /// Rows quarantined with a reason.
    pub rejected: u64,
    /// Clean rows whose category id a spreadsheet mangled and that was repaired.
    pub repaired: u64,
    /// Clean rows whose category id a spreadsheet mangled beyond repair.
    pub unknown_category: u64,
}

impl Accounting {
    /// Whether raw = clean + duplicates + rejected, the repaired and unknown rows being part
    /// of the clean ones.
    pub fn balances(&self) -> bool {
        self.clean
            .checked_add(self.duplicates)
            .and_then(|n| n.checked_add(self.rejected))
            == Some(self.raw)
            && self
                .repaired
                .checked_add(self.unknown_category)
                .is_some_and(|n| n <= self.clean)
    }
}

impl AddAssign for Accounting {
    fn add_assign(&mut self, other: Accounting) {
        self.raw += other.raw;
        self.clean += other.clean;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.repaired += other.repaired;
        self.unknown_category += other.unknown_category;
    }
}

impl std::iter::Sum for Accounting {
    fn sum<I: Iterator<Item = Accounting>>(iter: I) -> Self {
        let mut total = Accounting::default();
        for a in iter {
            total += a;
        }
        total
    }
}

impl fmt::Display for Accounting {
    /// `raw 10 = clean 7 + duplicates 1 + rejected 2` (`!=` when it does not balance), then
    /// `(category id repaired 3, unknown 1)` when some were.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sums = self
            .clean
            .checked_add(self.duplicates)
            .and_then(|n| n.checked_add(self.rejected))
            == Some(self.raw);
        write!(
            f,
            "raw {} {} clean {} + duplicates {} + rejected {}",
            self.raw,
            if sums { "=" } else { "!=" },
            self.clean,
            self.duplicates,
            self.rejected
        )?;
        if self.repaired > 0 || self.unknown_category > 0 {
            write!(
                f,
                " (category id repaired {}, unknown {})",
                self.repaired, self.unknown_category
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_and_says_so() {
        let a = Accounting {
            raw: 10,
            clean: 7,
            duplicates: 1,
            rejected: 2,
            ..Accounting::default()
        };
        assert!(a.balances());
        assert_eq!(
            a.to_string(),
            "raw 10 = clean 7 + duplicates 1 + rejected 2"
        );
        let b = Accounting { raw: 11, ..a };
        assert!(!b.balances());
        assert_eq!(
            b.to_string(),
            "raw 11 != clean 7 + duplicates 1 + rejected 2"
        );
        let overflow = Accounting {
            raw: 0,
            clean: u64::MAX,
            duplicates: 1,
            ..Accounting::default()
        };
        assert!(!overflow.balances());
        let total: Accounting = [a, a].into_iter().sum();
        assert_eq!(total.raw, 20);
        assert!(total.balances());
        let repaired = Accounting {
            repaired: 3,
            unknown_category: 1,
            ..a
        };
        assert!(repaired.balances());
        assert_eq!(
            repaired.to_string(),
            "raw 10 = clean 7 + duplicates 1 + rejected 2 (category id repaired 3, unknown 1)"
        );
        assert!(!Accounting { repaired: 8, ..a }.balances());
    }
}
