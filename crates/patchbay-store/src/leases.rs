//! Leases for background work that must run once across replicas: whoever holds a named lease
//! runs the work until the lease expires; its holder renews it, and another replica takes it
//! over only once it has run out (the holder died or stopped). Key rotations keep their
//! progress here too, so that every replica reports it.

use chrono::{DateTime, Utc};

use crate::util::ms;
use crate::{Result, Store};

impl Store {
    /// Takes or renews lease `name` for `holder` until `until`; whether `holder` holds it now.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder",
        )
        .bind(name.to_owned())
        .bind(holder.to_owned())
        .bind(ms(until))
        .bind(ms(now))
        .execute(&self.write)
        .await?;
        Ok(res.rows_affected() == 1)
    }
}

impl Store {
    /// Records a rotation's progress (created on its first report).
    pub async fn put_rotation(
        &self,
        p: &patchbay_domain::api::RotationProgress,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO rotations (target_version, done, total, finished, error, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (target_version) DO UPDATE SET \
             done = excluded.done, total = excluded.total, finished = excluded.finished, \
             error = excluded.error, updated_at = excluded.updated_at",
        )
        .bind(p.target_version)
        .bind(p.done)
        .bind(p.total)
        .bind(i32::from(p.finished))
        .bind(p.error.clone())
        .bind(ms(now))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The latest rotation, if any ran.
    pub async fn latest_rotation(&self) -> Result<Option<patchbay_domain::api::RotationProgress>> {
        use sqlx::Row as _;
        let row = sqlx::query(
            "SELECT target_version, done, total, finished, error FROM rotations \
             ORDER BY target_version DESC LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(patchbay_domain::api::RotationProgress {
                target_version: r.try_get("target_version")?,
                done: r.try_get("done")?,
                total: r.try_get("total")?,
                finished: r.try_get::<i32, _>("finished")? != 0,
                error: r.try_get("error")?,
            })
        })
        .transpose()
    }
}
