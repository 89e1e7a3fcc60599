//! The caches of the hot path (authenticated tokens, prepared connections): a shared cache with
//! a time to live, and in front of it a small copy per thread, read without locks. Any
//! invalidation empties every thread's copy (an epoch counter), and a copy never outlives the
//! shared entry's time to live, so the copies change nothing about what is seen when.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Entries a thread keeps before it starts over.
const FRONT_MAX: usize = 1024;

pub(crate) struct Cached<K: Send, V: Send> {
    shared: moka::sync::Cache<K, (V, Instant)>,
    front: thread_local::ThreadLocal<RefCell<Front<K, V>>>,
    epoch: AtomicU64,
    /// Reads the shared cache could not answer (counted off the hot path: misses are rare).
    misses: AtomicU64,
    ttl: Duration,
}

/// What a cache holds and how it fared, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheStats {
    pub entries: u64,
    pub misses: u64,
    pub invalidations: u64,
}

struct Front<K, V> {
    epoch: u64,
    /// Each value with the moment its shared entry expires.
    entries: HashMap<K, (V, Instant), foldhash::fast::RandomState>,
}

impl<K, V> Default for Front<K, V> {
    fn default() -> Self {
        Self {
            epoch: 0,
            entries: HashMap::default(),
        }
    }
}

impl<K: Send, V: Send> std::fmt::Debug for Cached<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<K, V> Cached<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            shared: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            front: thread_local::ThreadLocal::new(),
            epoch: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            ttl,
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut front = self.front.get_or_default().borrow_mut();
        if front.epoch != epoch {
            front.entries.clear();
            front.epoch = epoch;
        } else if let Some((value, expires)) = front.entries.get(key) {
            if Instant::now() < *expires {
                return Some(value.clone());
            }
            front.entries.remove(key);
        }
        let Some((value, at)) = self.shared.get(key) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if front.entries.len() >= FRONT_MAX {
            front.entries.clear();
        }
        front
            .entries
            .insert(key.to_owned(), (value.clone(), at + self.ttl));
        Some(value)
    }

    #[cfg(test)]
    pub(crate) fn insert(&self, key: K, value: V) {
        self.shared.insert(key, (value, Instant::now()));
    }

    pub(crate) fn stats(&self) -> CacheStats {
        // The entry count lags behind inserts until pending maintenance has run.
        self.shared.run_pending_tasks();
        CacheStats {
            entries: self.shared.entry_count(),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.epoch.load(Ordering::Relaxed),
        }
    }

    /// The invalidation count: read it before reading what will be inserted.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Inserts what was read after [`Self::epoch`] answered `since`, unless an invalidation
    /// came in between: a value read before a change committed must not outlive the
    /// invalidation that followed the commit. (Checked after the insert, so an invalidation
    /// racing with it either sees the entry and removes it, or is seen here.)
    pub(crate) fn insert_read_since(&self, since: u64, key: K, value: V) {
        self.shared.insert(key.clone(), (value, Instant::now()));
        if self.epoch.load(Ordering::Acquire) != since {
            self.shared.invalidate(&key);
        }
    }

    pub(crate) fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shared.invalidate(key);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn invalidate_all(&self) {
        self.shared.invalidate_all();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_an_invalidation_is_not_kept() {
        let cache: Cached<String, u32> = Cached::new(10, Duration::from_secs(60));
        let since = cache.epoch();
        cache.invalidate("a");
        cache.insert_read_since(since, "a".into(), 1);
        assert_eq!(cache.get("a"), None);
        let since = cache.epoch();
        cache.insert_read_since(since, "a".into(), 2);
        assert_eq!(cache.get("a"), Some(2));
    }

    #[test]
    fn invalidation_reaches_every_thread_and_entries_expire() {
        let cache =
            std::sync::Arc::new(Cached::<String, u32>::new(100, Duration::from_millis(200)));
        cache.insert("a".into(), 1);
        assert_eq!(cache.get("a"), Some(1));
        // Another thread holds its own copy; an invalidation here empties it there too.
        let other = cache.clone();
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let (tell, told) = std::sync::mpsc::channel::<Option<u32>>();
        let t = std::thread::spawn(move || {
            while asked.recv().is_ok() {
                tell.send(other.get("a")).unwrap();
            }
        });
        ask.send(()).unwrap();
        assert_eq!(told.recv().unwrap(), Some(1));
        cache.invalidate("a");
        ask.send(()).unwrap();
        assert_eq!(
            told.recv().unwrap(),
            None,
            "the other thread's copy was dropped"
        );
        cache.insert("a".into(), 2);
        ask.send(()).unwrap();
        assert_eq!(told.recv().unwrap(), Some(2));
        assert_eq!(cache.get("a"), Some(2));
        // A copy lives no longer than the shared entry it came from.
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(cache.get("a"), None);
        ask.send(()).unwrap();
        assert_eq!(told.recv().unwrap(), None);
        cache.insert("b".into(), 3);
        cache.invalidate_all();
        assert_eq!(cache.get("b"), None);
        drop(ask);
        t.join().unwrap();
    }
}
