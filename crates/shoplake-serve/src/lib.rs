//! Serving the lake to the company.
//!
//! - [`reports`]: the seven BI reports of the original design (funnel, products, sessions,
//!   categories and brands, trends, prices, users), computed from the `model.mart_*` tables
//!   that `shoplake run` maintains by day, over any range of days, with category and brand
//!   filters. `shoplake report` and the JSON API call the same code, so they cannot disagree.
//! - [`http`]: `shoplake serve`: the dashboard (a page with Apache ECharts, embedded in the
//!   binary), the JSON API of every report, `/healthz` and Prometheus `/metrics`.
//! - [`pg`]: `shoplake serve --pg`: the lake over the PostgreSQL wire protocol, read-only,
//!   with [`users`] and their roles, over [`tls`] when a certificate is given.

#![deny(missing_docs)]

pub mod http;
pub mod pg;
pub mod reports;
pub mod tls;
pub mod users;
