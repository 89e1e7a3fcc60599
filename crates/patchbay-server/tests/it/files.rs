//! File transfer against real servers: SFTP (asyncssh) with a password, keys and a pinned host
//! key, and FTPS with explicit TLS (pyftpdlib), every path confined to the base directory.

use patchbay_domain::actions::{FilesAction, FilesActionResult};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, err_status, error_fields};
use crate::peers::FileServer;

fn action(v: Value) -> FilesAction {
    serde_json::from_value(v).unwrap()
}

async fn files(app: &TestApp, v: Value) -> FilesActionResult {
    app.admin.files_action(&action(v)).await.unwrap()
}

/// The status (and code) a file action is refused with.
async fn refused(app: &TestApp, v: Value) -> (u16, String) {
    err_status(app.admin.files_action(&action(v)).await)
}

fn names(r: &FilesActionResult) -> Vec<(String, String)> {
    r.entries
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.name.clone(), e.kind.clone()))
        .collect()
}

async fn loopback_app(backend: Backend, plaintext_ftp: bool) -> TestApp {
    TestApp::spawn_with(
        backend,
        Some(std::sync::Arc::new(move |s| {
            s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
            s.egress.allow_plaintext_ftp = plaintext_ftp;
        })),
    )
    .await
}

async fn sftp_is_used_under_its_base_directory_with_a_pinned_host_key(backend: Backend) {
    let app = loopback_app(backend, false).await;
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("base");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "not yours").unwrap();
    std::os::unix::fs::symlink(&outside, base.join("escape")).unwrap();
    let server = FileServer::sftp(root.path());
    let host_key = server.get("host_key");
    let conn = |name: &str, auth: Value, secrets: Value, host_key: Option<&str>| {
        json!({"name": name, "kind": "file_transfer", "auth": auth,
            "config": {"protocol": "sftp", "host": "127.0.0.1", "port": server.port,
                "username": server.user, "base_dir": base.display().to_string(),
                "host_key": host_key},
            "secrets": secrets})
    };
    let basic = json!({"type": "basic"});
    let a = app
        .connection(conn(
            "sftp-pw",
            basic.clone(),
            json!({"password": server.password}),
            None,
        ))
        .await;

    // The first test logs in, lists the base directory and pins the key it saw.
    let t = app.admin.test_connection(&a).await.unwrap();
    assert!(t.success, "{t:?}");
    assert!(t.message.contains("1 entries"), "{}", t.message);
    assert_eq!(t.host_key.as_deref(), Some(host_key.as_str()));
    let stored = app.admin.get_connection(&a).await.unwrap();
    assert_eq!(stored.config["host_key"], host_key.as_str());

    // mkdir makes the missing parents, once.
    let (status, _) = refused(
        &app,
        json!({"connection": a, "op": "put", "path": "docs/a.txt", "body": "x"}),
    )
    .await;
    assert_eq!(status, 404, "the directory does not exist yet");
    let made = files(
        &app,
        json!({"connection": a, "op": "mkdir", "path": "docs/sub"}),
    )
    .await;
    assert_eq!(made.created, Some(true));
    let again = files(
        &app,
        json!({"connection": a, "op": "mkdir", "path": "docs/sub"}),
    )
    .await;
    assert_eq!(again.created, Some(false));
    assert!(base.join("docs/sub").is_dir());

    let put = files(
        &app,
        json!({"connection": a, "op": "put", "path": "docs/a.txt", "body": "hello"}),
    )
    .await;
    assert_eq!(put.size, Some(5));
    assert_eq!(
        std::fs::read_to_string(base.join("docs/a.txt")).unwrap(),
        "hello"
    );
    let bin: Vec<u8> = (0..=255u8).collect();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bin);
    files(
        &app,
        json!({"connection": a, "op": "put", "path": "docs/all.bin", "body": b64,
            "encoding": "base64"}),
    )
    .await;
    assert_eq!(std::fs::read(base.join("docs/all.bin")).unwrap(), bin);
    let got = files(
        &app,
        json!({"connection": a, "op": "get", "path": "docs/a.txt"}),
    )
    .await;
    assert_eq!((got.body.as_deref(), got.size), (Some("hello"), Some(5)));
    let got = files(
        &app,
        json!({"connection": a, "op": "get", "path": "docs/all.bin"}),
    )
    .await;
    assert_eq!(
        got.body.as_deref(),
        Some(b64.as_str()),
        "binary comes back as base64"
    );

    let top = files(&app, json!({"connection": a, "op": "list"})).await;
    assert_eq!(
        names(&top),
        [
            ("docs".into(), "dir".into()),
            ("escape".into(), "link".into())
        ]
    );
    let docs = files(&app, json!({"connection": a, "op": "list", "path": "docs"})).await;
    assert_eq!(
        names(&docs),
        [
            ("a.txt".into(), "file".into()),
            ("all.bin".into(), "file".into()),
            ("sub".into(), "dir".into())
        ]
    );
    assert_eq!(docs.entries.as_ref().unwrap()[0].size, Some(5));

    // Nothing outside the base directory: not by .., not by an absolute path, not by a link.
    for bad in [
        "../outside/secret.txt",
        "/etc/passwd",
        "docs/../../outside/secret.txt",
    ] {
        let r = app
            .admin
            .raw(
                Method::POST,
                "/v1/actions/files",
                Some(&json!({"connection": a, "op": "get", "path": bad})),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 422, "{bad}");
        assert_eq!(error_fields(&r.json()), ["path"], "{bad}");
    }
    for op in [
        json!({"op": "get", "path": "escape/secret.txt"}),
        json!({"op": "list", "path": "escape"}),
        json!({"op": "put", "path": "escape/planted.txt", "body": "x"}),
        json!({"op": "mkdir", "path": "escape/made"}),
    ] {
        let mut v = op.clone();
        v["connection"] = json!(a);
        let (status, _) = refused(&app, v).await;
        assert_eq!(status, 422, "{op}: a link out of the base directory");
    }
    assert!(!outside.join("planted.txt").exists());
    assert!(!outside.join("made").exists());

    files(
        &app,
        json!({"connection": a, "op": "delete", "path": "docs/a.txt"}),
    )
    .await;
    let (status, _) = refused(
        &app,
        json!({"connection": a, "op": "get", "path": "docs/a.txt"}),
    )
    .await;
    assert_eq!(status, 404);
    files(
        &app,
        json!({"connection": a, "op": "delete", "path": "docs/sub"}),
    )
    .await;
    assert!(
        !base.join("docs/sub").exists(),
        "an empty directory is removed"
    );
    let (status, code) = refused(
        &app,
        json!({"connection": a, "op": "delete", "path": "docs"}),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "file_refused"), "not empty");

    // Keys: ed25519, and RSA encrypted with a passphrase; a key the server does not know and a
    // wrong password are refused by the server.
    let ssh_key = json!({"type": "ssh_key"});
    let k = app
        .connection(conn(
            "sftp-key",
            ssh_key.clone(),
            json!({"private_key": server.get("client_key")}),
            Some(&host_key),
        ))
        .await;
    let t = app.admin.test_connection(&k).await.unwrap();
    assert!(t.success, "{t:?}");
    let rsa = app
        .connection(conn(
            "sftp-rsa",
            ssh_key.clone(),
            json!({"private_key": server.get("client_rsa_key"),
                "passphrase": server.get("passphrase")}),
            Some(&host_key),
        ))
        .await;
    let t = app.admin.test_connection(&rsa).await.unwrap();
    assert!(t.success, "{t:?}");
    let wrong_passphrase = app
        .connection(conn(
            "sftp-rsa-wrong",
            ssh_key.clone(),
            json!({"private_key": server.get("client_rsa_key"), "passphrase": "nope"}),
            Some(&host_key),
        ))
        .await;
    let t = app.admin.test_connection(&wrong_passphrase).await.unwrap();
    assert_eq!(t.error_kind.map(|k| k.as_str()), Some("auth"), "{t:?}");
    for (name, auth, secrets) in [
        (
            "stranger",
            ssh_key,
            json!({"private_key": server.get("stranger_key")}),
        ),
        ("wrong-pw", basic, json!({"password": "wrong"})),
    ] {
        let id = app
            .connection(conn(name, auth, secrets, Some(&host_key)))
            .await;
        let t = app.admin.test_connection(&id).await.unwrap();
        assert_eq!(
            t.error_kind.map(|k| k.as_str()),
            Some("auth"),
            "{name}: {t:?}"
        );
        assert!(
            t.message.contains("Authentication failed"),
            "{name}: {}",
            t.message
        );
        let (status, code) = refused(&app, json!({"connection": id, "op": "list"})).await;
        assert_eq!((status, code.as_str()), (502, "upstream_auth"), "{name}");
    }

    // The server's key changes: the pinned connections refuse it, before logging in.
    server.rotate_host_key();
    let t = app.admin.test_connection(&a).await.unwrap();
    assert_eq!(t.error_kind.map(|k| k.as_str()), Some("tls"), "{t:?}");
    assert!(t.message.contains("not the pinned one"), "{}", t.message);
    let (status, _) = refused(&app, json!({"connection": k, "op": "list"})).await;
    assert_eq!(status, 502);
    let stored = app.admin.get_connection(&a).await.unwrap();
    assert_eq!(
        stored.config["host_key"],
        host_key.as_str(),
        "a changed key is not pinned over the old one"
    );
    let next = app
        .connection(conn(
            "sftp-next",
            json!({"type": "basic"}),
            json!({"password": server.password}),
            Some(&server.get("next_host_key")),
        ))
        .await;
    let t = app.admin.test_connection(&next).await.unwrap();
    assert!(t.success, "the new key given by hand is accepted: {t:?}");
}

