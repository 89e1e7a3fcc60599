//! Key rotation: add a data-key version, then re-encrypt every stored ciphertext onto it in
//! batches while the server keeps serving. No plaintext ever leaves this module.

use patchbay_domain::Principal;
use patchbay_domain::api::{KeyVersion, KeysStatus, RotationProgress};
use patchbay_store::{CiphertextRef, VaultKeyRow};
use patchbay_vault::{generate_data_key, wrap_data_key};

use crate::admin::require_operator;
use crate::admin::unwrap_all;
use crate::connections::field_aad;
use crate::{EngineError, Hub, Result};

const BATCH: i64 = 500;

/// The lease a running rotation holds, and how long one batch may take before another replica
/// may take over.
const ROTATION_LEASE: &str = "rotation";
const LEASE_FOR: std::time::Duration = std::time::Duration::from_secs(120);

impl Hub {
    pub async fn keys_status(&self, p: &Principal) -> Result<KeysStatus> {
        require_operator(p)?;
        let counts = self.store().ciphertexts_by_version().await?;
        let versions = self
            .store()
            .vault_keys()
            .await?
            .into_iter()
            .map(|k| KeyVersion {
                version: k.version,
                created_at: k.created_at,
                rows: counts
                    .iter()
                    .find(|(v, _)| *v == k.version)
                    .map_or(0, |(_, n)| *n),
            })
            .collect();
        let ring = self.vault().keyring().ok();
        Ok(KeysStatus {
            sealed: ring.is_none(),
            current_version: ring.map(|r| i64::from(r.current_version())),
            versions,
            rotation: self.store().latest_rotation().await?,
        })
    }

    /// Starts a rotation in the background and returns its first progress report.
    pub async fn rotate_keys(&self, p: &Principal) -> Result<RotationProgress> {
        require_operator(p)?;
        let root = self.inner.core.root.as_ref().ok_or_else(|| {
            EngineError::Sealed(
                "the vault is sealed: keys cannot be rotated without the master key".into(),
            )
        })?;
        // One rotation at a time across replicas: the lease is renewed by every batch, and
        // runs out (letting a new rotation start) when the replica running it died.
        // Each rotation holds the lease under a name of its own, so a second one asked of
        // this same process is refused too.
        let holder = format!("{:x}", rand::random::<u64>());
        if !self.hold_rotation(&holder).await? {
            return Err(EngineError::Conflict(
                "a key rotation is already running".into(),
            ));
        }
        let progress = match self.add_key_version(p, root).await {
            Ok(progress) => progress,
            Err(e) => {
                self.release_rotation(&holder).await;
                return Err(e);
            }
        };
        let started = progress.clone();
        let hub = self.clone();
        let actor = p.clone();
        let next = progress.target_version;
        // Off the serving thread that took the request: re-encryption takes a while.
        self.spawn_background(async move {
            let mut progress = progress;
            let outcome = hub.reencrypt_all(&mut progress, &holder).await;
            progress.finished = true;
            progress.error = outcome.as_ref().err().map(|e| e.to_string());
            if let Err(e) = hub.store().put_rotation(&progress, hub.now()).await {
                tracing::error!(error = %e, "could not record the end of a key rotation");
            }
            hub.release_rotation(&holder).await;
            let (result, details) = match &outcome {
                Ok(n) => ("success", serde_json::json!({"reencrypted": n})),
                Err(e) => ("failure", serde_json::json!({"error": e.to_string()})),
            };
            let event = hub.core().event(
                &actor,
                "keys.rotate",
                Some(format!("key:{next}")),
                result,
                details,
            );
            if let Err(e) = hub.core().audit(event).await {
                tracing::error!(error = %e, "could not audit the end of a key rotation");
            }
        });
        Ok(started)
    }

    /// Adds the next data-key version (audited) and records the rotation onto it as started.
    async fn add_key_version(
        &self,
        p: &Principal,
        root: &patchbay_vault::RootKey,
    ) -> Result<RotationProgress> {
        let rows = self.store().vault_keys().await?;
        let next = rows.last().map_or(1, |r| r.version + 1);
        let key = generate_data_key();
        let version = u32::try_from(next)
            .map_err(|_| EngineError::Internal("key version overflow".into()))?;
        let row = VaultKeyRow {
            version: next,
            wrapped: wrap_data_key(root, version, &key)?,
            root_fingerprint: root.fingerprint(),
            created_at: self.now(),
        };
        let mut w = self.write().await?;
        w.insert_vault_key(&row).await?;
        w.audit(self.core().event(
            p,
            "keys.rotate",
            Some(format!("key:{next}")),
            "started",
            serde_json::json!({}),
        ));
        w.commit().await?;
        self.reload_keys().await?;
        let total: i64 = self
            .store()
            .ciphertexts_by_version()
            .await?
            .iter()
            .filter(|(v, _)| *v != next)
            .map(|(_, n)| n)
            .sum();
        let progress = RotationProgress {
            target_version: next,
            done: 0,
            total,
            finished: false,
            error: None,
        };
        self.store().put_rotation(&progress, self.now()).await?;
        Ok(progress)
    }

