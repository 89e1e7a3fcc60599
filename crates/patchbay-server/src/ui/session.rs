//! Logging in and out, the session cookie, and the checks every form post passes: the
//! session's CSRF token in the body, and a same-origin `Sec-Fetch-Site` / `Origin`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use patchbay_engine::{EngineError, WebSession};

use super::{Shell, UiError, page};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

/// The cookie's name: `__Host-` prefixed (so only this origin over https may set it) when the
/// deployment is served over https.
fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-pb_session"
    } else {
        "pb_session"
    }
}

fn secure(state: &AppState) -> bool {
    state.hub.public_url().starts_with("https://")
}

/// The session cookie's value in a request. A name sent twice (a cookie of the same name set
/// for a parent domain, which could put the browser in another's session) counts as none.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim());
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// A `Set-Cookie` of this deployment's: HttpOnly, for the whole site, `Secure` over https.
fn set_cookie(name: &str, value: &str, same_site: &str, max_age: i64, secure: bool) -> HeaderValue {
    let cookie = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    // The name and value are this module's own (URL-safe base64): always a valid header.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether `Sec-Fetch-Site` (when the browser sends it) says this deployment's own pages, or
/// the person's own action (typed, bookmarked).
pub fn from_this_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|site| site == "same-origin" || site == "none")
}

/// The cookie binding this browser's OAuth flows: `__Host-` prefixed over https. SameSite=Lax,
/// since the provider's redirect back is a navigation from its own site.
fn oauth_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-pb_oauth"
    } else {
        "pb_oauth"
    }
}

/// The value this browser holds for its OAuth flows, if it holds one.
pub fn oauth_browser(headers: &HeaderMap, secure: bool) -> Option<&str> {
    cookie_value(headers, oauth_cookie_name(secure)).filter(|v| v.len() == 43)
}

/// This browser's OAuth value (the one it holds, or a new one) and the `Set-Cookie` that keeps
/// it for the flow's lifetime.
pub fn oauth_binding(headers: &HeaderMap, state: &AppState) -> (String, HeaderValue) {
    use base64::Engine as _;
    let secure = secure(state);
    let value = oauth_browser(headers, secure).map_or_else(
        || base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
        str::to_owned,
    );
    let header = set_cookie(oauth_cookie_name(secure), &value, "Lax", 900, secure);
    (value, header)
}

/// A logged-in person: the session and the cookie value that names it.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: WebSession,
    cookie: String,
}

impl Viewer {
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    pub fn principal(&self) -> &patchbay_domain::Principal {
        &self.session.principal
    }

    async fn of(parts: &Parts, state: &AppState) -> Result<Option<Self>, EngineError> {
        let Some(value) = cookie_value(&parts.headers, cookie_name(secure(state))) else {
            return Ok(None);
        };
        match state.hub.web_session(value).await {
            Ok(session) => Ok(Some(Viewer {
                session,
                cookie: value.to_owned(),
            })),
            Err(EngineError::Unauthenticated) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Where a request without a session is sent: the log-in page, coming back here after.
fn to_login(parts: &Parts) -> Response {
    let back = parts
        .uri
        .path_and_query()
        .map_or("/connections", |p| p.as_str());
    let next = if parts.method == axum::http::Method::GET {
        back
    } else {
        "/connections"
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    Redirect::to(&format!("/login?{query}")).into_response()
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Viewer::of(parts, state).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(to_login(parts)),
            Err(e) => Err(UiError::new(e, None).into_response()),
        }
    }
}

impl OptionalFromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Response> {
        Viewer::of(parts, state)
            .await
            .map_err(|e| UiError::new(e, None).into_response())
    }
}

/// The fields of a posted form, in order; a name given twice counts as its last value.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field's value, empty when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
}

/// Largest form body accepted.
const FORM_LIMIT: usize = 256 * 1024;

/// Why a form post was refused before any handler saw it.
fn refused(why: &str, viewer: Option<&Viewer>) -> Response {
    UiError::new(
        EngineError::Forbidden(format!(
            "this form was not accepted: {why}. Reload the page and try again"
        )),
        viewer,
    )
    .into_response()
}

