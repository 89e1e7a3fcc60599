//! Connection forms: the fields of each kind and auth type laid out from the domain's form
//! description (`patchbay_domain::validate::config_form` and friends) with labels, help and
//! examples, and a posted form turned back into the JSON body the API takes.

use std::collections::BTreeMap;

use patchbay_domain::connection::{Connection, SecretState};
use patchbay_domain::validate::{
    FormField, Input, auth_choices, auth_form, config_form, secret_form,
};
use patchbay_domain::{AuthType, Kind};
use serde_json::{Map, Value};

use super::session::Fields;

/// One input of a form, ready for `field.html`.
#[derive(Debug, Clone)]
pub struct FieldView {
    /// The form field's name: `config.host`, `auth.basic.username` (an auth method's fields
    /// are named by their method, so that without scripts every method's inputs can be on the
    /// page at once), `name`.
    pub name: String,
    /// The field in the API's body and its problem documents: `config.host`, `auth.username`.
    pub path: String,
    pub id: String,
    pub label: String,
    /// `text`, `url`, `email`, `number`, `select` or `textarea`.
    pub input: &'static str,
    pub value: String,
    /// A select's choices: `(value, label)`.
    pub options: Vec<(&'static str, &'static str)>,
    /// What a select's empty choice says (`None`: there is none, a value is needed).
    pub unset: Option<&'static str>,
    pub required: bool,
    pub help: Option<&'static str>,
    pub placeholder: String,
    pub error: Option<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// The ids of the help and error texts that exist.
    pub describedby: String,
}

/// One secret input: typed, never shown back.
#[derive(Debug, Clone)]
pub struct SecretView {
    /// `secrets.<method>.<field>`.
    pub name: String,
    /// `secrets.<field>`.
    pub path: String,
    pub id: String,
    pub label: String,
    pub required: bool,
    /// A value is stored: shown as "Saved ••••" with *Change*.
    pub saved: bool,
    /// The organization secret it names instead of a value, when it names one.
    pub reference: Option<String>,
    /// The organization secrets it may name (`{"ref": name}`) instead of a value.
    pub refs: Vec<String>,
    pub error: Option<String>,
    /// A value of several lines (a private key): a text area.
    pub multiline: bool,
}

/// Secrets written on several lines.
fn multiline(field: &str) -> bool {
    field == "private_key"
}

/// The inputs of one auth type.
#[derive(Debug, Clone)]
pub struct AuthView {
    pub ty: &'static str,
    pub label: &'static str,
    pub selected: bool,
    pub fields: Vec<FieldView>,
    pub secrets: Vec<SecretView>,
    pub oauth: bool,
}

/// Field errors by form field name (`config.host`).
pub type Errors = BTreeMap<String, String>;

