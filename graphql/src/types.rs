//! The objects the schema returns.

use async_graphql::{
    ComplexObject, Context, Enum, InputValueError, InputValueResult, Result, Scalar, ScalarType,
    SimpleObject, Value, ID,
};
use chrono::{DateTime, Utc};
use switchboard_core::money::ledger::StatementLine;
use switchboard_core::people::accounts::Account as AccountRow;
use switchboard_core::people::{email_changes, users};
use switchboard_core::{db, money::ledger, AccountId, Money as CoreMoney, UserId};

use crate::{internal, pool};

/// An amount in micro-units (1 USD = 1 000 000), as a string of digits so
/// that no client rounds it through a floating-point number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Micros(pub i64);

#[Scalar(name = "Micros")]
impl ScalarType for Micros {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(Micros)
                .map_err(|_| InputValueError::custom("not an integer")),
            Value::Number(n) => n
                .as_i64()
                .map(Micros)
                .ok_or_else(|| InputValueError::custom("not an integer")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// An amount of money in one currency.
// Its texts are made when a field asks for them: a page lists dozens of
// amounts and most ask for one text of each, if any.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Money {
    pub micros: Micros,
    pub currency: String,
}

#[ComplexObject]
impl Money {
    /// Rounded half-even to cents, for people: `$12.35`.
    async fn formatted(&self) -> String {
        CoreMoney(self.micros.0).format(&self.currency)
    }

    /// For people, with every digit it has but at least cents: `$0.0042`
    /// (one call's cost, which `formatted` would show as `$0.00`).
    async fn exact(&self) -> String {
        CoreMoney(self.micros.0).format_exact(&self.currency)
    }
}

impl Money {
    pub fn new(amount: CoreMoney, currency: &str) -> Money {
        Money {
            micros: Micros(amount.micros()),
            currency: currency.to_owned(),
        }
    }
}

/// A price per minute, exactly as written in the price list (to nine
/// decimals); a call's cost is rounded once, to a micro-unit.
#[derive(SimpleObject, Clone, Debug)]
pub struct PerMinutePrice {
    /// The exact decimal: `0.0123456`.
    pub amount: String,
    pub currency: String,
    /// For people, with every decimal it has but at least cents: `$0.0123456`.
    pub formatted: String,
}

impl PerMinutePrice {
    pub fn new(price: switchboard_core::money::PerMinute, currency: &str) -> PerMinutePrice {
        PerMinutePrice {
            amount: price.decimal(),
            currency: currency.to_owned(),
            formatted: price.format(currency),
        }
    }
}

/// Who a user is to Switchboard.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Reseller,
    Staff,
    Admin,
}

impl From<switchboard_core::Role> for Role {
    fn from(role: switchboard_core::Role) -> Role {
        match role {
            switchboard_core::Role::Client => Role::Client,
            switchboard_core::Role::Reseller => Role::Reseller,
            switchboard_core::Role::Staff => Role::Staff,
            switchboard_core::Role::Admin => Role::Admin,
        }
    }
}

/// Where an account stands (DESIGN.md, Standing).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Good,
    Low,
    CallingSuspended,
    PoweredOff,
}

impl From<switchboard_core::Standing> for Standing {
    fn from(standing: switchboard_core::Standing) -> Standing {
        match standing {
            switchboard_core::Standing::Good => Standing::Good,
            switchboard_core::Standing::Low => Standing::Low,
            switchboard_core::Standing::CallingSuspended => Standing::CallingSuspended,
            switchboard_core::Standing::PoweredOff => Standing::PoweredOff,
        }
    }
}

impl From<Standing> for switchboard_core::Standing {
    fn from(standing: Standing) -> switchboard_core::Standing {
        match standing {
            Standing::Good => switchboard_core::Standing::Good,
            Standing::Low => switchboard_core::Standing::Low,
            Standing::CallingSuspended => switchboard_core::Standing::CallingSuspended,
            Standing::PoweredOff => switchboard_core::Standing::PoweredOff,
        }
    }
}

