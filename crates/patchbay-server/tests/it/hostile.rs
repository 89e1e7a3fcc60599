//! The outbound gate against hostile targets (issue: connection testing, must-show 2).
//!
//! The test runs in a network namespace of its own (only `lo`), so no packet can leave the
//! machine even if the gate were broken: a canary listener on every loopback address counts
//! connections. Every target is tried with every connection kind — first on a server with no
//! allowance (each answers `blocked`, nothing connects), then on a server whose operator opened
//! all ranges (none answers `blocked`, and the loopback ones reach the canary).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use patchbay_domain::api::{CreateConnection, ErrorKind, TestResult};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, Tweak};

/// The public address a rebinding name answers first; the namespace holds it on `lo`, so a
/// connection to it is seen.
const REBIND_PUBLIC: Ipv4Addr = Ipv4Addr::new(93, 184, 216, 99);

/// Answers for the test zone; each `rebind-*` name answers [`REBIND_PUBLIC`] to its first
/// query and loopback to every later one.
async fn dns_server() -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let mut asked = std::collections::HashMap::<String, usize>::new();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
            reply.metadata.message_type = MessageType::Response;
            reply.metadata.authoritative = true;
            reply.metadata.recursion_available = true;
            for q in &query.queries {
                reply.add_query(q.clone());
                let name = q.name().to_ascii().to_ascii_lowercase();
                let v4: Vec<Ipv4Addr> = match (name.as_str(), q.query_type()) {
                    ("loop.patchbay.test.", RecordType::A) => vec![Ipv4Addr::LOCALHOST],
                    ("meta.patchbay.test.", RecordType::A) => {
                        vec![Ipv4Addr::new(169, 254, 169, 254)]
                    }
                    ("private.patchbay.test.", RecordType::A) => vec![Ipv4Addr::new(10, 0, 0, 5)],
                    ("mixed.patchbay.test.", RecordType::A) => {
                        vec![Ipv4Addr::new(93, 184, 216, 34), Ipv4Addr::LOCALHOST]
                    }
                    (n, RecordType::A) if n.starts_with("rebind-") => {
                        let seen = asked.entry(name.clone()).or_default();
                        *seen += 1;
                        if *seen == 1 {
                            vec![REBIND_PUBLIC]
                        } else {
                            vec![Ipv4Addr::LOCALHOST]
                        }
                    }
                    _ => vec![],
                };
                let v6: Vec<Ipv6Addr> = match (name.as_str(), q.query_type()) {
                    ("ula.patchbay.test.", RecordType::AAAA) => {
                        vec!["fd00:ec2::254".parse().unwrap()]
                    }
                    ("mapped.patchbay.test.", RecordType::AAAA) => {
                        vec!["::ffff:127.0.0.1".parse().unwrap()]
                    }
                    _ => vec![],
                };
                let owner = Name::from_ascii(&name).unwrap();
                for ip in v4 {
                    reply.add_answer(Record::from_rdata(owner.clone(), 0, RData::A(A(ip))));
                }
                for ip in v6 {
                    reply.add_answer(Record::from_rdata(owner.clone(), 0, RData::AAAA(AAAA(ip))));
                }
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    addr
}

/// The local address of every connection to `port`, on any local address (the public one of
/// the rebinding names, or loopback): one dual-stack listener on `[::]` takes IPv4 (as mapped
/// addresses) and IPv6 alike.
async fn reached(port: u16) -> Arc<std::sync::Mutex<Vec<std::net::IpAddr>>> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
        .await
        .unwrap();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(local) = stream.local_addr() {
                record.lock().unwrap().push(local.ip().to_canonical());
            }
            drop(stream);
        }
    });
    seen
}

