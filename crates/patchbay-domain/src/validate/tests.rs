use serde_json::json;

use super::*;

fn draft(v: Value) -> Draft {
    Draft {
        name: v.get("name").cloned(),
        kind: v.get("kind").cloned(),
        provider: v.get("provider").cloned(),
        auth: v.get("auth").cloned(),
        config: v.get("config").cloned(),
        secrets: v.get("secrets").cloned(),
        base_url_from_token: false,
    }
}

fn ok(v: Value) -> ValidConnection {
    validate_connection(&draft(v), &BTreeSet::new()).expect("valid")
}

fn fields(v: Value) -> Vec<String> {
    validate_connection(&draft(v), &BTreeSet::new())
        .expect_err("invalid")
        .fields()
        .map(str::to_owned)
        .collect()
}

#[test]
fn http_api_key_gets_defaults() {
    let c = ok(
        json!({"name": "OpenAI", "kind": "http", "provider": "openai",
        "auth": {"type": "api_key", "in": "header", "name": "Authorization", "prefix": "Bearer "},
        "config": {"base_url": "https://api.openai.com/v1"},
        "secrets": {"api_key": "sk-test"}}),
    );
    assert_eq!(c.auth_type, AuthType::ApiKey);
    assert_eq!(c.config["timeout_ms"], 30_000);
    assert_eq!(c.config["retries"], 2);
    assert_eq!(c.config["backoff_ms"], 250);
    assert!(c.secrets.contains_key("api_key"));
    assert_eq!(c.initial_status, Status::Active);
}

#[test]
fn every_bad_field_is_named_at_once() {
    let got = fields(json!({"name": "x\r\ny", "kind": "http",
        "auth": {"type": "basic"},
        "config": {"base_url": "ftp://x", "timeout_ms": -1, "colour": "red"},
        "secrets": {"token": "t"}}));
    for f in [
        "name",
        "config.base_url",
        "config.timeout_ms",
        "config.colour",
        "auth.username",
        "secrets.token",
        "secrets.password",
    ] {
        assert!(got.contains(&f.to_owned()), "{f} missing from {got:?}");
    }
}

#[test]
fn unknown_kind_and_auth_type_are_refused() {
    assert_eq!(fields(json!({"name": "a", "kind": "ftp"})), vec!["kind"]);
    let got = fields(
        json!({"name": "a", "kind": "webhook", "auth": {"type": "oauth2"},
        "config": {"url": "https://h.example/x"}}),
    );
    assert_eq!(got, vec!["auth.type"]);
}

#[test]
fn secrets_in_plain_fields_are_refused() {
    let got = fields(json!({"name": "a", "kind": "database",
        "config": {"driver": "postgresql", "host": "db", "database": "d", "username": "u", "password": "p"},
        "secrets": {"password": "p"}}));
    assert_eq!(got, vec!["config.password"]);
}

#[test]
fn database_defaults_depend_on_driver_and_host() {
    let pg = ok(json!({"name": "pg", "kind": "database",
        "config": {"driver": "postgresql", "host": "127.0.0.1", "database": "test", "username": "root"},
        "secrets": {"password": ""}}));
    assert_eq!(pg.auth_type, AuthType::Basic);
    assert_eq!(pg.config["port"], 5432);
    assert_eq!(pg.config["ssl"], false);
    let remote = ok(json!({"name": "my", "kind": "database",
        "config": {"driver": "mysql", "host": "db.example.com", "database": "x", "username": "u"},
        "secrets": {"password": "p"}}));
    assert_eq!(remote.config["port"], 3306);
    assert_eq!(remote.config["ssl"], true);
    let sqlite = ok(json!({"name": "lite", "kind": "database",
        "config": {"driver": "sqlite", "database": "/srv/app.db"}}));
    assert_eq!(sqlite.auth_type, AuthType::None);
    assert_eq!(
        fields(json!({"name": "lite", "kind": "database",
        "config": {"driver": "sqlite", "database": "/a.db", "host": "x"}})),
        vec!["config.host"]
    );
    assert_eq!(
        fields(json!({"name": "pg", "kind": "database",
        "config": {"driver": "postgresql", "host": "h", "database": "d", "username": "u"}})),
        vec!["secrets.password"]
    );
}

