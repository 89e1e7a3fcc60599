//! What a form for a connection of each kind holds, from the same rule tables validation
//! uses: the `config` fields and their inputs, the auth types a kind takes, each type's
//! parameters, and its secret fields. A user interface lays these out; validation still
//! decides what is accepted.

use serde_json::{Map, Value};

use super::auth::{allowed_auth, auth_rules};
use super::config::{check_config, config_rules};
use super::fields::Ty;
use super::secrets::secret_spec;
use crate::connection::{AuthType, Kind};
use crate::error::ValidationErrors;
use crate::spec::DatabaseDriver;

/// How a field is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Url,
    Text,
    Email,
    /// A path under a URL (`/user`).
    Path,
    Number {
        min: i64,
        max: i64,
    },
    /// Yes, no, or left to the default (which may depend on other fields).
    Switch,
    Choice(&'static [&'static str]),
    /// One item per line (a list of strings: arguments, tool names).
    Lines,
    /// Items separated by spaces, commas or lines (scopes).
    Words,
    /// `Name: value`, one per line (headers, environment variables).
    Pairs,
    /// A JSON object.
    Json,
    /// A PEM certificate.
    Pem,
}

/// One non-secret field of a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormField {
    pub name: &'static str,
    pub input: Input,
    /// Validation refuses a body without it (in the kind's usual case: a network database,
    /// a server URL rather than a command).
    pub required: bool,
}

fn input(ty: Ty) -> Input {
    match ty {
        Ty::Url | Ty::Origin => Input::Url,
        Ty::Str => Input::Text,
        Ty::Email => Input::Email,
        Ty::UrlPath => Input::Path,
        Ty::Int(min, max) => Input::Number { min, max },
        Ty::Bool => Input::Switch,
        Ty::Enum(names) => Input::Choice(names),
        Ty::StrList => Input::Lines,
        Ty::Scopes => Input::Words,
        Ty::Headers | Ty::Env => Input::Pairs,
        Ty::Object => Input::Json,
        Ty::Pem => Input::Pem,
        Ty::Bucket | Ty::Region | Ty::KeyPrefix | Ty::DirPath | Ty::HostKey => Input::Text,
    }
}

/// The usual case of a kind, whose required fields the form marks: a network database.
fn usual_config(kind: Kind) -> Map<String, Value> {
    let mut m = Map::new();
    if kind == Kind::Database {
        m.insert(
            "driver".into(),
            Value::String(DatabaseDriver::Postgresql.as_str().into()),
        );
    }
    m
}

/// The `config` fields of a kind's form.
pub fn config_form(kind: Kind) -> Vec<FormField> {
    let mut errs = ValidationErrors::default();
    let mut usual = usual_config(kind);
    check_config(kind, &mut usual, false, &mut errs);
    let missing: Vec<String> = errs
        .errors()
        .iter()
        .filter(|e| e.reason.starts_with("is required"))
        .map(|e| e.field.clone())
        .collect();
    config_rules(kind)
        .iter()
        .map(|r| FormField {
            name: r.name,
            input: input(r.ty),
            required: usual.contains_key(r.name)
                || missing.iter().any(|f| f == &format!("config.{}", r.name)),
        })
        .collect()
}

/// The auth types a kind takes, the default first.
pub fn auth_choices(kind: Kind) -> Vec<AuthType> {
    let first = super::default_auth(kind, &usual_config(kind));
    let mut all: Vec<AuthType> = allowed_auth(kind).to_vec();
    all.sort_by_key(|t| *t != first);
    all
}

/// The parameters (besides `type`) an auth type's form holds on a connection of `kind`.
pub fn auth_form(kind: Kind, auth_type: AuthType) -> Vec<FormField> {
    let required: &[&str] = match (kind, auth_type) {
        (Kind::Http | Kind::Mcp, AuthType::Basic) => &["username"],
        (Kind::Http, AuthType::Oauth2) => &["authorization_url", "token_url"],
        (_, AuthType::Oauth2ClientCredentials) => &["token_url"],
        (Kind::Http, AuthType::AwsSigv4) => &["region", "service"],
        _ => &[],
    };
    auth_rules(kind, auth_type)
        .iter()
        .map(|r| FormField {
            name: r.name,
            input: input(r.ty),
            required: required.contains(&r.name),
        })
        .collect()
}

/// The secret fields an auth type takes: `(name, required)`. Empty for `custom` (any name)
/// and for a stdio MCP server (its environment).
pub fn secret_form(kind: Kind, auth_type: AuthType) -> Vec<(String, bool)> {
    let spec = secret_spec(kind, auth_type, &Map::new(), &usual_config(kind));
    spec.required
        .iter()
        .map(|f| (f.clone(), true))
        .chain(spec.optional.iter().map(|f| (f.clone(), false)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use crate::validate::{Draft, validate_connection};

    #[test]
    fn the_required_marks_are_what_validation_asks_for() {
        for kind in Kind::ALL {
            let draft = Draft {
                name: Some(Value::String("x".into())),
                kind: Some(Value::String(kind.as_str().into())),
                config: Some(Value::Object(usual_config(*kind))),
                ..Draft::default()
            };
            let errs = validate_connection(&draft, &BTreeSet::new())
                .expect_err("an empty form is refused");
            let marked: Vec<_> = config_form(*kind)
                .into_iter()
                .filter(|f| f.required)
                .collect();
            assert!(!marked.is_empty(), "{kind:?} requires something");
            for f in marked {
                if usual_config(*kind).contains_key(f.name) {
                    continue;
                }
                let path = format!("config.{}", f.name);
                assert!(
                    errs.errors().iter().any(|e| e.field == path),
                    "{kind:?}: {path} is marked required but validation does not ask for it: {errs}"
                );
            }
        }
    }

    #[test]
    fn a_network_database_form_marks_host_and_username_and_asks_for_a_password() {
        let form = config_form(Kind::Database);
        let required: Vec<_> = form.iter().filter(|f| f.required).map(|f| f.name).collect();
        assert_eq!(required, ["driver", "host", "database", "username"]);
        assert_eq!(auth_choices(Kind::Database)[0], AuthType::Basic);
        assert_eq!(
            secret_form(Kind::Database, AuthType::Basic),
            [("password".to_owned(), true)]
        );
        assert!(matches!(
            form.iter().find(|f| f.name == "port").map(|f| f.input),
            Some(Input::Number {
                min: 1,
                max: 65_535
            })
        ));
    }
}
