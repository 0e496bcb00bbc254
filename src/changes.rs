//! Changes that copies kept in memory must hear of, whichever process made them.
//!
//! Triggers send a notice on the [`CHANNEL`] when a session ends or gets a new id, and when a
//! user's email, name, roles or state change (`migrations/…_change_notices.sql`). Each
//! `attest serve` listens on a connection of its own ([`Listening`]) and its caches forget what
//! a notice names, normally a few milliseconds after the change commits. A cache serves only
//! while that connection is known to be up: when it drops, or stays silent past the heartbeat
//! every process sends, every cache is emptied and stays unused until the connection is back,
//! because notices sent meanwhile are lost. A handler that makes such a change also tells its
//! own process's caches as soon as it commits ([`Changes::forget`]), so the next request it
//! serves never waits for the notice.
//!
//! A read that fills a cache takes a [`Mark`] before it asks the database; what it read is kept
//! only if no change was told since, so a notice that overtakes a slow read is never undone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::identity::UserId;

/// The notification channel the triggers send on.
pub const CHANNEL: &str = "attest_changes";

const HEARTBEAT_PAYLOAD: &str = "heartbeat";

/// How often each process sends a heartbeat notice, and how long the listener may hear
/// nothing: any notice proves the listening connection alive, and none for `silence` means it
/// is not.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    pub every: Duration,
    pub silence: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(10),
            silence: Duration::from_secs(30),
        }
    }
}

/// How long to wait before listening again after the connection failed, doubled on each
/// failure in a row up to [`MAX_RETRY`].
const RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// What a notice says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The session with this token hash ended or got a new id.
    Session([u8; 32]),
    /// This user's email, name, roles or state changed.
    User(UserId),
    /// Anything may have changed: notices may have been missed, or a table was emptied.
    Everything,
}

impl Change {
    /// Reads a notice: `session:<hex of the hash>` or `user:<uuid>`; `None` for a heartbeat.
    /// A notice this process cannot read is taken as [`Change::Everything`]: forgetting too
    /// much is only slower.
    pub fn parse(payload: &str) -> Option<Self> {
        if payload == HEARTBEAT_PAYLOAD {
            return None;
        }
        let parsed = match payload.split_once(':') {
            Some(("session", hex)) => parse_hash(hex).map(Self::Session),
            Some(("user", id)) => id.parse().ok().map(|id| Self::User(UserId(id))),
            _ => None,
        };
        Some(parsed.unwrap_or(Self::Everything))
    }
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    crate::crypto::unhex(hex)?.try_into().ok()
}

/// A value kept under a session's token hash, on behalf of one user.
pub trait OfUser: Clone + Send + Sync + 'static {
    fn belongs_to(&self, user: UserId) -> bool;
}

/// What one process has heard: whether it is listening, how many changes it was told of, and
/// the caches to tell. Cheap to clone.
#[derive(Clone, Default)]
pub struct Changes {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    listening: AtomicBool,
    /// Counts every change told; a [`Mark`] is its value when a read began.
    told: AtomicU64,
    caches: Mutex<Vec<Weak<dyn Forget>>>,
}

/// The count of changes told when a read began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(u64);

impl Changes {
    /// A new, empty cache of at most `capacity` values, which forgets what the changes this
    /// process is told of make stale.
    pub fn cache<V: OfUser>(&self, capacity: usize) -> Cache<V> {
        let entries = Arc::new(Entries {
            map: Mutex::new(HashMap::new()),
            capacity,
        });
        let weak: Weak<dyn Forget> = Arc::downgrade(&entries) as Weak<dyn Forget>;
        lock(&self.shared.caches).push(weak);
        Cache {
            entries,
            changes: self.clone(),
        }
    }

    /// Whether caches may serve: the listening connection is up.
    pub fn is_listening(&self) -> bool {
        self.shared.listening.load(Ordering::SeqCst)
    }

    /// Has every cache of this process forget what `change` makes stale: called for each
    /// notice, and by a handler right after it commits such a change.
    pub fn forget(&self, change: &Change) {
        self.shared.told.fetch_add(1, Ordering::SeqCst);
        let mut caches = lock(&self.shared.caches);
        caches.retain(|cache| match cache.upgrade() {
            Some(cache) => {
                cache.forget(change);
                true
            }
            None => false,
        });
    }

