//! Administration: organizations and projects, API tokens (and the authentication of every
//! request), the audit log, vault keys and their rotation, and the first run.

mod audit;
mod bootstrap;
mod keys;
mod orgs;
mod tokens;
mod web_sessions;

pub use bootstrap::{KeyChoice, Started};
pub use tokens::{TOKEN_PREFIX, hash_token};
pub use web_sessions::{DEFAULT_WEB_SESSION_IDLE, DEFAULT_WEB_SESSION_MAX, WebSession};

pub(crate) use bootstrap::unwrap_all;
pub(crate) use orgs::*;
pub(crate) use tokens::{PrincipalCache, mint, principal_cache, principal_of, require_admin};
