//! OAuth 2.0 and the provider catalog. This module owns the catalog: how each known service
//! authenticates, where its API lives, how to verify a connection to it, and the named
//! operations that workflow nodes call. Built-in entries are compiled into the binary; an
//! operator's directory of YAML files adds entries or replaces built-in ones by key.

pub mod catalog;

pub use catalog::{Catalog, CatalogError, Provider, TokenResponse};
