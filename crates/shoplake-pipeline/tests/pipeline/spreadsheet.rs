//! Exports that went through a spreadsheet (`fixtures/spreadsheet.csv`, see the fixtures'
//! README): category ids in scientific notation are repaired from the product's known
//! categories, else from the code's, when exactly one matches, else unknown (-1), never wrong; numbers printed differently are the
//! same event; the strict rule rejects them; `convert` applies the same rules. Every expected
//! figure was worked out by hand from the two files.

use std::path::{Path, PathBuf};

use shoplake_lake::{Accounting, NoProgress};
use shoplake_pipeline::clean::rules::{RuleOptions, ScientificIds};
use shoplake_pipeline::convert::{ConvertOptions, convert};
use shoplake_pipeline::{RunOptions, run};

use crate::common::*;

fn fixture_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn exact() -> PathBuf {
    fixture_file("exact_categories.csv")
}

fn spreadsheet() -> PathBuf {
    fixture_file("spreadsheet.csv")
}

fn strict() -> RuleOptions {
    RuleOptions {
        scientific_ids: ScientificIds::Reject,
    }
}

async fn run_with(lake: &shoplake_lake::Lake, rules: RuleOptions) -> shoplake_pipeline::RunReport {
    let options = RunOptions {
        rules,
        ..RunOptions::default()
    };
    run(lake, &options, &NoProgress).await.unwrap()
}

const SMARTPHONE: i64 = 2_053_013_555_631_882_655;
const AUDIO: i64 = 2_053_013_554_658_804_075;
const CONSTRUCTION: i64 = 2_232_732_093_077_520_756;