/// `(help, example)` of a field.
fn help(kind: Kind, name: &str) -> (Option<&'static str>, &'static str) {
    match (kind, name) {
        (_, "base_url") => (
            Some("The API's root; every proxied path goes under it."),
            "https://api.example.com",
        ),
        (_, "headers") => (
            Some("Sent with every request, one Name: value per line."),
            "Accept: application/json",
        ),
        (_, "timeout_ms") => (Some("How long a call may take, in milliseconds."), "30000"),
        (_, "retries") => (Some("Retries of idempotent requests that failed."), "2"),
        (_, "backoff_ms") => (
            Some("The first wait between retries, in milliseconds."),
            "200",
        ),
        (_, "verify_path") => (Some("What a test requests, under the base URL."), "/user"),
        (_, "mcp_tools") => (
            Some("Offer the provider's operations as tools through the MCP gateway."),
            "",
        ),
        (Kind::Database, "driver") => (Some("The database server's kind."), ""),
        (Kind::Database, "host") => (None, "db.example.com"),
        (Kind::Database, "port") => (Some("Left empty: the driver's usual port."), "5432"),
        (Kind::Database, "database") => {
            (Some("The database's name (a file path for SQLite)."), "app")
        }
        (Kind::Database, "username") => (None, "app_user"),
        (Kind::Database, "ssl") => (
            Some("Connect over TLS. By default yes, unless the host is this machine."),
            "",
        ),
        (_, "pkce") => (
            Some("Proof Key for Code Exchange (S256). By default yes."),
            "",
        ),
        (Kind::Database, "ssl_ca") => (
            Some("The PEM certificate of the CA that signs the server's certificate."),
            "-----BEGIN CERTIFICATE-----",
        ),
        (_, "options") => (
            Some("Driver options, as a JSON object."),
            "{\"connect_timeout\": 5}",
        ),
        (Kind::Smtp, "host") => (None, "smtp.example.com"),
        (Kind::Smtp, "port") => (Some("Left empty: 587 for STARTTLS, 465 for TLS."), "587"),
        (Kind::Smtp, "username") => (None, "mailer@example.com"),
        (Kind::Smtp, "from_address") => (None, "noreply@example.com"),
        (Kind::Smtp, "encryption") => (None, ""),
        (Kind::Webhook, "url") => (None, "https://hooks.example.com/in"),
        (Kind::Mcp, "server_url") => (
            Some("The server's Streamable HTTP or SSE endpoint (or give a command)."),
            "https://mcp.example.com/mcp",
        ),
        (Kind::Mcp, "command") => (
            Some("A stdio server's program; the operator must allow it (--allow-command)."),
            "npx",
        ),
        (Kind::Mcp, "args") => (Some("One argument per line."), "-y"),
        (Kind::Mcp, "env") => (Some("Environment variables, one NAME: value per line."), ""),
        (Kind::Mcp, "allowed_tools") => (
            Some("Only these tools are offered (one per line); empty: all of them."),
            "",
        ),
        (Kind::Storage, "bucket") => (None, "my-bucket"),
        (Kind::Storage, "region") => (
            Some("The bucket's region. By default us-east-1."),
            "eu-west-1",
        ),
        (Kind::Storage, "endpoint") => (
            Some("An S3-compatible service's address; empty for Amazon S3."),
            "https://s3.example.com",
        ),
        (Kind::Storage, "prefix") => (
            Some("The connection reaches only keys under this prefix; empty: the whole bucket."),
            "invoices/",
        ),
        (Kind::Storage, "path_style") => (
            Some(
                "Address the bucket in the path rather than the host name. By default yes for a given endpoint.",
            ),
            "",
        ),
        (Kind::FileTransfer, "protocol") => (
            Some(
                "SFTP (over SSH), FTPS (FTP with explicit TLS), or plain FTP where the operator allows it.",
            ),
            "",
        ),
        (Kind::FileTransfer, "host") => (None, "files.example.com"),
        (Kind::FileTransfer, "port") => {
            (Some("Left empty: 22 for SFTP, 21 for FTPS and FTP."), "22")
        }
        (Kind::FileTransfer, "username") => (None, "transfer"),
        (Kind::FileTransfer, "base_dir") => (
            Some("Every path stays under this directory; empty: the login directory."),
            "/srv/exports",
        ),
        (Kind::FileTransfer, "host_key") => (
            Some(
                "SFTP: the server's key as known_hosts lists it, or its SHA256: fingerprint; empty: the key of the first connection is pinned.",
            ),
            "ssh-ed25519 AAAA…",
        ),
        (Kind::FileTransfer, "tls_ca") => (
            Some(
                "FTPS: the PEM certificate of the CA that signs the server's certificate; empty: the system's.",
            ),
            "-----BEGIN CERTIFICATE-----",
        ),
        (_, "region") => (Some("The AWS region requests are signed for."), "us-east-1"),
        (_, "service") => (Some("The AWS service's signing name."), "execute-api"),
        (_, "in") => (None, ""),
        (_, "name") => (
            Some("The header or query parameter carrying the key."),
            "X-API-Key",
        ),
        (_, "prefix") => (Some("Written before the key, such as Token."), ""),
        (_, "username") => (None, "user"),
        (_, "app") => (
            Some("An OAuth app registered under Settings; instead of a client ID here."),
            "",
        ),
        (_, "scopes") => (Some("One per line, or separated by spaces."), "read:user"),
        (_, "authorization_url") => (None, "https://auth.example.com/authorize"),
        (_, "token_url") => (None, "https://auth.example.com/token"),
        (_, "authorization_params" | "token_params") => (
            Some("Extra parameters, as a JSON object."),
            "{\"audience\": \"api\"}",
        ),
        (_, "inject") => (
            Some("Rules as a JSON array of {in, name, template}."),
            "[{\"in\": \"header\", \"name\": \"X-Key\", \"template\": \"${secrets.api_key}\"}]",
        ),
        _ => (None, ""),
    }
}

