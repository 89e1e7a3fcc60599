//! Wire types of inbound webhooks (SPEC §3): endpoints that receive providers' deliveries at
//! `POST /v1/hooks/{endpoint}`, and the events they accepted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actions::BodyEncoding;
use crate::ids::{ConnectionId, DeliveryId, EventId, InboundId, ProjectId};

/// The signing schemes an endpoint verifies deliveries by.
pub const SCHEMES: &[&str] = &[
    "standard_webhooks",
    "github",
    "stripe",
    "slack",
    "shopify",
    "twilio",
    "hmac",
];

/// How far a signed timestamp may be from now unless the endpoint says, in seconds.
pub const TOLERANCE_S: u32 = 300;
/// The largest body an endpoint accepts unless it says.
pub const MAX_BODY: u32 = 1024 * 1024;
/// The largest body an endpoint may be set to accept.
pub const MAX_BODY_LIMIT: u32 = 10 * 1024 * 1024;

/// A generic HMAC scheme: `header: {prefix}{hex or base64 of HMAC(content)}`, where `content`
/// fills `{body}`, `{timestamp}` (from `timestamp_header`) and `{id}` (from `id_header`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HmacSettings {
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
    )]
    pub header: String,
    /// `sha256` (default), `sha1` or `sha512`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(sha1|sha256|sha512)$")]
    pub algorithm: Option<String>,
    /// `hex` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(hex|base64)$")]
    pub encoding: Option<String>,
    /// Written before the signature (`sha256=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64)]
    pub prefix: Option<String>,
    /// What is signed (`{body}` by default; `{timestamp}.{body}`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
    )]
    pub timestamp_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
    )]
    pub id_header: Option<String>,
}

/// `POST /v1/inbound`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInbound {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// One of [`SCHEMES`].
    #[schema(pattern = "^(standard_webhooks|github|stripe|slack|shopify|twilio|hmac)$")]
    pub scheme: String,
    /// The project (id or name); the caller's, or `default`.
    #[serde(default)]
    pub project: Option<String>,
    /// The provider's signing secret; one is made (and answered once) when absent.
    #[serde(default)]
    #[schema(min_length = 8, max_length = 1024)]
    pub secret: Option<String>,
    /// A webhook connection accepted events are forwarded to; held for polling when absent.
    #[serde(default)]
    pub target: Option<ConnectionId>,
    /// Seconds a signed timestamp may be off (default 300).
    #[serde(default, deserialize_with = "crate::objects::integer")]
    #[schema(minimum = 1, maximum = 86400)]
    pub tolerance_s: Option<u32>,
    /// Largest body accepted, in bytes (default 1 MiB, at most 10 MiB).
    #[serde(default, deserialize_with = "crate::objects::integer")]
    #[schema(minimum = 1, maximum = 10485760)]
    pub max_body: Option<u32>,
    /// The `hmac` scheme's header and template.
    #[serde(default)]
    pub hmac: Option<HmacSettings>,
    /// `twilio`: the URL as the provider calls it (the public URL by default).
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub signing_url: Option<String>,
}

/// The document's schema of [`CreateInbound`]: one object per kind of scheme, with the fields
/// it takes (`hmac` for the generic scheme, `signing_url` for Twilio's).
#[derive(Debug)]
pub struct CreateInboundBody;

