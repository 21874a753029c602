//! `convert`, the reduced job without a lake: its output is checked against the hand-made
//! fixture's known outcome and, row for row, against what `ingest` + `run` publish from the
//! same input (a different code path: Delta, DataFusion DISTINCT, the fact table's columns).

use std::path::{Path, PathBuf};

use crate::common::*;
use shoplake_ingest::generate::{GenerateOptions, generate_to_path};
use shoplake_lake::NoProgress;
use shoplake_lake::datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shoplake_pipeline::convert::{
    ConvertError, ConvertOptions, ConvertReport, REJECTS_FILE, REPORT_FILE, convert,
};

fn options(inputs: &[PathBuf], out: &Path, workers: usize) -> ConvertOptions {
    let mut o = ConvertOptions::new(inputs.to_vec(), out.to_path_buf());
    o.workers = workers;
    o
}

fn run_convert(inputs: &[PathBuf], out: &Path, workers: usize) -> ConvertReport {
    convert(&options(inputs, out, workers), &NoProgress).unwrap()
}

/// Every output row as `date|event_time|...|day_of_week`, sorted; the date from the path.
fn parquet_rows(out: &Path) -> Vec<String> {
    let mut all = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let date = name
            .strip_prefix("event_date=")
            .expect("hive partition name");
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
            let batches: Vec<_> = reader.map(Result::unwrap).collect();
            all.extend(lines(&batches).into_iter().map(|l| format!("{date}|{l}")));
        }
    }
    all.sort();
    all
}

/// The same columns from the lake's fact table (and `clean.events.data_issue`).
async fn fact_rows(inputs: &[PathBuf], dir: &Path) -> Vec<String> {
    let lake = lake_in(dir);
    ingest(&lake, inputs).await;
    run_incremental(&lake).await;
    let mut out = rows(
        &lake,
        "SELECT f.event_date, f.event_time, f.event_type, f.product_id, f.category_id, \
         f.category_code, f.brand, f.price, f.user_id, f.session_id, f.hour_of_day, \
         f.day_of_week, c.data_issue \
         FROM model.fact_user_events f JOIN clean.events c ON c.event_id = f.event_id",
    )
    .await;
    out.sort();
    out
}

fn rejects(out: &Path) -> Vec<(u64, String)> {
    let mut reader = csv::Reader::from_path(out.join(REJECTS_FILE)).unwrap();
    let mut all: Vec<(u64, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[1].parse().unwrap(), r[2].to_string())
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn fixture_converts_to_what_the_pipeline_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = run_convert(&[fixture()], &out, 2);

    // Known from tests/fixtures/README.md: 28 = 13 clean + 3 duplicates + 12 rejected.
    assert_eq!(
        (
            report.lines,
            report.rows,
            report.duplicates,
            report.rejected
        ),
        (28, 13, 3, 12)
    );
    let per_day: Vec<_> = report
        .days
        .iter()
        .map(|d| (d.date.to_string(), d.rows, d.duplicates))
        .collect();
    assert_eq!(
        per_day,
        vec![("2020-04-01".into(), 8, 2), ("2020-04-02".into(), 5, 1)]
    );
    let expected_rejects: Vec<(u64, String)> = [
        (7, "non_positive_price"),
        (8, "null_session"),
        (9, "unknown_event_type"),
        (10, "bad_timestamp"),
        (11, "bad_product_id"),
        (12, "non_positive_price"),
        (13, "malformed_row"),
        (14, "bad_price"),
        (20, "malformed_row"),
        (27, "malformed_row"),
        (28, "bad_user_id"),
        (29, "bad_category_id"),
    ]
    .iter()
    .map(|(l, r)| (*l, r.to_string()))
    .collect();
    assert_eq!(rejects(&out), expected_rejects);
    assert_eq!(report.rejected_by_reason["malformed_row"], 3);
    assert_eq!(report.rejected_by_reason["non_positive_price"], 2);

    // Row for row what ingest + run publish in the fact table.
    let converted = parquet_rows(&out);
    assert_eq!(converted.len(), 13);
    assert_eq!(converted, fact_rows(&[fixture()], dir.path()).await);
    // The quoted category code lost its quotes, empty brands became `unknown`, hour and
    // ISO weekday were added (2020-04-01 was a Wednesday).
    assert!(
        converted
            .iter()
            .any(|r| r.starts_with("2020-04-01|2020-04-01T23:59:30Z|view|")
                && r.ends_with("|23|3|NULL")),
        "{converted:#?}"
    );
    assert!(converted.iter().any(|r| r.contains("|unknown|unknown|")));

    // The report on disk is the one returned.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(saved["rows"], 13);
    assert_eq!(saved["rejected_by_reason"]["bad_price"], 1);
}

