//! The organization's settings pages: secrets (names and whether they are set; a value is
//! written, never shown), API tokens (a new token's value shown once), OAuth apps, the audit
//! log (filters, pages, the chain's check) and webhook deliveries (status, attempts, replay).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use patchbay_domain::api::{CreateOAuthApp, CreateToken, PutSecret};
use patchbay_domain::{AppId, DeliveryId, Role, TokenId};
use patchbay_engine::{AuditFilter, EngineError};
use serde::Deserialize;

use super::session::Posted;
use super::views::Moment;
use super::{Shell, UiError, Viewer, page};
use crate::error::ApiError;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(secrets).post(add_secret))
        .route("/secrets/{name}", post(change_secret))
        .route("/secrets/{name}/delete", post(delete_secret))
        .route("/tokens", get(tokens).post(create_token))
        .route("/tokens/{id}/delete", post(delete_token))
        .route("/apps", get(apps).post(create_app))
        .route("/apps/{id}/delete", post(delete_app))
        .route("/audit", get(audit))
        .route("/deliveries", get(deliveries))
        .route("/deliveries/{id}/replay", post(replay))
}

fn shell(title: &str, section: &'static str, viewer: &Viewer) -> Shell {
    let mut s = Shell::of(title, viewer);
    s.section = section;
    s
}

/// A refusal's message, as a form shows it.
fn message(e: EngineError) -> String {
    let p = ApiError::from(e).problem();
    match p.errors.first() {
        Some(f) => format!("{}: {}", f.field, f.reason),
        None => p.detail,
    }
}

/// Back to `path`, which says what was done: `done` is one of the words [`said`] knows, never
/// text of the request's (a link could otherwise make a trusted page say anything).
fn back(path: &str, done: &'static str) -> Response {
    Redirect::to(&format!("{path}?done={done}")).into_response()
}

/// What a page says after `done`.
fn said(done: Option<&str>) -> Option<(&'static str, String)> {
    let text = match done? {
        "secret-saved" => "Secret saved.",
        "secret-changed" => "Secret changed.",
        "secret-deleted" => "Secret deleted.",
        "token-revoked" => "Token revoked.",
        "app-registered" => "App registered.",
        "app-deleted" => "App deleted.",
        "replayed" => "Queued again.",
        _ => return None,
    };
    Some(("ok", text.to_owned()))
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
}

struct SecretRow {
    name: String,
    description: Option<String>,
    set: bool,
    projects: String,
    updated: Moment,
}

#[derive(Template)]
#[template(path = "secrets.html")]
struct SecretsPage {
    shell: Shell,
    csrf: String,
    can_write: bool,
    secrets: Vec<SecretRow>,
    error: Option<String>,
    name: String,
    description: String,
}

async fn secrets_page(
    state: &AppState,
    viewer: &Viewer,
    done: Option<String>,
    error: Option<(String, String, String)>,
) -> Response {
    let p = viewer.principal();
    let listed = match state.hub.list_secrets(p).await {
        Ok(l) => l,
        Err(e) => return UiError::new(e, Some(viewer)).into_response(),
    };
    let now = state.hub.now();
    let mut sh = shell("Secrets", "Secrets", viewer);
    sh.flash = said(done.as_deref());
    let (error, name, description) = match error {
        Some((e, n, d)) => (Some(e), n, d),
        None => (None, String::new(), String::new()),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page(
        status,
        &sh,
        &SecretsPage {
            shell: sh.clone(),
            csrf: viewer.csrf().to_owned(),
            can_write: p.can_write(),
            secrets: listed
                .into_iter()
                .map(|s| SecretRow {
                    projects: s
                        .projects
                        .map_or_else(|| "the whole organization".to_owned(), |p| p.join(", ")),
                    updated: Moment::new(s.updated_at, now),
                    name: s.name,
                    description: s.description,
                    set: s.set,
                })
                .collect(),
            error,
            name,
            description,
        },
    )
}

async fn secrets(State(state): State<AppState>, viewer: Viewer, Query(d): Query<Done>) -> Response {
    secrets_page(&state, &viewer, d.done, None).await
}

async fn put_secret(state: &AppState, posted: &Posted, name: &str, created: bool) -> Response {
    let viewer = &posted.viewer;
    let value = posted.fields.text("value").to_owned();
    let description = posted.fields.text("description").trim().to_owned();
    if value.is_empty() {
        let e = format!(
            "value: enter the value of {}",
            if name.is_empty() { "the secret" } else { name }
        );
        return secrets_page(state, viewer, None, Some((e, name.to_owned(), description))).await;
    }
    let req = PutSecret {
        value,
        description: (!description.is_empty()).then_some(description.clone()),
        projects: None,
    };
    match state.hub.put_secret(viewer.principal(), name, req).await {
        Ok(_) => back(
            "/secrets",
            if created {
                "secret-saved"
            } else {
                "secret-changed"
            },
        ),
        Err(e) => {
            secrets_page(
                state,
                viewer,
                None,
                Some((message(e), name.to_owned(), description)),
            )
            .await
        }
    }
}

async fn add_secret(State(state): State<AppState>, posted: Posted) -> Response {
    let name = posted.fields.text("name").trim().to_owned();
    put_secret(&state, &posted, &name, true).await
}

async fn change_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted,
) -> Response {
    put_secret(&state, &posted, &name, false).await
}

