//! The OpenAPI document at `/v1/openapi.json`, generated from the handlers' annotations.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::extract::Auth;
use crate::startup::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Patchbay", description = "A self-hostable connections hub."),
    paths(
        super::health::healthz, super::health::readyz, super::health::metrics,
        super::orgs::me, super::orgs::list, super::orgs::create,
        super::projects::list, super::projects::create, super::projects::read, super::projects::update,
        super::projects::remove,
        super::providers::list, super::providers::read,
        super::oauth::start, super::oauth::disconnect, super::oauth::start_redirect, super::oauth::callback, super::oauth::client_metadata, super::oauth::token,
        super::apps::list, super::apps::create, super::apps::update, super::apps::remove,
        super::tokens::list, super::tokens::create, super::tokens::revoke,
        super::secrets::list, super::secrets::create, super::secrets::replace, super::secrets::remove,
        super::connections::list, super::connections::remove_by_provider, super::connections::create, super::connections::read,
        super::connections::update, super::connections::remove, super::connections::credentials,
        super::connections::test_saved, super::connections::test_unsaved,
        super::audit::list, super::audit::verify,
        super::keys::status, super::keys::rotate,
        super::actions::http, super::actions::sql, super::actions::email, super::actions::webhook, super::actions::storage, super::actions::files, super::actions::run_node,
        super::deliveries::list, super::deliveries::read, super::deliveries::replay,
        super::inbound::receive, super::inbound::poll, super::inbound::create, super::inbound::list,
        super::inbound::read, super::inbound::update, super::inbound::remove, super::inbound::events,
        super::inbound::event, super::inbound::replay,
        super::mcp::discover, super::mcp::refresh_tools, super::mcp::call, super::mcp::providers,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth, &ProblemAnswers),
    security(("bearer" = [])),
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pb_…")
                    .build(),
            ),
        );
    }
}

/// Operations answered without a token (`/metrics` asks for its own only when the operator
/// sets one).
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    CALLBACK,
    "/v1/oauth/client-metadata.json",
];

const CALLBACK: &str = "/v1/oauth/callback";

/// Every status an operation can answer with a problem document, added to what its handler
/// declares: authentication and role (401, 403) unless the route is public; a malformed body
/// or query (400, 413, 415, 422); a missing resource (404); a conflict or a stale version
/// (409, 412); a rate limit (429); a sealed vault or an unreachable store (503); an upstream
/// that failed or timed out (502, 504) where the operation reaches one.
struct ProblemAnswers;

/// A problem document's media type and schema.
fn problem_body() -> utoipa::openapi::Content {
    utoipa::openapi::ContentBuilder::new()
        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
        .build()
}

const PROBLEM_JSON: &str = "application/problem+json";

fn problem(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, problem_body())
        .build()
        .into()
}

impl utoipa::Modify for ProblemAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public = PUBLIC.contains(&path.as_str());
            let ops = [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("put", item.put.as_mut()),
                ("patch", item.patch.as_mut()),
                ("delete", item.delete.as_mut()),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                if public {
                    op.security = Some(Vec::new());
                }
                // The callback answers a browser with pages, never a problem document.
                if path == CALLBACK {
                    continue;
                }
                let mut statuses: Vec<(&str, &str)> = vec![
                    (
                        "400",
                        "A malformed request: a bad JSON body, query or header",
                    ),
                    ("503", "The store is unreachable or the vault is sealed"),
                ];
                if !public || path == "/metrics" {
                    statuses.push(("401", "No valid token"));
                }
                if !public {
                    statuses.push(("403", "The token's role or project does not allow it"));
                    statuses.push(("429", "Too many requests of this kind"));
                }
                // A resource named in the path, the query or the body (a connection an action
                // uses, a project a connection goes in) may not exist in the caller's
                // organization.
                if !public {
                    statuses.push(("404", "No such resource in the caller's organization"));
                }
                if method != "get" && method != "delete" || path.contains("/actions/") {
                    statuses.push(("413", "The body is larger than the limit"));
                    statuses.push(("415", "The body is not JSON"));
                }
                if !(path == "/healthz" || path == "/readyz" || path == "/metrics") {
                    statuses.push(("422", "A field is invalid; `errors` names each"));
                }
                // Reading a token or starting a link also depends on the connection's state (not
                // OAuth, expired, disabled).
                if matches!(method, "post" | "put" | "patch" | "delete")
                    || path.ends_with("/token")
                    || path == "/v1/oauth/start"
                {
                    statuses.push(("409", "The change conflicts with the current state"));
                }
                if matches!(method, "patch" | "put") {
                    statuses.push(("412", "If-Match names an older version"));
                }
                if path.starts_with("/v1/actions/")
                    || path == "/v1/nodes/run"
                    || path.ends_with("/test")
                    || path.ends_with("/token")
                    || path.starts_with("/v1/connections/test")
                {
                    statuses.push(("502", "The upstream failed"));
                    statuses.push(("504", "The upstream did not answer in time"));
                }
                for (status, description) in statuses {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description));
                }
                // A problem answer the handler declares without a body gets the document's.
                for (status, response) in op.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(r) = response
                        && status.starts_with(['4', '5'])
                        && r.content.is_empty()
                    {
                        r.content
                            .insert(PROBLEM_JSON.to_owned(), problem_body().into());
                    }
                }
            }
        }
    }
}