#[tokio::test]
async fn a_generated_export_read_in_many_chunks_matches_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv.gz");
    let generated = generate_to_path(
        &GenerateOptions {
            rows: 40_000,
            days: 3,
            ..GenerateOptions::default()
        },
        &input,
        &mut |_| {},
    )
    .unwrap();
    assert!(generated.duplicates > 0);
    let out = dir.path().join("out");
    let mut o = options(std::slice::from_ref(&input), &out, 3);
    o.chunk_bytes = 1; // the smallest buffer: a chunk per MiB of text
    let report = convert(&o, &NoProgress).unwrap();
    assert_eq!(report.lines, 40_000);
    assert_eq!(report.rows + report.duplicates + report.rejected, 40_000);
    assert!(report.duplicates >= generated.duplicates, "{report:?}");
    assert_eq!(report.days.len(), 3);

    let lake_dir = dir.path().join("lake-side");
    std::fs::create_dir_all(&lake_dir).unwrap();
    let lake = lake_in(&lake_dir);
    ingest(&lake, std::slice::from_ref(&input)).await;
    let run = run_incremental(&lake).await;
    let lake_days: Vec<_> = run
        .days
        .iter()
        .map(|d| (d.date, d.rows.clean, d.rows.duplicates))
        .collect();
    let convert_days: Vec<_> = report
        .days
        .iter()
        .map(|d| (d.date, d.rows, d.duplicates))
        .collect();
    assert_eq!(convert_days, lake_days);
    assert_eq!(
        report.rejected,
        count(&lake, "SELECT COUNT(*) FROM clean.rejects").await as u64
    );
    let mut fact = rows(
        &lake,
        "SELECT f.event_date, f.event_time, f.event_type, f.product_id, f.category_id, \
         f.category_code, f.brand, f.price, f.user_id, f.session_id, f.hour_of_day, \
         f.day_of_week, c.data_issue \
         FROM model.fact_user_events f JOIN clean.events c ON c.event_id = f.event_id",
    )
    .await;
    fact.sort();
    assert_eq!(parquet_rows(&out), fact);

    // The same lines shuffled, with a key budget so small that every day but the current
    // one moves to disk and late rows bring days back: still exactly the same rows.
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&input).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let mut body: Vec<&str> = text.lines().skip(1).collect();
    // A fixed permutation: interleave from both ends, then blocks out of order.
    let mut shuffled = Vec::with_capacity(body.len());
    while !body.is_empty() {
        shuffled.push(body.remove(0));
        if let Some(last) = body.pop() {
            shuffled.push(last);
        }
    }
    let shuffled_file = write_file(
        dir.path(),
        "shuffled.csv",
        format!("{HEADER}\n{}\n", shuffled.join("\n")).as_bytes(),
    );
    let out2 = dir.path().join("out-shuffled");
    let mut o = options(&[shuffled_file], &out2, 2);
    o.chunk_bytes = 1;
    o.key_memory = 1;
    let shuffled_report = convert(&o, &NoProgress).unwrap();
    assert!(shuffled_report.key_days_spilled > 0, "{shuffled_report:?}");
    assert!(
        shuffled_report.key_files_reloaded > 0,
        "{shuffled_report:?}"
    );
    assert_eq!(
        (
            shuffled_report.rows,
            shuffled_report.duplicates,
            shuffled_report.rejected
        ),
        (report.rows, report.duplicates, report.rejected)
    );
    assert_eq!(parquet_rows(&out2), fact);
}

