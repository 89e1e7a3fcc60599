//! Connection validation (SPEC §2): one pass over a draft that checks every field of `auth`,
//! `config` and `secrets` against the rules of its kind and auth type, fills defaults, and
//! reports every offending field at once.
//!
//! The input is loosely typed JSON on purpose: a typed deserializer would stop at the first bad
//! field, while a user filling a form wants to hear about all of them.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::connection::{AuthType, Kind, Status};
use crate::error::ValidationErrors;
use crate::names::{Name, SecretName};

/// Secret fields whose names start with this are Patchbay's own state (OAuth tokens): never
/// written by callers, never listed.
pub const RESERVED_PREFIX: &str = "__";

/// Largest accepted secret value; bigger ones are not credentials.
pub const SECRET_MAX_BYTES: usize = 64 * 1024;

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
    /// Includes `type`.
    pub auth: Map<String, Value>,
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

    let auth_type = match auth.get("type") {
        None | Some(Value::Null) => Some(default_auth(kind, &config)),
        Some(Value::String(s)) => match AuthType::parse(s) {
            Some(t) if allowed_auth(kind).contains(&t) => Some(t),
            _ => {
                let allowed: Vec<_> = allowed_auth(kind).iter().map(|t| t.as_str()).collect();
                errs.push(
                    "auth.type",
                    format!(
                        "{s:?} is not an auth type of {kind} connections; expected one of {}",
                        allowed.join(", ")
                    ),
                );
                None
            }
        },
        Some(_) => {
            errs.push("auth.type", "must be a string");
            None
        }
    };

    check_config(kind, &mut config, draft.base_url_from_token, &mut errs);
    let Some(auth_type) = auth_type else {
        return Err(errs);
    };
    auth.insert("type".into(), Value::String(auth_type.as_str().into()));
    check_auth(kind, auth_type, &mut auth, &config, &mut errs);

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
        auth,
        config,
        secrets: written,
        remove_secrets: removed,
        initial_status,
    })
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

fn allowed_auth(kind: Kind) -> &'static [AuthType] {
    use AuthType::*;
    match kind {
        Kind::Http => &[
            None,
            ApiKey,
            Bearer,
            Basic,
            Oauth2,
            Oauth2ClientCredentials,
            Custom,
            AwsSigv4,
        ],
        Kind::Database => &[Basic, None],
        Kind::Smtp => &[Basic, None],
        Kind::Webhook => &[None, Bearer, Hmac],
        Kind::Mcp => &[None, ApiKey, Bearer, Basic, Oauth2],
    }
}

fn default_auth(kind: Kind, config: &Map<String, Value>) -> AuthType {
    match kind {
        Kind::Database if config.get("driver").and_then(Value::as_str) == Some("sqlite") => {
            AuthType::None
        }
        Kind::Database => AuthType::Basic,
        Kind::Smtp if config.get("username").is_some_and(|v| !v.is_null()) => AuthType::Basic,
        _ => AuthType::None,
    }
}

fn parse_secret(field: &str, value: &Value) -> Result<Option<SecretInput>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            if s.len() > SECRET_MAX_BYTES {
                return Err(format!("must be at most {SECRET_MAX_BYTES} bytes"));
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
struct SecretSpec {
    required: Vec<String>,
    optional: Vec<String>,
    /// `custom` auth accepts any identifier.
    any: bool,
}

impl SecretSpec {
    fn new(required: &[&str], optional: &[&str]) -> Self {
        Self {
            required: required.iter().map(|s| s.to_string()).collect(),
            optional: optional.iter().map(|s| s.to_string()).collect(),
            any: false,
        }
    }

    fn allows(&self, field: &str) -> bool {
        (self.any && SecretName::parse(field).is_ok())
            || self.required.iter().any(|f| f == field)
            || self.optional.iter().any(|f| f == field)
    }

    fn known(&self) -> Vec<String> {
        self.required
            .iter()
            .chain(&self.optional)
            .cloned()
            .collect()
    }
}

fn secret_spec(
    kind: Kind,
    auth_type: AuthType,
    auth: &Map<String, Value>,
    config: &Map<String, Value>,
) -> SecretSpec {
    let has_app = auth.get("app").is_some_and(|v| !v.is_null());
    match auth_type {
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
        AuthType::Oauth2 => SecretSpec::new(&["client_id"], &["client_secret"]),
        AuthType::Oauth2ClientCredentials if has_app => SecretSpec::new(&[], &[]),
        AuthType::Oauth2ClientCredentials => SecretSpec::new(&["client_id", "client_secret"], &[]),
        AuthType::Custom => SecretSpec {
            required: vec![],
            optional: vec![],
            any: true,
        },
        AuthType::AwsSigv4 => {
            SecretSpec::new(&["access_key_id", "secret_access_key"], &["session_token"])
        }
        AuthType::Hmac => SecretSpec::new(&["secret"], &[]),
    }
}

/// Standard Webhooks secrets: `whsec_` + base64 of 24–64 bytes, or a raw string of 16+ bytes.
fn check_webhook_secret(secret: &SecretString) -> Result<(), String> {
    use secrecy::ExposeSecret;
    let s = secret.expose_secret();
    if let Some(b64) = s.strip_prefix("whsec_") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "whsec_ secrets must be base64 after the prefix".to_owned())?;
        if !(24..=64).contains(&bytes.len()) {
            return Err("whsec_ secrets must encode 24 to 64 bytes".into());
        }
    } else if s.len() < 16 {
        return Err("must be at least 16 bytes, or a whsec_ secret".into());
    }
    Ok(())
}

