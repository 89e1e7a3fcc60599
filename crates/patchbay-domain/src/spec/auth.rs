//! How a connection authenticates: the auth type and its non-secret parameters. The secrets
//! themselves (keys, passwords, tokens) are never part of these types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::config::wire_enum;
use crate::connection::AuthType;

/// A connection's auth: `{"type": …, …parameters}` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    None,
    ApiKey(ApiKeyAuth),
    Bearer,
    Basic(BasicAuth),
    Oauth2(OAuth2Auth),
    Oauth2ClientCredentials(ClientCredentialsAuth),
    Custom(CustomAuth),
    AwsSigv4(AwsSigv4Auth),
    Hmac,
    /// `ssh_key`: the secret `private_key` (OpenSSH or PEM), with an optional `passphrase`.
    SshKey,
}

impl Auth {
    pub fn auth_type(&self) -> AuthType {
        match self {
            Self::None => AuthType::None,
            Self::ApiKey(_) => AuthType::ApiKey,
            Self::Bearer => AuthType::Bearer,
            Self::Basic(_) => AuthType::Basic,
            Self::Oauth2(_) => AuthType::Oauth2,
            Self::Oauth2ClientCredentials(_) => AuthType::Oauth2ClientCredentials,
            Self::Custom(_) => AuthType::Custom,
            Self::AwsSigv4(_) => AuthType::AwsSigv4,
            Self::Hmac => AuthType::Hmac,
            Self::SshKey => AuthType::SshKey,
        }
    }

    /// Reads an `auth` object that validation accepted; a missing `type` is `none`.
    pub fn from_auth(auth: &Map<String, Value>) -> Result<Self, String> {
        let mut map = auth.clone();
        map.entry("type")
            .or_insert_with(|| Value::String("none".into()));
        let mut parsed: Self =
            serde_json::from_value(Value::Object(map)).map_err(|e| format!("auth: {e}"))?;
        parsed.fill_defaults();
        Ok(parsed)
    }

    /// The `auth` object as the API shows it and the store keeps it.
    pub fn to_auth(&self) -> Map<String, Value> {
        super::to_object(self)
    }

    pub fn fill_defaults(&mut self) {
        if let Self::ApiKey(k) = self {
            k.fill_defaults();
        }
    }

    /// The OAuth app the connection's client comes from, if it names one.
    pub fn app(&self) -> Option<&str> {
        match self {
            Self::Oauth2(o) => o.app.as_deref(),
            Self::Oauth2ClientCredentials(o) => o.app.as_deref(),
            _ => None,
        }
    }
}

wire_enum!(
    /// Where an API key goes.
    KeyLocation { Header => "header", Query => "query", Cookie => "cookie" }
);

/// `api_key`: the key (secret `api_key`) sent in a header, query parameter or cookie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyAuth {
    #[serde(rename = "in", default = "ApiKeyAuth::location_default")]
    pub location: KeyLocation,
    /// The header, parameter or cookie name; [`ApiKeyAuth::default_name`] when not given.
    #[serde(default)]
    pub name: String,
    /// Written before the key (`"Bearer "`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl ApiKeyAuth {
    pub const LOCATION: KeyLocation = KeyLocation::Header;

    fn location_default() -> KeyLocation {
        Self::LOCATION
    }

    /// `X-API-Key` for a header, `api_key` for a query parameter or cookie.
    pub fn default_name(location: KeyLocation) -> &'static str {
        match location {
            KeyLocation::Header => "X-API-Key",
            KeyLocation::Query | KeyLocation::Cookie => "api_key",
        }
    }

    pub fn fill_defaults(&mut self) {
        if self.name.is_empty() {
            self.name = Self::default_name(self.location).to_owned();
        }
    }
}

/// `basic`: a user name (here for HTTP and MCP connections; databases and SMTP servers keep it
/// in `config`) and the secret `password`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BasicAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

wire_enum!(
    /// How a client authenticates to a token endpoint.
    TokenAuthMethod { ClientSecretBasic => "client_secret_basic", ClientSecretPost => "client_secret_post" }
);

fn yes() -> bool {
    true
}

/// `oauth2` (authorization code): the endpoints (or a catalog provider's), the scopes, and the
/// client — an OAuth app, or the secrets `client_id` and `client_secret`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuth2Auth {
    /// An OAuth app of the organization, by id or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_request_auth_method: Option<TokenAuthMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// PKCE (S256) is used unless turned off here or by the provider.
    #[serde(default = "yes")]
    pub pkce: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_params: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_params: Option<Map<String, Value>>,
}

/// `oauth2_client_credentials`: a token endpoint and the client's id and secret (or an app).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientCredentialsAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_params: Option<Map<String, Value>>,
}

wire_enum!(
    /// Where a custom credential goes.
    InjectLocation { Header => "header", Query => "query", Cookie => "cookie", Body => "body" }
);

/// One rule of `custom` auth: a template such as `Token ${secrets.api_key}` placed somewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectRule {
    #[serde(rename = "in")]
    pub location: InjectLocation,
    pub name: String,
    pub template: String,
}

/// `custom`: credentials placed by templates over any secret fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomAuth {
    pub inject: Vec<InjectRule>,
}

/// `aws_sigv4`: requests signed for a region and service with the secrets `access_key_id`,
/// `secret_access_key` and optionally `session_token`. A storage connection takes neither
/// parameter: its region is in its `config` and its service is S3.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AwsSigv4Auth {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
}