/// The document as served: what the annotations generate, refined with what they cannot say
/// (constraints across fields, and enums that come from the provider catalog).
pub fn document_for(catalog: &patchbay_oauth::Catalog, public_url: &str) -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let schemas = &mut doc["components"]["schemas"];
    // A webhook action goes to a connection or to a URL: exactly one of them.
    schemas["WebhookAction"]["oneOf"] = serde_json::json!([
        {"required": ["connection"], "properties": {"connection": {"type": "string"}}},
        {"required": ["url"], "properties": {"url": {"type": "string"}}},
    ]);
    // Strings with a grammar of their own, named by a format (schemathesis is given their
    // generators in scripts/schemathesis_hooks.py).
    schemas["MapRule"]["properties"]["select"]["format"] = "jsonpath".into();
    // A nullable one as a choice, so that its string is always of the format.
    let condition = &mut schemas["WebhookAction"]["properties"]["condition"];
    *condition = serde_json::json!({"description": condition["description"],
        "anyOf": [{"type": "string", "format": "cel"}, {"type": "null"}]});
    // A connection body: one schema per kind, case, auth type and provider.
    schemas["McpDiscover"] = discover_schema(&schemas["McpDiscover"], catalog);
    schemas["CreateConnection"] = connection_schema(&schemas["CreateConnection"], catalog);
    // A PATCH: `null` keeps a field; a provider is `custom` or the catalog's (of the
    // connection's kind, which the server checks); `auth` and `config` merge into the stored
    // ones and are checked, as a whole, against the connection's kind.
    let mut providers: Vec<&str> = vec!["custom"];
    for p in catalog.iter() {
        providers.push(&p.key);
        providers.extend(p.aliases.iter().map(String::as_str));
    }
    let update = &mut schemas["UpdateConnection"]["properties"];
    update["name"] =
        serde_json::json!({"anyOf": [{"$ref": "#/components/schemas/Name"}, {"type": "null"}]});
    update["provider"] = serde_json::json!({"type": ["string", "null"], "enum": providers.iter().map(|p| serde_json::Value::from(*p)).chain([serde_json::Value::Null]).collect::<Vec<_>>()});
    update["status"] = serde_json::json!({"description": update["status"]["description"], "type": ["string", "null"], "enum": ["active", "disabled", null]});
    // An OAuth app is for a catalog provider that uses OAuth.
    let oauth: Vec<&str> = catalog
        .iter()
        .filter(|p| p.uses_oauth())
        .map(|p| p.key.as_str())
        .collect();
    schemas["CreateOAuthApp"]["properties"]["provider"]["enum"] = serde_json::json!(oauth);
    // An e-mail goes to addresses (at least one in `to`) and has text, HTML or both.
    let address = patchbay_domain::names::email_schema();
    let addresses = |min: usize| serde_json::json!({"oneOf": [address, {"type": "array", "minItems": min, "items": address}]});
    let nullable = |s: serde_json::Value| serde_json::json!({"anyOf": [s, {"type": "null"}]});
    let email = &mut schemas["EmailAction"];
    email["properties"]["to"] = addresses(1);
    email["properties"]["cc"] = nullable(addresses(0));
    email["properties"]["bcc"] = nullable(addresses(0));
    email["properties"]["reply_to"] = nullable(address.clone());
    email["anyOf"] = serde_json::json!([
        {"required": ["text"], "properties": {"text": {"type": "string"}}},
        {"required": ["html"], "properties": {"html": {"type": "string"}}},
    ]);
    // Replacement credentials for one HTTP call.
    let http = &mut schemas["HttpAction"]["properties"]["auth"];
    let description = http["description"].clone();
    *http = serde_json::json!({"description": description, "anyOf": [
        patchbay_domain::validate::schema::auth_override(patchbay_domain::Kind::Http),
        {"type": "null"}]});
    // The browser returns to this deployment after the callback.
    let return_to = serde_json::json!({"type": ["string", "null"],
        "pattern": format!(r"^{}(/[\s\S]*)?$", patchbay_domain::validate::schema::escape(public_url)),
        "description": "Where the browser goes after the callback: a URL of this deployment."});
    schemas["StartBody"]["properties"]["return_to"] = return_to.clone();
    let nodes = node_run_schema(schemas, catalog);
    schemas["NodeRun"] = nodes;
    if let Some(params) = doc["paths"]["/v1/oauth/start"]["get"]["parameters"].as_array_mut() {
        for p in params.iter_mut().filter(|p| p["name"] == "return_to") {
            p["schema"] = return_to.clone();
        }
    }
    doc
}

