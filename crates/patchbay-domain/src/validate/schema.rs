//! JSON Schemas of the connection bodies validation accepts, written from the same rule tables
//! (`config::config_rules`, `auth::auth_rules`, `secrets::secret_spec`): one schema per kind,
//! case (a SQLite file or a network database, a server URL or a command, …), auth type and
//! provider. The served OpenAPI document lists them as the `oneOf` of `POST /v1/connections`,
//! so what a schema admits is what the server accepts, and the reverse.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::SECRET_MAX_CHARS;
use super::auth::{allowed_auth, auth_rules};
use super::config::config_rules;
use super::fields::{STR_MAX, Ty};
use super::secrets::secret_spec;
use crate::connection::{AuthType, Kind};
use crate::names::{
    HEADER_VALUE_PATTERN, HTTP_URL_PATTERN, SECRET_NAME_PATTERN, TEXT_PATTERN, TOKEN_PATTERN,
};
use crate::spec::{DatabaseDriver, FileProtocol, InjectLocation, KeyLocation, McpTransportName};

/// What a catalog provider adds to a body of one kind, as far as what is accepted goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProviderFill {
    /// The kind may be left out: the provider serves only this one.
    pub kind_implied: bool,
    /// `config` fields the provider fills when the body leaves them out (a field sent as
    /// `null` is not filled).
    pub fills: BTreeSet<String>,
    /// The driver it fills is SQLite's.
    pub fills_sqlite: bool,
    /// Host patterns (`*.neon.tech`) a database's host must match, in any case.
    pub host_patterns: Vec<String>,
    /// The MCP server it fills when the body names neither `server_url` nor `command`.
    pub mcp: Option<McpFill>,
    /// Secret field → the prefixes its literal values start with.
    pub secret_formats: BTreeMap<String, Vec<String>>,
    /// An `oauth2` connection may leave `base_url` out: the token answer names it.
    pub base_url_from_token: bool,
    /// OAuth apps can be registered for it, so `auth.app` may name one.
    pub oauth_apps: bool,
}

/// How a provider's MCP server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum McpFill {
    Url,
    Command,
}

/// How a field of a body object may appear.
#[derive(Clone, Copy, PartialEq)]
enum Presence {
    /// Given, and not `null`.
    Required,
    /// Absent, `null` (the same as absent) or given.
    Optional,
    /// Absent (the provider fills it) or given; `null` would leave it empty.
    Filled,
    /// Absent or `null` only.
    Empty,
    /// Given as `null` (absent, the provider would fill it).
    NullGiven,
    /// Not even `null`: the key itself decides.
    Absent,
}

/// An object schema being put together; unknown properties are refused.
#[derive(Clone, Default)]
struct Obj {
    props: Map<String, Value>,
    required: BTreeSet<String>,
}

fn nullable(s: Value) -> Value {
    json!({"anyOf": [s, {"type": "null"}]})
}

impl Obj {
    fn set(&mut self, name: &str, schema: Value, presence: Presence) {
        self.required.remove(name);
        let schema = match presence {
            Presence::Required => {
                self.required.insert(name.to_owned());
                schema
            }
            Presence::Filled => schema,
            Presence::Optional => nullable(schema),
            Presence::Empty => json!({"type": "null"}),
            Presence::NullGiven => {
                self.required.insert(name.to_owned());
                json!({"type": "null"})
            }
            Presence::Absent => {
                self.props.remove(name);
                return;
            }
        };
        self.props.insert(name.to_owned(), schema);
    }

    fn has_required(&self) -> bool {
        !self.required.is_empty()
    }

    fn schema(&self) -> Value {
        let mut s =
            json!({"type": "object", "properties": self.props, "additionalProperties": false});
        if self.has_required() {
            s["required"] = json!(self.required);
        }
        s
    }
}

/// Rust's `char::is_whitespace`, as a character-class body.
const WHITESPACE: &str =
    r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A path as `Ty::UrlPath` takes it: `/`, then no spaces or control characters.
