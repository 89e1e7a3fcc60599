//! File transfer: SFTP (russh and russh-sftp) and FTPS or FTP (suppaftp), every connection —
//! the FTP data connections too — made to an address the gate resolved and checked. Every path
//! an operation names is relative to the connection's base directory and stays under it: no
//! absolute paths, no `.`/`..` segments, and on SFTP no link that leads out of it.

mod ftp;
mod sftp;

use std::time::Duration;

use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::{FileProtocol, FileTransferConfig};

use crate::{Connectors, Material, Outcome};

/// Largest file a `get` or `put` carries in one JSON action.
pub const MAX_FILE: usize = 16 * 1024 * 1024;

/// Most entries one listing returns.
pub const MAX_ENTRIES: usize = 10_000;

/// What an entry of a listing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Link,
    Other,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Link => "link",
            Self::Other => "other",
        }
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    pub size: Option<u64>,
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why a file operation failed. Messages name the path relative to the base directory and
/// never carry a credential.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A field of the request is unusable (a path outside the base directory).
    #[error("{field} {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The server refused the user name and password or key.
    #[error("{0}")]
    Auth(String),
    /// The server's host key is not the one the connection pins.
    #[error("{0}")]
    HostKey(String),
    /// No such file or directory.
    #[error("{0}")]
    Missing(String),
    /// The server refused the operation (permissions, a directory not empty, …).
    #[error("{0}")]
    Refused(String),
    /// The server could not be reached or spoke unexpectedly.
    #[error("{message}")]
    Failed { kind: ErrorKind, message: String },
}

impl TransferError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn failed(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Failed {
            kind,
            message: message.into(),
        }
    }

    /// The connection-test class of the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Auth(_) => ErrorKind::Auth,
            Self::HostKey(_) => ErrorKind::Tls,
            Self::Failed { kind, .. } => *kind,
            Self::Invalid { .. } | Self::Missing(_) | Self::Refused(_) => ErrorKind::Protocol,
        }
    }
}

impl From<Outcome> for TransferError {
    fn from(o: Outcome) -> Self {
        Self::failed(o.kind.unwrap_or(ErrorKind::Protocol), o.message)
    }
}

/// A logged-in session on a connection's server, rooted at its base directory.
pub struct FileSession {
    inner: Inner,
    /// The base directory on the server, absolute.
    base: String,
    host_key: Option<String>,
    timeout: Duration,
}

enum Inner {
    Sftp(sftp::Sftp),
    Ftp(Box<ftp::Ftp>),
}

impl std::fmt::Debug for FileSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSession")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// `rel` checked and joined under `base`; the base itself for an empty `rel` when `root_ok`.
pub(crate) fn under(
    base: &str,
    field: &'static str,
    rel: &str,
    root_ok: bool,
) -> Result<String, TransferError> {
    if rel.is_empty() || rel == "." {
        return if root_ok {
            Ok(base.to_owned())
        } else {
            Err(TransferError::invalid(field, "is required"))
        };
    }
    crate::files::check_relative(rel, true, "base directory")
        .map_err(|reason| TransferError::invalid(field, reason))?;
    if rel.len() > 1024 {
        return Err(TransferError::invalid(
            field,
            "is too long: at most 1024 bytes",
        ));
    }
    let rel = rel.trim_end_matches('/');
    Ok(join(base, rel))
}

fn join(base: &str, rel: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// Whether the absolute `path` is `base` or lies under it.
pub(crate) fn is_within(base: &str, path: &str) -> bool {
    let base = base.trim_end_matches('/');
    base.is_empty() || path == base || path.starts_with(&format!("{base}/"))
}

/// `path` as the caller named it: relative to the base directory.
pub(crate) fn relative<'a>(base: &str, path: &'a str) -> &'a str {
    let stripped = path
        .strip_prefix(base.trim_end_matches('/'))
        .unwrap_or(path);
    match stripped.trim_start_matches('/') {
        "" => ".",
        rest => rest,
    }
}

