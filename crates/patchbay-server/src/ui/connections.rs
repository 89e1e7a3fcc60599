//! The connections pages: the list (cards with filters), the add wizard (kind → provider →
//! configure), a connection's page, edit, test (saved or a draft), delete, and an MCP
//! connection's tools.

use std::collections::BTreeSet;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use patchbay_domain::api::{CreateConnection, UpdateConnection};
use patchbay_domain::connection::Connection;
use patchbay_domain::{AuthType, ConnectionId, Kind};
use patchbay_engine::{AuditFilter, ListQuery};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::forms::{self, AuthView, Errors, FieldView};
use super::session::{Fields, Posted};
use super::views::{Card, Moment, ResultView, STATUS_FILTERS, initials};
use super::{Shell, UiError, Viewer, page};
use crate::error::ApiError;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connections", get(list))
        .route("/connections/new", get(new).post(create))
        .route("/connections/new/test", post(test_draft))
        .route("/connections/{id}", get(detail))
        .route("/connections/{id}/edit", get(edit).post(update))
        .route("/connections/{id}/test", post(test_saved))
        .route("/connections/{id}/delete", get(confirm_delete).post(delete))
        .route("/connections/{id}/refresh-tools", post(refresh_tools))
        .route("/connections/{id}/connect", get(connect))
        .route("/connections/{id}/disconnect", post(disconnect))
}

/// The refusal of a page that changes connections, for a token that cannot.
fn not_a_writer(viewer: &Viewer) -> Response {
    UiError::new(
        patchbay_engine::EngineError::Forbidden(
            "adding, editing and deleting connections needs an admin or member token".into(),
        ),
        Some(viewer),
    )
    .into_response()
}

/// A page answered instead of going on (boxed: a response is large).
type Stop = Box<Response>;

/// A connection id in the path; a 404 page when it is not one.
struct ConnectionPath(ConnectionId);

impl axum::extract::FromRequestParts<AppState> for ConnectionPath {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        crate::extract::path_id(&raw, "connection")
            .map(Self)
            .map_err(|e| UiError::new(e, None).into_response())
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    status: String,
    cursor: Option<String>,
    done: Option<String>,
}

#[derive(Debug, Default)]
struct Filter {
    kind: String,
    provider: String,
    status: String,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ListPage {
    shell: Shell,
    csrf: String,
    /// Where a card's test answers: this list.
    back: &'static str,
    can_write: bool,
    cards: Vec<Card>,
    kinds: Vec<&'static str>,
    providers: Vec<String>,
    statuses: &'static [&'static str],
    filter: Filter,
    filtered: bool,
    next_cursor: Option<String>,
}

/// Connections listed per page.
const PAGE: u32 = 100;
/// Pages read at most to fill one with connections of the status asked for.
const SCAN: usize = 20;

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    params: ListParams,
    tested: Option<(ConnectionId, ResultView)>,
) -> Response {
    let p = viewer.principal();
    let q = ListQuery {
        kind: Some(params.kind.clone()).filter(|k| !k.is_empty()),
        provider: Some(params.provider.clone()).filter(|k| !k.is_empty()),
        limit: Some(PAGE),
        cursor: params.cursor.clone(),
        ..ListQuery::default()
    };
    // A status is a badge, worked out here: pages are read until one is full of matches (or
    // after SCAN pages), and the next link continues where the reading stopped.
    let now = state.hub.now();
    let mut cards: Vec<Card> = Vec::new();
    let mut q = q;
    let mut next = None;
    for _ in 0..SCAN {
        let found = match state.hub.list_connections(p, q.clone()).await {
            Ok(f) => f,
            Err(e) => return UiError::new(e, Some(viewer)).into_response(),
        };
        for c in &found.items {
            let mut card = Card::of(c, now);
            if !params.status.is_empty() && card.badge.1 != params.status {
                continue;
            }
            card.result = match &tested {
                Some((id, r)) if *id == c.id => Some(r.clone()),
                _ => None,
            };
            cards.push(card);
        }
        next = found.next_cursor.map(|c| c.to_string());
        if params.status.is_empty() || cards.len() >= PAGE as usize || next.is_none() {
            break;
        }
        q.cursor = next.clone();
    }
    if cards.len() > PAGE as usize {
        // The next page starts after the last card shown.
        cards.truncate(PAGE as usize);
        next = cards.last().map(|c| c.id.clone());
    }
    let mut providers: BTreeSet<String> = state
        .hub
        .list_providers(p, None)
        .into_iter()
        .filter(|e| params.kind.is_empty() || e.serves(&params.kind))
        .map(|e| e.key)
        .collect();
    providers.insert("custom".to_owned());
    let next_cursor = next.map(|cursor| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("kind", &params.kind)
            .append_pair("provider", &params.provider)
            .append_pair("status", &params.status)
            .append_pair("cursor", &cursor)
            .finish()
    });
    let filtered =
        !(params.kind.is_empty() && params.provider.is_empty() && params.status.is_empty());
    let mut shell = Shell::of("Connections", viewer);
    if params.done.as_deref() == Some("deleted") {
        shell.flash = Some(("ok", "Connection deleted.".to_owned()));
    }
    page(
        StatusCode::OK,
        &shell,
        &ListPage {
            shell: shell.clone(),
            csrf: viewer.csrf().to_owned(),
            back: "list",
            can_write: p.can_write(),
            cards,
            kinds: Kind::ALL.iter().map(|k| k.as_str()).collect(),
            providers: providers.into_iter().collect(),
            statuses: STATUS_FILTERS,
            filter: Filter {
                kind: params.kind,
                provider: params.provider,
                status: params.status,
            },
            filtered,
            next_cursor,
        },
    )
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<ListParams>,
) -> Response {
    list_page(&state, &viewer, params, None).await
}

