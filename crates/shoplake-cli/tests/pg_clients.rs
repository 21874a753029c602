//! `shoplake serve --pg` with the clients people use: psql (listing tables, describing one,
//! a query, `\copy (...) to` a file), JDBC (the driver under Metabase, Tableau and DBeaver),
//! psycopg and pandas, and `shoplake users add` writing the users file that
//! `serve --users` checks logins against, TLS (`sslmode=verify-full`) and the `[serve]` section
//! of the config file. Figures are compared with `shoplake query`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::*;

fn small_lake(dir: &Path) -> PathBuf {
    generated_lake(dir, 5000, 3, 7)
}

/// Starts `serve` with `args`; the PostgreSQL port it printed.
fn serve(lake: &Path, args: &[&str]) -> (Server, u16, BufReader<std::process::ChildStdout>) {
    serve_with(lake, &[], args)
}

/// Starts `shoplake GLOBAL... serve ARGS...`; the PostgreSQL port it printed.
fn serve_with(
    lake: &Path,
    global: &[&str],
    args: &[&str],
) -> (Server, u16, BufReader<std::process::ChildStdout>) {
    let mut child = bin()
        .arg("--lake")
        .arg(lake)
        .args(global)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let server = Server(child);
    let mut port = None;
    for _ in 0..5 {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        if let Some(rest) = line.trim().strip_prefix("postgres:  postgresql://") {
            let addr = rest.split('/').next().unwrap();
            port = Some(addr.rsplit(':').next().unwrap().parse().unwrap());
            break;
        }
    }
    (
        server,
        port.expect("serve printed no postgres address"),
        lines,
    )
}

fn psql(port: u16, user: &str, password: Option<&str>, args: &[&str]) -> std::process::Output {
    psql_with(port, user, password, &[("PGSSLMODE", "disable")], args)
}

/// psql with `env` (e.g. `PGSSLMODE`) set.
fn psql_with(
    port: u16,
    user: &str,
    password: Option<&str>,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut c = Command::new("psql");
    c.args([
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-U",
        user,
        "-d",
        "lake",
    ])
    .arg("-p")
    .arg(port.to_string())
    .args(args)
    .env_remove("PGPASSWORD")
    .env_remove("PGSSLROOTCERT")
    .env("PGCONNECT_TIMEOUT", "10")
    .envs(env.iter().copied());
    if let Some(password) = password {
        c.env("PGPASSWORD", password);
    }
    c.output().unwrap()
}

