//! The OpenAPI document's connection bodies say what the server accepts: a body valid against
//! `CreateConnection` (one schema per kind, case, auth type and provider) is created, and one
//! the server refuses is invalid against it. Every catalog provider has its schemas.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_fields};

/// Bodies the server creates, each with what it shows.
fn accepted() -> Vec<(&'static str, Value)> {
    let whsec = format!("whsec_{}", "A".repeat(32));
    vec![
        (
            "http without a provider",
            json!({"name": "a", "kind": "http",
            "config": {"base_url": "https://api.example.com/v1", "timeout_ms": 58.0,
                "headers": {"X-Tab": "a\tb"}}}),
        ),
        (
            "a provider's key of its format",
            json!({"name": "b", "provider": "openai",
            "auth": {"type": "api_key"}, "secrets": {"api_key": "sk-abc"}}),
        ),
        (
            "a database provider, no kind",
            json!({"name": "c", "provider": "postgres",
            "config": {"host": "db.example.com", "database": "app", "username": "u"},
            "secrets": {"password": ""}}),
        ),
        (
            "a hosted database's host",
            json!({"name": "d", "provider": "neon",
            "config": {"host": "ep-1.eu-central-1.aws.neon.tech", "database": "app",
                "username": "u"}, "secrets": {"password": "p"}}),
        ),
        (
            "a SQLite file",
            json!({"name": "e", "kind": "database",
            "config": {"driver": "sqlite", "database": "/srv/app.db", "host": null}}),
        ),
        (
            "an SMTP service",
            json!({"name": "f", "provider": "gmail",
            "config": {"from_address": "ops@example.com"}, "secrets": {"password": "pw"}}),
        ),
        (
            "SMTP without a user",
            json!({"name": "g", "kind": "smtp",
            "config": {"host": "smtp.example.com", "from_address": "a@b.co", "encryption": "none"}}),
        ),
        (
            "a two-kind provider with its kind",
            json!({"name": "h", "kind": "smtp",
            "provider": "sendgrid", "config": {"from_address": "ops@example.com"},
            "secrets": {"password": "SG.x"}}),
        ),
        (
            "a signed webhook",
            json!({"name": "i", "kind": "webhook",
            "config": {"url": "https://hooks.example.com/in"}, "auth": {"type": "hmac"},
            "secrets": {"secret": whsec}}),
        ),
        (
            "a raw signing secret of 16 characters",
            json!({"name": "j", "kind": "webhook",
            "config": {"url": "https://hooks.example.com/in"}, "auth": {"type": "hmac"},
            "secrets": {"secret": "é".repeat(16)}}),
        ),
        (
            "an MCP registry entry",
            json!({"name": "k", "provider": "mcp-everything"}),
        ),
        (
            "an MCP server URL",
            json!({"name": "l", "kind": "mcp",
            "config": {"server_url": "https://mcp.example.com/mcp", "transport": "streamable_http"},
            "auth": {"type": "bearer"}, "secrets": {"token": "t"}}),
        ),
        (
            "a legacy HTTP+SSE server",
            json!({"name": "l2", "kind": "mcp",
            "config": {"server_url": "https://mcp.example.com/sse", "transport": "sse"}}),
        ),
        (
            "a stdio server with secrets as its environment",
            json!({"name": "l3", "kind": "mcp",
            "config": {"command": "mcp-server-everything", "env": {"MODE": "x"}},
            "secrets": {"GITHUB_TOKEN": "t", "_other": "u"}}),
        ),
        (
            "custom injection",
            json!({"name": "m", "kind": "http",
            "config": {"base_url": "https://api.example.com"},
            "auth": {"type": "custom", "inject": [
                {"in": "header", "name": "X-Key", "template": "Key ${secrets.key}"},
                {"in": "query", "name": "a b", "template": "x"}]},
            "secrets": {"key": "v"}}),
        ),
        (
            "OAuth without an app",
            json!({"name": "n", "kind": "http",
            "config": {"base_url": "https://api.example.com"},
            "auth": {"type": "oauth2", "authorization_url": "https://id.example.com/a",
                "token_url": "https://id.example.com/t", "scopes": "read write"},
            "secrets": {"client_id": "c"}}),
        ),
        (
            "a base URL from the token answer",
            json!({"name": "o", "provider": "salesforce",
            "auth": {"type": "oauth2", "authorization_url": "https://id.example.com/a",
                "token_url": "https://id.example.com/t"}, "secrets": {"client_id": "c"}}),
        ),
        (
            "an API key in a query parameter",
            json!({"name": "p", "kind": "http",
            "config": {"base_url": "https://api.example.com"},
            "auth": {"type": "api_key", "in": "query", "name": "api key"},
            "secrets": {"api_key": "k"}}),
        ),
        (
            "a long multi-byte field",
            json!({"name": "q", "kind": "database",
            "config": {"driver": "postgresql", "host": "é".repeat(2048), "database": "d",
                "username": "u"}, "secrets": {"password": "p"}}),
        ),
    ]
}

