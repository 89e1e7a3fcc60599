//! Organization secrets: write-only values that connections reference by name. A secret may be
//! shared with a list of projects: then only connections in those projects (and tokens scoped
//! to them) can use it. One without a list is organization-wide, referenced by unscoped tokens
//! only; a project-scoped token never learns whether a secret not shared with it exists.

use patchbay_domain::api::{PutSecret, SecretMeta};
use patchbay_domain::validate::SECRET_MAX_CHARS;
use patchbay_domain::{Principal, ProjectId, SecretId, SecretName, ValidationErrors};
use patchbay_store::SecretRecord;
use patchbay_vault::Aad;
use zeroize::Zeroizing;

use crate::core::Change;
use crate::{EngineError, Hub, Result};

/// The associated data of an organization secret's ciphertext.
pub(crate) fn secret_aad<'a>(org: &'a str, object: &'a str) -> Aad<'a> {
    Aad {
        org,
        object,
        field: "value",
    }
}

fn meta(r: &SecretRecord) -> SecretMeta {
    SecretMeta {
        name: r.name.clone(),
        description: r.description.clone(),
        set: !r.ciphertext.is_empty(),
        projects: r.projects.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

impl Hub {
    pub async fn list_secrets(&self, p: &Principal) -> Result<Vec<SecretMeta>> {
        Ok(self
            .store()
            .list_secrets(&p.org_id)
            .await?
            .iter()
            .filter(|r| visible_to(p, r))
            .map(meta)
            .collect())
    }

    /// Whether `p` may reference secret `name` from a connection in `project`: it exists, is
    /// shared with that project, or is organization-wide and `p` is not scoped to a project.
    pub(crate) async fn referable_secret(
        &self,
        p: &Principal,
        name: &str,
        project: &ProjectId,
    ) -> Result<bool> {
        Ok(match self.store().get_secret(&p.org_id, name).await? {
            None => false,
            Some(r) => match &r.projects {
                None => p.project_id.is_none(),
                Some(list) => list.iter().any(|id| id == project.as_str()),
            },
        })
    }

    /// The projects a write of a secret leaves it shared with, each checked to exist.
    async fn shared_with(
        &self,
        p: &Principal,
        asked: Option<Option<Vec<String>>>,
        current: Option<&patchbay_store::SecretRecord>,
        errs: &mut ValidationErrors,
    ) -> Result<Option<Vec<String>>> {
        let list = match asked {
            None => return Ok(current.and_then(|r| r.projects.clone())),
            Some(None) => return Ok(None),
            Some(Some(list)) => list,
        };
        if list.is_empty() {
            errs.push(
                "projects",
                "must name at least one project (null makes the secret organization-wide)",
            );
            return Ok(None);
        }
        let mut ids: Vec<String> = Vec::new();
        for asked in &list {
            let found = match asked.parse::<ProjectId>() {
                Ok(id) => self.store().get_project(&p.org_id, &id).await?,
                Err(_) => self.store().find_project(&p.org_id, asked).await?,
            };
            match found {
                Some(r) if !ids.contains(&r.id.to_string()) => ids.push(r.id.to_string()),
                Some(_) => {}
                None => return Err(EngineError::NotFound("project")),
            }
        }
        Ok(Some(ids))
    }

    /// Creates or replaces a secret; returns its listing and whether it was created.
    pub async fn put_secret(
        &self,
        p: &Principal,
        name: &str,
        req: PutSecret,
    ) -> Result<(SecretMeta, bool)> {
        require_secret_writer(p)?;
        let value = Zeroizing::new(req.value);
        let mut errs = ValidationErrors::new();
        let name = SecretName::parse(name)
            .map_err(|e| errs.push("name", e))
            .ok();
        if value.is_empty() {
            errs.push("value", "must not be empty");
        } else if value.chars().count() > SECRET_MAX_CHARS {
            errs.push(
                "value",
                format!("must be at most {SECRET_MAX_CHARS} characters"),
            );
        }
        if let Some(Err(e)) = req
            .description
            .as_deref()
            .map(patchbay_domain::names::check_description)
        {
            errs.push("description", e);
        }
        let current = match &name {
            Some(n) => self.store().get_secret(&p.org_id, n.as_str()).await?,
            None => None,
        };
        let projects = self
            .shared_with(p, req.projects, current.as_ref(), &mut errs)
            .await?;
        let name = errs
            .into_result(name)?
            .ok_or_else(|| EngineError::Internal("name".into()))?;
        let now = self.now();
        let ring = self.vault().keyring()?;
        let mut w = self.write().await?;
        let id = w
            .secret_id(&p.org_id, name.as_str())
            .await?
            .unwrap_or_else(SecretId::generate);
        let object = format!("secret:{id}");
        let ciphertext = ring.seal(&secret_aad(p.org_id.as_str(), &object), value.as_bytes())?;
        let record = SecretRecord {
            id: id.clone(),
            org_id: p.org_id.clone(),
            name: name.to_string(),
            description: req.description,
            key_version: i64::from(ring.current_version()),
            ciphertext,
            projects,
            created_at: now,
            updated_at: now,
        };
        let created = w.put_secret(&record).await?;
        w.succeeded(
            p,
            if created {
                "secret.create"
            } else {
                "secret.update"
            },
            format!("secret:{}", name.as_str()),
            serde_json::json!({"id": id, "projects": record.projects}),
        );
        w.invalidates(Change::Connections);
        w.commit().await?;
        let stored = self
            .store()
            .get_secret(&p.org_id, name.as_str())
            .await?
            .ok_or(EngineError::NotFound("secret"))?;
        Ok((meta(&stored), created))
    }

    pub async fn delete_secret(&self, p: &Principal, name: &str) -> Result<()> {
        let Ok(name) = SecretName::parse(name) else {
            return Err(EngineError::NotFound("secret"));
        };
        if self
            .store()
            .get_secret(&p.org_id, name.as_str())
            .await?
            .is_none()
        {
            return Err(EngineError::NotFound("secret"));
        }
        require_secret_writer(p)?;
        let mut w = self.write().await?;
        w.delete_secret(&p.org_id, name.as_str(), self.now())
            .await
            .map_err(|e| match e {
                patchbay_store::StoreError::NotFound => EngineError::NotFound("secret"),
                other => other.into(),
            })?;
        w.succeeded(
            p,
            "secret.delete",
            format!("secret:{}", name.as_str()),
            serde_json::json!({}),
        );
        w.invalidates(Change::Connections);
        w.commit().await?;
        Ok(())
    }

    /// Opens the organization secret `name` for a connection in `project`, which it must be
    /// shared with (an organization-wide one serves every project).
    pub(crate) async fn open_org_secret(
        &self,
        p: &Principal,
        name: &str,
        project: &ProjectId,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let record = self
            .store()
            .get_secret(&p.org_id, name)
            .await?
            .ok_or_else(|| {
                EngineError::Integrity(format!("referenced secret {name:?} no longer exists"))
            })?;
        if record
            .projects
            .as_ref()
            .is_some_and(|list| !list.iter().any(|id| id == project.as_str()))
        {
            return Err(EngineError::forbidden(format!(
                "organization secret {name:?} is not shared with this connection's project"
            )));
        }
        let object = format!("secret:{}", record.id);
        self.open_ciphertext(&secret_aad(p.org_id.as_str(), &object), &record.ciphertext)
            .await
            .map_err(|e| match e {
                patchbay_vault::VaultError::Sealed(_) => e.into(),
                other => EngineError::Integrity(format!(
                    "organization secret {name:?} does not decrypt: {other}"
                )),
            })
    }
}

fn require_secret_writer(p: &Principal) -> Result<()> {
    if !p.can_write() {
        return Err(EngineError::forbidden(
            "writing secrets needs an admin or member token",
        ));
    }
    if p.project_id.is_some() {
        return Err(EngineError::forbidden(
            "organization secrets cannot be written by a project-scoped token",
        ));
    }
    Ok(())
}

/// Whether `p` sees secret `r` in listings: every secret for unscoped tokens, those shared with
/// its project for a project-scoped one.
fn visible_to(p: &Principal, r: &patchbay_store::SecretRecord) -> bool {
    match &p.project_id {
        None => true,
        Some(project) => r
            .projects
            .as_ref()
            .is_some_and(|list| list.iter().any(|id| id == project.as_str())),
    }
}
