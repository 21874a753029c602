//! The JSON API: the reports, and the server's health.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::json;
use shoplake_sql::SqlCatalog;

use super::AppState;
use crate::reports::{self, ReportError, ReportParams};

/// An API error: its status and a JSON body that says what is wrong.
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        let status = match &e {
            e if e.is_usage() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("report failed: {e}");
        }
        ApiError {
            status,
            message: e.to_string(),
        }
    }
}

impl From<shoplake_sql::SqlError> for ApiError {
    fn from(e: shoplake_sql::SqlError) -> Self {
        ReportError::from(e).into()
    }
}

/// The report parameters of a query string; anything else is refused by name.
pub(crate) fn parse_params(pairs: &[(String, String)]) -> Result<ReportParams, ApiError> {
    let mut params = ReportParams::default();
    let date = |name: &str, v: &str| {
        NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request(format!("{name} '{v}' is not a date; write YYYY-MM-DD"))
        })
    };
    let number = |name: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("{name} '{v}' is not a whole number")))
    };
    for (key, value) in pairs {
        let value = value.trim();
        match key.as_str() {
            "from" => params.from = Some(date("from", value)?),
            "to" => params.to = Some(date("to", value)?),
            "category" if !value.is_empty() => params.category = Some(value.to_string()),
            "brand" if !value.is_empty() => params.brand = Some(value.to_string()),
            "category" | "brand" => {}
            "limit" => params.limit = Some(number("limit", value)? as usize),
            "min_views" => params.min_views = Some(number("min_views", value)?),
            // The page passes its token on; the middleware has checked it.
            "token" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter '{other}'; the parameters are from, to, category, brand, limit, min_views"
                )));
            }
        }
    }
    Ok(params)
}

/// `GET /api/reports`.
pub(crate) async fn list() -> Json<serde_json::Value> {
    Json(json!({ "reports": reports::list() }))
}

/// `GET /api/reports/{name}`.
pub(crate) async fn report(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = parse_params(&pairs)?;
    // Refused before the lake is read.
    reports::validate(&name, &params)?;
    let catalog = SqlCatalog::open(&state.lake).await?;
    let report = reports::run(&catalog, &name, &params).await?;
    Ok(Json(report.to_json()))
}

/// The version of `model.fact_user_events` a catalog reads (-1 before the first run).
pub(crate) async fn lake_version(catalog: &SqlCatalog) -> i64 {
    match catalog
        .table(&shoplake_lake::tables::fact_user_events())
        .await
    {
        Ok(Some(table)) => table
            .version()
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or(-1),
        _ => -1,
    }
}

/// `GET /healthz`: the server answers and the lake can be read.
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    match SqlCatalog::open(&state.lake).await {
        Ok(catalog) => {
            let version = lake_version(&catalog).await;
            Json(json!({
                "status": "ok",
                "lake": state.lake.root().as_str(),
                "fact_version": version,
            }))
            .into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "error", "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// Any other path.
pub(crate) async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: "no such page; the dashboard is at /, the reports at /api/reports".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &[(&str, &str)]) -> Vec<(String, String)> {
        text.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_are_read_or_refused_by_name() {
        let p = parse_params(&pairs(&[
            ("from", "2020-04-01"),
            ("to", "2020-04-03"),
            ("category", "electronics"),
            ("brand", ""),
            ("limit", "5"),
        ]))
        .ok()
        .unwrap();
        assert_eq!(p.from, NaiveDate::from_ymd_opt(2020, 4, 1));
        assert_eq!(p.category.as_deref(), Some("electronics"));
        assert_eq!(p.brand, None);
        assert_eq!(p.limit, Some(5));
        for (bad, says) in [
            (("from", "2020-13-01"), "not a date"),
            (("limit", "-3"), "not a whole number"),
            (("colour", "red"), "unknown parameter 'colour'"),
        ] {
            let err = parse_params(&pairs(&[bad])).err().unwrap();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains(says), "{}", err.message);
        }
    }
}
