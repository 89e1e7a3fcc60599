//! `/v1/providers`: the provider catalog.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use patchbay_oauth::Provider;
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{ApiQuery, Auth};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/providers", get(list))
        .route("/providers/{key}", get(read))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderQuery {
    category: Option<String>,
}

/// Known providers: auth modes, endpoints, verify requests and operations.
#[utoipa::path(get, path = "/v1/providers", tag = "providers", params(("category" = Option<String>, Query)),
    responses((status = 200, body = Vec<Provider>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ProviderQuery>,
) -> ApiResult<Json<Vec<Provider>>> {
    Ok(Json(s.hub.list_providers(&p, q.category.as_deref())))
}

#[utoipa::path(get, path = "/v1/providers/{key}", tag = "providers", responses((status = 200, body = Provider)))]
pub async fn read(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(key): Path<String>,
) -> ApiResult<Json<Provider>> {
    Ok(Json(s.hub.get_provider(&p, &key)?))
}
