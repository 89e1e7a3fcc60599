//! The end of the authorization-code flow: `GET /v1/oauth/callback`. The state must exist, be
//! unexpired and unused (consumed atomically, so a replay fails on every replica); `iss` must
//! match the expected issuer when one is known (RFC 9207); the code is exchanged with the PKCE
//! verifier through the outbound gate; the tokens are sealed into the connection.

use std::collections::BTreeMap;

use patchbay_domain::connection::OAuthState;
use patchbay_domain::validate::RESERVED_PREFIX;
use patchbay_domain::{ConnectionId, Principal, Role, Status};
use patchbay_store::SecretRow;
use serde_json::{Value, json};

use crate::connections::field_aad;
use crate::{EngineError, Hub, Result};
use patchbay_oauth::pkce::state_hash;
use patchbay_oauth::{Grant, TokenError};

/// Token fields kept among a connection's secrets.
pub const ACCESS_TOKEN: &str = "__access_token";
pub const REFRESH_TOKEN: &str = "__refresh_token";

/// What the callback page tells the user (and its opener).
#[derive(Debug, Clone)]
pub struct CallbackOutcome {
    pub success: bool,
    pub connection: Option<ConnectionId>,
    pub message: String,
    pub return_to: Option<String>,
    /// The state names no authorization request Patchbay made.
    pub unknown: bool,
}

impl CallbackOutcome {
    fn failed(connection: Option<ConnectionId>, message: impl Into<String>) -> Self {
        Self {
            success: false,
            connection,
            message: message.into(),
            return_to: None,
            unknown: false,
        }
    }
}