async fn ftps_uses_explicit_tls_for_commands_and_data(backend: Backend) {
    let app = loopback_app(backend, false).await;
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("in")).unwrap();
    // The server's PASV answers name an address that is not its own: the data connections go
    // to the control connection's address anyway (never where a PASV answer points).
    let server = FileServer::ftp(true, root.path(), Some("192.0.2.7"));
    let conn = |name: &str, password: &str, ca: Option<String>| {
        json!({"name": name, "kind": "file_transfer",
            "config": {"protocol": "ftps", "host": "127.0.0.1", "port": server.port,
                "username": server.user, "base_dir": "in", "tls_ca": ca},
            "secrets": {"password": password}})
    };
    let f = app
        .connection(conn("ftps", &server.password, Some(server.get("ca"))))
        .await;
    let t = app.admin.test_connection(&f).await.unwrap();
    assert!(t.success, "{t:?}");
    assert!(t.message.contains("ftps"), "{}", t.message);

    files(
        &app,
        json!({"connection": f, "op": "mkdir", "path": "reports/2026"}),
    )
    .await;
    let bin: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bin);
    let put = files(
        &app,
        json!({"connection": f, "op": "put", "path": "reports/2026/q1.bin", "body": b64,
            "encoding": "base64"}),
    )
    .await;
    assert_eq!(put.size, Some(70_000));
    assert_eq!(
        std::fs::read(root.path().join("in/reports/2026/q1.bin")).unwrap(),
        bin,
        "a binary transfer: bytes unchanged"
    );
    let got = files(
        &app,
        json!({"connection": f, "op": "get", "path": "reports/2026/q1.bin"}),
    )
    .await;
    assert_eq!(got.body.as_deref(), Some(b64.as_str()));
    let listed = files(
        &app,
        json!({"connection": f, "op": "list", "path": "reports/2026"}),
    )
    .await;
    assert_eq!(names(&listed), [("q1.bin".into(), "file".into())]);
    assert_eq!(listed.entries.as_ref().unwrap()[0].size, Some(70_000));
    for bad in ["../x", "/etc/passwd", "a/../../x"] {
        let (status, _) = refused(&app, json!({"connection": f, "op": "get", "path": bad})).await;
        assert_eq!(status, 422, "{bad}");
    }
    files(
        &app,
        json!({"connection": f, "op": "delete", "path": "reports/2026/q1.bin"}),
    )
    .await;
    assert!(!root.path().join("in/reports/2026/q1.bin").exists());
    let (status, _) = refused(
        &app,
        json!({"connection": f, "op": "get", "path": "reports/2026/q1.bin"}),
    )
    .await;
    assert_eq!(status, 404);

    // A wrong password; a certificate from a CA the connection does not trust.
    let wrong = app
        .connection(conn("ftps-wrong", "nope", Some(server.get("ca"))))
        .await;
    let t = app.admin.test_connection(&wrong).await.unwrap();
    assert_eq!(t.error_kind.map(|k| k.as_str()), Some("auth"), "{t:?}");
    let untrusted = app
        .connection(conn("ftps-untrusted", &server.password, None))
        .await;
    let t = app.admin.test_connection(&untrusted).await.unwrap();
    assert_eq!(t.error_kind.map(|k| k.as_str()), Some("tls"), "{t:?}");
}

