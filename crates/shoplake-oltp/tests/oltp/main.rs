//! The store's database against a throwaway PostgreSQL: the schema, the loader's placement
//! and accounting on a hand-made export, the simulator's changes, and change data capture's
//! snapshot and stream compared with direct queries of the database.

use std::path::PathBuf;
use std::time::Duration;

use shoplake_lake::Lake;
use shoplake_lake::NoProgress;
use shoplake_lake::cdc_tables::OLTP_TABLES;
use shoplake_oltp::CancellationToken;
use shoplake_oltp::cdc::{CdcOptions, run_cdc};
use shoplake_oltp::connect::DbUrl;
use shoplake_oltp::load::{LoadOptions, load_export};
use shoplake_oltp::schema::init;
use shoplake_oltp::simulate::{SimulateOptions, simulate};
use shoplake_oltp::testing::TestPostgres;

mod cdc_state;
use cdc_state::compare_with_database;

const HEADER: &str =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";

/// Fifteen lines with known placement: seven events (one an exact duplicate, one at 0.00)
/// and a line for each reason a line cannot be placed (a negative price, and a NUL that
/// PostgreSQL's text cannot hold, among them).
const FIXTURE: &[&str] = &[
    "2020-04-01 00:00:03 UTC,view,1005115,2232732093077520756,electronics.smartphone,apple,1050.54,518197534,2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90",
    "2020-04-01 00:00:05 UTC,cart,1005115,2232732093077520756,electronics.smartphone,apple,1050.54,518197534,2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90",
    "2020-04-01 00:01:00 UTC,view,4804056,2232732079706079299,electronics.audio.headphone,sony,189.00,600000001,11111111-2222-3333-4444-555555555555",
    "2020-04-01 00:01:10 UTC,view,4804056,2232732079706079299,electronics.audio.headphone,sony,179.00,600000001,11111111-2222-3333-4444-555555555555",
    "2020-04-01 00:02:00 UTC,view,3900001,2053013552326770905,,,25.50,600000002,aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "2020-04-01 00:02:01 UTC,purchase,1005115,2232732093077520756,electronics.smartphone,apple,0.00,600000002,aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "2020-04-01 00:03:00 UTC,view,1005115,2232732093077520756,electronics.smartphone,apple,1050.54,600000003,",
    "2020-04-01 00:03:01 UTC,view,1005115,2232732093077520756,electronics.smartphone,apple,1050.54,600000003,not-a-uuid",
    "2020-04-01 00:03:02 UTC,view,1005115,2232732093077520756,electronics.smartphone,apple,1050.54,600000009,2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90",
    "2020-04-01 25:00:00 UTC,view,1005115,2232732093077520756,electronics.smartphone,apple,1050.54,518197534,2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90",
    "a,b,c",
    "2020-04-01 00:04:00 UTC,teleport,1005115,2232732093077520756,electronics.smartphone,apple,1050.54,518197534,2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90",
    "2020-04-01 00:00:03 UTC,view,1005115,2232732093077520756,electronics.smartphone,apple,1050.54,518197534,2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90",
    "2020-04-01 00:05:00 UTC,view,1005115,2232732093077520756,electronics.smartphone,apple,-3.10,518197534,2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90",
    "2020-04-01 00:05:01 UTC,view,1005115,2232732093077520756,electronics.smartphone,app\u{0}le,1050.54,518197534,2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90",
];

