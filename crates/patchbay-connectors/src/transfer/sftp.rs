//! SFTP over SSH (russh and russh-sftp): the server's host key checked against the pinned one,
//! a password or a private key, and every path resolved on the server (links followed) before
//! it is used, so that a link cannot lead out of the base directory.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::{Auth, FileTransferConfig};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use secrecy::ExposeSecret as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Entry, EntryKind, TransferError, is_within, relative};
use crate::{Connectors, Material};

pub(super) struct Sftp {
    ssh: russh::client::Handle<Client>,
    sftp: SftpSession,
}

/// Checks the server's key against the pin and keeps the key it saw.
struct Client {
    pinned: Option<String>,
    seen: Arc<Mutex<Option<PublicKey>>>,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates name a CA, which a connection has no way to give: refused.
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(key.clone());
        }
        Ok(self.pinned.as_deref().is_none_or(|p| matches_pin(p, key)))
    }
}

/// Whether `key` is the pinned key: the same key, or the same SHA-256 fingerprint.
fn matches_pin(pinned: &str, key: &PublicKey) -> bool {
    if pinned.starts_with("SHA256:") {
        let want = pinned.trim_end_matches('=');
        return key.fingerprint(HashAlg::Sha256).to_string() == want;
    }
    PublicKey::from_openssh(pinned).is_ok_and(|p| p.key_data() == key.key_data())
}

/// The SHA-256 fingerprint of a key as `known_hosts` lists it (a fingerprint stays itself).
pub(super) fn fingerprint(host_key: &str) -> Option<String> {
    if host_key.starts_with("SHA256:") {
        return Some(host_key.trim_end_matches('=').to_owned());
    }
    PublicKey::from_openssh(host_key)
        .ok()
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
}

/// A key as `known_hosts` lists it, without a comment.
fn openssh(key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh()
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn net(e: russh::Error) -> TransferError {
    use russh::Error as E;
    match e {
        E::IO(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                TransferError::failed(ErrorKind::Refused, io.to_string())
            }
            std::io::ErrorKind::TimedOut => {
                TransferError::failed(ErrorKind::Timeout, io.to_string())
            }
            _ => TransferError::failed(ErrorKind::Protocol, io.to_string()),
        },
        E::ConnectionTimeout | E::InactivityTimeout => {
            TransferError::failed(ErrorKind::Timeout, "the SSH server stopped answering")
        }
        other => TransferError::failed(ErrorKind::Protocol, format!("SSH: {other}")),
    }
}

/// A refused SFTP request, the path named relative to the base directory.
fn refused(e: SftpError, base: &str, path: &str) -> TransferError {
    let rel = relative(base, path);
    match e {
        SftpError::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => TransferError::Missing(format!("no such file: {rel}")),
            StatusCode::PermissionDenied => {
                TransferError::Refused(format!("permission denied: {rel}"))
            }
            _ => TransferError::Refused(format!("{rel}: {}", s.error_message)),
        },
        SftpError::Timeout => {
            TransferError::failed(ErrorKind::Timeout, "the SFTP server did not answer in time")
        }
        other => TransferError::failed(ErrorKind::Protocol, format!("SFTP: {other}")),
    }
}

