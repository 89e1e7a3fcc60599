//! MCP connections: discovery before saving, re-discovery of a saved connection's tools, tool
//! calls as actions, and the registry of known servers.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_domain::ConnectionId;
use patchbay_domain::actions::{McpAction, McpActionResult};
use patchbay_domain::api::{McpDiscover, McpDiscovery, McpProvider};

use crate::api::actions::caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, path_id};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mcp/discover", post(discover))
        .route("/mcp/providers", get(providers))
        .route("/connections/{id}/refresh-tools", post(refresh_tools))
        .route("/actions/mcp", post(call))
}

/// Connects to an MCP server described as a connection would be and lists its tools; nothing
/// is saved. A failure answers like a connection test (`success: false`, `error_kind`).
#[utoipa::path(post, path = "/v1/mcp/discover", tag = "mcp", request_body = McpDiscover,
    responses((status = 200, body = McpDiscovery), (status = 422, description = "invalid fields, each named"),
        (status = 429, description = "rate limited; see Retry-After")))]
pub async fn discover(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<McpDiscover>,
) -> ApiResult<Json<McpDiscovery>> {
    Ok(Json(s.hub.mcp_discover(&p, body).await?))
}

/// Discovers a saved MCP connection's tools again and keeps them (`mcp.tools`).
#[utoipa::path(post, path = "/v1/connections/{id}/refresh-tools", tag = "mcp",
    responses((status = 200, body = McpDiscovery), (status = 400, description = "not an MCP connection"),
        (status = 429, description = "rate limited; see Retry-After")))]
pub async fn refresh_tools(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<McpDiscovery>> {
    let id: ConnectionId = path_id(&id, "connection")?;
    Ok(Json(s.hub.refresh_tools(&p, &id).await?))
}

/// Calls one tool of an MCP connection's server; the result as the server wrote it (a tool
/// that failed answers 200 with `isError: true`).
#[utoipa::path(post, path = "/v1/actions/mcp", tag = "actions", request_body = McpAction,
    responses((status = 200, body = McpActionResult), (status = 422, description = "invalid fields, each named"),
        (status = 502, description = "the MCP server failed"), (status = 504, description = "the MCP server did not answer in time")))]
pub async fn call(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(a): ApiJson<McpAction>,
) -> ApiResult<Json<McpActionResult>> {
    let caller = caller(&headers)?;
    Ok(Json(s.hub.mcp_action(&p, a, caller).await?))
}

/// The registry of known MCP servers, with the operator's URLs (`PATCHBAY_MCP_<NAME>_URL`).
#[utoipa::path(get, path = "/v1/mcp/providers", tag = "mcp",
    responses((status = 200, body = Vec<McpProvider>)))]
pub async fn providers(State(s): State<AppState>, Auth(_p): Auth) -> Json<Vec<McpProvider>> {
    Json(s.hub.mcp_providers())
}
