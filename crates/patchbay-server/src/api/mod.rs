//! The JSON API under `/v1` (SPEC §3). Each resource module exports `router()`; this module
//! assembles them with the fallbacks, the body limit and the request log.

mod actions;
mod apps;
mod audit;
mod connections;
mod deliveries;
mod health;
mod keys;
mod oauth;
mod openapi;
mod orgs;
mod projects;
mod providers;
mod proxy;
mod secrets;
mod tokens;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router, middleware};

use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::startup::AppState;

pub use openapi::ApiDoc;

pub fn router(state: AppState, body_limit: usize) -> Router {
    let v1 = Router::new()
        .merge(orgs::router())
        .merge(apps::router())
        .merge(oauth::router())
        .merge(projects::router())
        .merge(providers::router())
        .merge(tokens::router())
        .merge(secrets::router())
        .merge(connections::router())
        .merge(audit::router())
        .merge(keys::router())
        .merge(actions::router())
        .merge(deliveries::router())
        .merge(openapi::router());
    Router::new()
        .nest("/v1", v1)
        .merge(health::router())
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(Extension(BodyLimit(body_limit)))
        .layer(middleware::from_fn(crate::logging::log_requests))
        // The proxy is the hot path: at the root, outside the layers above (it needs no JSON
        // body limit and logs its own requests, at debug level).
        .merge(proxy::router())
        .with_state(state)
}
