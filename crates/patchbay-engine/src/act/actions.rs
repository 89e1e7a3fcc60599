//! Actions (SPEC §3, §4 Proxy and actions): one operation through a connection — an HTTP call
//! with a JSONPath map of its answer, a parameterized SQL statement, an e-mail. Each is audited
//! on its own (who, which connection, outcome, latency; never a body or a parameter) and counts
//! as use of the connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use patchbay_connectors::Material;
use patchbay_connectors::call::{CallBody, CallRequest, RetryPolicy};
use patchbay_connectors::smtp::MailError;
use patchbay_connectors::sql::SqlError;
use patchbay_domain::actions::{
    EmailAction, EmailActionResult, HttpAction, HttpActionResult, MapRule, Recipients, SqlAction,
    SqlActionResult,
};
use patchbay_domain::api::ErrorKind;
use patchbay_domain::{ConnectionId, Kind, Principal, ValidationErrors};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::act::calls::{Prepared, call_error};
use crate::{EngineError, Hub, Result};

/// What an action through a connection did, for its audit entry and use record.
pub(crate) struct Acted<'a> {
    pub action: &'static str,
    pub connection: &'a ConnectionId,
    /// The upstream's status (or 200 for a database or mail server that accepted).
    pub status: Option<u16>,
    pub success: bool,
    pub details: Value,
}

/// Answers larger than this are not read into an action's result.
pub(crate) const MAX_ANSWER: usize = 10 * 1024 * 1024;

/// Checks JSONPath rules before anything is sent.
pub(crate) fn parse_map(
    rules: &[MapRule],
    field: &str,
) -> Result<Vec<(String, serde_json_path::JsonPath)>> {
    let mut errs = ValidationErrors::new();
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if r.name.is_empty() {
            errs.push(format!("{field}[{i}].as"), "is required");
        }
        match serde_json_path::JsonPath::parse(&r.select) {
            Ok(p) => out.push((r.name.clone(), p)),
            Err(e) => errs.push(
                format!("{field}[{i}].select"),
                format!("is not a JSONPath: {e}"),
            ),
        }
    }
    errs.into_result(out).map_err(Into::into)
}

/// The mapped values: one node as itself, several as an array, none as null.
pub(crate) fn apply_map(
    rules: &[(String, serde_json_path::JsonPath)],
    body: &Value,
) -> Map<String, Value> {
    rules
        .iter()
        .map(|(name, path)| {
            let nodes = path.query(body).all();
            let v = match nodes.as_slice() {
                [] => Value::Null,
                [one] => (*one).clone(),
                many => Value::Array(many.iter().map(|v| (*v).clone()).collect()),
            };
            (name.clone(), v)
        })
        .collect()
}

/// The query string of `path` plus `extra` parameters.
fn query_of(path: &str, extra: Option<&Map<String, Value>>) -> (String, Option<String>) {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (path.to_owned(), None),
    };
    let Some(extra) = extra.filter(|m| !m.is_empty()) else {
        return (path, query);
    };
    let mut ser = url::form_urlencoded::Serializer::for_suffix(query.unwrap_or_default(), 0);
    for (k, v) in extra {
        let values: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for v in values {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            ser.append_pair(k, &text);
        }
    }
    (path, Some(ser.finish()))
}

/// Reads an answer (at most [`MAX_ANSWER`] bytes): JSON when it parses, else text.
pub(crate) async fn read_answer<B>(body: B) -> Result<Value>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let out = patchbay_connectors::read_capped(body, MAX_ANSWER)
        .await
        .map_err(EngineError::Upstream)?;
    Ok(serde_json::from_slice(&out)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out).into_owned())))
}