/// `base_url` → "Base URL".
pub fn label(name: &str) -> String {
    let words: Vec<String> = name
        .split('_')
        .enumerate()
        .map(|(i, w)| match w {
            "url" | "ca" | "ssl" | "tls" | "mcp" | "api" | "pkce" | "id" | "smtp" => {
                w.to_uppercase()
            }
            "ms" => "(ms)".into(),
            _ if i == 0 => {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            }
            _ => w.to_owned(),
        })
        .collect();
    words.join(" ")
}

pub fn auth_label(t: AuthType) -> &'static str {
    match t {
        AuthType::None => "No authentication",
        AuthType::ApiKey => "API key",
        AuthType::Bearer => "Bearer token",
        AuthType::Basic => "User name and password",
        AuthType::Oauth2 => "OAuth 2.0 (sign in at the provider)",
        AuthType::Oauth2ClientCredentials => "OAuth 2.0 client credentials",
        AuthType::Custom => "Custom headers or parameters",
        AuthType::AwsSigv4 => "AWS Signature V4",
        AuthType::Hmac => "Signing secret (HMAC)",
        AuthType::SshKey => "SSH private key",
    }
}

fn id_of(name: &str) -> String {
    format!("f-{}", name.replace(['.', '_'], "-"))
}

/// A value as a form shows it.
fn shown(v: Option<&Value>, input: Input) -> String {
    match (v, input) {
        (None | Some(Value::Null), _) => String::new(),
        (Some(Value::String(s)), _) => s.clone(),
        (Some(Value::Array(items)), Input::Lines | Input::Words) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("\n"),
        (Some(Value::Object(m)), Input::Pairs) => m
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}: {}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (Some(other), _) => other.to_string(),
    }
}

fn view(
    kind: Kind,
    prefix: &str,
    method: Option<AuthType>,
    f: &FormField,
    values: &Map<String, Value>,
    errors: &Errors,
) -> FieldView {
    let path = format!("{prefix}.{}", f.name);
    let name = match method {
        Some(t) => format!("{prefix}.{}.{}", t.as_str(), f.name),
        None => path.clone(),
    };
    let id = id_of(&name);
    let (help, example) = help(kind, f.name);
    let (input, options, min, max) = match f.input {
        Input::Url => ("url", vec![], None, None),
        Input::Email => ("email", vec![], None, None),
        Input::Number { min, max } => ("number", vec![], Some(min), Some(max)),
        Input::Switch => ("select", vec![("true", "Yes"), ("false", "No")], None, None),
        Input::Choice(names) => (
            "select",
            names.iter().map(|n| (*n, *n)).collect(),
            None,
            None,
        ),
        Input::Lines | Input::Words | Input::Pairs | Input::Json | Input::Pem => {
            ("textarea", vec![], None, None)
        }
        Input::Text | Input::Path => ("text", vec![], None, None),
    };
    let unset = (input == "select" && !f.required).then_some("(default)");
    let error = errors.get(&path).cloned();
    let mut described = Vec::new();
    if help.is_some() {
        described.push(format!("{id}-help"));
    }
    if error.is_some() {
        described.push(format!("{id}-error"));
    }
    FieldView {
        label: label(f.name),
        input,
        value: shown(values.get(f.name), f.input),
        options,
        unset,
        required: f.required,
        help,
        placeholder: example.to_owned(),
        error,
        min,
        max,
        describedby: described.join(" "),
        name,
        path,
        id,
    }
}

