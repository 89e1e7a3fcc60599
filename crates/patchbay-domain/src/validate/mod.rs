//! Connection validation (SPEC §2): one pass over a draft that checks every field of `auth`,
//! `config` and `secrets` against the rules of its kind and auth type and reports every
//! offending field at once; what passes comes out as the typed spec (`crate::spec`), its
//! defaults filled.
//!
//! The input is loosely typed JSON on purpose: a typed deserializer would stop at the first bad
//! field, while a user filling a form wants to hear about all of them.
//!
//! By concern: `fields` (field types and shared checks), `config` (each kind's config),
//! `auth` (each auth type's parameters), `secrets` (secret fields and their forms), `schema`
//! (the JSON Schemas of what they accept, for the OpenAPI document).

use std::collections::{BTreeMap, BTreeSet};

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::connection::{AuthType, Kind, Status};
use crate::error::ValidationErrors;
use crate::names::{Name, SecretName};
use crate::spec::{Auth, ConnectionSpec};

pub use form::{FormField, Input, auth_choices, auth_form, config_form, secret_form};

pub use auth::is_token;
use auth::{allowed_auth, check_auth, default_auth};
use config::check_config;
pub use fields::check_url;
pub use secrets::template_secret_refs;
use secrets::{check_custom_templates, check_webhook_secret, parse_secret, secret_spec};

/// Secret fields whose names start with this are Patchbay's own state (OAuth tokens): never
/// written by callers, never listed.
pub const RESERVED_PREFIX: &str = "__";

/// Largest accepted secret value, in characters; bigger ones are not credentials.
pub const SECRET_MAX_CHARS: usize = 65_536;

/// A secret field as written by a caller: a literal value or a reference to an org secret.
#[derive(Debug)]
pub enum SecretInput {
    Value(SecretString),
    Ref(SecretName),
}

/// A connection draft: create bodies, test-before-save bodies, and PATCH merges all land here.
#[derive(Debug, Default, Clone)]
pub struct Draft {
    pub name: Option<Value>,
    pub kind: Option<Value>,
    pub provider: Option<Value>,
    pub auth: Option<Value>,
    pub config: Option<Value>,
    /// Field name → string value, `{"ref": name}`, or `null` to remove the field.
    pub secrets: Option<Value>,
    /// The provider names the base URL in its token answer (Salesforce's `instance_url`), so
    /// an OAuth connection may be created without one.
    pub base_url_from_token: bool,
}

/// A draft that passed validation, normalised and with defaults filled.
#[derive(Debug)]
pub struct ValidConnection {
    pub name: Name,
    pub kind: Kind,
    pub provider: String,
    pub auth_type: AuthType,
    /// The typed configuration of its kind.
    pub spec: ConnectionSpec,
    /// The typed auth.
    pub auth_spec: Auth,
    /// `auth` as stored: `type` and the parameters, defaults filled.
    pub auth: Map<String, Value>,
    /// `config` as stored, defaults filled.
    pub config: Map<String, Value>,
    /// Secret fields written by this request.
    pub secrets: BTreeMap<String, SecretInput>,
    /// Fields to drop: removed with `null`, or no longer used by the new auth type.
    pub remove_secrets: BTreeSet<String>,
    /// The state a new connection starts in.
    pub initial_status: Status,
}