pub(super) const URL_PATH_PATTERN: &str = r"^/[^\x00-\x20\x7f-\x9f]*$";

/// A bucket name as `Ty::Bucket` takes it (its length is the schema's bounds).
pub(super) const BUCKET_PATTERN: &str =
    r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$";

/// An origin as `Ty::Origin` takes it (a narrower form of [`HTTP_URL_PATTERN`]).
pub(super) const ORIGIN_PATTERN: &str =
    r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)*(:[0-9]{1,4})?/?$";

/// A key prefix as `Ty::KeyPrefix` takes it.
pub(super) const KEY_PREFIX_PATTERN: &str =
    r"^[A-Za-z0-9!_*'()-][A-Za-z0-9!_.*'()-]*(?:/[A-Za-z0-9!_*'()-][A-Za-z0-9!_.*'()-]*)*/?$";

/// A directory as `Ty::DirPath` takes it.
pub(super) const DIR_PATH_PATTERN: &str = concat!(
    r"^(?:/|/?(?:(?:[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.\.[^/\\\x00-\x1f\x7f-\x9f]+)/)*",
    r"(?:[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.\.[^/\\\x00-\x1f\x7f-\x9f]+)/?)$"
);

/// A host key as `Ty::HostKey` takes it.
pub(super) const HOST_KEY_PATTERN: &str = r"^(?:SHA256:[A-Za-z0-9+/]{43}=?|(?:ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) [A-Za-z0-9+/]{22,}={0,2}(?: [\x20-\x7e]*)?)$";

/// An environment variable's name.
pub(super) const ENV_NAME_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]*$";

/// A `whsec_` signing secret: base64 (padded, canonical) of 24 to 64 bytes.
pub(super) const WHSEC_PATTERN: &str = concat!(
    r"^whsec_(?:",
    r"(?:[A-Za-z0-9+/]{4}){8}",
    r"|(?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/][AQgw]==)",
    r"|(?:[A-Za-z0-9+/]{4}){21}[A-Za-z0-9+/][AQgw]==",
    r")$"
);

/// `s` matched in any ASCII case, each letter as a two-letter class.
fn any_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                escape(&c.to_string())
            }
        })
        .collect()
}

/// `s` as a literal in a pattern.
pub fn escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if r"\^$.|?*+()[]{}/-".contains(c) {
                format!(r"\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Header names a connection may not set (`fields::check_headers`).
pub(super) fn reserved_header_pattern() -> String {
    let names = ["authorization", "proxy-authorization", "cookie"]
        .map(any_case)
        .join("|");
    format!("^(?:{names}|{}.*)$", any_case("patchbay-"))
}

fn string(min: usize, max: usize, pattern: &str) -> Value {
    json!({"type": "string", "minLength": min, "maxLength": max, "pattern": pattern})
}

/// The schema of a value of type `ty`.
fn ty_schema(ty: Ty) -> Value {
    match ty {
        Ty::Url => json!({"type": "string", "pattern": HTTP_URL_PATTERN}),
        Ty::Str => string(1, STR_MAX, TEXT_PATTERN),
        Ty::Int(min, max) => json!({"type": "integer", "minimum": min, "maximum": max}),
        Ty::Bool => json!({"type": "boolean"}),
        Ty::Headers => json!({
            "type": "object",
            "propertyNames": {"pattern": TOKEN_PATTERN, "not": {"pattern": reserved_header_pattern()}},
            "additionalProperties": {"type": "string", "pattern": HEADER_VALUE_PATTERN},
        }),
        Ty::Enum(options) => json!({"type": "string", "enum": options}),
        Ty::Email => crate::names::email_schema(),
        Ty::UrlPath => json!({"type": "string", "pattern": URL_PATH_PATTERN}),
        Ty::StrList => json!({"type": "array", "items": {"type": "string"}}),
        Ty::Env => json!({
            "type": "object",
            "propertyNames": {"pattern": ENV_NAME_PATTERN},
            "additionalProperties": {"type": "string", "pattern": r"^[^\x00]*$"},
        }),
        Ty::Object => json!({"type": "object"}),
        Ty::Pem => json!({"type": "string", "pattern": "-----BEGIN CERTIFICATE-----"}),
        Ty::Origin => json!({"type": "string", "pattern": ORIGIN_PATTERN}),
        Ty::Bucket => string(3, 63, BUCKET_PATTERN),
        Ty::Region => string(1, 32, "^[a-z0-9-]+$"),
        Ty::KeyPrefix => string(1, 512, KEY_PREFIX_PATTERN),
        Ty::DirPath => string(1, 1024, DIR_PATH_PATTERN),
        Ty::HostKey => string(1, 16_384, HOST_KEY_PATTERN),
        Ty::Scopes => json!({"anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string", "minLength": 1, "pattern": format!("^[^{WHITESPACE}]+$")}},
        ]}),
    }
}

