//! The PostgreSQL endpoint as real clients see it: tokio-postgres (simple and extended
//! protocol, bound parameters) and psql, against answers computed through the lake's own SQL
//! catalog; logins, roles, refusals and limits.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shoplake_lake::Lake;
use shoplake_serve::pg::{self, Limits, PgOptions};
use shoplake_serve::users::{Users, add_user};
use shoplake_sql::SqlCatalog;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::common::generated_lake;

/// Starts the endpoint; it stops when the returned sender is dropped.
async fn start(
    lake: &Lake,
    users: Option<Users>,
    limits: Limits,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let options = PgOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        users: users.map(Arc::new),
        limits,
        tls: None,
    };
    let (listener, addr) = pg::bind(&options).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(pg::serve(lake.clone(), listener, options, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn connect(
    addr: SocketAddr,
    user: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(addr.port())
        .user(user)
        .dbname("lake")
        .connect_timeout(Duration::from_secs(10));
    if let Some(password) = password {
        config.password(password);
    }
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The first column of the first row of a simple query, as text.
async fn scalar(client: &Client, sql: &str) -> String {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

/// The same figure through the lake's own catalog (not the endpoint).
async fn lake_scalar(lake: &Lake, sql: &str) -> i64 {
    let catalog = SqlCatalog::open(lake).await.unwrap();
    let batches = catalog.sql(sql).await.unwrap().collect().await.unwrap();
    let column = batches[0].column(0);
    shoplake_lake::datafusion::arrow::compute::cast(
        column,
        &shoplake_lake::datafusion::arrow::datatypes::DataType::Int64,
    )
    .unwrap()
    .as_any()
    .downcast_ref::<shoplake_lake::datafusion::arrow::array::Int64Array>()
    .unwrap()
    .value(0)
}

fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_client_reads_the_lake_with_both_protocols() {
    let dir = tempfile::tempdir().unwrap();
    let lake = generated_lake(dir.path(), 3_000, 3).await;
    let (addr, _stop) = start(&lake, None, Limits::default()).await;
    let client = connect(addr, "anyone", None).await.unwrap();

    let version = scalar(&client, "SELECT version()").await;
    assert!(version.starts_with("PostgreSQL 16."), "{version}");
    assert!(version.contains("shoplake"), "{version}");
    assert!(
        scalar(&client, "SHOW server_version")
            .await
            .starts_with("16.")
    );

    let total = "SELECT count(*) FROM model.fact_user_events";
    let expected = lake_scalar(&lake, total).await;
    assert!(expected > 0);
    assert_eq!(scalar(&client, total).await, expected.to_string());

    // The extended protocol with a bound parameter.
    let views = lake_scalar(
        &lake,
        "SELECT count(*) FROM model.fact_user_events WHERE event_type = 'view'",
    )
    .await;
    let row = client
        .query_one(
            "SELECT count(*) FROM model.fact_user_events WHERE event_type = $1",
            &[&"view"],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), views);
    let statement = client
        .prepare("SELECT user_id, count(*) AS n FROM model.fact_user_events WHERE event_type = $1 GROUP BY user_id ORDER BY n DESC, user_id LIMIT 5")
        .await
        .unwrap();
    let rows = client.query(&statement, &[&"view"]).await.unwrap();
    assert_eq!(rows.len(), 5);

    // A local connection is an engineer: every layer is listed.
    let raw_tables = scalar(
        &client,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw'",
    )
    .await;
    assert_ne!(raw_tables, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_statement_sees_a_new_lake_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = generated_lake(dir.path(), 2_000, 2).await;
    let (addr, _stop) = start(&lake, None, Limits::default()).await;
    let client = connect(addr, "me", None).await.unwrap();
    let sql = "SELECT count(*) FROM model.fact_user_events";
    let before: i64 = scalar(&client, sql).await.parse().unwrap();

    let more = dir.path().join("more.csv");
    let options = shoplake_ingest::generate::GenerateOptions {
        rows: 500,
        seed: 99,
        start: chrono::NaiveDate::from_ymd_opt(2020, 5, 1).unwrap(),
        days: 1,
        gap_day: None,
    };
    shoplake_ingest::generate::generate_to_path(&options, &more, &mut |_| {}).unwrap();
    shoplake_ingest::ingest_paths(&lake, &[more], &shoplake_lake::NoProgress)
        .await
        .unwrap();
    shoplake_pipeline::run(&lake, &Default::default(), &shoplake_lake::NoProgress)
        .await
        .unwrap();

    let after: i64 = scalar(&client, sql).await.parse().unwrap();
    assert!(after > before, "{before} -> {after}");
    assert_eq!(after, lake_scalar(&lake, sql).await);
}

fn users_file(dir: &Path) -> Users {
    let path = dir.join("users.toml");
    add_user(&path, "ana", "analyst", "ana-pw").unwrap();
    add_user(&path, "eve", "engineer", "eve-pw").unwrap();
    Users::load(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_log_in_with_scram_and_see_their_role_s_tables() {
    let dir = tempfile::tempdir().unwrap();
    let lake = generated_lake(dir.path(), 2_000, 2).await;
    let (addr, _stop) = start(&lake, Some(users_file(dir.path())), Limits::default()).await;

    for (user, password) in [("ana", "wrong"), ("nobody", "ana-pw"), ("eve", "ana-pw")] {
        let e = connect(addr, user, Some(password)).await.err().unwrap();
        assert_eq!(code(&e), "28P01", "{user}: {e}");
    }
    // No password at all: the client cannot answer the SCRAM exchange.
    assert!(connect(addr, "ana", None).await.is_err());

    let ana = connect(addr, "ana", Some("ana-pw")).await.unwrap();
    let facts = "SELECT count(*) FROM model.fact_user_events";
    assert_eq!(
        scalar(&ana, facts).await,
        lake_scalar(&lake, facts).await.to_string()
    );
    let e = ana
        .simple_query("SELECT count(*) FROM raw.events")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42P01", "{e}");
    let e = ana
        .simple_query("SELECT count(*) FROM clean.events")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42P01", "{e}");
    // The catalog agrees: an analyst's listing has the model layer only.
    for sql in [
        "SELECT count(*) FROM information_schema.tables WHERE table_schema IN ('raw', 'clean', 'quality', 'meta')",
        "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname IN ('raw', 'clean', 'quality', 'meta')",
    ] {
        assert_eq!(scalar(&ana, sql).await, "0", "{sql}");
    }
    assert_ne!(
        scalar(
            &ana,
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'model'"
        )
        .await,
        "0"
    );

    // The privilege functions tell the same: what the role sees, and nothing that writes.
    let privilege = "SELECT has_table_privilege($1::text, $2::text)";
    for (client, table, wanted, answer) in [
        (&ana, "model.fact_user_events", "SELECT", true),
        (&ana, "raw.events", "SELECT", false),
        (&ana, "model.fact_user_events", "INSERT", false),
        (&ana, "pg_catalog.pg_class", "SELECT", true),
    ] {
        let row = client
            .query_one(privilege, &[&table, &wanted])
            .await
            .unwrap();
        assert_eq!(row.get::<_, bool>(0), answer, "ana: {table} {wanted}");
    }
    let schema = "SELECT has_schema_privilege($1::text, 'USAGE')";
    assert!(
        ana.query_one(schema, &[&"model"])
            .await
            .unwrap()
            .get::<_, bool>(0)
    );
    assert!(
        !ana.query_one(schema, &[&"raw"])
            .await
            .unwrap()
            .get::<_, bool>(0)
    );
    let e = ana
        .simple_query("SELECT has_table_privilege('model.mart_hourly', 'READ')")
        .await
        .unwrap_err();
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("unrecognized privilege type")),
        "{e:?}"
    );

    let eve = connect(addr, "eve", Some("eve-pw")).await.unwrap();
    let raw = "SELECT count(*) FROM raw.events";
    assert_eq!(
        scalar(&eve, raw).await,
        lake_scalar(&lake, raw).await.to_string()
    );
    let row = eve
        .query_one(privilege, &[&"raw.events", &"SELECT"])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_files_and_lifted_limits_are_refused_with_sqlstates() {
    let dir = tempfile::tempdir().unwrap();
    let lake = generated_lake(dir.path(), 1_000, 1).await;
    let (addr, _stop) = start(&lake, None, Limits::default()).await;
    let client = connect(addr, "me", None).await.unwrap();
    let cases = [
        (
            "INSERT INTO model.fact_user_events (user_id) VALUES (1)",
            "42501",
        ),
        ("UPDATE model.fact_user_events SET price = 0", "42501"),
        ("DELETE FROM model.fact_user_events", "42501"),
        ("DROP TABLE model.fact_user_events", "42501"),
        ("CREATE TABLE model.t (x INT)", "42501"),
        ("CREATE VIEW model.v AS SELECT 1", "42501"),
        (
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
            "42501",
        ),
        (
            "SELECT * INTO model.copy FROM model.fact_user_events",
            "42501",
        ),
        ("COPY model.fact_user_events FROM '/etc/passwd'", "42501"),
        ("COPY (SELECT 1) TO '/tmp/shoplake-out.csv'", "42501"),
        (
            "SET datafusion.execution.memory_pool_size = '64GB'",
            "42501",
        ),
        ("SET datafusion.execution.target_partitions = 64", "42501"),
        ("SET statement_timeout = 0", "42501"),
        ("SET ROLE engineer", "42501"),
        ("GRANT SELECT ON model.fact_user_events TO ana", "42501"),
        ("TRUNCATE model.fact_user_events", "42501"),
        ("VACUUM", "42501"),
        ("DISCARD ALL", "0A000"),
    ];
    for (sql, expected) in cases {
        let e = client.simple_query(sql).await.unwrap_err();
        assert_eq!(code(&e), expected, "{sql}: {e}");
        // The extended protocol refuses the same.
        let e = client.prepare(sql).await.unwrap_err();
        assert_eq!(code(&e), expected, "prepared {sql}: {e}");
    }
    // Files and the network are not the lake: a path or a file-reading function is refused,
    // through both protocols, before anything plans it.
    for sql in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('https://example.com/x.parquet')",
        "SELECT pg_read_file('/etc/passwd')",
    ] {
        let e = client.simple_query(sql).await.unwrap_err();
        assert_eq!(code(&e), "42501", "{sql}: {e}");
        let e = client.prepare(sql).await.unwrap_err();
        assert_eq!(code(&e), "42501", "prepared {sql}: {e}");
    }
    // The connection is still good.
    assert_eq!(scalar(&client, "SELECT 1 + 1").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_rows_time_and_connections() {
    let dir = tempfile::tempdir().unwrap();
    let lake = generated_lake(dir.path(), 1_000, 1).await;
    let limits = Limits {
        max_connections: 2,
        max_rows: 5,
        ..Limits::default()
    };
    let (addr, _stop) = start(&lake, None, limits).await;
    let first = connect(addr, "one", None).await.unwrap();

    let e = first
        .simple_query("SELECT * FROM model.fact_user_events")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "54000", "{e}");
    let e = first
        .query("SELECT * FROM model.fact_user_events", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "54000", "{e}");
    let rows = first
        .query("SELECT * FROM model.fact_user_events LIMIT 5", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);

    first
        .simple_query("SET statement_timeout = '1ms'")
        .await
        .unwrap();
    let e = first
        .simple_query("SELECT count(*) FROM generate_series(1, 300000000) a")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "57014", "{e}");
    first
        .simple_query("SET statement_timeout = '60s'")
        .await
        .unwrap();
    assert_eq!(scalar(&first, "SELECT 40 + 2").await, "42");

    // A malformed message closes that connection only.
    let mut garbage = tokio::net::TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(10), garbage.read(&mut buf)).await;
    drop(garbage);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let second = connect(addr, "two", None).await.unwrap();
    let e = connect(addr, "three", None).await.err().unwrap();
    assert_eq!(code(&e), "53300", "{e}");
    assert!(
        e.as_db_error()
            .unwrap()
            .message()
            .contains("too many clients")
    );
    drop(second);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = connect(addr, "three", None).await.unwrap();
    assert_eq!(scalar(&third, "SELECT 1").await, "1");
    assert_eq!(scalar(&first, "SELECT 2").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_ends_the_running_statement_only() {
    let dir = tempfile::tempdir().unwrap();
    let lake = generated_lake(dir.path(), 1_000, 1).await;
    let (addr, _stop) = start(&lake, None, Limits::default()).await;
    let client = Arc::new(connect(addr, "one", None).await.unwrap());
    let bystander = connect(addr, "two", None).await.unwrap();

    // Minutes of work, unless cancelled.
    let running = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .simple_query("SELECT count(*) FROM generate_series(1, 50000000000) a")
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.cancel_token().cancel_query(NoTls).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the cancelled statement ends")
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), "57014", "{e}");
    assert!(
        e.as_db_error().unwrap().message().contains("user request"),
        "{e:?}"
    );
    // Both connections go on; the cancel was for the statement, not for what follows.
    assert_eq!(scalar(&client, "SELECT 1 + 2").await, "3");
    assert_eq!(scalar(&bystander, "SELECT 2 + 2").await, "4");
}

/// Reads backend messages until ReadyForQuery ('Z'); the DataRows ('D') it read.
async fn read_until_ready(socket: &mut tokio::net::TcpStream) -> u64 {
    let mut rows = 0;
    loop {
        let mut head = [0u8; 5];
        socket.read_exact(&mut head).await.unwrap();
        let length = i32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; length - 4];
        socket.read_exact(&mut body).await.unwrap();
        match head[0] {
            b'Z' => return rows,
            b'D' => rows += 1,
            b'E' => panic!("error: {}", String::from_utf8_lossy(&body)),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_holds_up_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let lake = generated_lake(dir.path(), 1_000, 1).await;
    let (addr, _stop) = start(&lake, None, Limits::default()).await;

    // A client by hand: start-up, then a query of about 100 MB it never reads.
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut startup = Vec::new();
    startup.extend_from_slice(&196608i32.to_be_bytes());
    startup.extend_from_slice(b"user\0stalled\0database\0lake\0\0");
    let mut message = ((startup.len() + 4) as i32).to_be_bytes().to_vec();
    message.extend_from_slice(&startup);
    stalled.write_all(&message).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), read_until_ready(&mut stalled))
        .await
        .expect("the start-up finishes");
    let sql = b"SELECT repeat('x', 200) AS wide FROM generate_series(1, 500000)\0";
    let mut query = vec![b'Q'];
    query.extend_from_slice(&((sql.len() + 4) as i32).to_be_bytes());
    query.extend_from_slice(sql);
    stalled.write_all(&query).await.unwrap();
    // Long enough for the server to fill the socket's buffers and wait on it.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Everyone else is served meanwhile.
    let other = tokio::time::timeout(Duration::from_secs(20), async {
        let client = connect(addr, "other", None).await.unwrap();
        let facts = "SELECT count(*) FROM model.fact_user_events";
        assert_eq!(
            scalar(&client, facts).await,
            lake_scalar(&lake, facts).await.to_string()
        );
    })
    .await;
    assert!(other.is_ok(), "a stalled client held up another");
    // The stalled client was waiting, not dropped: all its rows come, then ReadyForQuery.
    let rows = tokio::time::timeout(Duration::from_secs(60), read_until_ready(&mut stalled))
        .await
        .expect("the stalled connection's result completes");
    assert_eq!(rows, 500_000);
}

#[tokio::test]
async fn anything_but_loopback_needs_a_users_file() {
    let options = PgOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        users: None,
        limits: Limits::default(),
        tls: None,
    };
    let e = pg::bind(&options).await.unwrap_err();
    assert!(e.to_string().contains("users file"), "{e}");
}