/// Validates `draft`. `existing_secrets` names the secret fields already stored (empty on
/// create); they satisfy "required" unless the draft removes them.
pub fn validate_connection(
    draft: &Draft,
    existing_secrets: &BTreeSet<String>,
) -> Result<ValidConnection, ValidationErrors> {
    let mut errs = ValidationErrors::new();

    let name = match draft.name.as_ref() {
        None | Some(Value::Null) => {
            errs.push("name", "is required");
            None
        }
        Some(Value::String(s)) => Name::parse(s).map_err(|e| errs.push("name", e)).ok(),
        Some(_) => {
            errs.push("name", "must be a string");
            None
        }
    };
    let kind = match draft.kind.as_ref() {
        None | Some(Value::Null) => {
            errs.push("kind", format!("is required (one of {})", Kind::expected()));
            None
        }
        Some(Value::String(s)) => Kind::parse(s).or_else(|| {
            errs.push(
                "kind",
                format!("unknown kind; expected one of {}", Kind::expected()),
            );
            None
        }),
        Some(_) => {
            errs.push("kind", "must be a string");
            None
        }
    };
    let provider = match draft.provider.as_ref() {
        None | Some(Value::Null) => Some("custom".to_owned()),
        Some(Value::String(s)) if is_provider_key(s) => Some(s.clone()),
        Some(_) => {
            errs.push(
                "provider",
                "must be a provider key: 1-64 characters of a-z 0-9 _ - . starting with a letter or digit",
            );
            None
        }
    };
    let config = object_or_empty(draft.config.as_ref(), "config", &mut errs);
    let auth = object_or_empty(draft.auth.as_ref(), "auth", &mut errs);
    let secrets = object_or_empty(draft.secrets.as_ref(), "secrets", &mut errs);

    let (Some(kind), Some(mut config), Some(mut auth), Some(secrets)) =
        (kind, config, auth, secrets)
    else {
        return Err(errs);
    };

    let auth_type = auth_type_of(kind, auth.get("type"), || default_auth(kind, &config))
        .map_err(|reason| errs.push("auth.type", reason))
        .ok();

    check_config(kind, &mut config, draft.base_url_from_token, &mut errs);
    let Some(auth_type) = auth_type else {
        return Err(errs);
    };
    auth.insert("type".into(), Value::String(auth_type.as_str().into()));
    check_auth(kind, auth_type, &mut auth, &config, &mut errs);
    if kind == Kind::Mcp && config.contains_key("command") && auth_type != AuthType::None {
        errs.push(
            "auth.type",
            "a stdio server takes no HTTP credentials: use none, with its secrets as \
             environment variables",
        );
    }

    let spec = secret_spec(kind, auth_type, &auth, &config);
    let mut written = BTreeMap::new();
    let mut removed = BTreeSet::new();
    let mut rejected = BTreeSet::new();
    for (field, value) in &secrets {
        let path = format!("secrets.{field}");
        if field.starts_with(RESERVED_PREFIX) {
            errs.push(path, "is reserved for tokens Patchbay obtains itself");
            continue;
        }
        if !spec.allows(field) {
            let known = spec.known();
            errs.push(
                path,
                if known.is_empty() {
                    format!("{} auth takes no secrets", auth_type)
                } else {
                    format!(
                        "not a secret field of {} auth; expected {}",
                        auth_type,
                        known.join(", ")
                    )
                },
            );
            continue;
        }
        match parse_secret(field, value) {
            Ok(Some(input)) => {
                written.insert(field.clone(), input);
            }
            Ok(None) => {
                removed.insert(field.clone());
            }
            Err(reason) => {
                errs.push(path, reason);
                removed.insert(field.clone());
                rejected.insert(field.clone());
            }
        }
    }
    for field in &spec.required {
        if rejected.contains(field) {
            continue;
        }
        let present = written.contains_key(field.as_str())
            || (existing_secrets.contains(field.as_str()) && !removed.contains(field.as_str()));
        if !present {
            errs.push(
                format!("secrets.{field}"),
                format!("is required for {auth_type} auth"),
            );
        }
    }
    if auth_type == AuthType::Hmac
        && let Some(SecretInput::Value(v)) = written.get("secret")
        && let Err(reason) = check_webhook_secret(v)
    {
        errs.push("secrets.secret", reason);
    }
    if auth_type == AuthType::Custom {
        check_custom_templates(&auth, &written, existing_secrets, &mut errs);
    }
    // Secrets the new auth type no longer uses are dropped rather than kept unreachable;
    // obtained tokens stay while the connection keeps its OAuth auth type.
    for field in existing_secrets {
        let token_kept = field.starts_with(RESERVED_PREFIX) && auth_type == AuthType::Oauth2;
        if !spec.allows(field) && !token_kept {
            removed.insert(field.clone());
        }
    }

    let name = name.ok_or_else(|| errs.clone());
    let provider = provider.ok_or_else(|| errs.clone());
    errs.clone().into_result(())?;
    let (Ok(name), Ok(provider)) = (name, provider) else {
        return Err(errs);
    };
    // The checks above accept exactly what the typed specs read; a mismatch is named rather
    // than stored.
    let spec = ConnectionSpec::from_config(kind, &config).map_err(|e| errs_of("config", e))?;
    let auth_spec = Auth::from_auth(&auth).map_err(|e| errs_of("auth", e))?;
    let initial_status = if auth_type == AuthType::Oauth2 {
        Status::Pending
    } else {
        Status::Active
    };
    Ok(ValidConnection {
        name,
        kind,
        provider,
        auth_type,
        auth: auth_spec.to_auth(),
        config: spec.to_config(),
        spec,
        auth_spec,
        secrets: written,
        remove_secrets: removed,
        initial_status,
    })
}

/// `auth.type`: one of the auth types `kind` takes, or `default` when absent.
fn auth_type_of(
    kind: Kind,
    value: Option<&Value>,
    default: impl FnOnce() -> AuthType,
) -> Result<AuthType, String> {
    match value {
        None | Some(Value::Null) => Ok(default()),
        Some(Value::String(s)) => match AuthType::parse(s) {
            Some(t) if allowed_auth(kind).contains(&t) => Ok(t),
            _ => {
                let allowed: Vec<_> = allowed_auth(kind).iter().map(|t| t.as_str()).collect();
                Err(format!(
                    "{s:?} is not an auth type of {kind} connections; expected one of {}",
                    allowed.join(", ")
                ))
            }
        },
        Some(_) => Err("must be a string".into()),
    }
}

fn errs_of(field: &str, reason: String) -> ValidationErrors {
    ValidationErrors::single(field, reason)
}

/// Checks and reads the `auth` of a `kind` connection given outside a connection (an action's
/// replacement credentials): the same rules, without secrets.
pub fn parse_auth(
    kind: Kind,
    auth: &Map<String, Value>,
    config: &Map<String, Value>,
) -> Result<Auth, ValidationErrors> {
    let mut errs = ValidationErrors::new();
    let mut auth = auth.clone();
    let auth_type = auth_type_of(kind, auth.get("type"), || default_auth(kind, config))
        .map_err(|reason| ValidationErrors::single("auth.type", reason))?;
    check_auth(kind, auth_type, &mut auth, config, &mut errs);
    errs.into_result(())?;
    Auth::from_auth(&auth).map_err(|e| errs_of("auth", e))
}

fn is_provider_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c))
}

fn object_or_empty(
    value: Option<&Value>,
    field: &str,
    errs: &mut ValidationErrors,
) -> Option<Map<String, Value>> {
    match value {
        None | Some(Value::Null) => Some(Map::new()),
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => {
            errs.push(field, "must be an object");
            None
        }
    }
}

mod auth;
mod config;
mod fields;
mod form;
pub mod schema;
mod secrets;

#[cfg(test)]
mod tests;
