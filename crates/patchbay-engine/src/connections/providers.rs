//! The provider catalog as the API shows it, and what it adds to a connection: a known provider
//! key is required, and a catalog provider's static base URL fills an omitted `base_url`.

use patchbay_connectors::VerifyRequest;
use patchbay_domain::api::CreateConnection;
use patchbay_domain::spec::ConnectionSpec;
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
                .and_then(|e| e.base_url.as_deref())
                .is_some_and(|u| u.contains("${token_response."))
    }

    /// Checks the provider key and fills catalog defaults into a create body.
    pub(crate) fn apply_catalog(&self, body: &mut CreateConnection) -> Result<()> {
        let key = match &body.provider {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::String(k)) if k == "custom" => return Ok(()),
            Some(Value::String(k)) => k.clone(),
            // Validation names the bad type.
            Some(_) => return Ok(()),
        };
        let Some(entry) = self.catalog().get(&key) else {
            return Err(ValidationErrors::single(
                "provider",
                format!("unknown provider {key:?}; see GET /v1/providers, or use \"custom\""),
            )
            .into());
        };
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
        if body.kind.as_str() == Some("http")
            && let Some(base) = entry.static_base_url()
        {
            let config = body
                .config
                .get_or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(map) = config {
                map.entry("base_url")
                    .or_insert_with(|| Value::String(base.to_owned()));
            }
        }
        Ok(())
    }
}
