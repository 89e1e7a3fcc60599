use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use patchbay_domain::connection::Connection;
use patchbay_domain::{
    ConnectionId, Kind, Name, OrgId, ProjectId, Role, Status, TestStatus, TokenId,
};
use patchbay_store::{
    AuditFilter, ChainHeads, CiphertextRef, ConnectionFilter, GROUP_MAX, NewAudit, NewConnection,
    NewToken, OrgRecord, ProjectRecord, SecretRecord, SecretRow, Store, StoreError, TokenRecord,
    VaultKeyRow,
};
use serde_json::json;

use crate::{Backend, conformance, fresh};

async fn org_with_project(store: &Store, name: &str) -> (OrgId, ProjectId) {
    let now = Utc::now();
    let org = OrgRecord {
        id: OrgId::generate(),
        name: name.into(),
        created_at: now,
    };
    let project = ProjectRecord {
        id: ProjectId::generate(),
        org_id: org.id.clone(),
        name: "default".into(),
        description: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        version: 1,
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_org(&org).await.unwrap();
    tx.insert_project(&project).await.unwrap();
    tx.commit().await.unwrap();
    (org.id, project.id)
}

fn connection(org: &OrgId, project: &ProjectId, name: &str, kind: Kind) -> Connection {
    let now = Utc::now();
    Connection {
        id: ConnectionId::generate(),
        org_id: Some(org.clone()),
        project: project.clone(),
        name: Name::parse(name).unwrap(),
        kind,
        provider: "custom".into(),
        auth: json!({"type": "bearer"}).as_object().unwrap().clone(),
        config: json!({"base_url": "https://x.example"})
            .as_object()
            .unwrap()
            .clone(),
        secrets: BTreeMap::new(),
        status: Status::Active,
        test_status: TestStatus::Untested,
        test_message: None,
        test_latency_ms: None,
        last_tested_at: None,
        last_used_at: None,
        used_by: vec![],
        oauth: None,
        mcp: None,
        stale: false,
        created_by: "test".into(),
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn sealed(field: &str, bytes: &[u8], version: i64) -> SecretRow {
    SecretRow {
        field: field.into(),
        key_version: Some(version),
        ciphertext: Some(bytes.to_vec()),
        secret_ref: None,
    }
}

async fn insert(
    store: &Store,
    org: &OrgId,
    c: &Connection,
    secrets: Vec<SecretRow>,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.insert_connection(&NewConnection {
        org_id: org.clone(),
        connection: c.clone(),
        secrets,
    })
    .await?;
    tx.commit().await
}

async fn orgs_and_projects(backend: Backend) {
    let (store, _dir) = fresh(backend).await;
    assert_eq!(store.count_orgs().await.unwrap(), 0);
    let (org, project) = org_with_project(&store, "acme").await;
    assert_eq!(store.get_org(&org).await.unwrap().unwrap().name, "acme");
    assert!(store.get_org(&OrgId::generate()).await.unwrap().is_none());
    // Organization names are unique.
    let mut tx = store.begin().await.unwrap();
    let dup = tx
        .insert_org(&OrgRecord {
            id: OrgId::generate(),
            name: "acme".into(),
            created_at: Utc::now(),
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    drop(tx);
    assert_eq!(store.list_orgs().await.unwrap().len(), 1);
    // Project names are unique among live projects; soft delete frees the name.
    let mut p = store.find_project(&org, "default").await.unwrap().unwrap();
    assert_eq!(p.id, project);
    let mut tx = store.begin().await.unwrap();
    let mut second = p.clone();
    second.id = ProjectId::generate();
    assert!(matches!(
        tx.insert_project(&second).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);
    p.description = Some("changed".into());
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.update_project(&p, Some(7)).await,
        Err(StoreError::VersionMismatch)
    ));
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.update_project(&p, Some(1)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .get_project(&org, &project)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    let mut tx = store.begin().await.unwrap();
    second.name = "other".into();
    tx.insert_project(&second).await.unwrap();
    tx.delete_project(&org, &second.id, Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(store.get_project(&org, &second.id).await.unwrap().is_none());
    assert_eq!(store.list_projects(&org).await.unwrap().len(), 1);
    // Another organization sees none of it.
    let (other, _) = org_with_project(&store, "other").await;
    assert!(store.get_project(&other, &project).await.unwrap().is_none());
}

async fn tokens_by_hash(backend: Backend) {
    let (store, _dir) = fresh(backend).await;
    let (org, project) = org_with_project(&store, "acme").await;
    let record = TokenRecord {
        id: TokenId::generate(),
        org_id: org.clone(),
        name: "ci".into(),
        role: Role::Executor,
        project_id: Some(project.clone()),
        operator: false,
        hint: "pb_abcd…".into(),
        created_by: "test".into(),
        created_at: Utc::now(),
        last_used_at: None,
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_token(&NewToken {
        record: record.clone(),
        hash: vec![7; 32],
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let found = store.token_by_hash(&[7; 32]).await.unwrap().unwrap();
    assert_eq!(
        (found.role, found.project_id.clone(), found.operator),
        (Role::Executor, Some(project), false)
    );
    assert!(store.token_by_hash(&[8; 32]).await.unwrap().is_none());
    store.touch_token(&record.id, Utc::now()).await.unwrap();
    assert!(
        store.list_tokens(&org).await.unwrap()[0]
            .last_used_at
            .is_some()
    );
    let mut tx = store.begin().await.unwrap();
    tx.revoke_token(&org, &record.id, Utc::now()).await.unwrap();
    assert!(matches!(
        tx.revoke_token(&org, &record.id, Utc::now()).await,
        Err(StoreError::NotFound)
    ));
    tx.commit().await.unwrap();
    assert!(store.token_by_hash(&[7; 32]).await.unwrap().is_none());
}

async fn connections_and_their_secrets(backend: Backend) {
    let (store, _dir) = fresh(backend).await;
    let (org, project) = org_with_project(&store, "acme").await;
    let c = connection(&org, &project, "api", Kind::Http);
    insert(&store, &org, &c, vec![sealed("token", b"ct-1", 1)])
        .await
        .unwrap();
    let read = store.get_connection(&org, &c.id).await.unwrap().unwrap();
    assert_eq!(read.name, c.name);
    assert_eq!(read.auth, c.auth);
    assert!(read.secrets["token"].set);
    let rows = store.connection_secrets(&org, &c.id).await.unwrap();
    assert_eq!(rows[0].ciphertext.as_deref(), Some(b"ct-1".as_slice()));
    // Same name in the same project conflicts.
    let dup = connection(&org, &project, "api", Kind::Smtp);
    assert!(matches!(
        insert(&store, &org, &dup, vec![]).await,
        Err(StoreError::Conflict(_))
    ));
    // Another organization can't read it.
    let (other, _) = org_with_project(&store, "other").await;
    assert!(store.get_connection(&other, &c.id).await.unwrap().is_none());
    assert!(
        store
            .connection_secrets(&other, &c.id)
            .await
            .unwrap()
            .is_empty()
    );
    // Updates check the version, put and remove secret fields.
    let mut changed = read.clone();
    changed.config.insert("timeout_ms".into(), json!(10));
    let mut tx = store.begin().await.unwrap();
    let locked = tx.lock_connection(&org, &c.id).await.unwrap().unwrap();
    assert_eq!(locked.version, 1);
    assert!(matches!(
        tx.update_connection(&org, &changed, 5, &[], &[]).await,
        Err(StoreError::VersionMismatch)
    ));
    tx.update_connection(
        &org,
        &changed,
        1,
        &[sealed("password", b"ct-2", 1)],
        &["token".into()],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let read = store.get_connection(&org, &c.id).await.unwrap().unwrap();
    assert_eq!(read.version, 2);
    assert_eq!(read.config["timeout_ms"], 10);
    assert_eq!(read.secrets.keys().collect::<Vec<_>>(), vec!["password"]);
    // Deleting hides the row and destroys its ciphertexts.
    let mut tx = store.begin().await.unwrap();
    tx.delete_connection(&org, &c.id, Status::Active, Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(store.get_connection(&org, &c.id).await.unwrap().is_none());
    insert(&store, &org, &dup, vec![])
        .await
        .expect("name reusable after delete");
}

async fn listing_filters_and_pages(backend: Backend) {
    let (store, _dir) = fresh(backend).await;
    let (org, project) = org_with_project(&store, "acme").await;
    for i in 0..25 {
        let kind = if i % 5 == 0 {
            Kind::Database
        } else {
            Kind::Http
        };
        insert(
            &store,
            &org,
            &connection(&org, &project, &format!("c{i:02}"), kind),
            vec![sealed("token", b"x", 1)],
        )
        .await
        .unwrap();
    }
    let all = ConnectionFilter::default();
    let (first, next) = store.list_connections(&org, &all, None, 10).await.unwrap();
    assert_eq!(first.len(), 10);
    assert!(
        first.iter().all(|c| c.secrets.contains_key("token")),
        "secret states come with a page"
    );
    let (second, next2) = store
        .list_connections(&org, &all, next.as_ref(), 10)
        .await
        .unwrap();
    let (third, end) = store
        .list_connections(&org, &all, next2.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!((second.len(), third.len(), end), (10, 5, None));
    let names: Vec<_> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(
        names,
        (0..25).map(|i| format!("c{i:02}")).collect::<Vec<_>>()
    );
    let dbs = ConnectionFilter {
        kind: Some(Kind::Database),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_connections(&org, &dbs, None, 100)
            .await
            .unwrap()
            .0
            .len(),
        5
    );
    let none = ConnectionFilter {
        status: Some(Status::Expired),
        ..Default::default()
    };
    assert!(
        store
            .list_connections(&org, &none, None, 100)
            .await
            .unwrap()
            .0
            .is_empty()
    );
    assert_eq!(store.count_connections().await.unwrap(), 25);
}

async fn org_secrets(backend: Backend) {
    let (store, _dir) = fresh(backend).await;
    let (org, project) = org_with_project(&store, "acme").await;
    let now = Utc::now();
    let mut s = SecretRecord {
        id: patchbay_domain::SecretId::generate(),
        org_id: org.clone(),
        name: "stripe".into(),
        description: Some("d".into()),
        key_version: 1,
        ciphertext: b"v1".to_vec(),
        projects: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = store.begin().await.unwrap();
    assert!(tx.put_secret(&s).await.unwrap(), "created");
    assert_eq!(
        tx.secret_id(&org, "stripe").await.unwrap(),
        Some(s.id.clone())
    );
    s.ciphertext = b"v2".to_vec();
    s.description = None;
    s.projects = Some(vec![project.to_string()]);
    assert!(!tx.put_secret(&s).await.unwrap(), "replaced");
    assert_eq!(
        tx.secret_id(&org, "stripe").await.unwrap(),
        Some(s.id.clone())
    );
    tx.commit().await.unwrap();
    let got = store.get_secret(&org, "stripe").await.unwrap().unwrap();
    assert_eq!(
        (got.ciphertext.as_slice(), got.description.as_deref()),
        (b"v2".as_slice(), Some("d"))
    );
    assert_eq!(got.projects, Some(vec![project.to_string()]));
    // A referenced secret can't be deleted.
    let c = connection(&org, &project, "uses", Kind::Http);
    let reference = SecretRow {
        field: "token".into(),
        key_version: None,
        ciphertext: None,
        secret_ref: Some("stripe".into()),
    };
    insert(&store, &org, &c, vec![reference]).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.delete_secret(&org, "stripe", now).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.delete_connection(&org, &c.id, Status::Active, now)
        .await
        .unwrap();
    tx.delete_secret(&org, "stripe", now).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.get_secret(&org, "stripe").await.unwrap().is_none());
    assert!(store.list_secrets(&org).await.unwrap().is_empty());
}

async fn key_inventory_and_compare_and_swap(backend: Backend) {
    let (store, _dir) = fresh(backend).await;
    let (org, project) = org_with_project(&store, "acme").await;
    let mut tx = store.begin().await.unwrap();
    for v in [1, 2] {
        tx.insert_vault_key(&VaultKeyRow {
            version: v,
            wrapped: vec![v as u8; 8],
            root_fingerprint: "fp".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(store.vault_keys().await.unwrap().len(), 2);
    for i in 0..3 {
        insert(
            &store,
            &org,
            &connection(&org, &project, &format!("k{i}"), Kind::Http),
            vec![sealed("token", &[i], 1)],
        )
        .await
        .unwrap();
    }
    assert_eq!(store.ciphertexts_by_version().await.unwrap(), vec![(1, 3)]);
    let stale = store.stale_ciphertexts(2, 100).await.unwrap();
    assert_eq!(stale.len(), 3);
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.replace_ciphertext(&stale[0], b"new".to_vec(), 2)
            .await
            .unwrap()
    );
    // A ciphertext that changed since it was read is left alone.
    let CiphertextRef::Connection {
        org_id,
        connection_id,
        field,
        ..
    } = stale[1].clone()
    else {
        panic!()
    };
    let changed = CiphertextRef::Connection {
        org_id,
        connection_id,
        field,
        ciphertext: b"not what is stored".to_vec(),
    };
    assert!(
        !tx.replace_ciphertext(&changed, b"new".to_vec(), 2)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store.ciphertexts_by_version().await.unwrap(),
        vec![(1, 2), (2, 1)]
    );
    assert_eq!(
        store.stale_ciphertexts(2, 1).await.unwrap().len(),
        1,
        "limit is honoured"
    );
}

async fn audit_chain(backend: Backend) {
    let (store, _dir) = fresh(backend).await;
    let (org, _) = org_with_project(&store, "acme").await;
    let (other, _) = org_with_project(&store, "other").await;
    let start = Utc::now() - Duration::seconds(5);
    for i in 0..6 {
        let which = if i % 2 == 0 { &org } else { &other };
        let mut tx = store.begin().await.unwrap();
        tx.append_audit(&NewAudit {
            org_id: which.clone(),
            at: Utc::now(),
            actor: format!("token:{}", i % 3),
            action: if i < 4 {
                "connection.create".into()
            } else {
                "connection.delete".into()
            },
            target: Some(format!("con_{i}")),
            outcome: "success".into(),
            details: json!({"i": i}),
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(store.verify_audit(&org).await.unwrap(), (3, None));
    assert_eq!(store.verify_audit(&other).await.unwrap(), (3, None));
    // A group of entries of two organizations in one transaction carries both chains on.
    let (g1, _) = org_with_project(&store, "grouped-1").await;
    let (g2, _) = org_with_project(&store, "grouped-2").await;
    for (o, n) in [(&g1, 2), (&g2, 1)] {
        for i in 0..n {
            let mut tx = store.begin().await.unwrap();
            tx.append_audit(&NewAudit {
                org_id: o.clone(),
                at: Utc::now(),
                actor: "token:g".into(),
                action: "connection.create".into(),
                target: Some(format!("con_s{i}")),
                outcome: "success".into(),
                details: json!({}),
            })
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    }
    let grouped: Vec<NewAudit> = (0..5)
        .map(|i| NewAudit {
            org_id: if i % 2 == 0 { g1.clone() } else { g2.clone() },
            at: Utc::now(),
            actor: "token:g".into(),
            action: "action.mcp".into(),
            target: Some(format!("con_g{i}")),
            outcome: "success".into(),
            details: json!({"g": i}),
        })
        .collect();
    // Groups of one organization each: the first reads the chain's head, the second (its
    // head remembered) is one guarded statement on SQLite.
    let mut heads = ChainHeads::default();
    for o in [&g1, &g2, &g1] {
        let group: Vec<&NewAudit> = grouped.iter().filter(|e| &e.org_id == o).collect();
        store.append_audit_group(&group, &mut heads).await.unwrap();
    }
    assert_eq!(store.verify_audit(&g1).await.unwrap(), (8, None));
    assert_eq!(store.verify_audit(&g2).await.unwrap(), (3, None));
    // Another writer moved the chain on: the remembered head is refused, nothing is written
    // twice or forked, and the group is chained to the real head.
    let mut tx = store.begin().await.unwrap();
    tx.append_audit(&grouped[0]).await.unwrap();
    tx.commit().await.unwrap();
    let group: Vec<&NewAudit> = grouped.iter().filter(|e| e.org_id == g1).collect();
    store.append_audit_group(&group, &mut heads).await.unwrap();
    assert_eq!(store.verify_audit(&g1).await.unwrap(), (12, None));
    // A group mixing organizations, or larger than a statement carries, is refused whole.
    let mixed: Vec<&NewAudit> = grouped.iter().take(2).collect();
    assert!(store.append_audit_group(&mixed, &mut heads).await.is_err());
    let many: Vec<&NewAudit> = std::iter::repeat_n(&grouped[0], GROUP_MAX + 1).collect();
    assert!(store.append_audit_group(&many, &mut heads).await.is_err());
    assert_eq!(store.verify_audit(&g1).await.unwrap(), (12, None));
    assert_eq!(store.verify_audit(&g2).await.unwrap(), (3, None));
    let (page, next) = store
        .list_audit(&org, &AuditFilter::default(), None, 2)
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0].seq > page[1].seq, "newest first");
    let (rest, end) = store
        .list_audit(&org, &AuditFilter::default(), next, 2)
        .await
        .unwrap();
    assert_eq!((rest.len(), end), (1, None));
    let deletes = AuditFilter {
        action: Some("connection.delete".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_audit(&org, &deletes, None, 10)
            .await
            .unwrap()
            .0
            .len(),
        1
    );
    let later = AuditFilter {
        since: Some(Utc::now() + Duration::seconds(60)),
        ..Default::default()
    };
    assert!(
        store
            .list_audit(&org, &later, None, 10)
            .await
            .unwrap()
            .0
            .is_empty()
    );
    let since = AuditFilter {
        since: Some(start),
        actor: Some("token:0".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_audit(&org, &since, None, 10)
            .await
            .unwrap()
            .0
            .len(),
        1
    );
    assert!(store.ping().await.is_ok());
}

async fn leases(backend: Backend) {
    let (store, _dir) = fresh(backend).await;
    let t0 = Utc::now();
    let later = |s: i64| t0 + chrono::Duration::seconds(s);
    assert!(
        store.try_lease("retest", "a", t0, later(60)).await.unwrap(),
        "free: granted"
    );
    assert!(
        !store
            .try_lease("retest", "b", later(1), later(61))
            .await
            .unwrap(),
        "held by a"
    );
    assert!(
        store
            .try_lease("retest", "a", later(2), later(62))
            .await
            .unwrap(),
        "a renews"
    );
    assert!(
        store
            .try_lease("refresher", "b", later(2), later(62))
            .await
            .unwrap(),
        "another name"
    );
    assert!(
        !store
            .try_lease("retest", "b", later(61), later(121))
            .await
            .unwrap(),
        "renewed until 62"
    );
    assert!(
        store
            .try_lease("retest", "b", later(62), later(122))
            .await
            .unwrap(),
        "expired: b takes it"
    );
    assert!(
        !store
            .try_lease("retest", "a", later(63), later(123))
            .await
            .unwrap(),
        "now b's"
    );
}

conformance!(
    leases,
    orgs_and_projects,
    tokens_by_hash,
    connections_and_their_secrets,
    listing_filters_and_pages,
    org_secrets,
    key_inventory_and_compare_and_swap,
    audit_chain,
);