/// Retail accounts are end customers; wholesale accounts resell.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountKind {
    Retail,
    Wholesale,
}

/// The signed-in user.
// What the session already says is at hand; the addresses are read only
// when asked for, so a page that shows the username sends no statement for
// them.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct User {
    pub id: ID,
    pub username: String,
    pub role: Role,
    /// The user must choose a new password before doing anything else.
    pub must_change_password: bool,
    #[graphql(skip)]
    pub user_id: UserId,
}

#[ComplexObject]
impl User {
    /// Where their email goes, and where a link to set a new password is sent.
    async fn email(&self, ctx: &Context<'_>) -> Result<String> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(users::get(&mut conn, self.user_id)
            .await
            .map_err(internal)?
            .map(|u| u.email)
            .unwrap_or_default())
    }

    /// A new address asked for and waiting for its link to be followed.
    async fn pending_email(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(email_changes::pending(&mut conn, self.user_id)
            .await
            .map_err(internal)?
            .map(|p| p.new_email))
    }
}

/// Who is asking, and the account they act for.
#[derive(SimpleObject, Clone, Debug)]
pub struct ViewerInfo {
    pub user: User,
    /// The account a client or reseller belongs to; none for staff.
    pub account: Option<Account>,
}

/// How to reach an account's owner.
#[derive(SimpleObject, Clone, Debug)]
pub struct Contact {
    pub name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub address: String,
}

/// Who pays: one prepaid balance in one currency.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Account {
    pub id: ID,
    pub name: String,
    pub kind: AccountKind,
    pub currency: String,
    pub standing: Standing,
    /// Turned off by an admin, whatever the standing.
    pub turned_off: bool,
    /// Why an admin turned it off, while it is off.
    pub turned_off_reason: Option<String>,
    /// When an admin turned it off, while it is off.
    pub turned_off_at: Option<DateTime<Utc>>,
    pub balance: Money,
    pub low_balance_threshold: Money,
    pub credit_limit: Money,
    pub time_zone: String,
    pub contact: Contact,
    pub parent_id: Option<ID>,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub calling_plan: Option<i64>,
    /// When the current standing began.
    pub standing_since: DateTime<Utc>,
    /// The card kept for automatic top-ups; none when no card is saved.
    pub saved_card: Option<crate::billing::SavedCard>,
    pub auto_replenish: crate::billing::AutoReplenish,
    /// This month and the last per PBX, read once for this account in this
    /// request (see `pbxes::usage`).
    #[graphql(skip)]
    pub(crate) recent_usage: crate::pbxes::RecentUsage,
    /// The short lists selected under this account, read together (see
    /// `overview`).
    #[graphql(skip)]
    pub(crate) lists: crate::overview::Lists,
}

#[ComplexObject]
impl Account {
    /// The calling plan this account's PBXs' calls are billed with, over
    /// their plans', for staff; null when the plans' apply.
    #[graphql(guard = "crate::guards::Allow(crate::guards::STAFF)")]
    async fn calling_plan_id(&self) -> Option<ID> {
        self.calling_plan.map(|id| ID(id.to_string()))
    }

    /// The people who sign in for this account, for staff.
    #[graphql(
        guard = "crate::guards::Allow(crate::guards::STAFF)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn users(&self, ctx: &Context<'_>) -> Result<Vec<crate::people::UserProfile>> {
        let id = parse_id(&self.id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(
            switchboard_core::people::users::of_account(&mut conn, AccountId(id))
                .await
                .map_err(internal)?
                .into_iter()
                .map(Into::into)
                .collect(),
        )
    }