/// An object of `rules`' fields, each optional.
fn fields_obj(rules: &[super::fields::Rule]) -> Obj {
    let mut o = Obj::default();
    for rule in rules {
        o.set(rule.name, ty_schema(rule.ty), Presence::Optional);
    }
    o
}

fn rule_schema(rules: &[super::fields::Rule], name: &str) -> Value {
    rules
        .iter()
        .find(|r| r.name == name)
        .map(|r| ty_schema(r.ty))
        .unwrap_or(Value::Null)
}

/// One case of a kind's `config`: its fields and the auth types it takes, the first the
/// default.
struct Case {
    title: &'static str,
    config: Obj,
    auths: Vec<AuthType>,
    /// An SMTP user name is set (basic auth needs one, and then a password).
    smtp_user: bool,
    /// Secrets are the environment of a stdio server (without credentials of an auth type).
    env_secrets: bool,
}

fn cases(kind: Kind, fill: &ProviderFill) -> Vec<Case> {
    let rules = config_rules(kind);
    let base = || fields_obj(rules);
    // A required field the provider fills may be left out, but not sent as `null`; an
    // optional one it fills may be either (`null` keeps the kind's default).
    let presence = |f: &str| {
        if fill.fills.contains(f) {
            Presence::Filled
        } else {
            Presence::Required
        }
    };
    let case = |title, config, auths: &[AuthType]| Case {
        title,
        config,
        auths: auths.to_vec(),
        smtp_user: false,
        env_secrets: false,
    };
    let all_auths: Vec<AuthType> = allowed_auth(kind).to_vec();
    match kind {
        Kind::Http => {
            let mut c = base();
            c.set("base_url", ty_schema(Ty::Url), presence("base_url"));
            vec![case("", c, &all_auths)]
        }
        Kind::Webhook => {
            let mut c = base();
            c.set("url", ty_schema(Ty::Url), Presence::Required);
            vec![case("", c, &all_auths)]
        }
        Kind::Database => {
            let driver = rule_schema(rules, "driver");
            let network: Vec<&str> = DatabaseDriver::ALL
                .iter()
                .filter(|d| **d != DatabaseDriver::Sqlite)
                .map(|d| d.as_str())
                .collect();
            let mut out = Vec::new();
            // A SQLite file: no server fields, which a provider filling them rules out.
            if !(fill.fills.contains("port") || fill.fills.contains("ssl")) {
                let mut c = base();
                let sqlite = json!({"type": "string", "enum": ["sqlite"]});
                let driver_presence = if fill.fills_sqlite {
                    Presence::Filled
                } else {
                    Presence::Required
                };
                c.set("driver", sqlite, driver_presence);
                c.set("database", ty_schema(Ty::Str), Presence::Required);
                for f in ["host", "port", "username", "ssl", "ssl_ca"] {
                    c.set(f, Value::Null, Presence::Empty);
                }
                out.push(case("a SQLite file", c, &[AuthType::None, AuthType::Basic]));
            }
            let mut c = base();
            let mut network_driver = driver.clone();
            network_driver["enum"] = json!(network);
            let driver_presence = if fill.fills.contains("driver") && !fill.fills_sqlite {
                Presence::Filled
            } else {
                Presence::Required
            };
            c.set("driver", network_driver, driver_presence);
            c.set("database", ty_schema(Ty::Str), Presence::Required);
            let mut host = ty_schema(Ty::Str);
            if !fill.host_patterns.is_empty() {
                let hosts: Vec<String> = fill
                    .host_patterns
                    .iter()
                    .map(|p| match p.strip_prefix("*.") {
                        Some(domain) => format!(".*\\.{}", any_case(domain)),
                        None => any_case(p),
                    })
                    .collect();
                host["allOf"] = json!([{"pattern": format!("^(?:{})$", hosts.join("|"))}]);
            }
            c.set("host", host, Presence::Required);
            c.set("username", ty_schema(Ty::Str), Presence::Required);
            out.push(case("a database server", c, &[AuthType::Basic]));
            out
        }
        Kind::Smtp => {
            let mut c = base();
            c.set("host", ty_schema(Ty::Str), presence("host"));
            c.set(
                "encryption",
                rule_schema(rules, "encryption"),
                presence("encryption"),
            );
            c.set("from_address", ty_schema(Ty::Email), Presence::Required);
            let mut user = c.clone();
            user.set("username", ty_schema(Ty::Str), presence("username"));
            let mut anonymous = c;
            anonymous.set(
                "username",
                Value::Null,
                if fill.fills.contains("username") {
                    Presence::NullGiven
                } else {
                    Presence::Empty
                },
            );
            vec![
                Case {
                    title: "with a user name",
                    config: user,
                    auths: vec![AuthType::Basic, AuthType::None],
                    smtp_user: true,
                    env_secrets: false,
                },
                case("without a user name", anonymous, &[AuthType::None]),
            ]
        }
        Kind::Mcp => {
            let transport = |t: &[McpTransportName]| json!({"type": "string", "enum": t.iter().map(|t| t.as_str()).collect::<Vec<_>>()});
            let mut url = base();
            url.set("server_url", ty_schema(Ty::Url), Presence::Required);
            for f in ["command", "args", "env"] {
                url.set(f, Value::Null, Presence::Empty);
            }
            url.set(
                "transport",
                transport(&[McpTransportName::StreamableHttp, McpTransportName::Sse]),
                Presence::Optional,
            );
            let mut command = base();
            command.set("command", ty_schema(Ty::Str), Presence::Required);
            command.set("server_url", Value::Null, Presence::Empty);
            command.set(
                "transport",
                transport(&[McpTransportName::Stdio]),
                Presence::Optional,
            );
            // The provider's server: its case, with neither key given (not even as `null`).
            let filled = fill.mcp.map(|m| {
                let mut filled = match m {
                    McpFill::Url => url.clone(),
                    McpFill::Command => command.clone(),
                };
                filled.set("server_url", Value::Null, Presence::Absent);
                filled.set("command", Value::Null, Presence::Absent);
                filled
            });
            // A stdio server takes no HTTP credentials: its secrets are its environment.
            let stdio = |title, config| Case {
                env_secrets: true,
                ..case(title, config, &[AuthType::None])
            };
            let mut out = vec![
                case("a server URL", url, &all_auths),
                stdio("a command", command),
            ];
            match (fill.mcp, filled) {
                (Some(McpFill::Command), Some(filled)) => {
                    out.push(stdio("the provider's server", filled))
                }
                (_, Some(filled)) => out.push(case("the provider's server", filled, &all_auths)),
                _ => {}
            }
            out
        }
        Kind::Storage => {
            let mut c = base();
            c.set("bucket", ty_schema(Ty::Bucket), presence("bucket"));
            vec![case("", c, &all_auths)]
        }
        Kind::FileTransfer => {
            let protocol = |p: FileProtocol| json!({"type": "string", "enum": [p.as_str()]});
            let server = |p: FileProtocol| {
                let mut c = base();
                c.set("protocol", protocol(p), presence("protocol"));
                c.set("host", ty_schema(Ty::Str), presence("host"));
                c.set("username", ty_schema(Ty::Str), Presence::Required);
                if p != FileProtocol::Sftp {
                    c.set("host_key", Value::Null, Presence::Empty);
                }
                if p != FileProtocol::Ftps {
                    c.set("tls_ca", Value::Null, Presence::Empty);
                }
                c
            };
            vec![
                case("SFTP", server(FileProtocol::Sftp), &all_auths),
                case("FTPS", server(FileProtocol::Ftps), &[AuthType::Basic]),
                case("FTP", server(FileProtocol::Ftp), &[AuthType::Basic]),
            ]
        }
    }
}

