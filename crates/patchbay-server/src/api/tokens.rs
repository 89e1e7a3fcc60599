//! `/v1/tokens` (admin).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use patchbay_domain::TokenId;
use patchbay_domain::api::{CreateToken, CreatedToken, Token};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, path_id};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", responses((status = 200, body = Vec<Token>)))]
pub async fn list(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<Token>>> {
    Ok(Json(s.hub.list_tokens(&p).await?))
}

/// Creates a token; its value is in this response only.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.hub.create_token(&p, req).await?),
    ))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", responses((status = 204)))]
pub async fn revoke(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: TokenId = path_id(&id, "token")?;
    s.hub.delete_token(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
