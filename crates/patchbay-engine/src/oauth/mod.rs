//! The start of the authorization-code flow (RFC 6749 §4.1, PKCE RFC 7636): a state of 256
//! random bits kept in the database only as its hash, bound to organization, project,
//! connection and principal, used once, expiring after ten minutes; an S256 code challenge whose
//! verifier is sealed beside it; the redirect URI fixed to this deployment's callback.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use patchbay_domain::connection::Connection;
use patchbay_domain::{AuthType, ConnectionId, Principal};
use patchbay_oauth::pkce::{code_challenge, random_token, state_hash};
use patchbay_store::StateRecord;
use serde_json::{Map, Value};

mod apps;
mod callback;
mod renewal;

pub use callback::CallbackOutcome;

pub(crate) use callback::{ACCESS_TOKEN, REFRESH_TOKEN};

use crate::connections::field_aad;
use crate::{EngineError, Hub, Result};

/// How long an authorization request stays valid.
pub const STATE_TTL_MINUTES: i64 = 10;

/// What `POST /v1/connections/{id}/oauth/start` answers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OAuthStart {
    pub authorization_url: String,
    pub expires_at: DateTime<Utc>,
}

/// Where a connection's authorization request goes and what it carries.
#[derive(Debug)]
pub(crate) struct Flow {
    pub authorization_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Option<zeroize::Zeroizing<String>>,
    /// `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    pub token_params: BTreeMap<String, String>,
    /// The issuer whose `iss` the callback must carry (RFC 9207), when known.
    pub issuer: Option<String>,
    pub callback_params: Vec<String>,
    pub scopes: Vec<String>,
    pub separator: String,
    pub params: BTreeMap<String, String>,
    pub pkce: bool,
    /// Quirks of the provider's token answers (Slack's `ok` and `authed_user`).
    pub token_response: Option<patchbay_oauth::TokenResponse>,
    /// A base URL the token answer completes (`${token_response.instance_url}`).
    pub base_url_template: Option<String>,
}

impl Flow {
    /// How this flow's client authenticates.
    pub(crate) fn client(&self) -> patchbay_oauth::ClientAuth<'_> {
        patchbay_oauth::ClientAuth {
            id: &self.client_id,
            secret: self.client_secret.as_ref().map(|s| s.as_str()),
            method: &self.auth_method,
        }
    }

    /// The token endpoint as this flow's client uses it.
    pub(crate) fn endpoint(&self) -> patchbay_oauth::TokenEndpoint<'_> {
        patchbay_oauth::TokenEndpoint {
            url: &self.token_url,
            client: self.client(),
            params: &self.token_params,
            quirks: self.token_response.as_ref(),
        }
    }
}

