//! The plans on sale, held in memory. The storefront's pages read them on
//! every visit and they change only when staff change them, so each visit
//! reading them from the database would be a round trip spent for nothing.
//!
//! The copy is trusted only while this instance listens on
//! `switchboard_catalogue`, where the database announces every committed
//! change to `plans` (a trigger: staff's changes through any instance, and
//! changes made by hand); each announcement empties it. While the listening
//! connection is down, every visit reads the table, as before. A change made
//! through this instance also empties it at once ([`Catalogue::forget`]),
//! without waiting for the announcement. What a signup is charged is always
//! read from the table, never from this copy.
//!
//! The storefront's pages that show nothing but the catalogue (the home and
//! the plans, as a visitor who is not signed in sees them) are kept here as
//! made, under the same rule: trusted while announcements are heard, and
//! dropped with the copy on every change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use futures::StreamExt;

use crate::commerce::plans::{self, Plan};

/// Where the database announces changes to the catalogue.
pub const CHANNEL: &str = "switchboard_catalogue";

/// Every plan (hidden ones too) in catalogue order, as last read.
#[derive(Clone, Debug)]
pub struct Catalogue {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Whether announcements are being heard, so a copy can be trusted.
    listening: AtomicBool,
    copy: RwLock<Option<Arc<Vec<Plan>>>>,
    /// Moved on by every `forget`, so a read that began before a change and
    /// ends after it does not keep what it read.
    generation: AtomicU64,
    /// Pages made from the catalogue alone, by name; see [`Catalogue::page`].
    pages: RwLock<HashMap<&'static str, Arc<str>>>,
}

impl Default for Catalogue {
    fn default() -> Catalogue {
        Catalogue {
            inner: Arc::new(Inner::default()),
        }
    }
}

impl Catalogue {
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

    /// The copy when it can be trusted; `None` when the table must be read.
    pub fn fresh(&self) -> Option<Arc<Vec<Plan>>> {
        if !self.inner.listening.load(Ordering::Acquire) {
            return None;
        }
        let copy = self.inner.copy.read().unwrap_or_else(|p| p.into_inner());
        copy.clone()
    }

    /// Every plan, from the copy when fresh, else read and kept.
    async fn all(&self, conn: &mut AsyncPgConnection) -> QueryResult<Arc<Vec<Plan>>> {
        if let Some(plans) = self.fresh() {
            return Ok(plans);
        }
        let generation = self.inner.generation.load(Ordering::Acquire);
        let plans = Arc::new(plans::list(conn, true).await?);
        let mut copy = self.inner.copy.write().unwrap_or_else(|p| p.into_inner());
        if self.inner.generation.load(Ordering::Acquire) == generation {
            *copy = Some(plans.clone());
        }
        Ok(plans)
    }

    /// Drops the copy: call once a change to plans has committed.
    pub fn forget(&self) {
        let mut copy = self.inner.copy.write().unwrap_or_else(|p| p.into_inner());
        let mut pages = self.inner.pages.write().unwrap_or_else(|p| p.into_inner());
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        *copy = None;
        pages.clear();
    }

    /// Where the catalogue is in its changes: take it before reading the
    /// plans a page is made from, and give it to [`Catalogue::keep_page`].
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The page `name` as kept, when it can be trusted: a page whose
    /// content is the catalogue and nothing else of the request.
    pub fn page(&self, name: &str) -> Option<Arc<str>> {
        if !self.inner.listening.load(Ordering::Acquire) {
            return None;
        }
        let pages = self.inner.pages.read().unwrap_or_else(|p| p.into_inner());
        pages.get(name).cloned()
    }

    /// Keeps `page`, made from the plans as they were at `generation`,
    /// unless the catalogue has changed since or its changes are not being
    /// heard (then it is made afresh on the next visit).
    pub fn keep_page(&self, name: &'static str, generation: u64, page: Arc<str>) {
        if !self.inner.listening.load(Ordering::Acquire) {
            return;
        }
        let mut pages = self.inner.pages.write().unwrap_or_else(|p| p.into_inner());
        if self.inner.generation.load(Ordering::Acquire) == generation {
            pages.insert(name, page);
        }
    }
}

impl Catalogue {
    /// Listens for announced changes on a connection of its own to `url`,
    /// forgetting the copy on each, for as long as the process runs; a
    /// lost connection is made again after a second, the copy untrusted
    /// meanwhile.
    pub async fn follow_changes(self, url: String) {
        loop {
            if let Err(error) = self.listen(&url).await {
                tracing::warn!(%error, "not hearing catalogue changes; the storefront reads plans from the database until heard again");
            }
            self.inner.listening.store(false, Ordering::Release);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn listen(&self, url: &str) -> anyhow::Result<()> {
        let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let (heard, mut announcements) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(_) = message? {
                    let _ = heard.send(());
                }
            }
            anyhow::Ok(())
        });
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        // Changes committed before this were not announced to us.
        self.forget();
        self.inner.listening.store(true, Ordering::Release);
        while announcements.recv().await.is_some() {
            self.forget();
        }
        drop(client);
        driver.await??;
        anyhow::bail!("the listening connection closed")
    }
}
