//! Inbound webhook signatures: each provider's scheme checked against the endpoint's secret
//! with a constant-time comparison, its timestamp held to a window, and the id a repeat of the
//! same delivery would carry (for de-duplication). A refusal's reason is for counting only:
//! the sender is told nothing beyond "signature".

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest as _, Sha256, Sha512};
use subtle::ConstantTimeEq as _;

/// A provider's signing scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` (Svix and others).
    StandardWebhooks,
    /// `X-Hub-Signature-256: sha256=<hex HMAC of the body>`, `X-GitHub-Delivery`.
    Github,
    /// `Stripe-Signature: t=<ts>,v1=<hex HMAC of "t.body">`.
    Stripe,
    /// `X-Slack-Signature: v0=<hex HMAC of "v0:ts:body">`, `X-Slack-Request-Timestamp`.
    Slack,
    /// `X-Shopify-Hmac-Sha256: <base64 HMAC of the body>`, `X-Shopify-Webhook-Id`.
    Shopify,
    /// `X-Twilio-Signature: <base64 HMAC-SHA1 of the URL and the sorted form parameters>`.
    Twilio,
    /// A header the endpoint names, over a content template of its own.
    Hmac,
}

impl Scheme {
    pub const NAMES: &'static [&'static str] = &[
        "standard_webhooks",
        "github",
        "stripe",
        "slack",
        "shopify",
        "twilio",
        "hmac",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "standard_webhooks" => Self::StandardWebhooks,
            "github" => Self::Github,
            "stripe" => Self::Stripe,
            "slack" => Self::Slack,
            "shopify" => Self::Shopify,
            "twilio" => Self::Twilio,
            "hmac" => Self::Hmac,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard_webhooks",
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::Slack => "slack",
            Self::Shopify => "shopify",
            Self::Twilio => "twilio",
            Self::Hmac => "hmac",
        }
    }

    /// Whether deliveries carry a signed timestamp the window applies to.
    pub fn timestamped(self, template: Option<&HmacTemplate>) -> bool {
        match self {
            Self::StandardWebhooks | Self::Stripe | Self::Slack => true,
            Self::Hmac => template.is_some_and(|t| t.timestamp_header.is_some()),
            Self::Github | Self::Shopify | Self::Twilio => false,
        }
    }
}

/// The digest of a generic HMAC scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

/// How a generic HMAC signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// A generic HMAC scheme: `header: {prefix}{encoding(HMAC(content))}`, where `content` fills
/// `{body}`, `{timestamp}` and `{id}` from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacTemplate {
    pub header: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    pub prefix: String,
    pub content: String,
    pub timestamp_header: Option<String>,
    pub id_header: Option<String>,
}

/// One delivery as received.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The URL the sender called, as it signed it (Twilio): the public URL and the query.
    pub url: &'a str,
    /// Now, in Unix seconds.
    pub now: i64,
    /// How far a signed timestamp may be from now, in seconds.
    pub tolerance: i64,
}

/// An accepted delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What a repeat of this delivery carries again: the provider's id where the signature
    /// covers it, the signature itself otherwise (an unsigned id could be changed at will).
    pub dedupe: String,
    /// The provider's id of the event or delivery, when it sends one.
    pub id: Option<String>,
    /// The signed timestamp, when the scheme has one.
    pub timestamp: Option<i64>,
    /// Slack's `url_verification`: the challenge to answer.
    pub challenge: Option<String>,
}

/// Why a delivery was refused (counted, never told).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A header the scheme needs is absent.
    Missing,
    /// A header is there but cannot be read.
    Malformed,
    /// No signature matches.
    Mismatch,
    /// The signed timestamp is outside the window.
    Stale,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Mismatch => "mismatch",
            Self::Stale => "stale",
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, Refusal> {
    h.get(name)
        .ok_or(Refusal::Missing)?
        .to_str()
        .map_err(|_| Refusal::Malformed)
}

fn optional<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn mac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <M as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<Sha512>>(key, parts),
    }
}

/// Whether `given` (as sent) is `expected` written in `encoding`, in constant time.
fn same(expected: &[u8], given: &str, encoding: Encoding) -> bool {
    let decoded = match encoding {
        Encoding::Hex => hex::decode(given.trim()).ok(),
        Encoding::Base64 => STANDARD.decode(given.trim()).ok(),
    };
    decoded.is_some_and(|d| d.len() == expected.len() && bool::from(d.ct_eq(expected)))
}

