//! Start-up: unseal the vault from the root key (creating the first data key on a new store),
//! and on the very first run create the `default` organization, its `default` project and the
//! operator's admin token.

use std::sync::{Arc, Mutex};

use patchbay_domain::{OrgId, ProjectId, Role};
use patchbay_store::{NewAudit, OrgRecord, ProjectRecord, Store, VaultKeyRow};
use patchbay_vault::{Keyring, RootKey, Vault, generate_data_key, unwrap_data_key, wrap_data_key};

use super::tokens;
use crate::core::{Caches, Clock, Core};
use crate::{Hub, Inner, Result};

/// The root key the operator configured, if any.
#[derive(Debug)]
pub enum KeyChoice {
    Key(RootKey),
    /// No key: the server starts sealed and says why.
    Missing(String),
}

/// What start-up found and did.
#[derive(Debug)]
pub struct Started {
    pub hub: Hub,
    /// The operator/admin token, printed once on the first run only.
    pub first_run_token: Option<String>,
    /// Why the vault is sealed, when it is.
    pub sealed: Option<String>,
}

impl Hub {
    pub async fn start(
        store: Store,
        key: KeyChoice,
        clock: Arc<dyn Clock>,
        settings: crate::EngineSettings,
    ) -> Result<Started> {
        let (vault, root) = open_vault(&store, key, clock.as_ref()).await?;
        let sealed = vault.sealed_reason();
        let prepared = Arc::new(crate::act::prepared_cache());
        let principals = Arc::new(super::principal_cache());
        let mcp = Arc::new(crate::mcp::SessionPool::new(crate::mcp::IDLE));
        let gateway = Arc::new(crate::mcp::GatewayCache::new());
        let caches = Caches::default()
            .with(prepared.clone())
            .with(principals.clone())
            .with(mcp.clone())
            .with(gateway.clone());
        let hub = Hub {
            inner: Arc::new(Inner {
                core: Core::new(store, vault, root, clock, caches),
                test_limiter: crate::connections::limiter(settings.test_rate_per_minute),
                tool_limiter: crate::connections::limiter(settings.tool_call_rate_per_minute),
                refresh_locks: Mutex::new(Default::default()),
                prepared,
                mcp,
                gateway,
                usage: Mutex::new(Default::default()),
                principals,
                outbox_wake: tokio::sync::Notify::new(),
                settings,
            }),
        };
        hub.core().listen_for_changes();
        let first_run_token = hub.first_run().await?;
        Ok(Started {
            hub,
            first_run_token,
            sealed,
        })
    }

    /// Creates the default organization and operator token when the store has no organization.
    async fn first_run(&self) -> Result<Option<String>> {
        if self.store().count_orgs().await? > 0 {
            return Ok(None);
        }
        let now = self.now();
        let org = OrgRecord {
            id: OrgId::generate(),
            name: "default".into(),
            created_at: now,
        };
        let mut w = self.write().await?;
        match w.insert_org(&org).await {
            // Another replica sharing the database ran the first run at the same moment.
            Err(patchbay_store::StoreError::Conflict(_)) => return Ok(None),
            other => other?,
        }
        w.insert_project(&ProjectRecord {
            id: ProjectId::generate(),
            org_id: org.id.clone(),
            name: "default".into(),
            description: Some("Created on first run".into()),
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 1,
        })
        .await?;
        let (value, new) = tokens::mint(
            &org.id,
            "operator",
            Role::Admin,
            None,
            true,
            "system:first-run",
            now,
        );
        w.insert_token(&new).await?;
        w.audit(NewAudit {
            org_id: org.id.clone(),
            at: now,
            actor: "system:first-run".into(),
            action: "org.create".into(),
            target: Some(org.id.to_string()),
            outcome: "success".into(),
            details: serde_json::json!({"name": "default", "operator_token": new.record.id}),
        });
        w.commit().await?;
        Ok(Some(value))
    }
}

async fn open_vault(
    store: &Store,
    key: KeyChoice,
    clock: &dyn Clock,
) -> Result<(Vault, Option<RootKey>)> {
    let rows = store.vault_keys().await?;
    let root = match key {
        KeyChoice::Key(root) => root,
        KeyChoice::Missing(why) => return Ok((Vault::sealed(why), None)),
    };
    if rows.is_empty() {
        let key = generate_data_key();
        let row = VaultKeyRow {
            version: 1,
            wrapped: wrap_data_key(&root, 1, &key)?,
            root_fingerprint: root.fingerprint(),
            created_at: clock.now(),
        };
        // Before the hub exists, so before anything can be audited or cached.
        store.add_vault_key(&row).await?;
        let ring = Keyring::new(vec![(1, key)])
            .ok_or_else(|| crate::EngineError::Internal("keyring".into()))?;
        return Ok((Vault::unsealed(ring), Some(root)));
    }
    match unwrap_all(&root, &rows) {
        Ok(ring) => Ok((Vault::unsealed(ring), Some(root))),
        Err(_) => {
            let expected = rows
                .last()
                .map(|r| r.root_fingerprint.clone())
                .unwrap_or_default();
            let why = format!(
                "the master key (fingerprint {}) is not the one this store was sealed with \
                 (fingerprint {expected})",
                root.fingerprint()
            );
            Ok((Vault::sealed(why), None))
        }
    }
}

pub(crate) fn unwrap_all(root: &RootKey, rows: &[VaultKeyRow]) -> Result<Keyring> {
    let mut keys = Vec::with_capacity(rows.len());
    for r in rows {
        let version = u32::try_from(r.version)
            .map_err(|_| crate::EngineError::Internal("key version".into()))?;
        keys.push((version, unwrap_data_key(root, version, &r.wrapped)?));
    }
    Keyring::new(keys).ok_or_else(|| crate::EngineError::Internal("empty keyring".into()))
}
