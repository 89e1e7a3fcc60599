//! Validated names. A name is parsed once at the edge; afterwards the type proves it is safe to
//! show in a table, a log line or a URL segment (no control characters, no quotes, bounded).

use std::fmt;
use std::sync::LazyLock;

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

/// What a [`Name`] matches, as its OpenAPI schema says and its parser checks: letters and
/// digits of any script, spaces inside, and `_ - . : ( ) @ + /`.
pub const NAME_PATTERN: &str =
    r"^[\p{L}\p{N}_.:()@+/-](?:[\p{L}\p{N} _.:()@+/-]*[\p{L}\p{N}_.:()@+/-])?$";

/// What a [`SecretName`] matches.
pub const SECRET_NAME_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_.-]*$";

static NAME_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(NAME_PATTERN).expect("a valid pattern"));
static SECRET_NAME_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(SECRET_NAME_PATTERN).expect("a valid pattern"));

/// Free text with no control characters (an OAuth client id).
pub const TEXT_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// A description: at most [`DESCRIPTION_MAX`] characters, no control characters but newlines.
pub const DESCRIPTION_PATTERN: &str = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*$";
pub const DESCRIPTION_MAX: usize = 1000;

/// Checks a description against [`DESCRIPTION_PATTERN`] and [`DESCRIPTION_MAX`].
pub fn check_description(d: &str) -> Result<(), String> {
    if d.chars().count() > DESCRIPTION_MAX {
        Err(format!("must be at most {DESCRIPTION_MAX} characters"))
    } else if d.chars().any(|c| c.is_control() && c != '\n') {
        Err("must not contain control characters other than newlines".into())
    } else {
        Ok(())
    }
}

/// Whether `c` may appear in a name at all (the pattern's character class); only asked to
/// say why a name failed the pattern.
fn name_char(c: char) -> bool {
    let mut buf = [0u8; 4];
    c == ' ' || NAME_RE.is_match(c.encode_utf8(&mut buf))
}

impl Name {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > NAME_MAX {
            return Err(format!("must be at most {NAME_MAX} characters"));
        }
        // The pattern decides; the rest only says why it refused.
        if NAME_RE.is_match(raw) {
            return Ok(Self(raw.to_owned()));
        }
        if raw.starts_with(' ') || raw.ends_with(' ') {
            return Err("must not start or end with a space".into());
        }
        match raw.chars().find(|c| !name_char(*c)) {
            Some(bad) => Err(format!(
                "contains {}; allowed are letters, digits, spaces and _ - . : ( ) @ + /",
                describe(bad)
            )),
            None => Err("is not a name".into()),
        }
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
        debug_assert!(SECRET_NAME_RE.is_match(raw));
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
    ($t:ty, $pattern:expr) => {
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
                    .pattern(Some($pattern))
                    .into()
            }
        }

        impl utoipa::ToSchema for $t {}
    };
}

string_newtype_impls!(Name, NAME_PATTERN);
string_newtype_impls!(SecretName, SECRET_NAME_PATTERN);

/// A string schema with these bounds and pattern, for fields kept as plain strings.
fn text_schema(
    min: Option<usize>,
    max: impl Into<Option<usize>>,
    pattern: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(min)
        .max_length(max.into())
        .pattern(Some(pattern))
        .into()
}

/// Schemas of strings checked where they are used (see each checker).
macro_rules! text_schemas {
    ($($(#[$meta:meta])* $name:ident => $schema:expr;)+) => {$(
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema
            }
        }

        impl utoipa::ToSchema for $name {}
    )+};
}

/// The longest OAuth client id.
pub const CLIENT_ID_MAX: usize = 512;

/// What an OAuth scope matches: no spaces, no control characters.
pub const SCOPE_PATTERN: &str = r"^[^\s\x00-\x1f\x7f-\x9f]+$";

/// An HTTP method or header name: an RFC 9110 token.
pub const TOKEN_PATTERN: &str = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/// A header value: no control characters but tab.
pub const HEADER_VALUE_PATTERN: &str = r"^[^\x00-\x08\x0a-\x1f\x7f]*$";

/// An http or https URL as the document describes it: a host name (no credentials), an optional
/// port and path. The server accepts more (IP addresses, queries); the document keeps to what
/// is unambiguous.
pub const HTTP_URL_PATTERN: &str = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)*(:[0-9]{1,4})?(/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)?$";

