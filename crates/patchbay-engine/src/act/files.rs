//! File actions (`POST /v1/actions/files`): put, get, list, delete and mkdir on a
//! file-transfer connection's server, every path under the connection's base directory. An
//! SFTP server's host key is pinned on first use when the connection names none. Audited like
//! every action (operation, path, size, outcome; never the content).

use std::time::Instant;

use base64::Engine as _;
use patchbay_connectors::transfer::{self, FileSession, TransferError};
use patchbay_domain::actions::{BodyEncoding, FileEntry, FilesAction, FilesActionResult, FilesOp};
use patchbay_domain::{ConnectionId, Kind, Principal, ValidationErrors};
use serde_json::json;

use crate::act::actions::{Acted, by_kind, require_kind};
use crate::core::Change;
use crate::{EngineError, Hub, Result};

/// The fields each operation takes besides `connection` and `op`.
fn check_fields(a: &FilesAction) -> Result<()> {
    let mut errs = ValidationErrors::new();
    if a.body.is_some() && a.op != FilesOp::Put {
        errs.push("body", format!("is not used by {}", a.op.as_str()));
    }
    if a.encoding.is_some() && !matches!(a.op, FilesOp::Put | FilesOp::Get) {
        errs.push("encoding", format!("is not used by {}", a.op.as_str()));
    }
    if a.op != FilesOp::List && a.path.as_deref().is_none_or(str::is_empty) {
        errs.push("path", format!("is required for {}", a.op.as_str()));
    }
    errs.into_result(()).map_err(Into::into)
}

/// A connector's refusal as the API reports it.
pub(crate) fn transfer_error(e: TransferError) -> EngineError {
    let kind = e.kind();
    match e {
        TransferError::Invalid { field, reason } => ValidationErrors::single(field, reason).into(),
        TransferError::Auth(m) => EngineError::UpstreamAuth(m),
        TransferError::Missing(_) => EngineError::NotFound("file"),
        TransferError::Refused(m) => EngineError::BadRequest {
            code: "file_refused",
            message: format!("the server refused the operation: {m}"),
        },
        TransferError::HostKey(m) => EngineError::Upstream(m),
        TransferError::Failed { message, .. } => by_kind(kind, message),
    }
}

/// The content of a put.
fn put_body(a: &FilesAction) -> Result<Vec<u8>> {
    let body = a.body.as_deref().unwrap_or_default();
    let bytes = match a.encoding.unwrap_or_default() {
        BodyEncoding::Text => body.as_bytes().to_vec(),
        BodyEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|_| {
                ValidationErrors::single("body", "is not valid base64 (encoding: base64)")
            })?,
    };
    if bytes.len() > transfer::MAX_FILE {
        return Err(ValidationErrors::single(
            "body",
            format!(
                "is too large: at most {} bytes in one put",
                transfer::MAX_FILE
            ),
        )
        .into());
    }
    Ok(bytes)
}

/// Content as the caller asked, or as text when it is UTF-8 and base64 otherwise.
fn encoded(bytes: Vec<u8>, asked: Option<BodyEncoding>) -> (String, BodyEncoding) {
    match (asked, String::from_utf8(bytes)) {
        (Some(BodyEncoding::Base64), Ok(s)) => (
            base64::engine::general_purpose::STANDARD.encode(s),
            BodyEncoding::Base64,
        ),
        (_, Ok(s)) => (s, BodyEncoding::Text),
        (_, Err(e)) => (
            base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
            BodyEncoding::Base64,
        ),
    }
}

