//! A newcomer's path: `serve` prints the URL and the admin token, the CLI on the same machine
//! needs no configuration, and connections of every kind go in through the CLI with their
//! secrets masked on the way out and unreadable at rest.

use serde_json::{Value, json};

use crate::server::{Server, run, run_ok};

fn kinds() -> Vec<(Value, Vec<&'static str>)> {
    vec![
        (
            json!({"name": "gh", "kind": "http", "provider": "github", "auth": {"type": "bearer"},
            "config": {"base_url": "https://api.github.com"}, "secrets": {"token": "ghp_cli-canary-bearer"}}),
            vec!["ghp_cli-canary-bearer"],
        ),
        (
            json!({"name": "pg", "kind": "database", "config": {"driver": "postgresql", "host": "127.0.0.1",
            "database": "test", "username": "postgres"}, "secrets": {"password": "cli-canary-dbpass"}}),
            vec!["cli-canary-dbpass"],
        ),
        (
            json!({"name": "mail", "kind": "smtp", "config": {"host": "127.0.0.1", "encryption": "none",
            "from_address": "ops@example.com", "username": "ops"}, "secrets": {"password": "cli-canary-smtp"}}),
            vec!["cli-canary-smtp"],
        ),
        (
            json!({"name": "hook", "kind": "webhook", "auth": {"type": "hmac"}, "config": {"url": "https://hooks.example.com/x"},
            "secrets": {"secret": "cli-canary-webhook-secret"}}),
            vec!["cli-canary-webhook-secret"],
        ),
        (
            json!({"name": "tools", "kind": "mcp", "auth": {"type": "api_key", "in": "header", "name": "X-Key"},
            "config": {"server_url": "http://127.0.0.1:3001/mcp"}, "secrets": {"api_key": "cli-canary-mcp"}}),
            vec!["cli-canary-mcp"],
        ),
    ]
}