fn fresh(ts: i64, now: i64, tolerance: i64) -> Result<i64, Refusal> {
    if (now - ts).abs() > tolerance {
        Err(Refusal::Stale)
    } else {
        Ok(ts)
    }
}

fn timestamp(raw: &str) -> Result<i64, Refusal> {
    raw.trim().parse().map_err(|_| Refusal::Malformed)
}

/// A string field of a JSON body.
fn json_field(body: &[u8], field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get(field)?.as_str().map(str::to_owned)
}

/// The key of a Standard Webhooks secret (`whsec_` + base64), or the secret's own bytes.
pub fn standard_key(secret: &str) -> Vec<u8> {
    crate::webhook::signing_key(secret)
}

/// Checks `req` against `secret` by `scheme`.
pub fn verify(
    scheme: Scheme,
    template: Option<&HmacTemplate>,
    secret: &str,
    req: &Incoming<'_>,
) -> Result<Verified, Refusal> {
    let h = req.headers;
    let body = req.body;
    let key = secret.as_bytes();
    match scheme {
        Scheme::StandardWebhooks => {
            let id = header(h, "webhook-id")?;
            let ts = fresh(
                timestamp(header(h, "webhook-timestamp")?)?,
                req.now,
                req.tolerance,
            )?;
            let sigs = header(h, "webhook-signature")?;
            let expected = mac(
                Algorithm::Sha256,
                &standard_key(secret),
                &[id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body],
            );
            let any = sigs.split(' ').any(|s| {
                s.strip_prefix("v1,")
                    .is_some_and(|b| same(&expected, b, Encoding::Base64))
            });
            if !any {
                return Err(Refusal::Mismatch);
            }
            Ok(Verified {
                dedupe: id.to_owned(),
                id: Some(id.to_owned()),
                timestamp: Some(ts),
                challenge: None,
            })
        }
        Scheme::Github => {
            let sig = header(h, "x-hub-signature-256")?;
            let hex_sig = sig.strip_prefix("sha256=").ok_or(Refusal::Malformed)?;
            let expected = mac(Algorithm::Sha256, key, &[body]);
            if !same(&expected, hex_sig, Encoding::Hex) {
                return Err(Refusal::Mismatch);
            }
            let id = optional(h, "x-github-delivery").map(str::to_owned);
            // The delivery id is not signed: a repeat is known by its signature.
            Ok(Verified {
                dedupe: sig.to_owned(),
                id,
                timestamp: None,
                challenge: None,
            })
        }
        Scheme::Stripe => {
            let sig = header(h, "stripe-signature")?;
            let mut t = None;
            let mut v1 = Vec::new();
            for part in sig.split(',') {
                match part.trim().split_once('=') {
                    Some(("t", v)) => t = Some(timestamp(v)?),
                    Some(("v1", v)) => v1.push(v),
                    _ => {}
                }
            }
            let t = t.ok_or(Refusal::Malformed)?;
            if v1.is_empty() {
                return Err(Refusal::Malformed);
            }
            let expected = mac(
                Algorithm::Sha256,
                key,
                &[t.to_string().as_bytes(), b".", body],
            );
            if !v1.iter().any(|s| same(&expected, s, Encoding::Hex)) {
                return Err(Refusal::Mismatch);
            }
            let t = fresh(t, req.now, req.tolerance)?;
            let id = json_field(body, "id");
            Ok(Verified {
                dedupe: id.clone().unwrap_or_else(|| sig.to_owned()),
                id,
                timestamp: Some(t),
                challenge: None,
            })
        }
        Scheme::Slack => {
            let ts_raw = header(h, "x-slack-request-timestamp")?;
            let ts = timestamp(ts_raw)?;
            let sig = header(h, "x-slack-signature")?;
            let hex_sig = sig.strip_prefix("v0=").ok_or(Refusal::Malformed)?;
            let expected = mac(
                Algorithm::Sha256,
                key,
                &[b"v0:", ts_raw.trim().as_bytes(), b":", body],
            );
            if !same(&expected, hex_sig, Encoding::Hex) {
                return Err(Refusal::Mismatch);
            }
            let ts = fresh(ts, req.now, req.tolerance)?;
            let challenge = (json_field(body, "type").as_deref() == Some("url_verification"))
                .then(|| json_field(body, "challenge"))
                .flatten();
            let id = json_field(body, "event_id");
            Ok(Verified {
                dedupe: id.clone().unwrap_or_else(|| sig.to_owned()),
                id,
                timestamp: Some(ts),
                challenge,
            })
        }
        Scheme::Shopify => {
            let sig = header(h, "x-shopify-hmac-sha256")?;
            let expected = mac(Algorithm::Sha256, key, &[body]);
            if !same(&expected, sig, Encoding::Base64) {
                return Err(Refusal::Mismatch);
            }
            let id = optional(h, "x-shopify-webhook-id")
                .or_else(|| optional(h, "x-shopify-event-id"))
                .map(str::to_owned);
            Ok(Verified {
                dedupe: sig.to_owned(),
                id,
                timestamp: None,
                challenge: None,
            })
        }
        Scheme::Twilio => {
            let sig = header(h, "x-twilio-signature")?;
            let expected = twilio_signature(secret, req.url, h, body)?;
            if !same(&expected, sig, Encoding::Base64) {
                return Err(Refusal::Mismatch);
            }
            let id = optional(h, "i-twilio-idempotency-token").map(str::to_owned);
            Ok(Verified {
                dedupe: sig.to_owned(),
                id,
                timestamp: None,
                challenge: None,
            })
        }
        Scheme::Hmac => {
            let t = template.ok_or(Refusal::Malformed)?;
            let sig = header(h, &t.header)?;
            let written = sig
                .strip_prefix(t.prefix.as_str())
                .ok_or(Refusal::Malformed)?;
            let ts_raw = match &t.timestamp_header {
                Some(name) => Some(header(h, name)?),
                None => None,
            };
            let id = match &t.id_header {
                Some(name) => Some(header(h, name)?.to_owned()),
                None => None,
            };
            let content = fill_template(
                &t.content,
                body,
                ts_raw.unwrap_or(""),
                id.as_deref().unwrap_or(""),
            );
            let expected = mac(t.algorithm, key, &[&content]);
            if !same(&expected, written, t.encoding) {
                return Err(Refusal::Mismatch);
            }
            let ts = match ts_raw {
                Some(raw) => Some(fresh(timestamp(raw)?, req.now, req.tolerance)?),
                None => None,
            };
            // An id counts only when it is signed.
            let signed_id = id.clone().filter(|_| t.content.contains("{id}"));
            Ok(Verified {
                dedupe: signed_id.unwrap_or_else(|| sig.to_owned()),
                id,
                timestamp: ts,
                challenge: None,
            })
        }
    }
}