/// `auth`: its type (optional when it is the case's default) and parameters; `app` names an
/// OAuth app when `with_app`.
fn auth_schema(kind: Kind, auth_type: AuthType, default: bool, with_app: bool) -> Obj {
    let rules = auth_rules(kind, auth_type);
    let mut o = fields_obj(rules);
    let ty = json!({"type": "string", "enum": [auth_type.as_str()]});
    o.set(
        "type",
        ty,
        if default {
            Presence::Optional
        } else {
            Presence::Required
        },
    );
    match auth_type {
        AuthType::Basic if o.props.contains_key("username") => {
            o.set("username", ty_schema(Ty::Str), Presence::Required);
        }
        // An HTTP connection's signing scope (a storage connection's is its config).
        AuthType::AwsSigv4 if o.props.contains_key("region") => {
            o.set("region", ty_schema(Ty::Region), Presence::Required);
            o.set("service", ty_schema(Ty::Region), Presence::Required);
        }
        AuthType::Oauth2 | AuthType::Oauth2ClientCredentials => {
            if with_app {
                o.set("app", ty_schema(Ty::Str), Presence::Required);
            } else {
                o.set("app", Value::Null, Presence::Empty);
                // An MCP server names its authorization server (MCP authorization).
                if kind != Kind::Mcp {
                    o.set("token_url", ty_schema(Ty::Url), Presence::Required);
                    if auth_type == AuthType::Oauth2 {
                        o.set("authorization_url", ty_schema(Ty::Url), Presence::Required);
                    }
                }
            }
        }
        AuthType::Custom => {
            let template = json!({"type": "string", "pattern": "^[^\\r\\n]*$"});
            let rule = |location: Value, name: Value| {
                json!({"type": "object", "required": ["in", "name", "template"],
                    "additionalProperties": false,
                    "properties": {"in": location, "name": name, "template": template}})
            };
            let others: Vec<&str> = InjectLocation::NAMES
                .iter()
                .copied()
                .filter(|l| *l != InjectLocation::Header.as_str())
                .collect();
            let inject = json!({"type": "array", "minItems": 1, "items": {"anyOf": [
                rule(json!({"type": "string", "enum": [InjectLocation::Header.as_str()]}),
                    json!({"type": "string", "pattern": TOKEN_PATTERN})),
                rule(json!({"type": "string", "enum": others}),
                    json!({"type": "string", "minLength": 1})),
            ]}});
            o.set("inject", inject, Presence::Required);
        }
        _ => {}
    }
    o
}