#[test]
fn smtp_port_follows_encryption() {
    let c = ok(json!({"name": "mail", "kind": "smtp",
        "config": {"host": "smtp.example.com", "encryption": "tls", "from_address": "ops@example.com", "username": "ops"},
        "secrets": {"password": "pw"}}));
    assert_eq!(c.auth_type, AuthType::Basic);
    assert_eq!(c.config["port"], 465);
    let got = fields(json!({"name": "mail", "kind": "smtp",
        "config": {"host": "h", "encryption": "ssl", "from_address": "not-an-address"}}));
    assert_eq!(got, vec!["config.encryption", "config.from_address"]);
}

#[test]
fn webhook_hmac_secret_shape_is_checked() {
    let good = ok(
        json!({"name": "hook", "kind": "webhook", "auth": {"type": "hmac"},
        "config": {"url": "https://h.example/in"},
        "secrets": {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}),
    );
    assert_eq!(good.config["method"], "POST");
    assert_eq!(
        fields(
            json!({"name": "hook", "kind": "webhook", "auth": {"type": "hmac"},
        "config": {"url": "https://h.example/in"}, "secrets": {"secret": "short"}})
        ),
        vec!["secrets.secret"]
    );
}

#[test]
fn mcp_needs_exactly_one_of_url_and_command() {
    let c = ok(
        json!({"name": "m", "kind": "mcp", "config": {"server_url": "http://127.0.0.1:3001/mcp"}}),
    );
    assert_eq!(c.config["transport"], "streamable_http");
    let s =
        ok(json!({"name": "m", "kind": "mcp", "config": {"command": "npx", "args": ["-y", "x"]}}));
    assert_eq!(s.config["transport"], "stdio");
    assert_eq!(
        fields(json!({"name": "m", "kind": "mcp", "config": {}})),
        vec!["config.server_url"]
    );
    assert_eq!(
        fields(json!({"name": "m", "kind": "mcp",
        "config": {"server_url": "http://h/mcp", "command": "x"}})),
        vec!["config.command"]
    );
}

#[test]
fn oauth2_custom_needs_urls_and_client_id_and_starts_pending() {
    let c = ok(
        json!({"name": "o", "kind": "http", "auth": {"type": "oauth2",
        "authorization_url": "https://id.example/auth", "token_url": "https://id.example/token",
        "scopes": "read write"},
        "config": {"base_url": "https://api.example"}, "secrets": {"client_id": "abc"}}),
    );
    assert_eq!(c.initial_status, Status::Pending);
    assert_eq!(c.auth["scopes"], json!(["read", "write"]));
    assert_eq!(c.auth["pkce"], true);
    let got = fields(
        json!({"name": "o", "kind": "http", "auth": {"type": "oauth2"},
        "config": {"base_url": "https://api.example"}}),
    );
    assert_eq!(
        got,
        vec![
            "auth.authorization_url",
            "auth.token_url",
            "secrets.client_id"
        ]
    );
    // An app-backed connection carries no client secrets of its own.
    assert_eq!(
        fields(
            json!({"name": "o", "kind": "http", "auth": {"type": "oauth2", "app": "slack"},
        "config": {"base_url": "https://slack.com/api"}, "secrets": {"client_id": "x"}})
        ),
        vec!["secrets.client_id"]
    );
}

#[test]
fn custom_templates_must_name_provided_secrets() {
    let c = ok(
        json!({"name": "c", "kind": "http", "auth": {"type": "custom",
        "inject": [{"in": "header", "name": "X-Auth", "template": "Token ${secrets.key}"}]},
        "config": {"base_url": "https://x.example"}, "secrets": {"key": "v"}}),
    );
    assert_eq!(c.auth_type, AuthType::Custom);
    assert_eq!(
        fields(
            json!({"name": "c", "kind": "http", "auth": {"type": "custom",
        "inject": [{"in": "header", "name": "X-Auth", "template": "${secrets.nope}"}]},
        "config": {"base_url": "https://x.example"}})
        ),
        vec!["auth.inject[0].template"]
    );
}

#[test]
fn patch_semantics_existing_secrets_count_unless_removed() {
    let existing: BTreeSet<String> = ["token".to_owned()].into();
    let d = draft(
        json!({"name": "b", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": "https://x.example"}}),
    );
    assert!(validate_connection(&d, &existing).is_ok());
    let removing = draft(
        json!({"name": "b", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": "https://x.example"}, "secrets": {"token": null}}),
    );
    let err = validate_connection(&removing, &existing).unwrap_err();
    assert_eq!(err.fields().collect::<Vec<_>>(), vec!["secrets.token"]);
    // Switching to basic drops the bearer token.
    let switched = draft(
        json!({"name": "b", "kind": "http", "auth": {"type": "basic", "username": "u"},
        "config": {"base_url": "https://x.example"}, "secrets": {"password": "p"}}),
    );
    let v = validate_connection(&switched, &existing).unwrap();
    assert!(v.remove_secrets.contains("token"));
}

#[test]
fn headers_and_urls_refuse_smuggled_credentials() {
    let got = fields(json!({"name": "h", "kind": "http",
        "config": {"base_url": "https://user:pw@x.example", "headers": {"Authorization": "Bearer x"}}}));
    assert_eq!(got, vec!["config.base_url", "config.headers"]);
    let got = fields(json!({"name": "h", "kind": "http",
        "config": {"base_url": "https://x.example", "headers": {"X-A": "a\r\nInjected: 1"}}}));
    assert_eq!(got, vec!["config.headers"]);
}

#[test]
fn secret_refs_are_parsed() {
    let c = ok(
        json!({"name": "s", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": "https://x.example"}, "secrets": {"token": {"ref": "stripe_key"}}}),
    );
    assert!(matches!(c.secrets["token"], SecretInput::Ref(ref n) if n.as_str() == "stripe_key"));
    assert_eq!(
        fields(
            json!({"name": "s", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": "https://x.example"}, "secrets": {"token": {"ref": "1 bad"}}})
        ),
        vec!["secrets.token"]
    );
}

#[test]
fn reserved_token_fields_cannot_be_written_and_survive_edits() {
    let got = fields(
        json!({"name": "c", "kind": "http", "auth": {"type": "custom",
        "inject": [{"in": "header", "name": "X", "template": "${secrets.k}"}]},
        "config": {"base_url": "https://x.example"}, "secrets": {"k": "v", "__access_token": "forged"}}),
    );
    assert_eq!(got, vec!["secrets.__access_token"]);
    // An obtained token stays through an edit of an oauth2 connection, and goes with the type.
    let existing: BTreeSet<String> = ["client_id".to_owned(), "__access_token".to_owned()].into();
    let keep = draft(
        json!({"name": "o2", "kind": "http", "auth": {"type": "oauth2",
        "authorization_url": "https://id.example/a", "token_url": "https://id.example/t"},
        "config": {"base_url": "https://x.example"}}),
    );
    assert!(
        !validate_connection(&keep, &existing)
            .unwrap()
            .remove_secrets
            .contains("__access_token")
    );
    let switch = draft(
        json!({"name": "o2", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": "https://x.example"}, "secrets": {"token": "t"}}),
    );
    assert!(
        validate_connection(&switch, &existing)
            .unwrap()
            .remove_secrets
            .contains("__access_token")
    );
}

#[test]
fn what_no_connector_can_run_is_refused_naming_the_field_and_the_rest_runs() {
    let sigv4 = ok(json!({"name": "s", "kind": "http",
        "auth": {"type": "aws_sigv4", "region": "eu-west-1", "service": "s3"},
        "config": {"base_url": "https://s3.example"},
        "secrets": {"access_key_id": "AKIAEXAMPLEEXAMPLE12", "secret_access_key": "x"}}));
    assert!(matches!(&sigv4.auth_spec, crate::spec::Auth::AwsSigv4(a)
        if a.region == "eu-west-1" && a.service == "s3"));
    let unscoped = fields(json!({"name": "s", "kind": "http",
        "auth": {"type": "aws_sigv4", "region": "EU West"},
        "config": {"base_url": "https://s3.example"},
        "secrets": {"secret_access_key": "x"}}));
    assert_eq!(
        unscoped,
        ["auth.region", "auth.service", "secrets.access_key_id"]
    );
    let sse = ok(json!({"name": "m", "kind": "mcp",
        "config": {"server_url": "https://m.example/sse", "transport": "sse"}}));
    assert!(matches!(&sse.spec, crate::spec::ConnectionSpec::Mcp(m)
        if matches!(&m.transport, crate::spec::McpTransport::Sse { url } if url == "https://m.example/sse")));
    let sse_command = fields(json!({"name": "m", "kind": "mcp",
        "config": {"command": "srv", "transport": "sse"}}));
    assert_eq!(sse_command, ["config.transport"]);
    // A stdio server's secrets are environment variables; an HTTP server's are not.
    let stdio = ok(
        json!({"name": "m", "kind": "mcp", "config": {"command": "srv"},
        "secrets": {"API_TOKEN": "t"}}),
    );
    assert!(stdio.secrets.contains_key("API_TOKEN"));
    let not_a_variable = fields(
        json!({"name": "m", "kind": "mcp", "config": {"command": "srv"},
        "secrets": {"A-B": "t", "__access_token": "t"}}),
    );
    assert_eq!(not_a_variable, ["secrets.A-B", "secrets.__access_token"]);
    let http_env = fields(json!({"name": "m", "kind": "mcp",
        "config": {"server_url": "https://m.example/mcp"}, "secrets": {"API_TOKEN": "t"}}));
    assert_eq!(http_env, ["secrets.API_TOKEN"]);
    let header = fields(json!({"name": "c", "kind": "http",
        "auth": {"type": "custom", "inject": [{"in": "header", "name": "X Bad", "template": "${secrets.k}"}]},
        "config": {"base_url": "https://a.example"}, "secrets": {"k": "v"}}));
    assert_eq!(header, ["auth.inject[0].name"]);
    let env = fields(json!({"name": "m", "kind": "mcp",
        "config": {"server_url": "https://m.example/mcp", "env": {"A": "b"}}}));
    assert_eq!(env, ["config.env"]);
    let bad_env = fields(json!({"name": "m", "kind": "mcp",
        "config": {"command": "srv", "env": {"1BAD": "b"}}}));
    assert_eq!(bad_env, ["config.env"]);
}

#[test]
fn the_output_is_the_typed_spec_and_its_stored_shape() {
    let c = ok(json!({"name": "m", "kind": "mcp", "config": {"command": "srv", "args": ["--ro"]}}));
    let crate::spec::ConnectionSpec::Mcp(mcp) = &c.spec else {
        panic!("{:?}", c.spec)
    };
    assert!(
        matches!(&mcp.transport, crate::spec::McpTransport::Stdio { command, .. } if command == "srv")
    );
    assert_eq!(c.config["transport"], "stdio");
    assert_eq!(c.config["timeout_ms"], crate::spec::McpConfig::TIMEOUT_MS);
    let d = ok(json!({"name": "d", "kind": "database",
        "config": {"driver": "postgresql", "host": "db.example", "database": "app", "username": "u"},
        "secrets": {"password": "p"}}));
    assert_eq!(d.auth_spec, crate::spec::Auth::Basic(Default::default()));
    assert_eq!(d.config["port"], 5432);
}

#[test]
fn storage_connections_name_a_bucket_and_stay_under_their_prefix() {
    let s3 = ok(json!({"name": "s3-prod", "kind": "storage",
        "config": {"bucket": "flow8-artifacts", "region": "us-east-1", "prefix": "invoices"},
        "secrets": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "s"}}));
    assert_eq!(s3.auth_type, AuthType::AwsSigv4);
    let crate::spec::ConnectionSpec::Storage(c) = &s3.spec else {
        panic!("a storage spec")
    };
    assert_eq!(c.prefix(), "invoices/");
    assert!(!c.path_style(), "AWS is addressed virtual-hosted");
    assert_eq!(c.endpoint(), "https://s3.us-east-1.amazonaws.com");
    let minio = ok(json!({"name": "m", "kind": "storage",
        "config": {"bucket": "b12", "endpoint": "http://127.0.0.1:9000"},
        "secrets": {"access_key_id": "a", "secret_access_key": "s", "session_token": "t"}}));
    let crate::spec::ConnectionSpec::Storage(c) = &minio.spec else {
        panic!("a storage spec")
    };
    assert!(c.path_style(), "a given endpoint is addressed path-style");
    assert_eq!(minio.config["region"], "us-east-1");
    let bad = fields(json!({"name": "s", "kind": "storage",
        "auth": {"type": "aws_sigv4", "region": "us-east-1"},
        "config": {"bucket": "Bad_Bucket", "prefix": "../x", "endpoint": "https://s3.example/base?x=1",
            "region": "Mars 1"},
        "secrets": {"access_key_id": "a"}}));
    assert_eq!(
        bad,
        [
            "config.bucket",
            "config.endpoint",
            "config.prefix",
            "config.region",
            "auth.region",
            "secrets.secret_access_key"
        ]
    );
    let missing = fields(json!({"name": "s", "kind": "storage", "auth": {"type": "bearer"}}));
    assert_eq!(missing, ["auth.type", "config.bucket"]);
    for prefix in ["/abs", "a//b", ".hidden/", "a/../b", "a b"] {
        let e = fields(json!({"name": "s", "kind": "storage",
            "config": {"bucket": "abc", "prefix": prefix},
            "secrets": {"access_key_id": "a", "secret_access_key": "s"}}));
        assert_eq!(e, ["config.prefix"], "{prefix:?}");
    }
}

#[test]
fn file_servers_name_a_protocol_and_keep_their_fields_to_it() {
    let sftp = ok(json!({"name": "drop", "kind": "file_transfer",
        "config": {"protocol": "sftp", "host": "files.example.com", "username": "t",
            "base_dir": "/srv/exports/", "host_key": "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"},
        "secrets": {"password": "pw"}}));
    assert_eq!(sftp.auth_type, AuthType::Basic);
    let crate::spec::ConnectionSpec::FileTransfer(c) = &sftp.spec else {
        panic!("a file_transfer spec")
    };
    assert_eq!(
        (c.port(), c.base_dir.as_deref()),
        (22, Some("/srv/exports"))
    );
    let key = ok(
        json!({"name": "k", "kind": "file_transfer", "auth": {"type": "ssh_key"},
        "config": {"protocol": "sftp", "host": "h", "username": "t", "base_dir": "inbox",
            "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl host"},
        "secrets": {"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----", "passphrase": "p"}}),
    );
    assert_eq!(key.auth_type, AuthType::SshKey);
    let ftps = ok(json!({"name": "f", "kind": "file_transfer",
        "config": {"protocol": "ftps", "host": "h", "username": "t"},
        "secrets": {"password": "pw"}}));
    assert_eq!(ftps.config["port"], 21);
    let missing = fields(json!({"name": "m", "kind": "file_transfer", "config": {}}));
    assert_eq!(
        missing,
        [
            "config.protocol",
            "config.host",
            "config.username",
            "secrets.password"
        ]
    );
    let wrong = fields(
        json!({"name": "w", "kind": "file_transfer", "auth": {"type": "ssh_key"},
        "config": {"protocol": "ftps", "host": "h", "username": "t",
            "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
        "secrets": {"private_key": "k"}}),
    );
    assert_eq!(wrong, ["config.host_key", "auth.type"]);
    let ca = fields(json!({"name": "c", "kind": "file_transfer",
        "config": {"protocol": "sftp", "host": "h", "username": "t",
            "tls_ca": "-----BEGIN CERTIFICATE-----\nx"},
        "secrets": {"password": "pw"}}));
    assert_eq!(ca, ["config.tls_ca"]);
    for (field, value) in [
        ("base_dir", json!("../etc")),
        ("base_dir", json!("a//b")),
        ("base_dir", json!("/srv/./x")),
        ("host_key", json!("ssh-dss AAAAB3NzaC1kc3MAAACBAP")),
        ("host_key", json!("SHA256:short")),
        ("host_key", json!("ssh-ed25519 not*base64")),
        ("protocol", json!("scp")),
    ] {
        let mut config = json!({"protocol": "sftp", "host": "h", "username": "t"});
        config[field] = value.clone();
        let e = fields(
            json!({"name": "x", "kind": "file_transfer", "config": config,
            "secrets": {"password": "pw"}}),
        );
        assert_eq!(e, [format!("config.{field}")], "{field}: {value}");
    }
}