pub(super) async fn open(
    c: &Connectors,
    m: &Material,
    config: &FileTransferConfig,
) -> Result<(Sftp, String, String), TransferError> {
    let addrs = c.endpoint(&config.host, config.port()).await?;
    let tcp = super::connect_any(&addrs).await?;
    let seen = Arc::new(Mutex::new(None));
    let client = Client {
        pinned: config.host_key.clone(),
        seen: seen.clone(),
    };
    let ssh_config = Arc::new(russh::client::Config {
        inactivity_timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    });
    let connected = russh::client::connect_stream(ssh_config, tcp, client).await;
    let presented = seen.lock().ok().and_then(|k| k.clone());
    let mut ssh = match connected {
        Ok(h) => h,
        Err(russh::Error::UnknownKey) => {
            let shown = presented.as_ref().map_or_else(
                || "a host certificate (not supported: pin a host key)".to_owned(),
                |k| k.fingerprint(HashAlg::Sha256).to_string(),
            );
            return Err(super::not_pinned(
                &shown,
                config.host_key.as_deref().unwrap_or_default(),
            ));
        }
        Err(e) => return Err(net(e)),
    };
    let key = presented.as_ref().map(openssh).unwrap_or_default();
    let user = config.username.clone();
    let accepted = match &m.auth {
        Auth::SshKey => {
            let pem = m
                .secret("private_key")
                .ok_or_else(|| TransferError::Auth("the private_key secret is not set".into()))?;
            let passphrase = m.secret("passphrase").map(|p| p.expose_secret());
            let private =
                russh::keys::decode_secret_key(pem.expose_secret(), passphrase).map_err(|e| {
                    TransferError::Auth(format!(
                        "the private key cannot be read ({}): an OpenSSH or PEM key, with its \
                         passphrase if it has one",
                        key_error(&e)
                    ))
                })?;
            let hash = ssh.best_supported_rsa_hash().await.map_err(net)?.flatten();
            ssh.authenticate_publickey(
                user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(private), hash),
            )
            .await
            .map_err(net)?
        }
        _ => {
            let password = m.secret("password").map_or("", |p| p.expose_secret());
            ssh.authenticate_password(user.clone(), password)
                .await
                .map_err(net)?
        }
    };
    if !accepted.success() {
        let what = if matches!(m.auth, Auth::SshKey) {
            "key"
        } else {
            "password"
        };
        return Err(TransferError::Auth(format!(
            "Authentication failed: the server refused the {what} for user {user:?}"
        )));
    }
    let channel = ssh.channel_open_session().await.map_err(net)?;
    channel.request_subsystem(true, "sftp").await.map_err(net)?;
    let sftp = SftpSession::new(channel.into_stream())
        .await
        .map_err(|e| TransferError::failed(ErrorKind::Protocol, format!("SFTP: {e}")))?;
    let home = sftp
        .canonicalize(".")
        .await
        .map_err(|e| refused(e, "", "."))?;
    let wanted = match config.base_dir.as_deref() {
        None => home.clone(),
        Some(d) if d.starts_with('/') => d.to_owned(),
        Some(d) => super::join(&home, d),
    };
    let base =
        sftp.canonicalize(wanted.clone())
            .await
            .map_err(|e| match refused(e, "", &wanted) {
                TransferError::Missing(_) => TransferError::Missing(format!(
                    "the base directory {wanted} does not exist on the server"
                )),
                other => other,
            })?;
    Ok((Sftp { ssh, sftp }, base, key))
}

fn key_error(e: &russh::keys::Error) -> &'static str {
    match e {
        russh::keys::Error::KeyIsEncrypted => "it is encrypted and no passphrase was given",
        _ => "not a key russh reads, or a wrong passphrase",
    }
}

impl Sftp {
    /// `path` resolved on the server (links followed), refused when it is not under `base`.
    async fn confined(&self, base: &str, path: &str) -> Result<String, TransferError> {
        let real = self
            .sftp
            .canonicalize(path)
            .await
            .map_err(|e| refused(e, base, path))?;
        if !is_within(base, &real) {
            return Err(TransferError::invalid(
                "path",
                format!(
                    "leads out of the base directory (through a link): {}",
                    relative(base, path)
                ),
            ));
        }
        Ok(real)
    }

    /// `path`'s parent resolved and confined, and `path` itself when it exists.
    async fn confined_target(&self, base: &str, path: &str) -> Result<(), TransferError> {
        self.confined(base, parent(path)).await?;
        if self.exists(path).await {
            self.confined(base, path).await?;
        }
        Ok(())
    }

    async fn exists(&self, path: &str) -> bool {
        self.sftp.symlink_metadata(path).await.is_ok()
    }

    pub(super) async fn list(
        &mut self,
        base: &str,
        path: &str,
    ) -> Result<Vec<Entry>, TransferError> {
        let dir = self.confined(base, path).await?;
        let entries = self
            .sftp
            .read_dir(dir.clone())
            .await
            .map_err(|e| refused(e, base, path))?;
        Ok(entries
            .filter(|e| e.file_name() != "." && e.file_name() != "..")
            .take(super::MAX_ENTRIES)
            .map(|e| {
                let meta = e.metadata();
                let ty = e.file_type();
                let kind = if ty.is_dir() {
                    EntryKind::Dir
                } else if ty.is_symlink() {
                    EntryKind::Link
                } else if ty.is_file() {
                    EntryKind::File
                } else {
                    EntryKind::Other
                };
                Entry {
                    name: e.file_name(),
                    kind,
                    size: meta.size,
                    modified: meta
                        .mtime
                        .and_then(|t| chrono::DateTime::from_timestamp(i64::from(t), 0)),
                }
            })
            .collect())
    }

