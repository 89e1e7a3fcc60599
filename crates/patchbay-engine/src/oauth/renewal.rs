//! Fresh access tokens (SPEC §4, OAuth): a token expiring within the provider's margin is
//! refreshed before use — exactly once per connection at a time, across threads (a single
//! flight per connection) and replicas (the connection's row lock, then a re-read). A rotated
//! refresh token is stored in the same transaction as the new access token, before anyone can
//! use it. `invalid_grant` marks the connection `expired`; timeouts and 5xx are retried with
//! backoff and leave it `active`.
//!
//! A renewal runs as a task of its own on the hub's runtime; callers wait for its result but
//! cannot cancel it. A provider that rotates refresh tokens has spent the old one the moment it
//! answers, so the new tokens must be stored whatever happens to the caller that asked. The one
//! window left is the process dying between the provider's answer and the commit: the stored
//! refresh token is then the spent one, the next renewal is answered `invalid_grant` (or the
//! provider revokes the grant for its reuse), and the connection is marked `expired` with the
//! provider's error in `oauth.last_refresh_error` and a `connection.expired` event — it needs
//! to be authorized again, and says so.
//!
//! A token is due when it expires within the provider's margin or within half its own
//! lifetime, whichever is shorter, so a token that lives less than the margin is still handed
//! out for half its life instead of being renewed on every call.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use patchbay_domain::connection::{Connection, OAuthState};
use patchbay_domain::{ConnectionId, Principal, Status};
use patchbay_store::Held;
use serde_json::{Value, json};

use patchbay_oauth::{Grant, TokenError};

use crate::connections::field_aad;
use crate::core::{Change, Write};
use crate::oauth::{ACCESS_TOKEN, REFRESH_TOKEN};
use crate::{EngineError, Hub, Result};

const RETRIES: u32 = 3;

/// When the connection's current access token was obtained.
fn obtained(c: &Connection) -> Option<DateTime<Utc>> {
    c.oauth.as_ref().and_then(|o| o.obtained_at)
}

fn expiry(c: &Connection) -> Option<DateTime<Utc>> {
    c.oauth.as_ref().and_then(|o| o.expires_at)
}

