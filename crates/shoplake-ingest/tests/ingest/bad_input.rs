//! Bad arguments give a clear error and leave the lake untouched; bad lines never stop an ingest.

use std::io::Write;
use std::path::{Path, PathBuf};

use shoplake_ingest::{IngestError, ingest_paths};
use shoplake_lake::{Lake, NoProgress, tables};
use shoplake_sql::SqlCatalog;

const HEADER: &str =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";
const GOOD: &str = "2020-04-01 00:00:03 UTC,view,1005115,2232732093077520756,electronics.smartphone,apple,1050.54,518197534,2f7b6d5e";

fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

async fn raw_exists(lake: &Lake) -> bool {
    lake.load(&tables::raw_events()).await.unwrap().is_some()
}

async fn assert_rejected(paths: Vec<PathBuf>, expect: &str) -> IngestError {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let err = ingest_paths(&lake, &paths, &NoProgress).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(expect), "message `{msg}` lacks `{expect}`");
    assert!(!msg.contains('\n'), "message is one line: {msg}");
    assert!(!raw_exists(&lake).await, "lake was touched");
    err
}

#[tokio::test]
async fn missing_empty_headerless_and_wrong_inputs_fail_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write(d, "good.csv", format!("{HEADER}\n{GOOD}\n").as_bytes());

    let e = assert_rejected(vec![good.clone(), d.join("nope.csv")], "cannot open").await;
    assert!(matches!(e, IngestError::Missing { .. }));
    assert_rejected(vec![write(d, "empty.csv", b"")], "is empty").await;
    assert_rejected(
        vec![write(
            d,
            "header-only.csv",
            format!("{HEADER}\n").as_bytes(),
        )],
        "no rows",
    )
    .await;
    let e = assert_rejected(
        vec![
            good.clone(),
            write(d, "wrong.csv", b"time,type,product\n1,2,3\n"),
        ],
        "wrong header",
    )
    .await;
    assert!(matches!(e, IngestError::WrongHeader { .. }));
    let empty_dir = d.join("nothing-here");
    std::fs::create_dir(&empty_dir).unwrap();
    write(&empty_dir, "notes.txt", b"hello");
    assert_rejected(vec![empty_dir], "no .csv or .csv.gz").await;
    assert_rejected(vec![], "no input").await;
    // A truncated gzip stream: the header reads, the rest does not; nothing is committed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..50_000 {
        writeln!(gz, "{GOOD}").unwrap();
    }
    let mut bytes = format!("{HEADER}\n").into_bytes();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&bytes).unwrap();
    bytes = enc.finish().unwrap();
    let body = gz.finish().unwrap();
    let mut whole = Vec::new();
    // Valid first member (the header), then a second member cut in half.
    whole.extend_from_slice(&bytes);
    whole.extend_from_slice(&body[..body.len() / 2]);
    assert_rejected(vec![write(d, "cut.csv.gz", &whole)], "cannot read").await;
}

#[tokio::test]
async fn malformed_lines_are_kept_with_line_number_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{HEADER}\n{GOOD}\nonly,three,fields\n{GOOD},extra\n2020-04-01 00:00:04 UTC,view,1,\u{0}2,x,y,1.00,5,s\n"
    );
    let mut bytes = body.into_bytes();
    bytes.extend_from_slice(b"2020-04-01 00:00:05 UTC,view,1,2,\xc3\x28,b,1.00,5,s\n");
    let path = write(dir.path(), "mixed.csv", &bytes);
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let report = ingest_paths(&lake, &[path], &NoProgress).await.unwrap();
    assert_eq!(report.rows(), 5);
    assert_eq!(report.malformed(), 3);
    let catalog = SqlCatalog::open(&lake).await.unwrap();
    let batches = catalog
        .sql("SELECT _line, _error, _raw_line IS NOT NULL, event_time IS NULL FROM raw.events WHERE _error IS NOT NULL ORDER BY _line")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = shoplake_lake::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    for expected in [
        "| 3     | wrong_field_count",
        "| 4     | wrong_field_count",
        "| 6     | invalid_utf8",
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }
}

