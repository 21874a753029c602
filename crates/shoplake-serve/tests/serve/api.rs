//! The HTTP API on a real socket, read by a plain HTTP/1.1 client: the same figures as the
//! reports, errors as 400 with a JSON body, the users and the token when they are set, health
//! and metrics, and a new lake version seen without a restart.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use serde_json::Value;
use shoplake_serve::http::{ServeOptions, bind, serve};
use shoplake_serve::reports::ReportParams;
use shoplake_serve::users::{Users, add_user};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::common::*;

/// A response: status, headers, body.
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn get(addr: SocketAddr, path: &str, header: Option<&str>) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra = header.map(|h| format!("{h}\r\n")).unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    // Bodies come chunked or with a length; undo the chunks.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers: head.to_string(),
        body,
    }
}

/// A server on a free loopback port; dropping the sender stops it.
async fn start(
    lake: shoplake_lake::Lake,
    token: Option<&str>,
) -> (SocketAddr, oneshot::Sender<()>) {
    start_with(lake, token, None).await
}

async fn start_with(
    lake: shoplake_lake::Lake,
    token: Option<&str>,
    users: Option<Users>,
) -> (SocketAddr, oneshot::Sender<()>) {
    let options = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_string),
        users: users.map(Arc::new),
        tls: None,
    };
    let (listener, addr) = bind(&options).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(lake, listener, options, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

#[tokio::test]
async fn the_api_answers_the_reports_figures_and_refuses_bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_of(dir.path(), &[fixture_file("edge_cases.csv")]).await;
    let (addr, _stop) = start(lake.clone(), None).await;

    let list = get(addr, "/api/reports", None).await;
    assert_eq!(list.status, 200);
    let listed = list.json();
    let names: Vec<&str> = listed["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "summary",
            "funnel",
            "products",
            "sessions",
            "categories",
            "brands",
            "trends",
            "prices",
            "users"
        ]
    );

    // The same document as the report itself, for a range and a filter.
    for (query, params) in [
        ("", ReportParams::default()),
        (
            "?from=2020-04-02&to=2020-04-02&category=electronics",
            ReportParams {
                from: chrono::NaiveDate::from_ymd_opt(2020, 4, 2),
                to: chrono::NaiveDate::from_ymd_opt(2020, 4, 2),
                category: Some("electronics".into()),
                ..ReportParams::default()
            },
        ),
    ] {
        for name in ["summary", "funnel", "sessions", "products"] {
            let reply = get(addr, &format!("/api/reports/{name}{query}"), None).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert!(
                reply
                    .headers
                    .to_ascii_lowercase()
                    .contains("application/json")
            );
            assert_eq!(
                reply.json(),
                report_json(&lake, name, &params).await,
                "{name}{query}"
            );
        }
    }

    for (path, status, says) in [
        ("/api/reports/nope", 400, "no report named 'nope'"),
        ("/api/reports/funnel?from=2020-04-31", 400, "not a date"),
        (
            "/api/reports/funnel?from=2020-04-03&to=2020-04-01",
            400,
            "before it starts",
        ),
        ("/api/reports/products?limit=0", 400, "limit 0"),
        (
            "/api/reports/products?limit=many",
            400,
            "not a whole number",
        ),
        (
            "/api/reports/funnel?colour=red",
            400,
            "unknown parameter 'colour'",
        ),
        ("/api/reports/funnel?from=2021-01-01", 400, "is empty"),
        ("/nothing/here", 404, "no such page"),
    ] {
        let reply = get(addr, path, None).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        let error = reply.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{path}: {error}");
    }

    let health = get(addr, "/healthz", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let page = get(addr, "/", None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("assets/echarts.min.js"));
    let echarts = get(addr, "/assets/echarts.min.js", None).await;
    assert_eq!(echarts.status, 200);
    assert!(echarts.body.len() > 500_000, "ECharts is embedded");

    let metrics = get(addr, "/metrics", None).await.body;
    assert!(
        metrics.contains(
            "shoplake_http_requests_total{route=\"/api/reports/{name}\",status=\"400\"} 7"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "shoplake_http_requests_total{route=\"/api/reports/{name}\",status=\"200\"} 8"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "shoplake_http_request_duration_seconds_count{route=\"/api/reports/{name}\"}"
        )
    );
    let version = health.json()["fact_version"].as_i64().unwrap();
    assert!(
        metrics.contains(&format!("shoplake_lake_version {version}")),
        "{metrics}"
    );

    // A new lake version is served without a restart: another day lands.
    let more = dir.path().join("more.csv");
    std::fs::write(
        &more,
        format!(
            "{}\n2020-04-03 10:00:00 UTC,view,100,2000000000000000001,electronics.smartphone,apple,500.00,9,s9\n",
            shoplake_lake::tables::EXPORT_HEADER
        ),
    )
    .unwrap();
    shoplake_ingest::ingest_paths(&lake, &[more], &shoplake_lake::NoProgress)
        .await
        .unwrap();
    shoplake_pipeline::run(&lake, &Default::default(), &shoplake_lake::NoProgress)
        .await
        .unwrap();
    let after = get(addr, "/api/reports/summary", None).await.json();
    assert_eq!(after["to"], "2020-04-03");
    assert_eq!(table(&after, "kpis")[0]["events"], 14);
}

