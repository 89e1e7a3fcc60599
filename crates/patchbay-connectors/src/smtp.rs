//! SMTP connection test: connect, EHLO, STARTTLS (or implicit TLS), AUTH — nothing is sent.
//! The server's address is the one the gate checked; TLS still verifies the configured name.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::{Auth, ConnectionSpec, SmtpConfig, SmtpEncryption};
use secrecy::ExposeSecret;

use crate::{Connectors, Material, Outcome};

/// A transport to the connection's server, at the address the gate checked.
async fn transport(
    c: &Connectors,
    m: &Material,
    config: &SmtpConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, Outcome> {
    let host = config.host.as_str();
    let port = config.port();
    let addr = c.endpoint(host, port).await?[0];
    let authenticates = matches!(m.auth, Auth::Basic(_));
    if config.encryption == SmtpEncryption::None
        && authenticates
        && !addr.ip().is_loopback()
        && !c.settings.allow_plaintext_smtp_auth
    {
        return Err(Outcome::fail(
            ErrorKind::Tls,
            format!(
                "AUTH would send the password to {host} without TLS: use encryption starttls or \
                 tls (only a loopback server, or an operator's --allow-plaintext-smtp-auth, takes \
                 it in clear)"
            ),
        ));
    }
    let tls = match config.encryption {
        SmtpEncryption::None => Tls::None,
        mode => match TlsParameters::new(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        ) {
            Ok(params) if mode == SmtpEncryption::Tls => Tls::Wrapper(params),
            Ok(params) => Tls::Required(params),
            Err(e) => return Err(Outcome::fail(ErrorKind::Tls, e.to_string())),
        },
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
    if authenticates {
        let user = config.username.clone().unwrap_or_default();
        let password = m
            .secret("password")
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(builder.build())
}

pub(crate) async fn test(
    c: &Connectors,
    m: &Material,
    config: &SmtpConfig,
    timeout: Duration,
) -> Outcome {
    let transport = match transport(c, m, config, timeout).await {
        Ok(t) => t,
        Err(o) => return o,
    };
    match transport.test_connection().await {
        Ok(true) => Outcome::ok(if matches!(m.auth, Auth::Basic(_)) {
            "Connected and authenticated"
        } else {
            "Connected"
        }),
        Ok(false) => Outcome::fail(ErrorKind::Protocol, "the server did not answer NOOP"),
        Err(e) => classify(&e),
    }
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A bad address or an empty message (the field is named).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The server could not be reached or refused (auth, blocked, timeout, …).
    #[error("{message}")]
    Server { kind: ErrorKind, message: String },
}

/// One message; `from` is the connection's `from_address`.
#[derive(Debug)]
pub struct Mail<'a> {
    pub to: Vec<&'a str>,
    pub cc: Vec<&'a str>,
    pub bcc: Vec<&'a str>,
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    pub text: Option<&'a str>,
    pub html: Option<&'a str>,
}

fn mailbox(field: &str, raw: &str) -> Result<lettre::message::Mailbox, MailError> {
    raw.parse().map_err(|e| MailError::Invalid {
        field: field.to_owned(),
        reason: format!("{raw:?} is not an e-mail address ({e})"),
    })
}

impl Connectors {
    /// Sends `mail` through an SMTP connection; the `Message-ID` it went out with.
    pub async fn send_mail(&self, m: &Material, mail: Mail<'_>) -> Result<String, MailError> {
        use lettre::AsyncTransport as _;
        use lettre::message::{MultiPart, SinglePart, header::ContentType};
        let ConnectionSpec::Smtp(config) = &m.spec else {
            return Err(MailError::Invalid {
                field: "connection".into(),
                reason: "not an SMTP connection".into(),
            });
        };
        let from = config.from_address.as_str();
        if mail.to.is_empty() {
            return Err(MailError::Invalid {
                field: "to".into(),
                reason: "needs at least one address".into(),
            });
        }
        let message_id = format!(
            "<{}@patchbay>",
            crate::webhook::message_id().trim_start_matches("msg_")
        );
        let mut b = lettre::Message::builder()
            .from(mailbox("from_address", from)?)
            .subject(mail.subject)
            .message_id(Some(message_id.clone()));
        for (field, list) in [("to", &mail.to), ("cc", &mail.cc), ("bcc", &mail.bcc)] {
            for (i, a) in list.iter().enumerate() {
                let mb = mailbox(&format!("{field}[{i}]"), a)?;
                b = match field {
                    "to" => b.to(mb),
                    "cc" => b.cc(mb),
                    _ => b.bcc(mb),
                };
            }
        }
        if let Some(r) = mail.reply_to {
            b = b.reply_to(mailbox("reply_to", r)?);
        }
        let built = match (mail.text, mail.html) {
            (Some(t), Some(h)) => b.multipart(MultiPart::alternative_plain_html(
                t.to_owned(),
                h.to_owned(),
            )),
            (Some(t), None) => b.singlepart(SinglePart::plain(t.to_owned())),
            (None, Some(h)) => b.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(h.to_owned()),
            ),
            (None, None) => {
                return Err(MailError::Invalid {
                    field: "text".into(),
                    reason: "a message needs text or html".into(),
                });
            }
        };
        let message = built.map_err(|e| MailError::Invalid {
            field: "message".into(),
            reason: e.to_string(),
        })?;
        let timeout = self.settings.test_timeout.max(Duration::from_secs(30));
        let transport =
            transport(self, m, config, timeout)
                .await
                .map_err(|o| MailError::Server {
                    kind: o.kind.unwrap_or(ErrorKind::Protocol),
                    message: o.message,
                })?;
        transport.send(message).await.map_err(|e| {
            let o = classify(&e);
            MailError::Server {
                kind: o.kind.unwrap_or(ErrorKind::Protocol),
                message: o.message,
            }
        })?;
        Ok(message_id)
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

#[cfg(test)]
mod tests {
    /// Every address the OpenAPI document describes is one the mail library takes.
    #[test]
    fn documented_addresses_are_mailboxes() {
        let local = "!#$%&'*+/=?^_`{|}~-";
        for a in [
            "ops@example.com".to_owned(),
            "first.last+tag@mail.example.co".to_owned(),
            format!("{local}.{local}@x-1.example.org"),
            format!(
                "{}@{}.{}.io",
                "a".repeat(64),
                "b".repeat(63),
                "c".repeat(63)
            ),
            "Z9@a1.b2.c3.io".to_owned(),
        ] {
            assert!(patchbay_domain::names::is_email(&a), "{a}");
            let a = a.as_str();
            assert!(super::mailbox("to", a).is_ok(), "{a}");
        }
    }
}