#[tokio::test]
async fn gzip_and_plain_files_land_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = format!("{HEADER}\n");
    for i in 0..1000 {
        body.push_str(&format!(
            "2020-04-0{} 00:00:{:02} UTC,view,{i},2232732093077520756,,,1.00,5,s{i}\n",
            1 + i % 3,
            i % 60
        ));
    }
    let plain = write(dir.path(), "a.csv", body.as_bytes());
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body.as_bytes()).unwrap();
    let gz = write(dir.path(), "a.csv.gz", &enc.finish().unwrap());
    for (name, path) in [("plain", plain), ("gzip", gz)] {
        let lake = Lake::open(dir.path().join(name).to_str().unwrap()).unwrap();
        let report = ingest_paths(&lake, &[path], &NoProgress).await.unwrap();
        assert_eq!(report.rows(), 1000, "{name}");
        let catalog = SqlCatalog::open(&lake).await.unwrap();
        let batches = catalog
            .sql("SELECT event_date, COUNT(*) AS n FROM raw.events GROUP BY 1 ORDER BY 1")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = shoplake_lake::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        for day in ["2020-04-01 | 334", "2020-04-02 | 333", "2020-04-03 | 333"] {
            assert!(text.contains(day), "{name}: {day} not in\n{text}");
        }
    }
}

#[tokio::test]
async fn the_same_export_compressed_differently_is_ingested_once() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!("{HEADER}\n{GOOD}\n{GOOD}\n");
    let plain = write(dir.path(), "x.csv", body.as_bytes());
    let mut fast = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    fast.write_all(body.as_bytes()).unwrap();
    let gz = write(dir.path(), "x.csv.gz", &fast.finish().unwrap());
    let mut best = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    best.write_all(body.as_bytes()).unwrap();
    let gz_best = write(dir.path(), "again.csv.gz", &best.finish().unwrap());

    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let first = ingest_paths(&lake, &[plain], &NoProgress).await.unwrap();
    assert_eq!(first.rows(), 2);
    let again = ingest_paths(&lake, &[gz, gz_best], &NoProgress)
        .await
        .unwrap();
    assert_eq!(again.rows(), 0);
    assert!(again.files.iter().all(|f| matches!(
        f,
        shoplake_ingest::files::FileOutcome::AlreadyIngested { .. }
    )));
    let catalog = SqlCatalog::open(&lake).await.unwrap();
    let n = catalog
        .sql("SELECT COUNT(*) FROM raw.events")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = shoplake_lake::arrow::util::pretty::pretty_format_batches(&n)
        .unwrap()
        .to_string();
    assert!(text.contains("| 2 "), "{text}");
}

#[tokio::test]
async fn lines_without_dates_and_overlong_lines_are_kept_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(shoplake_ingest::files::MAX_LINE_BYTES + 10);
    let body = format!("{HEADER}\nno date here\n{long}\nstill nothing\n");
    let path = write(dir.path(), "undated.csv", body.as_bytes());
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let report = ingest_paths(&lake, &[path], &NoProgress).await.unwrap();
    assert_eq!((report.rows(), report.malformed()), (3, 3));
    let catalog = SqlCatalog::open(&lake).await.unwrap();
    let batches = catalog
        .sql("SELECT _line, _error, CAST(event_date AS VARCHAR) AS d, length(_raw_line) AS len FROM raw.events ORDER BY _line")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = shoplake_lake::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    // A file without any date goes to 1970-01-01; the long line keeps its first 1 MiB.
    for expected in [
        "| 2     | wrong_field_count | 1970-01-01 | 12      |",
        "| 3     | line_too_long     | 1970-01-01 | 1048576 |",
        "| 4     | wrong_field_count | 1970-01-01 | 13      |",
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }
}