impl Connectors {
    /// Connects and logs in to a file-transfer connection's server, then finds its base
    /// directory. An SFTP server's host key must be the pinned one; without a pin, the key it
    /// presented is in [`FileSession::host_key`] for the caller to pin.
    pub async fn files_open(&self, m: &Material) -> Result<FileSession, TransferError> {
        let Some(config) = m.spec.file_transfer() else {
            return Err(TransferError::invalid(
                "connection",
                "is not a file_transfer connection",
            ));
        };
        let timeout = m.timeout(Duration::from_secs(600));
        let open = async {
            match config.protocol {
                FileProtocol::Sftp => sftp::open(self, m, config)
                    .await
                    .map(|(s, base, key)| (Inner::Sftp(s), base, Some(key))),
                FileProtocol::Ftps | FileProtocol::Ftp => ftp::open(self, m, config)
                    .await
                    .map(|(s, base)| (Inner::Ftp(Box::new(s)), base, None)),
            }
        };
        let (inner, base, host_key) = within(timeout, open).await?;
        Ok(FileSession {
            inner,
            base,
            host_key,
            timeout,
        })
    }
}

/// A TCP connection to the first of `addrs` (each checked by the gate) that answers.
pub(crate) async fn connect_any(
    addrs: &[std::net::SocketAddr],
) -> Result<tokio::net::TcpStream, TransferError> {
    let mut last = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            TransferError::failed(ErrorKind::Refused, format!("{addr} refused the connection"))
        }
        Some((addr, e)) => TransferError::failed(ErrorKind::Refused, format!("{addr}: {e}")),
        None => TransferError::failed(ErrorKind::Dns, "no address"),
    })
}

/// `work`, failing as a timeout after `timeout`.
async fn within<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, TransferError>>,
) -> Result<T, TransferError> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(TransferError::failed(
                ErrorKind::Timeout,
                format!("no answer within {} ms", timeout.as_millis()),
            ))
        })
}

impl FileSession {
    /// The base directory on the server.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The SFTP server's host key as `known_hosts` lists it (`ssh-ed25519 AAAA…`).
    pub fn host_key(&self) -> Option<&str> {
        self.host_key.as_deref()
    }

    /// The entries of the directory `rel` (the base directory when empty).
    pub async fn list(&mut self, rel: &str) -> Result<Vec<Entry>, TransferError> {
        let path = under(&self.base, "path", rel, true)?;
        let mut entries = within(self.timeout, async {
            match &mut self.inner {
                Inner::Sftp(s) => s.list(&self.base, &path).await,
                Inner::Ftp(f) => f.list(&self.base, &path).await,
            }
        })
        .await?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.truncate(MAX_ENTRIES);
        Ok(entries)
    }

    /// The content of the file `rel`, at most `cap` bytes.
    pub async fn get(&mut self, rel: &str, cap: usize) -> Result<Vec<u8>, TransferError> {
        let path = under(&self.base, "path", rel, false)?;
        within(self.timeout, async {
            match &mut self.inner {
                Inner::Sftp(s) => s.get(&self.base, &path, cap).await,
                Inner::Ftp(f) => f.get(&self.base, &path, cap).await,
            }
        })
        .await
    }

    /// Writes `data` to the file `rel` (replacing it); the bytes written.
    pub async fn put(&mut self, rel: &str, data: &[u8]) -> Result<u64, TransferError> {
        let path = under(&self.base, "path", rel, false)?;
        within(self.timeout, async {
            match &mut self.inner {
                Inner::Sftp(s) => s.put(&self.base, &path, data).await,
                Inner::Ftp(f) => f.put(&self.base, &path, data).await,
            }
        })
        .await
    }

    /// Removes the file (or empty directory) `rel`.
    pub async fn delete(&mut self, rel: &str) -> Result<(), TransferError> {
        let path = under(&self.base, "path", rel, false)?;
        within(self.timeout, async {
            match &mut self.inner {
                Inner::Sftp(s) => s.delete(&self.base, &path).await,
                Inner::Ftp(f) => f.delete(&self.base, &path).await,
            }
        })
        .await
    }

