//! The `auth` rules of each auth type, and which auth types each kind takes.

use serde_json::{Map, Value};

use super::fields::{Rule, Ty, check_fields, r, require};
use crate::connection::{AuthType, Kind};
use crate::error::ValidationErrors;
use crate::spec::{DatabaseDriver, FileProtocol, InjectLocation, KeyLocation, TokenAuthMethod};

pub(super) fn allowed_auth(kind: Kind) -> &'static [AuthType] {
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
        Kind::Storage => &[AwsSigv4],
        Kind::FileTransfer => &[Basic, SshKey],
    }
}

pub(super) fn default_auth(kind: Kind, config: &Map<String, Value>) -> AuthType {
    match kind {
        Kind::Database
            if config.get("driver").and_then(Value::as_str)
                == Some(DatabaseDriver::Sqlite.as_str()) =>
        {
            AuthType::None
        }
        Kind::Database => AuthType::Basic,
        Kind::Smtp if config.get("username").is_some_and(|v| !v.is_null()) => AuthType::Basic,
        Kind::Storage => AuthType::AwsSigv4,
        Kind::FileTransfer => AuthType::Basic,
        _ => AuthType::None,
    }
}

const OAUTH2_AUTH: &[Rule] = &[
    r("app", Ty::Str),
    r("issuer", Ty::Url),
    r(
        "token_request_auth_method",
        Ty::Enum(TokenAuthMethod::NAMES),
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

const API_KEY_AUTH: &[Rule] = &[
    r("in", Ty::Enum(KeyLocation::NAMES)),
    r("name", Ty::Str),
    r("prefix", Ty::Str),
];

const BASIC_AUTH: &[Rule] = &[r("username", Ty::Str)];
const CUSTOM_AUTH: &[Rule] = &[r("inject", Ty::Object)];
const AWS_SIGV4_AUTH: &[Rule] = &[r("region", Ty::Region), r("service", Ty::Region)];

/// The parameters (besides `type`) an auth type takes on a connection of `kind`.
pub(super) fn auth_rules(kind: Kind, auth_type: AuthType) -> &'static [Rule] {
    match auth_type {
        AuthType::ApiKey => API_KEY_AUTH,
        AuthType::Basic if matches!(kind, Kind::Http | Kind::Mcp) => BASIC_AUTH,
        AuthType::Oauth2 => OAUTH2_AUTH,
        AuthType::Oauth2ClientCredentials => CLIENT_CREDENTIALS_AUTH,
        AuthType::Custom => CUSTOM_AUTH,
        // A storage connection's region is in its config; its service is S3.
        AuthType::AwsSigv4 if kind == Kind::Http => AWS_SIGV4_AUTH,
        _ => &[],
    }
}

pub(super) fn check_auth(
    kind: Kind,
    auth_type: AuthType,
    auth: &mut Map<String, Value>,
    config: &Map<String, Value>,
    errs: &mut ValidationErrors,
) {
    let mut params = auth.clone();
    params.remove("type");
    let rules = auth_rules(kind, auth_type);
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
            let header = params
                .get("in")
                .and_then(Value::as_str)
                .is_none_or(|l| l == KeyLocation::Header.as_str());
            if header
                && let Some(n) = params.get("name").and_then(Value::as_str)
                && !is_token(n)
            {
                errs.push("auth.name", "must be a valid HTTP header name");
            }
        }
        AuthType::Basic if matches!(kind, Kind::Http | Kind::Mcp) => {
            require(&params, "auth", "username", errs, " for basic auth");
        }
        AuthType::Basic if kind == Kind::Smtp => {
            require(config, "config", "username", errs, " for basic auth");
        }
        // An MCP server names its authorization server itself (MCP authorization).
        AuthType::Oauth2 if !has_app && kind != Kind::Mcp => {
            for f in ["authorization_url", "token_url"] {
                require(&params, "auth", f, errs, " unless `app` names an OAuth app");
            }
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
        AuthType::AwsSigv4 if kind == Kind::Http => {
            require(
                &params,
                "auth",
                "region",
                errs,
                " (us-east-1, eu-west-1, …)",
            );
            require(&params, "auth", "service", errs, " (s3, execute-api, …)");
        }
        AuthType::SshKey
            if config.get("protocol").and_then(Value::as_str)
                != Some(FileProtocol::Sftp.as_str()) =>
        {
            errs.push(
                "auth.type",
                "ssh_key is for SFTP; FTP servers take basic auth",
            );
        }
        AuthType::None
            if kind == Kind::Database
                && config
                    .get("driver")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d != DatabaseDriver::Sqlite.as_str()) =>
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
        let location = obj
            .get("in")
            .and_then(Value::as_str)
            .and_then(InjectLocation::parse);
        if location.is_none() {
            errs.push(
                format!("{path}.in"),
                format!("must be one of {}", InjectLocation::NAMES.join(", ")),
            );
        }
        match obj.get("name").and_then(Value::as_str) {
            None | Some("") => errs.push(format!("{path}.name"), "is required"),
            Some(n) if location == Some(InjectLocation::Header) && !is_token(n) => {
                errs.push(format!("{path}.name"), "must be a valid HTTP header name")
            }
            Some(_) => {}
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

/// Whether `s` is an HTTP token (a valid header name).
/// An RFC 9110 token: a header name (or a method).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
