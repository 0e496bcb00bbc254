//! Published standards held in memory. A stored standard version never changes, so its page
//! is served without the database: the newest version of each URN is kept, checked again at
//! most every [`RECHECK`] (another process may import a newer version), and the page a
//! visitor who is not signed in sees is kept rendered, with an ETag, for the day it was
//! rendered on (the review notice depends on the date).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bytes::Bytes;
use sqlx::{PgConnection, PgPool};
use time::{Date, Duration, OffsetDateTime};

use super::db;
use super::model::{Criterion, CriterionKind, Standard, StandardId};
use crate::error::AppError;

/// How long a kept standard is served before the database is asked for a newer version.
pub const RECHECK: Duration = Duration::seconds(5);

/// A standard version with its criteria, by kind.
#[derive(Debug)]
pub struct Published {
    pub standard: Standard,
    pub performance: Vec<Criterion>,
    pub knowledge: Vec<Criterion>,
    /// The page for visitors who are not signed in, as rendered on a date, and its ETag.
    anonymous_page: Mutex<Option<(Date, Bytes, String)>>,
}

impl Published {
    /// Every criterion in the standard's order: performance criteria, then knowledge items.
    pub fn criteria(&self) -> impl Iterator<Item = &Criterion> {
        self.performance.iter().chain(&self.knowledge)
    }

    /// The codes of every criterion, in the standard's order.
    pub fn codes(&self) -> Vec<String> {
        self.criteria().map(|c| c.code.clone()).collect()
    }

    /// The page for visitors on `today`, rendered by `render` when none is kept for that day.
    pub fn anonymous_page<E>(
        &self,
        today: Date,
        render: impl FnOnce() -> Result<String, E>,
    ) -> Result<(Bytes, String), E> {
        let mut kept = lock(&self.anonymous_page);
        if let Some((day, page, etag)) = kept.as_ref()
            && *day == today
        {
            return Ok((page.clone(), etag.clone()));
        }
        let page = Bytes::from(render()?);
        let etag = format!(
            "\"{}\"",
            &crate::crypto::hex(&crate::crypto::sha256(&page))[..32]
        );
        *kept = Some((today, page.clone(), etag.clone()));
        Ok((page, etag))
    }
}

/// When a URN was last looked up, and the version that was its newest then.
struct Checked {
    at: OffsetDateTime,
    newest: StandardId,
}

/// Every standard version asked for, by id, and the newest version of each URN asked for.
#[derive(Default)]
pub struct StandardCache {
    versions: Mutex<HashMap<StandardId, Arc<Published>>>,
    newest: Mutex<HashMap<String, Checked>>,
}

/// The standards held in memory, as handlers take them: the app puts one in every request's
/// extensions, so the state of the portal need not know about standards.
#[derive(Clone, Default)]
pub struct Standards(pub Arc<StandardCache>);

impl std::ops::Deref for Standards {
    type Target = StandardCache;

    fn deref(&self) -> &StandardCache {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Standards {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the standards are not in memory")))
    }
}

/// Versions, and URNs, kept at most.
const KEPT: usize = 64;

impl StandardCache {
    /// The newest version of `urn`, from memory when it was checked within [`RECHECK`] of
    /// `now`.
    pub async fn latest(
        &self,
        pool: &PgPool,
        urn: &str,
        now: OffsetDateTime,
    ) -> sqlx::Result<Option<Arc<Published>>> {
        let checked = lock(&self.newest)
            .get(urn)
            .filter(|c| now - c.at < RECHECK)
            .map(|c| c.newest);
        if let Some(published) = checked.and_then(|id| self.kept(id)) {
            return Ok(Some(published));
        }
        let mut conn = pool.acquire().await?;
        let Some(newest) = db::latest_id_by_urn(&mut conn, urn).await? else {
            return Ok(None);
        };
        let published = self.version(&mut conn, newest).await?;
        keep(&self.newest, urn.to_owned(), Checked { at: now, newest });
        Ok(Some(published))
    }

    /// Standard version `id` with its criteria: a stored version never changes, so once read
    /// it is kept.
    pub async fn version(
        &self,
        conn: &mut PgConnection,
        id: StandardId,
    ) -> sqlx::Result<Arc<Published>> {
        if let Some(published) = self.kept(id) {
            return Ok(published);
        }
        let published = Arc::new(load(conn, id).await?);
        // A version is stored with its criteria in one transaction; one read without them is
        // not kept, so it cannot stand for the version for the life of the process.
        if published.criteria().next().is_some() {
            keep(&self.versions, id, published.clone());
        }
        Ok(published)
    }

    fn kept(&self, id: StandardId) -> Option<Arc<Published>> {
        lock(&self.versions).get(&id).cloned()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps `value` under `key`, starting afresh once [`KEPT`] keys are kept (URNs come from
/// addresses people type).
fn keep<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut map = lock(map);
    if map.len() >= KEPT && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

async fn load(conn: &mut PgConnection, id: StandardId) -> sqlx::Result<Published> {
    let standard = db::find(conn, id).await?;
    let (performance, knowledge) = db::list_criteria(conn, id)
        .await?
        .into_iter()
        .partition(|c| c.kind == CriterionKind::Performance);
    Ok(Published {
        standard,
        performance,
        knowledge,
        anonymous_page: Mutex::default(),
    })
}