/// An API key's auth: the name is a header name when the key goes in a header (the default).
fn api_key_auth(o: &Obj) -> Value {
    let mut header = o.clone();
    header.set(
        "in",
        json!({"type": "string", "enum": [KeyLocation::Header.as_str()]}),
        Presence::Optional,
    );
    let mut name = ty_schema(Ty::Str);
    name["allOf"] = json!([{"pattern": TOKEN_PATTERN}]);
    header.set("name", name, Presence::Optional);
    let mut elsewhere = o.clone();
    let others: Vec<&str> = KeyLocation::NAMES
        .iter()
        .copied()
        .filter(|l| *l != KeyLocation::Header.as_str())
        .collect();
    elsewhere.set(
        "in",
        json!({"type": "string", "enum": others}),
        Presence::Required,
    );
    json!({"anyOf": [header.schema(), elsewhere.schema()]})
}

/// A secret field's value: a literal string (of the provider's format, if it has one) or a
/// reference to an organization secret.
fn secret_value(field: &str, formats: &BTreeMap<String, Vec<String>>, hmac: bool) -> Value {
    let min = usize::from(field != "password");
    let mut literal = json!({"type": "string", "minLength": min, "maxLength": SECRET_MAX_CHARS});
    if let Some(prefixes) = formats.get(field) {
        let alternatives: Vec<String> = prefixes.iter().map(|p| escape(p)).collect();
        literal["pattern"] = format!("^(?:{})[^{WHITESPACE}]*$", alternatives.join("|")).into();
        let shortest = prefixes.iter().map(String::len).min().unwrap_or(0);
        literal["minLength"] = (shortest + 1).max(min).into();
    }
    if hmac {
        literal["anyOf"] = json!([
            {"pattern": WHSEC_PATTERN},
            {"minLength": 16, "not": {"pattern": "^whsec_"}},
        ]);
    }
    let reference = json!({"type": "object", "required": ["ref"], "additionalProperties": false,
        "properties": {"ref": string(1, 128, SECRET_NAME_PATTERN)}});
    json!({"anyOf": [literal, reference]})
}

