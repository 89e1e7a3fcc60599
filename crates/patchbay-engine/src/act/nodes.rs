//! `POST /v1/nodes/run`: one workflow node in the seeds' formats, run as the matching action.
//! Context variables fill `${var}` / `{{var}}` templates in the node's parsed JSON values —
//! never in SQL text (SQL takes parameters) — and the node's output comes back under its
//! `outputVariable`. `integration` nodes call a catalog provider's named operation; `llm`
//! nodes call a provider's chat operation (OpenAI-compatible, Anthropic, Gemini, Cohere).

use patchbay_domain::actions::{
    EmailAction, HttpAction, McpAction, NodeRun, NodeRunResult, SqlAction, StorageAction,
    WebhookAction,
};
use patchbay_domain::{ConnectionId, Principal, ValidationErrors};
use serde_json::{Map, Value, json};

use crate::connections::templates::{fill, fill_optional, fill_path, has_placeholder};
use crate::{EngineError, Hub, Result};

/// The first of `names` present (and not `null`) in the node's config (camelCase as in the
/// seeds, or snake_case), with the name it was found under.
fn named_field<'a>(
    config: &'a Map<String, Value>,
    names: &[&'a str],
) -> Option<(&'a str, &'a Value)> {
    names
        .iter()
        .find_map(|n| config.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v)))
}

fn field<'a>(config: &'a Map<String, Value>, names: &[&'a str]) -> Option<&'a Value> {
    named_field(config, names).map(|(_, v)| v)
}

/// A string field; a value of another type is refused, naming it, rather than ignored.
fn str_field<'a>(config: &'a Map<String, Value>, names: &[&'a str]) -> Result<Option<&'a str>> {
    match named_field(config, names) {
        None => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s)),
        Some((name, _)) => {
            Err(ValidationErrors::single(format!("config.{name}"), "must be a string").into())
        }
    }
}

fn required_str<'a>(config: &'a Map<String, Value>, names: &[&'a str]) -> Result<&'a str> {
    str_field(config, names)?.ok_or_else(|| {
        ValidationErrors::single(format!("config.{}", names[0]), "is required").into()
    })
}

fn connection_of(config: &Map<String, Value>) -> Result<ConnectionId> {
    required_str(config, &["connectionId", "connection_id", "connection"])?
        .parse()
        .map_err(|_| {
            ValidationErrors::single("config.connectionId", "is not a connection id").into()
        })
}

/// Deserializes `v` into an action, naming the field of the node that is wrong.
fn as_action<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        ValidationErrors::single(format!("config.{}", e.path()), e.inner().to_string()).into()
    })
}

/// Copies each `(field, names)` the node's config has under one of its names into the action
/// `a`, its templates filled from the context.
fn copy_filled(
    a: &mut Value,
    config: &Map<String, Value>,
    ctx: &Map<String, Value>,
    fields: &[(&str, &[&str])],
) -> Result<()> {
    for (key, names) in fields {
        if let Some(v) = field(config, names) {
            a[*key] = fill(v, ctx, &format!("config.{key}"))?;
        }
    }
    Ok(())
}

fn output_variable(config: &Map<String, Value>) -> Result<Option<&str>> {
    str_field(config, &["outputVariable", "output_variable"])
}

/// A node's one output, under its `outputVariable` (or `default`).
fn output(config: &Map<String, Value>, default: &str, value: Value) -> Result<Map<String, Value>> {
    let mut outputs = Map::new();
    outputs.insert(
        output_variable(config)?.unwrap_or(default).to_owned(),
        value,
    );
    Ok(outputs)
}

/// How a provider's chat answer holds its text.
fn chat_text(provider: &str, body: &Value) -> Option<String> {
    let pick = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match provider {
        "anthropic" => {
            let parts: Vec<&str> = body
                .get("content")?
                .as_array()?
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!parts.is_empty()).then(|| parts.concat())
        }
        "google-ai" => pick("/candidates/0/content/parts/0/text"),
        "cohere" => pick("/message/content/0/text"),
        _ => pick("/choices/0/message/content"),
    }
}

