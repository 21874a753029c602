//! The BI marts, `model.mart_*`: small tables of the day's figures that the reports combine
//! over any range of days (see `shoplake-serve`'s reports).
//!
//! The day marts (funnel, hours, products, users) are folded from the day's fact rows while
//! they are in memory, and replace that day's partition beside the fact: a mart row never
//! disagrees with the fact after a run, and only the rebuilt days are recomputed. The
//! sessions mart follows `model.dim_sessions` (a session that crosses midnight belongs to the
//! day it starts, and changes with either day), so it is rebuilt with the dimensions
//! ([`sessions`]). The month marts add the user and product day marts up by calendar month,
//! rebuilt by every run from the day marts ([`months`]).

pub mod day;
pub mod months;
pub mod sessions;

pub use day::{DayMarts, day_marts};