/// Whether the request comes from a page of this deployment, by the headers browsers set on
/// every form post (`Sec-Fetch-Site`, `Origin`); a request with neither is a non-browser's.
fn same_origin(headers: &HeaderMap, state: &AppState) -> Result<(), &'static str> {
    if !from_this_site(headers) {
        return Err("it was sent from another site");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let public = state.hub.public_url();
    let scheme = if secure(state) { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let public_origin = url::Url::parse(public)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if origin == public_origin || (!host.is_empty() && origin == format!("{scheme}://{host}")) {
        Ok(())
    } else {
        Err("it was sent from another origin")
    }
}

async fn form_body(req: Request) -> Result<Fields, &'static str> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err("it is not a form");
    }
    let body = axum::body::to_bytes(req.into_body(), FORM_LIMIT)
        .await
        .map_err(|_| "it is too large")?;
    Ok(parse_form(&body))
}

fn parse_form(body: &Bytes) -> Fields {
    Fields(form_urlencoded::parse(body).into_owned().collect())
}

/// A form posted by a logged-in person from one of this deployment's pages, with the
/// session's CSRF token.
#[derive(Debug)]
pub struct Posted {
    pub viewer: Viewer,
    pub fields: Fields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer =
            <Viewer as FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await?;
        if let Err(why) = same_origin(&parts.headers, state) {
            return Err(refused(why, Some(&viewer)));
        }
        let fields = form_body(Request::from_parts(parts, body))
            .await
            .map_err(|why| refused(why, Some(&viewer)))?;
        if !viewer.session.csrf_matches(fields.text("_csrf")) {
            return Err(refused(
                "its security token is missing or belongs to another session",
                Some(&viewer),
            ));
        }
        Ok(Posted { viewer, fields })
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    shell: Shell,
    next: String,
    error: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// A path of this deployment to go to after logging in (never another origin): it starts with
/// one `/`, and holds no `\\`, whitespace or control character (browsers drop tabs and line
/// ends from URLs, which would turn `/\t/evil.example` into `//evil.example`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n
                    .chars()
                    .any(|c| c == '\\' || c.is_whitespace() || c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/connections".to_owned(),
    }
}

async fn login_page(
    viewer: Option<Viewer>,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if viewer.is_some() {
        return Redirect::to(&next).into_response();
    }
    let shell = Shell::new("Log in", None);
    page(
        StatusCode::OK,
        &shell,
        &LoginPage {
            shell: shell.clone(),
            next,
            error: None,
        },
    )
}

async fn login(State(state): State<AppState>, req: Request) -> Response {
    if let Err(why) = same_origin(req.headers(), &state) {
        return refused(why, None);
    }
    let fields = match form_body(req).await {
        Ok(f) => f,
        Err(why) => return refused(why, None),
    };
    let next = safe_next(fields.get("next"));
    match state.hub.start_web_session(fields.text("token")).await {
        Ok((value, session)) => {
            let max_age = (session.expires_at - state.hub.now()).num_seconds().max(0);
            let secure = secure(&state);
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                set_cookie(cookie_name(secure), &value, "Strict", max_age, secure),
            );
            response
        }
        Err(EngineError::Unauthenticated) => {
            let shell = Shell::new("Log in", None);
            page(
                StatusCode::UNAUTHORIZED,
                &shell,
                &LoginPage {
                    shell: shell.clone(),
                    next,
                    error: Some(
                        "That is not a valid API token (it may have been revoked). Tokens start \
                         with pb_."
                            .into(),
                    ),
                },
            )
        }
        Err(e) => UiError::new(e, None).into_response(),
    }
}

async fn logout(State(state): State<AppState>, posted: Posted) -> Response {
    let viewer = posted.viewer;
    if let Err(e) = state
        .hub
        .end_web_session(&viewer.session, &viewer.cookie)
        .await
    {
        return UiError::new(e, Some(&viewer)).into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    let secure = secure(&state);
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(cookie_name(secure), "", "Strict", 0, secure),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_deployment_are_followed_after_login() {
        assert_eq!(safe_next(Some("/connections/new")), "/connections/new");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "/\t/evil.example",
            "/\r\n",
            "/ /evil.example",
        ] {
            assert_eq!(safe_next(Some(bad)), "/connections", "{bad}");
        }
        assert_eq!(safe_next(None), "/connections");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pb_session=abc ; b=2"),
        );
        assert_eq!(cookie_value(&h, "pb_session"), Some("abc"));
        assert_eq!(cookie_value(&h, "__Host-pb_session"), None);
        h.append(
            header::COOKIE,
            HeaderValue::from_static("pb_session=planted"),
        );
        assert_eq!(cookie_value(&h, "pb_session"), None, "two of them are none");
    }
}
