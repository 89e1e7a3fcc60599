//! Field rules: the type of each `config` and `auth` field, and the checks of URLs, e-mail
//! addresses and header maps they share.

use serde_json::{Map, Value};

use crate::error::ValidationErrors;

/// Longest accepted plain string field, in characters.
pub(super) const STR_MAX: usize = 2048;

/// What a field holds.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    Url,
    Str,
    Int(i64, i64),
    Bool,
    Headers,
    Enum(&'static [&'static str]),
    Email,
    UrlPath,
    StrList,
    /// Environment variables of a child process: names to string values.
    Env,
    Object,
    Pem,
    Scopes,
    /// An http(s) origin: a URL without a path, query or fragment.
    Origin,
    /// An S3 bucket name.
    Bucket,
    /// A cloud region (`eu-west-1`, `auto`).
    Region,
    /// A key prefix: `/`-separated segments of safe characters, none starting with a dot.
    KeyPrefix,
    /// A directory on a file server: absolute or relative, without `.`/`..` or empty segments.
    DirPath,
    /// An SSH host key (`ssh-ed25519 AAAA…`) or its SHA-256 fingerprint (`SHA256:…`).
    HostKey,
}

/// One accepted field and its type.
pub(super) struct Rule {
    pub name: &'static str,
    pub ty: Ty,
}

pub(super) const fn r(name: &'static str, ty: Ty) -> Rule {
    Rule { name, ty }
}

/// Checks every field of `map` against `rules` (unknown fields are named; a `null` drops the
/// field), reporting each bad one under `prefix.`.
pub(super) fn check_fields(
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

pub(super) fn check_value(ty: Ty, value: &mut Value) -> Result<(), String> {
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
            if s.chars().count() > STR_MAX {
                return Err(format!("must be at most {STR_MAX} characters"));
            }
            if s.chars().any(char::is_control) {
                return Err("must not contain control characters".into());
            }
            Ok(())
        }
        Ty::Int(min, max) => match crate::objects::whole(value) {
            Some(n) if (min..=max).contains(&n) => {
                // `58.0` is the integer 58, and is stored as one.
                *value = Value::from(n);
                Ok(())
            }
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
        Ty::Env => check_env(value),
        Ty::Object => value
            .is_object()
            .then_some(())
            .ok_or("must be an object".into()),
        Ty::Pem => match value.as_str() {
            Some(s) if s.contains("-----BEGIN CERTIFICATE-----") => Ok(()),
            _ => Err("must be a PEM certificate".into()),
        },
        Ty::Origin => {
            let s = value.as_str().ok_or("must be a string URL")?;
            check_url(s)?;
            let u = url::Url::parse(s).map_err(|e| e.to_string())?;
            if u.query().is_some() || u.path() != "/" {
                return Err(
                    "must be an origin like https://s3.example.com:9000, without a path \
                            or query"
                        .into(),
                );
            }
            Ok(())
        }
        Ty::Bucket => {
            let s = value.as_str().ok_or("must be a string bucket name")?;
            is_bucket(s).then_some(()).ok_or_else(|| {
                "must be a bucket name: 3-63 characters, labels of lowercase letters, digits \
                 and hyphens (not at either end) joined by single dots"
                    .into()
            })
        }
        Ty::Region => {
            let s = value.as_str().ok_or("must be a string region")?;
            let ok = (1..=32).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            ok.then_some(()).ok_or_else(|| {
                "must be 1-32 lowercase letters, digits and - (like eu-west-1 or s3)".into()
            })
        }
        Ty::DirPath => {
            let s = value.as_str().ok_or("must be a string path")?;
            is_dir_path(s).then_some(()).ok_or_else(|| {
                "must be a directory like /srv/exports or inbox/2026: segments separated by /, \
                 none empty, . or .., without backslashes or control characters, at most 1024 \
                 characters"
                    .into()
            })
        }
        Ty::HostKey => {
            let s = value.as_str().ok_or("must be a string host key")?;
            is_host_key(s).then_some(()).ok_or_else(|| {
                "must be an SSH public key as known_hosts lists it (ssh-ed25519 AAAA…, \
                 ecdsa-sha2-nistp256 …, ssh-rsa …) or its fingerprint (SHA256:…)"
                    .into()
            })
        }
        Ty::KeyPrefix => {
            let s = value.as_str().ok_or("must be a string prefix")?;
            is_key_prefix(s).then_some(()).ok_or_else(|| {
                "must be a key prefix like invoices/2026/: segments of letters, digits and \
                 !-_.*'() separated by /, none starting with a dot, not starting with /, at \
                 most 512 characters"
                    .into()
            })
        }
    }
}