#[tokio::test]
async fn mangled_ids_are_repaired_from_the_exact_rows_or_marked_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_in(dir.path());
    let ingested = ingest(&lake, &[exact(), spreadsheet()]).await;
    let stats: Vec<(u64, u64)> = ingested
        .files
        .iter()
        .map(|f| match f {
            shoplake_ingest::files::FileOutcome::Ingested { stats, .. } => {
                (stats.scientific_category_ids, stats.category_ids)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(stats, [(0, 5), (10, 10)]);

    let report = run_incremental(&lake).await;
    assert!(!report.gate_failed(), "{:?}", report.failures());
    assert_eq!(report.days.len(), 1);
    assert_eq!(
        report.days[0].rows,
        Accounting {
            raw: 15,
            clean: 12,
            duplicates: 2,
            rejected: 1,
            repaired: 4,
            unknown_category: 3,
        }
    );

    // The clean rows, read through a plain DataFusion session over the files.
    let clean = plain_rows(
        &lake,
        "SELECT CAST(event_time AS VARCHAR) AS t, event_type, product_id, category_id, category_code, \
         CAST(price AS VARCHAR), COALESCE(data_issue, '-') FROM clean.events ORDER BY event_time",
    )
    .await;
    let t = |hm: &str| format!("2020-04-03T{hm}:00Z");
    let expected = vec![
        format!(
            "{}|view|1005115|{SMARTPHONE}|electronics.smartphone|500.00|-",
            t("10:00")
        ),
        format!(
            "{}|view|2000001|{AUDIO}|electronics.audio|33.20|-",
            t("10:05")
        ),
        format!(
            "{}|view|3000001|2053013552326770905|furniture.living_room|120.00|-",
            t("10:06")
        ),
        format!(
            "{}|view|3000002|2053013552351936731|furniture.living_room|130.00|-",
            t("10:07")
        ),
        format!(
            "{}|view|4000001|{CONSTRUCTION}|construction.tools.light|150.00|-",
            t("10:08")
        ),
        format!(
            "{}|cart|2000001|{AUDIO}|electronics.audio|33.20|category_id_repaired",
            t("11:00")
        ),
        format!(
            "{}|cart|3000001|2053013552326770905|furniture.living_room|120.00|category_id_repaired",
            t("11:01")
        ),
        format!(
            "{}|view|5000001|-1|computers.desktop|999.90|category_id_unknown",
            t("11:02")
        ),
        format!(
            "{}|purchase|4000001|{CONSTRUCTION}|construction.tools.light|150.00|category_id_repaired",
            t("11:03")
        ),
        format!(
            "{}|view|3000003|-1|furniture.living_room|140.00|category_id_unknown",
            t("11:05")
        ),
        format!(
            "{}|view|3000002|2053013552351936731|furniture.living_room|130.00|category_id_repaired",
            t("11:06")
        ),
        format!(
            "{}|view|4000001|-1|construction.tools.light|150.00|category_id_unknown",
            t("11:07")
        ),
    ];
    assert_eq!(clean, expected);
    // The reject says why.
    assert_eq!(
        plain_rows(&lake, "SELECT reason, product_id FROM clean.rejects").await,
        ["bad_product_id|1.00512E+06"]
    );
    // The day's record counts them, beside clean / duplicates / rejected.
    assert_eq!(
        plain_rows(
            &lake,
            "SELECT raw_rows, clean_rows, duplicates, rejected, repaired, unknown_category FROM meta.run_days"
        )
        .await,
        ["15|12|2|1|4|3"]
    );
    // The dimension has its unknown member; grouping by code still counts every row where it
    // belongs.
    assert_eq!(
        plain_rows(
            &lake,
            "SELECT category_id, category_code, category_l1, events FROM model.dim_categories \
             WHERE category_id = -1"
        )
        .await,
        ["-1|unknown|unknown|3"]
    );
    assert_eq!(
        plain_rows(
            &lake,
            "SELECT category_code, COUNT(*) FROM model.fact_user_events GROUP BY 1 ORDER BY 1"
        )
        .await,
        [
            "computers.desktop|1",
            "construction.tools.light|3",
            "electronics.audio|2",
            "electronics.smartphone|1",
            "furniture.living_room|5",
        ]
    );
    // A product's category is its latest known one: the view at 11:07 whose id is lost does
    // not hide the construction category of product 4000001.
    assert_eq!(
        plain_rows(
            &lake,
            "SELECT product_id, category_id FROM model.dim_products ORDER BY 1"
        )
        .await,
        [
            format!("1005115|{SMARTPHONE}"),
            format!("2000001|{AUDIO}"),
            "3000001|2053013552326770905".to_string(),
            "3000002|2053013552351936731".to_string(),
            "3000003|-1".to_string(),
            format!("4000001|{CONSTRUCTION}"),
            "5000001|-1".to_string(),
        ]
    );
    // Nothing to do a second time.
    assert!(run_incremental(&lake).await.days.is_empty());
}

#[tokio::test]
async fn a_later_exact_delivery_repairs_the_day_it_lands_in() {
    // The spreadsheet alone: every id unknown, never guessed.
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_in(dir.path());
    ingest(&lake, &[spreadsheet()]).await;
    let alone = run_incremental(&lake).await;
    assert_eq!(
        alone.days[0].rows,
        Accounting {
            raw: 10,
            clean: 8,
            duplicates: 1,
            rejected: 1,
            repaired: 0,
            unknown_category: 8,
        }
    );
    assert_eq!(
        plain_rows(&lake, "SELECT DISTINCT category_id FROM clean.events").await,
        ["-1"]
    );
    // The exact rows arrive: the day is rebuilt, and repaired as if both had come together.
    ingest(&lake, &[exact()]).await;
    let later = run_incremental(&lake).await;
    assert_eq!(later.days[0].rows.repaired, 4);
    assert_eq!(later.days[0].rows.unknown_category, 3);

    let together = tempfile::tempdir().unwrap();
    let other = lake_in(together.path());
    ingest(&other, &[exact(), spreadsheet()]).await;
    run_incremental(&other).await;
    assert_eq!(
        content(&lake, "clean.events", &[]).await,
        content(&other, "clean.events", &[]).await
    );
}

#[tokio::test]
async fn the_strict_rule_rejects_scientific_ids() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_in(dir.path());
    ingest(&lake, &[exact(), spreadsheet()]).await;
    let report = run_with(&lake, strict()).await;
    assert_eq!(
        report.days[0].rows,
        Accounting {
            raw: 15,
            clean: 5,
            duplicates: 0,
            rejected: 10,
            ..Accounting::default()
        }
    );
    assert_eq!(
        plain_rows(
            &lake,
            "SELECT reason, COUNT(*) FROM clean.rejects GROUP BY 1 ORDER BY 1"
        )
        .await,
        ["bad_category_id|9", "bad_product_id|1"]
    );
}

fn convert_both(
    out: &Path,
    rules: RuleOptions,
    workers: usize,
) -> shoplake_pipeline::convert::ConvertReport {
    let mut options = ConvertOptions::new(vec![exact(), spreadsheet()], out.to_path_buf());
    options.workers = workers;
    options.rules = rules;
    convert(&options, &NoProgress).unwrap()
}

#[tokio::test]
async fn convert_applies_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    for workers in [1, 3] {
        let out = dir.path().join(format!("out-{workers}"));
        let report = convert_both(&out, RuleOptions::default(), workers);
        assert_eq!(
            report.accounting(),
            Accounting {
                raw: 15,
                clean: 12,
                duplicates: 2,
                rejected: 1,
                repaired: 4,
                unknown_category: 3,
            },
            "{workers} workers"
        );
        let ctx = shoplake_lake::datafusion::prelude::SessionContext::new();
        let rows = ctx
            .read_parquet(
                out.join("event_date=2020-04-03").to_str().unwrap(),
                Default::default(),
            )
            .await
            .unwrap()
            .sort_by(vec![shoplake_lake::datafusion::prelude::col("event_time")])
            .unwrap()
            .select_columns(&["product_id", "category_id", "data_issue"])
            .unwrap()
            .collect()
            .await
            .unwrap();
        let got = lines(&rows);
        assert_eq!(
            got,
            [
                format!("1005115|{SMARTPHONE}|NULL"),
                format!("2000001|{AUDIO}|NULL"),
                "3000001|2053013552326770905|NULL".to_string(),
                "3000002|2053013552351936731|NULL".to_string(),
                format!("4000001|{CONSTRUCTION}|NULL"),
                format!("2000001|{AUDIO}|category_id_repaired"),
                "3000001|2053013552326770905|category_id_repaired".to_string(),
                "5000001|-1|category_id_unknown".to_string(),
                format!("4000001|{CONSTRUCTION}|category_id_repaired"),
                "3000003|-1|category_id_unknown".to_string(),
                "3000002|2053013552351936731|category_id_repaired".to_string(),
                "4000001|-1|category_id_unknown".to_string(),
            ],
            "{workers} workers"
        );
    }
    let strict_out = dir.path().join("strict");
    let report = convert_both(&strict_out, strict(), 2);
    assert_eq!(
        (report.rows, report.duplicates, report.rejected),
        (5, 0, 10)
    );
}