/// `content` with `{body}`, `{timestamp}` and `{id}` filled in (the body's bytes as they came).
fn fill_template(content: &str, body: &[u8], ts: &str, id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + body.len());
    let mut rest = content;
    while let Some(start) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start..];
        let (value, len): (&[u8], usize) = if after.starts_with("{body}") {
            (body, 6)
        } else if after.starts_with("{timestamp}") {
            (ts.as_bytes(), 11)
        } else if after.starts_with("{id}") {
            (id.as_bytes(), 4)
        } else {
            (b"{", 1)
        };
        out.extend_from_slice(value);
        rest = &after[len..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// Twilio's signature: HMAC-SHA1 of the URL followed, for a form post, by each parameter's
/// name and value sorted by name; a JSON body is bound by the URL's `bodySHA256` instead.
fn twilio_signature(
    token: &str,
    url: &str,
    h: &HeaderMap,
    body: &[u8],
) -> Result<Vec<u8>, Refusal> {
    let form = optional(h, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let mut content = url.as_bytes().to_vec();
    if form {
        let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            params
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
        for (k, mut values) in params {
            values.sort();
            for v in values {
                content.extend_from_slice(k.as_bytes());
                content.extend_from_slice(v.as_bytes());
            }
        }
    } else {
        let parsed = url::Url::parse(url).map_err(|_| Refusal::Malformed)?;
        let bound = parsed
            .query_pairs()
            .find(|(k, _)| k == "bodySHA256")
            .map(|(_, v)| v.into_owned())
            .ok_or(Refusal::Missing)?;
        let digest = Sha256::digest(body);
        if !same(&digest, &bound, Encoding::Hex) {
            return Err(Refusal::Mismatch);
        }
    }
    Ok(mac(Algorithm::Sha1, token.as_bytes(), &[&content]))
}

#[cfg(test)]
mod tests;