impl Hub {
    /// Runs one node.
    pub async fn run_node(
        &self,
        p: &Principal,
        node: NodeRun,
        caller: Option<String>,
    ) -> Result<NodeRunResult> {
        let ctx = node.context.clone().unwrap_or_default();
        let config = &node.config;
        // Read once before anything is sent, so that a bad one is refused without side effects.
        output_variable(config)?;
        let (outputs, result) = match node.node_type.as_str() {
            "http" => self.http_node(p, config, &ctx, caller).await?,
            "webhook" => self.webhook_node(p, config, &ctx, caller).await?,
            "sql" | "database" => self.sql_node(p, config, &ctx, caller).await?,
            "email" => self.email_node(p, config, &ctx, caller).await?,
            "integration" => self.integration_node(p, config, &ctx, caller).await?,
            "llm" => self.llm_node(p, config, &ctx, caller).await?,
            "mcp_tool" => self.mcp_tool_node(p, config, &ctx, caller).await?,
            "s3-upload" | "s3_upload" => self.s3_upload_node(p, config, &ctx, caller).await?,
            _ => {
                return Err(ValidationErrors::single(
                    "type",
                    "must be http, webhook, sql, email, integration, llm, mcp_tool or s3-upload",
                )
                .into());
            }
        };
        Ok(NodeRunResult {
            node_type: node.node_type,
            outputs,
            result,
        })
    }

    async fn http_node(
        &self,
        p: &Principal,
        config: &Map<String, Value>,
        ctx: &Map<String, Value>,
        caller: Option<String>,
    ) -> Result<(Map<String, Value>, Value)> {
        let path = fill_path(
            str_field(config, &["path"])?.unwrap_or(""),
            ctx,
            "config.path",
        )?;
        let mut a = json!({
            "connection": connection_of(config)?,
            "path": path,
            "method": str_field(config, &["method"])?.unwrap_or("GET"),
        });
        copy_filled(
            &mut a,
            config,
            ctx,
            &[
                ("query", &["query"][..]),
                ("headers", &["headers"]),
                ("body", &["body"]),
                ("map", &["map"]),
            ],
        )?;
        if let Some(auth) = field(config, &["auth"]) {
            a["auth"] = auth.clone();
        }
        let action: HttpAction = as_action(a)?;
        let r = self.http_action(p, action, caller).await?;
        let mut outputs = r.output.clone();
        if let Some(var) = output_variable(config)? {
            outputs.insert(var.to_owned(), r.body.clone());
        } else if outputs.is_empty() {
            outputs.insert("output".into(), r.body.clone());
        }
        Ok((outputs, serde_json::to_value(r).unwrap_or_default()))
    }

    async fn webhook_node(
        &self,
        p: &Principal,
        config: &Map<String, Value>,
        ctx: &Map<String, Value>,
        caller: Option<String>,
    ) -> Result<(Map<String, Value>, Value)> {
        let mut a = json!({"context": ctx});
        if let Some(c) = field(config, &["connectionId", "connection_id", "connection"]) {
            a["connection"] = c.clone();
        }
        for (key, names) in [
            ("url", &["url"][..]),
            ("method", &["method"]),
            ("headers", &["headers"]),
            ("body", &["body"]),
            ("mode", &["mode"]),
            ("retry", &["retryPolicy", "retry"]),
            ("condition", &["condition"]),
        ] {
            if let Some(v) = field(config, names) {
                a[key] = v.clone();
            }
        }
        let action: WebhookAction = as_action(a)?;
        let r = self.webhook_action(p, action, caller).await?;
        let value = serde_json::to_value(&r).unwrap_or_default();
        Ok((output(config, "output", value.clone())?, value))
    }

