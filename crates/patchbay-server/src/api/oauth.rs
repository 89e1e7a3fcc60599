//! The OAuth authorization-code flow over HTTP: start it for a connection (JSON, or a redirect
//! for a browser).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_domain::ConnectionId;
use patchbay_engine::OAuthStart;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Auth, parse_json, path_id};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connections/{id}/oauth/start", post(start))
        .route("/oauth/start", get(start_redirect))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// Where the browser goes after the callback (a URL of this deployment).
    #[serde(default)]
    pub return_to: Option<String>,
}

/// Starts the authorization-code flow; open `authorization_url` in a browser.
#[utoipa::path(post, path = "/v1/connections/{id}/oauth/start", tag = "oauth", request_body = Option<StartBody>,
    responses((status = 200, body = OAuthStart)))]
pub async fn start(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<OAuthStart>> {
    let id: ConnectionId = path_id(&id, "connection")?;
    let body: StartBody = if body.is_empty() {
        StartBody::default()
    } else {
        parse_json(&body)?
    };
    Ok(Json(s.hub.start_oauth(&p, &id, body.return_to).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    connection: String,
    return_to: Option<String>,
}

/// The same for a browser: answers 303 to the provider's authorization page.
#[utoipa::path(get, path = "/v1/oauth/start", tag = "oauth",
    params(("connection" = String, Query), ("return_to" = Option<String>, Query)),
    responses((status = 303, description = "to the provider's authorization page")))]
pub async fn start_redirect(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<StartQuery>,
) -> ApiResult<Response> {
    let id: ConnectionId = path_id(&q.connection, "connection")?;
    let started = s.hub.start_oauth(&p, &id, q.return_to).await?;
    let location = HeaderValue::from_str(&started.authorization_url)
        .map_err(|_| ApiError::BadQuery("unusable authorization URL".into()))?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
}
