//! The web UI (SPEC §6): server-rendered pages at `/` for people — log in with an API token,
//! the connections (list, the add wizard, edit, test, delete, OAuth, MCP tools) — calling the
//! same engine services as the JSON API under `/v1`. Templates are compiled in (askama, under
//! `templates/`), with one stylesheet and one small script (`static/`) that only enhances what
//! works without it. Every page carries a Content-Security-Policy whose script nonce is fresh
//! per response; every state-changing form carries the session's CSRF token and is refused
//! from another site (`session`).

mod admin;
mod connections;
mod forms;
mod session;
mod views;

use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine as _;
use rand::RngCore;

use crate::error::ApiError;
use crate::startup::AppState;

pub use session::{Viewer, oauth_browser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/static/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .merge(session::router())
        .merge(connections::router())
        .merge(admin::router())
}

async fn home(viewer: Option<Viewer>) -> Redirect {
    match viewer {
        Some(_) => Redirect::to("/connections"),
        None => Redirect::to("/login"),
    }
}

const STYLESHEET: &str = include_str!("../../static/app.css");
const SCRIPT: &str = include_str!("../../static/app.js");
const ICON: &str = include_str!("../../static/icon.svg");

async fn stylesheet() -> Response {
    asset(STYLESHEET, "text/css; charset=utf-8")
}

async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

async fn icon() -> Response {
    asset(ICON, "image/svg+xml")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    (h, body).into_response()
}

/// The sections of the navigation: `(href, label, admins only)`.
const NAV: &[(&str, &str, bool)] = &[
    ("/connections", "Connections", false),
    ("/secrets", "Secrets", false),
    ("/tokens", "Tokens", true),
    ("/apps", "OAuth apps", false),
    ("/audit", "Audit log", true),
    ("/deliveries", "Deliveries", false),
];

/// What every page's frame shows.
#[derive(Debug, Clone)]
pub struct Shell {
    pub title: String,
    /// The script nonce of this response.
    pub nonce: String,
    /// The session's CSRF token; `None` on pages shown before logging in.
    pub csrf: Option<String>,
    /// The navigation entry this page belongs to.
    pub section: &'static str,
    /// A one-line message: `(class, text)`.
    pub flash: Option<(&'static str, String)>,
    /// The viewer is an admin (the navigation shows the admins' pages).
    pub admin: bool,
}

impl Shell {
    pub fn new(title: impl Into<String>, csrf: Option<&str>) -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self {
            title: title.into(),
            nonce: base64::engine::general_purpose::STANDARD.encode(bytes),
            csrf: csrf.map(str::to_owned),
            section: "Connections",
            flash: None,
            admin: false,
        }
    }

    /// The navigation this viewer sees: `(href, label)`.
    /// A page's frame for a logged-in viewer.
    pub fn of(title: impl Into<String>, viewer: &Viewer) -> Self {
        let mut s = Self::new(title, Some(viewer.csrf()));
        s.admin = viewer.principal().is_admin();
        s
    }

    pub fn nav(&self) -> Vec<(&'static str, &'static str)> {
        NAV.iter()
            .filter(|(_, _, admins)| self.admin || !admins)
            .map(|(href, label, _)| (*href, *label))
            .collect()
    }
}

/// A page: its template rendered, with the headers every page carries.
pub fn page(status: StatusCode, shell: &Shell, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => html(status, &shell.nonce, body),
        Err(e) => {
            tracing::error!(error = %e, "a page could not be rendered");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                &shell.nonce,
                "<!doctype html><title>Error</title><p>The page could not be shown; the error \
                 has been logged.</p>"
                    .to_owned(),
            )
        }
    }
}

fn html(status: StatusCode, nonce: &str, body: String) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    (status, h, body).into_response()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    shell: Shell,
    status: u16,
    title: String,
    code: String,
    detail: String,
}

/// A failure as an HTML page, from the same table as the API's problem documents.
#[derive(Debug)]
pub struct UiError {
    error: ApiError,
    csrf: Option<String>,
    admin: bool,
}

impl UiError {
    pub fn new(error: impl Into<ApiError>, viewer: Option<&Viewer>) -> Self {
        Self {
            error: error.into(),
            csrf: viewer.map(|v| v.session.csrf.clone()),
            admin: viewer.is_some_and(|v| v.principal().is_admin()),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let problem = self.error.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut shell = Shell::new(problem.title.clone(), self.csrf.as_deref());
        shell.admin = self.admin;
        page(
            status,
            &shell,
            &ErrorPage {
                status: problem.status,
                title: problem.title,
                code: problem.code,
                detail: problem.detail,
                shell: shell.clone(),
            },
        )
    }
}

/// Whether a request is a browser's asking for a page (not an API client's).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The fallback of unknown routes: an HTML page for browsers, a problem document otherwise.
pub fn not_found(headers: &HeaderMap, path: &str) -> Response {
    if wants_html(headers) && !path.starts_with("/v1/") {
        UiError::new(ApiError::RouteNotFound, None).into_response()
    } else {
        ApiError::RouteNotFound.into_response()
    }
}
