//! `/v1/deliveries`: the webhook outbox — list, one, replay.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_domain::actions::Delivery;
use patchbay_domain::api::Page;
use patchbay_domain::{ConnectionId, DeliveryId};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Auth, path_id};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/deliveries", get(list))
        .route("/deliveries/{id}", get(read))
        .route("/deliveries/{id}/replay", post(replay))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    pub status: Option<String>,
    pub connection: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Deliveries, newest first.
#[utoipa::path(get, path = "/v1/deliveries", tag = "deliveries",
    params(("status" = Option<String>, Query, pattern = "^(pending|delivering|delivered|failed)$"),
        ("connection" = Option<ConnectionId>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500),
        ("cursor" = Option<DeliveryId>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = Page<Delivery>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Page<Delivery>>> {
    let connection = q
        .connection
        .as_deref()
        .map(|c| {
            c.parse::<ConnectionId>()
                .map_err(|_| ApiError::BadQuery("connection is not a connection id".into()))
        })
        .transpose()?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<DeliveryId>()
                .map_err(|_| ApiError::BadQuery("cursor is not a delivery id".into()))
        })
        .transpose()?;
    Ok(Json(
        s.hub
            .list_deliveries(
                &p,
                q.status.as_deref(),
                connection.as_ref(),
                cursor.as_ref(),
                q.limit,
            )
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries", responses((status = 200, body = Delivery)))]
pub async fn read(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Delivery>> {
    let id: DeliveryId = path_id(&id, "delivery")?;
    Ok(Json(s.hub.get_delivery(&p, &id).await?))
}

/// Queues a delivered or dead-lettered delivery again (same `webhook-id`).
#[utoipa::path(post, path = "/v1/deliveries/{id}/replay", tag = "deliveries",
    responses((status = 202, body = Delivery), (status = 409, description = "still queued")))]
pub async fn replay(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let id: DeliveryId = path_id(&id, "delivery")?;
    Ok((
        StatusCode::ACCEPTED,
        Json(s.hub.replay_delivery(&p, &id).await?),
    ))
}