    /// `mcp_tool`: `{connectionId, tool, parameters, outputVariable}` — a tool of an MCP
    /// connection, its parameters filled from the context; the output is the tool's result.
    async fn mcp_tool_node(
        &self,
        p: &Principal,
        config: &Map<String, Value>,
        ctx: &Map<String, Value>,
        caller: Option<String>,
    ) -> Result<(Map<String, Value>, Value)> {
        let tool = required_str(config, &["tool", "toolName", "tool_name"])?;
        let mut a = json!({"connection": connection_of(config)?, "tool": tool});
        if let Some((name, v)) = named_field(config, &["parameters", "arguments", "params"]) {
            a["arguments"] = fill(v, ctx, &format!("config.{name}"))?;
        }
        if let Some(v) = field(config, &["timeoutMs", "timeout_ms"]) {
            a["timeout_ms"] = v.clone();
        }
        let action: McpAction = as_action(a)?;
        let r = self.mcp_action(p, action, caller).await?;
        let value = serde_json::to_value(&r).unwrap_or_default();
        Ok((output(config, "result", value.clone())?, value))
    }

    async fn sql_node(
        &self,
        p: &Principal,
        config: &Map<String, Value>,
        ctx: &Map<String, Value>,
        caller: Option<String>,
    ) -> Result<(Map<String, Value>, Value)> {
        let query = required_str(config, &["query"])?;
        if has_placeholder(query) {
            return Err(ValidationErrors::single(
                "config.query",
                "templates are not filled into SQL; use $1 or ? placeholders and `params`",
            )
            .into());
        }
        let params = match field(config, &["params", "parameters"]) {
            Some(v) => fill(v, ctx, "config.params")?,
            None => json!([]),
        };
        let mut a = json!({"connection": connection_of(config)?, "query": query, "params": params});
        if let Some(v) = field(config, &["maxRows", "max_rows"]) {
            a["max_rows"] = v.clone();
        }
        if let Some(v) = field(config, &["readOnly", "read_only"]) {
            a["read_only"] = v.clone();
        }
        if let Some(v) = field(config, &["timeoutMs", "timeout_ms"]) {
            a["timeout_ms"] = v.clone();
        }
        let action: SqlAction = as_action(a)?;
        let r = self.sql_action(p, action, caller).await?;
        let value = serde_json::to_value(&r).unwrap_or_default();
        let mut outputs = Map::new();
        match output_variable(config)? {
            Some(var) => {
                outputs.insert(var.to_owned(), json!({"rows": r.rows, "count": r.count}));
            }
            None => {
                outputs.insert("rows".into(), json!(r.rows));
                outputs.insert("count".into(), json!(r.count));
            }
        }
        Ok((outputs, value))
    }

    async fn email_node(
        &self,
        p: &Principal,
        config: &Map<String, Value>,
        ctx: &Map<String, Value>,
        caller: Option<String>,
    ) -> Result<(Map<String, Value>, Value)> {
        let mut a = json!({"connection": connection_of(config)?});
        copy_filled(
            &mut a,
            config,
            ctx,
            &[
                ("to", &["to"][..]),
                ("cc", &["cc"]),
                ("bcc", &["bcc"]),
                ("reply_to", &["replyTo", "reply_to"]),
                ("subject", &["subject"]),
                ("text", &["text", "body"]),
                ("html", &["html"]),
            ],
        )?;
        let action: EmailAction = as_action(a)?;
        let r = self.email_action(p, action, caller).await?;
        let value = serde_json::to_value(&r).unwrap_or_default();
        Ok((output(config, "output", value.clone())?, value))
    }