/// Fills `${connection.config.NAME}` from the connection's config. A value must be a plain
/// name or id (letters, digits, `.`, `-`, `_`, `~`, no `..`): templates place it in host names
/// and paths, where `/`, `@`, `?` or `#` would send the request — and the organization's client
/// secret with it — somewhere else.
pub(crate) fn fill_config_template(template: &str, config: &Map<String, Value>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${connection.config.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${connection.config.".len()..];
        let end = after
            .find('}')
            .ok_or_else(|| EngineError::Internal("unterminated template".into()))?;
        let name = &after[..end];
        let value = config.get(name).and_then(Value::as_str).ok_or_else(|| {
            EngineError::from(patchbay_domain::ValidationErrors::single(
                format!("config.{name}"),
                "is required by this provider",
            ))
        })?;
        let plain = !value.is_empty()
            && value.len() <= 253
            && !value.contains("..")
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-~".contains(c));
        if !plain {
            return Err(patchbay_domain::ValidationErrors::single(
                format!("config.{name}"),
                "must be a plain name or id (letters, digits, '.', '-', '_', '~')",
            )
            .into());
        }
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A provider's base URL when the token answer completes it.
fn token_base_url(entry: &patchbay_oauth::Provider) -> Option<String> {
    entry.token_base_url().map(str::to_owned)
}

/// Fills `${token_response.NAME}` from a token answer; `None` when a value is missing or the
/// result is not an http(s) URL.
pub(crate) fn fill_token_template(template: &str, tokens: &Map<String, Value>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${token_response.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${token_response.".len()..];
        let end = after.find('}')?;
        let name = &after[..end];
        if name.contains("token") {
            return None;
        }
        out.push_str(tokens.get(name)?.as_str()?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    let url = url::Url::parse(&out).ok()?;
    matches!(url.scheme(), "https" | "http").then(|| out.trim_end_matches('/').to_owned())
}

pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn params(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

impl Hub {
    pub fn public_url(&self) -> &str {
        &self.inner.settings.public_url
    }

    pub fn callback_url(&self) -> String {
        format!("{}/v1/oauth/callback", self.inner.settings.public_url)
    }

    pub(crate) async fn flow(&self, p: &Principal, c: &Connection) -> Result<Flow> {
        let auth_scopes = strings(c.auth.get("scopes"));
        let own_params = params(c.auth.get("authorization_params"));
        let pkce_wanted = c.auth.get("pkce").and_then(Value::as_bool).unwrap_or(true);
        if let Some(app_ref) = c.auth.get("app").and_then(Value::as_str) {
            let app = self
                .store()
                .find_app(&p.org_id, app_ref)
                .await?
                .ok_or_else(|| {
                    EngineError::Conflict(format!("the OAuth app {app_ref:?} no longer exists"))
                })?;
            let entry = self.catalog().get(&app.provider).ok_or_else(|| {
                EngineError::Conflict(format!(
                    "provider {:?} is no longer in the catalog",
                    app.provider
                ))
            })?;
            // Client-credentials providers need no authorization endpoint.
            let url = entry.authorization_url.as_deref().unwrap_or_default();
            let mut all = entry.authorization_params.clone();
            all.extend(params(Some(&app.authorization_params)));
            all.extend(own_params);
            let scopes = if auth_scopes.is_empty() {
                strings(Some(&app.scopes))
            } else {
                auth_scopes
            };
            let token_url = entry.token_url.as_deref().ok_or_else(|| {
                EngineError::Conflict(format!("{} has no token endpoint", entry.key))
            })?;
            let client_secret = match &app.client_secret {
                Some(ct) => {
                    let object = Self::app_aad_object(&app.id);
                    let plain = self
                        .open_ciphertext(
                            &field_aad(p.org_id.as_str(), &object, "client_secret"),
                            ct,
                        )
                        .await?;
                    Some(zeroize::Zeroizing::new(
                        String::from_utf8_lossy(&plain).into_owned(),
                    ))
                }
                None => None,
            };
            let mut token_params = entry.token_params.clone();
            token_params.extend(params(Some(&app.token_params)));
            return Ok(Flow {
                authorization_url: fill_config_template(url, &c.config)?,
                token_url: fill_config_template(token_url, &c.config)?,
                client_id: app.client_id,
                client_secret,
                auth_method: entry.token_request_auth_method.clone(),
                token_params,
                issuer: entry.issuer.clone(),
                callback_params: entry.callback_params.clone(),
                scopes,
                separator: entry.scope_separator.clone(),
                params: all,
                pkce: entry.pkce && pkce_wanted,
                token_response: entry.token_response.clone(),
                base_url_template: token_base_url(entry),
            });
        }
        // The connection's own client; a catalog provider still supplies its endpoints and
        // quirks unless the connection's auth names its own.
        let entry = self.catalog().get(&c.provider);
        let own = |key: &str| c.auth.get(key).and_then(Value::as_str).map(str::to_owned);
        let url = match own("authorization_url") {
            Some(u) => u,
            None => entry
                .and_then(|e| e.authorization_url.as_deref())
                .map(|u| fill_config_template(u, &c.config))
                .transpose()?
                .unwrap_or_default(),
        };
        let token_url = match own("token_url") {
            Some(u) => u,
            None => entry
                .and_then(|e| e.token_url.as_deref())
                .map(|u| fill_config_template(u, &c.config))
                .transpose()?
                .ok_or_else(|| EngineError::Conflict("auth.token_url is not set".into()))?,
        };
        let fields = self.open_fields(p, &c.id, &c.project).await?;
        let client_id = fields
            .get("client_id")
            .cloned()
            .ok_or_else(|| EngineError::Conflict("secrets.client_id is not set".into()))?;
        let mut token_params = entry.map(|e| e.token_params.clone()).unwrap_or_default();
        token_params.extend(params(c.auth.get("token_params")));
        let mut all = entry
            .map(|e| e.authorization_params.clone())
            .unwrap_or_default();
        all.extend(own_params);
        Ok(Flow {
            authorization_url: url,
            token_url,
            client_id,
            client_secret: fields
                .get("client_secret")
                .map(|s| zeroize::Zeroizing::new(s.clone())),
            auth_method: own("token_request_auth_method")
                .or_else(|| entry.map(|e| e.token_request_auth_method.clone()))
                .unwrap_or_else(|| "client_secret_basic".into()),
            token_params,
            issuer: own("issuer").or_else(|| entry.and_then(|e| e.issuer.clone())),
            callback_params: entry.map(|e| e.callback_params.clone()).unwrap_or_default(),
            scopes: if auth_scopes.is_empty() {
                entry.map(|e| e.default_scopes.clone()).unwrap_or_default()
            } else {
                auth_scopes
            },
            separator: entry.map_or_else(|| " ".into(), |e| e.scope_separator.clone()),
            params: all,
            pkce: entry.is_none_or(|e| e.pkce) && pkce_wanted,
            token_response: entry.and_then(|e| e.token_response.clone()),
            base_url_template: entry.and_then(token_base_url),
        })
    }

    /// Starts the authorization-code flow for an `oauth2` connection.
    pub async fn start_oauth(
        &self,
        p: &Principal,
        id: &ConnectionId,
        return_to: Option<String>,
    ) -> Result<OAuthStart> {
        self.start_flow(p, id, return_to, None).await
    }

    /// [`Self::start_oauth`] for a browser of the web UI: the callback is accepted only from
    /// the browser holding the value whose SHA-256 is `browser_hash` (a cookie), so that an
    /// authorization URL sent to someone else cannot link their account to this connection.
    pub async fn start_oauth_in_browser(
        &self,
        p: &Principal,
        id: &ConnectionId,
        return_to: Option<String>,
        browser_hash: Vec<u8>,
    ) -> Result<OAuthStart> {
        self.start_flow(p, id, return_to, Some(browser_hash)).await
    }

    async fn start_flow(
        &self,
        p: &Principal,
        id: &ConnectionId,
        return_to: Option<String>,
        browser_hash: Option<Vec<u8>>,
    ) -> Result<OAuthStart> {
        let c = self.visible_connection(p, id).await?;
        if !p.can_write() {
            return Err(EngineError::forbidden(
                "connecting an OAuth account needs an admin or member token",
            ));
        }
        if let Some(rt) = &return_to {
            let base = &self.inner.settings.public_url;
            if !(rt == base || rt.starts_with(&format!("{base}/"))) {
                return Err(patchbay_domain::ValidationErrors::single(
                    "return_to",
                    "must be a URL of this deployment",
                )
                .into());
            }
        }
        if c.auth_type() != AuthType::Oauth2 {
            return Err(EngineError::Conflict(format!(
                "connection {id} does not use oauth2 auth"
            )));
        }
        let c = if Self::needs_mcp_authorization(&c) {
            self.prepare_mcp_authorization(p, c).await?
        } else {
            c
        };
        let flow = self.flow(p, &c).await?;
        if flow.authorization_url.is_empty() {
            return Err(EngineError::Conflict(
                "no authorization endpoint is configured for this connection".into(),
            ));
        }
        let state = random_token();
        let verifier = random_token();
        let hash = state_hash(&state);
        let hash_hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let ring = self.vault().keyring()?;
        let object = format!("oauth_state:{hash_hex}");
        let sealed = ring.seal(
            &field_aad(p.org_id.as_str(), &object, "code_verifier"),
            verifier.as_bytes(),
        )?;
        let now = self.now();
        let expires_at = now + chrono::Duration::minutes(STATE_TTL_MINUTES);
        let redirect_uri = self.callback_url();
        let mut url = url::Url::parse(&flow.authorization_url)
            .map_err(|e| EngineError::Conflict(format!("the authorization URL is invalid: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &flow.client_id);
            q.append_pair("redirect_uri", &redirect_uri);
            if !flow.scopes.is_empty() {
                q.append_pair("scope", &flow.scopes.join(&flow.separator));
            }
            q.append_pair("state", &state);
            if flow.pkce {
                q.append_pair("code_challenge", &code_challenge(&verifier));
                q.append_pair("code_challenge_method", "S256");
            }
            for (k, v) in &flow.params {
                q.append_pair(k, v);
            }
        }
        let record = StateRecord {
            state_hash: hash,
            org_id: p.org_id.clone(),
            project_id: c.project.clone(),
            connection_id: c.id.clone(),
            principal: p.token_id.to_string(),
            issuer: flow.issuer.clone(),
            redirect_uri,
            return_to,
            key_version: i64::from(ring.current_version()),
            code_verifier: sealed,
            created_at: now,
            expires_at,
            used_at: None,
            browser_hash,
        };
        let mut w = self.write().await?;
        w.purge_states(now - chrono::Duration::days(1)).await?;
        w.insert_state(&record).await?;
        w.succeeded(
            p,
            "oauth.start",
            id.to_string(),
            serde_json::json!({"pkce": flow.pkce}),
        );
        w.commit().await?;
        Ok(OAuthStart {
            authorization_url: url.to_string(),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_templates_fill_or_name_the_missing_field() {
        let config = serde_json::json!({"shop": "acme"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            fill_config_template("https://${connection.config.shop}.myshopify.com/x", &config)
                .unwrap(),
            "https://acme.myshopify.com/x"
        );
        let err = fill_config_template(
            "https://${connection.config.subdomain}.zendesk.com",
            &config,
        )
        .unwrap_err();
        assert!(err.to_string().contains("config.subdomain"), "{err}");
        for hostile in ["evil.example/x?", "a@evil.example", "x#", "..", "a b", ""] {
            let config = serde_json::json!({"shop": hostile})
                .as_object()
                .unwrap()
                .clone();
            let err =
                fill_config_template("https://${connection.config.shop}.myshopify.com/x", &config)
                    .unwrap_err();
            assert!(err.to_string().contains("config.shop"), "{hostile}: {err}");
        }
    }
}