    /// Takes or renews the rotation lease for `holder`.
    async fn hold_rotation(&self, holder: &str) -> Result<bool> {
        Ok(self
            .core()
            .lease(ROTATION_LEASE, Some(holder), LEASE_FOR)
            .await?)
    }

    /// Lets the next rotation start at once (the lease would otherwise run out by itself).
    async fn release_rotation(&self, holder: &str) {
        if let Err(e) = self.core().release(ROTATION_LEASE, holder).await {
            tracing::warn!(error = %e, "could not release the rotation lease");
        }
    }

    /// Re-reads the wrapped data keys (after this or another replica added one).
    pub async fn reload_keys(&self) -> Result<()> {
        let Some(root) = self.inner.core.root.as_ref() else {
            return Ok(());
        };
        let ring = unwrap_all(root, &self.store().vault_keys().await?)?;
        self.vault().install(ring);
        Ok(())
    }

    /// Opens a ciphertext; one sealed with a key version this process has not loaded yet
    /// (another replica rotated) triggers one reload of the keyring.
    pub(crate) async fn open_ciphertext(
        &self,
        aad: &patchbay_vault::Aad<'_>,
        ciphertext: &[u8],
    ) -> std::result::Result<zeroize::Zeroizing<Vec<u8>>, patchbay_vault::VaultError> {
        match self.vault().open(aad, ciphertext) {
            Err(patchbay_vault::VaultError::UnknownKeyVersion(v)) => {
                if let Err(e) = self.reload_keys().await {
                    tracing::warn!(error = %e, version = v, "could not reload the keyring");
                }
                self.vault().open(aad, ciphertext)
            }
            other => other,
        }
    }

    async fn reencrypt_all(&self, progress: &mut RotationProgress, holder: &str) -> Result<i64> {
        let target = progress.target_version;
        let mut done = 0;
        loop {
            let batch = self.store().stale_ciphertexts(target, BATCH).await?;
            if batch.is_empty() {
                return Ok(done);
            }
            let ring = self.vault().keyring()?;
            let mut w = self.write().await?;
            for item in &batch {
                let (org, object, field, ciphertext) = match item {
                    CiphertextRef::Connection {
                        org_id,
                        connection_id,
                        field,
                        ciphertext,
                    } => (
                        org_id.as_str(),
                        connection_id.clone(),
                        field.as_str(),
                        ciphertext,
                    ),
                    CiphertextRef::Secret {
                        org_id,
                        secret_id,
                        ciphertext,
                    } => (
                        org_id.as_str(),
                        format!("secret:{secret_id}"),
                        "value",
                        ciphertext,
                    ),
                    CiphertextRef::App {
                        org_id,
                        app_id,
                        ciphertext,
                    } => (
                        org_id.as_str(),
                        format!("app:{app_id}"),
                        "client_secret",
                        ciphertext,
                    ),
                    CiphertextRef::Delivery {
                        org_id,
                        delivery_id,
                        ciphertext,
                    } => (
                        org_id.as_str(),
                        format!("delivery:{delivery_id}"),
                        "payload",
                        ciphertext,
                    ),
                    CiphertextRef::Column {
                        org_id,
                        object,
                        field,
                        ciphertext,
                        ..
                    } => (org_id.as_str(), object.clone(), *field, ciphertext),
                };
                // Every binding is (org, object, field): secrets use the field "value".
                let aad = field_aad(org, &object, field);
                let plain = ring.open(&aad, ciphertext).map_err(|e| {
                    EngineError::Integrity(format!(
                        "rotation stopped: {object} field {field:?} does not decrypt ({e})"
                    ))
                })?;
                let sealed = ring.seal(&aad, &plain)?;
                w.replace_ciphertext(item, sealed, target).await?;
            }
            w.commit().await?;
            done += batch.len() as i64;
            progress.total = progress.total.max(done);
            progress.done = done;
            self.store().put_rotation(progress, self.now()).await?;
            if !self.hold_rotation(holder).await? {
                return Err(EngineError::Conflict(
                    "the rotation's lease was taken over by another replica".into(),
                ));
            }
        }
    }
}
