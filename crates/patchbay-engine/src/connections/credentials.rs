//! Decrypted credentials for executors: the one read path that returns secret values, audited
//! whether it succeeds or not.

use std::collections::BTreeMap;

use patchbay_domain::api::Credentials;
use patchbay_domain::{ConnectionId, Principal, ProjectId};

use crate::connections::field_aad;
use crate::{EngineError, Hub, Result};

impl Hub {
    pub async fn credentials(&self, p: &Principal, id: &ConnectionId) -> Result<Credentials> {
        let c = self.visible_connection(p, id).await?;
        if !p.can_read_credentials() {
            return Err(EngineError::forbidden(
                "reading credentials needs an executor or admin token",
            ));
        }
        let result = self.open_fields(p, id, &c.project).await;
        let (outcome, details) = match &result {
            Ok(s) => (
                "success",
                serde_json::json!({"fields": s.keys().collect::<Vec<_>>()}),
            ),
            Err(e) => ("failure", serde_json::json!({"error": e.to_string()})),
        };
        self.core()
            .audit(self.core().event(
                p,
                "connection.credentials.read",
                Some(id.to_string()),
                outcome,
                details,
            ))
            .await?;
        let secrets = result?;
        Ok(Credentials {
            connection: c.id.clone(),
            kind: c.kind,
            provider: c.provider.clone(),
            auth_type: c.auth_type(),
            auth: c.auth,
            config: c.config,
            secrets,
        })
    }

    /// Opens every secret field of a connection, resolving references.
    pub(crate) async fn open_fields(
        &self,
        p: &Principal,
        id: &ConnectionId,
        project: &ProjectId,
    ) -> Result<BTreeMap<String, String>> {
        let rows = self.store().connection_secrets(&p.org_id, id).await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let plain = match (&row.ciphertext, &row.secret_ref) {
                (Some(ct), _) => self
                    .open_ciphertext(&field_aad(p.org_id.as_str(), id.as_str(), &row.field), ct)
                    .await
                    .map_err(|e| match e {
                        patchbay_vault::VaultError::Sealed(_) => e.into(),
                        other => EngineError::Integrity(format!(
                            "secret field {:?} of connection {id} does not decrypt: {other}",
                            row.field
                        )),
                    })?,
                (None, Some(name)) => self.open_org_secret(p, name, project).await?,
                (None, None) => {
                    return Err(EngineError::Integrity(format!(
                        "secret field {:?} of connection {id} is empty",
                        row.field
                    )));
                }
            };
            let text = String::from_utf8(plain.to_vec()).map_err(|_| {
                EngineError::Integrity(format!("secret field {:?} is not UTF-8", row.field))
            })?;
            out.insert(row.field, text);
        }
        Ok(out)
    }
}
