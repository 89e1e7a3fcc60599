//! `/v1/keys` (operator): data-key versions and online rotation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_domain::api::{KeysStatus, RotationProgress};

use crate::error::ApiResult;
use crate::extract::Auth;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/keys", get(status))
        .route("/keys/rotate", post(rotate))
}

/// Key versions, how many ciphertexts each still seals, and rotation progress.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = KeysStatus)))]
pub async fn status(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<KeysStatus>> {
    Ok(Json(s.hub.keys_status(&p).await?))
}

/// Adds a data-key version and re-encrypts every ciphertext onto it in the background.
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "keys", responses((status = 202, body = RotationProgress)))]
pub async fn rotate(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<(StatusCode, Json<RotationProgress>)> {
    Ok((StatusCode::ACCEPTED, Json(s.hub.rotate_keys(&p).await?)))
}
