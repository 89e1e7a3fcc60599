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
        .route("/connections/{id}/oauth/disconnect", post(disconnect))
        .route("/oauth/start", get(start_redirect))
        .route("/oauth/callback", get(callback))
        .route("/oauth/client-metadata.json", get(client_metadata))
        .route("/connections/{id}/token", get(token))
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
    // No body, or `null` (the document's "no options"), is the defaults.
    let body: StartBody = if body.is_empty() {
        StartBody::default()
    } else {
        parse_json::<Option<StartBody>>(&body)?.unwrap_or_default()
    };
    Ok(Json(s.hub.start_oauth(&p, &id, body.return_to).await?))
}

/// Unlinks the connection's account: the grant is revoked at the provider (when it has a
/// revocation endpoint), the obtained tokens are destroyed, and the connection is `pending`
/// until it is connected again.
#[utoipa::path(post, path = "/v1/connections/{id}/oauth/disconnect", tag = "oauth",
    responses((status = 204, description = "unlinked"), (status = 409, description = "not an oauth2 connection")))]
pub async fn disconnect(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: ConnectionId = path_id(&id, "connection")?;
    s.hub.disconnect_oauth(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Patchbay's OAuth client ID metadata document: its `client_id` with authorization servers
/// that accept such documents (MCP authorization), a public client with PKCE and this
/// deployment's callback.
#[utoipa::path(get, path = "/v1/oauth/client-metadata.json", tag = "oauth", security(),
    responses((status = 200, description = "the client metadata (RFC 7591 fields)", body = Object)))]
pub async fn client_metadata(State(s): State<AppState>) -> Response {
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        )],
        Json(s.hub.client_metadata()),
    )
        .into_response()
}

/// The page that sends the browser on to `return_to` after a successful callback. Not a
/// redirect: a redirect would continue the navigation the provider's site started, and the web
/// UI's SameSite=Strict session cookie is withheld from such a navigation; a page of this
/// deployment that navigates on its own is same-site.
fn onward(return_to: &str) -> Response {
    let target = escape(return_to);
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Connected</title>\
         <meta http-equiv=\"refresh\" content=\"0; url={target}\"></head><body>\
         <h1>Connected</h1><p><a href=\"{target}\">Continue</a></p></body></html>"
    );
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The provider's redirect target. Answers a page that tells its opener (`postMessage` with
/// an explicit target origin) and closes, or goes on to the flow's `return_to`.
#[utoipa::path(get, path = "/v1/oauth/callback", tag = "oauth", security(),
    params(("code" = Option<String>, Query), ("state" = String, Query, min_length = 1), ("iss" = Option<String>, Query)),
    responses((status = 200, description = "connected: a page that tells the window that opened it, or goes on to the flow's `return_to`", content_type = "text/html"),
        (status = 400, description = "refused, with a reason, as a page", content_type = "text/html"),
        (status = 404, description = "the state names no authorization request, as a page", content_type = "text/html")))]
pub async fn callback(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    let browser = crate::ui::oauth_browser(&headers, s.hub.public_url().starts_with("https://"));
    let outcome = s.hub.oauth_callback(&q, browser).await;
    if outcome.success
        && let Some(rt) = &outcome.return_to
    {
        return onward(rt);
    }
    let kind = if outcome.success {
        "oauth_success"
    } else {
        "oauth_error"
    };
    let message = serde_json::json!({"type": kind, "connection": outcome.connection});
    let origin = url::Url::parse(s.hub.public_url())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let nonce: String = rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let title = if outcome.success {
        "Connected"
    } else {
        "Connection failed"
    };
    // Without an opener (the flow ran in this window) the way back is a link.
    let back = outcome
        .connection
        .as_ref()
        .map(|id| {
            format!(
                " <a href=\"/connections/{}\">Back to the connection</a>",
                escape(&id.to_string())
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\
         <h1>{title}</h1><p>{}</p><p>You can close this window.{back}</p>\
         <script nonce=\"{nonce}\">if (window.opener) {{ window.opener.postMessage({}, {}); window.close(); }}</script>\
         </body></html>",
        escape(&outcome.message),
        serde_json::to_string(&message)
            .unwrap_or_default()
            .replace('<', "\\u003c"),
        serde_json::to_string(&origin)
            .unwrap_or_default()
            .replace('<', "\\u003c"),
    );
    let status = if outcome.success {
        StatusCode::OK
    } else if outcome.unknown {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_REQUEST
    };
    let csp = format!("default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'");
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A usable access token (executor or admin; audited).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AccessToken {
    pub access_token: String,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[utoipa::path(get, path = "/v1/connections/{id}/token", tag = "oauth", responses((status = 200, body = AccessToken)))]
pub async fn token(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<(axum::http::HeaderMap, Json<AccessToken>)> {
    let id: ConnectionId = path_id(&id, "connection")?;
    let (access_token, expires_at) = s.hub.access_token(&p, &id).await?;
    let mut h = axum::http::HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((
        h,
        Json(AccessToken {
            access_token,
            expires_at,
        }),
    ))
}
