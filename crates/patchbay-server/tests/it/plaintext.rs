//! What stays private on the machine and on the wire: the data directory and the store's files
//! are closed to other local users, and an SMTP password is not sent in clear to a server that
//! is not on this machine.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use patchbay_domain::api::{CreateConnection, ErrorKind, TestResult};
use serde_json::json;

use crate::helpers::{Backend, TestApp, Tweak};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_data_directory_and_store_files_are_private() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    let dir = app.dir.path().to_path_buf();
    let store = dir.join("patchbay.db");
    // Loosened by hand, as an older version or a careless copy would leave them.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["patchbay.db", "patchbay.db-wal", "patchbay.db-shm"] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    app.restart(Some(app.master_key.clone())).await;
    app.admin.me().await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&store), 0o600);
    for f in ["patchbay.db-wal", "patchbay.db-shm"] {
        let p = dir.join(f);
        assert!(p.exists(), "{f} exists while the store is open");
        assert_eq!(mode(&p), 0o600, "{f}");
    }
}

/// An SMTP greeter on `ip` that counts connections.
async fn greeter(ip: &str) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            use tokio::io::AsyncWriteExt as _;
            let _ = tcp.write_all(b"421 closing\r\n").await;
        }
    });
    (port, hits)
}

async fn smtp_plaintext_auth() {
    // An address of this namespace that is not loopback (a documentation range).
    let ip = "192.0.2.10";
    let (port, hits) = greeter(ip).await;
    let tweak = |allow: bool| -> Tweak {
        Arc::new(move |s| {
            s.egress.allow_net = vec!["192.0.2.0/24".parse().unwrap()];
            s.egress.allow_plaintext_smtp_auth = allow;
        })
    };
    let body: CreateConnection = serde_json::from_value(json!({"name": "mail", "kind": "smtp",
        "auth": {"type": "basic"}, "config": {"host": ip, "port": port, "encryption": "none",
        "from_address": "ops@example.com", "username": "ops"}, "secrets": {"password": "clear-text-pw"}}))
    .unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, Some(tweak(false))).await;
    let r: TestResult = app.admin.test_unsaved(&body).await.unwrap();
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Tls), "{r:?}");
    assert!(r.message.contains("without TLS"), "{}", r.message);
    assert!(!r.message.contains("clear-text-pw"));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing was sent to the server"
    );
    // The operator may allow it: then the server is reached.
    let open = TestApp::spawn_with(Backend::Sqlite, Some(tweak(true))).await;
    let r: TestResult = open.admin.test_unsaved(&body).await.unwrap();
    assert_ne!(r.error_kind, Some(ErrorKind::Tls), "{r:?}");
    assert!(hits.load(Ordering::SeqCst) >= 1);
}

/// Runs in a network namespace of its own with only loopback (and a documentation address on
/// it), so nothing can leave the machine whatever the code does.
#[test]
fn smtp_auth_is_not_sent_in_clear_beyond_loopback() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("a network namespace of its own (the test runs as root, as CI does)");
    for args in [
        &["link", "set", "lo", "up"][..],
        &["addr", "add", "192.0.2.10/32", "dev", "lo"],
    ] {
        let ok = std::process::Command::new("ip")
            .args(args)
            .status()
            .expect("ip");
        assert!(ok.success(), "ip {args:?}");
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(smtp_plaintext_auth());
}
