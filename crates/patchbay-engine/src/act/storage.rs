//! Storage actions (`POST /v1/actions/storage`): put, get (the object streamed back), list,
//! delete and presign on a storage connection's bucket, every key under the connection's
//! prefix. Audited like every action (operation, key, size, outcome; never the content).

use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use patchbay_connectors::storage::{PutOptions, StorageError};
use patchbay_domain::actions::{
    BodyEncoding, StorageAction, StorageActionResult, StorageObject, StorageOp,
};
use patchbay_domain::api::ErrorKind;
use patchbay_domain::{Kind, Principal, ValidationErrors};
use serde_json::json;

use crate::act::actions::{Acted, by_kind, require_kind};
use crate::{EngineError, Hub, Result};

/// A presigned URL's lifetime unless the action says.
const PRESIGN_DEFAULT: Duration = Duration::from_secs(900);

/// A listing's page size unless the action says.
const LIST_DEFAULT: u32 = 100;

/// Largest object a put carries in its JSON body.
pub const MAX_PUT: usize = 16 * 1024 * 1024;

/// What a storage action answers: a result, or (for `get`) the object as the service sent it.
pub enum StorageOutcome {
    Done(StorageActionResult),
    Object(crate::act::Answer),
}

impl std::fmt::Debug for StorageOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Done(r) => f.debug_tuple("Done").field(r).finish(),
            Self::Object(r) => write!(f, "Object({})", r.status()),
        }
    }
}

/// The fields each operation takes besides `connection` and `op`.
fn check_fields(a: &StorageAction) -> Result<()> {
    let given: [(&str, bool); 12] = [
        ("key", a.key.is_some()),
        ("body", a.body.is_some()),
        ("encoding", a.encoding.is_some()),
        ("content_type", a.content_type.is_some()),
        ("acl", a.acl.is_some()),
        ("metadata", !a.metadata.is_empty()),
        ("prefix", a.prefix.is_some()),
        ("delimiter", a.delimiter.is_some()),
        ("limit", a.limit.is_some()),
        ("cursor", a.cursor.is_some()),
        ("method", a.method.is_some()),
        ("expires_in", a.expires_in.is_some()),
    ];
    let takes: &[&str] = match a.op {
        StorageOp::Put => &["key", "body", "encoding", "content_type", "acl", "metadata"],
        StorageOp::Get | StorageOp::Delete => &["key"],
        StorageOp::List => &["prefix", "delimiter", "limit", "cursor"],
        StorageOp::Presign => &["key", "method", "expires_in"],
    };
    let mut errs = ValidationErrors::new();
    for (field, present) in given {
        if present && !takes.contains(&field) {
            errs.push(field, format!("is not used by {}", op_name(a.op)));
        }
    }
    if a.op != StorageOp::List && a.key.is_none() {
        errs.push("key", format!("is required for {}", op_name(a.op)));
    }
    errs.into_result(()).map_err(Into::into)
}

fn op_name(op: StorageOp) -> &'static str {
    match op {
        StorageOp::Put => "put",
        StorageOp::Get => "get",
        StorageOp::List => "list",
        StorageOp::Delete => "delete",
        StorageOp::Presign => "presign",
    }
}

/// A connector's refusal as the API reports it.
pub(crate) fn storage_error(e: StorageError) -> EngineError {
    if e.is_missing() {
        return EngineError::NotFound("object");
    }
    let kind = e.kind();
    match e {
        StorageError::Invalid { field, reason } => ValidationErrors::single(field, reason).into(),
        StorageError::Auth(a) => ValidationErrors::single("connection", a.to_string()).into(),
        StorageError::Refused { status, code, .. } if kind == ErrorKind::Auth => {
            EngineError::UpstreamAuth(format!(
                "the storage service refused the connection's credentials ({status} {code})"
            ))
        }
        e @ StorageError::Refused { .. } => EngineError::Upstream(e.to_string()),
        StorageError::Http(h) => by_kind(kind, h.to_string()),
    }
}

/// The content of a put.
fn put_body(a: &StorageAction) -> Result<Bytes> {
    let body = a.body.as_deref().unwrap_or_default();
    let bytes = match a.encoding.unwrap_or_default() {
        BodyEncoding::Text => Bytes::from(body.to_owned().into_bytes()),
        BodyEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map(Bytes::from)
            .map_err(|_| {
                ValidationErrors::single("body", "is not valid base64 (encoding: base64)")
            })?,
    };
    if bytes.len() > MAX_PUT {
        return Err(ValidationErrors::single(
            "body",
            format!("is too large: at most {MAX_PUT} bytes in one put"),
        )
        .into());
    }
    Ok(bytes)
}

