//! Organizations (operator only), projects, and `/v1/me`.

use patchbay_domain::api::{CreateOrg, CreateProject, CreatedOrg, Me, Org, Project, UpdateProject};
use patchbay_domain::{Name, OrgId, Principal, ProjectId, Role, ValidationErrors};
use patchbay_store::{OrgRecord, ProjectRecord};

use crate::admin::{mint, require_admin};
use crate::{EngineError, Hub, Result};

fn project_view(p: &ProjectRecord) -> Project {
    Project {
        id: p.id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        created_at: p.created_at,
        updated_at: p.updated_at,
        version: p.version,
    }
}

fn check_description(d: &Option<String>, errs: &mut ValidationErrors) {
    if let Some(Err(e)) = d.as_deref().map(patchbay_domain::names::check_description) {
        errs.push("description", e);
    }
}

impl Hub {
    pub async fn me(&self, p: &Principal) -> Result<Me> {
        let org = self
            .store()
            .get_org(&p.org_id)
            .await?
            .ok_or(EngineError::Unauthenticated)?;
        Ok(Me {
            org: p.org_id.clone(),
            org_name: org.name,
            role: p.role,
            project: p.project_id.clone(),
            operator: p.operator,
            token: p.token_id.clone(),
        })
    }

    pub async fn create_org(&self, p: &Principal, req: CreateOrg) -> Result<CreatedOrg> {
        require_operator(p)?;
        let name = Name::parse(&req.name).map_err(|e| ValidationErrors::single("name", e))?;
        let now = self.now();
        let org = OrgRecord {
            id: OrgId::generate(),
            name: name.to_string(),
            created_at: now,
        };
        let (value, token) = mint(&org.id, "admin", Role::Admin, None, false, &p.actor(), now);
        let mut w = self.write().await?;
        w.insert_org(&org).await.map_err(|e| match e {
            patchbay_store::StoreError::Conflict(_) => {
                EngineError::Conflict(format!("an organization named {name} already exists"))
            }
            other => other.into(),
        })?;
        w.insert_project(&ProjectRecord {
            id: ProjectId::generate(),
            org_id: org.id.clone(),
            name: "default".into(),
            description: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 1,
        })
        .await?;
        w.insert_token(&token).await?;
        // Recorded in both organizations: the operator's, and the new one's own chain.
        let details = serde_json::json!({"name": name.as_str()});
        w.succeeded(p, "org.create", org.id.to_string(), details.clone());
        let mut own = self.core().event(
            p,
            "org.create",
            Some(org.id.to_string()),
            "success",
            details,
        );
        own.org_id = org.id.clone();
        w.audit(own);
        w.commit().await?;
        Ok(CreatedOrg {
            id: org.id,
            name: org.name,
            admin_token: value,
        })
    }

    pub async fn list_orgs(&self, p: &Principal) -> Result<Vec<Org>> {
        require_operator(p)?;
        Ok(self
            .store()
            .list_orgs()
            .await?
            .into_iter()
            .map(|o| Org {
                id: o.id,
                name: o.name,
                created_at: o.created_at,
            })
            .collect())
    }

    pub async fn list_projects(&self, p: &Principal) -> Result<Vec<Project>> {
        Ok(self
            .store()
            .list_projects(&p.org_id)
            .await?
            .iter()
            .filter(|r| p.sees_project(&r.id))
            .map(project_view)
            .collect())
    }

    /// A project the caller may see, by id.
    pub(crate) async fn visible_project(
        &self,
        p: &Principal,
        id: &ProjectId,
    ) -> Result<ProjectRecord> {
        match self.store().get_project(&p.org_id, id).await? {
            Some(r) if p.sees_project(&r.id) => Ok(r),
            _ => Err(EngineError::NotFound("project")),
        }
    }

    pub async fn get_project(&self, p: &Principal, id: &ProjectId) -> Result<Project> {
        Ok(project_view(&self.visible_project(p, id).await?))
    }

