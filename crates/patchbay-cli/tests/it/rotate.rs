//! `patchbay keys rotate` over 10,000 connections: progress is printed, every ciphertext ends
//! on the new key version, and every secret still opens.

use std::sync::Arc;

use patchbay_domain::api::CreateConnection;
use patchbay_engine::{EngineSettings, Hub, KeyChoice, SystemClock};
use patchbay_store::Store;
use patchbay_vault::RootKey;
use serde_json::json;
use sqlx::Row;

use crate::server::{Server, run_ok};

const CONNECTIONS: usize = 10_000;

async fn hub(data: &std::path::Path) -> Hub {
    let store = Store::open(&Store::sqlite_url(&data.join("patchbay.db")))
        .await
        .unwrap();
    let key = RootKey::load_file(&data.join("master.key")).unwrap();
    Hub::start(
        store,
        KeyChoice::Key(key),
        Arc::new(SystemClock),
        EngineSettings::standard().unwrap(),
    )
    .await
    .unwrap()
    .hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_ten_thousand_connections_keeps_every_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // First run creates the store, the key file and the token the CLI will use.
    let mut first = Server::start(&data, &[], &[]);
    let token = first.token.clone().unwrap();
    first.stop();

    let seeding = hub(&data).await;
    let admin = seeding.authenticate(&token).await.unwrap();
    for i in 0..CONNECTIONS {
        let body: CreateConnection = serde_json::from_value(json!({
            "name": format!("c{i}"), "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": "https://api.example.com"}, "secrets": {"token": format!("secret-{i}")}
        }))
        .unwrap();
        seeding.create_connection(&admin, body).await.unwrap();
    }
    seeding.store().close().await;
    drop(seeding);

    let mut server = Server::start(&data, &[], &[]);
    let data2 = data.clone();
    let out = tokio::task::spawn_blocking(move || run_ok(&data2, &["keys", "rotate"], None))
        .await
        .unwrap();
    assert!(out.contains("progress: "), "no progress printed:\n{out}");
    assert!(
        out.contains(&format!("rotated: {CONNECTIONS} ciphertexts now on key v2")),
        "{out}"
    );
    let status = run_ok(&data, &["keys", "status", "--json"], None);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["current_version"], 2);
    server.stop();

    let check = hub(&data).await;
    let pool = sqlx::AnyPool::connect(&Store::sqlite_url(&data.join("patchbay.db")))
        .await
        .unwrap();
    let stale: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM connection_secrets WHERE key_version <> 2")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
    assert_eq!(stale, 0);
    let admin = check.authenticate(&token).await.unwrap();
    let mut cursor: Option<String> = None;
    let mut opened = 0;
    loop {
        let q = patchbay_engine::ListQuery {
            limit: Some(200),
            cursor: cursor.clone(),
            ..Default::default()
        };
        let page = check.list_connections(&admin, q).await.unwrap();
        for c in &page.items {
            let creds = check.credentials(&admin, &c.id).await.unwrap();
            let n = c.name.as_str().trim_start_matches('c');
            assert_eq!(creds.secrets["token"], format!("secret-{n}"));
            opened += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(opened, CONNECTIONS);
}
