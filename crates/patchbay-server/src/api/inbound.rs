//! Inbound webhooks: `POST /v1/hooks/{endpoint}` (public: the provider's signature is the
//! credential), its poll `GET /v1/hooks/{endpoint}/events`, and `/v1/inbound` to manage
//! endpoints and their events.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_domain::inbound::{
    CreateInbound, CreatedInbound, EventPage, Inbound, InboundEvent, Received, UpdateInbound,
};
use patchbay_domain::{EventId, InboundId};
use patchbay_engine::{Answered, EngineError, Refused};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hooks/{endpoint}", post(receive))
        .route("/hooks/{endpoint}/events", get(poll))
        .route("/inbound", get(list).post(create))
        .route("/inbound/{id}", get(read).patch(update).delete(remove))
        .route("/inbound/{id}/events", get(events))
        .route("/inbound/{id}/events/{event}", get(event))
        .route("/inbound/{id}/events/{event}/replay", post(replay))
}

/// A provider's delivery, verified by the endpoint's scheme: 200 once stored (and queued to
/// the target), 200 `duplicate` for a delivery that came before, Slack's challenge echoed, 401
/// `signature` for any refusal (nothing more is told), 413 beyond the endpoint's size limit.
#[utoipa::path(post, path = "/v1/hooks/{endpoint}", tag = "inbound", security(),
    params(("endpoint" = InboundId, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the provider's delivery, as it signed it"),
    responses((status = 200, body = Received), (status = 401, description = "the signature did not verify"),
        (status = 404, description = "no such endpoint"), (status = 413, description = "larger than the endpoint accepts")))]
pub async fn receive(
    State(s): State<AppState>,
    Path(endpoint): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    match s
        .hub
        .receive_hook(&endpoint, &headers, &body, uri.query())
        .await
    {
        Ok(Answered::Received(r)) => Ok(Json(r).into_response()),
        Ok(Answered::Challenge(c)) => Ok(Json(serde_json::json!({"challenge": c})).into_response()),
        Err(Refused::Unknown) => Err(EngineError::NotFound("inbound endpoint").into()),
        Err(Refused::TooLarge(n)) => Err(ApiError::PayloadTooLarge(n as usize)),
        Err(Refused::Signature) => Err(ApiError::Signature),
        Err(Refused::Unavailable(m)) => Err(EngineError::Sealed(m).into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// The endpoint's events after `cursor`, oldest first, with their bodies (headers too for
/// admins): how a caller without a target consumes them. Audited.
#[utoipa::path(get, path = "/v1/hooks/{endpoint}/events", tag = "inbound",
    params(("endpoint" = InboundId, Path), ("cursor" = Option<EventId>, Query, description = "`next_cursor` of the previous page, or the last event seen"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, body = EventPage)))]
pub async fn poll(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(endpoint): Path<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    Ok(Json(
        s.hub
            .list_events(&p, &endpoint, q.cursor.as_deref(), q.limit, true)
            .await?,
    ))
}

/// Creates an endpoint. Without a `secret`, one is made and answered once
/// (`generated_secret`): give it to the provider.
#[utoipa::path(post, path = "/v1/inbound", tag = "inbound", request_body = patchbay_domain::inbound::CreateInboundBody,
    responses((status = 201, body = CreatedInbound), (status = 422, description = "invalid fields, each named"),
        (status = 409, description = "an endpoint of that name exists")))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<CreateInbound>,
) -> ApiResult<(StatusCode, Json<CreatedInbound>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.hub.create_inbound(&p, b).await?),
    ))
}

#[utoipa::path(get, path = "/v1/inbound", tag = "inbound", responses((status = 200, body = Vec<Inbound>)))]
pub async fn list(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<Inbound>>> {
    Ok(Json(s.hub.list_inbound(&p).await?))
}

#[utoipa::path(get, path = "/v1/inbound/{id}", tag = "inbound", params(("id" = InboundId, Path)),
    responses((status = 200, body = Inbound)))]
pub async fn read(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Inbound>> {
    Ok(Json(s.hub.get_inbound(&p, &id).await?))
}

#[utoipa::path(patch, path = "/v1/inbound/{id}", tag = "inbound", params(("id" = InboundId, Path)),
    request_body = UpdateInbound,
    responses((status = 200, body = Inbound), (status = 422, description = "invalid fields, each named")))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdateInbound>,
) -> ApiResult<Json<Inbound>> {
    Ok(Json(s.hub.update_inbound(&p, &id, b).await?))
}

#[utoipa::path(delete, path = "/v1/inbound/{id}", tag = "inbound", params(("id" = InboundId, Path)),
    responses((status = 204, description = "deleted: deliveries to it are refused from now")))]
pub async fn remove(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.hub.delete_inbound(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint's events, oldest first (without headers or bodies).
#[utoipa::path(get, path = "/v1/inbound/{id}/events", tag = "inbound",
    params(("id" = InboundId, Path), ("cursor" = Option<EventId>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, body = EventPage)))]
pub async fn events(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    Ok(Json(
        s.hub
            .list_events(&p, &id, q.cursor.as_deref(), q.limit, false)
            .await?,
    ))
}

/// One event; its headers and body for admins only (audited).
#[utoipa::path(get, path = "/v1/inbound/{id}/events/{event}", tag = "inbound",
    params(("id" = InboundId, Path), ("event" = EventId, Path)),
    responses((status = 200, body = InboundEvent)))]
pub async fn event(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, event)): Path<(String, String)>,
) -> ApiResult<Json<InboundEvent>> {
    Ok(Json(s.hub.get_event(&p, &id, &event).await?))
}

/// Forwards the event to the endpoint's target again (the same `webhook-id`).
#[utoipa::path(post, path = "/v1/inbound/{id}/events/{event}/replay", tag = "inbound",
    params(("id" = InboundId, Path), ("event" = EventId, Path)),
    responses((status = 202, body = InboundEvent), (status = 409, description = "the endpoint has no target")))]
pub async fn replay(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, event)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<InboundEvent>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(s.hub.replay_event(&p, &id, &event).await?),
    ))
}