    pub async fn create_project(&self, p: &Principal, req: CreateProject) -> Result<Project> {
        require_admin(p)?;
        if p.project_id.is_some() {
            return Err(EngineError::forbidden(
                "a project-scoped token cannot create projects",
            ));
        }
        let mut errs = ValidationErrors::new();
        let name = Name::parse(&req.name)
            .map_err(|e| errs.push("name", e))
            .ok();
        check_description(&req.description, &mut errs);
        let name = errs
            .into_result(name)?
            .ok_or_else(|| EngineError::Internal("name".into()))?;
        let now = self.now();
        let record = ProjectRecord {
            id: ProjectId::generate(),
            org_id: p.org_id.clone(),
            name: name.to_string(),
            description: req.description,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 1,
        };
        let mut w = self.write().await?;
        w.insert_project(&record)
            .await
            .map_err(|e| conflict_name(e, "project", &name))?;
        w.succeeded(
            p,
            "project.create",
            record.id.to_string(),
            serde_json::json!({"name": name.as_str()}),
        );
        w.commit().await?;
        Ok(project_view(&record))
    }

    pub async fn update_project(
        &self,
        p: &Principal,
        id: &ProjectId,
        req: UpdateProject,
        if_match: Option<i64>,
    ) -> Result<Project> {
        // Read under the write, so that a concurrent change cannot turn into a 412 for a
        // caller who sent no If-Match.
        let mut w = self.write().await?;
        let mut record = match w.lock_project(&p.org_id, id).await? {
            Some(r) if p.sees_project(&r.id) => r,
            _ => return Err(EngineError::NotFound("project")),
        };
        require_admin(p)?;
        check_version("project", if_match, record.version)?;
        let mut errs = ValidationErrors::new();
        if let Some(n) = &req.name {
            match Name::parse(n) {
                Ok(n) => record.name = n.to_string(),
                Err(e) => errs.push("name", e),
            }
        }
        check_description(&req.description, &mut errs);
        errs.into_result(())?;
        if req.description.is_some() {
            record.description = req.description;
        }
        record.updated_at = self.now();
        let name = Name::parse(&record.name).map_err(EngineError::Internal)?;
        w.update_project(&record, Some(record.version))
            .await
            .map_err(|e| update_failed(e, "project", record.version, "project", &name))?;
        w.succeeded(p, "project.update", id.to_string(), serde_json::json!({}));
        w.commit().await?;
        record.version += 1;
        Ok(project_view(&record))
    }

    pub async fn delete_project(&self, p: &Principal, id: &ProjectId) -> Result<()> {
        let record = self.visible_project(p, id).await?;
        require_admin(p)?;
        if record.name == "default" {
            return Err(EngineError::Conflict(
                "the default project cannot be deleted".into(),
            ));
        }
        let mut w = self.write().await?;
        w.delete_project(&p.org_id, id, self.now()).await?;
        w.succeeded(p, "project.delete", id.to_string(), serde_json::json!({}));
        w.commit().await?;
        Ok(())
    }
}

pub(crate) fn require_operator(p: &Principal) -> Result<()> {
    if p.operator {
        Ok(())
    } else {
        Err(EngineError::forbidden("this needs the operator token"))
    }
}

/// `If-Match` against the stored version of a `kind`.
pub(crate) fn check_version(kind: &'static str, if_match: Option<i64>, current: i64) -> Result<()> {
    match if_match {
        Some(v) if v != current => Err(EngineError::VersionMismatch { kind, current }),
        _ => Ok(()),
    }
}

/// The failure of a versioned update of `kind` read at `version`: someone else's update came
/// first, or the new name is taken (by another `what`).
pub(crate) fn update_failed(
    e: patchbay_store::StoreError,
    kind: &'static str,
    version: i64,
    what: &str,
    name: &Name,
) -> EngineError {
    match e {
        patchbay_store::StoreError::VersionMismatch => EngineError::VersionMismatch {
            kind,
            current: version + 1,
        },
        other => conflict_name(other, what, name),
    }
}

/// A unique-name violation, phrased for the user.
pub(crate) fn conflict_name(e: patchbay_store::StoreError, what: &str, name: &Name) -> EngineError {
    match e {
        patchbay_store::StoreError::Conflict(_) => EngineError::Conflict(format!(
            "a {what} named {name:?} already exists",
            name = name.as_str()
        )),
        other => other.into(),
    }
}