    pub(super) async fn get(
        &mut self,
        base: &str,
        path: &str,
        cap: usize,
    ) -> Result<Vec<u8>, TransferError> {
        let real = self.confined(base, path).await?;
        let meta = self
            .sftp
            .metadata(real.clone())
            .await
            .map_err(|e| refused(e, base, path))?;
        if meta.is_dir() {
            return Err(TransferError::invalid("path", "is a directory (use list)"));
        }
        if meta.size.is_some_and(|s| s > cap as u64) {
            return Err(super::too_large(cap));
        }
        let file = self
            .sftp
            .open(real)
            .await
            .map_err(|e| refused(e, base, path))?;
        let mut out = Vec::new();
        file.take(cap as u64 + 1)
            .read_to_end(&mut out)
            .await
            .map_err(|e| TransferError::failed(ErrorKind::Protocol, format!("SFTP read: {e}")))?;
        if out.len() > cap {
            return Err(super::too_large(cap));
        }
        Ok(out)
    }

    pub(super) async fn put(
        &mut self,
        base: &str,
        path: &str,
        data: &[u8],
    ) -> Result<u64, TransferError> {
        self.confined_target(base, path).await?;
        let mut file = self
            .sftp
            .create(path)
            .await
            .map_err(|e| refused(e, base, path))?;
        let io = |e: std::io::Error| {
            TransferError::failed(ErrorKind::Protocol, format!("SFTP write: {e}"))
        };
        file.write_all(data).await.map_err(io)?;
        file.shutdown().await.map_err(io)?;
        Ok(data.len() as u64)
    }

    pub(super) async fn delete(&mut self, base: &str, path: &str) -> Result<(), TransferError> {
        self.confined(base, parent(path)).await?;
        let meta = self
            .sftp
            .symlink_metadata(path)
            .await
            .map_err(|e| refused(e, base, path))?;
        if meta.is_dir() {
            self.sftp.remove_dir(path).await
        } else {
            self.sftp.remove_file(path).await
        }
        .map_err(|e| refused(e, base, path))
    }

    pub(super) async fn mkdir(&mut self, base: &str, path: &str) -> Result<bool, TransferError> {
        let rel = relative(base, path).to_owned();
        let mut at = base.to_owned();
        let mut created = false;
        for segment in rel.split('/') {
            let next = super::join(&at, segment);
            self.confined(base, &at).await?;
            created = match self.sftp.metadata(next.clone()).await {
                Ok(m) if m.is_dir() => false,
                Ok(_) => {
                    return Err(TransferError::Refused(format!(
                        "{} exists and is not a directory",
                        relative(base, &next)
                    )));
                }
                Err(_) => {
                    self.sftp
                        .create_dir(next.clone())
                        .await
                        .map_err(|e| refused(e, base, &next))?;
                    true
                }
            };
            at = next;
        }
        Ok(created)
    }

    pub(super) async fn close(self) {
        let _ = self.sftp.close().await;
        let _ = self
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// The directory an absolute `path` is in.
fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some((p, _)) if !p.is_empty() => p,
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use russh::keys::PublicKey;

    use super::{fingerprint, matches_pin, openssh};

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const OTHER: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA2CX52jMwV4FFyn1BE+PFAynVxjoAQMh034DwQVcTsp";
    /// As `ssh-keygen -lf` (and asyncssh) print it.
    const PRINT: &str = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU";

    #[test]
    fn a_pin_is_the_key_itself_or_its_sha256_fingerprint() {
        let key = PublicKey::from_openssh(KEY).unwrap();
        assert!(matches_pin(KEY, &key));
        assert!(
            matches_pin(&format!("{KEY} root@files"), &key),
            "a comment is not part of it"
        );
        assert!(matches_pin(PRINT, &key));
        assert!(matches_pin(&format!("{PRINT}="), &key), "padded");
        assert!(!matches_pin(OTHER, &key));
        assert!(!matches_pin(
            "SHA256:2DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
            &key
        ));
        assert!(!matches_pin("garbage", &key));
        assert_eq!(fingerprint(KEY).as_deref(), Some(PRINT));
        assert_eq!(openssh(&key), KEY);
    }
}