/// An S3 bucket name: 3-63 characters, labels of lowercase letters, digits and hyphens that
/// start and end with a letter or digit, joined by single dots.
pub(crate) fn is_bucket(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// A directory as `Ty::DirPath` takes it (its schema pattern says the same).
pub(crate) fn is_dir_path(s: &str) -> bool {
    if s == "/" {
        return true;
    }
    let rel = s.strip_prefix('/').unwrap_or(s);
    let rel = rel.strip_suffix('/').unwrap_or(rel);
    !s.is_empty()
        && s.len() <= 1024
        && rel.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && !seg.chars().any(|c| c == '\\' || c.is_control())
        })
}

/// The key types an SSH host key may be given in.
pub const HOST_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// A host key as `Ty::HostKey` takes it: `TYPE BASE64 [comment]` or `SHA256:` and 43
/// characters of unpadded base64.
pub(crate) fn is_host_key(s: &str) -> bool {
    use base64::Engine as _;
    if let Some(fp) = s.strip_prefix("SHA256:") {
        let fp = fp.strip_suffix('=').unwrap_or(fp);
        return base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(fp)
            .is_ok_and(|b| b.len() == 32);
    }
    let mut parts = s.splitn(3, ' ');
    let (Some(ty), Some(blob)) = (parts.next(), parts.next()) else {
        return false;
    };
    let comment_ok = parts
        .next()
        .is_none_or(|c| c.chars().all(|ch| (' '..='~').contains(&ch)));
    HOST_KEY_TYPES.contains(&ty)
        && comment_ok
        && base64::engine::general_purpose::STANDARD
            .decode(blob)
            .is_ok_and(|b| b.len() >= 16)
}

/// A key prefix as `Ty::KeyPrefix` takes it (its schema pattern says the same).
pub(crate) fn is_key_prefix(s: &str) -> bool {
    let safe = |c: char| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c);
    !s.is_empty()
        && s.len() <= 512
        && s.trim_end_matches('/')
            .split('/')
            .all(|seg| !seg.is_empty() && !seg.starts_with('.') && seg.chars().all(safe))
        && !s.ends_with("//")
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

/// An e-mail address ([`crate::names::is_email`]).
pub(super) fn check_email(s: &str) -> Result<(), String> {
    crate::names::is_email(s)
        .then_some(())
        .ok_or_else(|| "must be an e-mail address like ops@example.com".to_owned())
}

pub(super) fn check_headers(value: &Value) -> Result<(), String> {
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
            Some(s) if !s.chars().any(is_header_control) => {}
            _ => {
                return Err(format!(
                    "header {name:?} must be a string without control characters other than tab"
                ));
            }
        }
    }
    Ok(())
}

/// A character a header value may not hold (what `HEADER_VALUE_PATTERN` leaves out).
fn is_header_control(c: char) -> bool {
    matches!(c, '\0'..='\x08' | '\n'..='\x1f' | '\x7f')
}

/// Names `prefix.field` as required (`why` says when) unless `map` has it.
pub(super) fn require(
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

fn check_env(value: &Value) -> Result<(), String> {
    let map = value
        .as_object()
        .ok_or("must be an object of variable names to string values")?;
    for (name, v) in map {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "{name:?} is not a variable name (letters, digits and _, not starting with a digit)"
            ));
        }
        if v.as_str().is_none_or(|s| s.contains('\0')) {
            return Err(format!("{name} must be a string without NUL"));
        }
    }
    Ok(())
}