impl Hub {
    /// `POST /v1/actions/files`.
    pub async fn files_action(
        &self,
        p: &Principal,
        a: FilesAction,
        caller: Option<String>,
    ) -> Result<FilesActionResult> {
        let started = Instant::now();
        check_fields(&a)?;
        let prepared = self.prepared(p, &a.connection).await?;
        require_kind(&prepared, Kind::FileTransfer)?;
        let m = &prepared.material;
        let mut bytes = None;
        let result = async {
            let body = if a.op == FilesOp::Put {
                Some(put_body(&a)?)
            } else {
                None
            };
            let mut session = self
                .connectors()
                .files_open(m)
                .await
                .map_err(transfer_error)?;
            let pinned = m.spec.file_transfer().and_then(|c| c.host_key.as_deref());
            if pinned.is_none()
                && let Some(key) = session.host_key()
            {
                self.pin_host_key(p, &a.connection, key).await?;
            }
            let done = run(&mut session, &a, body, &mut bytes).await;
            session.close().await;
            done.map_err(transfer_error)
        }
        .await;
        let error = result.as_ref().err().map(ToString::to_string);
        self.acted(
            p,
            Acted {
                action: "action.files",
                connection: &a.connection,
                status: result.is_ok().then_some(200),
                success: result.is_ok(),
                details: json!({"op": a.op.as_str(), "path": a.path, "bytes": bytes,
                    "error": error}),
            },
            caller,
            started,
        )
        .await;
        result
    }

    /// Pins `key` as the connection's SFTP host key when it has none yet; refuses it when
    /// another use pinned a different key meanwhile.
    pub(crate) async fn pin_host_key(
        &self,
        p: &Principal,
        id: &ConnectionId,
        key: &str,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let Some(mut c) = w.lock_connection(&p.org_id, id).await? else {
            return Err(EngineError::NotFound("connection"));
        };
        match c.config.get("host_key").and_then(|v| v.as_str()) {
            Some(pinned) if pinned == key => return Ok(()),
            Some(pinned) => {
                let presented = transfer::fingerprint(key).unwrap_or_default();
                return Err(transfer_error(transfer::not_pinned(&presented, pinned)));
            }
            None => {}
        }
        c.config.insert("host_key".into(), key.into());
        let version = c.version;
        c.updated_at = self.now();
        w.update_connection(&p.org_id, &c, version, &[], &[])
            .await?;
        w.succeeded(
            p,
            "connection.host_key_pinned",
            id.to_string(),
            json!({"fingerprint": transfer::fingerprint(key)}),
        );
        w.invalidates(Change::connection(id));
        w.commit().await
    }
}

/// One operation on an open session.
async fn run(
    s: &mut FileSession,
    a: &FilesAction,
    body: Option<Vec<u8>>,
    bytes: &mut Option<u64>,
) -> std::result::Result<FilesActionResult, TransferError> {
    let rel = a.path.as_deref().unwrap_or_default();
    let path = if rel.is_empty() {
        ".".to_owned()
    } else {
        rel.trim_end_matches('/').to_owned()
    };
    let mut r = FilesActionResult {
        op: a.op.as_str().into(),
        path,
        ..Default::default()
    };
    match a.op {
        FilesOp::Put => {
            let n = s.put(rel, body.as_deref().unwrap_or_default()).await?;
            *bytes = Some(n);
            r.size = Some(n);
        }
        FilesOp::Get => {
            let content = s.get(rel, transfer::MAX_FILE).await?;
            let n = content.len() as u64;
            *bytes = Some(n);
            let (body, encoding) = encoded(content, a.encoding);
            r.size = Some(n);
            r.body = Some(body);
            r.encoding = Some(encoding);
        }
        FilesOp::List => {
            let entries = s.list(rel).await?;
            r.entries = Some(
                entries
                    .into_iter()
                    .map(|e| FileEntry {
                        name: e.name,
                        kind: e.kind.as_str().into(),
                        size: e.size,
                        modified: e.modified,
                    })
                    .collect(),
            );
        }
        FilesOp::Delete => {
            s.delete(rel).await?;
            r.deleted = Some(true);
        }
        FilesOp::Mkdir => r.created = Some(s.mkdir(rel).await?),
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use patchbay_domain::actions::BodyEncoding;

    use super::encoded;

    #[test]
    fn content_is_text_when_it_can_be_and_base64_when_asked_or_binary() {
        assert_eq!(
            encoded(b"hi".to_vec(), None),
            ("hi".into(), BodyEncoding::Text)
        );
        assert_eq!(
            encoded(b"hi".to_vec(), Some(BodyEncoding::Base64)),
            ("aGk=".into(), BodyEncoding::Base64)
        );
        assert_eq!(
            encoded(vec![0xff, 0x00], Some(BodyEncoding::Text)),
            ("/wA=".into(), BodyEncoding::Base64)
        );
    }
}
