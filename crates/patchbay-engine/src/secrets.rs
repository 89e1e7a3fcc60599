//! Organization secrets: write-only values that connections reference by name.

use patchbay_domain::api::{PutSecret, SecretMeta};
use patchbay_domain::validate::SECRET_MAX_BYTES;
use patchbay_domain::{Principal, SecretId, SecretName, ValidationErrors};
use patchbay_store::SecretRecord;
use patchbay_vault::Aad;
use zeroize::Zeroizing;

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
            .map(meta)
            .collect())
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
        } else if value.len() > SECRET_MAX_BYTES {
            errs.push("value", format!("must be at most {SECRET_MAX_BYTES} bytes"));
        }
        if let Some(d) = &req.description
            && (d.chars().count() > 1000 || d.chars().any(char::is_control))
        {
            errs.push(
                "description",
                "must be at most 1000 characters without control characters",
            );
        }
        let name = errs
            .into_result(name)?
            .ok_or_else(|| EngineError::Internal("name".into()))?;
        let now = self.now();
        let ring = self.vault().keyring()?;
        let mut tx = self.store().begin().await?;
        let id = tx
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
            created_at: now,
            updated_at: now,
        };
        let created = tx.put_secret(&record).await?;
        tx.append_audit(&self.event(
            p,
            if created {
                "secret.create"
            } else {
                "secret.update"
            },
            Some(format!("secret:{}", name.as_str())),
            "success",
            serde_json::json!({"id": id}),
        ))
        .await?;
        tx.commit().await?;
        self.forget_all_prepared();
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
        let mut tx = self.store().begin().await?;
        tx.delete_secret(&p.org_id, name.as_str(), self.now())
            .await
            .map_err(|e| match e {
                patchbay_store::StoreError::NotFound => EngineError::NotFound("secret"),
                other => other.into(),
            })?;
        tx.append_audit(&self.event(
            p,
            "secret.delete",
            Some(format!("secret:{}", name.as_str())),
            "success",
            serde_json::json!({}),
        ))
        .await?;
        tx.commit().await?;
        self.forget_all_prepared();
        Ok(())
    }

    /// Opens the organization secret `name` (for a connection's reference).
    pub(crate) async fn open_org_secret(
        &self,
        p: &Principal,
        name: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let record = self
            .store()
            .get_secret(&p.org_id, name)
            .await?
            .ok_or_else(|| {
                EngineError::Integrity(format!("referenced secret {name:?} no longer exists"))
            })?;
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
