//! `sessions`: sessions per user, average and median session duration and events per
//! session, with their distributions. Sessions are counted on the day they start; every median
//! is exact (the middle of the exact counts of each value over the range).

use super::{ReportError, Scope, Table, store_wide};

/// The exact median of a weighted set `(v, n)` given as a query: the middle value, or the
/// mean of the two middle values when the weights add up to an even number.
fn median(values: &str) -> String {
    format!(
        "(SELECT (MIN(v) FILTER (WHERE cum >= (total + 1) / 2)
                + MIN(v) FILTER (WHERE cum >= total / 2 + 1)) / 2.0
          FROM (SELECT v, SUM(n) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
                       SUM(n) OVER () AS total
                FROM ({values})))"
    )
}

/// `(label, low, high)` buckets: `low <= v < high` (`high` None: no upper end).
fn buckets_sql(value: &str, buckets: &[(&str, i64, Option<i64>)]) -> String {
    let cases: Vec<String> = buckets
        .iter()
        .enumerate()
        .map(|(i, (label, low, high))| {
            let upper = high
                .map(|h| format!(" AND {value} < {h}"))
                .unwrap_or_default();
            format!("WHEN {value} >= {low}{upper} THEN '{i:02} {label}'")
        })
        .collect();
    format!("CASE {} END", cases.join(" "))
}

pub(super) async fn build(scope: &Scope<'_>) -> Result<(Vec<Table>, Vec<String>), ReportError> {
    let days = scope.days();
    let measure = |m: &str| format!("model.mart_session_daily WHERE {days} AND measure = '{m}'");
    let durations = format!(
        "SELECT value AS v, SUM(sessions) AS n FROM {} GROUP BY value",
        measure("duration_seconds")
    );
    let depths = format!(
        "SELECT value AS v, SUM(sessions) AS n FROM {} GROUP BY value",
        measure("events")
    );
    // Distinct users over the range.
    let users = scope.distinct_users(None);
    let summary = format!(
        "WITH d AS (SELECT SUM(sessions) AS sessions, SUM(sessions * value) AS seconds
                    FROM {}),
              e AS (SELECT SUM(sessions * value) AS events FROM {}),
              u AS (SELECT {users} AS users)
         SELECT d.sessions, u.users,
                round(d.sessions * 1.0 / NULLIF(u.users, 0), 3) AS sessions_per_user,
                round(d.seconds * 1.0 / NULLIF(d.sessions, 0), 1) AS avg_duration_seconds,
                {} AS median_duration_seconds,
                round(e.events * 1.0 / NULLIF(d.sessions, 0), 3) AS avg_events_per_session,
                {} AS median_events_per_session
         FROM d, e, u",
        measure("duration_seconds"),
        measure("events"),
        median(&durations),
        median(&depths),
    );
    let duration_buckets = buckets_sql(
        "value",
        &[
            ("0 s (one event)", 0, Some(1)),
            ("1-59 s", 1, Some(60)),
            ("1-5 min", 60, Some(300)),
            ("5-15 min", 300, Some(900)),
            ("15-60 min", 900, Some(3600)),
            ("1 h and more", 3600, None),
        ],
    );
    let depth_buckets = buckets_sql(
        "value",
        &[
            ("1 event", 1, Some(2)),
            ("2-3 events", 2, Some(4)),
            ("4-7 events", 4, Some(8)),
            ("8-15 events", 8, Some(16)),
            ("16 events and more", 16, None),
        ],
    );
    let distribution = |bucket: &str, from: &str, weight: &str| {
        format!(
            "SELECT substr(b, 4) AS bucket, n AS count,
                    round(100.0 * n / NULLIF(SUM(n) OVER (), 0), 2) AS share_pct
             FROM (SELECT {bucket} AS b, SUM({weight}) AS n FROM {from} GROUP BY 1)
             ORDER BY b"
        )
    };
    let tables = vec![
        scope
            .table("summary", "Sessions and users", &summary)
            .await?,
        scope
            .table(
                "by_duration",
                "Sessions by duration",
                &distribution(&duration_buckets, &measure("duration_seconds"), "sessions"),
            )
            .await?,
        scope
            .table(
                "by_events",
                "Sessions by events",
                &distribution(&depth_buckets, &measure("events"), "sessions"),
            )
            .await?,
    ];
    let mut notes = vec![
        "A session is counted on the day it starts; its duration is from its first event to its last (0 for a session of one event).".to_string(),
        "Medians are exact: the middle of every session's value over the range, the mean of the two middle ones for an even count. Sessions per user are the sessions started in the range over the distinct users active in it.".to_string(),
    ];
    notes.extend(store_wide(scope, "Sessions"));
    Ok((tables, notes))
}
