//! Paths: files on Patchbay's own machine that the operator lets connections reach (SQLite
//! databases and files a storage upload sends, each only under the directories allowed for it
//! and never in Patchbay's own data directory), and the relative paths of an object key or a
//! file on a server, which stay under their connection's prefix or base directory.

use std::path::{Path, PathBuf};

/// Why a path may not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotAbsolute,
    /// The operator allows no directory for this use.
    NoneAllowed,
    /// It cannot be resolved (absent, unreadable): the I/O error's kind.
    Unreadable(std::io::ErrorKind),
    /// It lies in Patchbay's own data directory.
    Protected,
    /// It lies outside every allowed directory.
    Outside,
}

/// `raw` resolved (links followed), once it is shown to lie under one of `allow` and none of
/// `protected`.
pub fn path_under(raw: &str, allow: &[PathBuf], protected: &[PathBuf]) -> Result<PathBuf, Refusal> {
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err(Refusal::NotAbsolute);
    }
    if allow.is_empty() {
        return Err(Refusal::NoneAllowed);
    }
    let real = path
        .canonicalize()
        .map_err(|e| Refusal::Unreadable(e.kind()))?;
    let under = |dirs: &[PathBuf]| {
        dirs.iter()
            .filter_map(|d| d.canonicalize().ok())
            .any(|d| real.starts_with(&d))
    };
    if under(protected) {
        return Err(Refusal::Protected);
    }
    if !under(allow) {
        return Err(Refusal::Outside);
    }
    Ok(real)
}

/// Why `s` is not a path relative to a connection's `root` ("prefix", "base directory"): an
/// absolute path, `.` or `..` segments, empty segments, backslashes or control characters. A
/// trailing `/` is allowed when `trailing_slash`.
pub fn check_relative(s: &str, trailing_slash: bool, root: &str) -> Result<(), String> {
    if s.starts_with('/') {
        return Err(format!(
            "must be relative to the connection's {root} (no leading /)"
        ));
    }
    if s.chars().any(|c| c.is_control() || c == '\\') {
        return Err("must not contain control characters or backslashes".into());
    }
    let body = if trailing_slash {
        s.strip_suffix('/').unwrap_or(s)
    } else {
        s
    };
    for segment in body.split('/') {
        match segment {
            "" => return Err("must not have empty segments (//)".into()),
            "." | ".." => {
                return Err(format!(
                    "must not have . or .. segments: paths stay under the connection's {root}"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
