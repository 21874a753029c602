//! The row accounting every run, check and conversion must satisfy: each raw row is a clean
//! row, a duplicate removed, or a rejected row, so raw = clean + duplicates + rejected.

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
}

impl Accounting {
    /// Whether raw = clean + duplicates + rejected.
    pub fn balances(&self) -> bool {
        self.clean
            .checked_add(self.duplicates)
            .and_then(|n| n.checked_add(self.rejected))
            == Some(self.raw)
    }
}

impl AddAssign for Accounting {
    fn add_assign(&mut self, other: Accounting) {
        self.raw += other.raw;
        self.clean += other.clean;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
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
    /// `raw 10 = clean 7 + duplicates 1 + rejected 2` (`!=` when it does not balance).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "raw {} {} clean {} + duplicates {} + rejected {}",
            self.raw,
            if self.balances() { "=" } else { "!=" },
            self.clean,
            self.duplicates,
            self.rejected
        )
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
            rejected: 0,
        };
        assert!(!overflow.balances());
        let total: Accounting = [a, a].into_iter().sum();
        assert_eq!(total.raw, 20);
        assert!(total.balances());
    }
}
