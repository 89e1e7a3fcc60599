//! Providers of every kind: a database, SMTP or MCP provider fills its kind's defaults, so a
//! connection needs only what the user must add; a provider of another kind, a host outside a
//! hosted service's and a key of the wrong shape are refused by field, the key never echoed.

use std::sync::Arc;

use patchbay_domain::api::{CreateConnection, ErrorKind};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, Tweak, allow_loopback, error_fields};

fn body(v: Value) -> CreateConnection {
    serde_json::from_value(v).unwrap()
}

/// Posts `v` to `/v1/connections`; the status and the answer's text.
async fn post(app: &TestApp, v: Value) -> (u16, String) {
    let r = app
        .admin
        .raw(Method::POST, "/v1/connections", Some(&v), &[])
        .await
        .unwrap();
    (r.status.as_u16(), r.text())
}

async fn database_providers_fill_driver_port_and_tls(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    for (provider, user) in [
        ("postgresql", "postgres"),
        ("postgres", "postgres"),
        ("mariadb", "root"),
    ] {
        // No kind, driver or port: the provider's.
        let c = app
            .admin
            .create_connection(&body(
                json!({"name": format!("db-{provider}"), "provider": provider,
                "config": {"host": "127.0.0.1", "database": "test", "username": user},
                "secrets": {"password": ""}}),
            ))
            .await
            .unwrap_or_else(|e| panic!("{provider}: {e}"));
        assert_eq!(c.kind.as_str(), "database");
        // An alias is stored as the entry's key.
        let key = if provider == "postgres" {
            "postgresql"
        } else {
            provider
        };
        assert_eq!(c.provider, key);
        let (driver, port) = if user == "root" {
            ("mysql", 3306)
        } else {
            ("postgresql", 5432)
        };
        assert_eq!(c.config["driver"], driver);
        assert_eq!(c.config["port"], port);
        assert_eq!(
            c.config["ssl"], false,
            "a loopback host gets no TLS by default"
        );
        let r = app.admin.test_connection(c.id.as_str()).await.unwrap();
        assert!(r.success, "{provider}: {r:?}");
    }
    // A hosted service's hosts only.
    let (status, text) = post(&app, json!({"name": "neon", "provider": "neon",
        "config": {"host": "127.0.0.1", "database": "app", "username": "u"}, "secrets": {"password": "p"}})).await;
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("config.host") && text.contains("*.neon.tech"),
        "{text}"
    );
    let neon = app
        .admin
        .create_connection(&body(json!({"name": "neon-ok", "provider": "neon",
            "config": {"host": "ep-cool-1.eu-central-1.aws.neon.tech", "database": "app", "username": "u"},
            "secrets": {"password": "p"}})))
        .await
        .unwrap();
    assert_eq!(neon.config["ssl"], true);
    assert_eq!(neon.config["driver"], "postgresql");

    // Storage services: an endpoint outside the provider's hosts is refused; a fixed endpoint
    // is filled for the region.
    let (status, text) = post(
        &app,
        json!({"name": "r2", "provider": "r2",
        "config": {"bucket": "files", "endpoint": "https://s3.example.com"},
        "secrets": {"access_key_id": "a", "secret_access_key": "s"}}),
    )
    .await;
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("config.endpoint") && text.contains("*.r2.cloudflarestorage.com"),
        "{text}"
    );
    let r2 = app
        .admin
        .create_connection(&body(json!({"name": "r2-ok", "provider": "r2",
            "config": {"bucket": "files", "endpoint": "https://acct.r2.cloudflarestorage.com"},
            "secrets": {"access_key_id": "a", "secret_access_key": "s"}})))
        .await
        .unwrap();
    assert_eq!(r2.config["region"], "auto");
    assert_eq!(r2.config["path_style"], true);
    let b2 = app
        .admin
        .create_connection(&body(json!({"name": "b2", "provider": "b2",
            "config": {"bucket": "files", "region": "eu-central-003"},
            "secrets": {"access_key_id": "a", "secret_access_key": "s"}})))
        .await
        .unwrap();
    assert_eq!(
        b2.config["endpoint"],
        "https://s3.eu-central-003.backblazeb2.com"
    );
}

async fn smtp_services_fill_server_and_user_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let gmail = app
        .admin
        .create_connection(&body(json!({"name": "gmail", "provider": "gmail",
            "config": {"from_address": "ops@example.com"}, "secrets": {"password": "app-password"}})))
        .await
        .unwrap();
    assert_eq!(gmail.kind.as_str(), "smtp");
    assert_eq!(gmail.config["host"], "smtp.gmail.com");
    assert_eq!(gmail.config["port"], 587);
    assert_eq!(gmail.config["encryption"], "starttls");
    assert_eq!(gmail.config["username"], "ops@example.com");
    assert_eq!(gmail.auth["type"], "basic");
    // SendGrid serves HTTP and SMTP: the kind says which; its SMTP user is always `apikey`.
    let sendgrid = app
        .admin
        .create_connection(&body(
            json!({"name": "sg", "kind": "smtp", "provider": "sendgrid",
            "config": {"from_address": "ops@example.com"}, "secrets": {"password": "SG.key"}}),
        ))
        .await
        .unwrap();
    assert_eq!(sendgrid.config["host"], "smtp.sendgrid.net");
    assert_eq!(sendgrid.config["username"], "apikey");
    // With no network here, the test goes to the service's own host and says so.
    let r = app.admin.test_connection(gmail.id.as_str()).await.unwrap();
    assert!(!r.success);
    assert!(
        matches!(r.error_kind, Some(ErrorKind::Dns | ErrorKind::Blocked)),
        "{r:?}"
    );
    assert!(r.message.contains("smtp.gmail.com"), "{r:?}");
    // A provider that serves two kinds needs the kind named.
    let (status, text) = post(
        &app,
        json!({"name": "sg2", "provider": "sendgrid",
        "config": {"from_address": "ops@example.com"}}),
    )
    .await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("kind"), "{text}");
}

