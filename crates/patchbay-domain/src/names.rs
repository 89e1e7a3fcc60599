//! Validated names. A name is parsed once at the edge; afterwards the type proves it is safe to
//! show in a table, a log line or a URL segment (no control characters, no quotes, bounded).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A human-facing name: organizations, projects, connections, tokens.
///
/// 1–128 characters; letters, digits, spaces and `_ - . : ( ) @ + /`; no leading or trailing
/// space. Quotes, semicolons, angle brackets and control characters (CR/LF) are refused.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// The name of an organization secret, usable in a reference `{"ref": "stripe_api_key"}`:
/// an identifier of 1–128 characters from `A–Z a–z 0–9 _ - .`, starting with a letter or `_`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretName(String);

const NAME_MAX: usize = 128;

impl Name {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > NAME_MAX {
            return Err(format!("must be at most {NAME_MAX} characters"));
        }
        if raw.starts_with(' ') || raw.ends_with(' ') {
            return Err("must not start or end with a space".into());
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_alphanumeric() || " _-.:()@+/".contains(*c)))
        {
            return Err(format!(
                "contains {}; allowed are letters, digits, spaces and _ - . : ( ) @ + /",
                describe(bad)
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl SecretName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > NAME_MAX {
            return Err(format!("must be at most {NAME_MAX} characters"));
        }
        let first = raw.chars().next().unwrap_or('0');
        if !(first.is_ascii_alphabetic() || first == '_') {
            return Err("must start with a letter or _".into());
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_-.".contains(*c)))
        {
            return Err(format!(
                "contains {}; allowed are A-Z a-z 0-9 _ - .",
                describe(bad)
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Names a character without echoing control characters raw into an error message.
fn describe(c: char) -> String {
    if c.is_control() {
        format!("a control character (U+{:04X})", c as u32)
    } else {
        format!("the character {c:?}")
    }
}

macro_rules! string_newtype_impls {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl utoipa::PartialSchema for $t {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some(NAME_MAX))
                    .into()
            }
        }

        impl utoipa::ToSchema for $t {}
    };
}

string_newtype_impls!(Name);
string_newtype_impls!(SecretName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for ok in [
            "My OpenAI API",
            "prod-db",
            "GitHub (ci)",
            "a",
            "Zürich.mail@ops",
        ] {
            assert_eq!(Name::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn hostile_names_are_refused_with_a_reason() {
        let crlf = Name::parse("a\r\nSet-Cookie: x").unwrap_err();
        assert!(crlf.contains("control character"), "{crlf}");
        assert!(Name::parse("x'; DROP TABLE connections; --").is_err());
        assert!(Name::parse("<script>").is_err());
        assert!(Name::parse("").is_err());
        assert!(Name::parse(" padded").is_err());
        assert!(Name::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn secret_names_are_identifiers() {
        assert!(SecretName::parse("stripe_api_key").is_ok());
        assert!(SecretName::parse("_x.y-z").is_ok());
        assert!(SecretName::parse("1abc").is_err());
        assert!(SecretName::parse("has space").is_err());
    }
}