/// The name field at the top of every connection form.
pub fn name_field(value: &str, errors: &Errors) -> FieldView {
    let error = errors.get("name").cloned();
    FieldView {
        name: "name".into(),
        path: "name".into(),
        id: "f-name".into(),
        label: "Name".into(),
        input: "text",
        value: value.to_owned(),
        options: vec![],
        unset: None,
        required: true,
        help: Some(
            "Letters, digits, spaces and _ - . : ( ) @ + /, unique in the project. Workflows refer to it by name.",
        ),
        placeholder: "github-prod".into(),
        describedby: if error.is_some() {
            "f-name-help f-name-error"
        } else {
            "f-name-help"
        }
        .into(),
        error,
        min: None,
        max: None,
    }
}

pub fn config_views(kind: Kind, values: &Map<String, Value>, errors: &Errors) -> Vec<FieldView> {
    config_form(kind)
        .iter()
        .map(|f| view(kind, "config", None, f, values, errors))
        .collect()
}

pub fn auth_views(
    kind: Kind,
    selected: AuthType,
    values: &Map<String, Value>,
    stored: &BTreeMap<String, SecretState>,
    refs: &[String],
    errors: &Errors,
) -> Vec<AuthView> {
    auth_choices(kind)
        .into_iter()
        .map(|t| {
            let none = Errors::new();
            let (mine, errors) = if t == selected {
                (values, errors)
            } else {
                (&Map::new(), &none)
            };
            AuthView {
                ty: t.as_str(),
                label: auth_label(t),
                selected: t == selected,
                fields: auth_form(kind, t)
                    .iter()
                    .map(|f| view(kind, "auth", Some(t), f, mine, errors))
                    .collect(),
                secrets: secret_form(kind, t)
                    .into_iter()
                    .map(|(field, required)| {
                        let name = format!("secrets.{}.{field}", t.as_str());
                        let path = format!("secrets.{field}");
                        let kept = stored.get(&field).filter(|_| t == selected);
                        SecretView {
                            id: id_of(&name),
                            label: label(&field),
                            required,
                            saved: kept.is_some_and(|s| s.set),
                            reference: kept
                                .and_then(|s| s.reference.as_ref())
                                .map(|r| r.to_string()),
                            refs: refs.to_vec(),
                            error: errors.get(&path).cloned(),
                            multiline: multiline(&field),
                            name,
                            path,
                        }
                    })
                    .collect(),
                oauth: t == AuthType::Oauth2,
            }
        })
        .collect()
}

/// A posted field's value as JSON: `None` when left empty.
fn parsed(input: Input, raw: &str) -> Result<Option<Value>, String> {
    let raw = raw.trim_end_matches(['\r', '\n']);
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(match input {
        Input::Number { .. } => Value::from(
            raw.trim()
                .parse::<i64>()
                .map_err(|_| "must be a whole number".to_owned())?,
        ),
        Input::Switch => match raw.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err("must be yes or no".into()),
        },
        Input::Lines => Value::Array(
            raw.lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty())
                .map(|l| Value::String(l.to_owned()))
                .collect(),
        ),
        Input::Words => Value::Array(
            raw.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Input::Pairs => {
            let mut m = Map::new();
            for (i, line) in raw
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let (k, v) = line
                    .split_once(':')
                    .ok_or_else(|| format!("line {} must be Name: value", i + 1))?;
                m.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
            }
            Value::Object(m)
        }
        Input::Json => {
            serde_json::from_str::<Value>(raw).map_err(|e| format!("is not valid JSON ({e})"))?
        }
        Input::Url | Input::Text | Input::Email | Input::Path | Input::Pem | Input::Choice(_) => {
            Value::String(raw.trim().to_owned())
        }
    }))
}

/// What a posted connection form says: the parts of the API's body.
#[derive(Debug, Default)]
pub struct Posted {
    pub name: String,
    pub auth_type: Option<AuthType>,
    pub config: Map<String, Value>,
    pub auth: Map<String, Value>,
    pub secrets: Map<String, Value>,
}