async fn a_mismatched_kind_and_a_malformed_key_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, text) = post(&app, json!({"name": "x", "kind": "database", "provider": "slack",
        "config": {"driver": "postgresql", "host": "db.example.com", "database": "d", "username": "u"},
        "secrets": {"password": "p"}})).await;
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("\"provider\"") && text.contains("http") && text.contains("database"),
        "{text}"
    );

    let pasted = "ghp-is-not-an-openai-key-CANARY-4b1d";
    for (provider, field, auth) in [
        ("openai", "api_key", json!({"type": "api_key"})),
        ("anthropic", "api_key", json!({"type": "api_key"})),
        ("stripe", "api_key", json!({"type": "api_key"})),
        ("github", "token", json!({"type": "bearer"})),
        ("slack", "token", json!({"type": "bearer"})),
    ] {
        let (status, text) = post(
            &app,
            json!({"name": format!("k-{provider}"), "kind": "http",
            "provider": provider, "auth": auth, "secrets": {field: pasted}}),
        )
        .await;
        assert_eq!(status, 422, "{provider}: {text}");
        assert!(
            text.contains(&format!("secrets.{field}")),
            "{provider}: {text}"
        );
        assert!(
            !text.contains("CANARY"),
            "{provider} echoed the key: {text}"
        );
    }
    // The right shape is stored; a PATCH with a wrong one is refused the same way.
    let c = app
        .admin
        .create_connection(&body(
            json!({"name": "ai", "kind": "http", "provider": "anthropic",
            "auth": {"type": "api_key"}, "secrets": {"api_key": "sk-ant-api03-abc"}}),
        ))
        .await
        .unwrap();
    let r = app
        .admin
        .raw(
            Method::PATCH,
            &format!("/v1/connections/{}", c.id),
            Some(&json!({"secrets": {"api_key": pasted}})),
            &[("If-Match", &format!("\"{}\"", c.version))],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 422, "{}", r.text());
    assert!(!r.text().contains("CANARY"), "{}", r.text());
    // A PATCH's provider is one of the catalog's for the connection's kind, by its key, and
    // the refusal names every bad field at once.
    let patch = |body: Value| {
        let app = &app;
        let id = c.id.clone();
        async move {
            let r = app
                .admin
                .raw(
                    Method::PATCH,
                    &format!("/v1/connections/{id}"),
                    Some(&body),
                    &[],
                )
                .await
                .unwrap();
            (r.status.as_u16(), r.json())
        }
    };
    for (provider, reason) in [
        ("postgresql", "not of http connections"),
        ("no-such-provider", "unknown provider"),
    ] {
        let (status, answer) = patch(json!({"provider": provider, "name": " bad"})).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(error_fields(&answer), ["provider", "name"], "{answer}");
        assert!(answer.to_string().contains(reason), "{answer}");
    }
    let (status, answer) = patch(json!({"provider": "custom"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["provider"], "custom");
}

/// The MCP registry's reference server, run as the operator allow-listed it by path.
#[tokio::test]
async fn an_mcp_registry_entry_runs_with_nothing_added() {
    let bin = crate::peers::tools_dir().join("node_modules/.bin/mcp-server-everything");
    let allowed = bin.display().to_string();
    let tweak: Tweak = Arc::new(move |s| s.egress.allow_commands = vec![allowed.clone()]);
    let app = TestApp::spawn_with(Backend::Sqlite, Some(tweak)).await;
    let c = app
        .admin
        .create_connection(&body(
            json!({"name": "everything", "provider": "mcp-everything"}),
        ))
        .await
        .unwrap();
    assert_eq!(c.kind.as_str(), "mcp");
    assert_eq!(c.config["command"], "mcp-server-everything");
    assert_eq!(c.config["transport"], "stdio");
    let r = app.admin.test_connection(c.id.as_str()).await.unwrap();
    assert!(r.success, "{r:?}");
    assert!(r.message.contains("tools"), "{r:?}");
    // The same command by another path is not what the operator allowed.
    let (status, text) = post(
        &app,
        json!({"name": "elsewhere", "kind": "mcp",
        "config": {"command": "/tmp/mcp-server-everything"}}),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.admin.test_connection(&id).await.unwrap();
    assert_eq!(r.error_kind, Some(ErrorKind::Blocked), "{r:?}");
}

both_backends!(
    database_providers_fill_driver_port_and_tls,
    smtp_services_fill_server_and_user_name,
    a_mismatched_kind_and_a_malformed_key_are_refused,
);