    /// Creates the directory `rel` and any missing parents; whether it was created (false when
    /// it was there already).
    pub async fn mkdir(&mut self, rel: &str) -> Result<bool, TransferError> {
        let path = under(&self.base, "path", rel, false)?;
        within(self.timeout, async {
            match &mut self.inner {
                Inner::Sftp(s) => s.mkdir(&self.base, &path).await,
                Inner::Ftp(f) => f.mkdir(&self.base, &path).await,
            }
        })
        .await
    }

    /// Logs out and closes the connection.
    pub async fn close(self) {
        let work = async {
            match self.inner {
                Inner::Sftp(s) => s.close().await,
                Inner::Ftp(f) => f.close().await,
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), work).await;
    }
}

/// A connection test: log in and list the base directory.
pub(crate) async fn test(c: &Connectors, m: &Material, config: &FileTransferConfig) -> Outcome {
    let mut session = match c.files_open(m).await {
        Ok(s) => s,
        Err(e) => return Outcome::fail(e.kind(), e.to_string()),
    };
    let listed = session.list("").await;
    let base = session.base().to_owned();
    let key = session.host_key().map(str::to_owned);
    session.close().await;
    match listed {
        Ok(entries) => {
            let mut o = Outcome::ok(format!(
                "Logged in as {} ({}); {} entries in {base}",
                config.username,
                config.protocol,
                entries.len()
            ));
            o.host_key = key;
            o
        }
        Err(e) => Outcome::fail(e.kind(), e.to_string()),
    }
}

/// A `get` of more than `cap` bytes.
pub(crate) fn too_large(cap: usize) -> TransferError {
    TransferError::invalid(
        "path",
        format!("is too large: at most {cap} bytes in one get"),
    )
}

/// The refusal of a server whose host key (`presented`: its fingerprint, or what it sent
/// instead) is not the one the connection pins.
pub fn not_pinned(presented: &str, pinned: &str) -> TransferError {
    TransferError::HostKey(format!(
        "the server's host key is not the pinned one: it presented {presented}, the \
         connection pins {}; if the server's key was changed on purpose, set config.host_key \
         to the new key",
        fingerprint(pinned).unwrap_or_default()
    ))
}

/// The SHA-256 fingerprint of a host key given as `known_hosts` lists it, for messages.
pub fn fingerprint(host_key: &str) -> Option<String> {
    sftp::fingerprint(host_key)
}

#[cfg(test)]
mod tests {
    use super::{is_within, relative, under};

    #[test]
    fn paths_are_joined_under_the_base_and_never_leave_it() {
        assert_eq!(
            under("/srv/x", "path", "a/b.txt", false).unwrap(),
            "/srv/x/a/b.txt"
        );
        assert_eq!(under("/", "path", "a", false).unwrap(), "/a");
        assert_eq!(under("/srv/x", "path", "", true).unwrap(), "/srv/x");
        assert_eq!(under("/srv/x", "path", "d/", true).unwrap(), "/srv/x/d");
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a\\b",
            "a/./b",
            "\u{0}",
        ] {
            let e = under("/srv/x", "path", bad, true).unwrap_err();
            assert!(
                matches!(e, super::TransferError::Invalid { field: "path", .. }),
                "{bad:?}: {e}"
            );
        }
        assert!(under("/srv/x", "path", "", false).is_err());
        assert!(is_within("/srv/x", "/srv/x/a"));
        assert!(is_within("/srv/x", "/srv/x"));
        assert!(!is_within("/srv/x", "/srv/xy"));
        assert!(!is_within("/srv/x", "/srv"));
        assert!(is_within("/", "/anything"));
        assert_eq!(relative("/srv/x", "/srv/x/a/b"), "a/b");
        assert_eq!(relative("/srv/x", "/srv/x"), ".");
    }
}