impl Hub {
    /// Seals a token answer into the connection inside `w` (under its row lock) and marks it
    /// active; returns the new `oauth` state.
    async fn persist_tokens(
        &self,
        w: &mut Write<'_>,
        p: &Principal,
        current: &Connection,
        tokens: &serde_json::Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<OAuthState> {
        let (rows, oauth) =
            self.sealed_tokens(p, &current.id, tokens, now, current.oauth.as_ref())?;
        w.record_oauth(
            &p.org_id,
            &current.id,
            &oauth,
            Status::Active,
            None,
            &rows,
            now,
        )
        .await?;
        w.invalidates(Change::connection(&current.id));
        Ok(oauth)
    }

    fn refresh_margin(&self, c: &Connection) -> chrono::Duration {
        let secs = self
            .catalog()
            .get(&c.provider)
            .map_or(300, |e| e.refresh_margin_s);
        let margin = chrono::Duration::seconds(i64::try_from(secs).unwrap_or(300));
        match (obtained(c), expiry(c)) {
            (Some(from), Some(to)) if to > from => margin.min((to - from) / 2),
            _ => margin,
        }
    }

    pub(crate) fn needs_refresh(&self, c: &Connection) -> bool {
        expiry(c).is_some_and(|at| at - self.refresh_margin(c) <= self.now())
    }

    /// Whether an OAuth connection needs its tokens renewed before use: they are due (see
    /// [`Self::needs_refresh`]), or a client-credentials connection has none yet. Never for
    /// other auth types, nor for an authorization-code connection not linked yet.
    pub(crate) fn renewal_due(&self, c: &Connection) -> bool {
        match c.auth_type() {
            patchbay_domain::AuthType::Oauth2ClientCredentials => {
                c.oauth.is_none() || self.needs_refresh(c)
            }
            patchbay_domain::AuthType::Oauth2 => self.needs_refresh(c),
            _ => false,
        }
    }

    fn single_flight(&self, id: &ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .refresh_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(id.to_string()).or_default().clone()
    }

    /// A usable access token, refreshed first when it expires within the margin; for client
    /// credentials, obtained on demand and cached until near expiry.
    pub(crate) async fn fresh_token(
        &self,
        p: &Principal,
        c: Connection,
    ) -> Result<(String, Option<DateTime<Utc>>)> {
        let c = self.ensure_fresh(p, c).await?;
        let fields = self.open_fields(p, &c.id, &c.project).await?;
        let token = fields.get(ACCESS_TOKEN).cloned().ok_or_else(|| {
            EngineError::Conflict(
                "the connection is not authorized yet: complete the OAuth flow".into(),
            )
        })?;
        Ok((token, expiry(&c)))
    }

    /// The connection with a token that is not due for renewal (renewing or fetching one first
    /// when needed), as stored; other connections as they are.
    pub(crate) async fn ensure_fresh(&self, p: &Principal, c: Connection) -> Result<Connection> {
        if self.renewal_due(&c) {
            self.renew(p, &c.id, Renewal::WhenDue).await
        } else {
            Ok(c)
        }
    }

    /// Records the upstream account a connection's tokens act as, read and written under its
    /// row lock.
    pub(crate) async fn set_oauth_account(
        &self,
        p: &Principal,
        id: &ConnectionId,
        account: &str,
    ) -> Result<()> {
        let mut w = self.write().await?;
        if let Some(c) = w.lock_connection(&p.org_id, id).await?
            && let Some(mut oauth) = c.oauth
        {
            oauth.account = Some(account.to_owned());
            w.set_oauth(&p.org_id, id, &oauth).await?;
            w.invalidates(Change::connection(id));
        }
        w.commit().await?;
        Ok(())
    }

    /// Renews the tokens of `used` after the upstream refused its access token (HTTP 401):
    /// once, even when many callers saw the refusal — whoever comes second finds the tokens
    /// already changed and takes them.
    pub(crate) async fn renew_rejected(
        &self,
        p: &Principal,
        used: &Connection,
    ) -> Result<Connection> {
        self.renew(p, &used.id, Renewal::Rejected(used.oauth.clone()))
            .await
    }

    /// Renews a connection's tokens under the single flight and the hold (row lock on
    /// PostgreSQL), after re-reading it: a refresh grant for authorization-code connections, a
    /// new client-credentials token otherwise.
    async fn renew(&self, p: &Principal, id: &ConnectionId, why: Renewal) -> Result<Connection> {
        let hub = self.clone();
        let (p, id) = (p.clone(), id.clone());
        // Dropping the handle (the caller went away) leaves the renewal running to its commit.
        self.spawn_background(async move { hub.renew_here(&p, &id, why).await })
            .await
            .unwrap_or_else(|e| Err(EngineError::Internal(format!("a renewal failed: {e}"))))
    }

    async fn renew_here(
        &self,
        p: &Principal,
        id: &ConnectionId,
        why: Renewal,
    ) -> Result<Connection> {
        let flight = self.single_flight(id);
        let _guard = flight.lock().await;
        let held = self
            .store()
            .hold_connection(&p.org_id, id)
            .await?
            .ok_or(EngineError::NotFound("connection"))?;
        let current = &held.connection;
        let still_due = match &why {
            // Another task or replica may have renewed while this one waited.
            Renewal::WhenDue => self.renewal_due(current),
            Renewal::Rejected(seen) => current.oauth == *seen,
        };
        if !still_due {
            return Ok(held.connection);
        }
        if current.auth_type() == patchbay_domain::AuthType::Oauth2ClientCredentials {
            self.client_credentials(p, held).await
        } else {
            self.refresh(p, held).await
        }
    }

    /// Obtains a client-credentials token for a held connection.
    async fn client_credentials(&self, p: &Principal, held: Held) -> Result<Connection> {
        let current = held.connection.clone();
        let flow = self.flow(p, &current).await?;
        let scope = (!flow.scopes.is_empty()).then(|| flow.scopes.join(&flow.separator));
        let grant = Grant::ClientCredentials {
            scope: scope.as_deref(),
            audience: current.auth.get("audience").and_then(Value::as_str),
        };
        let now = self.now();
        let answer = self.token_request(&flow, grant).await;
        self.core().metrics.renewal(
            "client_credentials",
            answer.as_ref().err().map(TokenError::message),
        );
        match answer {
            Ok(tokens) => {
                let mut w = self.core().write_in(held.writer(self.store()).await?);
                let oauth = self
                    .persist_tokens(&mut w, p, &current, &tokens, now)
                    .await?;
                w.commit().await?;
                let mut updated = current;
                updated.oauth = Some(oauth);
                Ok(updated)
            }
            Err(TokenError::Refused(code))
                if matches!(
                    code.as_str(),
                    "invalid_client" | "unauthorized_client" | "invalid_scope"
                ) =>
            {
                Err(EngineError::Conflict(format!(
                    "the provider refused the client credentials ({code})"
                )))
            }
            Err(e) => Err(EngineError::Upstream(format!(
                "the token request failed ({e})"
            ))),
        }
    }

    /// Runs the refresh grant for a held connection; a rotated refresh token is written in
    /// the same transaction as the access token it came with.
    async fn refresh(&self, p: &Principal, held: Held) -> Result<Connection> {
        let current = held.connection.clone();
        let sealed = held
            .secrets
            .iter()
            .find(|r| r.field == REFRESH_TOKEN)
            .and_then(|r| r.ciphertext.clone())
            .ok_or_else(|| {
                EngineError::Conflict(
                    "the access token expired and the provider gave no refresh token: reconnect"
                        .into(),
                )
            })?;
        let refresh_token = self
            .open_ciphertext(
                &field_aad(p.org_id.as_str(), current.id.as_str(), REFRESH_TOKEN),
                &sealed,
            )
            .await?;
        let flow = self.flow(p, &current).await?;
        let refresh_token = String::from_utf8_lossy(&refresh_token).into_owned();
        let mut attempt = 0;
        let answer = loop {
            match self
                .token_request(&flow, Grant::RefreshToken(&refresh_token))
                .await
            {
                Ok(tokens) => break Ok(tokens),
                Err(e) if e.is_permanent() => break Err((true, e.to_string())),
                Err(e) if attempt + 1 < RETRIES => {
                    attempt += 1;
                    tracing::warn!(connection = %current.id, attempt, error = %e, "token refresh failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                }
                Err(e) => break Err((false, e.to_string())),
            }
        };
        self.core().metrics.renewal(
            "refresh_token",
            answer.as_ref().err().map(|(_, message)| message.as_str()),
        );
        let now = self.now();
        let mut w = self.core().write_in(held.writer(self.store()).await?);
        match answer {
            Ok(mut tokens) => {
                // A provider that does not rotate keeps the refresh token it has.
                let rotated = tokens.contains_key("refresh_token");
                if !rotated {
                    tokens.insert("refresh_token".into(), Value::String(refresh_token));
                }
                let oauth = self
                    .persist_tokens(&mut w, p, &current, &tokens, now)
                    .await?;
                w.succeeded(
                    p,
                    "oauth.refresh",
                    current.id.to_string(),
                    json!({"rotated": rotated}),
                );
                w.commit().await?;
                if current
                    .oauth
                    .as_ref()
                    .is_some_and(|o| o.last_refresh_error.is_some())
                {
                    self.emit("connection.recovered", &p.org_id, &current.id, json!({}));
                }
                let mut updated = current;
                updated.oauth = Some(oauth);
                Ok(updated)
            }
            Err((permanent, message)) => {
                let mut oauth = current.oauth.clone().unwrap_or_default();
                oauth.last_refresh_error = Some(message.clone());
                let status = if permanent {
                    Status::Expired
                } else {
                    current.status
                };
                w.record_oauth(&p.org_id, &current.id, &oauth, status, None, &[], now)
                    .await?;
                w.invalidates(Change::connection(&current.id));
                let action = if permanent {
                    "connection.expired"
                } else {
                    "oauth.refresh"
                };
                w.audit(self.core().event(
                    p,
                    action,
                    Some(current.id.to_string()),
                    "failure",
                    json!({"error": message}),
                ));
                w.commit().await?;
                let event = if permanent {
                    "connection.expired"
                } else {
                    "connection.refresh_failed"
                };
                self.emit(event, &p.org_id, &current.id, json!({"error": message}));
                Err(if permanent {
                    EngineError::Conflict(format!(
                        "the provider refused the refresh ({message}): the connection expired; reconnect it"
                    ))
                } else {
                    EngineError::Upstream(format!(
                        "the token refresh failed ({message}); the connection stays active, try again"
                    ))
                })
            }
        }
    }
}

/// Why tokens are being renewed.
enum Renewal {
    /// They expire within the margin (or a client-credentials connection has none).
    WhenDue,
    /// The upstream refused the access token of this `oauth` state.
    Rejected(Option<OAuthState>),
}

impl Hub {
    /// Revokes an OAuth connection's refresh (or access) token at the provider when it has a
    /// revocation endpoint. `None` when there was nothing to revoke; otherwise what happened.
    pub(crate) async fn revoke_at_provider(&self, p: &Principal, c: &Connection) -> Option<String> {
        if c.auth_type() != patchbay_domain::AuthType::Oauth2 {
            return None;
        }
        let url = match c.auth.get("revocation_url").and_then(Value::as_str) {
            Some(u) => u.to_owned(),
            None => self
                .catalog()
                .get(&c.provider)
                .and_then(|e| e.revocation_url.clone())?,
        };
        let fields = self.open_fields(p, &c.id, &c.project).await.ok()?;
        let (token, hint) = match (fields.get(REFRESH_TOKEN), fields.get(ACCESS_TOKEN)) {
            (Some(r), _) => (r.clone(), "refresh_token"),
            (None, Some(a)) => (a.clone(), "access_token"),
            _ => return None,
        };
        let flow = match self.flow(p, c).await {
            Ok(f) => f,
            Err(e) => return Some(format!("not revoked: {e}")),
        };
        let url = match crate::oauth::fill_config_template(&url, &c.config)
            .ok()
            .and_then(|u| url::Url::parse(&u).ok())
        {
            Some(u) => u,
            None => return Some("not revoked: invalid revocation URL".into()),
        };
        let outcome = patchbay_oauth::wire::revoke(
            self.connectors().http(),
            url,
            flow.client(),
            &token,
            hint,
        )
        .await;
        Some(outcome)
    }
}

impl Hub {
    /// One pass of the background refresher: refreshes active OAuth connections whose tokens
    /// expire within ten minutes, so that idle connections stay usable. Returns how many it
    /// refreshed.
    pub async fn refresh_due(&self) -> Result<usize> {
        if self.vault().sealed_reason().is_some() {
            return Ok(0);
        }
        let horizon = self.now() + chrono::Duration::minutes(10);
        let mut refreshed = 0;
        for c in self.store().oauth_due(horizon, 100).await? {
            let Some(org) = c.org_id.clone() else {
                continue;
            };
            let system = crate::system(org);
            let id = c.id.clone();
            if !self.needs_refresh(&c) {
                continue;
            }
            match self.renew(&system, &id, Renewal::WhenDue).await {
                Ok(_) => refreshed += 1,
                Err(e) => tracing::warn!(connection = %id, error = %e, "background refresh failed"),
            }
        }
        Ok(refreshed)
    }
}