impl Hub {
    /// Material for one call with `auth` instead of the connection's own.
    async fn overridden(
        &self,
        p: &Principal,
        prepared: &Prepared,
        auth: &Value,
    ) -> Result<Material> {
        let invalid = |field: &str, reason: &str| -> EngineError {
            ValidationErrors::single(format!("auth.{field}"), reason).into()
        };
        let map = auth.as_object().ok_or_else(|| {
            EngineError::from(ValidationErrors::single("auth", "must be an object"))
        })?;
        let kind = map.get("type").and_then(Value::as_str).unwrap_or_default();
        let field = match kind {
            "none" => None,
            "bearer" => Some("token"),
            "api_key" => Some("api_key"),
            "basic" => Some("password"),
            _ => return Err(invalid("type", "must be none, bearer, api_key or basic")),
        };
        let mut secrets = BTreeMap::new();
        if let Some(field) = field {
            let name = map
                .get("secret_ref")
                .or_else(|| map.get("tokenRef"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("secret_ref", "names the organization secret to use"))?;
            let project = &prepared.connection.project;
            if !self.referable_secret(p, name, project).await? {
                return Err(invalid(
                    "secret_ref",
                    "no such organization secret shared with this connection's project",
                ));
            }
            let plain = self.open_org_secret(p, name, project).await?;
            secrets.insert(
                field.to_owned(),
                SecretString::from(String::from_utf8_lossy(&plain).into_owned()),
            );
        }
        let mut auth = map.clone();
        auth.remove("secret_ref");
        auth.remove("tokenRef");
        let kind = prepared.material.kind();
        let auth = patchbay_domain::validate::parse_auth(kind, &auth, &prepared.connection.config)
            .map_err(EngineError::from)?;
        Ok(Material::new(
            prepared.material.provider.clone(),
            prepared.material.spec.clone(),
            auth,
            secrets,
            None,
        ))
    }

    /// `POST /v1/actions/http`.
    pub async fn http_action(
        &self,
        p: &Principal,
        a: HttpAction,
        caller: Option<String>,
    ) -> Result<HttpActionResult> {
        let started = Instant::now();
        let method = match a.method.as_deref() {
            None => reqwest::Method::GET,
            Some(m) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| ValidationErrors::single("method", "is not an HTTP method"))?,
        };
        let rules = parse_map(&a.map, "map")?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in a.headers.iter().flatten() {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                ValidationErrors::single(format!("headers.{k}"), "is not a header name")
            })?;
            let value = reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                ValidationErrors::single(format!("headers.{k}"), "is not a header value")
            })?;
            headers.insert(name, value);
        }
        let prepared = self.prepared(p, &a.connection).await?;
        require_kind(&prepared, Kind::Http)?;
        let body = match &a.body {
            None => Bytes::new(),
            Some(Value::String(s)) => {
                headers.entry(reqwest::header::CONTENT_TYPE).or_insert(
                    reqwest::header::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                Bytes::from(s.clone())
            }
            Some(v) => {
                headers.entry(reqwest::header::CONTENT_TYPE).or_insert(
                    reqwest::header::HeaderValue::from_static("application/json"),
                );
                Bytes::from(v.to_string())
            }
        };
        let (path, query) = query_of(&a.path, a.query.as_ref());
        let request = CallRequest {
            method: method.clone(),
            path: path.clone(),
            query,
            headers,
            body: CallBody::Bytes(body),
        };
        let replaced = match &a.auth {
            Some(auth) => Some(self.overridden(p, &prepared, auth).await?),
            None => None,
        };
        let (outcome, used) = match &replaced {
            Some(material) => {
                let resp = self
                    .connectors()
                    .call(material, request, RetryPolicy::of(material))
                    .await
                    .map_err(call_error)
                    .map(|mut resp| {
                        material.redactor().scrub_headers(resp.headers_mut());
                        resp
                    });
                (resp, None)
            }
            None => match self.send(p, prepared.clone(), request).await {
                Ok((resp, used)) => (Ok(resp), Some(used)),
                Err(e) => (Err(e), None),
            },
        };
        // The credentials of the call that answered (a renewal may have replaced them).
        let redactor = match (&replaced, &used) {
            (Some(material), _) => material.redactor(),
            (None, Some(used)) => used.material.redactor(),
            (None, None) => prepared.material.redactor(),
        };
        let result = match outcome {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
                    .collect();
                read_answer(resp.into_body()).await.map(|mut body| {
                    redactor.scrub_json(&mut body);
                    let output = apply_map(&rules, &body);
                    HttpActionResult {
                        status,
                        headers,
                        body,
                        output,
                    }
                })
            }
            Err(e) => Err(e),
        };
        let status = result.as_ref().ok().map(|r| r.status);
        self.acted(
            p,
            Acted {
                action: "action.http",
                connection: &a.connection,
                status,
                success: status.is_some_and(|s| s < 400),
                details: json!({"method": method.as_str(), "path": path, "status": status,
                    "error": result.as_ref().err().map(ToString::to_string)}),
            },
            caller,
            started,
        )
        .await;
        result
    }

    /// Records an action through a connection: its audit entry and its use of the connection.
    pub(crate) async fn acted(
        &self,
        p: &Principal,
        a: Acted<'_>,
        caller: Option<String>,
        started: Instant,
    ) {
        self.audit_action(
            p,
            a.action,
            a.connection.as_str(),
            a.success,
            a.details,
            started,
        )
        .await;
        self.record_use(p, a.connection, None, caller, a.status, started);
    }

    /// Appends an action's audit entry; the action already happened, so a failure to write
    /// it is logged rather than returned.
    pub(crate) async fn audit_action(
        &self,
        p: &Principal,
        action: &str,
        target: &str,
        success: bool,
        mut details: Value,
        started: Instant,
    ) {
        details["latency_ms"] =
            json!(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        let outcome = if success { "success" } else { "failure" };
        let event = self
            .core()
            .event(p, action, Some(target.to_owned()), outcome, details);
        if !self.core().audit_use(event).await {
            tracing::error!(action, "could not write an action's audit entry");
        }
    }
}

