//! Records kept in memory under the revision they were read at.
//!
//! Triggers move an enrolment's revision (`enrolment_progress.revision`, from one sequence)
//! with every change its portfolio, caseload row or report row shows
//! (`migrations/…_portfolio_revision.sql`). A page reads the revision of what it shows in one
//! short statement (an enrolment's, or the largest of a cohort's) and draws from memory only
//! when it equals the one its records were read at: whichever process made a change, the next
//! request anywhere reads afresh. Nothing here needs the change notices of `crate::changes`.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::AppError;

/// Values kept per key with the revision they were read at (any value that moves with every
/// change, an `i64` by default). Cheap to clone; shared by every request of a process as a
/// request extension.
pub struct Kept<K, V, R = i64> {
    entries: Arc<Mutex<Entries<K, V, R>>>,
    capacity: usize,
}

/// Each value with the revision it was read at.
type Entries<K, V, R> = HashMap<K, (R, Arc<V>)>;

impl<K, V, R> Clone for Kept<K, V, R> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            capacity: self.capacity,
        }
    }
}

impl<K: Hash + Eq, V, R: PartialEq> Kept<K, V, R> {
    /// At most `capacity` values; a full store starts afresh rather than tracking what was
    /// used last.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Arc::default(),
            capacity,
        }
    }

    /// The value kept under `key` if it was read at `revision`.
    fn get(&self, key: &K, revision: &R) -> Option<Arc<V>> {
        lock(&self.entries)
            .get(key)
            .filter(|(at, _)| at == revision)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value`, read at `revision`, under `key`.
    fn put(&self, key: K, revision: R, value: Arc<V>) {
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (revision, value));
    }

    /// The value kept under `key` at `revision`, or else the one `read` makes, then kept so:
    /// `read` must begin after `revision` was read, so that what it reads is never older.
    /// With no key and revision (a page that is never kept) it only reads.
    pub async fn get_or_read<E, Read>(
        &self,
        kept_as: Option<(K, R)>,
        read: impl FnOnce() -> Read,
    ) -> Result<Arc<V>, E>
    where
        Read: Future<Output = Result<V, E>>,
    {
        let Some((key, revision)) = kept_as else {
            return Ok(Arc::new(read().await?));
        };
        if let Some(value) = self.get(&key, &revision) {
            return Ok(value);
        }
        let value = Arc::new(read().await?);
        self.put(key, revision, value.clone());
        Ok(value)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S, K, V, R> FromRequestParts<S> for Kept<K, V, R>
where
    S: Send + Sync,
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    R: Send + Sync + 'static,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "no {} kept in memory",
                std::any::type_name::<V>()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_a_value_only_at_the_revision_it_was_read_at() {
        let kept: Kept<u8, &str> = Kept::new(10);
        kept.put(1, 7, Arc::new("seven"));
        assert_eq!(kept.get(&1, &7).as_deref(), Some(&"seven"));
        assert_eq!(kept.get(&1, &8), None, "a later revision reads afresh");
        assert_eq!(kept.get(&2, &7), None);
        kept.put(1, 8, Arc::new("eight"));
        assert_eq!(kept.get(&1, &7), None);
        assert_eq!(kept.get(&1, &8).as_deref(), Some(&"eight"));
    }

    #[tokio::test]
    async fn reads_once_per_revision_and_always_when_not_kept() {
        let kept: Kept<u8, u32> = Kept::new(10);
        let reads = std::cell::Cell::new(0);
        let read = || async {
            reads.set(reads.get() + 1);
            Ok::<u32, ()>(reads.get())
        };
        assert_eq!(*kept.get_or_read(Some((1, 5)), read).await.unwrap(), 1);
        assert_eq!(*kept.get_or_read(Some((1, 5)), read).await.unwrap(), 1);
        assert_eq!(*kept.get_or_read(Some((1, 6)), read).await.unwrap(), 2);
        assert_eq!(*kept.get_or_read(None, read).await.unwrap(), 3);
        assert_eq!(*kept.get_or_read(None, read).await.unwrap(), 4);
    }

    #[test]
    fn a_full_store_starts_afresh() {
        let kept: Kept<u8, u8> = Kept::new(2);
        for key in 1..=3 {
            kept.put(key, 1, Arc::new(key));
        }
        assert_eq!(kept.len(), 1);
        assert!(kept.get(&3, &1).is_some());
    }
}