/// Bodies the server refuses, each with the field it names.
fn refused() -> Vec<(&'static str, Value)> {
    let url = json!({"url": "https://hooks.example.com/in"});
    vec![
        (
            "secrets.api_key",
            json!({"name": "a", "provider": "openai",
            "auth": {"type": "api_key"}, "secrets": {"api_key": "pk-abc"}}),
        ),
        (
            "provider",
            json!({"name": "b", "kind": "database", "provider": "slack",
            "config": {"driver": "postgresql", "host": "h", "database": "d", "username": "u"},
            "secrets": {"password": "p"}}),
        ),
        (
            "secrets.secret",
            json!({"name": "c", "kind": "webhook", "config": url,
            "auth": {"type": "hmac"}, "secrets": {"secret": "short"}}),
        ),
        // 23 bytes, and 25 with a non-canonical last character.
        (
            "secrets.secret",
            json!({"name": "d", "kind": "webhook", "config": url,
            "auth": {"type": "hmac"}, "secrets": {"secret": format!("whsec_{}A=", "A".repeat(30))}}),
        ),
        (
            "secrets.secret",
            json!({"name": "d2", "kind": "webhook", "config": url,
            "auth": {"type": "hmac"}, "secrets": {"secret": format!("whsec_{}AB==", "A".repeat(32))}}),
        ),
        (
            "config.host",
            json!({"name": "e", "kind": "database",
            "config": {"driver": "sqlite", "database": "/srv/app.db", "host": "h"}}),
        ),
        (
            "auth.type",
            json!({"name": "f", "kind": "database", "auth": {"type": "none"},
            "config": {"driver": "postgresql", "host": "h", "database": "d", "username": "u"}}),
        ),
        (
            "config.transport",
            json!({"name": "g", "kind": "mcp",
            "config": {"command": "srv", "transport": "sse"}}),
        ),
        (
            "secrets.1_NOT_A_VARIABLE",
            json!({"name": "g2", "kind": "mcp",
            "config": {"command": "srv"}, "secrets": {"1_NOT_A_VARIABLE": "v"}}),
        ),
        (
            "config.headers",
            json!({"name": "h", "kind": "http",
            "config": {"base_url": "https://api.example.com", "headers": {"X-A": "a\u{1}"}}}),
        ),
        (
            "config.headers",
            json!({"name": "i", "kind": "http",
            "config": {"base_url": "https://api.example.com", "headers": {"authorization": "x"}}}),
        ),
        (
            "config.username",
            json!({"name": "j", "kind": "smtp", "auth": {"type": "basic"},
            "config": {"host": "h", "from_address": "a@b.c", "encryption": "none"},
            "secrets": {"password": "p"}}),
        ),
        (
            "config.host",
            json!({"name": "k", "provider": "neon",
            "config": {"host": "127.0.0.1", "database": "d", "username": "u"},
            "secrets": {"password": "p"}}),
        ),
        (
            "config.args",
            json!({"name": "l", "kind": "mcp",
            "config": {"server_url": "https://mcp.example.com", "args": ["x"]}}),
        ),
        (
            "kind",
            json!({"name": "m", "provider": "sendgrid",
            "config": {"from_address": "ops@example.com"}}),
        ),
        (
            "config.timeout_ms",
            json!({"name": "n", "kind": "http",
            "config": {"base_url": "https://api.example.com", "timeout_ms": 58.5}}),
        ),
        (
            "auth.name",
            json!({"name": "o", "kind": "http",
            "config": {"base_url": "https://api.example.com"},
            "auth": {"type": "api_key", "name": "a b"}, "secrets": {"api_key": "k"}}),
        ),
        (
            "config.host",
            json!({"name": "p", "kind": "database",
            "config": {"driver": "postgresql", "host": "é".repeat(2049), "database": "d",
                "username": "u"}, "secrets": {"password": "p"}}),
        ),
        (
            "auth.app",
            json!({"name": "r", "kind": "http",
            "config": {"base_url": "https://api.example.com"},
            "auth": {"type": "oauth2", "app": "mine"}}),
        ),
        (
            "config.driver",
            json!({"name": "s", "provider": "postgres", "config": {"driver": null,
            "host": "h", "database": "d", "username": "u"}, "secrets": {"password": "p"}}),
        ),
    ]
}

/// A validator of `name` in the document's schemas, with the document's `$ref`s resolvable.
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let root =
        json!({"$ref": format!("#/components/schemas/{name}"), "components": doc["components"]});
    jsonschema::draft202012::new(&root).expect("the document's schema compiles")
}

