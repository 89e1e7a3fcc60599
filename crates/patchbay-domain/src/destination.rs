//! Where a connection sends its secrets. A secret is only ever sent to the destination it was
//! stored for, so a change of any field named here — by someone who could not read the
//! secrets — must come with the secrets themselves (see the engine's update path).

use serde_json::{Map, Value};

use crate::Kind;

/// The fields that decide where a connection of `kind` sends its credentials, as
/// `(section, field)`; `provider` is included because a catalog entry supplies URLs.
pub fn fields(kind: Kind) -> &'static [(&'static str, &'static str)] {
    const OAUTH: [(&str, &str); 4] = [
        ("auth", "authorization_url"),
        ("auth", "token_url"),
        ("auth", "revocation_url"),
        ("auth", "app"),
    ];
    match kind {
        Kind::Http => &[
            ("config", "base_url"),
            OAUTH[0],
            OAUTH[1],
            OAUTH[2],
            OAUTH[3],
            ("", "provider"),
        ],
        Kind::Database => &[
            ("config", "driver"),
            ("config", "host"),
            ("config", "port"),
            ("config", "database"),
        ],
        Kind::Smtp => &[("config", "host"), ("config", "port")],
        Kind::Webhook => &[("config", "url")],
        Kind::Mcp => &[
            ("config", "server_url"),
            ("config", "command"),
            ("config", "args"),
            ("config", "transport"),
            OAUTH[0],
            OAUTH[1],
            OAUTH[2],
            OAUTH[3],
            ("", "provider"),
        ],
        // The prefix too: widening it reaches keys the secrets were not stored for.
        Kind::Storage => &[
            ("config", "endpoint"),
            ("config", "bucket"),
            ("config", "region"),
            ("config", "path_style"),
            ("config", "prefix"),
            ("", "provider"),
        ],
        // The base directory too, like a storage prefix; the pinned host key is who the
        // server is.
        Kind::FileTransfer => &[
            ("config", "protocol"),
            ("config", "host"),
            ("config", "port"),
            ("config", "username"),
            ("config", "base_dir"),
            ("config", "host_key"),
            ("config", "tls_ca"),
            ("", "provider"),
        ],
    }
}

/// One side of a comparison: a connection's provider, auth and config.
#[derive(Debug, Clone, Copy)]
pub struct Where<'a> {
    pub provider: &'a str,
    pub auth: &'a Map<String, Value>,
    pub config: &'a Map<String, Value>,
}

impl Where<'_> {
    fn get(&self, section: &str, field: &str) -> Option<Value> {
        match section {
            "auth" => self.auth.get(field).cloned(),
            "config" => self.config.get(field).cloned(),
            _ => Some(Value::String(self.provider.to_owned())),
        }
    }
}

/// The destination fields that differ between `before` and `after`, named as the API names
/// them (`config.base_url`, `auth.token_url`, `provider`).
pub fn changed(kind: Kind, before: Where<'_>, after: Where<'_>) -> Vec<String> {
    fields(kind)
        .iter()
        .filter(|(section, field)| before.get(section, field) != after.get(section, field))
        .map(|(section, field)| {
            if section.is_empty() {
                (*field).to_owned()
            } else {
                format!("{section}.{field}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn only_destination_fields_count() {
        let auth = obj(json!({"type": "bearer"}));
        let a = obj(json!({"base_url": "https://api.example.com", "timeout_ms": 1000}));
        let b = obj(json!({"base_url": "https://api.example.com", "timeout_ms": 5000}));
        let c = obj(json!({"base_url": "https://evil.example.net"}));
        let at = |config| Where {
            provider: "custom",
            auth: &auth,
            config,
        };
        assert!(changed(Kind::Http, at(&a), at(&b)).is_empty());
        assert_eq!(changed(Kind::Http, at(&a), at(&c)), ["config.base_url"]);
        let other = Where {
            provider: "github",
            ..at(&a)
        };
        assert_eq!(changed(Kind::Http, at(&a), other), ["provider"]);
        let oauth = obj(json!({"type": "oauth2", "token_url": "https://evil.example.net/t"}));
        let moved = Where {
            auth: &oauth,
            ..at(&a)
        };
        assert_eq!(changed(Kind::Http, at(&a), moved), ["auth.token_url"]);
        let db = obj(json!({"driver": "postgresql", "host": "db", "port": 5432}));
        let db2 = obj(json!({"driver": "postgresql", "host": "db", "port": 6543}));
        assert_eq!(changed(Kind::Database, at(&db), at(&db2)), ["config.port"]);
        let hook = obj(json!({"url": "https://a.example.com"}));
        let hook2 = obj(json!({"url": "https://b.example.com"}));
        assert_eq!(
            changed(Kind::Webhook, at(&hook), at(&hook2)),
            ["config.url"]
        );
    }
}