async fn delete_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted,
) -> Response {
    match state
        .hub
        .delete_secret(posted.viewer.principal(), &name)
        .await
    {
        Ok(()) => back("/secrets", "secret-deleted"),
        Err(e) => UiError::new(e, Some(&posted.viewer)).into_response(),
    }
}

struct TokenRow {
    id: String,
    name: String,
    role: &'static str,
    project: String,
    hint: String,
    operator: bool,
    current: bool,
    last_used: Option<Moment>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    shell: Shell,
    csrf: String,
    tokens: Vec<TokenRow>,
    /// `(name, value)` of a token just created: shown this once.
    created: Option<(String, String)>,
    roles: &'static [(&'static str, &'static str)],
    error: Option<String>,
}

const ROLES: &[(&str, &str)] = &[
    (
        "member",
        "creates, edits, tests and uses connections and secrets",
    ),
    ("executor", "uses connections and reads their credentials"),
    ("viewer", "reads connections, never credentials"),
    (
        "admin",
        "all of it, with tokens, OAuth apps and the audit log",
    ),
];

async fn tokens_page(
    state: &AppState,
    viewer: &Viewer,
    done: Option<String>,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Response {
    let p = viewer.principal();
    let listed = match state.hub.list_tokens(p).await {
        Ok(l) => l,
        Err(e) => return UiError::new(e, Some(viewer)).into_response(),
    };
    let now = state.hub.now();
    let mut sh = shell("API tokens", "Tokens", viewer);
    sh.flash = said(done.as_deref());
    let status = match (&created, &error) {
        (Some(_), _) => StatusCode::CREATED,
        (_, Some(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let mut response = page(
        status,
        &sh,
        &TokensPage {
            shell: sh.clone(),
            csrf: viewer.csrf().to_owned(),
            tokens: listed
                .into_iter()
                .map(|t| TokenRow {
                    current: t.id == p.token_id,
                    id: t.id.to_string(),
                    name: t.name,
                    role: t.role.as_str(),
                    project: t
                        .project
                        .map_or_else(|| "all".to_owned(), |p| p.to_string()),
                    hint: t.hint,
                    operator: t.operator,
                    last_used: t.last_used_at.map(|at| Moment::new(at, now)),
                })
                .collect(),
            created,
            roles: ROLES,
            error,
        },
    );
    // A page with a token's value is not kept anywhere.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store, private"),
    );
    response
}

async fn tokens(State(state): State<AppState>, viewer: Viewer, Query(d): Query<Done>) -> Response {
    tokens_page(&state, &viewer, d.done, None, None).await
}

async fn create_token(State(state): State<AppState>, posted: Posted) -> Response {
    let viewer = &posted.viewer;
    let role = match Role::parse(posted.fields.text("role")) {
        Some(r) => r,
        None => {
            return tokens_page(
                &state,
                viewer,
                None,
                None,
                Some("role: choose a role".into()),
            )
            .await;
        }
    };
    let req = CreateToken {
        name: posted.fields.text("name").trim().to_owned(),
        role,
        project: None,
    };
    match state.hub.create_token(viewer.principal(), req).await {
        Ok(t) => tokens_page(&state, viewer, None, Some((t.token.name, t.value)), None).await,
        Err(e) => tokens_page(&state, viewer, None, None, Some(message(e))).await,
    }
}

async fn delete_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Response {
    let viewer = &posted.viewer;
    let id: TokenId = match crate::extract::path_id(&id, "token") {
        Ok(id) => id,
        Err(e) => return UiError::new(e, Some(viewer)).into_response(),
    };
    if id == viewer.principal().token_id {
        return UiError::new(
            EngineError::Conflict(
                "this session's own token cannot be revoked here; log out instead".into(),
            ),
            Some(viewer),
        )
        .into_response();
    }
    match state.hub.delete_token(viewer.principal(), &id).await {
        Ok(()) => back("/tokens", "token-revoked"),
        Err(e) => UiError::new(e, Some(viewer)).into_response(),
    }
}

struct AppRow {
    id: String,
    name: String,
    provider: String,
    client_id: String,
    secret: bool,
    scopes: String,
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    shell: Shell,
    csrf: String,
    can_write: bool,
    apps: Vec<AppRow>,
    providers: Vec<(String, String)>,
    redirect_url: String,
    error: Option<String>,
}

async fn apps_page(
    state: &AppState,
    viewer: &Viewer,
    done: Option<String>,
    error: Option<String>,
) -> Response {
    let p = viewer.principal();
    let listed = match state.hub.list_apps(p).await {
        Ok(l) => l,
        Err(e) => return UiError::new(e, Some(viewer)).into_response(),
    };
    let mut providers: Vec<(String, String)> = state
        .hub
        .list_providers(p, None)
        .into_iter()
        .filter(|e| e.uses_oauth())
        .map(|e| (e.key, e.display_name))
        .collect();
    providers.sort_by_key(|(_, name)| name.to_lowercase());
    let mut sh = shell("OAuth apps", "OAuth apps", viewer);
    sh.flash = said(done.as_deref());
    page(
        if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        &sh,
        &AppsPage {
            shell: sh.clone(),
            csrf: viewer.csrf().to_owned(),
            can_write: p.is_admin(),
            apps: listed
                .into_iter()
                .map(|a| AppRow {
                    id: a.id.to_string(),
                    name: a.name,
                    provider: a.provider,
                    client_id: a.client_id,
                    secret: a.client_secret.set,
                    scopes: a.scopes.join(" "),
                })
                .collect(),
            providers,
            redirect_url: state.hub.callback_url(),
            error,
        },
    )
}

async fn apps(State(state): State<AppState>, viewer: Viewer, Query(d): Query<Done>) -> Response {
    apps_page(&state, &viewer, d.done, None).await
}

async fn create_app(State(state): State<AppState>, posted: Posted) -> Response {
    let viewer = &posted.viewer;
    let f = &posted.fields;
    let scopes: Vec<String> = f
        .text("scopes")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let secret = f.text("client_secret");
    let req = CreateOAuthApp {
        name: f.text("name").trim().to_owned(),
        provider: f.text("provider").to_owned(),
        client_id: f.text("client_id").trim().to_owned(),
        client_secret: (!secret.is_empty()).then(|| secret.to_owned()),
        scopes: (!scopes.is_empty()).then_some(scopes),
        authorization_params: None,
        token_params: None,
    };
    match state.hub.create_app(viewer.principal(), req).await {
        Ok(_) => back("/apps", "app-registered"),
        Err(e) => apps_page(&state, viewer, None, Some(message(e))).await,
    }
}

async fn delete_app(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Response {
    let viewer = &posted.viewer;
    let id: AppId = match crate::extract::path_id(&id, "OAuth app") {
        Ok(id) => id,
        Err(e) => return UiError::new(e, Some(viewer)).into_response(),
    };
    match state.hub.delete_app(viewer.principal(), &id).await {
        Ok(()) => back("/apps", "app-deleted"),
        Err(e) => UiError::new(e, Some(viewer)).into_response(),
    }
}

struct AuditRow {
    seq: i64,
    at: Moment,
    action: String,
    outcome: String,
    target: String,
    actor: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    shell: Shell,
    events: Vec<AuditRow>,
    filter: (String, String, String),
    next: Option<String>,
    chain: String,
    chain_ok: bool,
}

#[derive(Debug, Default, Deserialize)]
struct AuditParams {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    cursor: Option<String>,
}

/// Entries per page of the audit log.
const AUDIT_PAGE: u32 = 50;

async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<AuditParams>,
) -> Response {
    let p = viewer.principal();
    let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = AuditFilter {
        action: some(&q.action),
        actor: some(&q.actor),
        target: some(&q.target),
        ..AuditFilter::default()
    };
    let found = match state
        .hub
        .list_audit(p, filter, q.cursor.as_deref(), Some(AUDIT_PAGE))
        .await
    {
        Ok(f) => f,
        Err(e) => return UiError::new(e, Some(&viewer)).into_response(),
    };
    let (chain, chain_ok) = match state.hub.verify_audit(p).await {
        Ok(v) if v.ok => (
            format!("The hash chain of all {} entries checks out.", v.events),
            true,
        ),
        Ok(v) => (
            format!(
                "The hash chain is broken at entry {}.",
                v.broken_at.unwrap_or_default()
            ),
            false,
        ),
        Err(e) => (message(e), false),
    };
    let now = state.hub.now();
    let next = found.next_cursor.map(|c| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("action", &q.action)
            .append_pair("actor", &q.actor)
            .append_pair("target", &q.target)
            .append_pair("cursor", &c)
            .finish()
    });
    let sh = shell("Audit log", "Audit log", &viewer);
    page(
        StatusCode::OK,
        &sh,
        &AuditPage {
            shell: sh.clone(),
            events: found
                .items
                .into_iter()
                .map(|e| AuditRow {
                    seq: e.seq,
                    at: Moment::new(e.at, now),
                    action: e.action,
                    outcome: e.outcome,
                    target: e.target.unwrap_or_default(),
                    actor: e.actor,
                    details: if e.details.as_object().is_some_and(|m| m.is_empty()) {
                        String::new()
                    } else {
                        e.details.to_string()
                    },
                })
                .collect(),
            filter: (q.action, q.actor, q.target),
            next,
            chain,
            chain_ok,
        },
    )
}

struct DeliveryRow {
    id: String,
    method: String,
    target: String,
    status: String,
    badge: &'static str,
    attempts: String,
    last: String,
    created: Moment,
    replayable: bool,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    shell: Shell,
    csrf: String,
    can_use: bool,
    deliveries: Vec<DeliveryRow>,
    statuses: &'static [&'static str],
    status: String,
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DeliveryParams {
    #[serde(default)]
    status: String,
    cursor: Option<String>,
    done: Option<String>,
}

async fn deliveries(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<DeliveryParams>,
) -> Response {
    let p = viewer.principal();
    let cursor = q
        .cursor
        .as_deref()
        .and_then(|c| c.parse::<DeliveryId>().ok());
    let status = Some(q.status.as_str()).filter(|s| !s.is_empty());
    let found = match state
        .hub
        .list_deliveries(p, status, None, cursor.as_ref(), Some(50))
        .await
    {
        Ok(f) => f,
        Err(e) => return UiError::new(e, Some(&viewer)).into_response(),
    };
    let now = state.hub.now();
    let next = found.next_cursor.map(|c| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("status", &q.status)
            .append_pair("cursor", &c)
            .finish()
    });
    let mut sh = shell("Deliveries", "Deliveries", &viewer);
    sh.flash = said(q.done.as_deref());
    page(
        StatusCode::OK,
        &sh,
        &DeliveriesPage {
            shell: sh.clone(),
            csrf: viewer.csrf().to_owned(),
            can_use: p.can_use(),
            deliveries: found
                .items
                .into_iter()
                .map(|d| DeliveryRow {
                    badge: match d.status.as_str() {
                        "delivered" => "ok",
                        "failed" => "bad",
                        _ => "warn",
                    },
                    replayable: d.status == "delivered" || d.status == "failed",
                    attempts: format!("{} of {}", d.attempts, d.max_attempts),
                    last: match (d.last_status, &d.last_error) {
                        (Some(code), _) => format!("HTTP {code}"),
                        (None, Some(e)) => e.clone(),
                        (None, None) => "none yet".into(),
                    },
                    created: Moment::new(d.created_at, now),
                    id: d.id.to_string(),
                    method: d.method,
                    target: d.target,
                    status: d.status,
                })
                .collect(),
            statuses: &["pending", "delivering", "delivered", "failed"],
            status: q.status,
            next,
        },
    )
}

async fn replay(State(state): State<AppState>, Path(id): Path<String>, posted: Posted) -> Response {
    let viewer = &posted.viewer;
    let id: DeliveryId = match crate::extract::path_id(&id, "delivery") {
        Ok(id) => id,
        Err(e) => return UiError::new(e, Some(viewer)).into_response(),
    };
    match state.hub.replay_delivery(viewer.principal(), &id).await {
        Ok(_) => back("/deliveries", "replayed"),
        Err(e) => UiError::new(e, Some(viewer)).into_response(),
    }
}
