//! The plans on sale, held in memory. The storefront's pages read them on
//! every visit and they change only when staff change them, so each visit
//! reading them from the database would be a round trip spent for nothing.
//!
//! A change made through this instance empties the copy once committed
//! ([`Catalogue::forget`]); a change made through another instance of the
//! same database is seen here once the copy is older than its freshness
//! window, when the next visit reads the table again. What a signup is
//! charged is always read from the table, never from this copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use crate::commerce::plans::{self, Plan};

/// How long a copy serves before the table is read again, so another
/// instance's change shows here within this.
pub const FRESH_FOR: Duration = Duration::from_secs(5);

/// Every plan (hidden ones too) in catalogue order, as last read.
#[derive(Clone, Debug)]
pub struct Catalogue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fresh_for: Duration,
    copy: RwLock<Option<Copy>>,
    /// Moved on by every `forget`, so a read that began before a change and
    /// ends after it does not keep what it read.
    generation: AtomicU64,
}

#[derive(Debug)]
struct Copy {
    read_at: Instant,
    plans: Arc<Vec<Plan>>,
}

impl Default for Catalogue {
    fn default() -> Catalogue {
        Catalogue::new(FRESH_FOR)
    }
}

impl Catalogue {
    /// An empty catalogue whose copies serve for `fresh_for`.
    pub fn new(fresh_for: Duration) -> Catalogue {
        Catalogue {
            inner: Arc::new(Inner {
                fresh_for,
                copy: RwLock::new(None),
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// The plans on sale, in catalogue order.
    pub async fn on_sale(&self, conn: &mut AsyncPgConnection) -> QueryResult<Vec<Plan>> {
        Ok(self
            .all(conn)
            .await?
            .iter()
            .filter(|plan| plan.active)
            .cloned()
            .collect())
    }

    /// A plan on sale by its address name.
    pub async fn on_sale_by_slug(
        &self,
        conn: &mut AsyncPgConnection,
        slug: &str,
    ) -> QueryResult<Option<Plan>> {
        Ok(self
            .all(conn)
            .await?
            .iter()
            .find(|plan| plan.active && plan.slug == slug)
            .cloned())
    }

    /// The copy when it is fresh; `None` when the table must be read.
    pub fn fresh(&self) -> Option<Arc<Vec<Plan>>> {
        let copy = self.inner.copy.read().unwrap_or_else(|p| p.into_inner());
        copy.as_ref()
            .filter(|copy| copy.read_at.elapsed() < self.inner.fresh_for)
            .map(|copy| copy.plans.clone())
    }

    /// Every plan, from the copy when fresh, else read and kept.
    async fn all(&self, conn: &mut AsyncPgConnection) -> QueryResult<Arc<Vec<Plan>>> {
        if let Some(plans) = self.fresh() {
            return Ok(plans);
        }
        let generation = self.inner.generation.load(Ordering::Acquire);
        let read_at = Instant::now();
        let plans = Arc::new(plans::list(conn, true).await?);
        let mut copy = self.inner.copy.write().unwrap_or_else(|p| p.into_inner());
        if self.inner.generation.load(Ordering::Acquire) == generation {
            *copy = Some(Copy {
                read_at,
                plans: plans.clone(),
            });
        }
        Ok(plans)
    }

    /// Drops the copy: call once a change to plans has committed.
    pub fn forget(&self) {
        let mut copy = self.inner.copy.write().unwrap_or_else(|p| p.into_inner());
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        *copy = None;
    }
}
