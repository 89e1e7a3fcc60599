//! Connection CRUD: validation at the edge, secrets sealed per field, organization and project
//! boundaries enforced, every change audited in its own transaction.

use std::collections::{BTreeMap, BTreeSet};

use patchbay_domain::api::{CreateConnection, Page, UpdateConnection};
use patchbay_domain::connection::Connection;
use patchbay_domain::destination;
use patchbay_domain::validate::{Draft, SecretInput, ValidConnection, validate_connection};
use patchbay_domain::{
    AuthType, ConnectionId, Kind, Principal, ProjectId, Status, ValidationErrors,
};
use patchbay_store::{ConnectionFilter, NewConnection, ProjectRecord, SecretRow, StoreError};
use patchbay_vault::Aad;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

mod credentials;
mod providers;
mod secrets;
pub(crate) mod templates;
mod testing;

pub use providers::provider_fill;
pub use testing::EngineSettings;

pub(crate) use testing::{Limiter, limiter, renewable};

use crate::admin::{check_version, conflict_name, update_failed};
use crate::core::Change;
use crate::oauth::{ACCESS_TOKEN, REFRESH_TOKEN};
use crate::{EngineError, Hub, Result};

/// Query parameters of `GET /v1/connections`, as received.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub project: Option<String>,
    pub kind: Option<String>,
    pub provider: Option<String>,
    pub auth: Option<String>,
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// `7d`, `12h`, `30m` or seconds: OAuth connections whose token expires that soon.
    pub expiring_within: Option<String>,
}

/// Parses `7d`, `12h`, `30m`, `45s` or a plain number of seconds.
/// `expiring_within`'s span (see [`patchbay_domain::span`]) as a duration.
pub(crate) fn parse_span(raw: &str) -> Option<chrono::Duration> {
    let secs = patchbay_domain::span::span_seconds(raw)?;
    chrono::Duration::try_seconds(i64::try_from(secs).ok()?)
}

const STALE_AFTER_DAYS: i64 = 7;

pub(crate) const MAX_PAGE: u32 = 200;
const DEFAULT_PAGE: u32 = 50;

/// RFC 7396 JSON merge patch: `null` removes a key, objects merge, anything else replaces.
pub(crate) fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(p) => match target.get_mut(k) {
                Some(Value::Object(t)) => merge_patch(t, p),
                _ => {
                    target.insert(k.clone(), v.clone());
                }
            },
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The associated data of one connection secret field.
pub(crate) fn field_aad<'a>(org: &'a str, connection: &'a str, field: &'a str) -> Aad<'a> {
    Aad {
        org,
        object: connection,
        field,
    }
}

fn require_writer(p: &Principal) -> Result<()> {
    if p.can_write() {
        Ok(())
    } else {
        Err(EngineError::forbidden(
            "changing connections needs an admin or member token",
        ))
    }
}

impl Hub {
    /// The project a create body names (id or name), the caller's scope, or `default`.
    pub(crate) async fn resolve_project(
        &self,
        p: &Principal,
        asked: Option<&str>,
    ) -> Result<ProjectRecord> {
        let store = self.store();
        let found = match (asked, &p.project_id) {
            (None, Some(scope)) => store.get_project(&p.org_id, scope).await?,
            (None, None) => store.find_project(&p.org_id, "default").await?,
            (Some(a), _) => match a.parse::<ProjectId>() {
                Ok(id) => store.get_project(&p.org_id, &id).await?,
                Err(_) => store.find_project(&p.org_id, a).await?,
            },
        };
        match found {
            Some(r) if p.sees_project(&r.id) => Ok(r),
            _ => Err(EngineError::NotFound("project")),
        }
    }

    /// A live connection the caller may see.
    pub(crate) async fn visible_connection(
        &self,
        p: &Principal,
        id: &ConnectionId,
    ) -> Result<Connection> {
        match self.store().get_connection(&p.org_id, id).await? {
            Some(mut c) if p.sees_project(&c.project) => {
                self.annotate(&mut c);
                Ok(c)
            }
            _ => Err(EngineError::NotFound("connection")),
        }
    }

