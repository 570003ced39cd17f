//! A per-replica cache of the rows every token request reads and that almost never change: apps
//! (their client rows and secrets) and tenants. The token path reads them through
//! [`CachedRows`]; everything that reads in order to change (the portal's forms, the CLI) keeps
//! reading the database.
//!
//! How stale a cached row can be, at most:
//! - a change made through this store (this process) is seen by the next read: the write bumps
//!   the cache's generation, and entries of an older generation are not served;
//! - a change made by another process (another replica, the `techpass` CLI) is seen when the
//!   database tells this one: PostgreSQL notifies the `techpass_rows` channel from a trigger on
//!   the three tables, SQLite bumps a version row from triggers that
//!   [`CachedRows::follow_row_changes`] polls every 200 ms;
//! - whatever happens to those messages, an entry lives at most its time to live (1 s by
//!   default, [`crate::ConnectOptions::row_cache_ttl`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;

use crate::{ClientRecord, ClientSecretRecord, StoreError, TenantRecord};

/// The PostgreSQL channel the tables' triggers notify (migration 0024).
pub(crate) const CHANNEL: &str = "techpass_rows";
/// How often SQLite's version row is read for changes made by other processes.
pub(crate) const SQLITE_POLL: Duration = Duration::from_millis(200);
/// At most this many rows of each kind are kept (least recently used go first).
const CAPACITY: u64 = 50_000;

/// The rows of the token path, read through the per-replica cache (see the module).
#[async_trait]
pub trait CachedRows {
    /// As [`crate::ClientStore::get_client`], at most the cache's staleness old. Not for a read
    /// that is written back.
    async fn cached_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;

    /// As [`crate::ClientStore::client_secrets`], at most the cache's staleness old.
    async fn cached_client_secrets(
        &self,
        client_id: &str,
    ) -> Result<Vec<ClientSecretRecord>, StoreError>;

    /// As [`crate::TenantStore::get_tenant`], at most the cache's staleness old.
    async fn cached_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError>;

    /// Follows the changes other processes make to apps and tenants, dropping the cache at
    /// each, until the database fails (then the caller starts it again). Runs for the life of
    /// a server; without it, their changes are seen within the time to live.
    async fn follow_row_changes(&self) -> Result<(), StoreError>;
}

/// [`CachedRows`] for a backend's store type, which has a `rows` cache and an inherent
/// `follow_changes` (how that database tells of changes).
macro_rules! cached_rows_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::CachedRows for $store {
            async fn cached_client(
                &self,
                client_id: &str,
            ) -> Result<Option<$crate::ClientRecord>, $crate::StoreError> {
                use $crate::ClientStore;
                self.rows
                    .client(client_id, self.get_client(client_id))
                    .await
            }

            async fn cached_client_secrets(
                &self,
                client_id: &str,
            ) -> Result<Vec<$crate::ClientSecretRecord>, $crate::StoreError> {
                use $crate::ClientStore;
                self.rows
                    .secrets(client_id, self.client_secrets(client_id))
                    .await
            }

            async fn cached_tenant(
                &self,
                id: &str,
            ) -> Result<Option<$crate::TenantRecord>, $crate::StoreError> {
                use $crate::TenantStore;
                self.rows.tenant(id, self.get_tenant(id)).await
            }

            async fn follow_row_changes(&self) -> Result<(), $crate::StoreError> {
                self.follow_changes().await
            }
        }
    };
}

pub(crate) use cached_rows_impls;

/// The cache itself, one per store handle (clones share it).
#[derive(Debug)]
pub(crate) struct RowCache {
    /// Bumped at every change known to this process; entries are keyed by the generation
    /// their load began in.
    generation: AtomicU64,
    /// `None`: caching is off (a zero time to live).
    caches: Option<Caches>,
}

/// Why a shared load kept nothing: the row does not exist, or the database failed (neither is
/// cached; every caller that waited for the load gets it).
#[derive(Debug)]
enum Miss {
    Absent,
    Failed(StoreError),
}

#[derive(Debug)]
struct Caches {
    clients: Cache<String, ClientRecord>,
    secrets: Cache<String, Vec<ClientSecretRecord>>,
    tenants: Cache<String, TenantRecord>,
}

