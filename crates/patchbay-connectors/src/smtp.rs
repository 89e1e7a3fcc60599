//! SMTP connection test: connect, EHLO, STARTTLS (or implicit TLS), AUTH — nothing is sent.
//! The server's address is the one the gate checked; TLS still verifies the configured name.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use patchbay_domain::api::ErrorKind;
use secrecy::ExposeSecret;

use crate::{Connectors, Material, Outcome};

pub(crate) async fn test(c: &Connectors, m: &Material, timeout: Duration) -> Outcome {
    let host = m.config_str("host").unwrap_or_default();
    let encryption = m.config_str("encryption").unwrap_or("starttls");
    let default_port = match encryption {
        "tls" => 465,
        "none" => 25,
        _ => 587,
    };
    let (port, addrs) = match c.endpoint(m, default_port).await {
        Ok(e) => e,
        Err(o) => return o,
    };
    let addr = addrs[0];
    let tls = match encryption {
        "none" => Tls::None,
        mode => match TlsParameters::new(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        ) {
            Ok(params) if mode == "tls" => Tls::Wrapper(params),
            Ok(params) => Tls::Required(params),
            Err(e) => return Outcome::fail(ErrorKind::Tls, e.to_string()),
        },
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
    let auth_type = m.auth_str("type").unwrap_or("none");
    if auth_type == "basic" {
        let user = m.config_str("username").unwrap_or_default().to_owned();
        let password = m
            .secret("password")
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user, password));
    }
    let transport: AsyncSmtpTransport<Tokio1Executor> = builder.build();
    match transport.test_connection().await {
        Ok(true) => Outcome::ok(if auth_type == "basic" {
            "Connected and authenticated"
        } else {
            "Connected"
        }),
        Ok(false) => Outcome::fail(ErrorKind::Protocol, "the server did not answer NOOP"),
        Err(e) => classify(&e),
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let code = e.status().map(|c| c.to_string());
    if let Some(code) = &code
        && matches!(code.as_str(), "535" | "534" | "530" | "538")
    {
        return Outcome::fail(ErrorKind::Auth, format!("Authentication failed: {code}"));
    }
    let text = e.to_string();
    if e.is_timeout() {
        return Outcome::fail(ErrorKind::Timeout, text);
    }
    if e.is_tls() {
        return Outcome::fail(ErrorKind::Tls, text);
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("refused") || lower.contains("unreachable") {
        return Outcome::fail(ErrorKind::Refused, text);
    }
    if lower.contains("no compatible authentication mechanism") {
        return Outcome::fail(
            ErrorKind::Auth,
            "the server offers no authentication mechanism Patchbay can use here",
        );
    }
    Outcome::fail(ErrorKind::Protocol, text)
}