    fn mark(&self) -> Mark {
        Mark(self.shared.told.load(Ordering::SeqCst))
    }

    fn set_listening(&self, listening: bool) {
        self.shared.listening.store(listening, Ordering::SeqCst);
        // Whatever was kept may have missed a notice while the connection was down.
        self.forget(&Change::Everything);
    }
}

trait Forget: Send + Sync {
    fn forget(&self, change: &Change);
}

struct Entries<V> {
    map: Mutex<HashMap<[u8; 32], V>>,
    capacity: usize,
}

impl<V: OfUser> Forget for Entries<V> {
    fn forget(&self, change: &Change) {
        let mut map = lock(&self.map);
        match change {
            Change::Session(hash) => {
                map.remove(hash);
            }
            Change::User(user) => map.retain(|_, value| !value.belongs_to(*user)),
            Change::Everything => map.clear(),
        }
    }
}

/// Values kept in memory under a session's token hash, forgotten when a change makes them
/// stale.
#[derive(Clone)]
pub struct Cache<V> {
    entries: Arc<Entries<V>>,
    changes: Changes,
}

impl<V: OfUser> Cache<V> {
    /// The value kept under `key`, if any, while this process is listening.
    pub fn get(&self, key: &[u8; 32]) -> Option<V> {
        if !self.changes.is_listening() {
            return None;
        }
        lock(&self.entries.map).get(key).cloned()
    }

    /// Call before reading what [`Cache::put`] will keep.
    pub fn mark(&self) -> Mark {
        self.changes.mark()
    }

    /// Keeps `value` under `key` unless a change was told since `mark` or this process is not
    /// listening. A full cache starts afresh rather than tracking what was used last.
    pub fn put(&self, mark: Mark, key: [u8; 32], value: V) {
        let mut map = lock(&self.entries.map);
        // Checked under the lock that `forget` takes after counting a change: a change counted
        // later will find the value and forget it.
        if !self.changes.is_listening() || self.changes.mark() != mark {
            return;
        }
        if map.len() >= self.entries.capacity && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, value);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.entries.map).len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The tasks that listen for notices and send the heartbeat; stop them with
/// [`Listening::stop`].
pub struct Listening {
    listener: tokio::task::JoinHandle<()>,
    heartbeat: tokio::task::JoinHandle<()>,
    pool: PgPool,
}

impl Listening {
    /// Listens for notices on a connection of its own, opened like `pool`'s (not taken from
    /// it, so the listener never counts against the requests' connections), and tells
    /// `changes` of each; sends the heartbeat through `pool`. When the connection fails or
    /// falls silent it is opened again, a second later at first.
    pub fn start(changes: Changes, pool: &PgPool) -> Self {
        Self::start_with(changes, pool, Heartbeat::default())
    }

    pub fn start_with(changes: Changes, pool: &PgPool, heartbeat: Heartbeat) -> Self {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with((*pool.connect_options()).clone());
        Self {
            listener: tokio::spawn(listen(changes, own.clone(), heartbeat.silence)),
            heartbeat: tokio::spawn(send_heartbeats(pool.clone(), heartbeat.every)),
            pool: own,
        }
    }

    /// Stops listening and closes the connection.
    pub async fn stop(self) {
        self.heartbeat.abort();
        self.listener.abort();
        let _ = self.listener.await;
        self.pool.close().await;
    }
}