impl Hub {
    /// Handles the provider's redirect; never fails outright — every problem is a page.
    /// `browser` is the value the browser holds for flows bound to it (its cookie), if any.
    pub async fn oauth_callback(
        &self,
        q: &BTreeMap<String, String>,
        browser: Option<&str>,
    ) -> CallbackOutcome {
        match self.callback_inner(q, browser).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let message = match &e {
                    EngineError::Internal(_) => {
                        "an internal error occurred; it has been logged".to_owned()
                    }
                    other => other.to_string(),
                };
                if let EngineError::Internal(cause) = &e {
                    tracing::error!(%cause, "OAuth callback failed");
                }
                CallbackOutcome::failed(None, message)
            }
        }
    }

    async fn callback_inner(
        &self,
        q: &BTreeMap<String, String>,
        browser: Option<&str>,
    ) -> Result<CallbackOutcome> {
        let Some(state) = q.get("state").filter(|s| !s.is_empty()) else {
            return Ok(CallbackOutcome::failed(
                None,
                "the callback carries no state",
            ));
        };
        let hash = state_hash(state);
        let Some(record) = self.store().find_state(&hash).await? else {
            return Ok(CallbackOutcome {
                unknown: true,
                ..CallbackOutcome::failed(
                    None,
                    "unknown authorization request (bad or forged state)",
                )
            });
        };
        let connection = Some(record.connection_id.clone());
        // A flow bound to a browser is completed only by it; another browser does not use up
        // the request, so the one that started it can still finish.
        if let Some(expected) = &record.browser_hash {
            let presented = browser.map(crate::hash_token);
            let matches = presented.is_some_and(|p| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    p.as_slice(),
                    expected.as_slice(),
                ))
            });
            if !matches {
                return Ok(CallbackOutcome::failed(
                    connection,
                    "this sign-in was started in another browser; start it again from this one",
                ));
            }
        }
        let now = self.now();
        let mut w = self.write().await?;
        let fresh = w.consume_state(&hash, now).await?;
        w.commit().await?;
        if !fresh {
            return Ok(CallbackOutcome::failed(
                connection,
                "this authorization request was already used",
            ));
        }
        if record.expires_at < now {
            return Ok(CallbackOutcome::failed(
                connection,
                "this authorization request expired; start again",
            ));
        }
        let p = Principal {
            token_id: record
                .principal
                .parse()
                .map_err(|_| EngineError::Internal("state principal".into()))?,
            org_id: record.org_id.clone(),
            role: Role::Admin,
            project_id: None,
            operator: false,
        };
        if let (Some(expected), Some(iss)) = (&record.issuer, q.get("iss"))
            && expected.trim_end_matches('/') != iss.trim_end_matches('/')
        {
            self.audit_link(
                &p,
                &record.connection_id,
                "failure",
                json!({"error": "issuer_mismatch"}),
            )
            .await?;
            return Ok(CallbackOutcome::failed(
                connection,
                "the authorization response came from an unexpected issuer",
            ));
        }
        if let Some(error) = q.get("error") {
            // The user declined or the provider refused: the connection stays as it was.
            let code = patchbay_oauth::wire::error_code(error);
            self.audit_link(&p, &record.connection_id, "failure", json!({"error": code}))
                .await?;
            return Ok(CallbackOutcome::failed(
                connection,
                format!("the provider answered {code}"),
            ));
        }
        let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
            return Ok(CallbackOutcome::failed(
                connection,
                "the callback carries no code",
            ));
        };
        let c = self.visible_connection(&p, &record.connection_id).await?;
        let flow = self.flow(&p, &c).await?;
        let object = format!(
            "oauth_state:{}",
            hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let verifier = self
            .open_ciphertext(
                &field_aad(p.org_id.as_str(), &object, "code_verifier"),
                &record.code_verifier,
            )
            .await?;
        let verifier = String::from_utf8_lossy(&verifier);
        let grant = Grant::AuthorizationCode {
            code,
            redirect_uri: &record.redirect_uri,
            verifier: flow.pkce.then_some(&*verifier),
        };
        let tokens = match self.token_request(&flow, grant).await {
            Ok(t) => t,
            Err(e) => {
                let message = e.to_string();
                self.audit_link(&p, &c.id, "failure", json!({"error": message}))
                    .await?;
                return Ok(CallbackOutcome::failed(
                    connection,
                    format!("the token exchange failed: {message}"),
                ));
            }
        };
        let mut config = c.config.clone();
        for name in &flow.callback_params {
            if let Some(v) = q.get(name) {
                config.insert(name.clone(), Value::String(v.clone()));
            }
        }
        // Salesforce names the API's host in its token answer.
        if let Some(base) = flow
            .base_url_template
            .as_deref()
            .and_then(|t| crate::oauth::fill_token_template(t, &tokens))
        {
            config.insert("base_url".into(), Value::String(base));
        }
        let linked = json!({"scopes": tokens.get("scope"), "refreshable": tokens.get("refresh_token").is_some()});
        self.store_tokens(&p, &c.id, &tokens, &config, linked)
            .await?;
        Ok(CallbackOutcome {
            success: true,
            connection,
            message: "Connected".into(),
            return_to: record.return_to,
            unknown: false,
        })
    }

    async fn audit_link(
        &self,
        p: &Principal,
        id: &ConnectionId,
        outcome: &str,
        details: Value,
    ) -> Result<()> {
        self.core()
            .audit(
                self.core()
                    .event(p, "oauth.link", Some(id.to_string()), outcome, details),
            )
            .await
    }

    /// Asks the flow's token endpoint for tokens, through the outbound gate.
    pub(crate) async fn token_request(
        &self,
        flow: &crate::oauth::Flow,
        grant: Grant<'_>,
    ) -> std::result::Result<serde_json::Map<String, Value>, TokenError> {
        patchbay_oauth::wire::request_token(self.connectors().http(), flow.endpoint(), grant).await
    }

    /// Seals the tokens of a token response and builds the connection's `oauth` state.
    #[allow(clippy::type_complexity)]
    pub(crate) fn sealed_tokens(
        &self,
        p: &Principal,
        id: &ConnectionId,
        tokens: &serde_json::Map<String, Value>,
        now: chrono::DateTime<chrono::Utc>,
        previous: Option<&OAuthState>,
    ) -> Result<(Vec<SecretRow>, OAuthState)> {
        let ring = self.vault().keyring()?;
        let version = i64::from(ring.current_version());
        let mut rows = Vec::new();
        for (field, key) in [
            (ACCESS_TOKEN, "access_token"),
            (REFRESH_TOKEN, "refresh_token"),
        ] {
            if let Some(v) = tokens.get(key).and_then(Value::as_str) {
                debug_assert!(field.starts_with(RESERVED_PREFIX));
                rows.push(SecretRow {
                    field: field.to_owned(),
                    key_version: Some(version),
                    ciphertext: Some(ring.seal(
                        &field_aad(p.org_id.as_str(), id.as_str(), field),
                        v.as_bytes(),
                    )?),
                    secret_ref: None,
                });
            }
        }
        let expires_at = tokens
            .get("expires_in")
            .and_then(Value::as_i64)
            .map(|s| now + chrono::Duration::seconds(s));
        let scopes = tokens.get("scope").and_then(Value::as_str).map(|s| {
            s.split([' ', ','])
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        });
        let oauth = OAuthState::obtained(
            previous,
            now,
            expires_at,
            scopes,
            tokens.contains_key("refresh_token"),
            tokens
                .get("token_type")
                .and_then(Value::as_str)
                .map(str::to_owned),
        );
        Ok((rows, oauth))
    }

    /// Stores the tokens of a first link, audited as `oauth.link` with `details`.
    async fn store_tokens(
        &self,
        p: &Principal,
        id: &ConnectionId,
        tokens: &serde_json::Map<String, Value>,
        config: &serde_json::Map<String, Value>,
        details: Value,
    ) -> Result<()> {
        let now = self.now();
        let (rows, oauth) = self.sealed_tokens(p, id, tokens, now, None)?;
        let mut w = self.write().await?;
        w.record_oauth(
            &p.org_id,
            id,
            &oauth,
            Status::Active,
            Some(config),
            &rows,
            now,
        )
        .await?;
        w.succeeded(p, "oauth.link", id.to_string(), details);
        w.invalidates(crate::core::Change::connection(id));
        w.commit().await?;
        Ok(())
    }

    /// Unlinks an OAuth connection's account: the grant is revoked at the provider when it has
    /// a revocation endpoint (best effort, RFC 7009), the tokens Patchbay obtained are destroyed
    /// and the connection waits for a new link (`pending`). Its client and settings stay.
    /// Audited as `oauth.unlink`.
    pub async fn disconnect_oauth(&self, p: &Principal, id: &ConnectionId) -> Result<()> {
        let current = self.visible_connection(p, id).await?;
        if !p.can_write() {
            return Err(EngineError::forbidden(
                "disconnecting an OAuth account needs an admin or member token",
            ));
        }
        if current.auth_type() != patchbay_domain::AuthType::Oauth2 {
            return Err(EngineError::Conflict(format!(
                "connection {id} does not use oauth2 auth"
            )));
        }
        let revocation = self.revoke_at_provider(p, &current).await;
        let now = self.now();
        let mut w = self.write().await?;
        w.record_oauth(
            &p.org_id,
            id,
            &OAuthState::default(),
            Status::Pending,
            None,
            &[],
            now,
        )
        .await?;
        let removed = w
            .remove_connection_secrets_with_prefix(id, patchbay_domain::validate::RESERVED_PREFIX)
            .await?;
        w.succeeded(
            p,
            "oauth.unlink",
            id.to_string(),
            serde_json::json!({"tokens_removed": removed, "revocation": revocation}),
        );
        w.invalidates(crate::core::Change::connection(id));
        w.commit().await?;
        Ok(())
    }

    /// A usable access token of an OAuth connection, refreshed when due (executor or admin;
    /// audited).
    pub async fn access_token(
        &self,
        p: &Principal,
        id: &ConnectionId,
    ) -> Result<(String, Option<chrono::DateTime<chrono::Utc>>)> {
        let c = self.visible_connection(p, id).await?;
        if !p.can_read_credentials() {
            return Err(EngineError::forbidden(
                "reading tokens needs an executor or admin token",
            ));
        }
        let result = self.fresh_token(p, c).await;
        let outcome = if result.is_ok() { "success" } else { "failure" };
        self.core()
            .audit(self.core().event(
                p,
                "connection.token.read",
                Some(id.to_string()),
                outcome,
                json!({}),
            ))
            .await?;
        result
    }
}