    /// The seeds' `s3-upload`: `key`, the content (`body` with its `encoding`, or a `file_path`
    /// under a directory the operator allows), `acl` and `contentType`, put through a storage
    /// connection; `bucket`, when given, must be the connection's.
    async fn s3_upload_node(
        &self,
        p: &Principal,
        config: &Map<String, Value>,
        ctx: &Map<String, Value>,
        caller: Option<String>,
    ) -> Result<(Map<String, Value>, Value)> {
        let connection = connection_of(config)?;
        let mut a = json!({"connection": connection, "op": "put"});
        copy_filled(
            &mut a,
            config,
            ctx,
            &[
                ("key", &["key"][..]),
                ("acl", &["acl"]),
                ("content_type", &["contentType", "content_type"]),
                ("body", &["body", "content"]),
                ("encoding", &["encoding"]),
                ("metadata", &["metadata"]),
            ],
        )?;
        if let Some(path) = str_field(config, &["file_path", "filePath"])? {
            if a.get("body").is_some() {
                return Err(ValidationErrors::single(
                    "config.file_path",
                    "give either file_path or the content (body), not both",
                )
                .into());
            }
            let bytes = self.upload_file(path).await?;
            a["body"] = Value::String(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                bytes,
            ));
            a["encoding"] = Value::String("base64".into());
        }
        if let Some(bucket) = str_field(config, &["bucket"])? {
            let prepared = self.prepared(p, &connection).await?;
            let own = prepared
                .material
                .spec
                .storage()
                .map(|c| c.bucket.clone())
                .unwrap_or_default();
            if own != bucket {
                return Err(ValidationErrors::single(
                    "config.bucket",
                    format!("is not the connection's bucket ({own})"),
                )
                .into());
            }
        }
        let action: StorageAction = as_action(a)?;
        let r = match self.storage_action(p, action, caller).await? {
            crate::StorageOutcome::Done(r) => r,
            crate::StorageOutcome::Object(_) => {
                return Err(EngineError::Internal("a put answered an object".into()));
            }
        };
        let value = serde_json::to_value(&r).unwrap_or_default();
        Ok((output(config, "output", value.clone())?, value))
    }

    /// A file an upload sends, read from under the directories the operator allows.
    async fn upload_file(&self, raw: &str) -> Result<Vec<u8>> {
        use patchbay_connectors::files::{Refusal, path_under};
        let settings = self.connectors().settings();
        let refused = |reason: String| -> EngineError {
            ValidationErrors::single("config.file_path", reason).into()
        };
        let path = path_under(raw, &settings.allow_upload_dirs, &settings.protected_dirs).map_err(
            |r| {
                refused(match r {
                    Refusal::NotAbsolute => "must be an absolute path".into(),
                    Refusal::NoneAllowed => "files are not read here (the operator allows \
                        directories with --allow-upload-dir)"
                        .into(),
                    Refusal::Unreadable(kind) => format!("cannot be read: {kind}"),
                    Refusal::Protected => "lies in Patchbay's own data directory".into(),
                    Refusal::Outside => "is outside the directories the operator allows".into(),
                })
            },
        )?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| refused(format!("cannot be read: {}", e.kind())))?;
        if !meta.is_file() {
            return Err(refused("is not a file".into()));
        }
        if meta.len() > crate::act::storage::MAX_PUT as u64 {
            return Err(refused(format!(
                "is too large: at most {} bytes in one put",
                crate::act::storage::MAX_PUT
            )));
        }
        tokio::fs::read(&path)
            .await
            .map_err(|e| refused(format!("cannot be read: {}", e.kind())))
    }

    /// Calls a catalog operation with `params` through the connection; the answer's JSON.
    pub(crate) async fn operation(
        &self,
        p: &Principal,
        connection: ConnectionId,
        service: &str,
        operation: &str,
        params: &Map<String, Value>,
        caller: Option<String>,
    ) -> Result<Value> {
        let entry = self.catalog().get(service).ok_or_else(|| {
            EngineError::from(ValidationErrors::single(
                "config.service",
                format!("{service:?} is not in the provider catalog"),
            ))
        })?;
        let op = entry.operations.get(operation).ok_or_else(|| {
            let known: Vec<&str> = entry.operations.keys().map(String::as_str).collect();
            EngineError::from(ValidationErrors::single(
                "config.operation",
                format!(
                    "{service} has no operation {operation:?}; it has {}",
                    known.join(", ")
                ),
            ))
        })?;
        let prepared = self.prepared(p, &connection).await?;
        if prepared.connection.provider != entry.key {
            return Err(ValidationErrors::single(
                "config.connectionId",
                format!(
                    "is a {} connection; this node needs a {} connection",
                    prepared.connection.provider, entry.key
                ),
            )
            .into());
        }
        let path = fill_path(&op.path, params, "the operation's path")?;
        let mut a = json!({"connection": connection, "method": op.method, "path": path});
        if let Some(body) = &op.body {
            a["body"] = fill_optional(body, params, "the operation's body")?;
        }
        let action: HttpAction = as_action(a)?;
        let r = self.http_action(p, action, caller).await?;
        if r.status >= 400 {
            return Err(EngineError::Upstream(format!(
                "{service} answered HTTP {} to {operation}",
                r.status
            )));
        }
        // Providers that answer errors with HTTP 200 and `ok: false` (Slack).
        if let Some(ok) = entry.verify.as_ref().and_then(|v| v.ok_field.as_deref())
            && r.body.get(ok).and_then(Value::as_bool) == Some(false)
        {
            let error = r
                .body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("an error");
            return Err(EngineError::Upstream(format!(
                "{service} answered {error} to {operation}"
            )));
        }
        Ok(r.body)
    }

    async fn integration_node(
        &self,
        p: &Principal,
        config: &Map<String, Value>,
        ctx: &Map<String, Value>,
        caller: Option<String>,
    ) -> Result<(Map<String, Value>, Value)> {
        let service = required_str(config, &["service"])?.replace('_', "-");
        let operation = required_str(config, &["operation"])?;
        let params = match field(config, &["config", "params", "parameters"]) {
            Some(v) => fill(v, ctx, "config.config")?,
            None => json!({}),
        };
        let Value::Object(params) = params else {
            return Err(ValidationErrors::single("config.config", "must be an object").into());
        };
        let body = self
            .operation(
                p,
                connection_of(config)?,
                &service,
                operation,
                &params,
                caller,
            )
            .await?;
        Ok((output(config, "output", body.clone())?, body))
    }

    async fn llm_node(
        &self,
        p: &Principal,
        config: &Map<String, Value>,
        ctx: &Map<String, Value>,
        caller: Option<String>,
    ) -> Result<(Map<String, Value>, Value)> {
        let provider = required_str(config, &["provider"])?.to_owned();
        let model = required_str(config, &["model"])?;
        let prompt = match fill(
            &json!(required_str(config, &["prompt"])?),
            ctx,
            "config.prompt",
        )? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let mut params = Map::new();
        params.insert("model".into(), json!(model));
        let user = json!({"role": "user", "content": prompt});
        let messages = match str_field(config, &["system", "systemPrompt"])? {
            Some(system) if provider != "anthropic" => {
                json!([{"role": "system", "content": system}, user])
            }
            _ => json!([user]),
        };
        params.insert("messages".into(), messages);
        params.insert(
            "contents".into(),
            json!([{"role": "user", "parts": [{"text": prompt}]}]),
        );
        if let Some(t) = field(config, &["temperature"]) {
            if !t.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t)) {
                return Err(ValidationErrors::single(
                    "config.temperature",
                    "must be a number between 0 and 2",
                )
                .into());
            }
            params.insert("temperature".into(), t.clone());
        }
        let max_tokens = field(config, &["maxTokens", "max_tokens"])
            .cloned()
            .unwrap_or(json!(1024));
        params.insert("max_tokens".into(), max_tokens);
        let body = self
            .operation(
                p,
                connection_of(config)?,
                &provider,
                "chat",
                &params,
                caller,
            )
            .await?;
        let text = chat_text(&provider, &body)
            .ok_or_else(|| EngineError::Upstream(format!("{provider}'s answer holds no text")))?;
        Ok((output(config, "llmOutput", json!(text))?, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_answers_are_read_per_provider() {
        let openai = json!({"choices": [{"message": {"role": "assistant", "content": "hi"}}]});
        assert_eq!(chat_text("openai", &openai).as_deref(), Some("hi"));
        assert_eq!(chat_text("groq", &openai).as_deref(), Some("hi"));
        let anthropic = json!({"content": [{"type": "text", "text": "a"}, {"type": "tool_use"}, {"type": "text", "text": "b"}]});
        assert_eq!(chat_text("anthropic", &anthropic).as_deref(), Some("ab"));
        let gemini = json!({"candidates": [{"content": {"parts": [{"text": "g"}]}}]});
        assert_eq!(chat_text("google-ai", &gemini).as_deref(), Some("g"));
        assert_eq!(chat_text("openai", &json!({})), None);
    }
}
