//! Liveness and readiness (no token needed), and `/metrics` (the metrics token when one is
//! set).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::{Json, Router};
use patchbay_domain::api::{ConnectionCounts, Health};

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The Prometheus text exposition. With `PATCHBAY_METRICS_TOKEN` set it needs that token as a
/// bearer token (401 otherwise); it never needs, and never shows, an API token.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, description = "The metrics token is set and was not given")))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.metrics_token {
        let given = crate::extract::bearer_in(headers.get(header::AUTHORIZATION));
        if given.map(patchbay_engine::hash_token).ok().as_deref() != Some(expected.as_slice()) {
            return crate::error::ApiError::from(patchbay_engine::EngineError::Unauthenticated)
                .into_response();
        }
    }
    let open = i64::try_from(state.counters.open()).unwrap_or(i64::MAX);
    state.hub.metrics().set_open_connections(open);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.hub.metrics_text(),
    )
        .into_response()
}

/// The process is up; with its client connections (open, cap, refused).
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let c = &state.counters;
    Json(Health {
        status: "ok".into(),
        store: None,
        vault: None,
        connections: Some(ConnectionCounts {
            open: c.open(),
            limit: c.limit(),
            refused: c.refused(),
        }),
    })
}

/// The store answers and the vault is unsealed (503 otherwise).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (ready, store, vault) = state.hub.readiness().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if ready { "ready" } else { "not ready" };
    (
        status,
        Json(Health {
            status: word.into(),
            store: Some(store),
            vault: Some(vault),
            connections: None,
        }),
    )
}
