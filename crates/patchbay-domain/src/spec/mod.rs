//! Typed connection specifications (SPEC §2): what a connection of each kind is configured
//! with, and how it authenticates — the output of validation, and what connectors run.
//!
//! The JSON shape on the wire and in the store is the one these types serialize to: the flat
//! `config` and `auth` objects of the API, defaults filled. Defaults are written here, once,
//! as associated constants and `fill_defaults` methods.

mod auth;
mod config;

pub use auth::{
    ApiKeyAuth, Auth, AwsSigv4Auth, BasicAuth, ClientCredentialsAuth, CustomAuth, InjectLocation,
    InjectRule, KeyLocation, OAuth2Auth, TokenAuthMethod,
};
pub use config::{
    ConnectionSpec, DatabaseConfig, DatabaseDriver, FileProtocol, FileTransferConfig, HttpConfig,
    McpConfig, McpTransport, McpTransportName, SmtpConfig, SmtpEncryption, StorageConfig,
    WebhookConfig, WebhookMethod,
};

use serde_json::{Map, Value};

/// Whether `host` names this machine (a local database is reached without TLS by default).
pub fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host.starts_with("127.")
        || host == "::1"
        || host == "[::1]"
        || host.ends_with(".localhost")
}

/// A value serialized as a JSON object.
fn to_object<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        // Every spec type serializes to an object.
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests;