#[test]
fn line_endings_overlong_lines_and_gzip_do_not_change_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let good = |s: u32| format!("2020-04-01 10:00:{s:02} UTC,view,1,2,a.b,brand,9.99,7,sess-{s}");
    let huge = format!(
        "2020-04-01 10:00:00 UTC,view,1,2,{},b,1.00,7,s",
        "x".repeat(1_500_000)
    );
    // CRLF endings, a 1.5 MB line, a blank line, and no line break at the end.
    let body = format!(
        "{HEADER}\r\n{}\r\n{huge}\r\n{}\r\n\r\n{}",
        good(1),
        good(2),
        good(3)
    );
    let plain = write_file(dir.path(), "a.csv", body.as_bytes());
    let gz = dir.path().join("a.csv.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(body.as_bytes()).unwrap();
        e.finish().unwrap();
    }
    for (input, chunk_bytes) in [(&plain, 4 << 20), (&plain, 1), (&gz, 1)] {
        let out = dir.path().join(format!("out-{chunk_bytes}"));
        let mut o = options(std::slice::from_ref(input), &out, 2);
        o.chunk_bytes = chunk_bytes;
        o.overwrite = true;
        let r = convert(&o, &NoProgress).unwrap();
        assert_eq!(
            (r.lines, r.rows, r.rejected),
            (5, 3, 2),
            "{input:?} {chunk_bytes}"
        );
        assert_eq!(
            rejects(&out),
            vec![
                (3, "malformed_row".to_string()),
                (5, "malformed_row".to_string())
            ]
        );
        let rows = parquet_rows(&out);
        assert_eq!(rows.len(), 3);
        assert!(rows[2].ends_with("|9.99|7|sess-3|10|3|NULL"), "{rows:?}");
        let detail = std::fs::read_to_string(out.join(REJECTS_FILE)).unwrap();
        assert!(detail.contains("line_too_long"));
        assert!(detail.contains("wrong_field_count"));
    }
}

#[test]
fn duplicates_are_dropped_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let line = "2020-04-02 08:00:00 UTC,cart,5,6,,,12.50,9,s9";
    let a = write_file(
        dir.path(),
        "a.csv",
        format!("{HEADER}\n{line}\n{line}\n").as_bytes(),
    );
    let b = write_file(
        dir.path(),
        "b.csv",
        format!("{HEADER}\n{line}\n2020-04-02 08:00:01 UTC,cart,5,6,,,12.50,9,s9\n").as_bytes(),
    );
    let out = dir.path().join("out");
    let r = run_convert(&[a, b], &out, 2);
    assert_eq!((r.lines, r.rows, r.duplicates, r.rejected), (4, 2, 2, 0));
    assert_eq!(parquet_rows(&out).len(), 2);
    // No rejects: the file holds only its header.
    assert_eq!(
        std::fs::read_to_string(out.join(REJECTS_FILE))
            .unwrap()
            .trim(),
        "file,line,reason,detail,raw_line"
    );
}

#[test]
fn existing_output_is_replaced_only_when_asked_and_leftovers_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "old").unwrap();
    let err = convert(&options(&[fixture()], &out, 1), &NoProgress).unwrap_err();
    assert!(matches!(err, ConvertError::Exists(_)), "{err}");
    assert!(err.to_string().contains("--overwrite"));
    assert!(out.join("keep.txt").exists());

    // A killed conversion leaves a staging directory behind; the next one starts afresh.
    let staging = dir.path().join(".out.partial");
    std::fs::create_dir_all(staging.join("event_date=1999-01-01")).unwrap();
    std::fs::write(
        staging.join("event_date=1999-01-01/part-000.parquet"),
        "junk",
    )
    .unwrap();
    let mut o = options(&[fixture()], &out, 1);
    o.overwrite = true;
    let r = convert(&o, &NoProgress).unwrap();
    assert_eq!(r.rows, 13);
    assert!(!out.join("keep.txt").exists());
    assert!(!staging.exists());
    assert_eq!(parquet_rows(&out).len(), 13);
    let again = convert(&o, &NoProgress).unwrap();
    assert_eq!((again.rows, again.duplicates), (13, 3));

    // A bad input fails before anything is written.
    let missing = dir.path().join("nope.csv");
    let out2 = dir.path().join("out2");
    let err = convert(&options(&[missing], &out2, 1), &NoProgress).unwrap_err();
    assert!(matches!(err, ConvertError::Input(_)), "{err}");
    assert!(!out2.exists());
    assert!(!dir.path().join(".out2.partial").exists());
}