fn kind_title(kind: Kind) -> &'static str {
    match kind {
        Kind::Http => "HTTP API",
        Kind::Database => "database",
        Kind::Smtp => "SMTP mail server",
        Kind::Webhook => "webhook",
        Kind::Mcp => "MCP server",
        Kind::Storage => "object store",
        Kind::FileTransfer => "file server",
    }
}

const KINDS: &[(&str, &str, &str, &str)] = &[
    (
        "http",
        "AP",
        "HTTP API",
        "A REST or GraphQL API: GitHub, Stripe, Slack, your own.",
    ),
    (
        "database",
        "DB",
        "Database",
        "PostgreSQL, MySQL or MariaDB, SQL Server, SQLite.",
    ),
    (
        "smtp",
        "SM",
        "SMTP mail server",
        "Send e-mail through a mail server or a relay.",
    ),
    (
        "webhook",
        "WH",
        "Webhook",
        "A URL Patchbay posts signed events to.",
    ),
    (
        "mcp",
        "MC",
        "MCP server",
        "Tools for agents, over Streamable HTTP, SSE or stdio.",
    ),
    (
        "storage",
        "S3",
        "Object storage",
        "A bucket on Amazon S3 or an S3-compatible store: R2, B2, Wasabi, MinIO.",
    ),
    (
        "file_transfer",
        "FT",
        "File server",
        "SFTP, FTPS or FTP: files put, fetched and listed under one directory.",
    ),
];

#[derive(Template)]
#[template(path = "new_kind.html")]
struct KindPage {
    shell: Shell,
    kinds: &'static [(&'static str, &'static str, &'static str, &'static str)],
}

struct ProviderChoice {
    key: String,
    name: String,
    initials: String,
    blurb: String,
    search: String,
}

