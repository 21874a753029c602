//! `/metrics` in Prometheus' text format (requests by route and status, their latencies, the
//! lake version requests read), and the middleware that counts requests and checks who asks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::{Credentials, Refusal};
use shoplake_sql::SqlCatalog;

use super::api::{ApiError, lake_version};

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Latency {
    /// Requests at or under each bound of [`BUCKETS`].
    buckets: [u64; 11],
    count: u64,
    sum: f64,
}

/// The requests `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Latency>>,
}

impl Metrics {
    fn record(&self, route: &str, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry((route.to_string(), status)).or_default() += 1;
        drop(requests);
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let l = latency.entry(route.to_string()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                l.buckets[i] += 1;
            }
        }
        l.count += 1;
        l.sum += seconds;
    }

    /// The metrics in Prometheus' text format, with `version`, the fact table's version the
    /// lake holds now.
    pub fn render(&self, version: i64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP shoplake_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE shoplake_http_requests_total counter");
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((route, status), n) in &requests {
            let _ = writeln!(
                out,
                "shoplake_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP shoplake_http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(
            out,
            "# TYPE shoplake_http_request_duration_seconds histogram"
        );
        let latency = self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (route, l) in &latency {
            let route = escape(route);
            for (bound, n) in BUCKETS.iter().zip(l.buckets) {
                let _ = writeln!(
                    out,
                    "shoplake_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "shoplake_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                l.count
            );
            let _ = writeln!(
                out,
                "shoplake_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                l.sum
            );
            let _ = writeln!(
                out,
                "shoplake_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                l.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP shoplake_lake_version The version of model.fact_user_events that requests read now (-1: not built)."
        );
        let _ = writeln!(out, "# TYPE shoplake_lake_version gauge");
        let _ = writeln!(out, "shoplake_lake_version {version}");
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `GET /metrics`. The lake's version is read here, when scraped, not on every report.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let version = match SqlCatalog::open(&state.lake).await {
        Ok(catalog) => lake_version(&catalog).await,
        Err(_) => -1,
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(version),
    )
        .into_response()
}

/// Checks who asks (all but `/healthz`: see `auth`), then counts the request and its time.
pub(crate) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let credentials = Credentials::of(&request);
    let response = match state.guard.admit(&route, &credentials).await {
        Ok(_) => next.run(request).await,
        Err(Refusal {
            status,
            message,
            challenge,
        }) => {
            let mut response = ApiError { status, message }.into_response();
            if let Some(challenge) = challenge {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge);
            }
            response
        }
    };
    state.metrics.record(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
