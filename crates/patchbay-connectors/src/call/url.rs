//! Where a call goes: the path and query under the connection's base URL, never above it.

use std::borrow::Cow;

use super::CallError;
use crate::Material;

/// `base_url` + `path` + `query`; a path that would climb out of the base URL is refused.
pub fn call_url(m: &Material, path: &str, query: Option<&str>) -> Result<url::Url, CallError> {
    let base = base_url(m)?;
    let trimmed = path.trim_start_matches('/');
    check_path(trimmed)?;
    let mut url = base.clone();
    if !trimmed.is_empty() {
        url.set_path(&format!(
            "{}/{}",
            base.path().trim_end_matches('/'),
            trimmed
        ));
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let joined = match base.query() {
            Some(own) if !own.is_empty() => format!("{own}&{q}"),
            _ => q.to_owned(),
        };
        url.set_query(Some(&joined));
    }
    Ok(url)
}

pub(super) fn base_url(m: &Material) -> Result<url::Url, CallError> {
    let raw = m
        .spec
        .http()
        .and_then(|c| c.base_url.as_deref())
        .ok_or_else(|| CallError::Unusable("the connection has no config.base_url".into()))?;
    url::Url::parse(raw).map_err(|e| CallError::Unusable(format!("config.base_url: {e}")))
}

/// Refuses a path (under the base URL, without its leading `/`) with `.` or `..` segments,
/// encoded or not, or a NUL.
pub(super) fn check_path(trimmed: &str) -> Result<(), CallError> {
    let decoded = if trimmed.contains('%') {
        percent_encoding::percent_decode_str(trimmed).decode_utf8_lossy()
    } else {
        Cow::Borrowed(trimmed)
    };
    if decoded
        .split(['/', '\\'])
        .any(|seg| seg == ".." || seg == ".")
        || decoded.contains('\0')
    {
        return Err(CallError::Invalid(
            "the path may not contain '.' or '..' segments".into(),
        ));
    }
    Ok(())
}

/// Path characters a URL keeps as they are (RFC 3986 `pchar` and `/`, `%` of an escape).
pub(super) fn path_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b)
}

/// Query characters a URL keeps as they are.
pub(super) fn query_safe(b: u8) -> bool {
    b != b'\'' && (path_safe(b) || b == b'?')
}