impl utoipa::PartialSchema for CreateInboundBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use serde_json::json;
        let token = json!({"type": "string", "minLength": 1, "maxLength": 128,
            "pattern": crate::names::TOKEN_PATTERN});
        let nullable = |s: serde_json::Value| json!({"anyOf": [s, {"type": "null"}]});
        let hmac = json!({"type": "object", "additionalProperties": false, "required": ["header"],
        "properties": {
            "header": token,
            "algorithm": nullable(json!({"type": "string", "enum": ["sha1", "sha256", "sha512"]})),
            "encoding": nullable(json!({"type": "string", "enum": ["hex", "base64"]})),
            "prefix": nullable(json!({"type": "string", "maxLength": 64})),
            "content": nullable(json!({"type": "string", "minLength": 6, "maxLength": 256,
                "pattern": r"\{body\}",
                "description": "what is signed: {body}, with {timestamp} and {id} filled from their headers"})),
            "timestamp_header": nullable(token.clone()),
            "id_header": nullable(token.clone()),
        }});
        let variant = |title: &str,
                       schemes: &[&str],
                       extra: serde_json::Value,
                       required: &[&str]| {
            let mut props = json!({
                "name": {"type": "string", "minLength": 1, "maxLength": 100},
                "scheme": {"type": "string", "enum": schemes},
                "project": nullable(json!({"type": "string", "minLength": 1})),
                "secret": nullable(json!({"type": "string", "minLength": 8, "maxLength": 1024})),
                "target": nullable(json!({"type": "string",
                    "pattern": "^con_[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"})),
                "tolerance_s": nullable(json!({"type": "integer", "minimum": 1, "maximum": 86400})),
                "max_body": nullable(json!({"type": "integer", "minimum": 1, "maximum": MAX_BODY_LIMIT})),
                "hmac": {"type": "null"},
                "signing_url": {"type": "null"},
            });
            if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
                p.extend(e.clone());
            }
            let mut req = vec!["name", "scheme"];
            req.extend_from_slice(required);
            json!({"type": "object", "title": title, "properties": props, "required": req,
                "additionalProperties": false})
        };
        let schema = json!({"oneOf": [
            variant("a provider's scheme",
                &["standard_webhooks", "github", "stripe", "slack", "shopify"], json!({}), &[]),
            variant("twilio", &["twilio"], json!({"signing_url": nullable(json!({"type": "string",
                "pattern": crate::names::HTTP_URL_PATTERN}))}), &[]),
            variant("hmac", &["hmac"], json!({"hmac": hmac}), &["hmac"]),
        ]});
        serde_json::from_value(schema).expect("a valid schema")
    }
}

impl utoipa::ToSchema for CreateInboundBody {}

/// `PATCH /v1/inbound/{id}`: the fields given change; `target: null` holds events for polling.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInbound {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// A new signing secret.
    #[serde(default)]
    #[schema(min_length = 8, max_length = 1024)]
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ConnectionId>)]
    pub target: Option<Option<ConnectionId>>,
    #[serde(default, deserialize_with = "crate::objects::integer")]
    #[schema(minimum = 1, maximum = 86400)]
    pub tolerance_s: Option<u32>,
    #[serde(default, deserialize_with = "crate::objects::integer")]
    #[schema(minimum = 1, maximum = 10485760)]
    pub max_body: Option<u32>,
}

/// An endpoint as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Inbound {
    pub id: InboundId,
    pub name: String,
    pub project: ProjectId,
    pub scheme: String,
    /// Where the provider sends deliveries.
    pub url: String,
    pub target: Option<ConnectionId>,
    pub tolerance_s: u32,
    pub max_body: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<HmacSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// The answer to a create: the endpoint, and the secret when Patchbay made it (shown once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedInbound {
    #[serde(flatten)]
    pub endpoint: Inbound,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_secret: Option<String>,
}

/// An accepted event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboundEvent {
    pub id: EventId,
    pub endpoint: InboundId,
    pub received_at: DateTime<Utc>,
    /// The provider's id of the event or delivery, when it sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// `held` (for polling) or `forwarded` (queued to the target; see `delivery`).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryId>,
    pub size: u64,
    /// Admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Admins (and a poll, for callers that act through the endpoint's project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<BodyEncoding>,
}

/// A page of events, oldest first; `next_cursor` continues after the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<InboundEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<EventId>,
}

/// What a delivery to an endpoint is answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Received {
    pub received: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventId>,
    /// The same delivery came before: nothing more is done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// A field that is present, even as `null` (`Some(None)`), apart from one that is absent.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
