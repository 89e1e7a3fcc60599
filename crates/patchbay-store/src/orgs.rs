//! Organizations and projects.

use chrono::{DateTime, Utc};
use patchbay_domain::{OrgId, ProjectId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::util::{ms, opt_time, parse, time};
use crate::{Result, Store, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct OrgRecord {
    pub id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub org_id: OrgId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
}

fn org(row: &AnyRow) -> Result<OrgRecord> {
    Ok(OrgRecord {
        id: parse(row, "id")?,
        name: row.try_get("name")?,
        created_at: time(row, "created_at")?,
    })
}

fn project(row: &AnyRow) -> Result<ProjectRecord> {
    Ok(ProjectRecord {
        id: parse(row, "id")?,
        org_id: parse(row, "org_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        deleted_at: opt_time(row, "deleted_at")?,
        version: row.try_get("version")?,
    })
}

const PROJECT_COLS: &str =
    "id, org_id, name, description, created_at, updated_at, deleted_at, version";

impl Store {
    pub async fn get_org(&self, id: &OrgId) -> Result<Option<OrgRecord>> {
        sqlx::query("SELECT id, name, created_at FROM orgs WHERE id = $1")
            .bind(id.as_str().to_owned())
            .fetch_optional(&self.read)
            .await?
            .map(|r| org(&r))
            .transpose()
    }

    pub async fn list_orgs(&self) -> Result<Vec<OrgRecord>> {
        sqlx::query("SELECT id, name, created_at FROM orgs ORDER BY id")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(org)
            .collect()
    }

    pub async fn count_orgs(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM orgs")
            .fetch_one(&self.read)
            .await?
            .try_get("n")?)
    }

    pub async fn get_project(&self, org: &OrgId, id: &ProjectId) -> Result<Option<ProjectRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"
        )))
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .fetch_optional(&self.read)
        .await?
        .map(|r| project(&r))
        .transpose()
    }

    pub async fn find_project(&self, org: &OrgId, name: &str) -> Result<Option<ProjectRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE org_id = $1 AND name = $2 AND deleted_at IS NULL"
        )))
        .bind(org.as_str().to_owned())
        .bind(name.to_owned())
        .fetch_optional(&self.read)
        .await?
        .map(|r| project(&r))
        .transpose()
    }

    pub async fn list_projects(&self, org: &OrgId) -> Result<Vec<ProjectRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE org_id = $1 AND deleted_at IS NULL ORDER BY id"
        )))
        .bind(org.as_str().to_owned())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(project)
        .collect()
    }
}

impl Tx {
    /// Reads a live project inside the transaction, locking its row on PostgreSQL (a
    /// read-modify-write that no concurrent one can slip between).
    pub async fn lock_project(
        &mut self,
        org: &OrgId,
        id: &ProjectId,
    ) -> Result<Option<ProjectRecord>> {
        let lock = self.for_update();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL{lock}"
        )))
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .fetch_optional(&mut *self.inner)
        .await?
        .map(|r| project(&r))
        .transpose()
    }

    pub async fn insert_org(&mut self, org: &OrgRecord) -> Result<()> {
        sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(org.id.as_str().to_owned())
            .bind(org.name.clone())
            .bind(ms(org.created_at))
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    pub async fn insert_project(&mut self, p: &ProjectRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO projects (id, org_id, name, description, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, 1)",
        )
        .bind(p.id.as_str().to_owned())
        .bind(p.org_id.as_str().to_owned())
        .bind(p.name.clone())
        .bind(p.description.clone())
        .bind(ms(p.created_at))
        .bind(ms(p.updated_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Writes name and description; `expected_version` guards against lost updates.
    pub async fn update_project(
        &mut self,
        p: &ProjectRecord,
        expected_version: Option<i64>,
    ) -> Result<()> {
        let res = sqlx::query(
            "UPDATE projects SET name = $1, description = $2, updated_at = $3, version = version + 1 \
             WHERE org_id = $4 AND id = $5 AND deleted_at IS NULL AND ($6 < 0 OR version = $6)",
        )
        .bind(p.name.clone())
        .bind(p.description.clone())
        .bind(ms(p.updated_at))
        .bind(p.org_id.as_str().to_owned())
        .bind(p.id.as_str().to_owned())
        .bind(expected_version.unwrap_or(-1))
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::VersionMismatch)
    }

    pub async fn delete_project(
        &mut self,
        org: &OrgId,
        id: &ProjectId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let live: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM connections WHERE project_id = $1 AND deleted_at IS NULL",
        )
        .bind(id.as_str().to_owned())
        .fetch_one(&mut *self.inner)
        .await?
        .try_get("n")?;
        if live > 0 {
            return Err(StoreError::Conflict(format!(
                "project still holds {live} connection(s)"
            )));
        }
        let res = sqlx::query(
            "UPDATE projects SET deleted_at = $1, updated_at = $1, version = version + 1 \
             WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL",
        )
        .bind(ms(now))
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::NotFound)
    }
}