/// `secrets`: the fields the auth type takes.
fn secrets_schema(
    kind: Kind,
    auth_type: AuthType,
    with_app: bool,
    smtp_user: bool,
    fill: &ProviderFill,
) -> Obj {
    let mut auth = Map::new();
    if with_app {
        auth.insert("app".into(), "app".into());
    }
    let mut config = Map::new();
    if smtp_user {
        config.insert("username".into(), "user".into());
    }
    let spec = secret_spec(kind, auth_type, &auth, &config);
    let hmac = auth_type == AuthType::Hmac;
    let mut o = Obj::default();
    for f in spec.known() {
        let presence = if spec.required.contains(&f) {
            Presence::Required
        } else {
            Presence::Optional
        };
        o.set(&f, secret_value(&f, &fill.secret_formats, hmac), presence);
    }
    o
}

/// Secrets under any name `pattern` matches, outside Patchbay's own: a custom auth's
/// (secret names), a stdio server's (environment variables).
fn named_secrets(pattern: &str) -> Value {
    json!({"type": "object",
        "propertyNames": {"pattern": pattern, "maxLength": 128,
            "not": {"pattern": format!("^{}", escape(super::RESERVED_PREFIX))}},
        "additionalProperties": nullable(secret_value("", &BTreeMap::new(), false))})
}

/// An object property: required when it has required fields, else absent or `null` too.
fn part(body: &mut Obj, name: &str, schema: Value, required: bool) {
    body.set(
        name,
        schema,
        if required {
            Presence::Required
        } else {
            Presence::Optional
        },
    );
}

/// The `auth` an HTTP action or node may give instead of its connection's (of `kind`): `none`,
/// or `bearer`, `api_key` or `basic` with the organization secret that holds the credential
/// (`secret_ref`, or `tokenRef` when `secret_ref` is absent).
pub fn auth_override(kind: Kind) -> Value {
    let mut branches = Vec::new();
    for auth_type in [
        AuthType::None,
        AuthType::Bearer,
        AuthType::ApiKey,
        AuthType::Basic,
    ] {
        let o = auth_schema(kind, auth_type, false, false);
        let variants = if auth_type == AuthType::None {
            // The references are dropped unread.
            let mut o = o;
            o.set("secret_ref", json!({}), Presence::Filled);
            o.set("tokenRef", json!({}), Presence::Filled);
            vec![o]
        } else {
            let mut named = o.clone();
            named.set("secret_ref", json!({"type": "string"}), Presence::Required);
            named.set("tokenRef", json!({}), Presence::Filled);
            let mut other = o;
            other.set("tokenRef", json!({"type": "string"}), Presence::Required);
            vec![named, other]
        };
        for v in variants {
            branches.push(if auth_type == AuthType::ApiKey {
                api_key_auth(&v)
            } else {
                v.schema()
            });
        }
    }
    json!({"oneOf": branches})
}

