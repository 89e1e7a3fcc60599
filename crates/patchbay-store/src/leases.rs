//! Leases for background work that must run once across replicas: whoever holds a named lease
//! runs the work until the lease expires; its holder renews it, and another replica takes it
//! over only once it has run out (the holder died or stopped).

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
