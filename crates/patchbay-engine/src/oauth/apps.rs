//! OAuth apps (admin): client registrations per organization and provider. The client secret is
//! sealed like every other secret, bound to the app and the field `client_secret`.

use std::collections::BTreeMap;

use patchbay_domain::api::{CreateOAuthApp, OAuthApp, UpdateOAuthApp};
use patchbay_domain::connection::SecretState;
use patchbay_domain::validate::SECRET_MAX_CHARS;
use patchbay_domain::{AppId, Name, Principal, ValidationErrors};
use patchbay_store::AppRecord;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::admin::require_admin;
use crate::admin::{check_version, conflict_name, update_failed};
use crate::connections::field_aad;
use crate::{EngineError, Hub, Result};

fn view(a: &AppRecord) -> OAuthApp {
    let strings = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    OAuthApp {
        id: a.id.parse().unwrap_or_else(|_| AppId::generate()),
        name: a.name.clone(),
        provider: a.provider.clone(),
        client_id: a.client_id.clone(),
        client_secret: SecretState {
            set: a.client_secret.is_some(),
            reference: None,
        },
        scopes: a
            .scopes
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        authorization_params: strings(&a.authorization_params),
        token_params: strings(&a.token_params),
        created_at: a.created_at,
        updated_at: a.updated_at,
        version: a.version,
    }
}

fn check_client_id(id: &str, errs: &mut ValidationErrors) {
    if id.is_empty() || id.chars().count() > 512 || id.chars().any(char::is_control) {
        errs.push(
            "client_id",
            "must be 1-512 characters without control characters",
        );
    }
}

fn check_scopes(scopes: &[String], errs: &mut ValidationErrors) {
    if scopes.iter().any(|s| {
        s.is_empty()
            || s.chars().count() > 1024
            || s.contains(char::is_whitespace)
            || s.chars().any(char::is_control)
    }) {
        errs.push(
            "scopes",
            "each scope must be 1-1024 characters without spaces",
        );
    }
}

impl Hub {
    pub(crate) fn app_aad_object(id: &str) -> String {
        format!("app:{id}")
    }

    fn seal_client_secret(&self, org: &str, id: &str, secret: &str) -> Result<(i64, Vec<u8>)> {
        let ring = self.vault().keyring()?;
        let object = Self::app_aad_object(id);
        Ok((
            i64::from(ring.current_version()),
            ring.seal(&field_aad(org, &object, "client_secret"), secret.as_bytes())?,
        ))
    }

    pub async fn list_apps(&self, p: &Principal) -> Result<Vec<OAuthApp>> {
        require_admin(p)?;
        Ok(self
            .store()
            .list_apps(&p.org_id)
            .await?
            .iter()
            .map(view)
            .collect())
    }

    async fn visible_app(&self, p: &Principal, id: &AppId) -> Result<AppRecord> {
        self.store()
            .find_app(&p.org_id, id.as_str())
            .await?
            .ok_or(EngineError::NotFound("OAuth app"))
    }

