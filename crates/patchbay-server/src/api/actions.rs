//! `/v1/actions/*`: one operation through a connection. `Patchbay-Caller` names who acts (kept in
//! the connection's `used_by`).

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use patchbay_domain::actions::{
    DeliveryMode, EmailAction, EmailActionResult, FilesAction, FilesActionResult, HttpAction,
    HttpActionResult, NodeRun, NodeRunResult, SqlAction, SqlActionResult, StorageAction,
    StorageActionResult, WebhookAction, WebhookActionResult,
};
use patchbay_engine::{StorageOutcome, caller_label};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/actions/http", post(http))
        .route("/actions/sql", post(sql))
        .route("/actions/email", post(email))
        .route("/actions/webhook", post(webhook))
        .route("/actions/storage", post(storage))
        .route("/actions/files", post(files))
        .route("/nodes/run", post(run_node))
}

/// The `Patchbay-Caller` label, checked.
pub(crate) fn caller(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    const CALLER: HeaderName = HeaderName::from_static(CALLER_HEADER);
    caller_in(headers.get(CALLER))
}

pub(crate) const CALLER_HEADER: &str = "patchbay-caller";

/// The label in a `Patchbay-Caller` header's value, checked.
pub(crate) fn caller_in(value: Option<&HeaderValue>) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| ApiError::BadHeader("Patchbay-Caller is not visible ASCII".into()))?;
            Ok(Some(caller_label(s.trim())?))
        }
    }
}

/// An HTTP call through a connection; `map` picks values out of a JSON answer.
#[utoipa::path(post, path = "/v1/actions/http", tag = "actions", request_body = HttpAction,
    responses((status = 200, body = HttpActionResult), (status = 422, description = "invalid fields, each named"),
        (status = 403, description = "the destination is blocked"), (status = 504, description = "the upstream timed out")))]
pub async fn http(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(a): ApiJson<HttpAction>,
) -> ApiResult<Json<HttpActionResult>> {
    let caller = caller(&headers)?;
    Ok(Json(s.hub.http_action(&p, a, caller).await?))
}

/// One parameterized SQL statement (`$1` / `?` placeholders only).
#[utoipa::path(post, path = "/v1/actions/sql", tag = "actions", request_body = SqlAction,
    responses((status = 200, body = SqlActionResult), (status = 400, description = "the database refused the statement"),
        (status = 422, description = "invalid fields, each named")))]
pub async fn sql(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(a): ApiJson<SqlAction>,
) -> ApiResult<Json<SqlActionResult>> {
    let caller = caller(&headers)?;
    Ok(Json(s.hub.sql_action(&p, a, caller).await?))
}

/// An e-mail through an SMTP connection, from its `from_address`.
#[utoipa::path(post, path = "/v1/actions/email", tag = "actions", request_body = EmailAction,
    responses((status = 200, body = EmailActionResult), (status = 422, description = "invalid fields, each named")))]
pub async fn email(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(a): ApiJson<EmailAction>,
) -> ApiResult<Json<EmailActionResult>> {
    let caller = caller(&headers)?;
    Ok(Json(s.hub.email_action(&p, a, caller).await?))
}

/// A webhook: `blocking` answers with the receiver's response; `fire_and_forget` queues it
/// (202 with the delivery id).
#[utoipa::path(post, path = "/v1/actions/webhook", tag = "actions", request_body = WebhookAction,
    responses((status = 200, body = WebhookActionResult), (status = 202, body = WebhookActionResult),
        (status = 422, description = "invalid fields, each named")))]
pub async fn webhook(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(a): ApiJson<WebhookAction>,
) -> ApiResult<(StatusCode, Json<WebhookActionResult>)> {
    let caller = caller(&headers)?;
    let queued = a.mode == DeliveryMode::FireAndForget;
    let r = s.hub.webhook_action(&p, a, caller).await?;
    let status = if queued && r.delivery.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(r)))
}

/// One operation on a storage connection's bucket: `put`, `list`, `delete` and `presign`
/// answer JSON; `get` answers with the object itself, streamed, with its `Content-Type`,
/// `Content-Length`, `ETag` and `Last-Modified`.
#[utoipa::path(post, path = "/v1/actions/storage", tag = "actions", request_body = patchbay_domain::actions::StorageActionBody,
    responses((status = 200, description = "the operation's result; for `get`, the object's bytes with its own Content-Type",
            content((StorageActionResult = "application/json"), (Vec<u8> = "application/octet-stream"))),
        (status = 404, description = "no such object (get)"),
        (status = 422, description = "invalid fields, each named (a key outside the prefix)"),
        (status = 502, description = "the storage service refused the request or the credentials (`upstream_auth`)"),
        (status = 403, description = "the destination is blocked"), (status = 504, description = "the storage service timed out")))]
pub async fn storage(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(a): ApiJson<StorageAction>,
) -> ApiResult<Response> {
    let caller = caller(&headers)?;
    Ok(match s.hub.storage_action(&p, a, caller).await? {
        StorageOutcome::Done(r) => Json(r).into_response(),
        StorageOutcome::Object(object) => object_response(object),
    })
}

/// One operation on a file-transfer connection's server: `put`, `get` (the content in the
/// answer, as text or base64), `list`, `delete` and `mkdir`, every path under the connection's
/// base directory. An SFTP server's host key is pinned by the first use when the connection
/// names none.
#[utoipa::path(post, path = "/v1/actions/files", tag = "actions", request_body = patchbay_domain::actions::FilesActionBody,
    responses((status = 200, body = FilesActionResult),
        (status = 400, description = "the server refused the operation (`file_refused`: permissions, a directory not empty)"),
        (status = 404, description = "no such file or directory"),
        (status = 422, description = "invalid fields, each named (a path outside the base directory)"),
        (status = 502, description = "the server refused the credentials (`upstream_auth`), its host key is not the pinned one, or it failed"),
        (status = 403, description = "the destination is blocked"), (status = 504, description = "the server timed out")))]
pub async fn files(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(a): ApiJson<FilesAction>,
) -> ApiResult<Json<FilesActionResult>> {
    let caller = caller(&headers)?;
    Ok(Json(s.hub.files_action(&p, a, caller).await?))
}

/// An object as the service sent it, with its own headers only.
fn object_response(object: patchbay_engine::Answer) -> Response {
    const KEPT: &[&str] = &[
        "content-type",
        "content-length",
        "content-encoding",
        "content-disposition",
        "content-language",
        "cache-control",
        "etag",
        "last-modified",
        "x-amz-version-id",
    ];
    let (head, body) = object.into_parts();
    let mut out = Response::new(Body::new(body));
    for (name, value) in &head.headers {
        if KEPT.contains(&name.as_str()) || name.as_str().starts_with("x-amz-meta-") {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// One workflow node in the seeds' format (`{type, config}`) with `context` variables.
#[utoipa::path(post, path = "/v1/nodes/run", tag = "actions", request_body = NodeRun,
    responses((status = 200, body = NodeRunResult), (status = 422, description = "invalid fields, each named")))]
pub async fn run_node(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(node): ApiJson<NodeRun>,
) -> ApiResult<Json<NodeRunResult>> {
    let caller = caller(&headers)?;
    Ok(Json(s.hub.run_node(&p, node, caller).await?))
}