/// An e-mail address as validation takes one: a dot-atom local part of at most 64 characters
/// (`EMAIL_LOCAL_PATTERN`), and a domain of letter-digit-hyphen labels under a top-level
/// domain of letters, at most 253 characters (`EMAIL_DOMAIN_PATTERN`); [`EMAIL_MAX`] in all.
/// Every such address is one the SMTP connector's mail library takes.
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$";
/// The local part of an e-mail address: 1–64 characters.
pub const EMAIL_LOCAL_PATTERN: &str = "^[^@]{1,64}@";
/// The domain of an e-mail address: 1–253 characters.
pub const EMAIL_DOMAIN_PATTERN: &str = "@[^@]{1,253}$";
/// The longest e-mail address.
pub const EMAIL_MAX: usize = 254;

static EMAIL_RES: LazyLock<[regex::Regex; 3]> = LazyLock::new(|| {
    [EMAIL_PATTERN, EMAIL_LOCAL_PATTERN, EMAIL_DOMAIN_PATTERN]
        .map(|p| regex::Regex::new(p).expect("a valid pattern"))
});

/// Whether `s` is an e-mail address as [`EMAIL_PATTERN`] and its companions describe.
pub fn is_email(s: &str) -> bool {
    s.len() <= EMAIL_MAX && EMAIL_RES.iter().all(|re| re.is_match(s))
}

/// The schema of an e-mail address, as [`is_email`] checks it.
pub fn email_schema() -> serde_json::Value {
    serde_json::json!({"type": "string", "maxLength": EMAIL_MAX, "pattern": EMAIL_PATTERN,
        "allOf": [{"pattern": EMAIL_LOCAL_PATTERN}, {"pattern": EMAIL_DOMAIN_PATTERN}]})
}

text_schemas! {
    /// An HTTP method.
    HttpMethod => text_schema(Some(1), None, TOKEN_PATTERN);
    /// A header name.
    HeaderName => text_schema(Some(1), None, TOKEN_PATTERN);
    /// A header value.
    HeaderValue => text_schema(None, None, HEADER_VALUE_PATTERN);
    /// A webhook action's own URL (instead of a connection).
    WebhookUrl => text_schema(Some(1), None, HTTP_URL_PATTERN);
    /// A webhook action's method, in any case.
    WebhookMethod => text_schema(
        Some(3),
        Some(5),
        "^([Pp][Oo][Ss][Tt]|[Pp][Uu][Tt]|[Pp][Aa][Tt][Cc][Hh])$"
    );
    /// The node types `POST /v1/nodes/run` runs.
    NodeType => text_schema(
        Some(1),
        None,
        "^(http|webhook|sql|database|email|integration|llm|mcp_tool|s3-upload|s3_upload)$"
    );
    /// A SQL statement: not blank.
    Statement => text_schema(Some(1), None, r"\S");
    /// See [`check_description`].
    Description => text_schema(None, DESCRIPTION_MAX, DESCRIPTION_PATTERN);
    /// An OAuth client id: 1–512 characters, no control characters.
    ClientId => text_schema(Some(1), CLIENT_ID_MAX, TEXT_PATTERN);
    /// One OAuth scope.
    Scope => text_schema(Some(1), 1024, SCOPE_PATTERN);
}

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

#[cfg(test)]
mod pattern_tests {
    use super::*;

    /// The patterns the OpenAPI document publishes accept exactly what the parsers accept.
    #[test]
    fn the_published_patterns_agree_with_the_parsers() {
        let name = regex::Regex::new(NAME_PATTERN).unwrap();
        for raw in [
            "My OpenAI API",
            "Zürich.mail@ops",
            "東京 (prod)",
            "a",
            " padded",
            "trailing ",
            "x'; DROP",
            "<b>",
            "a\r\nb",
            "",
            "٣",
        ] {
            assert_eq!(
                name.is_match(raw),
                Name::parse(raw).is_ok(),
                "{raw:?} under {NAME_PATTERN}"
            );
        }
        let secret = regex::Regex::new(SECRET_NAME_PATTERN).unwrap();
        for raw in ["stripe_api_key", "_x.y-z", "1abc", "has space", "", "é"] {
            assert_eq!(
                secret.is_match(raw),
                SecretName::parse(raw).is_ok(),
                "{raw:?} under {SECRET_NAME_PATTERN}"
            );
        }
        let description = regex::Regex::new(DESCRIPTION_PATTERN).unwrap();
        for raw in ["two\nlines", "tab\there", "bell\u{7}", "c1\u{85}", "plain"] {
            assert_eq!(
                description.is_match(raw),
                check_description(raw).is_ok(),
                "{raw:?}"
            );
        }
    }
}
