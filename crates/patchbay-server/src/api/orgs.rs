//! `/v1/me` and `/v1/orgs` (operator only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use patchbay_domain::api::{CreateOrg, CreatedOrg, Me, Org};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/orgs", get(list).post(create))
}

/// Who the caller is.
#[utoipa::path(get, path = "/v1/me", tag = "orgs", responses((status = 200, body = Me)))]
pub async fn me(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Me>> {
    Ok(Json(s.hub.me(&p).await?))
}

/// Organizations (operator only).
#[utoipa::path(get, path = "/v1/orgs", tag = "orgs", responses((status = 200, body = Vec<Org>)))]
pub async fn list(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<Org>>> {
    Ok(Json(s.hub.list_orgs(&p).await?))
}

/// Creates an organization and returns its first admin token, once (operator only).
#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", request_body = CreateOrg,
    responses((status = 201, body = CreatedOrg)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, Json<CreatedOrg>)> {
    Ok((StatusCode::CREATED, Json(s.hub.create_org(&p, req).await?)))
}