/// The bodies of `POST /v1/connections` that create a connection of `kind` through
/// `provider` (its key and aliases; `None` for `custom` or no provider), one schema per case,
/// auth type and use of an OAuth app.
pub fn connection_bodies(
    kind: Kind,
    provider: Option<&[String]>,
    fill: &ProviderFill,
) -> Vec<Value> {
    let mut out = Vec::new();
    for case in cases(kind, fill) {
        for (i, &auth_type) in case.auths.iter().enumerate() {
            let apps: &[bool] = if auth_type.is_oauth() && fill.oauth_apps {
                &[false, true]
            } else {
                &[false]
            };
            for &with_app in apps {
                let mut config = case.config.clone();
                if auth_type == AuthType::Oauth2 && fill.base_url_from_token {
                    config.set("base_url", ty_schema(Ty::Url), Presence::Optional);
                }
                let auth = auth_schema(kind, auth_type, i == 0, with_app);
                let auth_value = if auth_type == AuthType::ApiKey {
                    api_key_auth(&auth)
                } else {
                    auth.schema()
                };
                let (secrets, secrets_required) = if auth_type == AuthType::Custom {
                    (named_secrets(SECRET_NAME_PATTERN), false)
                } else if case.env_secrets && auth_type == AuthType::None {
                    (named_secrets(ENV_NAME_PATTERN), false)
                } else {
                    let s = secrets_schema(kind, auth_type, with_app, case.smtp_user, fill);
                    (s.schema(), s.has_required())
                };
                let mut body = Obj::default();
                body.set("project", json!({"type": "string"}), Presence::Optional);
                body.set(
                    "name",
                    json!({"$ref": "#/components/schemas/Name"}),
                    Presence::Required,
                );
                let kind_schema = json!({"type": "string", "enum": [kind.as_str()]});
                body.set(
                    "kind",
                    kind_schema,
                    if fill.kind_implied {
                        Presence::Optional
                    } else {
                        Presence::Required
                    },
                );
                match provider {
                    None => body.set(
                        "provider",
                        json!({"type": "string", "enum": ["custom"]}),
                        Presence::Optional,
                    ),
                    Some(names) => body.set(
                        "provider",
                        json!({"type": "string", "enum": names}),
                        Presence::Required,
                    ),
                }
                part(&mut body, "config", config.schema(), config.has_required());
                part(&mut body, "auth", auth_value, auth.has_required());
                part(&mut body, "secrets", secrets, secrets_required);
                let mut title = format!("{kind}, {auth_type} auth");
                if !case.title.is_empty() {
                    title = format!("{kind} ({}), {auth_type} auth", case.title);
                }
                if with_app {
                    title.push_str(" through an OAuth app");
                }
                match provider {
                    Some(names) => title.push_str(&format!(", provider {}", names.join(" or "))),
                    None => title.push_str(", no provider"),
                }
                let mut schema = body.schema();
                schema["title"] = title.into();
                out.push(schema);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use secrecy::SecretString;
    use serde_json::{Value, json};

    use super::super::fields::{Ty, check_email, check_value};
    use super::super::secrets::check_webhook_secret;
    use super::*;

    fn re(pattern: &str) -> regex::Regex {
        regex::Regex::new(pattern).expect("a valid pattern")
    }

    fn accepts(ty: Ty, v: Value) -> bool {
        check_value(ty, &mut v.clone()).is_ok()
    }

    #[test]
    fn e_mail_paths_and_variable_names_match_as_they_are_checked() {
        // Each pattern of the schema, as validation reads it.
        let [email, local, domain] = [
            crate::names::EMAIL_PATTERN,
            crate::names::EMAIL_LOCAL_PATTERN,
            crate::names::EMAIL_DOMAIN_PATTERN,
        ]
        .map(re);
        let long = format!("{}@example.com", "a".repeat(65));
        for (s, ok) in [
            ("ops@example.com", true),
            ("first.last+tag@mail.example.co", true),
            ("o'brien{x}|y@x-1.example.org", true),
            (long.as_str(), false),
            ("é@ü.de", false),
            ("a@b.", false),
            ("a@b.c", false),
            ("a@b", false),
            ("a@.b", false),
            ("@b.c", false),
            ("a b@c.de", false),
            ("a@b@c.de", false),
            ("a..b@c.de", false),
            ("a@-b.de", false),
            ("a<@b.cd", false),
        ] {
            let schema = s.len() <= crate::names::EMAIL_MAX
                && email.is_match(s)
                && local.is_match(s)
                && domain.is_match(s);
            assert_eq!(schema, ok, "{s:?}");
            assert_eq!(check_email(s).is_ok(), ok, "{s:?}");
        }
        let path = re(URL_PATH_PATTERN);
        for s in ["/", "/a/b?c", "a", "/a b", "/\u{85}", "/é", "/\u{7f}", ""] {
            assert_eq!(path.is_match(s), accepts(Ty::UrlPath, json!(s)), "{s:?}");
        }
        let env = re(ENV_NAME_PATTERN);
        for s in ["A", "_a1", "1a", "a-b", "", "é"] {
            assert_eq!(
                env.is_match(s),
                accepts(Ty::Env, json!({ s: "v" })),
                "{s:?}"
            );
        }
    }

    #[test]
    fn header_names_and_values_match_as_they_are_checked() {
        let token = re(TOKEN_PATTERN);
        let reserved = re(&reserved_header_pattern());
        for name in [
            "X-A",
            "Authorization",
            "COOKIE",
            "proxy-Authorization",
            "Patchbay-Trace",
            "patchbay-",
            "authorizations",
            "x-patchbay-a",
            "a b",
        ] {
            let schema = token.is_match(name) && !reserved.is_match(name);
            assert_eq!(
                schema,
                accepts(Ty::Headers, json!({ name: "v" })),
                "{name:?}"
            );
        }
        let value = re(HEADER_VALUE_PATTERN);
        for v in ["a\tb", "é", "a\u{1}", "a\r\nb", "\u{7f}", "\u{85}", ""] {
            assert_eq!(
                value.is_match(v),
                accepts(Ty::Headers, json!({ "X-A": v })),
                "{v:?}"
            );
        }
    }

    #[test]
    fn whsec_secrets_match_as_they_are_checked() {
        let whsec = re(WHSEC_PATTERN);
        let engine = base64::engine::general_purpose::STANDARD;
        let check = |s: &str| check_webhook_secret(&SecretString::from(s.to_owned())).is_ok();
        for n in 0..=70 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let s = format!("whsec_{}", engine.encode(&bytes));
            assert_eq!(whsec.is_match(&s), check(&s), "{n} bytes");
            assert_eq!(check(&s), (24..=64).contains(&n), "{n} bytes");
            // The last character before the padding with bits the encoding leaves zero.
            if let Some(i) = s.find('=') {
                let mut odd = s.clone();
                odd.replace_range(i - 1..i, "B");
                assert_eq!(whsec.is_match(&odd), check(&odd), "{odd}");
            }
        }
    }

    #[test]
    fn provider_formats_take_a_value_longer_than_the_shortest_prefix() {
        let formats = BTreeMap::from([(
            "token".to_owned(),
            vec!["ghp_".to_owned(), "github_pat_".to_owned()],
        )]);
        let s = secret_value("token", &formats, false);
        let literal = &s["anyOf"][0];
        let pattern = re(literal["pattern"].as_str().unwrap());
        let min = literal["minLength"].as_u64().unwrap() as usize;
        for (v, ok) in [
            ("ghp_x", true),
            ("github_pat_", true),
            ("ghp_", false),
            ("ghp_a b", false),
            ("xghp_a", false),
        ] {
            assert_eq!(pattern.is_match(v) && v.chars().count() >= min, ok, "{v:?}");
        }
    }
}
