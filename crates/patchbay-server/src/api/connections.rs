//! `/v1/connections`: CRUD and the audited credentials read.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_domain::ConnectionId;
use patchbay_domain::api::{
    BulkDeleted, CreateConnection, Credentials, Page, TestResult, UpdateConnection,
};
use patchbay_domain::connection::Connection;
use patchbay_engine::ListQuery;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, Auth, IfMatch, path_id};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/connections",
            get(list).post(create).delete(remove_by_provider),
        )
        .route("/connections/{id}", get(read).patch(update).delete(remove))
        .route("/connections/{id}/credentials", get(credentials))
        .route("/connections/test", post(test_unsaved))
        .route("/connections/{id}/test", post(test_saved))
}

fn etag(c: &Connection) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", c.version)) {
        h.insert(header::ETAG, v);
    }
    h
}

/// Lists connections (summaries; secrets only as `{"set": true}`).
#[utoipa::path(get, path = "/v1/connections", tag = "connections",
    params(("project" = Option<String>, Query), ("kind" = Option<patchbay_domain::Kind>, Query),
        ("provider" = Option<String>, Query), ("auth" = Option<patchbay_domain::AuthType>, Query),
        ("status" = Option<patchbay_domain::Status>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200),
        ("cursor" = Option<patchbay_domain::ConnectionId>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = Page<Connection>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Connection>>> {
    Ok(Json(s.hub.list_connections(&p, q).await?))
}

#[utoipa::path(post, path = "/v1/connections", tag = "connections", request_body = CreateConnection,
    responses((status = 201, body = Connection), (status = 422, description = "invalid fields, each named")))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateConnection>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Connection>)> {
    let c = s.hub.create_connection(&p, req).await?;
    Ok((StatusCode::CREATED, etag(&c), Json(c)))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByProvider {
    #[serde(default)]
    provider: String,
}

/// Revokes (at the provider, where it can) and deletes every connection of one provider
/// that the token sees: "revoke all tokens for a service". Admins only; `provider` is
/// required.
#[utoipa::path(delete, path = "/v1/connections", tag = "connections",
    params(("provider" = String, Query, min_length = 1, max_length = 64, pattern = r"^[a-z0-9_.-]+$", description = "the provider whose connections go")),
    responses((status = 200, body = BulkDeleted), (status = 422, description = "no provider named")))]
pub async fn remove_by_provider(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ByProvider>,
) -> ApiResult<Json<BulkDeleted>> {
    Ok(Json(s.hub.delete_connections_of(&p, &q.provider).await?))
}

#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections", responses((status = 200, body = Connection)))]
pub async fn read(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<(HeaderMap, Json<Connection>)> {
    let id: ConnectionId = path_id(&id, "connection")?;
    let c = s.hub.get_connection(&p, &id).await?;
    Ok((etag(&c), Json(c)))
}

/// Updates a connection; send `If-Match: "<version>"` to refuse lost updates.
#[utoipa::path(patch, path = "/v1/connections/{id}", tag = "connections", request_body = UpdateConnection,
    responses((status = 200, body = Connection), (status = 412, description = "version mismatch")))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    IfMatch(version): IfMatch,
    ApiJson(req): ApiJson<UpdateConnection>,
) -> ApiResult<(HeaderMap, Json<Connection>)> {
    let id: ConnectionId = path_id(&id, "connection")?;
    let c = s.hub.update_connection(&p, &id, req, version).await?;
    Ok((etag(&c), Json(c)))
}

#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections", responses((status = 204)))]
pub async fn remove(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: ConnectionId = path_id(&id, "connection")?;
    s.hub.delete_connection(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Decrypted credentials (executor or admin); every read is audited.
#[utoipa::path(get, path = "/v1/connections/{id}/credentials", tag = "connections",
    responses((status = 200, body = Credentials)))]
pub async fn credentials(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<(HeaderMap, Json<Credentials>)> {
    let id: ConnectionId = path_id(&id, "connection")?;
    let creds = s.hub.credentials(&p, &id).await?;
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((h, Json(creds)))
}

/// Tests a saved connection and stores the result (rate limited per token).
#[utoipa::path(post, path = "/v1/connections/{id}/test", tag = "connections",
    responses((status = 200, body = TestResult), (status = 429, description = "rate limited; see Retry-After")))]
pub async fn test_saved(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TestResult>> {
    let id: ConnectionId = path_id(&id, "connection")?;
    Ok(Json(s.hub.test_connection(&p, &id).await?))
}

/// Tests a connection before saving it; nothing is stored.
#[utoipa::path(post, path = "/v1/connections/test", tag = "connections", request_body = CreateConnection,
    responses((status = 200, body = TestResult), (status = 429, description = "rate limited; see Retry-After")))]
pub async fn test_unsaved(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateConnection>,
) -> ApiResult<Json<TestResult>> {
    Ok(Json(s.hub.test_unsaved(&p, req).await?))
}