async fn listen(changes: Changes, pool: PgPool, silence: Duration) {
    let mut retry = RETRY;
    loop {
        match listen_once(&changes, &pool, silence).await {
            Ok(()) => {
                tracing::warn!("the connection listening for changes was lost");
                retry = RETRY;
            }
            Err(error) => tracing::warn!(error = %error, "listening for changes failed"),
        }
        changes.set_listening(false);
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// Listens until the connection is lost (`Ok`, after it had listened) or cannot be opened or
/// falls silent (`Err`).
async fn listen_once(changes: &Changes, pool: &PgPool, silence: Duration) -> sqlx::Result<()> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection ends this listener; a new one is made above, so that "listening" is
    // said only once the channel is listened to again.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    changes.set_listening(true);
    loop {
        // A connection dropped without a word (a partition, a proxy's idle timeout) would wait
        // here for ever: the heartbeats say when it has gone quiet for too long.
        let Ok(received) = tokio::time::timeout(silence, listener.try_recv()).await else {
            return Err(sqlx::Error::Protocol(format!(
                "no notice, not even a heartbeat, for {silence:?}"
            )));
        };
        let Some(notice) = received? else {
            return Ok(());
        };
        if let Some(change) = Change::parse(notice.payload()) {
            changes.forget(&change);
        }
    }
}

/// Sends a heartbeat notice `every` so often, for every process's listener to hear.
async fn send_heartbeats(pool: PgPool, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sent = async {
            crate::db::notify(&mut *pool.acquire().await?, CHANNEL, HEARTBEAT_PAYLOAD).await
        }
        .await;
        if let Err(error) = sent {
            tracing::debug!(error = %error, "sending the heartbeat notice failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Owned(UserId);

    impl OfUser for Owned {
        fn belongs_to(&self, user: UserId) -> bool {
            self.0 == user
        }
    }

    fn listening() -> Changes {
        let changes = Changes::default();
        changes.set_listening(true);
        changes
    }

    #[test]
    fn reads_notices_skips_heartbeats_and_takes_any_other_as_everything() {
        let hex = "ab".repeat(32);
        assert_eq!(
            Change::parse(&format!("session:{hex}")),
            Some(Change::Session([0xab; 32]))
        );
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            Change::parse(&format!("user:{id}")),
            Some(Change::User(UserId(id)))
        );
        assert_eq!(Change::parse(HEARTBEAT_PAYLOAD), None);
        for odd in ["session:abc", "user:nope", "everything", "", "session:zz"] {
            assert_eq!(Change::parse(odd), Some(Change::Everything), "{odd}");
        }
    }

    #[test]
    fn keeps_nothing_and_serves_nothing_unless_listening() {
        let changes = Changes::default();
        let cache = changes.cache::<Owned>(10);
        let user = UserId(uuid::Uuid::new_v4());
        cache.put(cache.mark(), [1; 32], Owned(user));
        assert!(cache.is_empty());

        changes.set_listening(true);
        cache.put(cache.mark(), [1; 32], Owned(user));
        assert_eq!(cache.get(&[1; 32]), Some(Owned(user)));
        changes.set_listening(false);
        assert_eq!(cache.get(&[1; 32]), None);
        assert!(cache.is_empty(), "a lost connection empties the cache");
    }

    #[test]
    fn forgets_what_a_change_names_and_only_that() {
        let changes = listening();
        let cache = changes.cache::<Owned>(10);
        let (ann, bob) = (UserId(uuid::Uuid::new_v4()), UserId(uuid::Uuid::new_v4()));
        for (key, user) in [([1; 32], ann), ([2; 32], ann), ([3; 32], bob)] {
            cache.put(cache.mark(), key, Owned(user));
        }
        changes.forget(&Change::Session([3; 32]));
        assert_eq!(cache.get(&[3; 32]), None);
        assert_eq!(cache.len(), 2);
        changes.forget(&Change::User(ann));
        assert!(cache.is_empty());
    }

    #[test]
    fn a_read_overtaken_by_a_change_is_not_kept() {
        let changes = listening();
        let cache = changes.cache::<Owned>(10);
        let mark = cache.mark();
        // The change arrives while the read is on its way back from the database.
        changes.forget(&Change::Session([9; 32]));
        cache.put(mark, [1; 32], Owned(UserId(uuid::Uuid::new_v4())));
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_starts_afresh() {
        let changes = listening();
        let cache = changes.cache::<Owned>(2);
        let user = UserId(uuid::Uuid::new_v4());
        for n in 1..=3 {
            cache.put(cache.mark(), [n; 32], Owned(user));
        }
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&[3; 32]).is_some());
    }
}
