//! Liveness and readiness; no token needed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use patchbay_domain::api::{ConnectionCounts, Health};

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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
