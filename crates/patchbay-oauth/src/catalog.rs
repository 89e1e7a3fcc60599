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

/// What a database provider fills: the driver, its port and TLS, and the hosts it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseDefaults {
    /// `postgresql`, `mysql`, `sqlite` or `mssql`; absent when the service offers several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl: Option<bool>,
    /// Host names the service's databases have (`*.neon.tech`); a host outside them is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_patterns: Vec<String>,
}

/// What an S3-compatible storage service fills: its endpoint (`{region}` is the connection's
/// region), its default region, its addressing style, and the hosts its endpoints have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Host names the service's endpoints have (`*.r2.cloudflarestorage.com`); an endpoint
    /// outside them is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_patterns: Vec<String>,
}

impl StorageDefaults {
    /// The endpoint for `region`, if the service has a fixed one.
    pub fn endpoint_for(&self, region: &str) -> Option<String> {
        self.endpoint
            .as_ref()
            .map(|e| e.replace("{region}", region))
    }
}

/// What an SMTP service fills: its server, and the user name convention it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpDefaults {
    pub host: String,
    pub port: u16,
    /// `starttls`, `tls` or `none`.
    pub encryption: String,
    /// The user name every account uses (SendGrid's `apikey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The user name is the sending address (Gmail, Microsoft 365).
    #[serde(default)]
    pub username_is_from_address: bool,
    /// What the password is and where to get it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// An MCP server of the registry: where it runs and how it is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// A stdio server's command (the operator allow-lists it with `--allow-command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// `streamable_http`, `sse` or `stdio`.
    pub transport: String,
}

/// The shape of a secret a provider issues, so a pasted value of the wrong kind is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretFormat {
    /// The value starts with one of these.
    pub prefixes: Vec<String>,
    /// What the value is, for the error message ("an OpenAI API key").
    pub what: String,
}

impl SecretFormat {
    /// Whether `value` has the format (the value itself never appears in an error).
    pub fn matches(&self, value: &str) -> bool {
        self.prefixes.iter().any(|p| value.starts_with(p.as_str()))
            && value.len() > self.prefixes.iter().map(String::len).min().unwrap_or(0)
            && !value.chars().any(char::is_whitespace)
    }

    /// Why a value without the format is refused.
    pub fn reason(&self) -> String {
        format!(
            "does not look like {} (those start with {})",
            self.what,
            self.prefixes.join(" or ")
        )
    }
}

const KINDS: &[&str] = &["http", "database", "smtp", "webhook", "mcp", "storage"];

fn http_only() -> Vec<String> {
    vec!["http".into()]
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
    /// Other keys that name this entry (`postgres` for `postgresql`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub display_name: String,
    /// Where the provider documents its credentials (an https URL), linked from forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_url: Option<String>,
    /// The connection kinds the provider serves (`http` unless it says).
    #[serde(default = "http_only")]
    pub kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseDefaults>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpDefaults>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpDefaults>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageDefaults>,
    /// The formats of the secrets it issues, by secret field (`api_key`, `token`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_formats: BTreeMap<String, SecretFormat>,
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

    /// The base URL when the token answer completes it (`${token_response.NAME}`).
    pub fn token_base_url(&self) -> Option<&str> {
        self.base_url
            .as_deref()
            .filter(|u| u.contains("${token_response."))
    }

    /// Whether it uses OAuth 2.0 (either flavour), so OAuth apps can be registered for it.
    pub fn uses_oauth(&self) -> bool {
        self.auth_modes.iter().any(|m| m.starts_with("oauth2"))
    }

    /// Whether connections of `kind` may name this provider.
    pub fn serves(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    fn check(&self) -> Result<(), String> {
        for key in std::iter::once(&self.key).chain(&self.aliases) {
            let key_ok = !key.is_empty()
                && key.len() <= 64
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c));
            if !key_ok {
                return Err(format!(
                    "key {key:?} must be 1-64 characters of a-z 0-9 _ - ."
                ));
            }
        }
        if self.kinds.is_empty() {
            return Err(format!("{}: kinds is empty", self.key));
        }
        if let Some(docs) = &self.docs_url
            && !docs.starts_with("https://")
        {
            return Err(format!("{}: docs_url must be an https URL", self.key));
        }
        if let Some(k) = self.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(format!("{}: unknown kind {k:?}", self.key));
        }
        for (kind, present) in [
            ("database", self.database.is_some()),
            ("smtp", self.smtp.is_some()),
            ("mcp", self.mcp.is_some()),
            ("storage", self.storage.is_some()),
        ] {
            if present != self.serves(kind) {
                return Err(format!(
                    "{}: a `{kind}` section goes with `{kind}` in kinds",
                    self.key
                ));
            }
        }
        if let Some(d) = &self.database
            && let Some(driver) = &d.driver
            && !["postgresql", "mysql", "sqlite", "mssql"].contains(&driver.as_str())
        {
            return Err(format!("{}: unknown database driver {driver:?}", self.key));
        }
        if let Some(st) = &self.storage
            && let Some(e) = st.endpoint_for("us-east-1")
            && !url::Url::parse(&e).is_ok_and(|u| u.scheme() == "https" && u.path() == "/")
        {
            return Err(format!(
                "{}: a storage endpoint is an https origin without a path",
                self.key
            ));
        }
        if let Some(m) = &self.smtp
            && !["starttls", "tls", "none"].contains(&m.encryption.as_str())
        {
            return Err(format!(
                "{}: unknown SMTP encryption {:?}",
                self.key, m.encryption
            ));
        }
        if let Some(m) = &self.mcp {
            let stdio = m.transport == "stdio";
            let shape_ok = match m.transport.as_str() {
                "stdio" => m.command.is_some() && m.server_url.is_none(),
                "streamable_http" | "sse" => m.command.is_none() && m.args.is_empty(),
                _ => false,
            };
            if !shape_ok {
                return Err(format!(
                    "{}: an MCP entry is stdio with a command, or streamable_http/sse with an optional server_url",
                    self.key
                ));
            }
            if !stdio && let Some(u) = &m.server_url {
                let parsed =
                    url::Url::parse(u).map_err(|e| format!("{}: server_url: {e}", self.key))?;
                if parsed.scheme() != "https" {
                    return Err(format!("{}: server_url must use https", self.key));
                }
            }
        }
        if let Some((field, f)) = self
            .secret_formats
            .iter()
            .find(|(_, f)| f.prefixes.is_empty())
        {
            return Err(format!(
                "{}: secret_formats.{field} lists no prefix ({})",
                self.key, f.what
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
        let oauth = self.uses_oauth();
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
    /// Alias → key.
    aliases: BTreeMap<String, String>,
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
            if !c.insert(p) {
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
                c.insert(p);
            }
        }
        Ok(c)
    }

    /// The entry `key` names, directly or as an alias.
    pub fn get(&self, key: &str) -> Option<&Provider> {
        self.providers
            .get(key)
            .or_else(|| self.providers.get(self.aliases.get(key)?))
    }

    fn insert(&mut self, p: Provider) -> bool {
        for alias in &p.aliases {
            self.aliases.insert(alias.clone(), p.key.clone());
        }
        self.providers.insert(p.key.clone(), p).is_none()
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
