//! `/v1/oauth/apps` (admin): OAuth client registrations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use patchbay_domain::AppId;
use patchbay_domain::api::{CreateOAuthApp, OAuthApp, UpdateOAuthApp};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, IfMatch, path_id};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/apps", get(list).post(create))
        .route("/oauth/apps/{id}", patch(update).delete(remove))
}

#[utoipa::path(get, path = "/v1/oauth/apps", tag = "oauth", responses((status = 200, body = Vec<OAuthApp>)))]
pub async fn list(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<OAuthApp>>> {
    Ok(Json(s.hub.list_apps(&p).await?))
}

#[utoipa::path(post, path = "/v1/oauth/apps", tag = "oauth", request_body = CreateOAuthApp,
    responses((status = 201, body = OAuthApp)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateOAuthApp>,
) -> ApiResult<(StatusCode, Json<OAuthApp>)> {
    Ok((StatusCode::CREATED, Json(s.hub.create_app(&p, req).await?)))
}

#[utoipa::path(patch, path = "/v1/oauth/apps/{id}", tag = "oauth", request_body = UpdateOAuthApp,
    responses((status = 200, body = OAuthApp)))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    IfMatch(version): IfMatch,
    ApiJson(req): ApiJson<UpdateOAuthApp>,
) -> ApiResult<Json<OAuthApp>> {
    let id: AppId = path_id(&id, "OAuth app")?;
    Ok(Json(s.hub.update_app(&p, &id, req, version).await?))
}

#[utoipa::path(delete, path = "/v1/oauth/apps/{id}", tag = "oauth", responses((status = 204)))]
pub async fn remove(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: AppId = path_id(&id, "OAuth app")?;
    s.hub.delete_app(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