async fn the_document_says_what_is_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = app.openapi().await;
    let schema = validator(&doc, "CreateConnection");
    for (what, body) in accepted() {
        let errors: Vec<String> = schema.iter_errors(&body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{what}: the document refuses it: {errors:?}"
        );
        let r = app
            .admin
            .raw(Method::POST, "/v1/connections", Some(&body), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 201, "{what}: {}", r.text());
    }
    for (field, body) in refused() {
        assert!(
            !schema.is_valid(&body),
            "{field}: the document admits a body the server refuses: {body}"
        );
        let r = app
            .admin
            .raw(Method::POST, "/v1/connections", Some(&body), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 422, "{field}: {}", r.text());
        let fields = error_fields(&r.json());
        assert!(fields.iter().any(|f| f == field), "{field}: {fields:?}");
    }
}

/// `POST /v1/mcp/discover`: the MCP connection bodies, their config at the top level.
async fn the_document_says_what_discovery_accepts(backend: Backend) {
    let unlimited: crate::helpers::Tweak =
        std::sync::Arc::new(|s| s.limits.test_rate_per_minute = 0);
    let app = TestApp::spawn_with(backend, Some(unlimited)).await;
    let doc = app.openapi().await;
    let schema = validator(&doc, "McpDiscover");
    // Loopback is closed to tenants here: every accepted body fails at the gate, at once.
    for body in [
        json!({"server_url": "http://localhost:9/mcp"}),
        json!({"server_url": "http://localhost:9/sse", "transport": "sse",
            "auth": {"type": "bearer"}, "secrets": {"token": "t"}}),
        json!({"command": "srv", "args": ["--x"], "secrets": {"API_KEY": "k"}}),
        json!({"provider": "mcp-everything"}),
        json!({"server_url": "http://localhost:9/mcp", "allowed_tools": ["echo"]}),
    ] {
        let errors: Vec<String> = schema.iter_errors(&body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{body}: the document refuses it: {errors:?}"
        );
        let r = app
            .admin
            .raw(Method::POST, "/v1/mcp/discover", Some(&body), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{body}: {}", r.text());
        assert_eq!(r.json()["success"], false, "{body}: {}", r.text());
    }
    // Every field the document names is one the body takes (`null` keeps a default).
    let mut fields = BTreeSet::new();
    for branch in doc["components"]["schemas"]["McpDiscover"]["oneOf"]
        .as_array()
        .unwrap()
    {
        fields.extend(branch["properties"].as_object().unwrap().keys().cloned());
    }
    assert!(fields.contains("allowed_tools") && fields.contains("server_url"));
    for field in fields.iter().filter(|f| *f != "server_url") {
        let body = json!({"server_url": "http://localhost:9/mcp", field.as_str(): null});
        let r = app
            .admin
            .raw(Method::POST, "/v1/mcp/discover", Some(&body), &[])
            .await
            .unwrap();
        assert_ne!(r.status.as_u16(), 400, "{field}: {}", r.text());
    }
    for (field, body) in [
        ("server_url", json!({"transport": "streamable_http"})),
        (
            "command",
            json!({"server_url": "http://localhost:9/mcp", "command": "srv"}),
        ),
        (
            "name",
            json!({"name": "x", "server_url": "http://localhost:9/mcp"}),
        ),
        (
            "secrets.token",
            json!({"server_url": "http://localhost:9/mcp", "secrets": {"token": "t"}}),
        ),
    ] {
        assert!(
            !schema.is_valid(&body),
            "{field}: the document admits {body}"
        );
        let r = app
            .admin
            .raw(Method::POST, "/v1/mcp/discover", Some(&body), &[])
            .await
            .unwrap();
        assert!(
            matches!(r.status.as_u16(), 400 | 422),
            "{field}: {}",
            r.text()
        );
        let text = r.text();
        assert!(text.contains(field), "{field}: {text}");
    }
}

async fn every_provider_has_its_schemas(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = app.openapi().await;
    let branches = doc["components"]["schemas"]["CreateConnection"]["oneOf"]
        .as_array()
        .unwrap();
    let mut named = BTreeSet::new();
    for b in branches {
        // A required provider, or an optional one (`custom`, or none).
        let provider = &b["properties"]["provider"];
        let names = provider["enum"]
            .as_array()
            .or_else(|| provider["anyOf"][0]["enum"].as_array())
            .unwrap_or_else(|| panic!("every schema names its providers: {b}"));
        named.extend(names.iter().filter_map(Value::as_str).map(str::to_owned));
        assert!(b["title"].is_string(), "every schema has a title: {b}");
    }
    let providers = app
        .admin
        .raw(Method::GET, "/v1/providers", None, &[])
        .await
        .unwrap()
        .json();
    for p in providers.as_array().unwrap() {
        let key = p["key"].as_str().unwrap();
        assert!(named.contains(key), "{key} has no connection schema");
        for alias in p["aliases"].as_array().into_iter().flatten() {
            assert!(named.contains(alias.as_str().unwrap()), "{alias}");
        }
    }
    assert!(named.contains("custom"));
}

both_backends!(
    the_document_says_what_discovery_accepts,
    the_document_says_what_is_accepted,
    every_provider_has_its_schemas
);
