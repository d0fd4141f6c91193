//! Several PBXs on one balance: ordering another PBX paid from the balance,
//! naming each PBX, and what each cost in a month.

use async_graphql::{Context, ErrorExtensions, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use switchboard_core::audit::{self, Change};
use switchboard_core::billing::per_pbx;
use switchboard_core::commerce::pbx_orders::{self, PbxOrderError, PbxOrderRequest};
use switchboard_core::commerce::pbxes;
use switchboard_core::people::accounts;
use switchboard_core::{db, AccountId};

use crate::commerce::{commerce, Order, Pbx};
use crate::guards::{self, Allow, CUSTOMERS, SIGNED_IN};
use crate::mutation::actor;
use crate::types::{parse_id, Money};
use crate::{internal, pool};

/// What one PBX cost in a month; with no PBX, the charges tied to none, or
/// the account's total.
#[derive(SimpleObject, Clone, Debug)]
pub struct PbxUsageLine {
    /// The PBX; null for charges tied to no PBX, and for the total.
    pub pbx_id: Option<ID>,
    /// What its client calls it (empty for none).
    pub label: String,
    /// Calls that started in the month.
    pub calls: i64,
    /// What those calls cost.
    pub calls_cost: Money,
    /// Plan fees and other charges posted in the month.
    pub charges: Money,
    /// Calls and charges.
    pub total: Money,
}

impl PbxUsageLine {
    fn new(line: &per_pbx::PbxUsage, currency: &str) -> PbxUsageLine {
        PbxUsageLine {
            pbx_id: line.pbx_id.map(|id| ID(id.to_string())),
            label: line.label.clone(),
            calls: line.calls,
            calls_cost: Money::new(line.calls_cost, currency),
            charges: Money::new(line.charges, currency),
            total: Money::new(line.total(), currency),
        }
    }

    /// Every line of a month, as the schema shows them.
    pub(crate) fn all(lines: &[per_pbx::PbxUsage], currency: &str) -> Vec<PbxUsageLine> {
        lines
            .iter()
            .map(|l| PbxUsageLine::new(l, currency))
            .collect()
    }
}

/// A month of an account, PBX by PBX.
#[derive(SimpleObject, Clone, Debug)]
pub struct PbxUsageMonth {
    /// `November 2026`.
    pub month: String,
    /// The month's first moment, in the account's time zone.
    pub from: DateTime<Utc>,
    /// The next month's first moment.
    pub to: DateTime<Utc>,
    /// Every PBX of the account, oldest first, then the charges tied to no
    /// PBX if there were any.
    pub pbxes: Vec<PbxUsageLine>,
    /// The account's total: the sum of the lines.
    pub total: PbxUsageLine,
}

/// This month and the last of one account, per PBX, once read.
pub(crate) type RecentUsage = std::sync::Arc<tokio::sync::OnceCell<Vec<per_pbx::Month>>>;

/// `Account.pbxUsage`: the month `months_back` before this one.
///
/// The home and the report ask for this month and the last side by side:
/// the first of the two to run reads both in one statement, and the other
/// takes its month from it. A request for either alone reads the other too,
/// which costs less than a second statement would when both are asked.
pub(crate) async fn usage(
    ctx: &Context<'_>,
    account: &crate::types::Account,
    months_back: i32,
) -> Result<PbxUsageMonth> {
    if !(0..=24).contains(&months_back) {
        return Err("monthsBack must be between 0 and 24.".into());
    }
    let id = AccountId(crate::types::parse_id(&account.id)?);
    let read = |months: Vec<u32>| async move {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        per_pbx::months(
            &mut conn,
            id,
            &account.time_zone,
            &account.currency,
            Utc::now(),
            &months,
        )
        .await
        .map_err(internal)
    };
    let month = match months_back {
        0 | 1 => account
            .recent_usage
            .get_or_try_init(|| read(vec![0, 1]))
            .await?
            .get(months_back.unsigned_abs() as usize)
            .cloned(),
        _ => read(vec![months_back.unsigned_abs()]).await?.pop(),
    }
    .ok_or_else(|| internal("a month asked for was not read"))?;
    Ok(PbxUsageMonth {
        month: month.from.format("%B %Y").to_string(),
        from: month.from,
        to: month.to,
        pbxes: PbxUsageLine::all(&month.lines, &month.currency),
        total: PbxUsageLine::new(&per_pbx::total(&month.lines), &month.currency),
    })
}

/// Another PBX ordered.
#[derive(SimpleObject)]
pub struct OrderPbxPayload {
    /// The order, paid from the balance.
    pub order: Order,
    /// The PBX it bought, being provisioned.
    pub pbx: Pbx,
    /// False when this request key had been used: the first order, nothing
    /// charged now.
    pub new: bool,
}

/// Ordering and naming PBXs.
#[derive(Default)]
pub struct PbxesMutation;

#[Object]
impl PbxesMutation {
    /// Orders another PBX on `plan` (a slug), paid from the balance: the
    /// setup fee and the first month are charged at once and the PBX is
    /// provisioned as at signup. `accountId` is the viewer's own account
    /// unless a reseller names a sub-account. `requestKey` is made anew for
    /// each order form (16 to 64 letters, digits, `-`, `_`): sending it again
    /// returns the first order and charges nothing. When the balance does
    /// not cover the price, nothing is charged and the error's `missing`
    /// extension holds the amount lacking, in micro-units.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn order_pbx(
        &self,
        ctx: &Context<'_>,
        plan: String,
        request_key: String,
        account_id: Option<ID>,
    ) -> Result<OrderPbxPayload> {
        let user = guards::user(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let account = match account_id {
            None => user.account_id.ok_or("Your user belongs to no account.")?,
            Some(id) => {
                let id = parse_id(&id)?;
                match accounts::get(&mut conn, AccountId(id))
                    .await
                    .map_err(internal)?
                {
                    Some((row, _)) if guards::may_see_account(user, &row) => AccountId(id),
                    _ => return Err(format!("No account {id}.").into()),
                }
            }
        };
        let request = PbxOrderRequest {
            account,
            plan: &plan,
            request_key: &request_key,
        };
        let placed = match pbx_orders::order_pbx(
            &mut conn,
            &commerce(ctx)?.key,
            &actor(ctx),
            &request,
        )
        .await
        {
            Ok(placed) => placed,
            Err(PbxOrderError::Database(e)) => return Err(internal(e)),
            Err(PbxOrderError::Ledger(e)) => return Err(internal(e)),
            Err(error @ PbxOrderError::ShortOf { missing, .. }) => {
                return Err(async_graphql::Error::new(error.to_string())
                    .extend_with(|_, e| e.set("missing", missing.micros().to_string())))
            }
            Err(other) => return Err(other.to_string().into()),
        };
        let pbx = pbxes::get(&mut conn, placed.pbx_id)
            .await
            .map_err(internal)?
            .ok_or("The PBX vanished.")?;
        Ok(OrderPbxPayload {
            order: placed.order.into(),
            pbx: pbx.into(),
            new: placed.new,
        })
    }

    /// Names a PBX (at most 60 characters; empty clears it): its client's
    /// own (a reseller's sub-accounts' too), or any for staff. Audited.
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn set_pbx_label(&self, ctx: &Context<'_>, pbx_id: ID, label: String) -> Result<Pbx> {
        let user = guards::user(ctx)?;
        let id = parse_id(&pbx_id)?;
        let label = pbxes::parse_label(&label).map_err(|why| format!("The label {why}."))?;
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let not_found = || async_graphql::Error::new(format!("No PBX {id}."));
        let pbx = pbxes::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let owner = accounts::get(&mut conn, AccountId(pbx.account_id))
            .await
            .map_err(internal)?;
        if !owner.is_some_and(|(account, _)| guards::may_see_account(user, &account)) {
            return Err(not_found());
        }
        conn.transaction(async |conn| {
            let Some(before) = pbxes::set_label(conn, id, &label).await? else {
                return Err(diesel::result::Error::NotFound);
            };
            audit::record_change(
                conn,
                &actor,
                "pbx.set_label",
                &format!("pbx:{id}"),
                "",
                &Change::from_to(
                    serde_json::json!({ "label": before }),
                    serde_json::json!({ "label": label }),
                ),
            )
            .await
        })
        .await
        .map_err(internal)?;
        pbxes::get(&mut conn, id)
            .await
            .map_err(internal)?
            .map(Into::into)
            .ok_or_else(not_found)
    }
}
