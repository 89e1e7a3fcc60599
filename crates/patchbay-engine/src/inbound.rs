//! Inbound webhooks: endpoints a provider delivers to (`POST /v1/hooks/{endpoint}`, no
//! Patchbay token: the endpoint's id is unguessable and every delivery is verified by the
//! provider's signing scheme), events stored sealed and de-duplicated, forwarded to a webhook
//! connection through the outbox in the same change that stores them, or held for polling.
//! Management (create, list, update, delete, list and inspect events, replay) is audited.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use patchbay_connectors::inbound::{self, Algorithm, Encoding, HmacTemplate, Incoming, Scheme};
use patchbay_domain::actions::BodyEncoding;
use patchbay_domain::inbound::{
    CreateInbound, CreatedInbound, EventPage, HmacSettings, Inbound, InboundEvent, MAX_BODY,
    MAX_BODY_LIMIT, Received, TOLERANCE_S, UpdateInbound,
};
use patchbay_domain::{ConnectionId, EventId, InboundId, Kind, OrgId, Principal, ValidationErrors};
use patchbay_store::{EventRecord, InboundRecord};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::connections::field_aad;
use crate::core::system;
use crate::{EngineError, Hub, Result};

/// An event held for polling, or queued to the endpoint's target.
const HELD: &str = "held";
const FORWARDED: &str = "forwarded";

/// Headers a forwarded event carries from the provider's delivery (beside Patchbay's own).
const FORWARDED_HEADERS: &[&str] = &["content-type", "user-agent"];

/// What an endpoint's `config` column holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Settings {
    tolerance_s: u32,
    max_body: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hmac: Option<HmacSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing_url: Option<String>,
}

/// What is sealed into an event.
#[derive(Debug, Serialize, Deserialize)]
struct SealedEvent {
    headers: BTreeMap<String, String>,
    /// base64.
    body: String,
}

fn endpoint_object(id: &InboundId) -> String {
    format!("inbound:{id}")
}

fn event_object(id: &EventId) -> String {
    format!("event:{id}")
}

/// Why a delivery to an endpoint was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such endpoint (or a deleted one).
    Unknown,
    /// Larger than the endpoint accepts (its limit).
    TooLarge(u32),
    /// The signature did not verify: all the sender is told.
    Signature,
    /// The vault is sealed or the store failed: try again later.
    Unavailable(String),
}

/// What a delivery to an endpoint is answered.
#[derive(Debug)]
pub enum Answered {
    Received(Received),
    /// Slack's `url_verification`: the challenge, sent back.
    Challenge(String),
}

fn template(s: &HmacSettings) -> Option<HmacTemplate> {
    Some(HmacTemplate {
        header: s.header.to_ascii_lowercase(),
        algorithm: Algorithm::parse(s.algorithm.as_deref().unwrap_or("sha256"))?,
        encoding: match s.encoding.as_deref().unwrap_or("hex") {
            "hex" => Encoding::Hex,
            "base64" => Encoding::Base64,
            _ => return None,
        },
        prefix: s.prefix.clone().unwrap_or_default(),
        content: s.content.clone().unwrap_or_else(|| "{body}".into()),
        timestamp_header: s.timestamp_header.as_ref().map(|h| h.to_ascii_lowercase()),
        id_header: s.id_header.as_ref().map(|h| h.to_ascii_lowercase()),
    })
}

/// A header name an endpoint's template may name.
fn is_header(s: &str) -> bool {
    s.len() <= 128 && patchbay_domain::validate::is_token(s)
}

fn check_hmac(s: &HmacSettings, errs: &mut ValidationErrors) {
    if !is_header(&s.header) {
        errs.push("hmac.header", "must be an HTTP header name");
    }
    if s.algorithm
        .as_deref()
        .is_some_and(|a| Algorithm::parse(a).is_none())
    {
        errs.push("hmac.algorithm", "must be sha256, sha1 or sha512");
    }
    if s.encoding
        .as_deref()
        .is_some_and(|e| e != "hex" && e != "base64")
    {
        errs.push("hmac.encoding", "must be hex or base64");
    }
    for (field, h) in [
        ("hmac.timestamp_header", &s.timestamp_header),
        ("hmac.id_header", &s.id_header),
    ] {
        if h.as_deref().is_some_and(|h| !is_header(h)) {
            errs.push(field, "must be an HTTP header name");
        }
    }
    if let Some(c) = &s.content {
        if c.chars().count() > 256 {
            errs.push("hmac.content", "must be at most 256 characters");
        } else if !c.contains("{body}") {
            errs.push(
                "hmac.content",
                "must sign the body: include {body} (and {timestamp} or {id}, filled from \
                 timestamp_header and id_header, as the provider does)",
            );
        }
    }
    if s.prefix.as_deref().is_some_and(|p| p.chars().count() > 64) {
        errs.push("hmac.prefix", "must be at most 64 characters");
    }
}

