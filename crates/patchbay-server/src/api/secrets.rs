//! `/v1/secrets`: write-only organization secrets.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use patchbay_domain::api::{PutSecret, SecretMeta};
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list).post(create))
        .route("/secrets/{name}", put(replace).delete(remove))
}

/// `POST /v1/secrets` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    #[schema(value_type = patchbay_domain::SecretName)]
    pub name: String,
    #[schema(min_length = 1, max_length = 65536)]
    pub value: String,
    #[serde(default)]
    #[schema(value_type = Option<patchbay_domain::names::Description>)]
    pub description: Option<String>,
    /// The projects (ids or names) that may use it; absent or `null`: organization-wide.
    #[serde(default)]
    #[schema(min_items = 1)]
    pub projects: Option<Vec<String>>,
}

#[utoipa::path(get, path = "/v1/secrets", tag = "secrets", responses((status = 200, body = Vec<SecretMeta>)))]
pub async fn list(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<SecretMeta>>> {
    Ok(Json(s.hub.list_secrets(&p).await?))
}

#[utoipa::path(post, path = "/v1/secrets", tag = "secrets", request_body = NewSecret,
    responses((status = 201, body = SecretMeta), (status = 200, body = SecretMeta)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<NewSecret>,
) -> ApiResult<(StatusCode, Json<SecretMeta>)> {
    let body = PutSecret {
        value: req.value,
        description: req.description,
        projects: req.projects.map(Some),
    };
    let (meta, created) = s.hub.put_secret(&p, &req.name, body).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(meta),
    ))
}

#[utoipa::path(put, path = "/v1/secrets/{name}", tag = "secrets", request_body = PutSecret,
    params(("name" = patchbay_domain::SecretName, Path)),
    responses((status = 201, body = SecretMeta), (status = 200, body = SecretMeta)))]
pub async fn replace(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PutSecret>,
) -> ApiResult<(StatusCode, Json<SecretMeta>)> {
    let (meta, created) = s.hub.put_secret(&p, &name, req).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(meta),
    ))
}

#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "secrets", params(("name" = patchbay_domain::SecretName, Path)),
    responses((status = 204)))]
pub async fn remove(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.hub.delete_secret(&p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
