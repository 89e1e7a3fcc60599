//! Patchbay's domain: identifiers, validated names, roles and principals, connections of every
//! kind with their validation rules, and the JSON wire types shared by the server and its client.
//!
//! This crate does no I/O: no tokio, no database, no HTTP. Everything here is plain data and pure
//! functions, so the rules can be unit-tested without a running server.

pub mod actions;
pub mod api;
pub mod connection;
pub mod destination;
pub mod error;
pub mod ids;
pub mod inbound;
pub mod names;
pub mod objects;
pub mod principal;
pub mod span;
pub mod spec;
pub mod validate;

pub use connection::{AuthType, Kind, Status, TestStatus};
pub use error::{FieldError, ValidationErrors};
pub use ids::{
    AppId, AuditId, ConnectionId, DeliveryId, EventId, InboundId, OrgId, ProjectId, SecretId,
    TokenId,
};
pub use names::{Name, SecretName};
pub use principal::{Principal, Role};