/// `POST /v1/mcp/discover`: the MCP connection bodies, their `config` fields at the top level
/// and without a name or kind.
fn discover_schema(
    annotated: &serde_json::Value,
    catalog: &patchbay_oauth::Catalog,
) -> serde_json::Value {
    use serde_json::Value;
    let hoisted = connection_branches(patchbay_domain::Kind::Mcp, catalog)
        .into_iter()
        .map(|mut body| {
            let config = body["properties"]["config"].clone();
            // An optional config is `anyOf: [object, null]`.
            let config = config["anyOf"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["type"] == "object").cloned())
                .unwrap_or(config);
            let dropped = ["name", "kind", "config"];
            if let Some(props) = body["properties"].as_object_mut() {
                props.retain(|k, _| !dropped.contains(&k.as_str()));
                if let Some(fields) = config["properties"].as_object() {
                    props.extend(fields.clone());
                }
            }
            let mut required: Vec<Value> = body["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| !dropped.iter().any(|d| r == d))
                .cloned()
                .collect();
            required.extend(config["required"].as_array().into_iter().flatten().cloned());
            body["required"] = Value::Array(required);
            body
        })
        .collect::<Vec<_>>();
    serde_json::json!({"description": annotated["description"], "oneOf": hoisted})
}

/// `POST /v1/connections` and `POST /v1/connections/test`: one schema per kind, case, auth
/// type and provider, written from validation's rules (`patchbay_domain::validate::schema`)
/// and what each catalog entry fills (`patchbay_engine::provider_fill`). Providers that fill
/// the same share a schema.
fn connection_schema(
    annotated: &serde_json::Value,
    catalog: &patchbay_oauth::Catalog,
) -> serde_json::Value {
    use patchbay_domain::Kind;
    let branches: Vec<_> = Kind::ALL
        .iter()
        .flat_map(|&kind| connection_branches(kind, catalog))
        .collect();
    serde_json::json!({"description": annotated["description"], "oneOf": branches})
}

/// The connection bodies of one kind: without a provider, and for each group of providers
/// that fill the same.
fn connection_branches(
    kind: patchbay_domain::Kind,
    catalog: &patchbay_oauth::Catalog,
) -> Vec<serde_json::Value> {
    use patchbay_domain::validate::schema::{ProviderFill, connection_bodies};
    let mut branches = connection_bodies(kind, None, &ProviderFill::default());
    let mut groups: std::collections::BTreeMap<ProviderFill, Vec<String>> = Default::default();
    for entry in catalog.iter() {
        if let Some(fill) = patchbay_engine::provider_fill(entry, kind) {
            let names = groups.entry(fill).or_default();
            names.push(entry.key.clone());
            names.extend(entry.aliases.iter().cloned());
        }
    }
    for (fill, names) in groups {
        branches.extend(connection_bodies(kind, Some(&names), &fill));
    }
    branches
}