#[tokio::test]
async fn plain_ftp_is_used_only_where_the_operator_allows_it() {
    let root = tempfile::tempdir().unwrap();
    let server = FileServer::ftp(false, root.path(), None);
    let body = |protocol: &str| {
        json!({"name": format!("plain-{protocol}"), "kind": "file_transfer",
            "config": {"protocol": protocol, "host": "127.0.0.1", "port": server.port,
                "username": server.user},
            "secrets": {"password": server.password}})
    };
    let strict = loopback_app(Backend::Sqlite, false).await;
    let id = strict.connection(body("ftp")).await;
    let t = strict.admin.test_connection(&id).await.unwrap();
    assert_eq!(t.error_kind.map(|k| k.as_str()), Some("tls"), "{t:?}");
    assert!(t.message.contains("--allow-plaintext-ftp"), "{}", t.message);
    // FTPS asked of a server without TLS is refused, not downgraded.
    let id = strict.connection(body("ftps")).await;
    let t = strict.admin.test_connection(&id).await.unwrap();
    assert_eq!(t.error_kind.map(|k| k.as_str()), Some("tls"), "{t:?}");

    let open = loopback_app(Backend::Sqlite, true).await;
    let id = open.connection(body("ftp")).await;
    let t = open.admin.test_connection(&id).await.unwrap();
    assert!(t.success, "{t:?}");
    files(
        &open,
        json!({"connection": id, "op": "put", "path": "note.txt", "body": "plain"}),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(root.path().join("note.txt")).unwrap(),
        "plain"
    );
}

#[tokio::test]
async fn file_actions_name_their_bad_fields_and_need_a_file_transfer_connection() {
    let app = loopback_app(Backend::Sqlite, false).await;
    let hook = app
        .connection(json!({"name": "h", "kind": "webhook",
            "config": {"url": "https://hooks.example.com/x"}}))
        .await;
    let r = app
        .admin
        .raw(
            Method::POST,
            "/v1/actions/files",
            Some(&json!({"connection": hook, "op": "list"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(error_fields(&r.json()), ["connection"]);
    let r = app
        .admin
        .raw(
            Method::POST,
            "/v1/actions/files",
            Some(&json!({"connection": hook, "op": "list", "body": "x", "encoding": "text"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(error_fields(&r.json()), ["body", "encoding"]);
    let r = app
        .admin
        .raw(
            Method::POST,
            "/v1/actions/files",
            Some(&json!({"connection": hook, "op": "get"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(error_fields(&r.json()), ["path"]);
}

both_backends!(
    sftp_is_used_under_its_base_directory_with_a_pinned_host_key,
    ftps_uses_explicit_tls_for_commands_and_data
);