#[derive(Template)]
#[template(path = "new_provider.html")]
struct ProviderPage {
    shell: Shell,
    kind: &'static str,
    kind_title: &'static str,
    q: String,
    providers: Vec<ProviderChoice>,
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage {
    shell: Shell,
    csrf: String,
    creating: bool,
    heading: String,
    action: String,
    cancel: String,
    submit: &'static str,
    kind: &'static str,
    provider: String,
    provider_name: String,
    docs: Option<String>,
    head: Vec<FieldView>,
    config: Vec<FieldView>,
    auths: Vec<AuthView>,
    redirect_url: Option<String>,
    summary: Vec<(String, String)>,
    result: Option<ResultView>,
    /// The version an edit started from (a change made meanwhile is refused).
    version: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct NewParams {
    kind: Option<String>,
    provider: Option<String>,
    #[serde(default)]
    q: String,
}

/// A draft's form, filled with what is known of it.
struct Draft<'a> {
    kind: Kind,
    provider: String,
    name: String,
    auth_type: AuthType,
    config: Map<String, Value>,
    auth: Map<String, Value>,
    before: Option<&'a Connection>,
}

async fn form_page(
    state: &AppState,
    viewer: &Viewer,
    d: &Draft<'_>,
    errors: &Errors,
    result: Option<ResultView>,
) -> FormPage {
    let catalog = state.hub.list_providers(viewer.principal(), None);
    let entry = catalog.iter().find(|p| p.key == d.provider);
    let provider_name = entry.map_or_else(|| "Custom".to_owned(), |p| p.display_name.clone());
    let stored = d.before.map(|c| c.secrets.clone()).unwrap_or_default();
    // The organization secrets a secret field may name instead of a value.
    let refs: Vec<String> = state
        .hub
        .list_secrets(viewer.principal())
        .await
        .map(|l| l.into_iter().filter(|s| s.set).map(|s| s.name).collect())
        .unwrap_or_default();
    let head = vec![forms::name_field(&d.name, errors)];
    let config = forms::config_views(d.kind, &d.config, errors);
    let auths = forms::auth_views(d.kind, d.auth_type, &d.auth, &stored, &refs, errors);
    // Where each field of a problem document is on the page: `(API path, element id)`.
    let placed: Vec<(&str, &str)> = head
        .iter()
        .chain(&config)
        .chain(auths.iter().filter(|a| a.selected).flat_map(|a| &a.fields))
        .map(|f| (f.path.as_str(), f.id.as_str()))
        .chain(
            auths
                .iter()
                .filter(|a| a.selected)
                .flat_map(|a| &a.secrets)
                .map(|s| (s.path.as_str(), s.id.as_str())),
        )
        .chain(std::iter::once(("auth.type", "f-auth-type")))
        .collect();
    let summary = errors
        .iter()
        .map(|(field, reason)| {
            let href = placed
                .iter()
                .find(|(path, _)| path == field)
                .map(|(_, id)| format!("#{id}"))
                .unwrap_or_default();
            let text = if field == "form" {
                reason.clone()
            } else {
                format!(
                    "{}: {reason}",
                    forms::label(field.rsplit('.').next().unwrap_or(field))
                )
            };
            (href, text)
        })
        .collect();
    let creating = d.before.is_none();
    let (heading, action, cancel, title) = match d.before {
        None => (
            format!("Configure {provider_name}"),
            "/connections/new".to_owned(),
            "/connections".to_owned(),
            format!("Add {}", kind_title(d.kind)),
        ),
        Some(c) => (
            format!("Edit {}", c.name.as_str()),
            format!("/connections/{}/edit", c.id),
            format!("/connections/{}", c.id),
            format!("Edit {}", c.name.as_str()),
        ),
    };
    let shell = Shell::of(title, viewer);
    FormPage {
        shell,
        csrf: viewer.csrf().to_owned(),
        creating,
        heading,
        action,
        cancel,
        submit: if creating { "Save" } else { "Save changes" },
        kind: d.kind.as_str(),
        provider: d.provider.clone(),
        provider_name,
        docs: entry.and_then(|p| p.docs_url.clone()),
        head,
        config,
        auths,
        redirect_url: Some(state.hub.callback_url()),
        summary,
        result,
        version: d.before.map(|c| c.version),
    }
}

fn render_form(status: StatusCode, p: FormPage) -> Response {
    page(status, &p.shell.clone(), &p)
}

async fn new(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<NewParams>,
) -> Response {
    if !viewer.principal().can_write() {
        return not_a_writer(&viewer);
    }
    let Some(kind) = params.kind.as_deref().and_then(Kind::parse) else {
        let shell = Shell::of("Add a connection", &viewer);
        return page(
            StatusCode::OK,
            &shell,
            &KindPage {
                shell: shell.clone(),
                kinds: KINDS,
            },
        );
    };
    let catalog = state.hub.list_providers(viewer.principal(), None);
    match params.provider {
        None => {
            let q = params.q.trim().to_lowercase();
            let mut providers: Vec<ProviderChoice> = catalog
                .iter()
                .filter(|p| p.serves(kind.as_str()))
                .map(|p| ProviderChoice {
                    key: p.key.clone(),
                    initials: initials(&p.display_name),
                    blurb: p.categories.join(", "),
                    search: format!("{} {} {}", p.key, p.display_name, p.aliases.join(" "))
                        .to_lowercase(),
                    name: p.display_name.clone(),
                })
                .filter(|p| q.is_empty() || p.search.contains(&q))
                .collect();
            providers.sort_by_key(|a| a.name.to_lowercase());
            providers.push(ProviderChoice {
                key: "custom".into(),
                name: "Custom".into(),
                initials: "+".into(),
                blurb: format!("Any {}, configured by hand", kind_title(kind)),
                search: "custom".into(),
            });
            let shell = Shell::of(format!("Add {}", kind_title(kind)), &viewer);
            page(
                StatusCode::OK,
                &shell,
                &ProviderPage {
                    shell: shell.clone(),
                    kind: kind.as_str(),
                    kind_title: kind_title(kind),
                    q: params.q,
                    providers,
                },
            )
        }
        Some(provider) => {
            let entry = catalog.iter().find(|p| p.key == provider);
            if provider != "custom" && entry.is_none_or(|p| !p.serves(kind.as_str())) {
                return UiError::new(
                    patchbay_engine::EngineError::NotFound("provider"),
                    Some(&viewer),
                )
                .into_response();
            }
            let auth_type = entry
                .and_then(|p| p.auth_modes.iter().find_map(|m| AuthType::parse(m)))
                .filter(|t| patchbay_domain::validate::auth_choices(kind).contains(t))
                .unwrap_or_else(|| patchbay_domain::validate::auth_choices(kind)[0]);
            let (config, auth) = state.hub.form_defaults(kind, &provider, auth_type);
            let draft = Draft {
                kind,
                provider,
                name: String::new(),
                auth_type,
                config,
                auth,
                before: None,
            };
            render_form(
                StatusCode::OK,
                form_page(&state, &viewer, &draft, &Errors::new(), None).await,
            )
        }
    }
}

/// The create body of a posted form, or the form again with what could not be read.
async fn create_body(
    state: &AppState,
    viewer: &Viewer,
    fields: &Fields,
) -> Result<(CreateConnection, Draft<'static>), Stop> {
    let Some(kind) = Kind::parse(fields.text("kind")) else {
        return Err(Box::new(Redirect::to("/connections/new").into_response()));
    };
    let provider = fields.text("provider").to_owned();
    let (posted, errors) = forms::read(fields, kind, None);
    let draft = Draft {
        kind,
        provider: provider.clone(),
        name: posted.name.clone(),
        auth_type: posted
            .auth_type
            .unwrap_or_else(|| patchbay_domain::validate::auth_choices(kind)[0]),
        config: posted.config.clone(),
        auth: posted.auth.clone(),
        before: None,
    };
    if !errors.is_empty() {
        return Err(Box::new(render_form(
            StatusCode::UNPROCESSABLE_ENTITY,
            form_page(state, viewer, &draft, &errors, None).await,
        )));
    }
    let body = CreateConnection {
        project: None,
        name: Value::String(posted.name),
        kind: Value::String(kind.as_str().into()),
        provider: (provider != "custom" && !provider.is_empty()).then_some(Value::String(provider)),
        auth: Some(Value::Object(posted.auth)),
        config: Some(Value::Object(posted.config)),
        secrets: Some(Value::Object(posted.secrets)),
    };
    Ok((body, draft))
}

/// The form again after the engine refused it: its field errors inline.
async fn refused_form(
    state: &AppState,
    viewer: &Viewer,
    draft: &Draft<'_>,
    e: patchbay_engine::EngineError,
) -> Response {
    let problem = ApiError::from(e).problem();
    if problem.errors.is_empty() {
        let mut errors = Errors::new();
        errors.insert("form".into(), problem.detail);
        return render_form(
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST),
            form_page(state, viewer, draft, &errors, None).await,
        );
    }
    render_form(
        StatusCode::UNPROCESSABLE_ENTITY,
        form_page(state, viewer, draft, &forms::field_errors(&problem), None).await,
    )
}

