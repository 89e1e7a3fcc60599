//! Reading and verifying the audit log (admins only).

use patchbay_domain::api::{AuditEvent, AuditVerification, Page};
use patchbay_domain::{Principal, ValidationErrors};
use patchbay_store::AuditFilter;

use crate::Hub;
use crate::Result;
use crate::admin::require_admin;
use crate::connections::MAX_PAGE;

impl Hub {
    pub async fn list_audit(
        &self,
        p: &Principal,
        filter: AuditFilter,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<AuditEvent>> {
        require_admin(p)?;
        let mut errs = ValidationErrors::new();
        let limit = limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            errs.push("limit", format!("must be between 1 and {MAX_PAGE}"));
        }
        let before = match cursor {
            None => None,
            // Digits only, as the document says (no sign, no spaces).
            Some(c) if (1..=18).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()) => {
                c.parse::<i64>().ok()
            }
            Some(_) => {
                errs.push("cursor", "is not a cursor from a previous page");
                None
            }
        };
        errs.into_result(())?;
        let (items, next) = self
            .store()
            .list_audit(&p.org_id, &filter, before, limit)
            .await?;
        Ok(Page {
            items: items
                .into_iter()
                .map(|r| AuditEvent {
                    id: r.id,
                    seq: r.seq,
                    at: r.at,
                    actor: r.actor,
                    action: r.action,
                    target: r.target,
                    outcome: r.outcome,
                    details: r.details,
                    hash: r.hash.iter().map(|b| format!("{b:02x}")).collect(),
                })
                .collect(),
            next_cursor: next.map(|s| s.to_string()),
        })
    }

    pub async fn verify_audit(&self, p: &Principal) -> Result<AuditVerification> {
        require_admin(p)?;
        let (events, broken_at) = self.store().verify_audit(&p.org_id).await?;
        Ok(AuditVerification {
            ok: broken_at.is_none(),
            events,
            broken_at,
        })
    }
}