// ---- field checks -------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Ty {
    Url,
    Str,
    Int(i64, i64),
    Bool,
    Headers,
    Enum(&'static [&'static str]),
    Email,
    UrlPath,
    StrList,
    Object,
    Pem,
    Scopes,
}

struct Rule {
    name: &'static str,
    ty: Ty,
}

const fn r(name: &'static str, ty: Ty) -> Rule {
    Rule { name, ty }
}

const HTTP_CONFIG: &[Rule] = &[
    r("base_url", Ty::Url),
    r("headers", Ty::Headers),
    r("timeout_ms", Ty::Int(1, 600_000)),
    r("retries", Ty::Int(0, 10)),
    r("backoff_ms", Ty::Int(0, 60_000)),
    r("verify_path", Ty::UrlPath),
];
const DRIVERS: &[&str] = &["postgresql", "mysql", "sqlite", "mssql"];
const DATABASE_CONFIG: &[Rule] = &[
    r("driver", Ty::Enum(DRIVERS)),
    r("host", Ty::Str),
    r("port", Ty::Int(1, 65_535)),
    r("database", Ty::Str),
    r("username", Ty::Str),
    r("ssl", Ty::Bool),
    r("ssl_ca", Ty::Pem),
    r("options", Ty::Object),
];
const SMTP_CONFIG: &[Rule] = &[
    r("host", Ty::Str),
    r("port", Ty::Int(1, 65_535)),
    r("username", Ty::Str),
    r("from_address", Ty::Email),
    r("encryption", Ty::Enum(&["starttls", "tls", "none"])),
];
const WEBHOOK_CONFIG: &[Rule] = &[
    r("url", Ty::Url),
    r("method", Ty::Enum(&["POST", "PUT", "PATCH"])),
    r("headers", Ty::Headers),
];
const MCP_CONFIG: &[Rule] = &[
    r("server_url", Ty::Url),
    r("command", Ty::Str),
    r("args", Ty::StrList),
    r("transport", Ty::Enum(&["streamable_http", "sse", "stdio"])),
    r("timeout_ms", Ty::Int(1, 600_000)),
    r("headers", Ty::Headers),
];

const OAUTH2_AUTH: &[Rule] = &[
    r("app", Ty::Str),
    r("issuer", Ty::Url),
    r(
        "token_request_auth_method",
        Ty::Enum(&["client_secret_basic", "client_secret_post"]),
    ),
    r("authorization_url", Ty::Url),
    r("token_url", Ty::Url),
    r("revocation_url", Ty::Url),
    r("scopes", Ty::Scopes),
    r("pkce", Ty::Bool),
    r("authorization_params", Ty::Object),
    r("token_params", Ty::Object),
];
const CLIENT_CREDENTIALS_AUTH: &[Rule] = &[
    r("app", Ty::Str),
    r("token_url", Ty::Url),
    r("scopes", Ty::Scopes),
    r("audience", Ty::Str),
    r("token_params", Ty::Object),
];

fn check_fields(
    prefix: &str,
    map: &mut Map<String, Value>,
    rules: &[Rule],
    errs: &mut ValidationErrors,
) {
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let path = format!("{prefix}.{key}");
        let Some(rule) = rules.iter().find(|r| r.name == key) else {
            let reason = if is_secretish(&key) {
                "is a secret: send it in `secrets`, never in plain fields".to_owned()
            } else {
                let known: Vec<_> = rules.iter().map(|r| r.name).collect();
                format!("unknown field; expected one of {}", known.join(", "))
            };
            errs.push(path, reason);
            continue;
        };
        if map[&key].is_null() {
            map.remove(&key);
            continue;
        }
        if let Err(reason) = check_value(rule.ty, &mut map[&key]) {
            errs.push(path, reason);
        }
    }
}