/// An HTTP server that redirects everything to the cloud metadata address.
async fn redirector() -> SocketAddr {
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::FOUND,
            [("location", "http://169.254.169.254/latest/meta-data/")],
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.3:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

const TARGETS: &[&str] = &[
    "127.0.0.1",
    "127.0.0.2",
    "127.255.255.254",
    "localhost",
    "0.0.0.0",
    "0",
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.254",
    "100.64.0.1",
    "100.127.255.254",
    "169.254.169.254",
    "169.254.0.1",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:2]",
    "[::ffff:169.254.169.254]",
    "[::ffff:10.0.0.1]",
    "[fd00:ec2::254]",
    "[fc00::1]",
    "[fe80::1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:7f00:1::1]",
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
    "[::127.0.0.1]",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "0177.0.0.1",
    "127.1",
    "0x7f.0.0.1",
    "2852039166",
    "224.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.0.1",
    "loop.patchbay.test",
    "meta.patchbay.test",
    "private.patchbay.test",
    "ula.patchbay.test",
    "mapped.patchbay.test",
    "mixed.patchbay.test",
];

const KINDS: &[&str] = &["http", "webhook", "mcp", "database", "mssql", "smtp"];

fn connection(kind: &str, host: &str, port: u16) -> CreateConnection {
    let v: Value = match kind {
        "http" => {
            json!({"kind": "http", "auth": {"type": "bearer"}, "config": {"base_url": format!("http://{host}:{port}/")}, "secrets": {"token": "hostile-token"}})
        }
        "webhook" => {
            json!({"kind": "webhook", "config": {"url": format!("http://{host}:{port}/hook")}})
        }
        "mcp" => {
            json!({"kind": "mcp", "config": {"server_url": format!("http://{host}:{port}/mcp")}})
        }
        "database" => {
            json!({"kind": "database", "config": {"driver": "postgresql", "host": host, "port": port, "database": "x", "username": "u"}, "secrets": {"password": "hostile-password"}})
        }
        "mssql" => {
            json!({"kind": "database", "config": {"driver": "mssql", "host": host, "port": port, "database": "x", "username": "sa"}, "secrets": {"password": "hostile-password"}})
        }
        "smtp" => {
            json!({"kind": "smtp", "config": {"host": host, "port": port, "encryption": "none", "from_address": "a@example.com"}})
        }
        other => panic!("no hostile connection of kind {other}"),
    };
    let mut v = v;
    v["name"] = json!(format!(
        "{kind} to {}",
        host.trim_matches(['[', ']']).replace(':', ".")
    ));
    serde_json::from_value(v).unwrap()
}

fn tweak(allow: Vec<&'static str>, dns: SocketAddr) -> Tweak {
    Arc::new(move |s| {
        s.egress.allow_net = allow.iter().map(|n| n.parse().unwrap()).collect();
        s.egress.dns_servers = vec![dns];
        s.limits.test_rate_per_minute = 0;
        s.egress.test_timeout = Duration::from_secs(3);
    })
}

async fn run(app: &TestApp, kind: &str, host: &str, port: u16) -> TestResult {
    app.admin
        .test_unsaved(&connection(kind, host, port))
        .await
        .unwrap_or_else(|e| panic!("{kind} {host}: {e}"))
}