fn fixture(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("export.csv");
    let mut text = String::from(HEADER);
    for line in FIXTURE {
        text.push('\n');
        text.push_str(line);
    }
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

async fn ready_db(pg: &TestPostgres, name: &str) -> (DbUrl, tokio_postgres::Client) {
    let url = DbUrl::parse(&pg.create_database(name)).unwrap();
    let mut client = url.connect().await.unwrap();
    init(&mut client).await.unwrap();
    (url, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_is_idempotent_and_versioned() {
    let pg = TestPostgres::start();
    let url = DbUrl::parse(&pg.create_database("store")).unwrap();
    let mut client = url.connect().await.unwrap();
    let first = init(&mut client).await.unwrap();
    assert_eq!((first.from_version, first.to_version), (0, 1));
    assert_eq!(first.applied.len(), 1);
    let again = init(&mut client).await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.to_version, 1);
    assert_eq!(
        pg.psql_on(
            "store",
            "SELECT string_agg(version::text, ',') FROM shoplake_schema_version"
        ),
        "1"
    );
    // Every store table logs whole rows; ids are generated when an insert omits them.
    assert_eq!(
        pg.psql_on(
            "store",
            "SELECT string_agg(relname || '=' || relreplident::text, ',' ORDER BY relname) FROM pg_class \
             WHERE relname IN ('users','brands','categories','products','sessions','events')"
        ),
        "brands=f,categories=f,events=f,products=f,sessions=f,users=f"
    );
    pg.psql_on(
        "store",
        "INSERT INTO users (name, email) VALUES ('a', 'a@x'); \
         INSERT INTO brands (brand_name) VALUES ('b'); \
         INSERT INTO products (name, brand_id, price) SELECT 'p', brand_id, 1 FROM brands; \
         INSERT INTO sessions (user_id, device_type, channel) SELECT user_id, 'app', 'direct' FROM users; \
         INSERT INTO events (session_id, product_id, event_type, price) \
           SELECT session_id, product_id, 'remove_from_cart', 1 FROM sessions, products",
    );
    assert_eq!(
        pg.psql_on("store", "SELECT event_type FROM events"),
        "remove_from_cart"
    );
    // Deleting a user deletes its sessions and events.
    pg.psql_on("store", "DELETE FROM users");
    assert_eq!(
        pg.psql_on(
            "store",
            "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM events)"
        ),
        "0"
    );
    // A database without the schema is told what to run.
    let bare = DbUrl::parse(&pg.create_database("bare")).unwrap();
    let mut bare_client = bare.connect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = load_export(
        &mut bare_client,
        &fixture(dir.path()),
        LoadOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("shoplake oltp init"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_places_every_line_or_counts_it() {
    let pg = TestPostgres::start();
    let (_, mut client) = ready_db(&pg, "store").await;
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let report = load_export(
        &mut client,
        &file,
        LoadOptions { batch_events: 3 },
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.lines, 15);
    assert_eq!(report.events, 7);
    let unplaced: Vec<(&str, u64)> = report
        .unplaced
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        unplaced,
        vec![
            ("bad_session_id", 1),
            ("bad_timestamp", 1),
            ("malformed_row", 2),
            ("non_positive_price", 1),
            ("null_session", 1),
            ("session_of_another_user", 1),
            ("unknown_event_type", 1),
        ]
    );
    assert_eq!(report.events + report.unplaced_total(), report.lines);
    assert_eq!(
        (
            report.users,
            report.sessions,
            report.products,
            report.brands,
            report.categories
        ),
        (3, 3, 3, 2, 5)
    );
    assert_eq!(report.product_updates, 1);
    let q = |sql: &str| pg.psql_on("store", sql);
    assert_eq!(
        q(
            "SELECT (SELECT count(*) FROM users) || ',' || (SELECT count(*) FROM sessions) || ',' || \
             (SELECT count(*) FROM products) || ',' || (SELECT count(*) FROM brands) || ',' || \
             (SELECT count(*) FROM categories) || ',' || (SELECT count(*) FROM events)"
        ),
        "3,3,3,2,5,7"
    );
    // The events, in the export's order and values (the duplicate twice, the 0.00 kept).
    assert_eq!(q("SELECT sum(price) FROM events"), "3545.12");
    assert_eq!(
        q(
            "SELECT string_agg(e.event_type::text || ':' || e.product_id || ':' || s.user_id, ' ' \
             ORDER BY e.event_time, e.event_id) FROM events e JOIN sessions s USING (session_id)"
        ),
        "view:1005115:518197534 view:1005115:518197534 cart:1005115:518197534 \
         view:4804056:600000001 view:4804056:600000001 view:3900001:600000002 \
         purchase:1005115:600000002"
    );
    // The product's latest price; the tree of the dotted codes, the export's id on the leaf.
    assert_eq!(
        q("SELECT price FROM products WHERE product_id = 4804056"),
        "179.00"
    );
    assert_eq!(
        q("SELECT price FROM products WHERE product_id = 1005115"),
        "1050.54"
    );
    assert_eq!(
        q("WITH RECURSIVE up(id, name, parent, depth) AS ( \
             SELECT category_id, category_name, parent_id, 0 FROM categories WHERE category_id = 2232732079706079299 \
             UNION ALL SELECT c.category_id, c.category_name, c.parent_id, depth + 1 \
             FROM categories c JOIN up ON c.category_id = up.parent) \
           SELECT string_agg(name, '.' ORDER BY depth DESC) FROM up"),
        "electronics.audio.headphone"
    );
    assert_eq!(
        q(
            "SELECT coalesce(category_name, 'null') || ',' || coalesce(parent_id::text, 'null') \
           FROM categories WHERE category_id = 2053013552326770905"
        ),
        "null,null"
    );
    assert_eq!(
        q("SELECT count(*) FROM products WHERE product_id = 3900001 AND brand_id IS NULL"),
        "1"
    );
    // A session starts at its first event; device and channel are stable per session.
    assert_eq!(
        q(
            "SELECT started_at AT TIME ZONE 'UTC' FROM sessions WHERE session_id = '11111111-2222-3333-4444-555555555555'"
        ),
        "2020-04-01 00:01:00"
    );
    let devices = q(
        "SELECT string_agg(device_type || '/' || channel, ',' ORDER BY session_id) FROM sessions",
    );
    // The sequences moved past the loaded ids: the app's next user does not collide.
    assert_eq!(
        q("INSERT INTO users (name, email) VALUES ('n', 'n@x') RETURNING user_id > 600000002"),
        "t"
    );

    // The same file again adds nothing.
    let again = load_export(&mut client, &file, LoadOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(again.already_loaded);
    assert_eq!(q("SELECT count(*) FROM events"), "7");

    // Loaded into a second database with another batch size: the same rows.
    let (_, mut other) = ready_db(&pg, "store2").await;
    load_export(&mut other, &file, LoadOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        pg.psql_on("store2", "SELECT string_agg(device_type || '/' || channel, ',' ORDER BY session_id) FROM sessions"),
        devices
    );
    assert_eq!(
        pg.psql_on("store2", "SELECT sum(price) FROM events"),
        "3545.12"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_changes_every_table_three_ways() {
    let pg = TestPostgres::start();
    let (_, mut client) = ready_db(&pg, "store").await;
    let report = simulate(
        &mut client,
        SimulateOptions {
            rate: 200,
            duration: Duration::from_secs(12),
            seed: 7,
        },
    )
    .await
    .unwrap();
    for table in OLTP_TABLES {
        for op in ["insert", "update", "delete"] {
            if table == "events" && op == "delete" {
                // Events go only with their user (a cascade, which the report does not count).
                continue;
            }
            assert!(
                report.count(table, op) > 0,
                "no {op} on {table}: {report:?}"
            );
        }
    }
    assert!(report.transactions > 50);
    let events: u64 = pg
        .psql_on("store", "SELECT count(*) FROM events")
        .parse()
        .unwrap();
    assert!(events > 0);
    // Inserted minus what went with deleted accounts.
    assert!(events <= report.events);
    assert_eq!(
        pg.psql_on("store", "SELECT count(*) FROM events e LEFT JOIN sessions s USING (session_id) WHERE s.session_id IS NULL"),
        "0"
    );
}

fn catch_up() -> CdcOptions {
    CdcOptions {
        catch_up: true,
        heartbeat: Duration::from_millis(500),
        flush_interval: Duration::from_millis(200),
        ..CdcOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_snapshot_then_stream_equals_the_database() {
    let pg = TestPostgres::start();
    let (url, mut client) = ready_db(&pg, "store").await;
    let dir = tempfile::tempdir().unwrap();
    load_export(
        &mut client,
        &fixture(dir.path()),
        LoadOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();

    // The snapshot: every row as of the slot's consistent point.
    let first = run_cdc(
        &lake,
        &url,
        &catch_up(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap();
    let snap = first
        .snapshot
        .clone()
        .expect("a first run takes the snapshot");
    let mut rows: Vec<(&str, u64)> = snap.rows.clone();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("brands", 2),
            ("categories", 5),
            ("events", 7),
            ("products", 3),
            ("sessions", 3),
            ("users", 3),
        ]
    );
    compare_with_database(&lake, &pg, "store").await;

    // Changes while nothing streams, then a second catch-up: only the changes, once.
    simulate(
        &mut client,
        SimulateOptions {
            rate: 100,
            duration: Duration::from_secs(6),
            seed: 3,
        },
    )
    .await
    .unwrap();
    let second = run_cdc(
        &lake,
        &url,
        &catch_up(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(second.snapshot.is_none());
    assert!(second.transactions > 10, "{second:?}");
    for op in ["insert", "update", "delete"] {
        assert!(
            second.changes.iter().any(|((_, o), n)| *o == op && *n > 0),
            "no {op} streamed: {second:?}"
        );
    }
    compare_with_database(&lake, &pg, "store").await;

    // A third catch-up with nothing new lands nothing.
    let third = run_cdc(
        &lake,
        &url,
        &catch_up(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(third.transactions, 0, "{third:?}");
    compare_with_database(&lake, &pg, "store").await;

    // The slot moved on: the server keeps little WAL for it.
    let lag: i64 = pg
        .psql_on(
            "store",
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'shoplake'",
        )
        .parse()
        .unwrap();
    assert!(lag < 1 << 20, "the slot is {lag} bytes behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_says_what_to_run_when_the_server_is_not_ready() {
    let pg = TestPostgres::start_with(&[("wal_level", "replica")]);
    let (url, _client) = ready_db(&pg, "store").await;
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let err = run_cdc(
        &lake,
        &url,
        &catch_up(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("wal_level = logical"), "{err}");

    let pg = TestPostgres::start();
    let (_, _client) = ready_db(&pg, "store").await;
    pg.psql_on(
        "store",
        "CREATE ROLE reader LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader",
    );
    let reader = DbUrl::parse(&pg.url_for("reader", "store")).unwrap();
    let err = run_cdc(
        &lake,
        &reader,
        &catch_up(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("ALTER ROLE reader REPLICATION"),
        "{err}"
    );

    pg.psql_on("store", "ALTER TABLE sessions REPLICA IDENTITY DEFAULT");
    let admin = DbUrl::parse(&pg.url_for("postgres", "store")).unwrap();
    let err = run_cdc(
        &lake,
        &admin,
        &catch_up(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("ALTER TABLE sessions REPLICA IDENTITY FULL"),
        "{err}"
    );
    pg.psql_on("store", "ALTER TABLE sessions REPLICA IDENTITY FULL");

    // A slot lost after the lake was fed from it.
    run_cdc(
        &lake,
        &admin,
        &catch_up(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap();
    pg.psql_on("store", "SELECT pg_drop_replication_slot('shoplake')");
    let err = run_cdc(
        &lake,
        &admin,
        &catch_up(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("--resnapshot"), "{err}");
    let again = run_cdc(
        &lake,
        &admin,
        &CdcOptions {
            resnapshot: true,
            ..catch_up()
        },
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(again.snapshot.is_some());
    compare_with_database(&lake, &pg, "store").await;

    // A schema change stops the stream rather than mis-map the new column.
    pg.psql_on("store", "ALTER TABLE brands ADD COLUMN country text; INSERT INTO brands (brand_name, country) VALUES ('zeta', 'es')");
    let err = run_cdc(
        &lake,
        &admin,
        &catch_up(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("schema changed"), "{err}");
}