#[test]
fn serve_prints_url_and_token_and_the_cli_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[], &[]);
    let token = server
        .token
        .clone()
        .expect("first run prints the admin token");
    assert!(token.starts_with("pb_") && token.len() == 46, "{token}");
    assert!(server.url.starts_with("http://127.0.0.1:"));
    assert!(
        server
            .stdout
            .iter()
            .any(|l| l.contains("generated a master key"))
    );
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);

    // No --url, no --token: the CLI finds both.
    let me: Value = serde_json::from_str(&run_ok(&data, &["me", "--json"], None)).unwrap();
    assert_eq!(me["operator"], true);
    assert_eq!(me["role"], "admin");

    let mut planted = Vec::new();
    for (body, secrets) in kinds() {
        let out = run_ok(
            &data,
            &["connections", "create", "--from-file", "-", "--json"],
            Some(&body.to_string()),
        );
        let created: Value = serde_json::from_str(&out).unwrap();
        let id = created["id"].as_str().unwrap();
        let got = run_ok(&data, &["connections", "get", id, "--json"], None);
        let read: Value = serde_json::from_str(&got).unwrap();
        for field in body["secrets"].as_object().unwrap().keys() {
            assert_eq!(read["secrets"][field], json!({"set": true}));
        }
        for s in &secrets {
            assert!(
                !out.contains(s) && !got.contains(s),
                "secret shown by the CLI"
            );
        }
        planted.extend(secrets);
    }
    // Flags work as well as files; the secret comes from the environment.
    let out = {
        let mut c = crate::server::patchbay(&data);
        c.env("GH_TOKEN_FOR_TEST", "cli-canary-env").args([
            "connections",
            "create",
            "--name",
            "flags",
            "--kind",
            "http",
            "--auth",
            "bearer",
            "--set",
            "base_url=https://api.example.com",
            "--set",
            "timeout_ms=5000",
            "--secret-env",
            "token=GH_TOKEN_FOR_TEST",
        ]);
        c.output().unwrap()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    planted.push("cli-canary-env");
    let table = run_ok(&data, &["connections", "list"], None);
    for name in ["gh", "pg", "mail", "hook", "tools", "flags"] {
        assert!(table.contains(name), "{name} missing from:\n{table}");
    }
    let listed: Value = serde_json::from_str(&run_ok(
        &data,
        &["connections", "list", "--kind", "http", "--json"],
        None,
    ))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[1]["config"]["timeout_ms"], 5000);

    // A bad request names its fields and exits non-zero.
    let bad = run(
        &data,
        &["connections", "create", "--name", "x", "--kind", "smtp"],
        None,
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("config.host") && err.contains("config.from_address"),
        "{err}"
    );

    // Organizations, tokens and audit from the CLI.
    let org: Value =
        serde_json::from_str(&run_ok(&data, &["orgs", "create", "acme", "--json"], None)).unwrap();
    assert!(org["admin_token"].as_str().unwrap().starts_with("pb_"));
    let tok: Value = serde_json::from_str(&run_ok(
        &data,
        &[
            "tokens", "create", "--name", "engine", "--role", "executor", "--json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(tok["role"], "executor");
    let audit = run_ok(&data, &["audit", "--action", "connection.create"], None);
    assert_eq!(audit.matches("connection.create").count(), 6);
    assert!(run_ok(&data, &["audit", "verify"], None).contains("intact"));

    server.stop();
    let db = std::fs::read(data.join("patchbay.db")).unwrap();
    let wal = std::fs::read(data.join("patchbay.db-wal")).unwrap_or_default();
    for s in &planted {
        for hay in [&db, &wal] {
            assert!(
                !hay.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s} is readable in the SQLite file"
            );
        }
    }

    // A second start is not a first run: no token is printed, the CLI keeps working.
    let _again = Server::start(&data, &[], &[]);
    assert!(_again.token.is_none());
    assert!(!_again.stdout.iter().any(|l| l.contains("pb_")));
    assert!(run_ok(&data, &["me"], None).contains("operator:     true"));
}

#[test]
fn config_example_and_completions_print() {
    let dir = tempfile::tempdir().unwrap();
    let example = run_ok(dir.path(), &["config", "example"], None);
    assert!(example.contains("listen = \"127.0.0.1:8750\""));
    let path = dir.path().join("patchbay.toml");
    std::fs::write(&path, example.replace("127.0.0.1:8750", "127.0.0.1:0")).unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", path.to_str().unwrap()], &[]);
    assert!(server.token.is_some());
    let bash = run_ok(dir.path(), &["completions", "bash"], None);
    assert!(bash.contains("patchbay") && bash.contains("connections"));
    // A broken file is refused with its name.
    std::fs::write(&path, "lisen = 1").unwrap();
    let out = run(&data, &["serve", "--config", path.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("patchbay.toml"));
    // A bad value is named with the key and where it came from, before anything starts.
    std::fs::write(&path, "[http]\nheader_timeout = \"soon\"\n").unwrap();
    let out = run(&data, &["serve", "--config", path.to_str().unwrap()], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http.header_timeout") && err.contains("patchbay.toml"),
        "{err}"
    );
}

#[test]
fn serving_threads_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run(&data, &["serve", "--serve-threads", "0"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("http.serve_threads (from --serve-threads): must be between 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One thread serves several clients at once.
    let _server = Server::start(&data, &["--serve-threads", "1"], &[]);
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let data = data.clone();
            std::thread::spawn(move || run_ok(&data, &["me"], None))
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap().contains("operator:     true"));
    }
}

#[test]
fn commands_without_a_server_explain_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["connections", "list"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server"));
}

#[test]
fn init_prepares_the_store_without_serving() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_ok(&data, &["init"], None);
    assert!(out.contains("Patchbay initialised"), "{out}");
    let token = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Admin token (shown once, operator of the default organization): ")
        })
        .unwrap();
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("cli.json")).unwrap()).unwrap();
    assert_eq!(recorded["token"], token);
    assert_eq!(recorded["url"], "http://127.0.0.1:8750");
    // A second init is not a first run.
    assert!(!run_ok(&data, &["init"], None).contains("pb_"));
    // The server started later keeps the recorded token, so the CLI works at once.
    let server = Server::start(&data, &[], &[]);
    assert!(server.token.is_none());
    let me: Value = serde_json::from_str(&run_ok(&data, &["me", "--json"], None)).unwrap();
    assert_eq!(me["operator"], true);
    // Update and delete from the CLI.
    let created: Value = serde_json::from_str(&run_ok(
        &data,
        &[
            "connections",
            "create",
            "--name",
            "svc",
            "--kind",
            "http",
            "--json",
            "--auth",
            r#"{"type":"basic","username":"svc"}"#,
            "--set",
            "base_url=https://svc.example",
            "--secret",
            "password=first",
        ],
        None,
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let stale = run(
        &data,
        &[
            "connections",
            "update",
            id,
            "--set",
            "retries=5",
            "--if-match",
            "9",
        ],
        None,
    );
    assert!(!stale.status.success());
    assert!(String::from_utf8_lossy(&stale.stderr).contains("version_mismatch"));
    run_ok(
        &data,
        &[
            "connections",
            "update",
            id,
            "--set",
            "retries=5",
            "--if-match",
            "1",
        ],
        None,
    );
    run_ok(
        &data,
        &["connections", "update", id, "--secret-stdin", "password"],
        Some("second\n"),
    );
    let creds: Value =
        serde_json::from_str(&run_ok(&data, &["connections", "credentials", id], None)).unwrap();
    assert_eq!(creds["secrets"]["password"], "second");
    assert_eq!(creds["config"]["retries"], 5);
    run_ok(&data, &["connections", "delete", id], None);
    let gone = run(&data, &["connections", "get", id], None);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"));
    // Secrets from stdin, listed without values.
    run_ok(
        &data,
        &["secrets", "set", "api_key"],
        Some("value-from-stdin\n"),
    );
    let listed = run_ok(&data, &["secrets", "list"], None);
    assert!(listed.contains("api_key") && !listed.contains("value-from-stdin"));
}

#[test]
fn connections_test_reports_and_exits_non_zero_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(&data, &[], &[]);
    let created: Value = serde_json::from_str(&run_ok(
        &data,
        &[
            "connections",
            "create",
            "--name",
            "metadata",
            "--kind",
            "http",
            "--json",
            "--set",
            "base_url=http://169.254.169.254/",
        ],
        None,
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let out = run(&data, &["connections", "test", id], None);
    assert!(!out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.starts_with("✗ blocked:") && printed.contains("(blocked,"),
        "{printed}"
    );
    let unsaved = run(
        &data,
        &[
            "connections",
            "test",
            "--name",
            "x",
            "--kind",
            "http",
            "--set",
            "base_url=http://2130706433/",
            "--json",
        ],
        None,
    );
    let result: Value = serde_json::from_slice(&unsaved.stdout).unwrap();
    assert_eq!(result["error_kind"], "blocked");
    let shown: Value =
        serde_json::from_str(&run_ok(&data, &["connections", "get", id, "--json"], None)).unwrap();
    assert_eq!(shown["test_status"], "failed");
}

#[test]
fn oauth_connect_prints_the_authorization_url_and_waits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(&data, &[], &[]);
    let created: Value = serde_json::from_str(&run_ok(&data, &[
        "connections", "create", "--name", "idp", "--kind", "http", "--json", "--set", "base_url=https://api.example.com",
        "--auth", r#"{"type":"oauth2","authorization_url":"https://id.example.com/authorize","token_url":"https://id.example.com/token"}"#,
        "--secret", "client_id=cli-client",
    ], None)).unwrap();
    let id = created["id"].as_str().unwrap();
    let out = run(&data, &["oauth", "connect", id, "--wait", "1"], None);
    assert!(!out.status.success(), "nobody consented");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("https://id.example.com/authorize?")
            && printed.contains("code_challenge_method=S256"),
        "{printed}"
    );
    assert!(printed.contains("client_id=cli-client"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no authorization arrived"));
    let providers = run_ok(&data, &["providers", "--category", "ai"], None);
    assert!(
        providers.contains("openai")
            && providers.contains("anthropic")
            && !providers.contains("slack")
    );
}

/// `patchbay proxy` sends a request through a connection and prints the upstream's answer.
#[test]
fn proxy_sends_through_a_connection() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|req: axum::extract::Request| async move {
        let auth = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        let caller = req.headers().get("patchbay-caller").is_some();
        let path = req.uri().to_string();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        let status = if path.contains("missing") { 404 } else { 200 };
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            axum::Json(
                json!({"path": path, "authorization": auth, "caller_leaked": caller,
                "body": String::from_utf8_lossy(&body)}),
            ),
        )
    });
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &["--allow-net", "127.0.0.0/8"], &[]);
    let created: Value = serde_json::from_str(&run_ok(
        &data,
        &[
            "connections",
            "create",
            "--name",
            "echo",
            "--kind",
            "http",
            "--json",
            "--set",
            &format!("base_url={upstream}/api"),
            "--auth",
            r#"{"type":"bearer"}"#,
            "--secret",
            "token=cli-upstream-token",
        ],
        None,
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let out = run_ok(
        &data,
        &[
            "proxy",
            id,
            "post",
            "/things?x=1",
            "-d",
            "@-",
            "-H",
            "Content-Type: application/json",
            "--caller",
            "cli-test",
        ],
        Some(r#"{"a":1}"#),
    );
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["path"], "/api/things?x=1");
    assert_eq!(answer["authorization"], "Bearer cli-upstream-token");
    assert_eq!(answer["body"], r#"{"a":1}"#);
    assert_eq!(answer["caller_leaked"], false);
    let out = run(&data, &["proxy", id, "GET", "/missing"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 404"));
    let out = run(&data, &["proxy", id, "GET", "/x", "-H", "no-colon"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Name: value"));
    // Stopped at once, the server still writes the use it noted; it is there after a restart.
    server.stop();
    let _server = Server::start(&data, &["--allow-net", "127.0.0.0/8"], &[]);
    let got: Value =
        serde_json::from_str(&run_ok(&data, &["connections", "get", id, "--json"], None)).unwrap();
    assert!(got["last_used_at"].is_string(), "{got}");
    assert_eq!(got["used_by"], json!(["cli-test"]), "{got}");
}

/// `patchbay deliveries list|get|replay` over a dead-lettered delivery.
#[test]
fn deliveries_list_and_replay() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = up.clone();
    let app = axum::Router::new().fallback(move || {
        let ok = flag.load(std::sync::atomic::Ordering::Relaxed);
        async move {
            if ok {
                axum::http::StatusCode::OK
            } else {
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    });
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--allow-net", "127.0.0.0/8"], &[]);
    let api = patchbay_client::Client::new(&server.url, server.token.clone()).unwrap();
    let queued = rt.block_on(async {
        let hook = api
            .create_connection(
                &serde_json::from_value(json!({"name": "sink", "kind": "webhook",
                "config": {"url": format!("{receiver}/in")}}))
                .unwrap(),
            )
            .await
            .unwrap();
        api.webhook_action(
            &serde_json::from_value(json!({"connection": hook.id, "mode": "fire_and_forget",
            "retry": {"attempts": 1}}))
            .unwrap(),
        )
        .await
        .unwrap()
    });
    let id = queued.delivery.unwrap().to_string();
    let status = |data: &std::path::Path| -> String {
        let out = run_ok(data, &["deliveries", "get", &id, "--json"], None);
        serde_json::from_str::<Value>(&out).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for _ in 0..100 {
        if status(&data) == "failed" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let listed = run_ok(&data, &["deliveries", "list", "--status", "failed"], None);
    assert!(
        listed.contains(&id) && listed.contains("1/1") && listed.contains("500"),
        "{listed}"
    );
    up.store(true, std::sync::atomic::Ordering::Relaxed);
    let replayed = run_ok(&data, &["deliveries", "replay", &id], None);
    assert!(replayed.contains("queued again"), "{replayed}");
    for _ in 0..100 {
        if status(&data) == "delivered" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status(&data), "delivered");
    let out = run(&data, &["deliveries", "replay", "dlv_nope"], None);
    assert!(!out.status.success());
}

#[test]
fn mcp_discover_tools_and_call() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(&data, &["--allow-command", "node"], &[]);
    let everything = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let args = json!([everything, "stdio"]).to_string();
    let set_args = format!("args={args}");

    // Before saving: the server and its tools.
    let out = run_ok(
        &data,
        &["mcp", "discover", "--command", "node", "--set", &set_args],
        None,
    );
    assert!(out.contains("✓ Connected to"), "{out}");
    assert!(out.contains("get-sum"), "{out}");
    let refused = run(
        &data,
        &["mcp", "discover", "--command", "not-allowed"],
        None,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stdout).contains("--allow-command"));

    let created: Value = serde_json::from_str(&run_ok(
        &data,
        &[
            "connections",
            "create",
            "--name",
            "everything",
            "--kind",
            "mcp",
            "--set",
            "command=node",
            "--set",
            &set_args,
            "--json",
        ],
        None,
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let tools = run_ok(&data, &["mcp", "tools", id], None);
    assert!(tools.contains("echo") && tools.contains("TOOL"), "{tools}");
    let listed: Value = serde_json::from_str(&run_ok(
        &data,
        &["mcp", "tools", id, "--refresh", "--json"],
        None,
    ))
    .unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "get-sum")
    );

    let said = run_ok(
        &data,
        &["mcp", "call", id, "echo", "--arg", "message=hi there"],
        None,
    );
    assert_eq!(said.trim(), "Echo: hi there");
    let sum: Value = serde_json::from_str(&run_ok(
        &data,
        &[
            "mcp",
            "call",
            id,
            "get-sum",
            "--args",
            r#"{"a": 2, "b": 3}"#,
            "--json",
        ],
        None,
    ))
    .unwrap();
    assert!(
        sum["content"][0]["text"].as_str().unwrap().contains('5'),
        "{sum}"
    );
    // A tool's error result: printed, and the exit status says so.
    let failed = run(&data, &["mcp", "call", id, "get-sum", "--arg", "a=x"], None);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("answered an error"));

    let registry = run_ok(&data, &["mcp", "providers"], None);
    assert!(
        registry.contains("mcp-everything") && registry.contains("github-mcp"),
        "{registry}"
    );
}

#[test]
fn mcp_registry_urls_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(
        &data,
        &[],
        &[("PATCHBAY_MCP_FILESYSTEM_URL", "http://127.0.0.1:9/fs")],
    );
    let registry: Value =
        serde_json::from_str(&run_ok(&data, &["mcp", "providers", "--json"], None)).unwrap();
    let fs = registry
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mcp-filesystem")
        .unwrap();
    assert_eq!(fs["default_server_url"], "http://127.0.0.1:9/fs");
    assert_eq!(fs["transport"], "streamable_http");
    let everything = registry
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mcp-everything")
        .unwrap();
    assert_eq!(everything["transport"], "stdio", "untouched: {everything}");
    let created: Value = serde_json::from_str(&run_ok(
        &data,
        &[
            "connections",
            "create",
            "--name",
            "files",
            "--provider",
            "mcp-filesystem",
            "--json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(
        created["config"]["server_url"], "http://127.0.0.1:9/fs",
        "{created}"
    );
    assert!(created["config"].get("command").is_none(), "{created}");
}

/// `patchbay storage CONNECTION put|get|ls|rm|presign` against a real S3-compatible server.
#[test]
fn storage_objects_go_in_and_out_through_the_cli() {
    let s3 = crate::peers::S3Server::start(&["cli-bucket"]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(&data, &["--allow-net", "127.0.0.0/8"], &[]);
    let body = json!({"name": "files", "kind": "storage", "provider": "minio",
        "config": {"bucket": "cli-bucket", "endpoint": s3.endpoint(), "prefix": "team/"},
        "secrets": {"access_key_id": s3.access_key_id, "secret_access_key": s3.secret_access_key}});
    let created: Value = serde_json::from_str(&run_ok(
        &data,
        &["connections", "create", "--from-file", "-", "--json"],
        Some(&body.to_string()),
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let file = dir.path().join("report.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let at_file = format!("@{}", file.display());
    let out = run_ok(
        &data,
        &[
            "storage",
            id,
            "put",
            "reports/q1.csv",
            "-d",
            &at_file,
            "--content-type",
            "text/csv",
        ],
        None,
    );
    assert!(out.contains("stored reports/q1.csv (8 bytes)"), "{out}");
    run_ok(
        &data,
        &["storage", id, "put", "notes.txt", "-d", "@-"],
        Some("from stdin"),
    );
    let listed = run_ok(&data, &["storage", id, "ls"], None);
    assert!(
        listed.contains("reports/q1.csv") && listed.contains("notes.txt"),
        "{listed}"
    );
    assert_eq!(
        run_ok(&data, &["storage", id, "get", "reports/q1.csv"], None),
        "a,b\n1,2\n"
    );
    let copy = dir.path().join("copy.txt");
    run_ok(
        &data,
        &[
            "storage",
            id,
            "get",
            "notes.txt",
            "-o",
            copy.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "from stdin");
    let url = run_ok(
        &data,
        &["storage", id, "presign", "notes.txt", "--expires", "60"],
        None,
    );
    assert!(
        url.contains("/cli-bucket/team/notes.txt?") && url.contains("X-Amz-Signature="),
        "{url}"
    );
    assert!(run_ok(&data, &["storage", id, "rm", "notes.txt"], None).contains("deleted notes.txt"));
    let out = run(&data, &["storage", id, "get", "notes.txt"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{out:?}"
    );
    let out = run(&data, &["storage", id, "get", "../escape"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("422"),
        "{out:?}"
    );
}

#[test]
fn files_go_to_and_from_an_sftp_server_through_the_cli() {
    let root = tempfile::tempdir().unwrap();
    let sftp = crate::peers::FileServer::sftp(root.path());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(&data, &["--allow-net", "127.0.0.0/8"], &[]);
    let body = json!({"name": "drop", "kind": "file_transfer", "auth": {"type": "ssh_key"},
        "config": {"protocol": "sftp", "host": "127.0.0.1", "port": sftp.port,
            "username": sftp.user, "host_key": sftp.get("host_key")},
        "secrets": {"private_key": sftp.get("client_key")}});
    let created: Value = serde_json::from_str(&run_ok(
        &data,
        &["connections", "create", "--from-file", "-", "--json"],
        Some(&body.to_string()),
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(run_ok(&data, &["files", id, "mkdir", "out/2026"], None).contains("created out/2026"));
    let out = run_ok(
        &data,
        &["files", id, "put", "out/2026/r.csv", "-d", "@-"],
        Some("a,b\n1,2\n"),
    );
    assert!(out.contains("wrote out/2026/r.csv (8 bytes)"), "{out}");
    assert_eq!(
        std::fs::read_to_string(root.path().join("out/2026/r.csv")).unwrap(),
        "a,b\n1,2\n"
    );
    let listed = run_ok(&data, &["files", id, "ls", "out/2026"], None);
    assert!(
        listed.contains("r.csv") && listed.contains("file"),
        "{listed}"
    );
    assert_eq!(
        run_ok(&data, &["files", id, "get", "out/2026/r.csv"], None),
        "a,b\n1,2\n"
    );
    assert!(run_ok(&data, &["files", id, "rm", "out/2026/r.csv"], None).contains("deleted"));
    let out = run(&data, &["files", id, "get", "../etc/passwd"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("422"),
        "{out:?}"
    );
}

#[test]
fn hooks_are_created_listed_and_their_events_polled() {
    use hmac::Mac as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[], &[]);
    let created: Value = serde_json::from_str(&run_ok(
        &data,
        &["hooks", "create", "gh", "--scheme", "github", "--json"],
        None,
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["generated_secret"].as_str().expect("a made secret");
    let listed = run_ok(&data, &["hooks", "ls"], None);
    assert!(
        listed.contains(&id) && listed.contains("github"),
        "{listed}"
    );
    assert!(!listed.contains(secret), "the secret is shown once");
    let body = r#"{"zen":"Keep it logically awesome."}"#;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let status = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/v1/hooks/{id}", server.url))
            .header("x-hub-signature-256", format!("sha256={sig}"))
            .header("x-github-delivery", "cli-1")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    let events = run_ok(&data, &["hooks", "events", &id], None);
    assert!(
        events.contains("cli-1") && events.contains("held"),
        "{events}"
    );
    let polled = run_ok(&data, &["hooks", "poll", &id], None);
    let first: Value = serde_json::from_str(polled.lines().next().unwrap()).unwrap();
    assert_eq!(first["body"], body);
    let out = run(
        &data,
        &["hooks", "replay", &id, first["id"].as_str().unwrap()],
        None,
    );
    assert!(!out.status.success(), "no target to replay to");
    assert!(run_ok(&data, &["hooks", "rm", &id], None).contains("deleted"));
    assert!(!run_ok(&data, &["hooks", "ls"], None).contains(&id));
}