async fn hostile_targets() {
    let port = 47_319;
    let canary = reached(port).await;
    let hits = || canary.lock().unwrap().len();
    let dns = dns_server().await;
    let redirect = redirector().await;

    // No allowance but the redirector's own address.
    let app = TestApp::spawn_with(Backend::Sqlite, Some(tweak(vec!["127.0.0.3/32"], dns))).await;
    let mut tried = 0;
    for host in TARGETS {
        for kind in KINDS {
            let r = run(&app, kind, host, port).await;
            assert_eq!(
                r.error_kind,
                Some(ErrorKind::Blocked),
                "{kind} to {host} was not blocked: {r:?}"
            );
            assert!(
                !r.message.contains("hostile-"),
                "a secret in a message: {r:?}"
            );
            tried += 1;
        }
    }
    // A redirect into a denied range is blocked at the hop.
    for kind in ["http", "webhook"] {
        let r = run(&app, kind, &redirect.ip().to_string(), redirect.port()).await;
        assert_eq!(
            r.error_kind,
            Some(ErrorKind::Blocked),
            "{kind} followed a redirect to the metadata address: {r:?}"
        );
        tried += 1;
    }
    // An MCP server's redirects are not followed at all (its credentials stay with its URL).
    let r = run(&app, "mcp", &redirect.ip().to_string(), redirect.port()).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Protocol), "{r:?}");
    assert!(r.message.contains("redirect"), "{r:?}");
    tried += 1;
    // DNS rebinding: a name that answers public to its first query and loopback afterwards.
    // Whatever a kind resolves, the address it connects to is one the gate checked: the
    // public answer (pinned), or a block — never loopback. Asked again, the name answers only
    // loopback, and every kind is blocked.
    let rebind_port = 47_320;
    let rebind_reached = reached(rebind_port).await;
    for kind in KINDS {
        let name = format!("rebind-{kind}.patchbay.test");
        let before = rebind_reached.lock().unwrap().len();
        let r = run(&app, kind, &name, rebind_port).await;
        let now: Vec<_> = rebind_reached.lock().unwrap()[before..].to_vec();
        assert!(
            now.iter()
                .all(|ip| *ip == std::net::IpAddr::V4(REBIND_PUBLIC)),
            "{kind} via a rebinding name connected to {now:?}: {r:?}"
        );
        assert!(
            r.error_kind == Some(ErrorKind::Blocked) || !now.is_empty(),
            "{kind} via a rebinding name neither went to the checked address nor was blocked: {r:?}"
        );
        assert!(!r.success, "{kind} via a rebinding name: {r:?}");
        let again = run(&app, kind, &name, rebind_port).await;
        assert_eq!(
            again.error_kind,
            Some(ErrorKind::Blocked),
            "{kind} via a name now answering loopback: {again:?}"
        );
        tried += 2;
    }
    assert!(
        rebind_reached
            .lock()
            .unwrap()
            .iter()
            .all(|ip| *ip == std::net::IpAddr::V4(REBIND_PUBLIC)),
        "a rebinding name reached loopback"
    );
    assert!(tried >= 40 * KINDS.len());
    assert_eq!(hits(), 0, "a blocked target was connected to");
    let blocked = app
        .admin
        .audit("action=egress.blocked&limit=5")
        .await
        .unwrap();
    assert_eq!(blocked.items.len(), 5, "blocked attempts are audited");

    // The operator opens every range: nothing is blocked, loopback targets reach the canary.
    let open =
        TestApp::spawn_with(Backend::Sqlite, Some(tweak(vec!["0.0.0.0/0", "::/0"], dns))).await;
    for host in TARGETS {
        for kind in KINDS {
            let before = hits();
            let r = run(&open, kind, host, port).await;
            assert_ne!(
                r.error_kind,
                Some(ErrorKind::Blocked),
                "{kind} to {host} is allow-listed: {r:?}"
            );
            if [
                "127.0.0.1",
                "localhost",
                "[::1]",
                "2130706433",
                "0x7f000001",
                "loop.patchbay.test",
            ]
            .contains(host)
            {
                assert!(
                    hits() > before,
                    "{kind} to {host} should reach the canary: {r:?}"
                );
            }
        }
    }
    let r = run(&open, "http", &redirect.ip().to_string(), redirect.port()).await;
    assert_ne!(r.error_kind, Some(ErrorKind::Blocked), "{r:?}");
}

/// Enters a fresh network namespace with only loopback up, then runs the test in it.
#[test]
fn hostile_targets_are_blocked_for_every_kind_and_allowed_by_the_operator() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("a network namespace of its own (the test runs as root, as CI does)");
    let up = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("ip");
    assert!(up.success());
    let routes = std::process::Command::new("ip")
        .args(["-4", "route", "show", "table", "main"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&routes.stdout).trim().is_empty(),
        "no route leaves this namespace"
    );
    // The rebinding names' public answer, local to the namespace so that reaching it is seen.
    let public = std::process::Command::new("ip")
        .args(["addr", "add", &format!("{REBIND_PUBLIC}/32"), "dev", "lo"])
        .status()
        .expect("ip");
    assert!(public.success());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(hostile_targets());
}