fn psql_ok(port: u16, user: &str, password: Option<&str>, args: &[&str]) -> String {
    let out = psql(port, user, password, args);
    assert!(
        out.status.success(),
        "psql {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn have_psql() -> bool {
    Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn psql_lists_describes_queries_and_copies() {
    if !have_psql() {
        // .ci/run installs postgresql-client; a machine without psql cannot run this.
        panic!("psql is required for this test (Debian package postgresql-client)");
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path());
    let (_server, port, _lines) = serve(&lake, &["--pg", "127.0.0.1:0"]);

    let listing = psql_ok(port, "me", None, &["-c", "\\dt model.*"]);
    for table in ["fact_user_events", "dim_products", "mart_funnel_daily"] {
        assert!(listing.contains(table), "{table} not in {listing}");
    }
    let described = psql_ok(port, "me", None, &["-c", "\\d model.fact_user_events"]);
    for column in ["user_id", "event_type", "price", "event_date"] {
        assert!(described.contains(column), "{column} not in {described}");
    }

    let sql = "SELECT event_type, count(*) AS n FROM model.fact_user_events GROUP BY event_type ORDER BY event_type";
    let through_pg = psql_ok(port, "me", None, &["-A", "-t", "-F", ",", "-c", sql]);
    let through_query = ok(&lake, &["query", "-q", "-f", "csv", sql]);
    let expected: Vec<&str> = through_query.lines().skip(1).collect();
    let got: Vec<&str> = through_pg.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(got, expected);

    let copied = dir.path().join("copied.csv");
    psql_ok(
        port,
        "me",
        None,
        &[
            "-c",
            &format!("\\copy ({sql}) to '{}' with csv header", copied.display()),
        ],
    );
    let text = std::fs::read_to_string(&copied).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("event_type,n"));
    assert_eq!(lines.collect::<Vec<_>>(), expected);

    // A refused statement is an error with its SQLSTATE, and psql says so.
    let out = psql(
        port,
        "me",
        None,
        &["-c", "DROP TABLE model.fact_user_events"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
}

#[test]
fn users_add_writes_logins_that_serve_checks() {
    if !have_psql() {
        panic!("psql is required for this test (Debian package postgresql-client)");
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path());
    let users = dir.path().join("users.toml");
    for (name, role, password) in [("ana", "analyst", "ana pw"), ("eve", "engineer", "eve pw")] {
        shoplake_users_add(&users, name, role, password);
    }
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.contains("SCRAM-SHA-256$4096:") && !text.contains("ana pw"));
    let listed = bin()
        .args(["users", "list", "--file"])
        .arg(&users)
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("ana\tanalyst\tmodel.*"), "{listed}");

    // Without a users file, only loopback is served.
    let out = bin()
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--pg", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("users file"));

    let users_arg = users.to_str().unwrap();
    let (_server, port, _lines) = serve(&lake, &["--pg", "127.0.0.1:0", "--users", users_arg]);
    let out = psql(port, "ana", Some("wrong"), &["-c", "SELECT 1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let analyst = psql_ok(port, "ana", Some("ana pw"), &["-c", "\\dt *.*"]);
    assert!(analyst.contains("fact_user_events"));
    assert!(!analyst.contains(" raw "), "{analyst}");
    let engineer = psql_ok(port, "eve", Some("eve pw"), &["-c", "\\dt raw.*"]);
    assert!(engineer.contains("events"), "{engineer}");
}

/// A self-signed certificate for 127.0.0.1 and its key, by the machine's openssl.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl) makes the test certificate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[test]
fn serve_section_of_the_config_gives_tls_users_and_limits() {
    if !have_psql() {
        panic!("psql is required for this test (Debian package postgresql-client)");
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path());
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    let (cert, _key) = self_signed(&conf);
    shoplake_users_add(&conf.join("users.toml"), "ana", "analyst", "ana pw");
    // Relative paths are relative to the config file, wherever serve is started.
    let config = conf.join("shoplake.toml");
    std::fs::write(
        &config,
        "[serve]\npg = \"127.0.0.1:0\"\nusers = \"users.toml\"\ntls_cert = \"server.crt\"\ntls_key = \"server.key\"\npg_max_rows = 5\npg_statement_timeout = \"1min\"\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let (_server, port, _lines) = serve_with(&lake, &["--config", config_arg], &[]);

    // TLS, with the certificate verified against the host name.
    let verified = [
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", cert.to_str().unwrap()),
    ];
    let info = psql_with(
        port,
        "ana",
        Some("ana pw"),
        &verified,
        &["-c", "\\conninfo"],
    );
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.status.success() && text.contains("SSL connection (protocol: TLSv1.3"),
        "{text}{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let sql = "SELECT count(*) FROM model.fact_user_events";
    let n = psql_with(port, "ana", Some("ana pw"), &verified, &["-At", "-c", sql]);
    assert_eq!(
        String::from_utf8_lossy(&n.stdout).trim(),
        ok(&lake, &["query", "-q", "-f", "csv", sql])
            .lines()
            .nth(1)
            .unwrap()
            .trim()
    );
    // sslmode=require (encrypted, certificate not checked) works too; loopback may go without.
    let require = [("PGSSLMODE", "require")];
    assert!(
        psql_with(port, "ana", Some("ana pw"), &require, &["-c", "SELECT 1"])
            .status
            .success()
    );
    assert!(
        psql(port, "ana", Some("ana pw"), &["-c", "SELECT 1"])
            .status
            .success()
    );
    // The users file of the config: a wrong password fails; its row limit holds.
    assert!(
        !psql_with(port, "ana", Some("x"), &require, &["-c", "SELECT 1"])
            .status
            .success()
    );
    let many = psql_with(
        port,
        "ana",
        Some("ana pw"),
        &require,
        &["-c", "SELECT * FROM model.fact_user_events"],
    );
    assert!(!many.status.success());
    let err = String::from_utf8_lossy(&many.stderr);
    assert!(err.contains("5 rows"), "{err}");

    // A key without its certificate, or a certificate that is not one, stops serve at once.
    let out = bin()
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--pg", "127.0.0.1:0", "--tls-key"])
        .arg(conf.join("server.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
    let out = bin()
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--pg", "127.0.0.1:0", "--tls-cert"])
        .arg(conf.join("users.toml"))
        .arg("--tls-key")
        .arg(conf.join("server.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TLS certificate") && err.contains("users.toml"),
        "{err}"
    );
}

#[test]
fn the_dashboard_serves_https_and_its_users_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path());
    let (cert, key) = self_signed(dir.path());
    let users = dir.path().join("users.toml");
    shoplake_users_add(&users, "ana", "analyst", "ana pw");
    let (cert_arg, key_arg, users_arg) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        users.to_str().unwrap(),
    );

    // Logins carry passwords: off loopback, plain HTTP with a users file is refused.
    let out = bin()
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--listen", "0.0.0.0:0", "--users", users_arg])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
    // A certificate with another certificate's key cannot serve.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_, other_key) = self_signed(&other);
    let out = bin()
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--tls-cert", cert_arg, "--tls-key"])
        .arg(&other_key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be used together"), "{err}");

    let mut child = bin()
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--listen", "127.0.0.1:0", "--users", users_arg])
        .args(["--tls-cert", cert_arg, "--tls-key", key_arg])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let _server = Server(child);
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let url = first
        .strip_prefix("dashboard: ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert", cert_arg, "-o", "-"])
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("curl (Debian package curl)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.to_string(), body.to_string())
    };
    let summary = format!("{url}api/reports/summary");
    let (status, body) = curl(&["-u", "ana:ana pw", &summary]);
    assert_eq!(status, "200", "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let events = json["tables"][0]["rows"][0]["events"].as_i64().unwrap();
    let counted = ok(
        &lake,
        &[
            "query",
            "-q",
            "-f",
            "csv",
            "SELECT count(*) AS n FROM clean.events",
        ],
    );
    assert_eq!(counted, format!("n\n{events}\n"));
    assert_eq!(curl(&[&summary]).0, "401");
    assert_eq!(curl(&["-u", "ana:wrong", &summary]).0, "401");
    assert_eq!(curl(&[&format!("{url}healthz")]).0, "200");
}

/// `model.fact_user_events` rows of one event type, through `shoplake query`.
fn count_of(lake: &Path, event_type: &str) -> u64 {
    let sql = format!(
        "SELECT count(*) AS n FROM model.fact_user_events WHERE event_type = '{event_type}'"
    );
    let csv = ok(lake, &["query", "-q", "-f", "csv", &sql]);
    csv.lines().nth(1).unwrap().trim().parse().unwrap()
}

const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

#[test]
fn jdbc_lists_tables_and_columns_and_runs_a_prepared_statement() {
    assert!(
        Path::new(JDBC_JAR).exists(),
        "the JDBC test needs Debian's libpostgresql-jdbc-java ({JDBC_JAR}) and a JDK: .ci/run installs them"
    );
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path());
    let users = dir.path().join("users.toml");
    shoplake_users_add(&users, "ana", "analyst", "ana pw");

    // Compiled here, with the machine's JDK.
    let classes = dir.path().join("classes");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/LakeClient.java");
    let javac = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(&source)
        .output()
        .expect("javac (a JDK) is required");
    assert!(
        javac.status.success(),
        "{}",
        String::from_utf8_lossy(&javac.stderr)
    );

    let (_server, port, _lines) = serve(
        &lake,
        &["--pg", "127.0.0.1:0", "--users", users.to_str().unwrap()],
    );
    let url = format!("jdbc:postgresql://127.0.0.1:{port}/lake?sslmode=disable&connectTimeout=10");
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{JDBC_JAR}:{}", classes.display()))
        .args(["LakeClient", &url, "ana", "ana pw"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split('\t').collect()).collect();
    let product = &lines.iter().find(|l| l[0] == "product").unwrap()[1];
    assert!(product.starts_with("PostgreSQL 16."), "{product}");
    let tables: Vec<&str> = lines
        .iter()
        .filter(|l| l[0] == "table")
        .map(|l| l[1])
        .collect();
    for table in [
        "model.fact_user_events",
        "model.dim_products",
        "model.mart_funnel_daily",
    ] {
        assert!(tables.contains(&table), "{table} not in {tables:?}");
    }
    let columns: Vec<&str> = lines
        .iter()
        .filter(|l| l[0] == "column")
        .map(|l| l[1])
        .collect();
    for column in ["user_id", "event_type", "price", "event_date"] {
        assert!(columns.contains(&column), "{column} not in {columns:?}");
    }
    for event_type in ["view", "purchase"] {
        let line = lines
            .iter()
            .find(|l| l[0] == "count" && l[1] == event_type)
            .unwrap();
        assert_eq!(line[2].parse::<u64>().unwrap(), count_of(&lake, event_type));
    }
}

/// The Python that has psycopg and pandas: `SHOPLAKE_CLIENTS_PYTHON`, or the venv `.ci/run`
/// makes.
fn clients_python() -> PathBuf {
    std::env::var_os("SHOPLAKE_CLIENTS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/shoplake/clients-venv/bin/python")
        })
}

#[test]
fn psycopg_binds_a_parameter_and_pandas_reads_a_query() {
    let python = clients_python();
    assert!(
        python.exists(),
        "the psycopg test needs a Python with psycopg and pandas at {} (.ci/run makes it from crates/shoplake-cli/tests/clients/requirements.txt)",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path());
    let (_server, port, _lines) = serve(&lake, &["--pg", "127.0.0.1:0"]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/lake_client.py");
    let dsn = format!(
        "host=127.0.0.1 port={port} dbname=lake user=notebook sslmode=disable connect_timeout=10"
    );
    let out = Command::new(&python)
        .arg(&script)
        .arg(&dsn)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(answer["views"].as_u64().unwrap(), count_of(&lake, "view"));
    assert!(
        answer["version"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL 16.")
    );
    assert!(answer["server_version"].as_u64().unwrap() >= 160000);
    for event_type in ["view", "cart", "purchase"] {
        assert_eq!(
            answer["by_type"][event_type].as_u64().unwrap(),
            count_of(&lake, event_type),
            "{event_type}"
        );
    }
}

fn shoplake_users_add(file: &Path, name: &str, role: &str, password: &str) {
    let mut child = bin()
        .args(["users", "add", name, "--role", role, "--file"])
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}