    /// This account's statement: every ledger entry, newest first, a page
    /// at a time.
    #[graphql(complexity = "(first.clamp(1, 200) as usize) * child_complexity")]
    async fn ledger_entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<async_graphql::connection::Connection<String, LedgerEntry>> {
        let (first, before) = crate::commerce::page(first, after)?;
        let id = parse_id(&self.id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let lines = ledger::entries_page(&mut conn, AccountId(id), before, first + 1)
            .await
            .map_err(internal)?;
        Ok(crate::commerce::connection(
            lines,
            first,
            before.is_some(),
            |line| line.entry_id,
            |line| LedgerEntry::new(line, &self.currency),
        ))
    }

    /// How the standing changed, newest first (at most 100), each with its
    /// time and cause.
    #[graphql(complexity = "(first.clamp(1, 100) as usize) * child_complexity")]
    async fn standing_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<crate::billing::StandingChange>> {
        crate::billing::standing_history(ctx, parse_id(&self.id)?, &self.currency, first).await
    }

    /// Automatic top-up attempts, newest first (at most 100).
    #[graphql(complexity = "(first.clamp(1, 100) as usize) * child_complexity")]
    async fn replenishments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<crate::billing::Replenishment>> {
        let id = parse_id(&self.id)?;
        let limit = i64::from(first.clamp(1, 100));
        if let Some(rows) = self.lists.replenishments(ctx, id, limit).await? {
            return Ok(crate::billing::Replenishment::all(rows, &self.currency));
        }
        crate::billing::replenishments(ctx, id, &self.currency, first).await
    }

    /// What the balance pays every month (a PBX's plan, …).
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn recurring_charges(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<crate::billing::RecurringCharge>> {
        crate::billing::recurring_charges(ctx, parse_id(&self.id)?).await
    }

    /// The statement of this month (0) or one of the 24 before it.
    #[graphql(complexity = "crate::limits::cost::REPORT + child_complexity")]
    async fn statement(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] months_back: i32,
    ) -> Result<crate::billing::Statement> {
        crate::billing::statement(ctx, parse_id(&self.id)?, months_back).await
    }

    /// What each PBX cost this month (0) or one of the 24 before it: its
    /// calls and its charges, with the account's total.
    #[graphql(complexity = "crate::limits::cost::REPORT + child_complexity")]
    async fn pbx_usage(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] months_back: i32,
    ) -> Result<crate::pbxes::PbxUsageMonth> {
        crate::pbxes::usage(ctx, self, months_back).await
    }

    /// The smallest and largest amount that may be added at once.
    async fn top_up_limits(&self, ctx: &Context<'_>) -> Result<crate::billing::TopUpLimits> {
        crate::billing::top_up_limits(ctx, &self.currency)
    }

    /// The newest ledger entries on this account, newest first (at most 100).
    #[graphql(complexity = "(limit.clamp(1, 100) as usize) * child_complexity")]
    async fn recent_entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Vec<LedgerEntry>> {
        let id = parse_id(&self.id)?;
        let limit = i64::from(limit.clamp(1, 100));
        let lines = match self.lists.entries(ctx, id, limit).await? {
            Some(lines) => lines,
            None => {
                let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
                ledger::recent_entries(&mut conn, AccountId(id), limit)
                    .await
                    .map_err(internal)?
            }
        };
        Ok(lines
            .into_iter()
            .map(|line| LedgerEntry::new(line, &self.currency))
            .collect())
    }

