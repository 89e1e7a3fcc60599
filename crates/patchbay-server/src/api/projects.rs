//! `/v1/projects`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use patchbay_domain::ProjectId;
use patchbay_domain::api::{CreateProject, Project, UpdateProject};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, IfMatch, path_id};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects", get(list).post(create))
        .route("/projects/{id}", get(read).patch(update).delete(remove))
}

#[utoipa::path(get, path = "/v1/projects", tag = "projects", responses((status = 200, body = Vec<Project>)))]
pub async fn list(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(s.hub.list_projects(&p).await?))
}

#[utoipa::path(post, path = "/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = Project)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.hub.create_project(&p, req).await?),
    ))
}

#[utoipa::path(get, path = "/v1/projects/{id}", tag = "projects", responses((status = 200, body = Project)))]
pub async fn read(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Project>> {
    let id: ProjectId = path_id(&id, "project")?;
    Ok(Json(s.hub.get_project(&p, &id).await?))
}

#[utoipa::path(patch, path = "/v1/projects/{id}", tag = "projects", request_body = UpdateProject,
    responses((status = 200, body = Project)))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    IfMatch(version): IfMatch,
    ApiJson(req): ApiJson<UpdateProject>,
) -> ApiResult<Json<Project>> {
    let id: ProjectId = path_id(&id, "project")?;
    Ok(Json(s.hub.update_project(&p, &id, req, version).await?))
}

#[utoipa::path(delete, path = "/v1/projects/{id}", tag = "projects", responses((status = 204)))]
pub async fn remove(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: ProjectId = path_id(&id, "project")?;
    s.hub.delete_project(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
