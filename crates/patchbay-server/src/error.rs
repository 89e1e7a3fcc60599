//! `ApiError`: the one mapping from failures to RFC 9457 problem documents with a stable
//! `code`. 5xx causes are logged here and never shown beyond a generic sentence, except the
//! integrity failures the engine phrases for users (they name objects, never values).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use patchbay_domain::FieldError;
use patchbay_engine::EngineError;
use serde::Serialize;

#[derive(Debug)]
pub enum ApiError {
    Engine(EngineError),
    /// The body is not JSON of the expected shape (400).
    BadJson(String),
    /// A query string of the wrong shape (400).
    BadQuery(String),
    /// A header of the wrong shape (400).
    BadHeader(String),
    PayloadTooLarge(usize),
    UnsupportedMediaType,
    RouteNotFound,
    MethodNotAllowed,
    /// A delivery to an inbound endpoint did not verify (401): nothing more is told.
    Signature,
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Engine(e)
    }
}

/// The problem document, as served and as the client parses it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Field errors found beyond the listed ones (at most 100 are listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_omitted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

/// What a problem document may carry beyond its field errors.
#[derive(Debug, Clone, Copy)]
enum Extra {
    CurrentVersion(i64),
    Omitted(usize),
}

impl ApiError {
    fn parts(
        self,
    ) -> (
        StatusCode,
        &'static str,
        String,
        Vec<FieldError>,
        Option<Extra>,
    ) {
        use EngineError as E;
        match self {
            ApiError::Engine(e) => match e {
                E::Validation(v) => {
                    let detail = v.to_string();
                    let (errors, omitted) = v.into_parts();
                    (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation_failed",
                        detail,
                        errors,
                        (omitted > 0).then_some(Extra::Omitted(omitted)),
                    )
                }
                E::BadRequest { code, message } => {
                    (StatusCode::BAD_REQUEST, code, message, vec![], None)
                }
                E::Unauthenticated => (
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "a valid token is required: Authorization: Bearer pb_…".into(),
                    vec![],
                    None,
                ),
                E::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m, vec![], None),
                E::NotFound(what) => (
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("{what} not found"),
                    vec![],
                    None,
                ),
                E::Conflict(m) => (StatusCode::CONFLICT, "conflict", m, vec![], None),
                e @ E::VersionMismatch { current, .. } => (
                    StatusCode::PRECONDITION_FAILED,
                    "version_mismatch",
                    e.to_string(),
                    vec![],
                    Some(Extra::CurrentVersion(current)),
                ),
                E::Sealed(m) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "vault_sealed",
                    m,
                    vec![],
                    None,
                ),
                E::Upstream(m) => (StatusCode::BAD_GATEWAY, "upstream_failed", m, vec![], None),
                E::UpstreamAuth(m) => (StatusCode::BAD_GATEWAY, "upstream_auth", m, vec![], None),
                E::Blocked(m) => (StatusCode::FORBIDDEN, "egress_blocked", m, vec![], None),
                E::Timeout(m) => (
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    m,
                    vec![],
                    None,
                ),
                e @ E::RateLimited(_) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    e.to_string(),
                    vec![],
                    None,
                ),
                E::Integrity(m) => {
                    tracing::error!(detail = %m, "integrity failure");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "integrity_error",
                        m,
                        vec![],
                        None,
                    )
                }
                E::Internal(cause) => {
                    tracing::error!(%cause, "internal error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "an internal error occurred; it has been logged".into(),
                        vec![],
                        None,
                    )
                }
            },
            ApiError::BadJson(m) => (StatusCode::BAD_REQUEST, "bad_json", m, vec![], None),
            ApiError::BadQuery(m) => (StatusCode::BAD_REQUEST, "bad_query", m, vec![], None),
            ApiError::BadHeader(m) => (StatusCode::BAD_REQUEST, "bad_header", m, vec![], None),
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body exceeds {limit} bytes"),
                vec![],
                None,
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json".into(),
                vec![],
                None,
            ),
            ApiError::RouteNotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route".into(),
                vec![],
                None,
            ),
            ApiError::Signature => (
                StatusCode::UNAUTHORIZED,
                "signature",
                "signature".into(),
                vec![],
                None,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method".into(),
                vec![],
                None,
            ),
        }
    }
}

impl ApiError {
    /// The problem document of this failure (the web UI shows the same on its error pages).
    pub fn problem(self) -> Problem {
        let (status, code, detail, errors, extra) = self.parts();
        Problem {
            kind: format!("urn:patchbay:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors,
            errors_omitted: match extra {
                Some(Extra::Omitted(n)) => Some(n),
                _ => None,
            },
            current_version: match extra {
                Some(Extra::CurrentVersion(v)) => Some(v),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let bearer = !matches!(self, ApiError::Signature);
        let retry_after = match &self {
            ApiError::Engine(EngineError::RateLimited(secs)) => Some(*secs),
            _ => None,
        };
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED && bearer {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