fn is_secretish(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "api_key",
        "apikey",
        "client_secret",
    ]
    .iter()
    .any(|s| k.contains(s))
        && k != "token_url"
        && k != "token_params"
}

fn check_value(ty: Ty, value: &mut Value) -> Result<(), String> {
    match ty {
        Ty::Url => {
            let s = value.as_str().ok_or("must be a string URL")?;
            check_url(s)
        }
        Ty::Str => {
            let s = value.as_str().ok_or("must be a string")?;
            if s.is_empty() {
                return Err("must not be empty".into());
            }
            if s.len() > 2048 {
                return Err("must be at most 2048 characters".into());
            }
            if s.chars().any(char::is_control) {
                return Err("must not contain control characters".into());
            }
            Ok(())
        }
        Ty::Int(min, max) => match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            Some(_) => Err(format!("must be between {min} and {max}")),
            None => Err("must be an integer".into()),
        },
        Ty::Bool => value
            .is_boolean()
            .then_some(())
            .ok_or("must be true or false".into()),
        Ty::Headers => check_headers(value),
        Ty::Enum(options) => match value.as_str() {
            Some(s) if options.contains(&s) => Ok(()),
            _ => Err(format!("must be one of {}", options.join(", "))),
        },
        Ty::Email => {
            let s = value.as_str().ok_or("must be a string e-mail address")?;
            check_email(s)
        }
        Ty::UrlPath => {
            let s = value.as_str().ok_or("must be a string path")?;
            if !s.starts_with('/') || s.chars().any(|c| c.is_control() || c == ' ') {
                return Err("must be a path starting with / without spaces".into());
            }
            Ok(())
        }
        Ty::StrList => match value.as_array() {
            Some(items) if items.iter().all(|v| v.as_str().is_some()) => Ok(()),
            _ => Err("must be an array of strings".into()),
        },
        Ty::Scopes => {
            // A space-separated string is normalised to the array form.
            if let Some(s) = value.as_str() {
                *value = Value::Array(
                    s.split_whitespace()
                        .map(|p| Value::String(p.to_owned()))
                        .collect(),
                );
            }
            match value.as_array() {
                Some(items)
                    if items.iter().all(|v| {
                        v.as_str()
                            .is_some_and(|s| !s.is_empty() && !s.contains(char::is_whitespace))
                    }) =>
                {
                    Ok(())
                }
                _ => {
                    Err("must be an array of scope strings (or one space-separated string)".into())
                }
            }
        }
        Ty::Object => value
            .is_object()
            .then_some(())
            .ok_or("must be an object".into()),
        Ty::Pem => match value.as_str() {
            Some(s) if s.contains("-----BEGIN CERTIFICATE-----") => Ok(()),
            _ => Err("must be a PEM certificate".into()),
        },
    }
}

/// http(s) URLs with a host and no embedded credentials.
pub fn check_url(s: &str) -> Result<(), String> {
    let url = url::Url::parse(s).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must use http or https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not embed credentials; put them in `secrets`".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    Ok(())
}

fn check_email(s: &str) -> Result<(), String> {
    let ok = s.len() <= 254
        && !s
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>\",;".contains(c))
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.contains('@')
        });
    ok.then_some(())
        .ok_or_else(|| "must be an e-mail address like ops@example.com".to_owned())
}

fn check_headers(value: &Value) -> Result<(), String> {
    let map = value
        .as_object()
        .ok_or("must be an object of header names to string values")?;
    for (name, v) in map {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(format!("header name {name:?} is not a valid HTTP token"));
        }
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "authorization" | "proxy-authorization" | "cookie"
        ) || lower.starts_with("patchbay-")
        {
            return Err(format!(
                "header {name:?} may not be set here; credentials belong in `auth` and `secrets`"
            ));
        }
        match v.as_str() {
            Some(s) if !s.chars().any(|c| c == '\r' || c == '\n' || c == '\0') => {}
            _ => {
                return Err(format!(
                    "header {name:?} must be a string without CR, LF or NUL"
                ));
            }
        }
    }
    Ok(())
}

fn require(
    map: &Map<String, Value>,
    prefix: &str,
    field: &str,
    errs: &mut ValidationErrors,
    why: &str,
) {
    if map.get(field).is_none_or(Value::is_null) {
        errs.push(format!("{prefix}.{field}"), format!("is required{why}"));
    }
}

fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host.starts_with("127.")
        || host == "::1"
        || host == "[::1]"
        || host.ends_with(".localhost")
}

fn check_config(
    kind: Kind,
    config: &mut Map<String, Value>,
    base_url_from_token: bool,
    errs: &mut ValidationErrors,
) {
    let before = errs.errors().len();
    let rules = match kind {
        Kind::Http => HTTP_CONFIG,
        Kind::Database => DATABASE_CONFIG,
        Kind::Smtp => SMTP_CONFIG,
        Kind::Webhook => WEBHOOK_CONFIG,
        Kind::Mcp => MCP_CONFIG,
    };
    check_fields("config", config, rules, errs);
    let bad_fields: BTreeSet<String> = errs.errors()[before..]
        .iter()
        .map(|e| e.field.clone())
        .collect();
    let ok = |f: &str| !bad_fields.contains(&format!("config.{f}"));
    let set_default = |config: &mut Map<String, Value>, f: &str, v: Value| {
        config.entry(f.to_owned()).or_insert(v);
    };
    match kind {
        Kind::Http => {
            if !base_url_from_token {
                require(config, "config", "base_url", errs, "");
            }
            set_default(config, "timeout_ms", 30_000.into());
            set_default(config, "retries", 2.into());
            set_default(config, "backoff_ms", 250.into());
        }
        Kind::Database => {
            require(config, "config", "driver", errs, "");
            let driver = config
                .get("driver")
                .and_then(Value::as_str)
                .filter(|_| ok("driver"));
            require(
                config,
                "config",
                "database",
                errs,
                if driver == Some("sqlite") {
                    " (the file path)"
                } else {
                    ""
                },
            );
            match driver {
                Some("sqlite") => {
                    for f in ["host", "port", "username", "ssl", "ssl_ca"] {
                        if config.contains_key(f) {
                            errs.push(format!("config.{f}"), "is not used by the sqlite driver");
                        }
                    }
                }
                Some(d) => {
                    require(config, "config", "host", errs, "");
                    require(config, "config", "username", errs, "");
                    let port = match d {
                        "postgresql" => 5432,
                        "mysql" => 3306,
                        _ => 1433,
                    };
                    set_default(config, "port", port.into());
                    let local = config
                        .get("host")
                        .and_then(Value::as_str)
                        .is_some_and(is_local_host);
                    set_default(config, "ssl", (!local).into());
                }
                None => {}
            }
        }
        Kind::Smtp => {
            require(config, "config", "host", errs, "");
            require(config, "config", "from_address", errs, "");
            require(
                config,
                "config",
                "encryption",
                errs,
                " (starttls, tls or none)",
            );
            if let Some(enc) = config
                .get("encryption")
                .and_then(Value::as_str)
                .filter(|_| ok("encryption"))
            {
                let port = match enc {
                    "tls" => 465,
                    "none" => 25,
                    _ => 587,
                };
                set_default(config, "port", port.into());
            }
        }
        Kind::Webhook => {
            require(config, "config", "url", errs, "");
            set_default(config, "method", "POST".into());
        }
        Kind::Mcp => {
            let has_url = config.contains_key("server_url");
            let has_cmd = config.contains_key("command");
            match (has_url, has_cmd) {
                (false, false) => errs.push(
                    "config.server_url",
                    "is required (or `command` for a stdio server)",
                ),
                (true, true) => errs.push(
                    "config.command",
                    "give either server_url or command, not both",
                ),
                _ => {}
            }
            if config.contains_key("args") && !has_cmd {
                errs.push("config.args", "is only used with `command`");
            }
            let transport = config
                .get("transport")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match (transport.as_deref(), has_cmd) {
                (Some("stdio"), false) if has_url => {
                    errs.push("config.transport", "stdio needs `command`, not server_url")
                }
                (Some(t), true) if t != "stdio" && ok("transport") => {
                    errs.push("config.transport", "a `command` server speaks stdio")
                }
                (None, true) => set_default(config, "transport", "stdio".into()),
                (None, false) => set_default(config, "transport", "streamable_http".into()),
                _ => {}
            }
            set_default(config, "timeout_ms", 30_000.into());
        }
    }
}

