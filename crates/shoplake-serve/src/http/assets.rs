//! The dashboard's files, embedded in the binary: the page, its script, and Apache ECharts
//! (`echarts.min.js` from the npm package `echarts`, Apache-2.0; its license and notice are
//! served beside it). To update ECharts: `npm pack echarts@VERSION`, copy
//! `package/dist/echarts.min.js`, `LICENSE`, `NOTICE` and `licenses/LICENSE-d3` into
//! `crates/shoplake-serve/assets/` (the last three as `ECHARTS_LICENSE`, `ECHARTS_NOTICE`,
//! `ECHARTS_LICENSE-d3`), and rebuild.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const DASHBOARD: &str = include_str!("../../assets/dashboard.html");

/// The files under `/assets/`: name, content type, bytes.
const FILES: [(&str, &str, &[u8]); 5] = [
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard.js"),
    ),
    (
        "echarts.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/echarts.min.js"),
    ),
    (
        "ECHARTS_LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/ECHARTS_LICENSE"),
    ),
    (
        "ECHARTS_NOTICE",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/ECHARTS_NOTICE"),
    ),
    (
        "ECHARTS_LICENSE-d3",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/ECHARTS_LICENSE-d3"),
    ),
];

/// `GET /`.
pub(crate) async fn dashboard() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DASHBOARD,
    )
        .into_response()
}

/// `GET /assets/{file}`.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, bytes)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
