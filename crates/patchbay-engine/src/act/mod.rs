//! Acting through connections: the authenticated proxy (the hot path), typed actions and
//! workflow nodes.

pub(crate) mod actions;
pub(crate) mod calls;
mod files;
mod nodes;
pub(crate) mod storage;

pub use calls::{Answer, ProxyCall, caller_label};
pub use storage::StorageOutcome;

pub(crate) use actions::require_kind;
pub(crate) use calls::{PreparedCache, UsageLog, prepared_cache};
