//! Upstream MCP sessions, reused across calls (not one `initialize` per call): one per
//! connection and home — a serving thread that calls a server keeps a session of its own, on
//! its own runtime, so that a call wakes no other thread; the hub's runtime keeps one for
//! everything else (see `Hub::mcp_session`). A session is made once however many callers ask
//! at the same time, replaced when the server dropped it, forgotten when its connection
//! changes (here or, through invalidation, on another replica), and ended when idle — an HTTP
//! session is deleted, a process killed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patchbay_mcp::{McpError, ToolServer};
use tokio::sync::OnceCell;

use crate::core::{CacheStats, Change, Forgets};

/// A session as the engine uses it.
pub(crate) type Upstream = Arc<dyn ToolServer>;

#[derive(Default)]
struct Slot {
    /// The connection's version the session was made for.
    version: i64,
    session: Arc<OnceCell<Upstream>>,
    last_used: Option<Instant>,
}

/// Where a session's I/O lives: a serving thread, or (`None`) the hub's runtime.
pub(crate) type Home = Option<std::thread::ThreadId>;

/// The sessions of this process.
pub(crate) struct SessionPool {
    slots: Mutex<HashMap<(String, Home), Slot>>,
    idle: Duration,
    invalidations: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("sessions", &self.len())
            .finish_non_exhaustive()
    }
}

/// How long an unused session is kept.
pub(crate) const IDLE: Duration = Duration::from_secs(300);

impl SessionPool {
    pub fn new(idle: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            idle,
            invalidations: Default::default(),
        }
    }

    fn len(&self) -> usize {
        self.slots.lock().map_or(0, |s| s.len())
    }

    /// The session of connection `id` at `version` in `home`, made by `connect` when there is
    /// none (or the one there was is closed or of another version).
    pub async fn session<F, Fut>(
        &self,
        id: &str,
        home: Home,
        version: i64,
        connect: F,
    ) -> Result<Upstream, McpError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Upstream, McpError>>,
    {
        let cell = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry((id.to_owned(), home)).or_default();
            let stale =
                slot.version != version || slot.session.get().is_some_and(|s| s.is_closed());
            if stale {
                *slot = Slot {
                    version,
                    ..Slot::default()
                };
            }
            slot.last_used = Some(Instant::now());
            slot.session.clone()
        };
        cell.get_or_try_init(connect).await.cloned()
    }

    /// Drops the sessions of `id` (the server dropped one, or a call found it broken).
    pub fn discard(&self, id: &str) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.retain(|(of, _), _| of != id);
        }
    }

    /// Ends sessions unused for longer than the idle time, and those their server closed.
    pub fn sweep(&self) -> usize {
        let Ok(mut slots) = self.slots.lock() else {
            return 0;
        };
        let before = slots.len();
        let idle = self.idle;
        slots.retain(|_, slot| {
            let recent = slot.last_used.is_some_and(|t| t.elapsed() < idle);
            let open = slot.session.get().is_none_or(|s| !s.is_closed());
            recent && open
        });
        before - slots.len()
    }

    /// Ends every session (at shutdown).
    pub fn clear(&self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.clear();
        }
    }
}

impl Forgets for SessionPool {
    fn forget(&self, change: &Change) {
        match change {
            Change::Connection(id) => {
                self.invalidations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.discard(id);
            }
            Change::Connections => self.forget_all(),
            Change::Principals | Change::McpSession(_) => {}
        }
    }

    fn forget_all(&self) {
        self.invalidations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.clear();
    }

    fn stats(&self) -> (&'static str, CacheStats) {
        (
            "mcp_sessions",
            CacheStats {
                entries: self.len() as u64,
                misses: 0,
                invalidations: self
                    .invalidations
                    .load(std::sync::atomic::Ordering::Relaxed),
            },
        )
    }
}
