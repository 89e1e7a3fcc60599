//! Connections: the kinds, auth types and states of SPEC §2, and the stored connection as the
//! API shows it (secrets only as `{"set": true}`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::{ConnectionId, OrgId, ProjectId};
use crate::names::{Name, SecretName};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($s => Some($name::$variant),)+ _ => None }
            }

            /// The accepted spellings, for error messages.
            pub fn expected() -> String {
                [$($s),+].join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What kind of external system a connection reaches.
    Kind { Http => "http", Database => "database", Smtp => "smtp", Webhook => "webhook", Mcp => "mcp" }
);

string_enum!(
    /// How a connection authenticates.
    AuthType {
        None => "none",
        ApiKey => "api_key",
        Bearer => "bearer",
        Basic => "basic",
        Oauth2 => "oauth2",
        Oauth2ClientCredentials => "oauth2_client_credentials",
        Custom => "custom",
        AwsSigv4 => "aws_sigv4",
        Hmac => "hmac",
    }
);

impl AuthType {
    /// Either OAuth 2.0 flavour: tokens kept by Patchbay, renewed when due.
    pub fn is_oauth(self) -> bool {
        matches!(self, Self::Oauth2 | Self::Oauth2ClientCredentials)
    }
}

string_enum!(
    /// A connection's lifecycle state.
    Status {
        Active => "active",
        Pending => "pending",
        Invalid => "invalid",
        Expired => "expired",
        Revoked => "revoked",
        Disabled => "disabled",
    }
);

string_enum!(
    /// The outcome of the last connection test.
    TestStatus { Untested => "untested", Success => "success", Failed => "failed" }
);

/// What the API shows of one secret field: that it is set, and the organization secret it
/// refers to when it is a reference. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretState {
    pub set: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    #[schema(value_type = Option<String>)]
    pub reference: Option<SecretName>,
}

/// A stored connection as callers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Connection {
    pub id: ConnectionId,
    #[serde(skip)]
    pub org_id: Option<OrgId>,
    pub project: ProjectId,
    pub name: Name,
    pub kind: Kind,
    pub provider: String,
    /// `type` plus the auth type's non-secret parameters.
    #[schema(value_type = Object)]
    pub auth: Map<String, Value>,
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    pub secrets: BTreeMap<String, SecretState>,
    pub status: Status,
    pub test_status: TestStatus,
    pub test_message: Option<String>,
    pub test_latency_ms: Option<i64>,
    pub last_tested_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub used_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub oauth: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub mcp: Option<Value>,
    /// Untested for more than 7 days (computed when read).
    #[serde(default)]
    pub stale: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Connection {
    pub fn auth_type(&self) -> AuthType {
        self.auth
            .get("type")
            .and_then(Value::as_str)
            .and_then(AuthType::parse)
            .unwrap_or(AuthType::None)
    }
}