fn check_auth(
    kind: Kind,
    auth_type: AuthType,
    auth: &mut Map<String, Value>,
    config: &Map<String, Value>,
    errs: &mut ValidationErrors,
) {
    let mut params = auth.clone();
    params.remove("type");
    let rules: &[Rule] = match auth_type {
        AuthType::ApiKey => &[
            r("in", Ty::Enum(&["header", "query", "cookie"])),
            r("name", Ty::Str),
            r("prefix", Ty::Str),
        ],
        AuthType::Basic if matches!(kind, Kind::Http | Kind::Mcp) => &[r("username", Ty::Str)],
        AuthType::Oauth2 => OAUTH2_AUTH,
        AuthType::Oauth2ClientCredentials => CLIENT_CREDENTIALS_AUTH,
        AuthType::Custom => &[r("inject", Ty::Object)],
        AuthType::AwsSigv4 => &[r("region", Ty::Str), r("service", Ty::Str)],
        _ => &[],
    };
    if auth_type == AuthType::Custom {
        // `inject` is an array of rules; checked separately below.
        let inject = params.remove("inject");
        check_fields("auth", &mut params, rules, errs);
        if let Some(inject) = inject {
            params.insert("inject".into(), inject);
        }
    } else {
        check_fields("auth", &mut params, rules, errs);
    }
    let has_app = params.get("app").is_some_and(|v| !v.is_null());
    match auth_type {
        AuthType::ApiKey => {
            let location = params
                .get("in")
                .and_then(Value::as_str)
                .unwrap_or("header")
                .to_owned();
            params
                .entry("in")
                .or_insert(Value::String(location.clone()));
            let default_name = if location == "header" {
                "X-API-Key"
            } else {
                "api_key"
            };
            params
                .entry("name")
                .or_insert(Value::String(default_name.into()));
            if location == "header"
                && let Some(n) = params.get("name").and_then(Value::as_str)
            {
                let valid = n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !valid {
                    errs.push("auth.name", "must be a valid HTTP header name");
                }
            }
        }
        AuthType::Basic if matches!(kind, Kind::Http | Kind::Mcp) => {
            require(&params, "auth", "username", errs, " for basic auth");
        }
        AuthType::Basic if kind == Kind::Smtp => {
            require(config, "config", "username", errs, " for basic auth");
        }
        AuthType::Oauth2 => {
            if !has_app {
                require(
                    &params,
                    "auth",
                    "authorization_url",
                    errs,
                    " unless `app` names an OAuth app",
                );
                require(
                    &params,
                    "auth",
                    "token_url",
                    errs,
                    " unless `app` names an OAuth app",
                );
            }
            params.entry("pkce").or_insert(Value::Bool(true));
        }
        AuthType::Oauth2ClientCredentials if !has_app => {
            require(
                &params,
                "auth",
                "token_url",
                errs,
                " unless `app` names an OAuth app",
            );
        }
        AuthType::Custom => match params.get("inject") {
            None => errs.push(
                "auth.inject",
                "is required: a list of {in, name, template} rules",
            ),
            Some(v) => check_inject_rules(v, errs),
        },
        AuthType::AwsSigv4 => {
            require(&params, "auth", "region", errs, "");
            require(&params, "auth", "service", errs, "");
        }
        AuthType::None
            if kind == Kind::Database
                && config
                    .get("driver")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d != "sqlite") =>
        {
            errs.push(
                "auth.type",
                "network databases use basic auth (username and password)",
            );
        }
        _ => {}
    }
    let ty = auth.get("type").cloned().unwrap_or(Value::Null);
    *auth = params;
    auth.insert("type".into(), ty);
}

fn check_inject_rules(value: &Value, errs: &mut ValidationErrors) {
    let Some(items) = value.as_array().filter(|a| !a.is_empty()) else {
        errs.push(
            "auth.inject",
            "must be a non-empty array of {in, name, template} rules",
        );
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("auth.inject[{i}]");
        let Some(obj) = item.as_object() else {
            errs.push(path, "must be an object {in, name, template}");
            continue;
        };
        match obj.get("in").and_then(Value::as_str) {
            Some("header" | "query" | "cookie" | "body") => {}
            _ => errs.push(
                format!("{path}.in"),
                "must be one of header, query, cookie, body",
            ),
        }
        if obj
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errs.push(format!("{path}.name"), "is required");
        }
        match obj.get("template").and_then(Value::as_str) {
            Some(t) if !t.contains(['\r', '\n']) => {}
            _ => errs.push(
                format!("{path}.template"),
                "must be a string like \"Token ${secrets.api_key}\"",
            ),
        }
        if let Some(k) = obj
            .keys()
            .find(|k| !["in", "name", "template"].contains(&k.as_str()))
        {
            errs.push(
                format!("{path}.{k}"),
                "unknown field; expected in, name, template",
            );
        }
    }
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

fn check_custom_templates(
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

#[cfg(test)]
mod tests;
