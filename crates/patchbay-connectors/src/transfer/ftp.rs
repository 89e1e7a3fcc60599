//! FTPS with explicit TLS (`AUTH TLS`, then `PROT P` for the data connections) and, where the
//! operator allows it, plain FTP (suppaftp). Transfers are passive and binary; each data
//! connection goes to the control connection's own address at the port the server named —
//! never to another address a `PASV` answer names (the "FTP bounce") — and through the gate.

use std::net::SocketAddr;
use std::sync::Arc;

use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::{FileProtocol, FileTransferConfig};
use patchbay_net::Gate;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use secrecy::ExposeSecret as _;
use suppaftp::list::ListParser;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Status};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Entry, EntryKind, TransferError, relative};
use crate::{Connectors, Material};

pub(super) struct Ftp {
    ftp: AsyncRustlsFtpStream,
}

/// A refused FTP command, the path named relative to the base directory.
fn refused(e: FtpError, base: &str, path: &str) -> TransferError {
    let rel = relative(base, path);
    match e {
        FtpError::ConnectionError(io) => match io.kind() {
            std::io::ErrorKind::PermissionDenied => {
                TransferError::failed(ErrorKind::Blocked, io.to_string())
            }
            std::io::ErrorKind::TimedOut => {
                TransferError::failed(ErrorKind::Timeout, io.to_string())
            }
            std::io::ErrorKind::ConnectionRefused => {
                TransferError::failed(ErrorKind::Refused, io.to_string())
            }
            _ => TransferError::failed(ErrorKind::Protocol, format!("FTP: {io}")),
        },
        FtpError::SecureError(m) => TransferError::failed(ErrorKind::Tls, format!("TLS: {m}")),
        FtpError::UnexpectedResponse(r) => {
            let text = r.as_string().unwrap_or_default();
            let text = text.trim();
            match r.status {
                Status::NotLoggedIn => TransferError::Auth(format!(
                    "Authentication failed: the server answered {} {text}",
                    r.status.code()
                )),
                Status::FileUnavailable
                    if text.to_ascii_lowercase().contains("no such file")
                        || text.to_ascii_lowercase().contains("not found") =>
                {
                    TransferError::Missing(format!("no such file: {rel}"))
                }
                s => TransferError::Refused(format!(
                    "{rel}: the server answered {} {text}",
                    s.code()
                )),
            }
        }
        other => TransferError::failed(ErrorKind::Protocol, format!("FTP: {other}")),
    }
}

/// The TLS settings of an FTPS session: the connection's CA, or the system's roots.
fn tls(config: &FileTransferConfig) -> Result<rustls::ClientConfig, TransferError> {
    let roots = match &config.tls_ca {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert
                    .map_err(|_| TransferError::invalid("config.tls_ca", "is not a valid PEM"))?;
                roots.add(cert).map_err(|e| {
                    TransferError::invalid("config.tls_ca", format!("is not usable: {e}"))
                })?;
            }
            Some(roots)
        }
        None => None,
    };
    patchbay_net::tls_config(roots).map_err(|e| TransferError::failed(ErrorKind::Tls, e))
}

/// The data connections of a session: to `control`'s address, at the port the server named,
/// checked by the gate.
fn data_connections(
    ftp: AsyncRustlsFtpStream,
    gate: Gate,
    host: String,
    control: SocketAddr,
) -> AsyncRustlsFtpStream {
    ftp.passive_stream_builder(move |named: SocketAddr| {
        let gate = gate.clone();
        let host = host.clone();
        Box::pin(async move {
            let addr = SocketAddr::new(control.ip(), named.port());
            gate.check(&host, addr.ip()).map_err(|e| {
                FtpError::ConnectionError(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    e.to_string(),
                ))
            })?;
            tokio::net::TcpStream::connect(addr)
                .await
                .map_err(FtpError::ConnectionError)
        })
    })
}

pub(super) async fn open(
    c: &Connectors,
    m: &Material,
    config: &FileTransferConfig,
) -> Result<(Ftp, String), TransferError> {
    if config.protocol == FileProtocol::Ftp && !c.settings.allow_plaintext_ftp {
        return Err(TransferError::failed(
            ErrorKind::Tls,
            "plain FTP sends the password and the files in clear: use ftps or sftp (the \
             operator may allow plain FTP with --allow-plaintext-ftp)",
        ));
    }
    let addrs = c.endpoint(&config.host, config.port()).await?;
    let tcp = super::connect_any(&addrs).await?;
    let control = tcp
        .peer_addr()
        .map_err(|e| TransferError::failed(ErrorKind::Protocol, e.to_string()))?;
    let ftp = AsyncRustlsFtpStream::connect_with_stream(tcp)
        .await
        .map_err(|e| refused(e, "", "."))?;
    let mut ftp = data_connections(ftp, c.gate().clone(), config.host.clone(), control);
    if config.protocol == FileProtocol::Ftps {
        let connector =
            AsyncRustlsConnector::from(tokio_rustls::TlsConnector::from(Arc::new(tls(config)?)));
        let domain = config.host.trim_start_matches('[').trim_end_matches(']');
        ftp = ftp
            .into_secure(connector, domain)
            .await
            .map_err(|e| match e {
                FtpError::UnexpectedResponse(r) => TransferError::failed(
                    ErrorKind::Tls,
                    format!(
                        "the server does not offer explicit TLS (AUTH TLS answered {})",
                        r.status.code()
                    ),
                ),
                other => refused(other, "", "."),
            })?;
    }
    let password = m.secret("password").map_or("", |p| p.expose_secret());
    ftp.login(config.username.as_str(), password)
        .await
        .map_err(|e| refused(e, "", "."))?;
    ftp.transfer_type(FileType::Binary)
        .await
        .map_err(|e| refused(e, "", "."))?;
    let home = ftp.pwd().await.map_err(|e| refused(e, "", "."))?;
    let base = match config.base_dir.as_deref() {
        None => home,
        Some(d) if d.starts_with('/') => d.to_owned(),
        Some(d) => super::join(&home, d),
    };
    ftp.cwd(&base)
        .await
        .map_err(|e| match refused(e, "", &base) {
            TransferError::Missing(_) | TransferError::Refused(_) => TransferError::Missing(
                format!("the base directory {base} does not exist on the server"),
            ),
            other => other,
        })?;
    Ok((Ftp { ftp }, base))
}

