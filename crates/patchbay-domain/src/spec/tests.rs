use serde_json::json;

use super::*;
use crate::connection::Kind;

fn object(v: serde_json::Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn defaults_are_filled_by_the_types() {
    let http = ConnectionSpec::from_config(
        Kind::Http,
        &object(json!({"base_url": "https://x.example"})),
    )
    .unwrap();
    let c = http.to_config();
    assert_eq!(c["timeout_ms"], HttpConfig::TIMEOUT_MS);
    assert_eq!(c["retries"], HttpConfig::RETRIES);
    assert_eq!(c["backoff_ms"], HttpConfig::BACKOFF_MS);

    let db = ConnectionSpec::from_config(
        Kind::Database,
        &object(
            json!({"driver": "mysql", "host": "db.example", "database": "app", "username": "u"}),
        ),
    )
    .unwrap();
    assert_eq!(db.to_config()["port"], 3306);
    assert_eq!(db.to_config()["ssl"], true);
    let local = ConnectionSpec::from_config(
        Kind::Database,
        &object(json!({"driver": "postgresql", "host": "127.0.0.1", "database": "app", "username": "u"})),
    )
    .unwrap();
    assert_eq!(local.to_config()["ssl"], false);
    assert_eq!(local.to_config()["port"], 5432);

    let smtp = ConnectionSpec::from_config(
        Kind::Smtp,
        &object(
            json!({"host": "smtp.example", "from_address": "a@b.example", "encryption": "tls"}),
        ),
    )
    .unwrap();
    assert_eq!(smtp.to_config()["port"], 465);

    let key = Auth::from_auth(&object(json!({"type": "api_key", "in": "query"}))).unwrap();
    assert_eq!(
        key.to_auth(),
        object(json!({"type": "api_key", "in": "query", "name": "api_key"}))
    );
    let oauth = Auth::from_auth(&object(
        json!({"type": "oauth2", "token_url": "https://t.example"}),
    ))
    .unwrap();
    assert_eq!(oauth.to_auth()["pkce"], true);
}

#[test]
fn mcp_transports_read_from_the_flat_config_and_back() {
    for (config, transport) in [
        (
            json!({"server_url": "https://m.example/mcp"}),
            McpTransport::StreamableHttp {
                url: "https://m.example/mcp".into(),
            },
        ),
        (
            json!({"server_url": "https://m.example/sse", "transport": "sse"}),
            McpTransport::Sse {
                url: "https://m.example/sse".into(),
            },
        ),
        (
            json!({"command": "npx", "args": ["-y", "srv"], "env": {"MODE": "ro"}}),
            McpTransport::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "srv".into()],
                env: [("MODE".to_owned(), "ro".to_owned())].into(),
            },
        ),
    ] {
        let spec = ConnectionSpec::from_config(Kind::Mcp, &object(config.clone())).unwrap();
        let ConnectionSpec::Mcp(mcp) = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!(mcp.transport, transport);
        assert_eq!(mcp.timeout_ms, McpConfig::TIMEOUT_MS);
        let again = ConnectionSpec::from_config(Kind::Mcp, &spec.to_config()).unwrap();
        assert_eq!(again, spec, "{config}");
    }
    let err = ConnectionSpec::from_config(
        Kind::Mcp,
        &object(json!({"command": "x", "transport": "sse"})),
    )
    .unwrap_err();
    assert!(err.contains("server_url"), "{err}");
}

#[test]
fn stored_http_values_of_a_provider_survive_a_round_trip() {
    let config = object(
        json!({"base_url": "https://q.example", "realmId": "123", "timeout_ms": 5000, "retries": 0, "backoff_ms": 10}),
    );
    let spec = ConnectionSpec::from_config(Kind::Http, &config).unwrap();
    assert_eq!(spec.http().unwrap().values["realmId"], "123");
    assert_eq!(spec.to_config(), config);
}