impl Hub {
    /// `POST /v1/actions/sql`.
    pub async fn sql_action(
        &self,
        p: &Principal,
        mut a: SqlAction,
        caller: Option<String>,
    ) -> Result<SqlActionResult> {
        let started = Instant::now();
        let mut errs = ValidationErrors::new();
        if a.query.trim().is_empty() {
            errs.push("query", "is required");
        }
        let max_rows = a.max_rows.unwrap_or(1000);
        if max_rows == 0 || max_rows > 10_000 {
            errs.push("max_rows", "must be between 1 and 10000");
        }
        if a.timeout_ms.is_some_and(|t| t == 0 || t > 600_000) {
            errs.push("timeout_ms", "must be between 1 and 600000");
        }
        errs.into_result(())?;
        let prepared = self.prepared(p, &a.connection).await?;
        require_kind(&prepared, Kind::Database)?;
        let timeout = std::time::Duration::from_millis(
            a.timeout_ms
                .unwrap_or(patchbay_domain::spec::DatabaseConfig::STATEMENT_TIMEOUT_MS),
        );
        let statement = patchbay_connectors::sql::SqlStatement {
            query: a.query.clone(),
            params: std::mem::take(&mut a.params),
            max_rows: max_rows as usize,
            read_only: a.read_only,
            timeout,
        };
        // The statement runs in a task of its own, so a caller that goes away cannot stop its
        // deadline: past it the statement is cancelled on the server.
        let connectors = self.connectors().clone();
        let running = prepared.clone();
        let result = self
            .spawn_background(async move { connectors.run_sql(&running.material, statement).await })
            .await
            .unwrap_or_else(|e| {
                Err(SqlError::Statement(format!(
                    "the statement's task failed: {e}"
                )))
            })
            .map_err(sql_error);
        // The statement's verb, never its text or parameters.
        let verb: String = a
            .query
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(16)
            .collect::<String>()
            .to_ascii_uppercase();
        self.acted(
            p,
            Acted {
                action: "action.sql",
                connection: &a.connection,
                status: result.as_ref().ok().map(|_| 200),
                success: result.is_ok(),
                details: json!({"statement": verb, "read_only": a.read_only,
                    "rows": result.as_ref().ok().map(|r| r.count),
                    "rows_affected": result.as_ref().ok().map(|r| r.rows_affected),
                    "error": result.as_ref().err().map(ToString::to_string)}),
            },
            caller,
            started,
        )
        .await;
        result
    }