    pub async fn create_app(&self, p: &Principal, req: CreateOAuthApp) -> Result<OAuthApp> {
        require_admin(p)?;
        let mut errs = ValidationErrors::new();
        let name = Name::parse(&req.name)
            .map_err(|e| errs.push("name", e))
            .ok();
        let provider = match self.catalog().get(&req.provider) {
            Some(entry) if entry.uses_oauth() => Some(entry.clone()),
            Some(_) => {
                errs.push("provider", format!("{} does not use OAuth", req.provider));
                None
            }
            None => {
                errs.push("provider", "unknown provider; see GET /v1/providers");
                None
            }
        };
        check_client_id(&req.client_id, &mut errs);
        if req
            .client_secret
            .as_ref()
            .is_some_and(|s| s.is_empty() || s.chars().count() > SECRET_MAX_CHARS)
        {
            errs.push(
                "client_secret",
                "must be 1-65536 characters (omit it for a public client)",
            );
        }
        let scopes = req
            .scopes
            .clone()
            .or_else(|| provider.as_ref().map(|e| e.default_scopes.clone()))
            .unwrap_or_default();
        check_scopes(&scopes, &mut errs);
        let name = errs
            .into_result(name)?
            .ok_or_else(|| EngineError::Internal("name".into()))?;
        let id = AppId::generate();
        let secret = req.client_secret.map(Zeroizing::new);
        let sealed = secret
            .as_ref()
            .map(|s| self.seal_client_secret(p.org_id.as_str(), id.as_str(), s))
            .transpose()?;
        let now = self.now();
        let record = AppRecord {
            id: id.to_string(),
            org_id: p.org_id.clone(),
            name: name.to_string(),
            provider: req.provider.clone(),
            client_id: req.client_id,
            key_version: sealed.as_ref().map(|(v, _)| *v),
            client_secret: sealed.map(|(_, c)| c),
            scopes: serde_json::json!(scopes),
            authorization_params: serde_json::json!(req.authorization_params.unwrap_or_default()),
            token_params: serde_json::json!(req.token_params.unwrap_or_default()),
            created_by: p.actor(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut w = self.write().await?;
        w.insert_app(&record)
            .await
            .map_err(|e| conflict_name(e, "OAuth app", &name))?;
        w.succeeded(
            p,
            "oauth_app.create",
            id.to_string(),
            serde_json::json!({"name": name.as_str(), "provider": record.provider}),
        );
        w.commit().await?;
        Ok(view(&record))
    }

    pub async fn update_app(
        &self,
        p: &Principal,
        id: &AppId,
        req: UpdateOAuthApp,
        if_match: Option<i64>,
    ) -> Result<OAuthApp> {
        // Read under the write, as a project's update does.
        let mut w = self.write().await?;
        let mut record = w
            .lock_app(&p.org_id, id.as_str())
            .await?
            .ok_or(EngineError::NotFound("OAuth app"))?;
        require_admin(p)?;
        check_version("OAuth app", if_match, record.version)?;
        let mut errs = ValidationErrors::new();
        if let Some(n) = &req.name {
            match Name::parse(n) {
                Ok(n) => record.name = n.to_string(),
                Err(e) => errs.push("name", e),
            }
        }
        if let Some(c) = &req.client_id {
            check_client_id(c, &mut errs);
            record.client_id = c.clone();
        }
        if let Some(s) = &req.scopes {
            check_scopes(s, &mut errs);
            record.scopes = serde_json::json!(s);
        }
        match &req.client_secret {
            None => {}
            Some(Value::Null) => {
                record.client_secret = None;
                record.key_version = None;
            }
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= SECRET_MAX_CHARS => {
                let (v, c) = self.seal_client_secret(p.org_id.as_str(), &record.id, s)?;
                record.key_version = Some(v);
                record.client_secret = Some(c);
            }
            Some(_) => errs.push(
                "client_secret",
                "must be a non-empty string, or null to remove it",
            ),
        }
        if let Some(a) = &req.authorization_params {
            record.authorization_params = serde_json::json!(a);
        }
        if let Some(t) = &req.token_params {
            record.token_params = serde_json::json!(t);
        }
        errs.into_result(())?;
        record.updated_at = self.now();
        let name = Name::parse(&record.name).map_err(EngineError::Internal)?;
        w.update_app(&record, record.version)
            .await
            .map_err(|e| update_failed(e, "OAuth app", record.version, "OAuth app", &name))?;
        w.succeeded(
            p,
            "oauth_app.update",
            id.to_string(),
            serde_json::json!({"client_secret_changed": req.client_secret.is_some()}),
        );
        w.commit().await?;
        record.version += 1;
        Ok(view(&record))
    }

    pub async fn delete_app(&self, p: &Principal, id: &AppId) -> Result<()> {
        let record = self.visible_app(p, id).await?;
        require_admin(p)?;
        let mut w = self.write().await?;
        w.delete_app(&record, self.now()).await?;
        w.succeeded(p, "oauth_app.delete", id.to_string(), serde_json::json!({}));
        w.commit().await?;
        Ok(())
    }
}
