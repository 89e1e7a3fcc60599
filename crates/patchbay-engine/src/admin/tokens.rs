//! API tokens: minting (`pb_` + 43 URL-safe base64 characters), hashing, authentication, and
//! the admin's token management.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use patchbay_domain::api::{CreateToken, CreatedToken, Token};
use patchbay_domain::{Name, OrgId, Principal, ProjectId, Role, TokenId, ValidationErrors};
use patchbay_store::{NewToken, TokenRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{EngineError, Hub, Result};

pub const TOKEN_PREFIX: &str = "pb_";

/// SHA-256 of a token value: tokens carry 256 random bits, so a fast hash is enough.
pub fn hash_token(value: &str) -> Vec<u8> {
    token_digest(value).to_vec()
}

fn token_digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// An authenticated token, as the cache keeps it.
#[derive(Debug)]
pub(crate) struct Authenticated {
    id: TokenId,
    principal: Arc<Principal>,
    /// When the token's use was last written, in Unix milliseconds (`i64::MIN`: never).
    touched: AtomicI64,
}

fn looks_like_token(value: &str) -> bool {
    value.len() == 46
        && value.starts_with(TOKEN_PREFIX)
        && value[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh token value and the row that stores its hash.
pub(crate) fn mint(
    org: &OrgId,
    name: &str,
    role: Role,
    project: Option<ProjectId>,
    operator: bool,
    created_by: &str,
    now: DateTime<Utc>,
) -> (String, NewToken) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let value = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let record = TokenRecord {
        id: TokenId::generate(),
        org_id: org.clone(),
        name: name.to_owned(),
        role,
        project_id: project,
        operator,
        hint: format!("{}…", &value[..7]),
        created_by: created_by.to_owned(),
        created_at: now,
        last_used_at: None,
    };
    let hash = hash_token(&value);
    (value, NewToken { record, hash })
}

/// What a stored token acts as.
pub(crate) fn principal_of(t: &TokenRecord) -> Principal {
    Principal {
        token_id: t.id.clone(),
        org_id: t.org_id.clone(),
        role: t.role,
        project_id: t.project_id.clone(),
        operator: t.operator,
    }
}

pub(crate) fn view(t: &TokenRecord) -> Token {
    Token {
        id: t.id.clone(),
        name: t.name.clone(),
        role: t.role,
        project: t.project_id.clone(),
        operator: t.operator,
        hint: t.hint.clone(),
        created_at: t.created_at,
        last_used_at: t.last_used_at,
    }
}

impl Hub {
    /// The principal behind a bearer token value.
    pub async fn authenticate(&self, value: &str) -> Result<Principal> {
        Ok(Principal::clone(&*self.authenticated(value).await?))
    }

    /// [`Self::authenticate`], shared: no copy of the principal is made.
    pub async fn authenticated(&self, value: &str) -> Result<Arc<Principal>> {
        if !looks_like_token(value) {
            return Err(EngineError::Unauthenticated);
        }
        let digest = token_digest(value);
        // Tokens are cached for a few seconds: a revocation here evicts at once, one on another
        // replica takes effect within PRINCIPAL_TTL.
        let t = match self.inner.principals.get(&digest) {
            Some(t) => t,
            None => Box::pin(self.stored_token(digest)).await?,
        };
        self.touch(&t).await;
        Ok(t.principal.clone())
    }

    async fn stored_token(&self, digest: [u8; 32]) -> Result<Arc<Authenticated>> {
        let since = self.inner.principals.epoch();
        let t = self
            .store()
            .token_by_hash(&digest)
            .await?
            .ok_or(EngineError::Unauthenticated)?;
        let authenticated = Arc::new(Authenticated {
            principal: Arc::new(principal_of(&t)),
            id: t.id,
            touched: AtomicI64::new(t.last_used_at.map_or(i64::MIN, |at| at.timestamp_millis())),
        });
        self.inner
            .principals
            .insert_read_since(since, digest, authenticated.clone());
        Ok(authenticated)
    }

    /// Records `last_used_at` at most once a minute per token, off the request's critical data.
    async fn touch(&self, t: &Authenticated) {
        let now = self.now();
        let at = now.timestamp_millis();
        let last = t.touched.load(Ordering::Relaxed);
        let due = last == i64::MIN || at.saturating_sub(last) >= 60_000;
        // One request of those arriving together writes.
        if due
            && t.touched
                .compare_exchange(last, at, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            && let Err(e) = Box::pin(self.store().touch_token(&t.id, now)).await
        {
            tracing::warn!(error = %e, "could not record token use");
        }
    }

    pub async fn list_tokens(&self, p: &Principal) -> Result<Vec<Token>> {
        require_admin(p)?;
        let all = self.store().list_tokens(&p.org_id).await?;
        Ok(all
            .iter()
            .filter(|t| p.project_id.is_none() || t.project_id == p.project_id)
            .map(view)
            .collect())
    }

    pub async fn create_token(&self, p: &Principal, req: CreateToken) -> Result<CreatedToken> {
        require_admin(p)?;
        let name = Name::parse(&req.name).map_err(|e| ValidationErrors::single("name", e))?;
        let project = match (&p.project_id, req.project) {
            (Some(scope), Some(asked)) if *scope != asked => {
                return Err(EngineError::NotFound("project"));
            }
            (Some(scope), _) => Some(scope.clone()),
            (None, asked) => asked,
        };
        if let Some(project) = &project
            && self
                .store()
                .get_project(&p.org_id, project)
                .await?
                .is_none()
        {
            return Err(EngineError::NotFound("project"));
        }
        let (value, new) = mint(
            &p.org_id,
            name.as_str(),
            req.role,
            project,
            false,
            &p.actor(),
            self.now(),
        );
        let mut w = self.write().await?;
        w.insert_token(&new).await?;
        w.succeeded(p, "token.create", new.record.id.to_string(), serde_json::json!({"name": name.as_str(), "role": req.role.as_str(), "project": new.record.project_id}));
        w.commit().await?;
        Ok(CreatedToken {
            token: view(&new.record),
            value,
        })
    }

    pub async fn delete_token(&self, p: &Principal, id: &TokenId) -> Result<()> {
        let visible = self
            .store()
            .list_tokens(&p.org_id)
            .await?
            .into_iter()
            .any(|t| &t.id == id && (p.project_id.is_none() || t.project_id == p.project_id));
        if !visible {
            return Err(EngineError::NotFound("token"));
        }
        require_admin(p)?;
        let mut w = self.write().await?;
        w.revoke_token(&p.org_id, id, self.now()).await?;
        w.succeeded(p, "token.revoke", id.to_string(), serde_json::json!({}));
        // Emptied after the commit: emptied earlier, a concurrent read of the still-valid row
        // could be cached again.
        w.invalidates(crate::core::Change::Principals);
        w.commit().await?;
        Ok(())
    }
}

/// How long an authenticated token is trusted without reading it again.
pub(crate) const PRINCIPAL_TTL: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) type PrincipalCache = crate::core::Cached<[u8; 32], Arc<Authenticated>>;

pub(crate) fn principal_cache() -> PrincipalCache {
    crate::core::Cached::new(10_000, PRINCIPAL_TTL)
}

impl crate::core::Forgets for PrincipalCache {
    fn forget(&self, change: &crate::core::Change) {
        if *change == crate::core::Change::Principals {
            self.invalidate_all();
        }
    }

    fn forget_all(&self) {
        self.invalidate_all();
    }

    fn stats(&self) -> (&'static str, crate::core::CacheStats) {
        ("principals", crate::core::Cached::stats(self))
    }
}

pub(crate) fn require_admin(p: &Principal) -> Result<()> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(EngineError::forbidden("this needs an admin token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_have_the_documented_shape() {
        let (value, new) = mint(
            &OrgId::generate(),
            "t",
            Role::Viewer,
            None,
            false,
            "x",
            Utc::now(),
        );
        assert!(looks_like_token(&value), "{value}");
        assert_eq!(value.len(), 46);
        assert_eq!(new.hash, hash_token(&value));
        assert!(!new.record.hint.contains(&value[7..]));
    }

    #[test]
    fn malformed_values_are_not_looked_up() {
        assert!(!looks_like_token("pb_short"));
        assert!(!looks_like_token(&format!("xx_{}", "a".repeat(43))));
        assert!(!looks_like_token(&format!("pb_{}'", "a".repeat(42))));
    }
}