    /// `POST /v1/actions/email`.
    pub async fn email_action(
        &self,
        p: &Principal,
        a: EmailAction,
        caller: Option<String>,
    ) -> Result<EmailActionResult> {
        let started = Instant::now();
        let prepared = self.prepared(p, &a.connection).await?;
        require_kind(&prepared, Kind::Smtp)?;
        let mail = patchbay_connectors::smtp::Mail {
            to: a.to.list(),
            cc: recipients_of(a.cc.as_ref()),
            bcc: recipients_of(a.bcc.as_ref()),
            reply_to: a.reply_to.as_deref(),
            subject: &a.subject,
            text: a.text.as_deref(),
            html: a.html.as_deref(),
        };
        let recipients = mail.to.len() + mail.cc.len() + mail.bcc.len();
        let result = self
            .connectors()
            .send_mail(&prepared.material, mail)
            .await
            .map(|message_id| EmailActionResult {
                message_id,
                accepted: recipients,
            })
            .map_err(|e| match e {
                MailError::Invalid { field, reason } => {
                    ValidationErrors::single(field, reason).into()
                }
                MailError::Server { kind, message } => by_kind(kind, message),
            });
        self.acted(
            p,
            Acted {
                action: "action.email",
                connection: &a.connection,
                status: result.as_ref().ok().map(|_| 200),
                success: result.is_ok(),
                details: json!({"recipients": recipients,
                    "error": result.as_ref().err().map(ToString::to_string)}),
            },
            caller,
            started,
        )
        .await;
        result
    }
}

fn recipients_of(r: Option<&Recipients>) -> Vec<&str> {
    r.map(Recipients::list).unwrap_or_default()
}

/// An outbound failure of a given kind as the API reports it.
pub(crate) fn by_kind(kind: ErrorKind, message: String) -> EngineError {
    match kind {
        ErrorKind::Blocked => EngineError::Blocked(message),
        ErrorKind::Timeout => EngineError::Timeout(message),
        _ => EngineError::Upstream(message),
    }
}

fn sql_error(e: SqlError) -> EngineError {
    match e {
        SqlError::Connection { kind, message } => by_kind(kind, message),
        SqlError::Statement(m) => EngineError::BadRequest {
            code: "statement_failed",
            message: format!("the database refused the statement: {m}"),
        },
        e @ (SqlError::Timeout(_) | SqlError::ServerTimeout(_)) => {
            EngineError::Timeout(e.to_string())
        }
        SqlError::Unsupported(m) => ValidationErrors::single("connection", m).into(),
        SqlError::Refused(m) => ValidationErrors::single("query", m).into(),
    }
}

/// Refuses a connection of another kind, naming the field.
pub(crate) fn require_kind(prepared: &Arc<Prepared>, kind: Kind) -> Result<()> {
    if prepared.connection.kind == kind {
        Ok(())
    } else {
        Err(ValidationErrors::single(
            "connection",
            format!(
                "is a {} connection; this action needs a {} connection",
                prepared.connection.kind.as_str(),
                kind.as_str()
            ),
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_pick_one_node_many_or_none() {
        let rules = parse_map(
            &[
                MapRule {
                    name: "files".into(),
                    select: "$.files".into(),
                },
                MapRule {
                    name: "ids".into(),
                    select: "$.files[*].id".into(),
                },
                MapRule {
                    name: "first".into(),
                    select: "$.files[0].name".into(),
                },
                MapRule {
                    name: "absent".into(),
                    select: "$.nope".into(),
                },
            ],
            "map",
        )
        .unwrap();
        let body = json!({"files": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]});
        let out = apply_map(&rules, &body);
        assert_eq!(out["files"], body["files"]);
        assert_eq!(out["ids"], json!([1, 2]));
        assert_eq!(out["first"], "a");
        assert_eq!(out["absent"], Value::Null);
        let err = parse_map(
            &[MapRule {
                name: "x".into(),
                select: "$..[".into(),
            }],
            "map",
        )
        .unwrap_err();
        assert!(err.to_string().contains("map[0].select"), "{err}");
    }

    #[test]
    fn query_parameters_join_the_path_query() {
        let extra = json!({"q": "a b&c", "tag": ["x", "y"], "n": 2});
        let (path, q) = query_of("/search?page=1", extra.as_object());
        assert_eq!(path, "/search");
        assert_eq!(q.as_deref(), Some("page=1&n=2&q=a+b%26c&tag=x&tag=y"));
        assert_eq!(query_of("/x", None), ("/x".to_owned(), None));
    }
}