async fn create(State(state): State<AppState>, posted: Posted) -> Response {
    let viewer = &posted.viewer;
    let (body, draft) = match create_body(&state, viewer, &posted.fields).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match state.hub.create_connection(viewer.principal(), body).await {
        Ok(c) => Redirect::to(&format!("/connections/{}?saved=1", c.id)).into_response(),
        Err(e) => refused_form(&state, viewer, &draft, e).await,
    }
}

async fn test_draft(State(state): State<AppState>, posted: Posted) -> Response {
    let viewer = &posted.viewer;
    let (body, draft) = match create_body(&state, viewer, &posted.fields).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match state.hub.test_unsaved(viewer.principal(), body).await {
        Ok(r) => render_form(
            StatusCode::OK,
            form_page(
                &state,
                viewer,
                &draft,
                &Errors::new(),
                Some(ResultView::of(&r, draft.auth_type)),
            )
            .await,
        ),
        Err(e) => refused_form(&state, viewer, &draft, e).await,
    }
}

#[derive(Debug, Default, Deserialize)]
struct DetailParams {
    saved: Option<String>,
    connected: Option<String>,
}

struct OAuthView {
    linked: bool,
    account: Option<String>,
    scopes: String,
    expires: Option<Moment>,
    renewed: Option<Moment>,
    refreshable: bool,
    renewal_error: Option<String>,
}

