//! The OpenAPI document at `/v1/openapi.json`, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::extract::Auth;
use crate::startup::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Patchbay", description = "A self-hostable connections hub."),
    paths(
        super::health::healthz, super::health::readyz, super::health::metrics,
        super::orgs::me, super::orgs::list, super::orgs::create,
        super::projects::list, super::projects::create, super::projects::read, super::projects::update,
        super::projects::remove,
        super::providers::list, super::providers::read,
        super::oauth::start, super::oauth::start_redirect, super::oauth::callback, super::oauth::token,
        super::apps::list, super::apps::create, super::apps::update, super::apps::remove,
        super::tokens::list, super::tokens::create, super::tokens::revoke,
        super::secrets::list, super::secrets::create, super::secrets::replace, super::secrets::remove,
        super::connections::list, super::connections::create, super::connections::read,
        super::connections::update, super::connections::remove, super::connections::credentials,
        super::connections::test_saved, super::connections::test_unsaved,
        super::audit::list, super::audit::verify,
        super::keys::status, super::keys::rotate,
        super::actions::http, super::actions::sql, super::actions::email, super::actions::webhook, super::actions::run_node,
        super::deliveries::list, super::deliveries::read, super::deliveries::replay,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pb_…")
                    .build(),
            ),
        );
    }
}

/// The document itself; like every API route it needs a token.
async fn document(_: Auth) -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}
