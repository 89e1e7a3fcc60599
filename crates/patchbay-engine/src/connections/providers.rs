//! The provider catalog as the API shows it, and what it adds to a connection: a known provider
//! key is required, and a catalog provider's static base URL fills an omitted `base_url`.

use patchbay_connectors::VerifyRequest;
use patchbay_domain::Kind;
use patchbay_domain::api::CreateConnection;
use patchbay_domain::spec::{ConnectionSpec, DatabaseDriver};
use patchbay_domain::validate::schema::{McpFill, ProviderFill};
use patchbay_domain::{Principal, ValidationErrors};
use patchbay_oauth::Provider;
use serde_json::Value;

use crate::{EngineError, Hub, Result};

impl Hub {
    pub fn catalog(&self) -> &patchbay_oauth::Catalog {
        &self.inner.settings.catalog
    }

    /// Catalog entries, optionally of one category.
    pub fn list_providers(&self, _p: &Principal, category: Option<&str>) -> Vec<Provider> {
        self.catalog()
            .iter()
            .filter(|e| category.is_none_or(|c| e.categories.iter().any(|x| x == c)))
            .cloned()
            .collect()
    }

    pub fn get_provider(&self, _p: &Principal, key: &str) -> Result<Provider> {
        self.catalog()
            .get(key)
            .cloned()
            .ok_or(EngineError::NotFound("provider"))
    }

    /// The request a test of an HTTP connection makes: `config.verify_path` when the
    /// connection sets one, else its provider's `verify` with `${connection.config.NAME}`
    /// filled (skipped when the connection lacks a value it needs), else none (the base URL).
    pub(crate) fn verify_request(
        &self,
        provider: &str,
        config: &serde_json::Map<String, Value>,
    ) -> Option<VerifyRequest> {
        if let Some(path) = config.get("verify_path").and_then(Value::as_str) {
            return Some(VerifyRequest {
                method: "GET".into(),
                path: path.to_owned(),
                ..Default::default()
            });
        }
        let verify = self.catalog().get(provider)?.verify.as_ref()?;
        let path = crate::oauth::fill_config_template(&verify.path, config).ok()?;
        Some(VerifyRequest {
            method: verify.method.clone(),
            path,
            account: verify.account.clone(),
            scopes_header: verify.scopes_header.clone(),
            ok_field: verify.ok_field.clone(),
        })
    }