struct McpView {
    gateway_url: String,
    refreshed: Option<Moment>,
    protocol: Option<String>,
    /// `(name, description, parameters)`.
    tools: Vec<(String, String, String)>,
}

struct RecentEntry {
    at: Moment,
    action: String,
    outcome: String,
    actor: String,
}

#[derive(Template)]
#[template(path = "connection.html")]
struct DetailPage {
    shell: Shell,
    csrf: String,
    back: &'static str,
    can_write: bool,
    c: Card,
    oauth: Option<OAuthView>,
    mcp: Option<McpView>,
    settings: Vec<(String, String)>,
    recent: Vec<RecentEntry>,
}

fn mcp_view(state: &AppState, c: &Connection) -> Option<McpView> {
    if c.kind != Kind::Mcp {
        return None;
    }
    let now = state.hub.now();
    let m = c.mcp.as_ref();
    let tools = m
        .and_then(|m| m.get("tools"))
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .map(|t| {
                    let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    let params = t
                        .pointer("/inputSchema/properties")
                        .and_then(Value::as_object)
                        .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    (s("name"), s("description"), params)
                })
                .collect()
        })
        .unwrap_or_default();
    Some(McpView {
        gateway_url: format!("{}/mcp/c/{}", state.hub.public_url(), c.id),
        refreshed: m
            .and_then(|m| m.get("tools_refreshed_at"))
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| Moment::new(t.to_utc(), now)),
        protocol: m
            .and_then(|m| m.get("protocol_version"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        tools,
    })
}

