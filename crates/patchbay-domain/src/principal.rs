//! Who is calling: a token's organization, role, optional project scope, and whether it is an
//! operator token. The permission rules of SPEC §1 live here as plain functions.

use serde::{Deserialize, Serialize};

use crate::ids::{OrgId, ProjectId, TokenId};

/// A token's role inside its organization, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in the organization: tokens, OAuth apps, keys, audit.
    Admin,
    /// Create, edit, test and use connections; manage secrets.
    Member,
    /// Use connections and read fresh credentials: the execution engine's role.
    Executor,
    /// Read metadata only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Executor => "executor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "executor" => Some(Role::Executor),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: TokenId,
    pub org_id: OrgId,
    pub role: Role,
    /// When set, the token sees only this project's objects.
    pub project_id: Option<ProjectId>,
    /// The deployment's operator may create organizations and rotate keys.
    pub operator: bool,
}

impl Principal {
    /// The label written into audit events as the actor.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Create, edit, delete and test connections and secrets.
    pub fn can_write(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Member)
    }

    /// Perform actions through connections.
    pub fn can_use(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Member | Role::Executor)
    }

    /// Read decrypted credentials and fresh tokens (executor and admin only).
    pub fn can_read_credentials(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Executor)
    }

    /// Whether the token's project scope admits `project`.
    pub fn sees_project(&self, project: &ProjectId) -> bool {
        self.project_id.as_ref().is_none_or(|p| p == project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            token_id: TokenId::generate(),
            org_id: OrgId::generate(),
            role,
            project_id: None,
            operator: false,
        }
    }

    #[test]
    fn credential_reads_are_for_executors_and_admins_only() {
        assert!(principal(Role::Admin).can_read_credentials());
        assert!(principal(Role::Executor).can_read_credentials());
        assert!(!principal(Role::Member).can_read_credentials());
        assert!(!principal(Role::Viewer).can_read_credentials());
    }

    #[test]
    fn viewers_and_executors_cannot_write() {
        assert!(!principal(Role::Viewer).can_write());
        assert!(!principal(Role::Executor).can_write());
        assert!(principal(Role::Member).can_write());
    }

    #[test]
    fn project_scope_limits_visibility() {
        let mut p = principal(Role::Member);
        let a = ProjectId::generate();
        let b = ProjectId::generate();
        assert!(p.sees_project(&a));
        p.project_id = Some(a.clone());
        assert!(p.sees_project(&a));
        assert!(!p.sees_project(&b));
    }

    #[test]
    fn roles_round_trip_through_strings() {
        for r in [Role::Admin, Role::Member, Role::Executor, Role::Viewer] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
