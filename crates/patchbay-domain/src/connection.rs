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
    Kind { Http => "http", Database => "database", Smtp => "smtp", Webhook => "webhook", Mcp => "mcp", Storage => "storage", FileTransfer => "file_transfer" }
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
        SshKey => "ssh_key",
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
    pub oauth: Option<OAuthState>,
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

/// What Patchbay knows of an OAuth connection's tokens (never the tokens themselves): set when
/// it is linked and on every renewal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct OAuthState {
    /// The scopes granted (those asked for when the provider does not say).
    pub scopes: Vec<String>,
    /// When the access token expires; none when the provider gave no lifetime.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether a refresh token is held.
    pub refreshable: bool,
    pub token_type: Option<String>,
    /// When the account was first linked.
    pub linked_at: Option<DateTime<Utc>>,
    /// When the tokens were last renewed; none before the first renewal.
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// When the current access token was obtained.
    pub obtained_at: Option<DateTime<Utc>>,
    /// Why the last renewal failed; cleared by the next success.
    pub last_refresh_error: Option<String>,
    /// The upstream account the tokens act as, once a test has learnt it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl OAuthState {
    /// The state after tokens were obtained at `now`: the link time and account carry over from
    /// `previous`, as do the scopes when the provider named none.
    pub fn obtained(
        previous: Option<&OAuthState>,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        scopes: Option<Vec<String>>,
        refreshable: bool,
        token_type: Option<String>,
    ) -> Self {
        OAuthState {
            scopes: scopes
                .or_else(|| previous.map(|o| o.scopes.clone()))
                .unwrap_or_default(),
            expires_at,
            refreshable,
            token_type,
            linked_at: Some(previous.and_then(|o| o.linked_at).unwrap_or(now)),
            last_refresh_at: previous.map(|_| now),
            obtained_at: Some(now),
            last_refresh_error: None,
            account: previous.and_then(|o| o.account.clone()),
        }
    }
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

#[cfg(test)]
mod oauth_state_tests {
    use super::OAuthState;
    use serde_json::json;

    /// The stored shape is the one earlier versions wrote: rows written before the state was
    /// typed read back, and what is written now has the same fields.
    #[test]
    fn oauth_state_keeps_its_stored_shape() {
        let stored = json!({
            "scopes": ["repo"], "expires_at": "2026-01-01T00:00:00Z", "refreshable": true,
            "token_type": "bearer", "linked_at": "2025-12-01T00:00:00Z", "last_refresh_at": null,
            "obtained_at": "2025-12-31T23:00:00Z", "last_refresh_error": null, "account": "U1"
        });
        let state: OAuthState = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(state.scopes, ["repo"]);
        assert!(state.refreshable);
        assert_eq!(state.account.as_deref(), Some("U1"));
        assert_eq!(serde_json::to_value(&state).unwrap(), stored);

        // A failed renewal written over an absent state, as older versions did.
        let bare: OAuthState =
            serde_json::from_value(json!({"last_refresh_error": "invalid_grant"})).unwrap();
        assert_eq!(bare.last_refresh_error.as_deref(), Some("invalid_grant"));
        assert!(!bare.refreshable && bare.scopes.is_empty());
        assert!(
            serde_json::to_value(&bare)
                .unwrap()
                .get("account")
                .is_none(),
            "no account until one is learnt"
        );
    }

    #[test]
    fn a_renewal_keeps_the_link_time_the_account_and_unnamed_scopes() {
        let linked_at = chrono::DateTime::parse_from_rfc3339("2025-12-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let first = OAuthState::obtained(None, linked_at, None, Some(vec!["a".into()]), true, None);
        assert_eq!(first.linked_at, Some(linked_at));
        assert_eq!(first.last_refresh_at, None);
        let previous = OAuthState {
            account: Some("U1".into()),
            last_refresh_error: Some("timeout".into()),
            ..first
        };
        let now = linked_at + chrono::Duration::hours(1);
        let renewed = OAuthState::obtained(Some(&previous), now, None, None, false, None);
        assert_eq!(renewed.linked_at, Some(linked_at));
        assert_eq!(renewed.last_refresh_at, Some(now));
        assert_eq!(renewed.obtained_at, Some(now));
        assert_eq!(renewed.scopes, ["a"]);
        assert_eq!(renewed.account.as_deref(), Some("U1"));
        assert_eq!(
            renewed.last_refresh_error, None,
            "a success clears the error"
        );
    }
}
