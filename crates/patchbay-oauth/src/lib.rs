//! OAuth 2.0 and the provider catalog.
//!
//! - [`catalog`]: how each known service authenticates, where its API lives, how to verify a
//!   connection to it, and the named operations that workflow nodes call. Built-in entries are
//!   compiled into the binary; an operator's directory of YAML files adds entries or replaces
//!   built-in ones by key.
//! - [`wire`]: the protocol itself — token requests for each grant with the client's
//!   authentication, token answers and their errors, revocation — over the outbound gate.
//! - [`pkce`]: states, verifiers and their S256 challenges.
//!
//! Nothing here stores anything: a caller (the engine, or any client running a flow) keeps
//! the tokens.

pub mod catalog;
pub mod pkce;
pub mod wire;

pub use catalog::{Catalog, CatalogError, Provider, TokenResponse};
pub use wire::{ClientAuth, Grant, TokenEndpoint, TokenError};
