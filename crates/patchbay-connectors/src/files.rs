//! Files on Patchbay's own machine that the operator lets connections reach: SQLite databases
//! and files a storage upload sends, each only under the directories allowed for it and never
//! in Patchbay's own data directory.

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
