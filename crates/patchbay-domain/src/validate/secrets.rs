//! The `secrets` of a connection: which fields each auth type takes, the form each is written
//! in, and the checks a few of them get (webhook signing secrets, custom templates).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::{SECRET_MAX_CHARS, SecretInput};
use crate::connection::{AuthType, Kind};
use crate::error::ValidationErrors;
use crate::names::SecretName;

pub(super) fn parse_secret(field: &str, value: &Value) -> Result<Option<SecretInput>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            if s.chars().count() > SECRET_MAX_CHARS {
                return Err(format!("must be at most {SECRET_MAX_CHARS} characters"));
            }
            if s.is_empty() && field != "password" {
                return Err("must not be empty".into());
            }
            Ok(Some(SecretInput::Value(SecretString::from(s.clone()))))
        }
        Value::Object(m) if m.len() == 1 && m.contains_key("ref") => match &m["ref"] {
            Value::String(r) => SecretName::parse(r)
                .map(|n| Some(SecretInput::Ref(n)))
                .map_err(|e| format!("ref {e}")),
            _ => Err("ref must be a string naming an organization secret".into()),
        },
        _ => Err("must be a string, {\"ref\": \"secret_name\"}, or null to remove it".into()),
    }
}

/// The secret fields an auth type takes.
pub(super) struct SecretSpec {
    pub required: Vec<String>,
    pub optional: Vec<String>,
    /// `custom` auth accepts any identifier.
    any: bool,
    /// A stdio MCP server's secrets are environment variables: any variable name.
    env: bool,
}

impl SecretSpec {
    fn new(required: &[&str], optional: &[&str]) -> Self {
        Self {
            required: required.iter().map(|s| s.to_string()).collect(),
            optional: optional.iter().map(|s| s.to_string()).collect(),
            any: false,
            env: false,
        }
    }

    pub fn allows(&self, field: &str) -> bool {
        (self.any && SecretName::parse(field).is_ok())
            || (self.env && is_env_name(field))
            || self.required.iter().any(|f| f == field)
            || self.optional.iter().any(|f| f == field)
    }

    pub fn known(&self) -> Vec<String> {
        self.required
            .iter()
            .chain(&self.optional)
            .cloned()
            .collect()
    }
}

pub(super) fn secret_spec(
    kind: Kind,
    auth_type: AuthType,
    auth: &Map<String, Value>,
    config: &Map<String, Value>,
) -> SecretSpec {
    let has_app = auth.get("app").is_some_and(|v| !v.is_null());
    match auth_type {
        AuthType::None
            if kind == Kind::Mcp && config.get("command").is_some_and(Value::is_string) =>
        {
            SecretSpec {
                env: true,
                ..SecretSpec::new(&[], &[])
            }
        }
        AuthType::None => SecretSpec::new(&[], &[]),
        AuthType::ApiKey => SecretSpec::new(&["api_key"], &["api_secret"]),
        AuthType::Bearer => SecretSpec::new(&["token"], &[]),
        AuthType::Basic => {
            if kind == Kind::Smtp && config.get("username").is_none_or(Value::is_null) {
                SecretSpec::new(&[], &["password"])
            } else {
                SecretSpec::new(&["password"], &[])
            }
        }
        AuthType::Oauth2 if has_app => SecretSpec::new(&[], &[]),
        // MCP authorization registers a client when the connection has none.
        AuthType::Oauth2 if kind == Kind::Mcp => {
            SecretSpec::new(&[], &["client_id", "client_secret"])
        }
        AuthType::Oauth2 => SecretSpec::new(&["client_id"], &["client_secret"]),
        AuthType::Oauth2ClientCredentials if has_app => SecretSpec::new(&[], &[]),
        AuthType::Oauth2ClientCredentials => SecretSpec::new(&["client_id", "client_secret"], &[]),
        AuthType::Custom => SecretSpec {
            any: true,
            ..SecretSpec::new(&[], &[])
        },
        AuthType::AwsSigv4 => {
            SecretSpec::new(&["access_key_id", "secret_access_key"], &["session_token"])
        }
        AuthType::Hmac => SecretSpec::new(&["secret"], &[]),
        AuthType::SshKey => SecretSpec::new(&["private_key"], &["passphrase"]),
    }
}

/// An environment variable's name (`[A-Za-z_][A-Za-z0-9_]*`), never one of Patchbay's reserved
/// fields.
pub(super) fn is_env_name(field: &str) -> bool {
    let mut chars = field.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !field.starts_with(super::RESERVED_PREFIX)
        && field.len() <= 128
}

/// Standard Webhooks secrets: `whsec_` + base64 of 24–64 bytes, or a raw string of 16+ bytes.
pub(super) fn check_webhook_secret(secret: &SecretString) -> Result<(), String> {
    use secrecy::ExposeSecret;
    let s = secret.expose_secret();
    if let Some(b64) = s.strip_prefix("whsec_") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "whsec_ secrets must be base64 after the prefix".to_owned())?;
        if !(24..=64).contains(&bytes.len()) {
            return Err("whsec_ secrets must encode 24 to 64 bytes".into());
        }
    } else if s.chars().count() < 16 {
        return Err("must be at least 16 characters, or a whsec_ secret".into());
    }
    Ok(())
}

/// The secret names a template mentions as `${secrets.NAME}`.
pub fn template_secret_refs(template: &str) -> Vec<&str> {
    template
        .match_indices("${secrets.")
        .filter_map(|(i, m)| {
            let rest = &template[i + m.len()..];
            rest.find('}').map(|end| &rest[..end])
        })
        .collect()
}

pub(super) fn check_custom_templates(
    auth: &Map<String, Value>,
    written: &BTreeMap<String, SecretInput>,
    existing: &BTreeSet<String>,
    errs: &mut ValidationErrors,
) {
    let Some(items) = auth.get("inject").and_then(Value::as_array) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let Some(t) = item.get("template").and_then(Value::as_str) else {
            continue;
        };
        for name in template_secret_refs(t) {
            if !written.contains_key(name) && !existing.contains(name) {
                errs.push(
                    format!("auth.inject[{i}].template"),
                    format!("refers to secrets.{name}, which is not set"),
                );
            }
        }
    }
}