fn check_secret(secret: &str, errs: &mut ValidationErrors) {
    if !(8..=1024).contains(&secret.chars().count()) {
        errs.push("secret", "must be 8 to 1024 characters");
    }
}

/// A signing secret for an endpoint whose provider lets the receiver choose it.
fn generated_secret(scheme: Scheme) -> String {
    let bytes: [u8; 32] = rand::random();
    match scheme {
        Scheme::StandardWebhooks => format!("whsec_{}", STANDARD.encode(bytes)),
        _ => hex::encode(bytes),
    }
}

fn dedupe_key(raw: &str) -> String {
    hex::encode(crate::hash_token(raw))
}

impl Hub {
    /// The URL providers deliver to.
    pub fn hook_url(&self, id: &InboundId) -> String {
        format!("{}/v1/hooks/{id}", self.public_url())
    }

    fn inbound_view(&self, r: &InboundRecord) -> Inbound {
        let s: Settings = serde_json::from_value(r.config.clone()).unwrap_or_default();
        Inbound {
            id: r.id.clone(),
            name: r.name.clone(),
            project: r.project_id.clone(),
            scheme: r.scheme.clone(),
            url: self.hook_url(&r.id),
            target: r.target_id.clone(),
            tolerance_s: s.tolerance_s,
            max_body: s.max_body,
            hmac: s.hmac,
            signing_url: s.signing_url,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }

    /// The target must be a webhook connection the caller sees, in the endpoint's project.
    async fn check_target(
        &self,
        p: &Principal,
        target: &ConnectionId,
        project: &patchbay_domain::ProjectId,
    ) -> Result<()> {
        let c = self
            .visible_connection(p, target)
            .await
            .map_err(|_| EngineError::NotFound("target connection"))?;
        if c.kind != Kind::Webhook {
            return Err(ValidationErrors::single(
                "target",
                format!(
                    "is a {} connection; events go to a webhook connection",
                    c.kind
                ),
            )
            .into());
        }
        if &c.project != project {
            return Err(ValidationErrors::single(
                "target",
                "is in another project than the endpoint",
            )
            .into());
        }
        Ok(())
    }

    fn seal_secret(&self, org: &OrgId, id: &InboundId, secret: &str) -> Result<(i64, Vec<u8>)> {
        let ring = self.vault().keyring()?;
        let object = endpoint_object(id);
        let sealed = ring.seal(
            &field_aad(org.as_str(), &object, "secret"),
            secret.as_bytes(),
        )?;
        Ok((i64::from(ring.current_version()), sealed))
    }

    fn open_secret(&self, r: &InboundRecord) -> Result<String> {
        let ring = self.vault().keyring()?;
        let object = endpoint_object(&r.id);
        let plain = ring.open(&field_aad(r.org_id.as_str(), &object, "secret"), &r.secret)?;
        String::from_utf8(plain.to_vec())
            .map_err(|_| EngineError::Integrity(format!("{object}: the secret is not UTF-8")))
    }

    /// `POST /v1/inbound` (admins and members).
    pub async fn create_inbound(&self, p: &Principal, b: CreateInbound) -> Result<CreatedInbound> {
        if !p.can_write() {
            return Err(EngineError::forbidden(
                "creating inbound endpoints needs an admin or member token",
            ));
        }
        let mut errs = ValidationErrors::new();
        let scheme = Scheme::parse(&b.scheme);
        if scheme.is_none() {
            errs.push(
                "scheme",
                format!("must be one of {}", inbound::Scheme::NAMES.join(", ")),
            );
        }
        let name = b.name.as_str();
        if name.is_empty() || name.chars().count() > 100 {
            errs.push("name", "must be 1 to 100 characters");
        }
        if let Some(s) = &b.secret {
            check_secret(s, &mut errs);
        }
        let settings = self.settings_of(
            scheme,
            b.tolerance_s,
            b.max_body,
            b.hmac.clone(),
            b.signing_url.clone(),
            &mut errs,
        );
        errs.into_result(())?;
        let scheme = scheme.unwrap_or(Scheme::StandardWebhooks);
        let project = self.resolve_project(p, b.project.as_deref()).await?;
        if let Some(t) = &b.target {
            self.check_target(p, t, &project.id).await?;
        }
        let generated = b.secret.is_none().then(|| generated_secret(scheme));
        let secret = b.secret.clone().or(generated.clone()).unwrap_or_default();
        let id = InboundId::random();
        let (key_version, sealed) = self.seal_secret(&p.org_id, &id, &secret)?;
        let now = self.now();
        let record = InboundRecord {
            id: id.clone(),
            org_id: p.org_id.clone(),
            project_id: project.id.clone(),
            name: name.to_owned(),
            scheme: scheme.as_str().to_owned(),
            config: serde_json::to_value(&settings).unwrap_or_default(),
            target_id: b.target.clone(),
            key_version,
            secret: sealed,
            created_by: p.actor(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut w = self.write().await?;
        w.insert_inbound(&record).await.map_err(|e| match e {
            patchbay_store::StoreError::Conflict(_) => {
                EngineError::Conflict(format!("an inbound endpoint named {name:?} exists"))
            }
            other => other.into(),
        })?;
        w.succeeded(
            p,
            "inbound.create",
            id.to_string(),
            json!({"name": name, "scheme": scheme.as_str(), "target": b.target}),
        );
        w.commit().await?;
        Ok(CreatedInbound {
            endpoint: self.inbound_view(&record),
            generated_secret: generated,
        })
    }

    /// The settings of an endpoint of `scheme`, defaults filled, errors named.
    fn settings_of(
        &self,
        scheme: Option<Scheme>,
        tolerance_s: Option<u32>,
        max_body: Option<u32>,
        hmac: Option<HmacSettings>,
        signing_url: Option<String>,
        errs: &mut ValidationErrors,
    ) -> Settings {
        let tolerance_s = tolerance_s.unwrap_or(TOLERANCE_S);
        if !(1..=86_400).contains(&tolerance_s) {
            errs.push("tolerance_s", "must be 1 to 86400 seconds");
        }
        let max_body = max_body.unwrap_or(MAX_BODY);
        if !(1..=MAX_BODY_LIMIT).contains(&max_body) {
            errs.push("max_body", format!("must be 1 to {MAX_BODY_LIMIT} bytes"));
        }
        match (scheme, &hmac) {
            (Some(Scheme::Hmac), None) => errs.push(
                "hmac",
                "is required for the hmac scheme: {header, algorithm, encoding, prefix, content}",
            ),
            (Some(Scheme::Hmac), Some(h)) => check_hmac(h, errs),
            (_, Some(_)) => errs.push("hmac", "is only used by the hmac scheme"),
            _ => {}
        }
        match (scheme, &signing_url) {
            (Some(Scheme::Twilio), Some(u)) if patchbay_domain::validate::check_url(u).is_err() => {
                errs.push("signing_url", "must be an http(s) URL");
            }
            (Some(Scheme::Twilio), _) => {}
            (_, Some(_)) => errs.push("signing_url", "is only used by the twilio scheme"),
            _ => {}
        }
        Settings {
            tolerance_s,
            max_body,
            hmac,
            signing_url,
        }
    }

    /// A live endpoint the caller sees.
    async fn visible_inbound(&self, p: &Principal, id: &str) -> Result<InboundRecord> {
        let Ok(id) = id.parse::<InboundId>() else {
            return Err(EngineError::NotFound("inbound endpoint"));
        };
        match self.store().find_inbound(&id).await? {
            Some(r) if r.org_id == p.org_id && p.sees_project(&r.project_id) => Ok(r),
            _ => Err(EngineError::NotFound("inbound endpoint")),
        }
    }

    /// `GET /v1/inbound`.
    pub async fn list_inbound(&self, p: &Principal) -> Result<Vec<Inbound>> {
        Ok(self
            .store()
            .list_inbound(&p.org_id)
            .await?
            .iter()
            .filter(|r| p.sees_project(&r.project_id))
            .map(|r| self.inbound_view(r))
            .collect())
    }

    /// `GET /v1/inbound/{id}`.
    pub async fn get_inbound(&self, p: &Principal, id: &str) -> Result<Inbound> {
        Ok(self.inbound_view(&self.visible_inbound(p, id).await?))
    }

    /// `PATCH /v1/inbound/{id}` (admins and members).
    pub async fn update_inbound(
        &self,
        p: &Principal,
        id: &str,
        b: UpdateInbound,
    ) -> Result<Inbound> {
        let mut r = self.visible_inbound(p, id).await?;
        if !p.can_write() {
            return Err(EngineError::forbidden(
                "changing inbound endpoints needs an admin or member token",
            ));
        }
        let mut errs = ValidationErrors::new();
        let old: Settings = serde_json::from_value(r.config.clone()).unwrap_or_default();
        if let Some(n) = &b.name {
            if n.is_empty() || n.chars().count() > 100 {
                errs.push("name", "must be 1 to 100 characters");
            }
            r.name = n.to_owned();
        }
        if let Some(s) = &b.secret {
            check_secret(s, &mut errs);
        }
        let settings = self.settings_of(
            Scheme::parse(&r.scheme),
            b.tolerance_s.or(Some(old.tolerance_s)),
            b.max_body.or(Some(old.max_body)),
            old.hmac,
            old.signing_url,
            &mut errs,
        );
        errs.into_result(())?;
        if let Some(target) = &b.target {
            if let Some(t) = target {
                self.check_target(p, t, &r.project_id).await?;
            }
            r.target_id = target.clone();
        }
        if let Some(s) = &b.secret {
            (r.key_version, r.secret) = self.seal_secret(&r.org_id, &r.id, s)?;
        }
        r.config = serde_json::to_value(&settings).unwrap_or_default();
        r.updated_at = self.now();
        let mut w = self.write().await?;
        w.update_inbound(&r, r.version).await.map_err(|e| match e {
            patchbay_store::StoreError::Conflict(_) => {
                EngineError::Conflict(format!("an inbound endpoint named {:?} exists", r.name))
            }
            other => other.into(),
        })?;
        w.succeeded(
            p,
            "inbound.update",
            r.id.to_string(),
            json!({"name": b.name, "secret_changed": b.secret.is_some(),
                "target": r.target_id}),
        );
        w.commit().await?;
        r.version += 1;
        Ok(self.inbound_view(&r))
    }

    /// `DELETE /v1/inbound/{id}` (admins and members): deliveries to it are refused from now.
    pub async fn delete_inbound(&self, p: &Principal, id: &str) -> Result<()> {
        let r = self.visible_inbound(p, id).await?;
        if !p.can_write() {
            return Err(EngineError::forbidden(
                "deleting inbound endpoints needs an admin or member token",
            ));
        }
        let mut w = self.write().await?;
        w.delete_inbound(&p.org_id, &r.id, self.now()).await?;
        w.succeeded(
            p,
            "inbound.delete",
            r.id.to_string(),
            json!({"name": r.name}),
        );
        w.commit().await
    }

    /// `POST /v1/hooks/{endpoint}`: a provider's delivery.
    pub async fn receive_hook(
        &self,
        endpoint: &str,
        headers: &http::HeaderMap,
        body: &[u8],
        query: Option<&str>,
    ) -> std::result::Result<Answered, Refused> {
        let unavailable = |e: EngineError| Refused::Unavailable(e.to_string());
        let Ok(id) = endpoint.parse::<InboundId>() else {
            return Err(Refused::Unknown);
        };
        let Some(r) = self
            .store()
            .find_inbound(&id)
            .await
            .map_err(|e| unavailable(e.into()))?
        else {
            return Err(Refused::Unknown);
        };
        let settings: Settings = serde_json::from_value(r.config.clone()).unwrap_or_default();
        if body.len() > settings.max_body as usize {
            self.core().metrics.inbound("too_large");
            return Err(Refused::TooLarge(settings.max_body));
        }
        let scheme = Scheme::parse(&r.scheme).ok_or(Refused::Signature)?;
        let secret = zeroize::Zeroizing::new(self.open_secret(&r).map_err(unavailable)?);
        let template = settings.hmac.as_ref().and_then(template);
        let url = match (&settings.signing_url, query) {
            (Some(u), _) => u.clone(),
            (None, Some(q)) => format!("{}?{q}", self.hook_url(&id)),
            (None, None) => self.hook_url(&id),
        };
        let verified = inbound::verify(
            scheme,
            template.as_ref(),
            &secret,
            &Incoming {
                headers,
                body,
                url: &url,
                now: self.now().timestamp(),
                tolerance: i64::from(settings.tolerance_s),
            },
        )
        .map_err(|why| {
            self.core().metrics.inbound(why.as_str());
            tracing::info!(endpoint = %id, scheme = scheme.as_str(), reason = why.as_str(),
                "an inbound delivery was refused");
            Refused::Signature
        })?;
        if let Some(challenge) = verified.challenge {
            return Ok(Answered::Challenge(challenge));
        }
        let event = self
            .store_event(&r, headers, body, &verified)
            .await
            .map_err(unavailable)?;
        self.core().metrics.inbound(if event.is_some() {
            "accepted"
        } else {
            "duplicate"
        });
        Ok(Answered::Received(Received {
            received: true,
            duplicate: event.is_none(),
            event,
        }))
    }

    /// Seals and stores an accepted delivery, and queues it to the target in the same change;
    /// `None` when the endpoint had it already.
    async fn store_event(
        &self,
        r: &InboundRecord,
        headers: &http::HeaderMap,
        body: &[u8],
        v: &inbound::Verified,
    ) -> Result<Option<EventId>> {
        let id = EventId::generate();
        let kept: BTreeMap<String, String> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let plain = serde_json::to_vec(&SealedEvent {
            headers: kept.clone(),
            body: STANDARD.encode(body),
        })
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        let ring = self.vault().keyring()?;
        let payload = ring.seal(
            &field_aad(r.org_id.as_str(), &event_object(&id), "payload"),
            &plain,
        )?;
        let system = system(r.org_id.clone());
        let delivery = match &r.target_id {
            Some(target) => Some(self.forward_of(&system, r, target, &id, &kept, body)?),
            None => None,
        };
        let record = EventRecord {
            id: id.clone(),
            endpoint_id: r.id.clone(),
            org_id: r.org_id.clone(),
            dedupe: dedupe_key(&v.dedupe),
            provider_id: v.id.clone(),
            key_version: i64::from(ring.current_version()),
            payload,
            size: body.len() as i64,
            status: if delivery.is_some() { FORWARDED } else { HELD }.to_owned(),
            delivery_id: delivery.as_ref().map(|d| d.id.clone()),
            received_at: self.now(),
        };
        let mut w = self.write().await?;
        if !w.insert_event(&record).await? {
            return Ok(None);
        }
        if let Some(d) = &delivery {
            w.insert_delivery(d).await?;
        }
        w.commit().await?;
        if delivery.is_some() {
            self.queued();
        }
        Ok(Some(id))
    }

    /// The delivery that forwards event `id` to `target`: the provider's body and content type,
    /// `webhook-id` derived from the event (the same on a replay), signed by the connection.
    fn forward_of(
        &self,
        p: &Principal,
        r: &InboundRecord,
        target: &ConnectionId,
        id: &EventId,
        headers: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Result<patchbay_store::DeliveryRecord> {
        let mut out: BTreeMap<String, String> = headers
            .iter()
            .filter(|(k, _)| FORWARDED_HEADERS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.insert("patchbay-inbound".into(), r.id.to_string());
        out.insert("patchbay-event".into(), id.to_string());
        self.forward_record(
            p,
            target,
            &format!("inbound:{}", r.name),
            format!("msg_{id}"),
            out,
            String::from_utf8_lossy(body).into_owned(),
        )
    }

    fn event_view(&self, r: &InboundRecord, e: &EventRecord, with: Shown) -> Result<InboundEvent> {
        let mut view = InboundEvent {
            id: e.id.clone(),
            endpoint: e.endpoint_id.clone(),
            received_at: e.received_at,
            provider_id: e.provider_id.clone(),
            status: e.status.clone(),
            delivery: e.delivery_id.clone(),
            size: u64::try_from(e.size).unwrap_or(0),
            headers: None,
            body: None,
            encoding: None,
        };
        if with == Shown::Summary {
            return Ok(view);
        }
        let sealed = self.open_event(r, e)?;
        let bytes = STANDARD.decode(&sealed.body).unwrap_or_default();
        let (body, encoding) = match String::from_utf8(bytes) {
            Ok(s) => (s, BodyEncoding::Text),
            Err(e) => (STANDARD.encode(e.into_bytes()), BodyEncoding::Base64),
        };
        view.body = Some(body);
        view.encoding = Some(encoding);
        if with == Shown::All {
            view.headers = Some(sealed.headers);
        }
        Ok(view)
    }

    fn open_event(&self, r: &InboundRecord, e: &EventRecord) -> Result<SealedEvent> {
        let ring = self.vault().keyring()?;
        let plain = ring.open(
            &field_aad(r.org_id.as_str(), &event_object(&e.id), "payload"),
            &e.payload,
        )?;
        serde_json::from_slice(plain.as_slice())
            .map_err(|_| EngineError::Integrity(format!("event:{}: unreadable", e.id)))
    }

    /// `GET /v1/inbound/{id}/events` (summaries; bodies too when `poll`, for callers that act
    /// through the endpoint's project; headers only for admins).
    pub async fn list_events(
        &self,
        p: &Principal,
        id: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
        poll: bool,
    ) -> Result<EventPage> {
        let r = self.visible_inbound(p, id).await?;
        if poll && !p.can_use() {
            return Err(EngineError::forbidden(
                "polling events needs an admin, member or executor token",
            ));
        }
        let after = match cursor {
            Some(c) => Some(
                c.parse::<EventId>()
                    .map_err(|_| ValidationErrors::single("cursor", "is not an event id"))?,
            ),
            None => None,
        };
        let limit = limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ValidationErrors::single("limit", "must be 1 to 1000").into());
        }
        let rows = self
            .store()
            .list_events(&r.id, after.as_ref(), i64::from(limit) + 1)
            .await?;
        let more = rows.len() > limit as usize;
        let shown = match (poll, p.is_admin()) {
            (_, true) if poll => Shown::All,
            (true, false) => Shown::Body,
            _ => Shown::Summary,
        };
        let mut events = Vec::with_capacity(rows.len());
        for e in rows.iter().take(limit as usize) {
            events.push(self.event_view(&r, e, shown)?);
        }
        if shown != Shown::Summary {
            self.core()
                .audit(self.core().event(
                    p,
                    "inbound.poll",
                    Some(r.id.to_string()),
                    "success",
                    json!({"events": events.len()}),
                ))
                .await?;
        }
        let next_cursor = if more {
            events.last().map(|e| e.id.clone())
        } else {
            None
        };
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    /// `GET /v1/inbound/{id}/events/{event}`: headers and body for admins, audited.
    pub async fn get_event(&self, p: &Principal, id: &str, event: &str) -> Result<InboundEvent> {
        let (r, e) = self.visible_event(p, id, event).await?;
        if !p.is_admin() {
            return self.event_view(&r, &e, Shown::Summary);
        }
        let view = self.event_view(&r, &e, Shown::All)?;
        self.core()
            .audit(self.core().event(
                p,
                "inbound.inspect",
                Some(e.id.to_string()),
                "success",
                json!({"endpoint": r.id}),
            ))
            .await?;
        Ok(view)
    }

    async fn visible_event(
        &self,
        p: &Principal,
        id: &str,
        event: &str,
    ) -> Result<(InboundRecord, EventRecord)> {
        let r = self.visible_inbound(p, id).await?;
        let Ok(eid) = event.parse::<EventId>() else {
            return Err(EngineError::NotFound("event"));
        };
        let e = self
            .store()
            .get_event(&r.id, &eid)
            .await?
            .ok_or(EngineError::NotFound("event"))?;
        Ok((r, e))
    }

    /// `POST /v1/inbound/{id}/events/{event}/replay` (admins and members): the event is
    /// forwarded to the endpoint's target again, as a new delivery with the same `webhook-id`.
    pub async fn replay_event(&self, p: &Principal, id: &str, event: &str) -> Result<InboundEvent> {
        let (r, mut e) = self.visible_event(p, id, event).await?;
        if !p.can_write() {
            return Err(EngineError::forbidden(
                "replaying events needs an admin or member token",
            ));
        }
        let Some(target) = r.target_id.clone() else {
            return Err(EngineError::Conflict(
                "the endpoint has no target to forward to (set one, or poll its events)".into(),
            ));
        };
        let sealed = self.open_event(&r, &e)?;
        let body = STANDARD.decode(&sealed.body).unwrap_or_default();
        let system = system(r.org_id.clone());
        let d = self.forward_of(&system, &r, &target, &e.id, &sealed.headers, &body)?;
        let mut w = self.write().await?;
        w.insert_delivery(&d).await?;
        w.set_event_delivery(&e.id, FORWARDED, Some(&d.id)).await?;
        w.succeeded(
            p,
            "inbound.replay",
            e.id.to_string(),
            json!({"endpoint": r.id, "delivery": d.id}),
        );
        w.commit().await?;
        self.queued();
        e.status = FORWARDED.into();
        e.delivery_id = Some(d.id);
        self.event_view(&r, &e, Shown::Summary)
    }
}

/// How much of an event a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Summary,
    Body,
    All,
}
