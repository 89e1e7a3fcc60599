//! `/v1/audit` (admin): the log, newest first, and its hash-chain check.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use patchbay_domain::api::{AuditEvent, AuditVerification, Page};
use patchbay_engine::AuditFilter;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Auth};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit", get(list))
        .route("/audit/verify", get(verify))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    /// RFC 3339 time.
    since: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(("actor" = Option<String>, Query), ("action" = Option<String>, Query), ("target" = Option<String>, Query),
        ("since" = Option<String>, Query, format = DateTime), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200),
        ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,18}$",
            description = "`next_cursor` of the previous page")),
    responses((status = 200, body = Page<AuditEvent>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    let since = q
        .since
        .as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::BadQuery(
                        "since must be an RFC 3339 time such as 2026-01-31T12:00:00Z".into(),
                    )
                })
        })
        .transpose()?;
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        target: q.target,
        since,
    };
    Ok(Json(
        s.hub
            .list_audit(&p, filter, q.cursor.as_deref(), q.limit)
            .await?,
    ))
}

/// Recomputes the organization's hash chain.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", responses((status = 200, body = AuditVerification)))]
pub async fn verify(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<AuditVerification>> {
    Ok(Json(s.hub.verify_audit(&p).await?))
}
