//! An account's short lists, read in one statement when a request asks for
//! several of them at once (the client home asks for five): the resolver
//! that makes the account looks ahead at what is selected under it, and the
//! first list resolver to run reads them all (`people::overview`); the
//! others take their part. A request asking for one list reads it on its
//! own, as before: the combined statement would only cost more.

use std::sync::Arc;

use async_graphql::{Context, Lookahead, Result};
use switchboard_core::calls::{self as call_records, BilledCall};
use switchboard_core::people::overview::{self, Overview, Wanted};
use switchboard_core::{db, AccountId};

use crate::{internal, pool};

/// The lists asked for under one account, and what was read of them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lists {
    wanted: Wanted,
    read: Arc<tokio::sync::OnceCell<Overview>>,
}

/// What a list field takes when its argument is not given, and its cap;
/// the fields' own defaults in `types.rs` are the same.
const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 100;

impl Lists {
    /// The lists selected under `account` (a lookahead at the account's
    /// field). With fewer than two, nothing is read ahead.
    pub(crate) fn ahead(account: Lookahead<'_>) -> Lists {
        let limit = |field: &str, argument: &str| -> i64 {
            account
                .field(field)
                .selection_fields()
                .iter()
                .map(|selected| {
                    selected
                        .arguments()
                        .ok()
                        .and_then(|arguments| {
                            arguments
                                .into_iter()
                                .find(|(name, _)| name.as_str() == argument)
                                .map(|(_, value)| match value {
                                    async_graphql::Value::Number(n) => n.as_i64(),
                                    _ => None,
                                })
                        })
                        .unwrap_or(Some(DEFAULT_LIMIT))
                        .unwrap_or(DEFAULT_LIMIT)
                        .clamp(1, MAX_LIMIT)
                })
                .max()
                .unwrap_or(0)
        };
        let wanted = Wanted {
            pbxes: account.field("pbxes").exists(),
            orders: account.field("orders").exists(),
            replenishments: limit("replenishments", "first"),
            entries: limit("recentEntries", "limit"),
            calls: limit("recentCalls", "limit"),
        };
        let asked = [
            wanted.pbxes,
            wanted.orders,
            wanted.replenishments > 0,
            wanted.entries > 0,
            wanted.calls > 0,
        ]
        .into_iter()
        .filter(|&asked| asked)
        .count();
        Lists {
            wanted: if asked >= 2 {
                wanted
            } else {
                Wanted::default()
            },
            read: Default::default(),
        }
    }

    /// The lists, read once for this account in this request; none when
    /// they were not looked ahead at.
    async fn get(&self, ctx: &Context<'_>, account: i64) -> Result<Option<&Overview>> {
        if !self.wanted.any() {
            return Ok(None);
        }
        let overview = self
            .read
            .get_or_try_init(|| async {
                let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
                overview::read(
                    &mut conn,
                    AccountId(account),
                    self.wanted,
                    chrono::Utc::now(),
                )
                .await
                .map_err(internal)
            })
            .await?;
        Ok(Some(overview))
    }

    pub(crate) async fn pbxes(
        &self,
        ctx: &Context<'_>,
        account: i64,
    ) -> Result<Option<Vec<switchboard_core::commerce::pbxes::Pbx>>> {
        if !self.wanted.pbxes {
            return Ok(None);
        }
        Ok(self.get(ctx, account).await?.and_then(|o| o.pbxes.clone()))
    }

    pub(crate) async fn orders(
        &self,
        ctx: &Context<'_>,
        account: i64,
    ) -> Result<Option<Vec<switchboard_core::commerce::orders::Order>>> {
        if !self.wanted.orders {
            return Ok(None);
        }
        Ok(self.get(ctx, account).await?.and_then(|o| o.orders.clone()))
    }

    /// The newest `limit` top-up attempts, when read ahead with as many.
    pub(crate) async fn replenishments(
        &self,
        ctx: &Context<'_>,
        account: i64,
        limit: i64,
    ) -> Result<Option<Vec<switchboard_core::billing::replenish::Replenishment>>> {
        self.newest(ctx, account, limit, self.wanted.replenishments, |o| {
            o.replenishments.as_deref()
        })
        .await
    }

    /// The newest `limit` ledger entries, when read ahead with as many.
    pub(crate) async fn entries(
        &self,
        ctx: &Context<'_>,
        account: i64,
        limit: i64,
    ) -> Result<Option<Vec<switchboard_core::money::ledger::StatementLine>>> {
        self.newest(ctx, account, limit, self.wanted.entries, |o| {
            o.entries.as_deref()
        })
        .await
    }

    /// The first `limit` of a list read ahead with `read_ahead` rows.
    async fn newest<T: Clone>(
        &self,
        ctx: &Context<'_>,
        account: i64,
        limit: i64,
        read_ahead: i64,
        list: impl FnOnce(&Overview) -> Option<&[T]>,
    ) -> Result<Option<Vec<T>>> {
        if limit > read_ahead {
            return Ok(None);
        }
        Ok(self
            .get(ctx, account)
            .await?
            .and_then(list)
            .map(|list| first(list, limit)))
    }

    /// The last `limit` calls, when read ahead with as many: this month's
    /// from the overview, and the months before read now if this month has
    /// fewer.
    pub(crate) async fn calls(
        &self,
        ctx: &Context<'_>,
        account: i64,
        limit: i64,
    ) -> Result<Option<Vec<BilledCall>>> {
        if limit > self.wanted.calls {
            return Ok(None);
        }
        let Some(overview) = self.get(ctx, account).await? else {
            return Ok(None);
        };
        let Some(this_month) = overview.calls.as_ref() else {
            return Ok(None);
        };
        let found = first(this_month, limit);
        let limit = usize::try_from(limit).unwrap_or(0);
        if found.len() >= limit {
            return Ok(Some(found));
        }
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        call_records::older_calls(&mut conn, AccountId(account), overview.now, found, limit)
            .await
            .map(Some)
            .map_err(internal)
    }
}

fn first<T: Clone>(list: &[T], limit: i64) -> Vec<T> {
    list.iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .cloned()
        .collect()
}