impl Hub {
    /// `POST /v1/actions/storage`.
    pub async fn storage_action(
        &self,
        p: &Principal,
        a: StorageAction,
        caller: Option<String>,
    ) -> Result<StorageOutcome> {
        let started = Instant::now();
        check_fields(&a)?;
        let prepared = self.prepared(p, &a.connection).await?;
        require_kind(&prepared, Kind::Storage)?;
        let m = &prepared.material;
        let c = self.connectors();
        let key = a.key.as_deref().unwrap_or_default();
        let mut bytes = None;
        let result: Result<StorageOutcome> = match a.op {
            StorageOp::Put => {
                let body = put_body(&a)?;
                bytes = Some(body.len());
                c.storage_put(
                    m,
                    key,
                    body,
                    PutOptions {
                        content_type: a.content_type.as_deref(),
                        acl: a.acl.as_deref(),
                        metadata: &a.metadata,
                    },
                )
                .await
                .map(|s| {
                    StorageOutcome::Done(StorageActionResult {
                        op: "put".into(),
                        key: Some(s.key),
                        etag: s.etag,
                        size: Some(s.size),
                        version_id: s.version_id,
                        ..Default::default()
                    })
                })
                .map_err(storage_error)
            }
            StorageOp::Get => c
                .storage_get(m, key)
                .await
                .map(|resp| {
                    bytes = resp
                        .headers()
                        .get(http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse().ok());
                    StorageOutcome::Object(resp)
                })
                .map_err(storage_error),
            StorageOp::Delete => c
                .storage_delete(m, key)
                .await
                .map(|()| {
                    StorageOutcome::Done(StorageActionResult {
                        op: "delete".into(),
                        key: Some(key.to_owned()),
                        deleted: Some(true),
                        ..Default::default()
                    })
                })
                .map_err(storage_error),
            StorageOp::List => c
                .storage_list(
                    m,
                    a.prefix.as_deref().unwrap_or(""),
                    a.delimiter.as_deref(),
                    a.limit.unwrap_or(LIST_DEFAULT),
                    a.cursor.as_deref(),
                )
                .await
                .map(|l| {
                    StorageOutcome::Done(StorageActionResult {
                        op: "list".into(),
                        objects: Some(
                            l.objects
                                .into_iter()
                                .map(|o| StorageObject {
                                    key: o.key,
                                    size: o.size,
                                    etag: o.etag,
                                    last_modified: o.last_modified,
                                })
                                .collect(),
                        ),
                        prefixes: a.delimiter.is_some().then_some(l.prefixes),
                        next_cursor: l.next_cursor,
                        ..Default::default()
                    })
                })
                .map_err(storage_error),
            StorageOp::Presign => self.presign(m, &a, key),
        };
        let (status, error) = match &result {
            Ok(StorageOutcome::Object(r)) => (Some(r.status().as_u16()), None),
            Ok(StorageOutcome::Done(_)) => (Some(200), None),
            Err(e) => (None, Some(e.to_string())),
        };
        self.acted(
            p,
            Acted {
                action: "action.storage",
                connection: &a.connection,
                status,
                success: result.is_ok(),
                details: json!({"op": op_name(a.op), "key": a.key, "prefix": a.prefix,
                    "bytes": bytes, "error": error}),
            },
            caller,
            started,
        )
        .await;
        result
    }

    fn presign(
        &self,
        m: &patchbay_connectors::Material,
        a: &StorageAction,
        key: &str,
    ) -> Result<StorageOutcome> {
        let method = match a.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("GET") => http::Method::GET,
            Some("PUT") => http::Method::PUT,
            Some(_) => {
                return Err(ValidationErrors::single("method", "must be GET or PUT").into());
            }
        };
        let expires = a.expires_in.map_or(PRESIGN_DEFAULT, Duration::from_secs);
        let now = self.now();
        let url = self
            .connectors()
            .storage_presign(m, &method, key, expires, SystemTime::from(now))
            .map_err(storage_error)?;
        let expires_at =
            now + chrono::Duration::from_std(expires).unwrap_or_else(|_| chrono::Duration::zero());
        Ok(StorageOutcome::Done(StorageActionResult {
            op: "presign".into(),
            key: Some(key.to_owned()),
            url: Some(url.to_string()),
            method: Some(method.to_string()),
            expires_at: Some(expires_at),
            ..Default::default()
        }))
    }
}