/// Reads a connection form of `kind`. On create (`before` is `None`) fields left empty (a
/// yes/no left to its default included) are left out; on edit they become `null` (removed, so
/// the default applies), the stored auth parameters the chosen type does not take are
/// removed, and an empty secret keeps the stored one. Errors name the form fields that could not be read.
pub fn read(fields: &Fields, kind: Kind, before: Option<&Connection>) -> (Posted, Errors) {
    let mut out = Posted {
        name: fields.text("name").trim().to_owned(),
        ..Posted::default()
    };
    let mut errors = Errors::new();
    let editing = before.is_some();
    for f in config_form(kind) {
        let name = format!("config.{}", f.name);
        match parsed(f.input, fields.text(&name)) {
            Ok(Some(v)) => {
                out.config.insert(f.name.into(), v);
            }
            Ok(None) if editing && fields.get(&name).is_some() => {
                out.config.insert(f.name.into(), Value::Null);
            }
            Ok(None) => {}
            Err(e) => {
                errors.insert(name, e);
            }
        }
    }
    let auth_type =
        AuthType::parse(fields.text("auth.type")).filter(|t| auth_choices(kind).contains(t));
    out.auth_type = auth_type;
    if let Some(t) = auth_type {
        out.auth
            .insert("type".into(), Value::String(t.as_str().into()));
        let form = auth_form(kind, t);
        for f in &form {
            let name = format!("auth.{}.{}", t.as_str(), f.name);
            let path = format!("auth.{}", f.name);
            match parsed(f.input, fields.text(&name)) {
                Ok(Some(v)) => {
                    out.auth.insert(f.name.into(), v);
                }
                Ok(None) if editing => {
                    out.auth.insert(f.name.into(), Value::Null);
                }
                Ok(None) => {}
                Err(e) => {
                    errors.insert(path, e);
                }
            }
        }
        if let Some(c) = before {
            for key in c.auth.keys() {
                if key != "type" && !form.iter().any(|f| f.name == key) {
                    out.auth.insert(key.clone(), Value::Null);
                }
            }
        }
        for (field, _) in secret_form(kind, t) {
            // A value pasted with the line's end keeps none of it.
            let name = format!("secrets.{}.{field}", t.as_str());
            let value = fields.text(&name).trim_end_matches(['\r', '\n']);
            let reference = fields.text(&format!("{name}.ref")).trim();
            match (value.is_empty(), reference.is_empty()) {
                (false, false) => {
                    errors.insert(
                        format!("secrets.{field}"),
                        "type a value or choose an organization secret, not both".into(),
                    );
                }
                (false, true) => {
                    // A key pasted into a text area comes with the browser's CRLF line ends.
                    let value = if multiline(&field) {
                        value.replace("\r\n", "\n")
                    } else {
                        value.to_owned()
                    };
                    out.secrets.insert(field, Value::String(value));
                }
                (true, false) => {
                    out.secrets
                        .insert(field, serde_json::json!({"ref": reference}));
                }
                (true, true) => {}
            }
        }
    } else {
        errors.insert("auth.type".into(), "choose how to authenticate".into());
    }
    (out, errors)
}

