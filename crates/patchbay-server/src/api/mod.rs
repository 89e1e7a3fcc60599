//! The JSON API under `/v1` (SPEC §3). Each resource module exports `router()`; this module
//! assembles them with the fallbacks and the body limit; [`App`] puts the observe layer around
//! the router and the proxy.

mod actions;
mod apps;
mod audit;
mod connections;
mod deliveries;
mod gateway;
mod health;
mod inbound;
mod keys;
mod mcp;
mod oauth;
mod openapi;
mod orgs;
mod projects;
mod providers;
mod proxy;
mod secrets;
mod tokens;

use std::pin::Pin;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::{Extension, Router, middleware};
use hyper::body::Incoming;
use tower::ServiceExt as _;

use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::observe::{Seen, Served};
use crate::startup::AppState;

pub use openapi::ApiDoc;

/// What serves every request: the proxy — the hot path — directly, the rest through the router.
#[derive(Debug, Clone)]
pub struct App(Arc<(Router, AppState)>);

impl App {
    pub fn new(state: AppState, body_limit: usize) -> Self {
        Self(Arc::new((router(state.clone(), body_limit), state)))
    }

    /// The answer to `req`, through the observe layer. The future is boxed: the handlers'
    /// are large, and hyper moves the one it is given.
    pub fn call(
        &self,
        req: http::Request<Incoming>,
    ) -> Pin<Box<dyn Future<Output = Response> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            let (router, state) = &*this.0;
            if proxy::is_proxied(req.uri().path()) {
                let seen = Seen::of(&req, Served::Proxy);
                seen.answered(state, proxy::forward(state, req).await)
            } else {
                let seen = Seen::of(&req, Served::Router);
                let response = match router.clone().oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                seen.answered(state, response)
            }
        })
    }
}

fn router(state: AppState, body_limit: usize) -> Router {
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
        .merge(mcp::router())
        .merge(deliveries::router())
        .merge(inbound::router())
        .merge(openapi::router());
    Router::new()
        .nest("/v1", v1)
        .merge(gateway::router())
        .merge(health::router())
        .merge(crate::ui::router())
        .fallback(
            |uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
                crate::ui::not_found(&headers, uri.path())
            },
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(Extension(BodyLimit(body_limit)))
        .route_layer(middleware::from_fn(crate::observe::matched_route))
        .with_state(state)
}