impl Ftp {
    pub(super) async fn list(
        &mut self,
        base: &str,
        path: &str,
    ) -> Result<Vec<Entry>, TransferError> {
        let (lines, machine) = match self.ftp.mlsd(Some(path)).await {
            Ok(lines) => (lines, true),
            Err(FtpError::UnexpectedResponse(r))
                if matches!(r.status, Status::BadCommand | Status::NotImplemented) =>
            {
                let lines = self
                    .ftp
                    .list(Some(path))
                    .await
                    .map_err(|e| refused(e, base, path))?;
                (lines, false)
            }
            Err(e) => return Err(refused(e, base, path)),
        };
        Ok(lines
            .iter()
            .filter_map(|line| {
                let f = if machine {
                    ListParser::parse_mlsd(line).ok()?
                } else {
                    ListParser::parse_posix(line)
                        .or_else(|_| ListParser::parse_dos(line))
                        .ok()?
                };
                let name = f.name().to_owned();
                if name == "." || name == ".." || name.is_empty() {
                    return None;
                }
                let kind = if f.is_directory() {
                    EntryKind::Dir
                } else if f.is_symlink() {
                    EntryKind::Link
                } else if f.is_file() {
                    EntryKind::File
                } else {
                    EntryKind::Other
                };
                Some(Entry {
                    name,
                    kind,
                    size: (kind == EntryKind::File).then_some(f.size() as u64),
                    modified: Some(chrono::DateTime::<chrono::Utc>::from(f.modified())),
                })
            })
            .collect())
    }

    pub(super) async fn get(
        &mut self,
        base: &str,
        path: &str,
        cap: usize,
    ) -> Result<Vec<u8>, TransferError> {
        if let Ok(size) = self.ftp.size(path).await
            && size > cap
        {
            return Err(super::too_large(cap));
        }
        let mut stream = self
            .ftp
            .retr_as_stream(path)
            .await
            .map_err(|e| refused(e, base, path))?;
        let mut out = Vec::new();
        let read = (&mut stream)
            .take(cap as u64 + 1)
            .read_to_end(&mut out)
            .await;
        if let Err(e) = read {
            let _ = self.ftp.abort(stream).await;
            return Err(TransferError::failed(
                ErrorKind::Protocol,
                format!("FTP read: {e}"),
            ));
        }
        if out.len() > cap {
            let _ = self.ftp.abort(stream).await;
            return Err(super::too_large(cap));
        }
        stream.finish().await.map_err(|e| refused(e, base, path))?;
        Ok(out)
    }

    pub(super) async fn put(
        &mut self,
        base: &str,
        path: &str,
        data: &[u8],
    ) -> Result<u64, TransferError> {
        let mut stream = self
            .ftp
            .put_with_stream(path)
            .await
            .map_err(|e| refused(e, base, path))?;
        if let Err(e) = stream.write_all(data).await {
            let _ = self.ftp.abort(stream).await;
            return Err(TransferError::failed(
                ErrorKind::Protocol,
                format!("FTP write: {e}"),
            ));
        }
        stream.finish().await.map_err(|e| refused(e, base, path))?;
        Ok(data.len() as u64)
    }

    pub(super) async fn delete(&mut self, base: &str, path: &str) -> Result<(), TransferError> {
        match self.ftp.rm(path).await {
            Ok(()) => Ok(()),
            Err(first) => match self.ftp.rmdir(path).await {
                Ok(()) => Ok(()),
                Err(_) => Err(refused(first, base, path)),
            },
        }
    }

    pub(super) async fn mkdir(&mut self, base: &str, path: &str) -> Result<bool, TransferError> {
        let rel = relative(base, path).to_owned();
        let mut at = base.to_owned();
        let mut created = false;
        for segment in rel.split('/') {
            let next = super::join(&at, segment);
            created = match self.ftp.mkdir(&next).await {
                Ok(()) => true,
                Err(e) => {
                    // There already, as a directory: the server lets us change into it.
                    if self.ftp.cwd(&next).await.is_err() {
                        return Err(refused(e, base, &next));
                    }
                    false
                }
            };
            at = next;
        }
        self.ftp
            .cwd(base)
            .await
            .map_err(|e| refused(e, base, base))?;
        Ok(created)
    }

    pub(super) async fn close(mut self) {
        let _ = self.ftp.quit().await;
    }
}
