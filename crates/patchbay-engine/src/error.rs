//! The engine's error type; the server maps each variant to one HTTP status.

use patchbay_domain::ValidationErrors;
use patchbay_store::StoreError;
use patchbay_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Fields failed validation (422), each named.
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// A request that is malformed as a whole (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("missing or invalid token")]
    Unauthenticated,
    /// Inside its own organization, the caller's role does not allow this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Absent, deleted, outside the caller's organization or project scope: all alike (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` named another version (412).
    #[error("the {kind} changed since it was read: current version is {current}")]
    VersionMismatch { kind: &'static str, current: i64 },
    /// No secret can be read or written while the vault is sealed (503).
    #[error("{0}")]
    Sealed(String),
    /// A stored ciphertext failed to open: tampering, or a row copied elsewhere (500, with
    /// this message, which names the object and field but never a value).
    #[error("{0}")]
    Integrity(String),
    /// An upstream (the provider's token endpoint) failed; retrying later may help (502).
    #[error("{0}")]
    Upstream(String),
    /// The upstream refused the connection's credentials (502): its answer named them wrong,
    /// expired or not allowed.
    #[error("{0}")]
    UpstreamAuth(String),
    /// The outbound gate refused the destination (403).
    #[error("{0}")]
    Blocked(String),
    /// The upstream did not answer within the connection's timeout (504).
    #[error("{0}")]
    Timeout(String),
    /// Too many requests of a limited kind; retry after this many seconds (429).
    #[error("too many requests: retry in {0} s")]
    RateLimited(u64),
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => EngineError::Conflict(m),
            StoreError::NotFound => EngineError::NotFound("object"),
            StoreError::VersionMismatch => {
                EngineError::Conflict("the object changed concurrently; retry".into())
            }
            other => EngineError::Internal(other.to_string()),
        }
    }
}

impl From<VaultError> for EngineError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Sealed(why) => EngineError::Sealed(format!("the vault is sealed: {why}")),
            other => EngineError::Integrity(other.to_string()),
        }
    }
}

impl EngineError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        EngineError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        EngineError::Forbidden(message.into())
    }
}