#[tokio::test]
async fn a_token_is_required_when_set_and_elsewhere_than_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_of(dir.path(), &[fixture_file("edge_cases.csv")]).await;
    let outside = ServeOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        token: None,
        users: None,
        tls: None,
    };
    let err = bind(&outside).await.unwrap_err().to_string();
    assert!(
        err.contains("not a loopback address") && err.contains("token"),
        "{err}"
    );

    let (addr, _stop) = start(lake, Some("s3cret")).await;
    let refused = get(addr, "/api/reports/summary", None).await;
    assert_eq!(refused.status, 401);
    assert!(refused.json()["error"].as_str().unwrap().contains("token"));
    assert_eq!(
        get(
            addr,
            "/api/reports/summary",
            Some("Authorization: Bearer wrong")
        )
        .await
        .status,
        401
    );
    assert_eq!(
        get(
            addr,
            "/api/reports/summary",
            Some("Authorization: Bearer s3cret")
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(addr, "/api/reports/summary?token=s3cret", None)
            .await
            .status,
        200
    );
    assert_eq!(get(addr, "/?token=s3cret", None).await.status, 200);
    // Health answers without it (it says nothing of the data).
    assert_eq!(get(addr, "/healthz", None).await.status, 200);
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Authorization: Basic {}",
        BASE64.encode(format!("{user}:{password}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_file_s_users_log_in_and_nothing_but_health_answers_without() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_of(dir.path(), &[fixture_file("edge_cases.csv")]).await;
    let path = dir.path().join("users.toml");
    add_user(&path, "ana", "analyst", "ana-pw").unwrap();
    add_user(&path, "eve", "engineer", "eve-pw").unwrap();
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap() + "\n[roles.loader]\nschemas = [\"raw\"]\n",
    )
    .unwrap();
    add_user(&path, "lou", "loader", "lou-pw").unwrap();
    let users = Users::load(&path).unwrap();

    // Off loopback, logins with passwords need TLS (the CLI test serves HTTPS).
    let outside = ServeOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        token: None,
        users: Some(Arc::new(users.clone())),
        tls: None,
    };
    let e = bind(&outside).await.unwrap_err().to_string();
    assert!(
        e.contains("carry passwords") && e.contains("--tls-cert"),
        "{e}"
    );

    let (open, _stop_open) = start(lake.clone(), None).await;
    let (addr, _stop) = start_with(lake, None, Some(users)).await;
    let expected = get(open, "/api/reports/summary", None).await.json();

    for path in [
        "/",
        "/api/reports",
        "/api/reports/summary",
        "/metrics",
        "/nowhere",
    ] {
        let refused = get(addr, path, None).await;
        assert_eq!(refused.status, 401, "{path}");
        assert!(
            refused
                .headers
                .to_ascii_lowercase()
                .contains("www-authenticate: basic realm=\"shoplake\""),
            "{path}: {}",
            refused.headers
        );
        assert!(refused.json()["error"].as_str().unwrap().contains("log in"));
    }
    assert_eq!(get(addr, "/healthz", None).await.status, 200);

    for (user, password) in [("ana", "ana-pw"), ("eve", "eve-pw")] {
        let summary = get(addr, "/api/reports/summary", Some(&basic(user, password))).await;
        assert_eq!(summary.status, 200, "{user}: {}", summary.body);
        assert_eq!(summary.json(), expected, "{user}");
        assert_eq!(
            get(addr, "/", Some(&basic(user, password))).await.status,
            200
        );
    }
    let wrong = get(addr, "/api/reports/summary", Some(&basic("ana", "eve-pw"))).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.json()["error"].as_str().unwrap().contains("\"ana\""));
    assert_eq!(
        get(addr, "/api/reports", Some(&basic("nobody", "x")))
            .await
            .status,
        401
    );
    // A role that does not see the model layer does not see the reports.
    let forbidden = get(addr, "/api/reports/summary", Some(&basic("lou", "lou-pw"))).await;
    assert_eq!(forbidden.status, 403);
    assert!(
        forbidden.json()["error"]
            .as_str()
            .unwrap()
            .contains("loader")
    );
    // Without a token configured, no Bearer passes.
    assert_eq!(
        get(addr, "/api/reports", Some("Authorization: Bearer ana-pw"))
            .await
            .status,
        401
    );
}
