//! What went wrong with an MCP server, sorted the way connection tests sort failures.

use std::error::Error as StdError;

use patchbay_domain::api::ErrorKind;
use patchbay_net::HttpError;
use rmcp::service::{ClientInitializeError, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpError;

/// A failure: its kind and a message that names no URL and carries no credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct McpError {
    pub kind: ErrorKind,
    pub message: String,
    /// The `WWW-Authenticate` challenge of a 401 or 403, for MCP authorization.
    pub challenge: Option<String>,
}

/// The longest message kept from a server's own words.
const MESSAGE_MAX: usize = 300;

impl McpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            kind,
            message: message.chars().take(MESSAGE_MAX).collect(),
            challenge: None,
        }
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    pub fn timeout(timeout: std::time::Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("no answer within {} ms", timeout.as_millis()),
        )
    }

    /// Appends what the server's process wrote to stderr (already redacted).
    pub(crate) fn with_stderr(mut self, stderr: Option<String>) -> Self {
        if let Some(text) = stderr.filter(|t| !t.is_empty()) {
            self.message = format!("{}; stderr: {text}", self.message)
                .chars()
                .take(MESSAGE_MAX * 2)
                .collect();
        }
        self
    }

    /// Sorts an error of the transport or the protocol library.
    pub(crate) fn from_error(e: &(dyn StdError + 'static)) -> Self {
        let mut source = Some(e);
        while let Some(current) = source {
            if let Some(known) = Self::recognise(current) {
                return known;
            }
            source = current.source();
        }
        if let Some(http) = patchbay_net::classify_chain(e) {
            return Self::from_http(http);
        }
        let text = patchbay_net::redact_urls(&e.to_string());
        let lower = text.to_ascii_lowercase();
        let kind = if ["401", "403", "unauthorized", "forbidden", "auth required"]
            .iter()
            .any(|w| lower.contains(w))
        {
            ErrorKind::Auth
        } else {
            ErrorKind::Protocol
        };
        Self::new(kind, format!("MCP: {text}"))
    }

    fn recognise(e: &(dyn StdError + 'static)) -> Option<Self> {
        if let Some(own) = e.downcast_ref::<McpError>() {
            return Some(own.clone());
        }
        let http = e.downcast_ref::<StreamableHttpError<reqwest::Error>>()?;
        let auth = |challenge: &str, what: &str| Self {
            kind: ErrorKind::Auth,
            message: what.to_owned(),
            challenge: Some(challenge.to_owned()),
        };
        Some(match http {
            StreamableHttpError::AuthRequired(a) => auth(
                &a.www_authenticate_header,
                "the MCP server refused the credentials (401)",
            ),
            StreamableHttpError::InsufficientScope(a) => auth(
                &a.www_authenticate_header,
                "the MCP server wants more scopes (403 insufficient_scope)",
            ),
            StreamableHttpError::HttpStatus(s) if s.status == 401 || s.status == 403 => Self::new(
                ErrorKind::Auth,
                format!("the MCP server refused the credentials ({})", s.status),
            ),
            StreamableHttpError::HttpStatus(s) => {
                Self::protocol(format!("the MCP server answered HTTP {}", s.status))
            }
            // Redirects are not followed: credentials go to the configured URL only.
            StreamableHttpError::UnexpectedServerResponse(text) if text.starts_with("HTTP 3") => {
                Self::protocol(format!(
                    "the MCP server answered with a redirect ({}), which is not followed",
                    text.split(':').next().unwrap_or("HTTP 3xx")
                ))
            }
            StreamableHttpError::ResponseBodyTooLarge { max_size } => Self::protocol(format!(
                "the MCP server's answer is larger than {max_size} bytes"
            )),
            StreamableHttpError::Client(e) => Self::from_http(
                patchbay_net::classify_chain(e)
                    .unwrap_or_else(|| HttpError::Other(patchbay_net::redact_urls(&e.to_string()))),
            ),
            _ => return None,
        })
    }

    pub(crate) fn from_http(e: HttpError) -> Self {
        match e {
            HttpError::Net(n) => {
                let kind = match n {
                    patchbay_net::NetError::Blocked { .. } => ErrorKind::Blocked,
                    _ => ErrorKind::Dns,
                };
                Self::new(kind, n.to_string())
            }
            HttpError::Timeout => Self::new(ErrorKind::Timeout, "timed out"),
            HttpError::Connect(m) => Self::new(ErrorKind::Refused, m),
            HttpError::Tls(m) => Self::new(ErrorKind::Tls, m),
            HttpError::Url(m) | HttpError::Other(m) => Self::protocol(m),
        }
    }

    pub(crate) fn from_service(e: ServiceError) -> Self {
        match e {
            ServiceError::McpError(data) => Self::protocol(format!(
                "the MCP server answered error {}: {}",
                data.code.0,
                patchbay_net::redact_urls(&data.message)
            )),
            ServiceError::Timeout { timeout } => Self::timeout(timeout),
            ServiceError::TransportClosed => Self::protocol("the MCP server closed the connection"),
            ServiceError::UnexpectedResponse => {
                Self::protocol("the MCP server answered with an unexpected result")
            }
            other => Self::from_error(&other),
        }
    }

    pub(crate) fn from_init(e: ClientInitializeError) -> Self {
        match e {
            ClientInitializeError::JsonRpcError(data) => Self::protocol(format!(
                "the MCP server refused to start a session: error {}: {}",
                data.code.0,
                patchbay_net::redact_urls(&data.message)
            )),
            ClientInitializeError::ConnectionClosed(_) => {
                Self::protocol("the MCP server closed the connection before it was ready")
            }
            ClientInitializeError::NoCompatibleProtocolVersion {
                server_supported, ..
            } => Self::protocol(format!(
                "the MCP server speaks none of this client's protocol versions (it offers {})",
                server_supported
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            // Its transport error is not marked as its source: followed here.
            ClientInitializeError::TransportError { error, .. } => Self::from_error(&error),
            ClientInitializeError::LegacyFallbackFailed { fallback, .. } => {
                Self::from_init(*fallback)
            }
            ClientInitializeError::ExpectedInitResponse(_)
            | ClientInitializeError::ExpectedInitResult(_) => {
                Self::protocol("the MCP server answered initialize with something else")
            }
            other => Self::from_error(&other),
        }
    }
}
