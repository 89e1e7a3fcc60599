//! The one outbound gate (SPEC §4, Outbound network safety). Every connection Patchbay makes on
//! a tenant's behalf — HTTP, databases, SMTP, webhooks, MCP, OAuth — resolves its host here,
//! has every address checked against the denied ranges, and connects only to an address that
//! was checked. Redirects are never followed automatically and environment proxies are
//! ignored. Only the operator can open ranges (`--allow-net`).

mod gate;
mod host;
mod http;
mod ip;
mod upstream;

pub use gate::{Gate, GateSettings};
pub use host::{Target, parse_host};
pub use http::{
    GatedHttp, HttpError, Refusals, classify, classify_chain, read_capped, redact_urls,
};
pub use ip::denied_reason;
pub use ipnet::IpNet;
pub use upstream::{Answer, BoxError, Destination, SendBody, UpstreamClient};

/// The TLS settings of an outbound client (aws-lc-rs, the safe protocol versions): servers
/// verified against `roots` when given, by the platform's verifier otherwise.
pub fn tls_config(roots: Option<rustls::RootCertStore>) -> Result<rustls::ClientConfig, String> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    Ok(match roots {
        Some(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
        None => rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier(builder)
            .map_err(|e| e.to_string())?
            .with_no_client_auth(),
    })
}

/// Why an outbound attempt did not happen or failed before any application traffic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The destination is in a denied range and not allow-listed by the operator.
    #[error("blocked: {}", blocked_text(host, addr, reason))]
    Blocked {
        host: String,
        addr: std::net::IpAddr,
        reason: &'static str,
    },
    #[error("cannot resolve {host}: {message}")]
    Dns { host: String, message: String },
    #[error("invalid host {0:?}")]
    InvalidHost(String),
}

/// "10.0.0.5 is a private address", or "db.example resolves to 10.0.0.5, which is …".
fn blocked_text(host: &str, addr: &std::net::IpAddr, reason: &str) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok_and(|h| h == *addr) {
        format!("{addr} is {reason}")
    } else {
        format!("{host} resolves to {addr}, which is {reason}")
    }
}

impl NetError {
    pub fn is_blocked(&self) -> bool {
        matches!(self, NetError::Blocked { .. })
    }
}

#[cfg(test)]
mod error_tests {
    use super::NetError;

    #[test]
    fn a_refusal_names_the_address_once_when_the_host_is_one() {
        let literal = NetError::Blocked {
            host: "10.0.0.5".into(),
            addr: "10.0.0.5".parse().unwrap(),
            reason: "a private address",
        };
        assert_eq!(
            literal.to_string(),
            "blocked: 10.0.0.5 is a private address"
        );
        let named = NetError::Blocked {
            host: "db.example".into(),
            addr: "10.0.0.5".parse().unwrap(),
            reason: "a private address",
        };
        assert_eq!(
            named.to_string(),
            "blocked: db.example resolves to 10.0.0.5, which is a private address"
        );
    }
}