    /// Fills the fields computed at read time.
    fn annotate(&self, c: &mut Connection) {
        c.secrets
            .retain(|k, _| !k.starts_with(patchbay_domain::validate::RESERVED_PREFIX));
        let since = c.last_tested_at.unwrap_or(c.created_at);
        c.stale = self.now() - since > chrono::Duration::days(STALE_AFTER_DAYS);
    }

    pub async fn get_connection(&self, p: &Principal, id: &ConnectionId) -> Result<Connection> {
        self.visible_connection(p, id).await
    }

    pub async fn list_connections(&self, p: &Principal, q: ListQuery) -> Result<Page<Connection>> {
        let mut errs = ValidationErrors::new();
        let mut filter = ConnectionFilter::default();
        if let Some(k) = &q.kind {
            filter.kind = Kind::parse(k).or_else(|| {
                errs.push("kind", format!("expected one of {}", Kind::expected()));
                None
            });
        }
        if let Some(a) = &q.auth {
            filter.auth = AuthType::parse(a).or_else(|| {
                errs.push("auth", format!("expected one of {}", AuthType::expected()));
                None
            });
        }
        if let Some(s) = &q.status {
            filter.status = Status::parse(s).or_else(|| {
                errs.push("status", format!("expected one of {}", Status::expected()));
                None
            });
        }
        filter.provider = q.provider.clone();
        if let Some(span) = &q.expiring_within {
            match parse_span(span) {
                Some(d) => filter.expiring_before = Some(self.now() + d),
                None => errs.push(
                    "expiring_within",
                    "must be a span such as 7d, 12h, 30m or 3600",
                ),
            }
        }
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            errs.push("limit", format!("must be between 1 and {MAX_PAGE}"));
        }
        let cursor = match &q.cursor {
            None => None,
            Some(c) => c
                .parse::<ConnectionId>()
                .map_err(|_| errs.push("cursor", "is not a cursor from a previous page"))
                .ok(),
        };
        errs.into_result(())?;
        let empty = Page {
            items: vec![],
            next_cursor: None,
        };
        if let Some(asked) = &q.project {
            let project = match asked.parse::<ProjectId>() {
                Ok(id) => self.store().get_project(&p.org_id, &id).await?,
                Err(_) => self.store().find_project(&p.org_id, asked).await?,
            };
            match project {
                Some(r) if p.sees_project(&r.id) => filter.project = Some(r.id),
                _ => return Ok(empty),
            }
        } else if let Some(scope) = &p.project_id {
            filter.project = Some(scope.clone());
        }
        let (mut items, next) = self
            .store()
            .list_connections(&p.org_id, &filter, cursor.as_ref(), limit)
            .await?;
        for c in &mut items {
            self.annotate(c);
        }
        Ok(Page {
            items,
            next_cursor: next.map(|c| c.to_string()),
        })
    }

    /// Checks what validation cannot: references name existing secrets, stdio servers are
    /// started only by admins.
    async fn check_policy(
        &self,
        p: &Principal,
        v: &ValidConnection,
        project: &ProjectId,
    ) -> Result<()> {
        let mut errs = ValidationErrors::new();
        if v.kind == Kind::Mcp && v.config.contains_key("command") && !p.is_admin() {
            return Err(EngineError::forbidden(
                "only an admin may configure a stdio MCP command",
            ));
        }
        if let Some(app) = v.auth.get("app").and_then(Value::as_str) {
            match self.store().find_app(&p.org_id, app).await? {
                None => errs.push(
                    "auth.app",
                    format!("no OAuth app {app:?} in this organization"),
                ),
                Some(a) if a.provider != v.provider => errs.push(
                    "auth.app",
                    format!(
                        "the app is registered for provider {:?}, not {:?}",
                        a.provider, v.provider
                    ),
                ),
                Some(_) => {}
            }
        }
        for (field, input) in &v.secrets {
            // One message whether the secret is missing or shared elsewhere: a project-scoped
            // token learns nothing of secrets it may not use.
            if let SecretInput::Ref(name) = input
                && !self.referable_secret(p, name.as_str(), project).await?
            {
                errs.push(
                    format!("secrets.{field}"),
                    format!(
                        "refers to secret {:?}, which does not exist or is not shared with this connection's project",
                        name.as_str()
                    ),
                );
            }
        }
        errs.into_result(())?;
        Ok(())
    }

    /// Seals the written secret fields of connection `id`.
    pub(crate) fn seal_fields(
        &self,
        p: &Principal,
        id: &ConnectionId,
        secrets: &BTreeMap<String, SecretInput>,
    ) -> Result<Vec<SecretRow>> {
        if secrets.is_empty() {
            return Ok(vec![]);
        }
        let ring = self.vault().keyring()?;
        let mut rows = Vec::with_capacity(secrets.len());
        for (field, input) in secrets {
            rows.push(match input {
                SecretInput::Value(v) => SecretRow {
                    field: field.clone(),
                    key_version: Some(i64::from(ring.current_version())),
                    ciphertext: Some(ring.seal(
                        &field_aad(p.org_id.as_str(), id.as_str(), field),
                        v.expose_secret().as_bytes(),
                    )?),
                    secret_ref: None,
                },
                SecretInput::Ref(name) => SecretRow {
                    field: field.clone(),
                    key_version: None,
                    ciphertext: None,
                    secret_ref: Some(name.to_string()),
                },
            });
        }
        Ok(rows)
    }

    /// Validates a create body without storing anything (also used by test-before-save).
    pub async fn validate_new(
        &self,
        p: &Principal,
        body: &CreateConnection,
    ) -> Result<(ProjectRecord, ValidConnection)> {
        let mut body = body.clone();
        self.apply_catalog(&mut body)?;
        let body = &body;
        let draft = Draft {
            name: Some(body.name.clone()),
            kind: Some(body.kind.clone()),
            provider: body.provider.clone(),
            auth: body.auth.clone(),
            config: body.config.clone(),
            secrets: body.secrets.clone(),
            base_url_from_token: self
                .base_url_from_token(body.provider.as_ref(), body.auth.as_ref()),
        };
        let project = self.resolve_project(p, body.project.as_deref());
        let valid = validate_connection(&draft, &BTreeSet::new());
        // Report project and field errors together.
        let (project, valid) = match (project.await, valid) {
            (Ok(pr), Ok(v)) => (pr, v),
            (Err(EngineError::Validation(mut a)), Err(b)) => {
                a.append(b);
                return Err(a.into());
            }
            (Err(e), _) => return Err(e),
            (_, Err(b)) => return Err(b.into()),
        };
        self.check_policy(p, &valid, &project.id).await?;
        Ok((project, valid))
    }

    pub async fn create_connection(
        &self,
        p: &Principal,
        body: CreateConnection,
    ) -> Result<Connection> {
        require_writer(p)?;
        let (project, v) = self.validate_new(p, &body).await?;
        let id = ConnectionId::generate();
        let rows = self.seal_fields(p, &id, &v.secrets)?;
        let now = self.now();
        let connection = Connection {
            id: id.clone(),
            org_id: Some(p.org_id.clone()),
            project: project.id.clone(),
            name: v.name.clone(),
            kind: v.kind,
            provider: v.provider.clone(),
            auth: v.auth.clone(),
            config: v.config.clone(),
            secrets: BTreeMap::new(),
            status: v.initial_status,
            test_status: patchbay_domain::TestStatus::Untested,
            test_message: None,
            test_latency_ms: None,
            last_tested_at: None,
            last_used_at: None,
            used_by: vec![],
            oauth: None,
            mcp: None,
            stale: false,
            created_by: p.actor(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut w = self.write().await?;
        w.insert_connection(&NewConnection {
            org_id: p.org_id.clone(),
            connection,
            secrets: rows,
        })
        .await
        .map_err(|e| conflict_name(e, "connection in this project", &v.name))?;
        w.succeeded(p, "connection.create", id.to_string(), serde_json::json!({
            "name": v.name.as_str(), "kind": v.kind, "provider": v.provider, "auth": v.auth_type,
            "project": project.id, "secret_fields": v.secrets.keys().collect::<Vec<_>>(),
        }));
        w.commit().await?;
        self.emit(
            "connection.created",
            &p.org_id,
            &id,
            serde_json::json!({"kind": v.kind, "provider": v.provider}),
        );
        let created = self.visible_connection(p, &id).await?;
        if created.kind == Kind::Mcp {
            self.discover_created(p, created).await;
            return self.visible_connection(p, &id).await;
        }
        Ok(created)
    }

    pub async fn update_connection(
        &self,
        p: &Principal,
        id: &ConnectionId,
        patch: UpdateConnection,
        if_match: Option<i64>,
    ) -> Result<Connection> {
        let mut w = self.write().await?;
        let current = match w.lock_connection(&p.org_id, id).await? {
            Some(c) if p.sees_project(&c.project) => c,
            _ => return Err(EngineError::NotFound("connection")),
        };
        // Existence first: another organization's id is "not found", never "forbidden".
        require_writer(p)?;
        check_version("connection", if_match, current.version)?;
        let mut errs = ValidationErrors::new();
        let object = |v: &Option<Value>, field: &str, errs: &mut ValidationErrors| match v {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                errs.push(field, "must be an object");
                Map::new()
            }
        };
        let auth_patch = object(&patch.auth, "auth", &mut errs);
        let config_patch = object(&patch.config, "config", &mut errs);
        let new_type = auth_patch.get("type").and_then(Value::as_str);
        let auth = if new_type.is_some_and(|t| t != current.auth_type().as_str()) {
            auth_patch.clone()
        } else {
            let mut a = current.auth.clone();
            merge_patch(&mut a, &auth_patch);
            a
        };
        let mut config = current.config.clone();
        merge_patch(&mut config, &config_patch);
        let status = match patch.status.as_deref() {
            None => None,
            Some("active") => Some(Status::Active),
            Some("disabled") => Some(Status::Disabled),
            Some(_) => {
                errs.push("status", "may only be set to active or disabled");
                None
            }
        };
        // A new provider is one of the catalog's for this kind, by its key.
        let provider = match &patch.provider {
            Some(Value::String(key)) => match self.check_new_provider(key, current.kind) {
                Ok(key) => Some(Value::String(key)),
                // Reported with every other bad field.
                Err(EngineError::Validation(e)) => {
                    errs.append(e);
                    None
                }
                Err(e) => return Err(e),
            },
            other => other.clone(),
        };
        let mut draft = Draft {
            name: Some(
                patch
                    .name
                    .clone()
                    .unwrap_or_else(|| Value::String(current.name.to_string())),
            ),
            kind: Some(Value::String(current.kind.as_str().into())),
            provider: Some(provider.unwrap_or_else(|| Value::String(current.provider.clone()))),
            auth: Some(Value::Object(auth)),
            config: Some(Value::Object(config)),
            secrets: patch.secrets.clone(),
            base_url_from_token: false,
        };
        draft.base_url_from_token =
            self.base_url_from_token(draft.provider.as_ref(), draft.auth.as_ref());
        if let Some(Value::String(provider)) = &draft.provider {
            self.check_secret_formats(provider, patch.secrets.as_ref(), &mut errs);
        }
        let existing: BTreeSet<String> = current.secrets.keys().cloned().collect();
        let valid = validate_connection(&draft, &existing);
        let v = match valid {
            Ok(v) => errs.into_result(v)?,
            Err(mut e) => {
                e.prepend(errs);
                return Err(e.into());
            }
        };
        self.check_policy(p, &v, &current.project).await?;
        let moved = destination::changed(
            current.kind,
            destination::Where {
                provider: &current.provider,
                auth: &current.auth,
                config: &current.config,
            },
            destination::Where {
                provider: &v.provider,
                auth: &v.auth,
                config: &v.config,
            },
        );
        // Tokens obtained for the old destination are not sent to a new one by a caller who
        // could not read them: the connection is authorized again.
        let drop_tokens = !moved.is_empty() && !p.is_admin();
        if drop_tokens {
            check_secrets_resent(&moved, &current, &v)?;
        }
        let rows = self.seal_fields(p, id, &v.secrets)?;
        let mut updated = current.clone();
        updated.name = v.name.clone();
        updated.provider = v.provider.clone();
        updated.auth = v.auth.clone();
        updated.config = v.config.clone();
        updated.updated_at = self.now();
        if v.auth_type != current.auth_type() {
            updated.status = v.initial_status;
        }
        if let Some(s) = status {
            updated.status = s;
        }
        let mut remove: Vec<String> = v
            .remove_secrets
            .iter()
            .filter(|f| !v.secrets.contains_key(*f))
            .cloned()
            .collect();
        if drop_tokens {
            remove.extend([ACCESS_TOKEN.to_owned(), REFRESH_TOKEN.to_owned()]);
            if v.auth_type == AuthType::Oauth2 {
                updated.status = Status::Pending;
            }
        }
        w.update_connection(&p.org_id, &updated, current.version, &rows, &remove)
            .await
            .map_err(|e| {
                update_failed(
                    e,
                    "connection",
                    current.version,
                    "connection in this project",
                    &v.name,
                )
            })?;
        let changed: Vec<&str> = [
            ("name", patch.name.is_some()),
            ("provider", patch.provider.is_some()),
            ("auth", patch.auth.is_some()),
            ("config", patch.config.is_some()),
            ("status", patch.status.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, changed)| changed.then_some(k))
        .collect();
        w.succeeded(
            p,
            "connection.update",
            id.to_string(),
            serde_json::json!({
                "changed": changed,
                "secrets_written": v.secrets.keys().collect::<Vec<_>>(),
                "secrets_removed": remove,
            }),
        );
        if !moved.is_empty() {
            w.succeeded(
                p,
                "connection.destination_change",
                id.to_string(),
                serde_json::json!({
                    "fields": moved,
                    "secrets_resent": v.secrets.keys().collect::<Vec<_>>(),
                    "tokens_dropped": drop_tokens,
                }),
            );
        }
        w.invalidates(Change::connection(id));
        w.commit().await?;
        self.visible_connection(p, id).await
    }

    pub async fn delete_connection(&self, p: &Principal, id: &ConnectionId) -> Result<()> {
        self.delete_one(p, id).await.map(drop)
    }

    /// Revokes and deletes every connection of `provider` that `p` sees ("revoke all tokens
    /// for a service"); admins only. Each is audited as its own `connection.delete`, the whole
    /// as `connection.bulk_delete`.
    pub async fn delete_connections_of(
        &self,
        p: &Principal,
        provider: &str,
    ) -> Result<patchbay_domain::api::BulkDeleted> {
        crate::admin::require_admin(p)?;
        if provider.is_empty() {
            return Err(ValidationErrors::single(
                "provider",
                "is required: connections are deleted together by provider only",
            )
            .into());
        }
        let key = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if provider.len() > 64 || !provider.chars().all(key) {
            return Err(ValidationErrors::single(
                "provider",
                "must be a provider key such as slack (a-z 0-9 _ . -, at most 64)",
            )
            .into());
        }
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .list_connections(
                    p,
                    ListQuery {
                        provider: Some(provider.to_owned()),
                        limit: Some(200),
                        cursor: cursor.take(),
                        ..ListQuery::default()
                    },
                )
                .await?;
            ids.extend(page.items.into_iter().map(|c| c.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut deleted = Vec::with_capacity(ids.len());
        let mut revoked = 0;
        for id in ids {
            match self.delete_one(p, &id).await {
                Ok(was_revoked) => {
                    revoked += usize::from(was_revoked);
                    deleted.push(id);
                }
                // Deleted meanwhile by someone else: nothing left to do for it.
                Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut w = self.write().await?;
        w.succeeded(
            p,
            "connection.bulk_delete",
            provider.to_owned(),
            serde_json::json!({"deleted": deleted.len(), "revoked": revoked}),
        );
        w.commit().await?;
        Ok(patchbay_domain::api::BulkDeleted {
            provider: provider.to_owned(),
            deleted,
            revoked,
        })
    }

    /// Deletes one connection; whether a grant was revoked at the provider.
    async fn delete_one(&self, p: &Principal, id: &ConnectionId) -> Result<bool> {
        let current = self.visible_connection(p, id).await?;
        require_writer(p)?;
        // OAuth grants are revoked at the provider first (best effort, RFC 7009).
        let (status, revocation) = match self.revoke_at_provider(p, &current).await {
            Some(outcome) => (Status::Revoked, Some(outcome)),
            None => (current.status, None),
        };
        let mut w = self.write().await?;
        w.delete_connection(&p.org_id, id, status, self.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => EngineError::NotFound("connection"),
                other => other.into(),
            })?;
        w.succeeded(
            p,
            "connection.delete",
            id.to_string(),
            serde_json::json!({
                "name": current.name.as_str(),
                "revocation": revocation,
            }),
        );
        w.invalidates(Change::connection(id));
        w.commit().await?;
        if revocation.is_some() {
            self.emit(
                "connection.revoked",
                &p.org_id,
                id,
                serde_json::json!({"revocation": revocation}),
            );
        }
        Ok(revocation.as_deref() == Some("revoked"))
    }
}

/// Refuses a change of destination that would send stored secrets where the caller could not
/// have sent them: every secret the connection keeps must come with the request. Each moved
/// field is named, with the secrets to resend.
fn check_secrets_resent(moved: &[String], current: &Connection, v: &ValidConnection) -> Result<()> {
    // Obtained tokens (reserved fields) cannot be resent; they are dropped instead.
    let kept: Vec<String> = current
        .secrets
        .keys()
        .filter(|f| !f.starts_with(patchbay_domain::validate::RESERVED_PREFIX))
        .filter(|f| !v.secrets.contains_key(*f) && !v.remove_secrets.contains(*f))
        .map(|f| format!("secrets.{f}"))
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    let mut errs = ValidationErrors::new();
    for field in moved {
        errs.push(
            field.clone(),
            format!(
                "changes where this connection sends its secrets: resend {} with it, or ask an admin",
                kept.join(", ")
            ),
        );
    }
    Err(errs.into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn spans_parse() {
        assert_eq!(parse_span("7d"), chrono::Duration::try_days(7));
        assert_eq!(parse_span("12h"), chrono::Duration::try_hours(12));
        assert_eq!(parse_span("90"), chrono::Duration::try_seconds(90));
        assert_eq!(parse_span("x"), None);
        assert_eq!(parse_span("-1d"), None);
        assert_eq!(parse_span("3w"), None);
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": 1, "h": {"x": "1", "y": "2"}, "gone": true})
            .as_object()
            .unwrap()
            .clone();
        let patch = json!({"a": 2, "h": {"y": null, "z": "3"}, "gone": null, "new": [1]});
        merge_patch(&mut target, patch.as_object().unwrap());
        assert_eq!(
            Value::Object(target),
            json!({"a": 2, "h": {"x": "1", "z": "3"}, "new": [1]})
        );
    }
}