/// Field errors of an API failure, by form field; the rest go to the summary.
pub fn field_errors(problem: &crate::error::Problem) -> Errors {
    problem
        .errors
        .iter()
        .map(|e| (e.field.clone(), e.reason.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_database_form_reads_as_the_api_body() {
        let f = fields(&[
            ("name", " pg "),
            ("config.driver", "postgresql"),
            ("config.host", "127.0.0.1"),
            ("config.port", "5432"),
            ("config.database", "test"),
            ("config.username", "u"),
            ("config.ssl", ""),
            ("auth.type", "basic"),
            ("secrets.basic.password", "pw\r\n"),
        ]);
        let (p, errors) = read(&f, Kind::Database, None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(p.name, "pg");
        assert_eq!(p.config["port"], 5432);
        assert!(
            !p.config.contains_key("ssl"),
            "an unticked box is left to the default"
        );
        assert_eq!(p.auth["type"], "basic");
        assert_eq!(p.secrets["password"], "pw");
    }

    #[test]
    fn unreadable_fields_are_named() {
        let f = fields(&[
            ("config.driver", "postgresql"),
            ("config.port", "54x"),
            ("config.options", "{not json"),
        ]);
        let (_, errors) = read(&f, Kind::Database, None);
        assert_eq!(errors["config.port"], "must be a whole number");
        assert!(errors["config.options"].starts_with("is not valid JSON"));
        assert_eq!(errors["auth.type"], "choose how to authenticate");
    }

    #[test]
    fn an_edit_keeps_an_empty_secret_and_clears_emptied_fields() {
        let f = fields(&[
            ("config.base_url", "https://api.example.com"),
            ("config.verify_path", ""),
            ("auth.type", "bearer"),
            ("secrets.bearer.token", ""),
        ]);
        let before: Connection = serde_json::from_value(serde_json::json!({
            "id": "con_01JBM6Z1X6R6W2WJ7Y6SZ1TAX0", "project": "prj_01JBM6Z1X6R6W2WJ7Y6SZ1TAX0",
            "name": "gh", "kind": "http", "provider": "custom",
            "auth": {"type": "api_key", "in": "header", "name": "X-Key"},
            "config": {"base_url": "https://api.example.com", "verify_path": "/me"},
            "secrets": {"api_key": {"set": true}}, "status": "active", "test_status": "untested",
            "test_message": null, "test_latency_ms": null, "last_tested_at": null,
            "last_used_at": null, "used_by": [], "created_by": "t",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "version": 1
        }))
        .unwrap();
        let (p, errors) = read(&f, Kind::Http, Some(&before));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(p.config["verify_path"], Value::Null);
        assert!(
            p.secrets.is_empty(),
            "an empty secret field keeps the stored value"
        );
        assert_eq!(
            p.auth["in"],
            Value::Null,
            "api_key's parameters are dropped"
        );
        assert_eq!(p.auth["name"], Value::Null);
    }

    #[test]
    fn only_the_chosen_methods_fields_are_read() {
        // Without scripts every method's inputs are posted; two methods share `client_id`.
        let f = fields(&[
            ("config.base_url", "https://api.example.com"),
            ("auth.type", "oauth2"),
            ("auth.oauth2.authorization_url", "https://id.example.com/a"),
            ("auth.oauth2.token_url", "https://id.example.com/t"),
            ("secrets.oauth2.client_id", "the-client"),
            ("auth.oauth2_client_credentials.token_url", ""),
            ("secrets.oauth2_client_credentials.client_id", ""),
            ("secrets.bearer.token", "not-this-one"),
        ]);
        let (p, errors) = read(&f, Kind::Http, None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(p.secrets.len(), 1);
        assert_eq!(p.secrets["client_id"], "the-client");
        assert_eq!(p.auth["token_url"], "https://id.example.com/t");
    }

    #[test]
    fn a_secret_can_name_an_organization_secret_instead() {
        let f = fields(&[
            ("config.base_url", "https://api.example.com"),
            ("auth.type", "bearer"),
            ("secrets.bearer.token", ""),
            ("secrets.bearer.token.ref", "shared_token"),
        ]);
        let (p, errors) = read(&f, Kind::Http, None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            p.secrets["token"],
            serde_json::json!({"ref": "shared_token"})
        );
        let both = fields(&[
            ("auth.type", "bearer"),
            ("secrets.bearer.token", "typed"),
            ("secrets.bearer.token.ref", "shared_token"),
        ]);
        let (_, errors) = read(&both, Kind::Http, None);
        assert_eq!(
            errors["secrets.token"],
            "type a value or choose an organization secret, not both"
        );
    }

    #[test]
    fn labels_read_as_words() {
        assert_eq!(label("base_url"), "Base URL");
        assert_eq!(label("timeout_ms"), "Timeout (ms)");
        assert_eq!(label("ssl_ca"), "SSL CA");
        assert_eq!(label("client_id"), "Client ID");
    }
}