    /// This account's orders, newest first.
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn orders(&self, ctx: &Context<'_>) -> Result<Vec<crate::commerce::Order>> {
        let id = parse_id(&self.id)?;
        let rows = match self.lists.orders(ctx, id).await? {
            Some(rows) => rows,
            None => {
                let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
                switchboard_core::commerce::orders::of_account(&mut conn, AccountId(id))
                    .await
                    .map_err(internal)?
            }
        };
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// This account's last calls, newest first (at most 100): one line per
    /// call, however many phones rang.
    #[graphql(complexity = "(limit.clamp(1, 100) as usize) * child_complexity")]
    async fn recent_calls(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Vec<crate::calls::CallLine>> {
        let id = parse_id(&self.id)?;
        if let Some(calls) = self
            .lists
            .calls(ctx, id, i64::from(limit.clamp(1, 100)))
            .await?
        {
            return Ok(crate::calls::CallLine::all(calls, &self.currency));
        }
        crate::calls::recent(ctx, id, &self.currency, limit).await
    }

    /// A month of this account's calls, summed by status, direction,
    /// extension, PBX and day, in the account's time zone.
    #[graphql(complexity = "crate::limits::cost::REPORT + child_complexity")]
    async fn report(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] month: crate::calls::ReportMonth,
    ) -> Result<crate::calls::CallReport> {
        crate::calls::report(
            ctx,
            parse_id(&self.id)?,
            &self.currency,
            &self.time_zone,
            month,
        )
        .await
    }

    /// The calls behind a month's report, as CSV (times in the account's zone).
    #[graphql(complexity = "crate::limits::cost::CALLS_CSV")]
    async fn calls_csv(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] month: crate::calls::ReportMonth,
    ) -> Result<String> {
        crate::calls::calls_csv(
            ctx,
            parse_id(&self.id)?,
            &self.currency,
            &self.time_zone,
            month,
        )
        .await
    }

    /// This account's calls that started in `[from, to)` (all of them when
    /// not given), newest first, each with its exact cost.
    #[graphql(complexity = "(first.clamp(1, 200) as usize) * child_complexity")]
    async fn calls(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<async_graphql::connection::Connection<String, crate::calls::BilledCall>> {
        crate::calls::calls_page(
            ctx,
            parse_id(&self.id)?,
            &self.currency,
            from,
            to,
            first,
            after,
        )
        .await
    }

    /// This account's trouble tickets, newest first.
    #[graphql(complexity = "(first.clamp(1, 200) as usize) * child_complexity")]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<async_graphql::connection::Connection<String, crate::support::Ticket>> {
        crate::support::of_account(ctx, parse_id(&self.id)?, first, after).await
    }

