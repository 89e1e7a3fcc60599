//! The provider catalog (SPEC §4, Provider catalog).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

const BUILTIN: &str = include_str!("../catalog/providers.yaml");

const AUTH_MODES: &[&str] = &[
    "none",
    "api_key",
    "bearer",
    "basic",
    "oauth2",
    "oauth2_client_credentials",
    "custom",
    "aws_sigv4",
];

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
}

/// Where an API key goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRule {
    #[serde(rename = "in")]
    pub location: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// A field of a `custom` auth entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomField {
    pub name: String,
    pub label: String,
    #[serde(default)]
    pub secret: bool,
}

/// How a credential is placed into a request (`custom` auth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectRule {
    #[serde(rename = "in")]
    pub location: String,
    pub name: String,
    pub template: String,
}

/// The request a connection test makes, and what its answer reveals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub method: String,
    pub path: String,
    /// JSON pointer to the account (user id or e-mail) in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Response header listing the granted scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_header: Option<String>,
    /// A boolean field that must be true for success (Slack's `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_field: Option<String>,
}

/// A named operation that `integration` and `llm` nodes call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
}

/// Quirks of a token endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenResponse {
    /// A boolean field that is false on errors answered with HTTP 200 (Slack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_field: Option<String>,
    /// Where a user token lives when the top level holds the bot token (Slack's `authed_user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_token_path: Option<String>,
}

fn space() -> String {
    " ".into()
}

fn yes() -> bool {
    true
}

fn margin() -> u64 {
    300
}

fn basic() -> String {
    "client_secret_basic".into()
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub key: String,
    pub display_name: String,
    #[serde(default)]
    pub categories: Vec<String>,
    pub auth_modes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    /// The authorization server's issuer identifier: the callback's `iss` must equal it
    /// (RFC 9207) when the provider sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    #[serde(default = "space")]
    pub scope_separator: String,
    #[serde(default)]
    pub authorization_params: BTreeMap<String, String>,
    #[serde(default)]
    pub token_params: BTreeMap<String, String>,
    /// `client_secret_basic` or `client_secret_post`.
    #[serde(default = "basic")]
    pub token_request_auth_method: String,
    #[serde(default = "yes")]
    pub pkce: bool,
    #[serde(default = "margin")]
    pub refresh_margin_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_response: Option<TokenResponse>,
    /// Callback query parameters kept in the connection's config (QuickBooks' `realmId`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callback_params: Vec<String>,
    /// May use `${connection.config.NAME}` and `${token_response.NAME}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Default headers every request carries.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<CustomField>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inject: Vec<InjectRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operations: BTreeMap<String, Operation>,
}

impl Provider {
    /// The base URL when it needs no per-connection values.
    pub fn static_base_url(&self) -> Option<&str> {
        self.base_url.as_deref().filter(|u| !u.contains("${"))
    }

    fn check(&self) -> Result<(), String> {
        let key_ok = !self.key.is_empty()
            && self.key.len() <= 64
            && self
                .key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c));
        if !key_ok {
            return Err(format!(
                "key {:?} must be 1-64 characters of a-z 0-9 _ - .",
                self.key
            ));
        }
        if self.auth_modes.is_empty() {
            return Err(format!("{}: auth_modes is empty", self.key));
        }
        if let Some(m) = self
            .auth_modes
            .iter()
            .find(|m| !AUTH_MODES.contains(&m.as_str()))
        {
            return Err(format!("{}: unknown auth mode {m:?}", self.key));
        }
        let oauth = self.auth_modes.iter().any(|m| m.starts_with("oauth2"));
        if oauth && self.token_url.is_none() {
            return Err(format!("{}: OAuth entries need token_url", self.key));
        }
        if self.auth_modes.iter().any(|m| m == "oauth2") && self.authorization_url.is_none() {
            return Err(format!("{}: oauth2 needs authorization_url", self.key));
        }
        if !["client_secret_basic", "client_secret_post"]
            .contains(&self.token_request_auth_method.as_str())
        {
            return Err(format!(
                "{}: token_request_auth_method must be client_secret_basic or client_secret_post",
                self.key
            ));
        }
        for (what, url) in [
            ("authorization_url", &self.authorization_url),
            ("token_url", &self.token_url),
            ("revocation_url", &self.revocation_url),
            ("issuer", &self.issuer),
            ("base_url", &self.base_url),
        ] {
            if let Some(u) = url {
                // Templates stand for host names or path parts; a placeholder keeps them parseable.
                let probe = fill_placeholders(u);
                let parsed = url::Url::parse(&probe)
                    .map_err(|e| format!("{}: {what} {u:?}: {e}", self.key))?;
                if parsed.scheme() != "https" {
                    return Err(format!("{}: {what} must use https", self.key));
                }
            }
        }
        Ok(())
    }
}

fn fill_placeholders(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                // A template at the start stands for a whole origin (Salesforce's instance_url).
                out.push_str(if start == 0 && out.is_empty() {
                    "https://placeholder.example"
                } else {
                    "placeholder"
                });
                rest = &rest[start + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every provider Patchbay knows, by key.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    providers: BTreeMap<String, Provider>,
}

fn parse(source_name: &str, text: &str) -> Result<Vec<Provider>, CatalogError> {
    let invalid = |message: String| CatalogError::Invalid {
        source_name: source_name.to_owned(),
        message,
    };
    let mut value: yaml_serde::Value =
        yaml_serde::from_str(text).map_err(|e| invalid(e.to_string()))?;
    value.apply_merge().map_err(|e| invalid(e.to_string()))?;
    let entries: Vec<Provider> =
        yaml_serde::from_value(value).map_err(|e| invalid(e.to_string()))?;
    for e in &entries {
        e.check().map_err(invalid)?;
    }
    Ok(entries)
}

impl Catalog {
    /// The entries compiled into the binary.
    pub fn builtin() -> Result<Self, CatalogError> {
        let mut c = Self::default();
        for p in parse("built-in catalog", BUILTIN)? {
            if c.providers.insert(p.key.clone(), p).is_some() {
                return Err(CatalogError::Invalid {
                    source_name: "built-in catalog".into(),
                    message: "duplicate key".into(),
                });
            }
        }
        Ok(c)
    }

    /// The built-in entries plus every `*.yaml`/`*.yml` file of `dir` (which replace built-in
    /// entries of the same key).
    pub fn with_dir(dir: &Path) -> Result<Self, CatalogError> {
        let mut c = Self::builtin()?;
        let io = |e: std::io::Error| CatalogError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in files {
            if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| CatalogError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            for p in parse(&path.display().to_string(), &text)? {
                c.providers.insert(p.key.clone(), p);
            }
        }
        Ok(c)
    }

    pub fn get(&self, key: &str) -> Option<&Provider> {
        self.providers.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

#[cfg(test)]
mod tests;