impl RowCache {
    pub(crate) fn new(ttl: Duration) -> RowCache {
        fn cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> Cache<String, V> {
            Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build()
        }
        RowCache {
            generation: AtomicU64::new(0),
            caches: (!ttl.is_zero()).then(|| Caches {
                clients: cache(ttl),
                secrets: cache(ttl),
                tenants: cache(ttl),
            }),
        }
    }

    /// Something changed (here, or as another process told us): nothing read before is served.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(c) = &self.caches {
            c.clients.invalidate_all();
            c.secrets.invalidate_all();
            c.tenants.invalidate_all();
        }
    }

    /// The entry for `key` if it was read in the current generation, or `load`ed now. Entries
    /// are keyed by the generation their load began in, so after a change nothing read before
    /// it is found, and a row read while something changed is not served again. Callers that
    /// miss the same key at once share one load (moka runs one initialisation per key; the
    /// others wait for it), so an expiry costs the database one read, not one per request in
    /// flight. Only a row that exists is kept: unknown ids cannot fill the cache.
    async fn through<V: Clone + Send + Sync + 'static>(
        &self,
        cache: Option<&Cache<String, V>>,
        key: &str,
        load: impl Future<Output = Result<Option<V>, StoreError>>,
    ) -> Result<Option<V>, StoreError> {
        let Some(cache) = cache else {
            return load.await;
        };
        // Read before the database is: a change during the read leaves the entry unreachable.
        let generation = self.generation.load(Ordering::Acquire);
        let shared = cache
            .try_get_with(format!("{generation}:{key}"), async {
                match load.await {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(Miss::Absent),
                    Err(e) => Err(Miss::Failed(e)),
                }
            })
            .await;
        match shared {
            Ok(value) => Ok(Some(value)),
            Err(miss) => match &*miss {
                Miss::Absent => Ok(None),
                Miss::Failed(e) => Err(e.clone()),
            },
        }
    }

    pub(crate) async fn client(
        &self,
        client_id: &str,
        load: impl Future<Output = Result<Option<ClientRecord>, StoreError>>,
    ) -> Result<Option<ClientRecord>, StoreError> {
        let cache = self.caches.as_ref().map(|c| &c.clients);
        self.through(cache, client_id, load).await
    }

    pub(crate) async fn secrets(
        &self,
        client_id: &str,
        load: impl Future<Output = Result<Vec<ClientSecretRecord>, StoreError>>,
    ) -> Result<Vec<ClientSecretRecord>, StoreError> {
        let cache = self.caches.as_ref().map(|c| &c.secrets);
        let load = async { Ok(Some(load.await?).filter(|s: &Vec<_>| !s.is_empty())) };
        Ok(self
            .through(cache, client_id, load)
            .await?
            .unwrap_or_default())
    }

    pub(crate) async fn tenant(
        &self,
        id: &str,
        load: impl Future<Output = Result<Option<TenantRecord>, StoreError>>,
    ) -> Result<Option<TenantRecord>, StoreError> {
        let cache = self.caches.as_ref().map(|c| &c.tenants);
        self.through(cache, id, load).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn secret(hash: &str) -> ClientSecretRecord {
        ClientSecretRecord {
            id: "s1".into(),
            client_id: "app_1".into(),
            secret_hash: hash.into(),
            created_at: 0,
            expires_at: 1,
            revoked_at: None,
        }
    }

    /// Reads app_1's secrets through the cache, the database holding `stored`.
    async fn read(cache: &RowCache, stored: &str) -> String {
        let found = cache
            .secrets("app_1", async { Ok(vec![secret(stored)]) })
            .await
            .unwrap();
        found[0].secret_hash.clone()
    }

    #[tokio::test]
    async fn a_row_is_served_until_something_changes() {
        let cache = RowCache::new(Duration::from_secs(60));
        assert_eq!(read(&cache, "first").await, "first");
        assert_eq!(
            read(&cache, "second").await,
            "first",
            "served from the cache"
        );
        cache.changed();
        assert_eq!(
            read(&cache, "third").await,
            "third",
            "read again after a change"
        );
    }

    #[tokio::test]
    async fn a_row_lives_at_most_its_time_to_live() {
        let cache = RowCache::new(Duration::from_millis(50));
        assert_eq!(read(&cache, "first").await, "first");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(read(&cache, "second").await, "second");
    }

    #[tokio::test]
    async fn a_row_read_while_something_changed_is_not_kept() {
        let cache = RowCache::new(Duration::from_secs(60));
        let stale = cache
            .secrets("app_1", async {
                // Another request changes the app while this one reads its old row.
                cache.changed();
                Ok(vec![secret("stale")])
            })
            .await
            .unwrap();
        assert_eq!(
            stale[0].secret_hash, "stale",
            "the reader gets what it read"
        );
        assert_eq!(read(&cache, "fresh").await, "fresh", "but it was not kept");
    }

    /// `callers` reads of app_1's secrets under way at once on a new cache, each with a load
    /// that counts itself and answers `stored` only once `open` is sent.
    struct Waiting {
        cache: Arc<RowCache>,
        loads: Arc<AtomicU64>,
        open: tokio::sync::watch::Sender<bool>,
        callers: Vec<tokio::task::JoinHandle<String>>,
    }

    /// Starts [`Waiting`]'s reads and gives them time to reach the cache.
    async fn waiting_reads(callers: usize, stored: &'static str) -> Waiting {
        let cache = Arc::new(RowCache::new(Duration::from_secs(60)));
        let loads = Arc::new(AtomicU64::new(0));
        let (open, gate) = tokio::sync::watch::channel(false);
        let callers = (0..callers)
            .map(|_| {
                let (cache, loads, mut gate) = (cache.clone(), loads.clone(), gate.clone());
                tokio::spawn(async move {
                    let load = async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.wait_for(|open| *open).await;
                        Ok(vec![secret(stored)])
                    };
                    cache.secrets("app_1", load).await.unwrap()[0]
                        .secret_hash
                        .clone()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        Waiting {
            cache,
            loads,
            open,
            callers,
        }
    }

    #[tokio::test]
    async fn callers_that_miss_at_once_share_one_load() {
        let w = waiting_reads(16, "once").await;
        w.open.send(true).unwrap();
        for caller in w.callers {
            assert_eq!(caller.await.unwrap(), "once");
        }
        assert_eq!(
            w.loads.load(Ordering::SeqCst),
            1,
            "one database read for sixteen callers"
        );
        assert_eq!(read(&w.cache, "again").await, "once", "and it was kept");
    }

    #[tokio::test]
    async fn a_load_begun_before_a_change_is_not_shared_with_callers_after_it() {
        let w = waiting_reads(1, "before").await;
        assert_eq!(
            w.loads.load(Ordering::SeqCst),
            1,
            "the first load is under way"
        );
        w.cache.changed();
        let after = tokio::time::timeout(Duration::from_secs(5), read(&w.cache, "after")).await;
        assert_eq!(
            after.as_deref(),
            Ok("after"),
            "a read after the change does not wait for the load begun before it"
        );
        w.open.send(true).unwrap();
        for caller in w.callers {
            assert_eq!(
                caller.await.unwrap(),
                "before",
                "its caller gets what it read"
            );
        }
        assert_eq!(
            read(&w.cache, "later").await,
            "after",
            "the row kept is the one read after the change"
        );
    }

    #[tokio::test]
    async fn missing_rows_and_errors_are_not_kept_and_zero_turns_it_off() {
        let cache = RowCache::new(Duration::from_secs(60));
        let none = cache.secrets("app_1", async { Ok(Vec::new()) }).await;
        assert!(none.unwrap().is_empty());
        assert_eq!(
            read(&cache, "now").await,
            "now",
            "an empty answer was not kept"
        );
        let failed = cache
            .client("app_2", async { Err(StoreError::Backend("down".into())) })
            .await;
        assert!(matches!(failed, Err(StoreError::Backend(_))));
        let unknown = cache.client("app_2", async { Ok(None) }).await.unwrap();
        assert!(unknown.is_none());

        let off = RowCache::new(Duration::ZERO);
        assert_eq!(read(&off, "first").await, "first");
        assert_eq!(read(&off, "second").await, "second");
    }
}