    /// The services this account ordered, newest first.
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn service_orders(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<crate::services::ServiceOrder>> {
        crate::services::of_account(ctx, parse_id(&self.id)?).await
    }

    /// This account's phone numbers (ordered or active), by number.
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn numbers(&self, ctx: &Context<'_>) -> Result<Vec<crate::numbers::PhoneNumber>> {
        crate::numbers::of_account(ctx, parse_id(&self.id)?).await
    }

    /// Calls that reached each of this account's numbers in a month
    /// (`2026-11`, UTC), by number.
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn inbound_calls_by_number(
        &self,
        ctx: &Context<'_>,
        month: String,
    ) -> Result<Vec<crate::numbers::InboundNumberCalls>> {
        crate::numbers::inbound_of_account(ctx, parse_id(&self.id)?, &self.currency, &month).await
    }

    /// This account's PBXs, oldest first; they all draw on this balance.
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn pbxes(&self, ctx: &Context<'_>) -> Result<Vec<crate::commerce::Pbx>> {
        let id = parse_id(&self.id)?;
        let rows = match self.lists.pbxes(ctx, id).await? {
            Some(rows) => rows,
            None => {
                let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
                switchboard_core::commerce::pbxes::of_account(&mut conn, AccountId(id))
                    .await
                    .map_err(internal)?
            }
        };
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

impl Account {
    pub fn new(row: AccountRow, balance: CoreMoney) -> Account {
        let currency = row.currency.clone();
        Account {
            standing_since: row.standing_since,
            saved_card: crate::billing::SavedCard::of(&row),
            auto_replenish: crate::billing::AutoReplenish::of(&row),
            id: ID(row.id.to_string()),
            kind: match row.kind() {
                switchboard_core::AccountKind::Retail => AccountKind::Retail,
                switchboard_core::AccountKind::Wholesale => AccountKind::Wholesale,
            },
            standing: row.standing().into(),
            turned_off: row.turned_off,
            turned_off_reason: row.turned_off_reason,
            turned_off_at: row.turned_off_at,
            balance: Money::new(balance, &currency),
            low_balance_threshold: Money::new(CoreMoney(row.low_balance_threshold), &currency),
            credit_limit: Money::new(CoreMoney(row.credit_limit), &currency),
            time_zone: row.time_zone,
            contact: Contact {
                name: row.contact_name,
                company: row.company,
                email: row.email,
                phone: row.phone,
                address: row.address,
            },
            parent_id: row.parent_id.map(|p| ID(p.to_string())),
            created_at: row.created_at,
            calling_plan: row.calling_plan_id,
            name: row.name,
            currency,
            recent_usage: Default::default(),
            lists: Default::default(),
        }
    }
}

/// One line of an account's statement.
#[derive(SimpleObject, Clone, Debug)]
pub struct LedgerEntry {
    pub id: ID,
    pub transaction_id: ID,
    pub posted_at: DateTime<Utc>,
    /// `payment`, `charge`, `adjustment`, …
    pub kind: String,
    pub memo: String,
    /// Positive adds to the balance, negative takes from it.
    pub amount: Money,
}

impl LedgerEntry {
    fn new(line: StatementLine, currency: &str) -> LedgerEntry {
        LedgerEntry {
            id: ID(line.entry_id.to_string()),
            transaction_id: ID(line.transaction_id.to_string()),
            posted_at: line.posted_at,
            kind: line.kind,
            memo: line.memo,
            amount: Money::new(CoreMoney(line.amount), currency),
        }
    }
}

/// Reads a numeric id, refusing anything else with a clear message.
pub fn parse_id(id: &ID) -> Result<i64> {
    id.parse::<i64>()
        .map_err(|_| format!("{:?} is not an id", id.as_str()).into())
}

/// Whether an email has left.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailState {
    Queued,
    Sent,
    /// Given up after repeated failures or refused for good; see `lastError`.
    Failed,
}

/// An email in the outbox.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct OutboxEmail {
    pub id: ID,
    pub to: String,
    pub subject: String,
    pub state: EmailState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The message carries a credential (a PBX password): its text is
    /// stored sealed, and only an admin may open it.
    pub sealed: bool,
}

#[ComplexObject]
impl OutboxEmail {
    /// The text version of the message. A sealed one is `null` unless
    /// `openSealed` is given, which only admins may do; each opening is
    /// recorded in the audit log.
    async fn text(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] open_sealed: bool,
    ) -> Result<Option<String>> {
        if self.sealed && !open_sealed {
            return Ok(None);
        }
        let viewer = crate::guards::user(ctx)?;
        if self.sealed && viewer.role != switchboard_core::Role::Admin {
            return Err("Only admins can open a sealed message.".into());
        }
        let id = parse_id(&self.id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let Some(stored) = switchboard_core::outbox::stored_text(&mut conn, id)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        if !self.sealed {
            return Ok(Some(stored));
        }
        let key = &ctx.data::<crate::Commerce>()?.key;
        let text = key
            .decrypt(switchboard_core::outbox::SEALED_BODY, &stored)
            .map_err(internal)?;
        switchboard_core::audit::record(
            &mut conn,
            &crate::mutation::actor(ctx),
            "email.open_sealed",
            &format!("email:{id}"),
            &self.subject,
        )
        .await
        .map_err(internal)?;
        Ok(Some(text))
    }
}

impl From<switchboard_core::outbox::QueuedEmail> for OutboxEmail {
    fn from(email: switchboard_core::outbox::QueuedEmail) -> OutboxEmail {
        OutboxEmail {
            id: ID(email.id.to_string()),
            to: email.to_address,
            subject: email.subject,
            state: match email.state.as_str() {
                "sent" => EmailState::Sent,
                "failed" => EmailState::Failed,
                _ => EmailState::Queued,
            },
            attempts: email.attempts,
            last_error: email.last_error,
            created_at: email.created_at,
            sent_at: email.sent_at,
            sealed: email.sealed,
        }
    }
}