fn settings_of(c: &Connection) -> Vec<(String, String)> {
    let mut out = vec![(
        "Auth".to_owned(),
        forms::auth_label(c.auth_type()).to_owned(),
    )];
    for (k, v) in c.auth.iter().filter(|(k, _)| *k != "type") {
        out.push((forms::label(k), compact(v)));
    }
    for (k, v) in &c.config {
        out.push((forms::label(k), compact(v)));
    }
    for (k, s) in &c.secrets {
        let shown = match &s.reference {
            Some(r) => format!("from the organization secret {r}"),
            None if s.set => "Saved ••••".to_owned(),
            None => "not set".to_owned(),
        };
        out.push((forms::label(k), shown));
    }
    out
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn detail_page(
    state: &AppState,
    viewer: &Viewer,
    id: &ConnectionId,
    flash: Option<(&'static str, String)>,
    tested: Option<ResultView>,
) -> Response {
    let p = viewer.principal();
    let c = match state.hub.get_connection(p, id).await {
        Ok(c) => c,
        Err(e) => return UiError::new(e, Some(viewer)).into_response(),
    };
    let now = state.hub.now();
    let mut card = Card::of(&c, now);
    card.result = tested.or_else(|| ResultView::stored(&c));
    let oauth = (c.auth_type() == AuthType::Oauth2).then(|| {
        let o = c.oauth.clone().unwrap_or_default();
        OAuthView {
            linked: o.linked_at.is_some(),
            account: o.account,
            scopes: o.scopes.join(" "),
            expires: o.expires_at.map(|t| Moment::new(t, now)),
            renewed: o.last_refresh_at.map(|t| Moment::new(t, now)),
            refreshable: o.refreshable,
            renewal_error: o.last_refresh_error,
        }
    });
    let recent = if p.is_admin() {
        state
            .hub
            .list_audit(
                p,
                AuditFilter {
                    target: Some(c.id.to_string()),
                    ..AuditFilter::default()
                },
                None,
                Some(10),
            )
            .await
            .map(|page| {
                page.items
                    .into_iter()
                    .map(|e| RecentEntry {
                        at: Moment::new(e.at, now),
                        action: e.action,
                        outcome: e.outcome,
                        actor: e.actor,
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut shell = Shell::of(c.name.as_str().to_owned(), viewer);
    shell.flash = flash;
    page(
        StatusCode::OK,
        &shell,
        &DetailPage {
            shell: shell.clone(),
            csrf: viewer.csrf().to_owned(),
            back: "detail",
            can_write: p.can_write(),
            oauth,
            mcp: mcp_view(state, &c),
            settings: settings_of(&c),
            recent,
            c: card,
        },
    )
}

async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    ConnectionPath(id): ConnectionPath,
    Query(params): Query<DetailParams>,
) -> Response {
    let flash = if params.saved.is_some() {
        Some(("ok", "Saved.".to_owned()))
    } else if params.connected.is_some() {
        Some(("ok", "Connected.".to_owned()))
    } else {
        None
    };
    detail_page(&state, &viewer, &id, flash, None).await
}

async fn edit(
    State(state): State<AppState>,
    viewer: Viewer,
    ConnectionPath(id): ConnectionPath,
) -> Response {
    let c = match state.hub.get_connection(viewer.principal(), &id).await {
        Ok(c) => c,
        Err(e) => return UiError::new(e, Some(&viewer)).into_response(),
    };
    if !viewer.principal().can_write() {
        return not_a_writer(&viewer);
    }
    let draft = Draft {
        kind: c.kind,
        provider: c.provider.clone(),
        name: c.name.as_str().to_owned(),
        auth_type: c.auth_type(),
        config: c.config.clone(),
        auth: c.auth.clone(),
        before: Some(&c),
    };
    render_form(
        StatusCode::OK,
        form_page(&state, &viewer, &draft, &Errors::new(), None).await,
    )
}

async fn update(
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
    posted: Posted,
) -> Response {
    let viewer = &posted.viewer;
    let p = viewer.principal();
    let c = match state.hub.get_connection(p, &id).await {
        Ok(c) => c,
        Err(e) => return UiError::new(e, Some(viewer)).into_response(),
    };
    let (posted_form, errors) = forms::read(&posted.fields, c.kind, Some(&c));
    let draft = Draft {
        kind: c.kind,
        provider: c.provider.clone(),
        name: posted_form.name.clone(),
        auth_type: posted_form.auth_type.unwrap_or_else(|| c.auth_type()),
        config: posted_form.config.clone(),
        auth: posted_form.auth.clone(),
        before: Some(&c),
    };
    if !errors.is_empty() {
        return render_form(
            StatusCode::UNPROCESSABLE_ENTITY,
            form_page(&state, viewer, &draft, &errors, None).await,
        );
    }
    let version = posted.fields.text("version").parse::<i64>().ok();
    let body = UpdateConnection {
        name: Some(Value::String(posted_form.name)),
        auth: Some(Value::Object(posted_form.auth)),
        config: Some(Value::Object(posted_form.config)),
        secrets: (!posted_form.secrets.is_empty()).then_some(Value::Object(posted_form.secrets)),
        ..UpdateConnection::default()
    };
    match state.hub.update_connection(p, &id, body, version).await {
        Ok(c) => Redirect::to(&format!("/connections/{}?saved=1", c.id)).into_response(),
        Err(e) => refused_form(&state, viewer, &draft, e).await,
    }
}

async fn test_saved(
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
    posted: Posted,
) -> Response {
    let viewer = &posted.viewer;
    let p = viewer.principal();
    let auth = match state.hub.get_connection(p, &id).await {
        Ok(c) => c.auth_type(),
        Err(e) => return UiError::new(e, Some(viewer)).into_response(),
    };
    let result = match state.hub.test_connection(p, &id).await {
        Ok(r) => ResultView::of(&r, auth),
        Err(e) => {
            let problem = ApiError::from(e).problem();
            ResultView {
                ok: false,
                headline: format!("✗ Not tested: {}", problem.detail),
                details: vec![],
            }
        }
    };
    if posted.fields.text("back") == "list" {
        list_page(&state, viewer, ListParams::default(), Some((id, result))).await
    } else {
        detail_page(&state, viewer, &id, None, Some(result)).await
    }
}

#[derive(Template)]
#[template(path = "delete.html")]
struct DeletePage {
    shell: Shell,
    csrf: String,
    id: String,
    name: String,
}

async fn confirm_delete(
    State(state): State<AppState>,
    viewer: Viewer,
    ConnectionPath(id): ConnectionPath,
) -> Response {
    match state.hub.get_connection(viewer.principal(), &id).await {
        Ok(_) if !viewer.principal().can_write() => not_a_writer(&viewer),
        Ok(c) => {
            let shell = Shell::of(format!("Delete {}", c.name.as_str()), &viewer);
            page(
                StatusCode::OK,
                &shell,
                &DeletePage {
                    shell: shell.clone(),
                    csrf: viewer.csrf().to_owned(),
                    id: c.id.to_string(),
                    name: c.name.as_str().to_owned(),
                },
            )
        }
        Err(e) => UiError::new(e, Some(&viewer)).into_response(),
    }
}

async fn delete(
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
    posted: Posted,
) -> Response {
    let viewer = &posted.viewer;
    match state.hub.delete_connection(viewer.principal(), &id).await {
        Ok(()) => Redirect::to("/connections?done=deleted").into_response(),
        Err(e) => UiError::new(e, Some(viewer)).into_response(),
    }
}

async fn refresh_tools(
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
    posted: Posted,
) -> Response {
    let viewer = &posted.viewer;
    match state.hub.refresh_tools(viewer.principal(), &id).await {
        Ok(d) => {
            let flash = if d.test.success {
                ("ok", "Tools refreshed.".to_owned())
            } else {
                (
                    "bad",
                    format!("The tools could not be refreshed: {}", d.test.message),
                )
            };
            detail_page(&state, viewer, &id, Some(flash), None).await
        }
        Err(e) => UiError::new(e, Some(viewer)).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConnectParams {
    popup: Option<String>,
}

/// Starts the OAuth flow and sends the browser to the provider: in a popup (the callback page
/// tells the opener and closes), or in this window (the callback comes back to the
/// connection's page). Only from this deployment's own pages.
async fn connect(
    State(state): State<AppState>,
    viewer: Viewer,
    ConnectionPath(id): ConnectionPath,
    Query(params): Query<ConnectParams>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !super::session::from_this_site(&headers) {
        return UiError::new(
            patchbay_engine::EngineError::Forbidden(
                "an OAuth sign-in starts from this deployment's own pages".into(),
            ),
            Some(&viewer),
        )
        .into_response();
    }
    let return_to = params
        .popup
        .is_none()
        .then(|| format!("{}/connections/{id}?connected=1", state.hub.public_url()));
    let (browser, cookie) = super::session::oauth_binding(&headers, &state);
    let browser_hash = patchbay_engine::hash_token(&browser);
    match state
        .hub
        .start_oauth_in_browser(viewer.principal(), &id, return_to, browser_hash)
        .await
    {
        Ok(start) => {
            let mut response = Redirect::to(&start.authorization_url).into_response();
            response
                .headers_mut()
                .append(axum::http::header::SET_COOKIE, cookie);
            response
        }
        Err(e) => UiError::new(e, Some(&viewer)).into_response(),
    }
}

async fn disconnect(
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
    posted: Posted,
) -> Response {
    let viewer = &posted.viewer;
    match state.hub.disconnect_oauth(viewer.principal(), &id).await {
        Ok(()) => {
            detail_page(
                &state,
                viewer,
                &id,
                Some(("ok", "Disconnected.".to_owned())),
                None,
            )
            .await
        }
        Err(e) => UiError::new(e, Some(viewer)).into_response(),
    }
}