    /// What a catalog provider adds when a connection is used: its default headers, unless
    /// the connection sets its own.
    pub(crate) fn catalog_defaults(&self, provider: &str, spec: &mut ConnectionSpec) {
        let Some(entry) = self.catalog().get(provider) else {
            return;
        };
        if let Some(headers) = spec.headers_mut() {
            for (k, v) in &entry.headers {
                headers.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }

    /// Whether an OAuth connection's base URL will come from its provider's token answer.
    pub(crate) fn base_url_from_token(
        &self,
        provider: Option<&Value>,
        auth: Option<&Value>,
    ) -> bool {
        let oauth = auth
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == "oauth2");
        oauth
            && provider
                .and_then(Value::as_str)
                .and_then(|k| self.catalog().get(k))
                .is_some_and(|e| e.token_base_url().is_some())
    }

    /// The `config` and `auth` a new connection of `kind` through `provider` starts from: the
    /// catalog's defaults, as a create body naming it would be filled (a form shows them).
    pub fn form_defaults(
        &self,
        kind: Kind,
        provider: &str,
        auth_type: patchbay_domain::AuthType,
    ) -> (
        serde_json::Map<String, Value>,
        serde_json::Map<String, Value>,
    ) {
        let mut body = CreateConnection {
            kind: Value::String(kind.as_str().into()),
            provider: Some(Value::String(provider.into())),
            auth: Some(serde_json::json!({"type": auth_type.as_str()})),
            ..CreateConnection::default()
        };
        // A provider that does not serve the kind fills nothing; the form says so on save.
        let _ = self.apply_catalog(&mut body);
        let object = |v: Option<Value>| match v {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        (object(body.config), object(body.auth))
    }

    /// Checks the provider key and fills the catalog's defaults of the connection's kind into a
    /// create body (a field the body sets wins); an alias becomes the entry's key, and a body
    /// without a kind takes the provider's only one.
    pub(crate) fn apply_catalog(&self, body: &mut CreateConnection) -> Result<()> {
        let key = match &body.provider {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::String(k)) if k == "custom" => return Ok(()),
            Some(Value::String(k)) => k.clone(),
            // Validation names the bad type.
            Some(_) => return Ok(()),
        };
        let entry = self.catalog_entry(&key)?;
        body.provider = Some(Value::String(entry.key.clone()));
        if body.kind.is_null()
            && let [only] = entry.kinds.as_slice()
        {
            body.kind = Value::String(only.clone());
        }
        let Some(kind) = body.kind.as_str().map(str::to_owned) else {
            // Validation names the missing or bad kind.
            return Ok(());
        };
        serves(entry, &kind)?;
        let mut errs = ValidationErrors::new();
        secret_format_errors(entry, body.secrets.as_ref(), &mut errs);
        // An API key goes where the provider wants it, unless the connection says otherwise.
        if let (Some(rule), Some(Value::Object(auth))) = (&entry.api_key, body.auth.as_mut())
            && auth.get("type").and_then(Value::as_str) == Some("api_key")
            && !auth.contains_key("in")
            && !auth.contains_key("name")
        {
            auth.insert("in".into(), Value::String(rule.location.clone()));
            auth.insert("name".into(), Value::String(rule.name.clone()));
            if let Some(prefix) = &rule.prefix {
                auth.entry("prefix")
                    .or_insert_with(|| Value::String(prefix.clone()));
            }
        }
        let config = body
            .config
            .get_or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(config) = config else {
            // Validation names a config that is not an object.
            return errs.into_result(()).map_err(Into::into);
        };
        let mut fill = |field: &str, value: Value| {
            config.entry(field.to_owned()).or_insert(value);
        };
        match kind.as_str() {
            "http" => {
                if let Some(base) = entry.static_base_url() {
                    fill("base_url", base.into());
                }
            }
            "database" => {
                if let Some(d) = &entry.database {
                    if let Some(driver) = &d.driver {
                        fill("driver", driver.as_str().into());
                    }
                    if let Some(port) = d.port {
                        fill("port", port.into());
                    }
                    if let Some(ssl) = d.ssl {
                        fill("ssl", ssl.into());
                    }
                    if let Some(host) = config.get("host").and_then(Value::as_str) {
                        check_host(
                            entry,
                            "config.host",
                            "host",
                            host,
                            &d.host_patterns,
                            &mut errs,
                        );
                    }
                }
            }
            "storage" => {
                if let Some(st) = &entry.storage {
                    if let Some(region) = &st.region {
                        fill("region", region.as_str().into());
                    }
                    if let Some(path_style) = st.path_style {
                        fill("path_style", path_style.into());
                    }
                    let region = config
                        .get("region")
                        .and_then(Value::as_str)
                        .unwrap_or(patchbay_domain::spec::StorageConfig::REGION)
                        .to_owned();
                    // Not `fill`: the region was read from `config` since it was last used.
                    if let Some(endpoint) = st.endpoint_for(&region) {
                        config.entry("endpoint").or_insert(endpoint.into());
                    }
                    if let Some(endpoint) = config.get("endpoint").and_then(Value::as_str)
                        && let Ok(url) = url::Url::parse(endpoint)
                    {
                        let host = url.host_str().unwrap_or_default();
                        check_host(
                            entry,
                            "config.endpoint",
                            "endpoint",
                            host,
                            &st.endpoint_patterns,
                            &mut errs,
                        );
                    }
                }
            }
            "smtp" => {
                if let Some(m) = &entry.smtp {
                    fill("host", m.host.as_str().into());
                    fill("port", m.port.into());
                    fill("encryption", m.encryption.as_str().into());
                    if let Some(user) = &m.username {
                        fill("username", user.as_str().into());
                    }
                    if m.username_is_from_address
                        && let Some(from) = config.get("from_address").cloned()
                    {
                        config.entry("username").or_insert(from);
                    }
                }
            }
            "mcp" => {
                let operators = self
                    .inner
                    .settings
                    .mcp_server_urls
                    .get(&crate::mcp::registry_name(&entry.key));
                if let Some(m) = &entry.mcp
                    && !config.contains_key("server_url")
                    && !config.contains_key("command")
                {
                    // The operator's URL for the registry entry comes first.
                    if let Some(url) = operators {
                        config.insert("server_url".into(), url.as_str().into());
                        config
                            .entry("transport")
                            .or_insert_with(|| "streamable_http".into());
                    } else if let Some(url) = &m.server_url {
                        config.insert("server_url".into(), url.as_str().into());
                    }
                    if operators.is_none()
                        && let Some(command) = &m.command
                    {
                        config.insert("command".into(), command.as_str().into());
                        if !m.args.is_empty() {
                            config
                                .entry("args")
                                .or_insert_with(|| m.args.clone().into());
                        }
                    }
                    config
                        .entry("transport")
                        .or_insert_with(|| m.transport.as_str().into());
                }
            }
            _ => {}
        }
        errs.into_result(()).map_err(Into::into)
    }

    /// The catalog entry `key` names (an alias names its entry's).
    fn catalog_entry(&self, key: &str) -> Result<&Provider> {
        self.catalog().get(key).ok_or_else(|| {
            ValidationErrors::single(
                "provider",
                format!("unknown provider {key:?}; see GET /v1/providers, or use \"custom\""),
            )
            .into()
        })
    }

    /// A PATCH's new provider: `custom`, or a catalog entry serving the connection's kind,
    /// named by its key (an alias becomes the key).
    pub(crate) fn check_new_provider(&self, key: &str, kind: Kind) -> Result<String> {
        if key == "custom" {
            return Ok(key.to_owned());
        }
        let entry = self.catalog_entry(key)?;
        serves(entry, kind.as_str())?;
        Ok(entry.key.clone())
    }

    /// A PATCH's new secrets, checked against the formats of the connection's provider.
    pub(crate) fn check_secret_formats(
        &self,
        provider: &str,
        secrets: Option<&Value>,
        errs: &mut ValidationErrors,
    ) {
        if let Some(entry) = self.catalog().get(provider) {
            secret_format_errors(entry, secrets, errs);
        }
    }
}

/// Refuses `entry` for a connection of `kind` it does not serve, naming both.
fn serves(entry: &Provider, kind: &str) -> Result<()> {
    if entry.serves(kind) {
        return Ok(());
    }
    Err(ValidationErrors::single(
        "provider",
        format!(
            "{} is a provider of {} connections, not of {kind} connections",
            entry.key,
            entry.kinds.join(" and ")
        ),
    )
    .into())
}

/// What [`Hub::apply_catalog`] adds to a body of `kind` naming `entry`, as far as what is
/// accepted goes: the OpenAPI document's connection schemas are written from it, so it follows
/// `apply_catalog` field for field. `None` when the provider does not serve `kind`.
pub fn provider_fill(entry: &Provider, kind: Kind) -> Option<ProviderFill> {
    if !entry.serves(kind.as_str()) {
        return None;
    }
    let mut fill = ProviderFill {
        kind_implied: entry.kinds.len() == 1,
        secret_formats: entry
            .secret_formats
            .iter()
            .map(|(field, f)| (field.clone(), f.prefixes.clone()))
            .collect(),
        oauth_apps: entry.uses_oauth(),
        ..Default::default()
    };
    let mut fills = |field: &str| {
        fill.fills.insert(field.to_owned());
    };
    match kind {
        Kind::Http => {
            if entry.static_base_url().is_some() {
                fills("base_url");
            }
        }
        Kind::Database => {
            if let Some(d) = &entry.database {
                if d.driver.is_some() {
                    fills("driver");
                }
                if d.port.is_some() {
                    fills("port");
                }
                if d.ssl.is_some() {
                    fills("ssl");
                }
                fill.fills_sqlite = d.driver.as_deref() == Some(DatabaseDriver::Sqlite.as_str());
                fill.host_patterns = d.host_patterns.clone();
            }
        }
        Kind::Smtp => {
            if let Some(m) = &entry.smtp {
                for f in ["host", "port", "encryption"] {
                    fills(f);
                }
                if m.username.is_some() || m.username_is_from_address {
                    fills("username");
                }
            }
        }
        Kind::Mcp => {
            fill.mcp = entry.mcp.as_ref().and_then(|m| {
                if m.server_url.is_some() {
                    Some(McpFill::Url)
                } else {
                    m.command.as_ref().map(|_| McpFill::Command)
                }
            });
        }
        Kind::Storage => {
            if let Some(st) = &entry.storage {
                if st.region.is_some() {
                    fills("region");
                }
                if st.path_style.is_some() {
                    fills("path_style");
                }
                if st.endpoint.is_some() {
                    fills("endpoint");
                }
            }
        }
        Kind::FileTransfer => {}
        Kind::Webhook => {}
    }
    fill.base_url_from_token = kind == Kind::Http && entry.token_base_url().is_some();
    Some(fill)
}

/// Names each secret of `secrets` written as a literal value that lacks the format its
/// provider issues (the value itself is never repeated); references are opened later.
fn secret_format_errors(entry: &Provider, secrets: Option<&Value>, errs: &mut ValidationErrors) {
    let Some(Value::Object(secrets)) = secrets else {
        return;
    };
    for (field, format) in &entry.secret_formats {
        if let Some(Value::String(v)) = secrets.get(field)
            && !format.matches(v)
        {
            errs.push(format!("secrets.{field}"), format.reason());
        }
    }
}

/// `*.example.com` matches any name under example.com; other patterns match exactly.
/// Names `field` unless `host` is one of the provider's `patterns` (none: any host).
fn check_host(
    entry: &Provider,
    field: &str,
    what: &str,
    host: &str,
    patterns: &[String],
    errs: &mut ValidationErrors,
) {
    if !patterns.is_empty() && !patterns.iter().any(|p| host_matches(p, host)) {
        errs.push(
            field,
            format!(
                "is not a {} {what} (expected {})",
                entry.display_name,
                patterns.join(" or ")
            ),
        );
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == pattern,
    }
}
