//! The web UI's sessions: a browser logs in with an API token and is given a random session
//! value for its cookie. The store keeps only the value's hash, so any replica serves the
//! session; the session acts as its token (its role, organization and project scope) and ends
//! when the token is revoked, after an idle period, at its absolute end, or at logout. Each
//! session has a CSRF token derived from its value, which a page embeds in its forms.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use patchbay_domain::Principal;
use patchbay_store::WebSessionRecord;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{EngineError, Hub, Result};

/// How long sessions last unless the settings say otherwise.
pub const DEFAULT_WEB_SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(2 * 3600);
pub const DEFAULT_WEB_SESSION_MAX: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// A session's last-seen time is written at most this often (or four times per idle period,
/// when that is shorter).
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A live session, as a request sees it.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub principal: Arc<Principal>,
    /// What the session's forms carry to prove they came from its pages.
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

impl WebSession {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

fn span(d: std::time::Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

fn id_hash(value: &str) -> String {
    hex::encode(super::hash_token(value))
}

fn csrf_of(value: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"patchbay web csrf\0");
    h.update(value.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Session values: 32 random bytes, URL-safe base64.
fn looks_like_session(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Hub {
    /// Starts a session for the holder of API token `token`; the value for the cookie and the
    /// session. Audited as `session.start`.
    pub async fn start_web_session(&self, token: &str) -> Result<(String, WebSession)> {
        let principal = self.authenticated(token.trim()).await?;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let value = URL_SAFE_NO_PAD.encode(bytes);
        let now = self.now();
        let expires_at = now + span(self.inner.settings.web_session_max);
        let record = WebSessionRecord {
            id_hash: id_hash(&value),
            org_id: principal.org_id.to_string(),
            token_id: principal.token_id.to_string(),
            created_at: now,
            last_seen_at: now,
            expires_at,
        };
        let mut w = self.write().await?;
        w.insert_web_session(&record).await?;
        w.succeeded(
            &principal,
            "session.start",
            principal.token_id.to_string(),
            serde_json::json!({"expires_at": expires_at}),
        );
        w.commit().await?;
        let session = WebSession {
            principal,
            csrf: csrf_of(&value),
            expires_at,
        };
        Ok((value, session))
    }

    /// The live session whose cookie holds `value`; `Unauthenticated` when there is none, it
    /// expired (idle or absolute) or its token was revoked.
    pub async fn web_session(&self, value: &str) -> Result<WebSession> {
        if !looks_like_session(value) {
            return Err(EngineError::Unauthenticated);
        }
        let hash = id_hash(value);
        let (record, token) = self
            .store()
            .web_session(&hash)
            .await?
            .ok_or(EngineError::Unauthenticated)?;
        let now = self.now();
        let idle = span(self.inner.settings.web_session_idle);
        if now >= record.expires_at || now - record.last_seen_at >= idle {
            return Err(EngineError::Unauthenticated);
        }
        if now - record.last_seen_at >= TOUCH_EVERY.min(idle / 4) {
            self.store().touch_web_session(&hash, now).await?;
        }
        Ok(WebSession {
            principal: Arc::new(super::principal_of(&token)),
            csrf: csrf_of(value),
            expires_at: record.expires_at,
        })
    }

    /// Ends the session whose cookie holds `value` (logout). Audited as `session.end`.
    pub async fn end_web_session(&self, session: &WebSession, value: &str) -> Result<()> {
        let mut w = self.write().await?;
        if w.delete_web_session(&id_hash(value)).await? {
            w.succeeded(
                &session.principal,
                "session.end",
                session.principal.token_id.to_string(),
                serde_json::json!({}),
            );
        }
        w.commit().await
    }

    /// Forgets sessions that can no longer be used (a worker's pass).
    pub(crate) async fn expire_web_sessions(&self) -> Result<()> {
        let now = self.now();
        self.store()
            .expire_web_sessions(now, now - span(self.inner.settings.web_session_idle))
            .await?;
        Ok(())
    }
}