/// `POST /v1/nodes/run`: one schema per node type, its `config` as the node reads it — each
/// field under every name the node accepts, with the schema of the action field it becomes.
fn node_run_schema(
    schemas: &serde_json::Value,
    catalog: &patchbay_oauth::Catalog,
) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let of = |schema: &str, field: &str| schemas[schema]["properties"][field].clone();
    const CONNECTION: [&str; 3] = ["connectionId", "connection_id", "connection"];
    const OUTPUT: [&str; 2] = ["outputVariable", "output_variable"];
    /// A field under each of the names it goes by (the first given and not null is read).
    fn put(props: &mut Map<String, Value>, names: &[&str], schema: Value) {
        for n in names {
            props.insert(
                (*n).to_owned(),
                json!({"anyOf": [schema.clone(), {"type": "null"}]}),
            );
        }
    }
    let mut props = Map::new();
    let connection = json!({"$ref": "#/components/schemas/ConnectionId"});
    let string = json!({"type": "string"});
    // At least one of `names` is given and not null.
    let one_of_names = |names: &[&str]| -> Value {
        let branches: Vec<Value> = names
            .iter()
            .map(|n| json!({"required": [n], "properties": {*n: {"not": {"type": "null"}}}}))
            .collect();
        json!({"anyOf": branches})
    };
    let config = |props: Map<String, Value>, extra: Value| -> Value {
        let mut c = json!({"type": "object", "properties": props});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        c
    };
    let node = |ty: Value, config: Value| -> Value {
        json!({"type": "object", "required": ["type", "config"], "properties": {
            "type": ty, "label": {"type": ["string", "null"]}, "config": config,
            "context": {"type": ["object", "null"]}}})
    };
    let mut branches = Vec::new();

    // http: an HTTP action.
    put(&mut props, &CONNECTION, connection.clone());
    for f in ["path", "method", "query", "headers", "body", "map", "auth"] {
        put(&mut props, &[f], of("HttpAction", f));
    }
    put(&mut props, &OUTPUT, string.clone());
    branches.push(node(
        json!({"const": "http"}),
        config(std::mem::take(&mut props), one_of_names(&CONNECTION)),
    ));

    // webhook: a webhook action, to a connection or to a URL.
    put(&mut props, &CONNECTION, connection.clone());
    for f in ["url", "method", "headers", "body", "mode", "condition"] {
        put(&mut props, &[f], of("WebhookAction", f));
    }
    put(
        &mut props,
        &["retryPolicy", "retry"],
        of("WebhookAction", "retry"),
    );
    put(&mut props, &OUTPUT, string.clone());
    let no_url = json!({"properties": {"url": {"type": "null"}}});
    let mut to_url = json!({"required": ["url"], "properties": {"url": {"type": "string"}}});
    for n in CONNECTION {
        to_url["properties"][n] = json!({"type": "null"});
    }
    branches.push(node(
        json!({"const": "webhook"}),
        config(
            std::mem::take(&mut props),
            json!({"oneOf": [{"allOf": [one_of_names(&CONNECTION), no_url]}, to_url]}),
        ),
    ));

    // sql (or database): a SQL action; templates are never filled into the statement.
    put(&mut props, &CONNECTION, connection.clone());
    let mut query = of("SqlAction", "query");
    query["not"] = json!({"pattern": r"(\$\{|\{\{)\s*[\p{L}\p{N}_.-]+\s*\}"});
    props.insert("query".into(), query);
    put(
        &mut props,
        &["params", "parameters"],
        json!({"type": "array"}),
    );
    put(
        &mut props,
        &["maxRows", "max_rows"],
        of("SqlAction", "max_rows"),
    );
    put(
        &mut props,
        &["readOnly", "read_only"],
        of("SqlAction", "read_only"),
    );
    put(
        &mut props,
        &["timeoutMs", "timeout_ms"],
        of("SqlAction", "timeout_ms"),
    );
    put(&mut props, &OUTPUT, string.clone());
    let mut sql = one_of_names(&CONNECTION);
    sql["required"] = json!(["query"]);
    branches.push(node(
        json!({"enum": ["sql", "database"]}),
        config(std::mem::take(&mut props), sql),
    ));

    // email: an e-mail action.
    put(&mut props, &CONNECTION, connection.clone());
    for f in ["to", "subject"] {
        props.insert(f.to_owned(), of("EmailAction", f));
    }
    for f in ["cc", "bcc", "html"] {
        put(&mut props, &[f], of("EmailAction", f));
    }
    put(
        &mut props,
        &["replyTo", "reply_to"],
        of("EmailAction", "reply_to"),
    );
    put(&mut props, &["text", "body"], of("EmailAction", "text"));
    put(&mut props, &OUTPUT, string.clone());
    let mut email =
        json!({"allOf": [one_of_names(&CONNECTION), one_of_names(&["text", "body", "html"])]});
    email["required"] = json!(["to", "subject"]);
    branches.push(node(
        json!({"const": "email"}),
        config(std::mem::take(&mut props), email),
    ));

    // integration: a catalog provider's named operation, through a connection to it.
    // One schema per operation: the parameters its path names are required, in the object
    // read (the first of `config`, `params` and `parameters` given and not null).
    const PARAMS: [&str; 3] = ["config", "params", "parameters"];
    for p in catalog.iter() {
        for (name, op) in &p.operations {
            put(&mut props, &CONNECTION, connection.clone());
            props.insert("service".into(), json!({"const": p.key}));
            props.insert("operation".into(), json!({"const": name}));
            put(&mut props, &PARAMS, json!({"type": "object"}));
            put(&mut props, &OUTPUT, string.clone());
            let mut integration = json!({"allOf": [one_of_names(&CONNECTION)]});
            let named = path_parameters(&op.path);
            if !named.is_empty() {
                let read: Vec<Value> = (0..PARAMS.len())
                    .map(|i| {
                        let mut b = json!({"required": [PARAMS[i]], "properties": {
                            PARAMS[i]: {"type": "object", "required": named}}});
                        for earlier in &PARAMS[..i] {
                            b["properties"][*earlier] = json!({"type": "null"});
                        }
                        b
                    })
                    .collect();
                if let Some(all) = integration["allOf"].as_array_mut() {
                    all.push(json!({"anyOf": read}));
                }
            }
            integration["required"] = json!(["service", "operation"]);
            branches.push(node(
                json!({"const": "integration"}),
                config(std::mem::take(&mut props), integration),
            ));
        }
    }

    // llm: a provider's chat operation.
    let chat: Vec<&str> = catalog
        .iter()
        .filter(|p| p.operations.contains_key("chat"))
        .map(|p| p.key.as_str())
        .collect();
    put(&mut props, &CONNECTION, connection.clone());
    props.insert("provider".into(), json!({"enum": chat}));
    props.insert("model".into(), string.clone());
    props.insert("prompt".into(), string.clone());
    put(&mut props, &["system", "systemPrompt"], string.clone());
    props.insert(
        "temperature".into(),
        json!({"type": ["number", "null"], "minimum": 0, "maximum": 2}),
    );
    put(&mut props, &OUTPUT, string.clone());
    let mut llm = one_of_names(&CONNECTION);
    llm["required"] = json!(["provider", "model", "prompt"]);
    branches.push(node(
        json!({"const": "llm"}),
        config(std::mem::take(&mut props), llm),
    ));

    // mcp_tool: a tool of an MCP connection, its parameters filled from the context.
    put(&mut props, &CONNECTION, connection);
    const TOOL: [&str; 3] = ["tool", "toolName", "tool_name"];
    put(&mut props, &TOOL, of("McpAction", "tool"));
    put(
        &mut props,
        &["parameters", "arguments", "params"],
        json!({"type": "object"}),
    );
    put(
        &mut props,
        &["timeoutMs", "timeout_ms"],
        of("McpAction", "timeout_ms"),
    );
    put(&mut props, &OUTPUT, string);
    let mcp = json!({"allOf": [one_of_names(&CONNECTION), one_of_names(&TOOL)]});
    branches.push(node(json!({"const": "mcp_tool"}), config(props, mcp)));

    json!({
        "description": schemas["NodeRun"]["description"],
        "oneOf": branches,
    })
}

/// The `${name}` parameters an operation's path is filled with.
fn path_parameters(path: &str) -> Vec<&str> {
    path.match_indices("${")
        .filter_map(|(i, m)| {
            let rest = &path[i + m.len()..];
            rest.find('}').map(|end| &rest[..end])
        })
        .collect()
}

/// The document itself; like every API route it needs a token.
async fn document(State(s): State<AppState>, _: Auth) -> impl axum::response::IntoResponse {
    let body = s.openapi.get_or_init(|| {
        serde_json::to_vec(&document_for(s.hub.catalog(), s.hub.public_url()))
            .unwrap_or_default()
            .into()
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.clone(),
    )
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}
