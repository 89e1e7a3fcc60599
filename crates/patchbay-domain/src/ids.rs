//! Prefixed, sortable identifiers (`con_01j…`). The prefix tells a reader what kind of object an
//! id names; the ULID body sorts by creation time, which cursor pagination relies on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct IdError {
    pub kind: &'static str,
}

/// ULIDs from one process-wide generator, monotonic even within one millisecond, so that
/// cursor pagination (ordered by id) follows creation order.
fn next_ulid() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut guard = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .get_or_insert_with(ulid::Generator::new)
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! define_id {
    ($name:ident, $prefix:literal, $kind:literal) => {
        #[doc = concat!("Identifier of ", $kind, ", written `", $prefix, "_` + a lower-case ULID.")]
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id; ids created later in this process sort after earlier ones.
            pub fn generate() -> Self {
                Self(format!(
                    "{}_{}",
                    $prefix,
                    next_ulid().to_string().to_ascii_lowercase()
                ))
            }

            /// A fresh id whose 80 random bits owe nothing to earlier ids (a public id that
            /// must not be guessed from another).
            pub fn random() -> Self {
                Self(format!(
                    "{}_{}",
                    $prefix,
                    ulid::Ulid::new().to_string().to_ascii_lowercase()
                ))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let body = s
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or(IdError { kind: $kind })?;
                if body.len() == 26 && ulid::Ulid::from_string(body).is_ok() {
                    Ok(Self(s.to_ascii_lowercase()))
                } else {
                    Err(IdError { kind: $kind })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!(
                        "^",
                        $prefix,
                        "_[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"
                    )))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

define_id!(OrgId, "org", "organization");
define_id!(ProjectId, "prj", "project");
define_id!(ConnectionId, "con", "connection");
define_id!(TokenId, "tok", "token");
define_id!(SecretId, "sec", "secret");
define_id!(AuditId, "aud", "audit event");
define_id!(AppId, "app", "OAuth app");
define_id!(DeliveryId, "dlv", "delivery");
define_id!(InboundId, "hook", "inbound webhook endpoint");
define_id!(EventId, "evt", "inbound event");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_sort_by_creation() {
        let a = ConnectionId::generate();
        let b = ConnectionId::generate();
        assert!(a.as_str().starts_with("con_"));
        assert_eq!(a.as_str().len(), 30);
        assert_eq!(a.as_str().parse::<ConnectionId>().unwrap(), a);
        assert!(a < b);
    }

    #[test]
    fn wrong_prefix_or_body_is_rejected() {
        let org = OrgId::generate();
        assert!(org.as_str().parse::<ConnectionId>().is_err());
        assert!("con_".parse::<ConnectionId>().is_err());
        assert!("con_' OR 1=1 --".parse::<ConnectionId>().is_err());
        assert!(
            "con_01hzzzzzzzzzzzzzzzzzzzzzzzz"
                .parse::<ConnectionId>()
                .is_err()
        );
    }
}
