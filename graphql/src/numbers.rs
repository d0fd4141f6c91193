//! Phone numbers: staff load the inventory from a rate-center CSV (preview
//! first, then all or nothing) and price tiers; clients browse by state and
//! rate center or search, order numbers for one of their PBXs from the
//! balance and release them; staff see what waits to be configured and
//! mark it active. A client reaches only their own account's numbers and
//! the available ones; another's id reads as not found.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use switchboard_core::audit::{self, Change};
use switchboard_core::numbers::inventory::{self, ImportError, Search, Tier};
use switchboard_core::numbers::ordering::{self, NewOrder, Notices, OrderError};
use switchboard_core::numbers::Status;
use switchboard_core::people::accounts;
use switchboard_core::{db, AccountId, Money as CoreMoney};

use crate::commerce::{commerce, connection};
use crate::guards::{self, Allow, CUSTOMERS, SIGNED_IN, STAFF};
use crate::mutation::actor;
use crate::types::{parse_id, Money};
use crate::{internal, pool};

/// Where a number is.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberStatus {
    /// For sale.
    Available,
    /// Paid for; waiting to be configured on its PBX.
    Ordered,
    /// Routed to its PBX.
    Active,
    /// Released; for sale again when its quarantine ends.
    Quarantined,
}

impl From<Status> for NumberStatus {
    fn from(status: Status) -> NumberStatus {
        match status {
            Status::Available => NumberStatus::Available,
            Status::Ordered => NumberStatus::Ordered,
            Status::Active => NumberStatus::Active,
            Status::Quarantined => NumberStatus::Quarantined,
        }
    }
}

impl From<NumberStatus> for Status {
    fn from(status: NumberStatus) -> Status {
        match status {
            NumberStatus::Available => Status::Available,
            NumberStatus::Ordered => Status::Ordered,
            NumberStatus::Active => Status::Active,
            NumberStatus::Quarantined => Status::Quarantined,
        }
    }
}

/// A phone number (DID).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct PhoneNumber {
    pub id: ID,
    /// E.164: `+13125550142`.
    pub e164: String,
    /// The area code.
    pub npa: String,
    /// The exchange.
    pub nxx: String,
    pub rate_center: String,
    pub state: String,
    pub city: Option<String>,
    pub lata: Option<String>,
    pub carrier: Option<String>,
    pub tier: Option<String>,
    pub setup_fee: Money,
    pub monthly_fee: Money,
    pub status: NumberStatus,
    /// The PBX it is ordered for or routed to.
    pub pbx_id: Option<ID>,
    pub ordered_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    /// For a quarantined number: for sale again from then.
    pub quarantined_until: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub row: inventory::Number,
}

impl PhoneNumber {
    fn new(row: inventory::Number, now: DateTime<Utc>) -> PhoneNumber {
        PhoneNumber {
            id: ID(row.id.to_string()),
            e164: row.e164.clone(),
            npa: row.npa.clone(),
            nxx: row.nxx.clone(),
            rate_center: row.rate_center.clone(),
            state: row.state.clone(),
            city: row.city.clone(),
            lata: row.lata.clone(),
            carrier: row.carrier.clone(),
            tier: row.tier.clone(),
            setup_fee: Money::new(CoreMoney(row.setup_fee), &row.currency),
            monthly_fee: Money::new(CoreMoney(row.monthly_fee), &row.currency),
            status: row.status_at(now).into(),
            pbx_id: row.pbx_id.map(|p| ID(p.to_string())),
            ordered_at: row.ordered_at,
            activated_at: row.activated_at,
            quarantined_until: row.quarantined_until.filter(|u| *u > now),
            row,
        }
    }
}

/// One line of a number's history.
#[derive(SimpleObject, Clone, Debug)]
pub struct NumberEvent {
    pub at: DateTime<Utc>,
    /// `imported`, `updated`, `ordered`, `assign_failed`, `activated`,
    /// `released`, `unassigned`, …
    pub kind: String,
    /// Who: a username, or `controller`.
    pub actor: String,
    pub detail: String,
    pub account_id: Option<ID>,
    pub pbx_id: Option<ID>,
}

#[ComplexObject]
impl PhoneNumber {
    /// The account holding it, for staff.
    #[graphql(guard = "Allow(STAFF)")]
    async fn account_id(&self) -> Option<ID> {
        self.row.account_id.map(|a| ID(a.to_string()))
    }

    /// The controller's last complaint about assigning it, for staff.
    #[graphql(guard = "Allow(STAFF)")]
    async fn last_error(&self) -> Option<String> {
        self.row.last_error.clone()
    }

    /// Its history, oldest first, for staff.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<NumberEvent>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(inventory::history(&mut conn, self.row.id)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|e| NumberEvent {
                at: e.at,
                kind: e.kind,
                actor: e.actor,
                detail: e.detail,
                account_id: e.account_id.map(|a| ID(a.to_string())),
                pbx_id: e.pbx_id.map(|p| ID(p.to_string())),
            })
            .collect())
    }
}

/// A state with numbers for sale.
#[derive(SimpleObject, Clone, Debug)]
pub struct NumberState {
    pub state: String,
    pub available: i64,
}

/// A rate center with numbers for sale.
#[derive(SimpleObject, Clone, Debug)]
pub struct RateCenter {
    pub state: String,
    pub rate_center: String,
    pub available: i64,
    /// The lowest monthly fee among them.
    pub from_monthly: Option<Money>,
}

/// A bad row of an inventory file.
#[derive(SimpleObject, Clone, Debug)]
pub struct NumberImportError {
    /// The line in the file (the header is line 1).
    pub line: i32,
    /// The column's header as the file writes it; empty for the whole row.
    pub column: String,
    pub reason: String,
}

/// What an inventory file holds, and what importing it does (or did).
#[derive(SimpleObject, Clone, Debug)]
pub struct NumberImport {
    /// Good rows.
    pub rows: i32,
    /// Numbers not in the inventory yet.
    pub new: i32,
    /// Available numbers the file updates.
    pub updated: i32,
    /// Ordered, active or quarantined numbers the file names: left alone.
    pub held: Vec<String>,
    /// Every bad row. Nothing is imported while there is one.
    pub errors: Vec<NumberImportError>,
    /// The file's headers that were read, as `header: meaning`.
    pub columns: Vec<String>,
    /// Headers that mean nothing here: not read.
    pub unknown_columns: Vec<String>,
}

impl From<inventory::Preview> for NumberImport {
    fn from(preview: inventory::Preview) -> NumberImport {
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        NumberImport {
            rows: count(preview.rows),
            new: count(preview.new),
            updated: count(preview.updated),
            held: preview.held,
            errors: preview
                .errors
                .into_iter()
                .map(|e| NumberImportError {
                    line: count(e.line),
                    column: e.column,
                    reason: e.reason,
                })
                .collect(),
            columns: preview
                .columns
                .into_iter()
                .map(|(header, meaning)| format!("{header}: {meaning}"))
                .collect(),
            unknown_columns: preview.unknown,
        }
    }
}

/// A tier's prices.
#[derive(SimpleObject, Clone, Debug)]
pub struct NumberTier {
    pub name: String,
    pub setup_fee: Money,
    pub monthly_fee: Money,
}

impl From<Tier> for NumberTier {
    fn from(tier: Tier) -> NumberTier {
        NumberTier {
            setup_fee: Money::new(CoreMoney(tier.setup_fee), &tier.currency),
            monthly_fee: Money::new(CoreMoney(tier.monthly_fee), &tier.currency),
            name: tier.name,
        }
    }
}

/// A placed order of numbers.
#[derive(SimpleObject, Clone, Debug)]
pub struct NumberOrder {
    pub id: ID,
    pub numbers: Vec<PhoneNumber>,
    /// Setup fees and the first month, charged from the balance.
    pub total: Money,
    /// The same request was placed before: nothing more was charged.
    pub replayed: bool,
}

/// Calls that reached one of an account's numbers.
#[derive(SimpleObject, Clone, Debug)]
pub struct InboundNumberCalls {
    pub number_id: ID,
    pub e164: String,
    pub calls: i64,
    /// Answered seconds.
    pub seconds: i64,
    /// What they cost, when the calling plan prices inbound calls.
    pub cost: Money,
}

/// An account's inbound calls per number in a month (for `Account`).
pub(crate) async fn inbound_of_account(
    ctx: &Context<'_>,
    account: i64,
    currency: &str,
    month: &str,
) -> Result<Vec<InboundNumberCalls>> {
    let start = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_err(|_| format!("{month:?} is not a month such as 2026-11"))?;
    let end = start
        .checked_add_months(chrono::Months::new(1))
        .ok_or("The month is out of range.")?;
    let at = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    Ok(
        ordering::inbound_calls(&mut conn, AccountId(account), at(start), at(end))
            .await
            .map_err(internal)?
            .into_iter()
            .map(|row| InboundNumberCalls {
                number_id: ID(row.number_id.to_string()),
                e164: row.e164,
                calls: row.calls,
                seconds: row.seconds,
                cost: Money::new(CoreMoney(row.cost), currency),
            })
            .collect(),
    )
}

/// An account's numbers (for `Account`).
pub(crate) async fn of_account(ctx: &Context<'_>, account: i64) -> Result<Vec<PhoneNumber>> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let now = Utc::now();
    Ok(inventory::of_account(&mut conn, AccountId(account))
        .await
        .map_err(internal)?
        .into_iter()
        .map(|row| PhoneNumber::new(row, now))
        .collect())
}

fn notices<'a>(ctx: &Context<'a>) -> Result<Notices<'a>> {
    let commerce = commerce(ctx)?;
    let (assigns, unassigns) = commerce
        .controller
        .as_ref()
        .map(|c| (c.assigns_numbers(), c.unassigns_numbers()))
        .unwrap_or((false, false));
    Ok(Notices {
        staff_address: &commerce.settings.email.staff_address,
        base_url: commerce.settings.base_url(),
        controller_assigns: assigns,
        controller_unassigns: unassigns,
    })
}

fn refused(error: OrderError) -> async_graphql::Error {
    match error {
        OrderError::Ledger(error) => internal(error),
        OrderError::Database(error) => internal(error),
        other => other.to_string().into(),
    }
}

fn import_refused(error: ImportError) -> async_graphql::Error {
    match error {
        ImportError::Database(error) => internal(error),
        other => other.to_string().into(),
    }
}

fn cleaned(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// A page of numbers by id, as a connection.
async fn numbers_page(
    ctx: &Context<'_>,
    search: Search,
    first: i32,
    after: Option<String>,
) -> Result<Connection<String, PhoneNumber>> {
    let (first, after) = crate::commerce::page(first, after)?;
    if let Some(area_code) = &search.area_code {
        if area_code.len() != 3 || !area_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err("An area code is three digits.".into());
        }
    }
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let now = Utc::now();
    let rows = inventory::search(&mut conn, &search, now, after, first + 1)
        .await
        .map_err(internal)?;
    Ok(connection(
        rows,
        first,
        after.is_some(),
        |n| n.id,
        |n| PhoneNumber::new(n, now),
    ))
}

/// The number, when the viewer may see it: staff any, a client their own
/// account's or an available one. Unknown and foreign ids read alike.
async fn visible(
    ctx: &Context<'_>,
    conn: &mut AsyncPgConnection,
    id: &ID,
) -> Result<inventory::Number> {
    let user = guards::user(ctx)?;
    let id = parse_id(id)?;
    let not_found = || async_graphql::Error::new(format!("No number {id}."));
    let number = inventory::get(conn, id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    if user.role.is_company() || number.status_at(Utc::now()) == Status::Available {
        return Ok(number);
    }
    let Some(holder) = number.account_id else {
        return Err(not_found());
    };
    match accounts::get(conn, AccountId(holder))
        .await
        .map_err(internal)?
    {
        Some((account, _)) if guards::may_see_account(user, &account) => Ok(number),
        _ => Err(not_found()),
    }
}

/// The account of a PBX the viewer may see; another's reads as not found.
async fn visible_account_of_pbx(
    ctx: &Context<'_>,
    conn: &mut AsyncPgConnection,
    pbx: i64,
) -> Result<AccountId> {
    let user = guards::user(ctx)?;
    let not_found = || async_graphql::Error::new(format!("No PBX {pbx} on your account."));
    let owner = switchboard_core::commerce::pbxes::get(conn, pbx)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?
        .account_id;
    match accounts::get(conn, AccountId(owner))
        .await
        .map_err(internal)?
    {
        Some((account, _)) if guards::may_see_account(user, &account) => Ok(AccountId(owner)),
        _ => Err(not_found()),
    }
}

/// Reading the inventory.
#[derive(Default)]
pub struct NumbersQuery;

#[Object]
impl NumbersQuery {
    /// States with numbers for sale, by name.
    #[graphql(
        guard = "Allow(SIGNED_IN)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn number_states(&self, ctx: &Context<'_>) -> Result<Vec<NumberState>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(inventory::states(&mut conn, Utc::now())
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(state, available)| NumberState { state, available })
            .collect())
    }

    /// A state's rate centers with numbers for sale, by name.
    #[graphql(
        guard = "Allow(SIGNED_IN)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn number_rate_centers(
        &self,
        ctx: &Context<'_>,
        state: String,
    ) -> Result<Vec<RateCenter>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(inventory::rate_centers(&mut conn, state.trim(), Utc::now())
            .await
            .map_err(internal)?
            .into_iter()
            .map(|rc| RateCenter {
                from_monthly: rc
                    .from_monthly
                    .zip(rc.currency.as_deref())
                    .map(|(fee, currency)| Money::new(CoreMoney(fee), currency)),
                state: rc.state,
                rate_center: rc.rate_center,
                available: rc.available,
            })
            .collect())
    }

    /// Numbers for sale: in a state and rate center, with an area code,
    /// or containing some digits; by id.
    #[graphql(
        guard = "Allow(SIGNED_IN)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn available_numbers(
        &self,
        ctx: &Context<'_>,
        state: Option<String>,
        rate_center: Option<String>,
        area_code: Option<String>,
        digits: Option<String>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, PhoneNumber>> {
        let search = Search {
            state: cleaned(state),
            rate_center: cleaned(rate_center),
            area_code: cleaned(area_code),
            digits: cleaned(digits),
            status: None,
            account: None,
        };
        numbers_page(ctx, search, first, after).await
    }

    /// The whole inventory for staff: by status, state, rate center, area
    /// code or digits; by id.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn numbers(
        &self,
        ctx: &Context<'_>,
        status: Option<NumberStatus>,
        state: Option<String>,
        rate_center: Option<String>,
        area_code: Option<String>,
        digits: Option<String>,
        account_id: Option<ID>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, PhoneNumber>> {
        let search = Search {
            state: cleaned(state),
            rate_center: cleaned(rate_center),
            area_code: cleaned(area_code),
            digits: cleaned(digits),
            status: status.map(Into::into),
            account: account_id
                .map(|id| parse_id(&id).map(AccountId))
                .transpose()?,
        };
        numbers_page(ctx, search, first, after).await
    }

    /// Ordered numbers waiting to be configured on their PBX, oldest first.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn numbers_awaiting_configuration(&self, ctx: &Context<'_>) -> Result<Vec<PhoneNumber>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let now = Utc::now();
        Ok(ordering::awaiting_configuration(&mut conn)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|n| PhoneNumber::new(n, now))
            .collect())
    }

    /// One number: staff any, a client an available one or their own.
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn phone_number(&self, ctx: &Context<'_>, id: ID) -> Result<PhoneNumber> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let number = visible(ctx, &mut conn, &id).await?;
        Ok(PhoneNumber::new(number, Utc::now()))
    }

    /// The tiers staff priced.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn number_tiers(&self, ctx: &Context<'_>) -> Result<Vec<NumberTier>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(inventory::tiers(&mut conn)
            .await
            .map_err(internal)?
            .into_iter()
            .map(NumberTier::from)
            .collect())
    }

    /// What importing an inventory file would do: every bad row named,
    /// nothing changed.
    #[graphql(guard = "Allow(STAFF)")]
    async fn number_import_preview(
        &self,
        ctx: &Context<'_>,
        csv: String,
        #[graphql(default_with = "String::from(\"USD\")")] currency: String,
    ) -> Result<NumberImport> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        inventory::preview(&mut conn, &csv, &currency, Utc::now())
            .await
            .map(NumberImport::from)
            .map_err(import_refused)
    }
}

/// Changing the inventory and ordering numbers.
#[derive(Default)]
pub struct NumbersMutation;

#[Object]
impl NumbersMutation {
    /// Imports an inventory file, all or nothing: refused, changing
    /// nothing, while any row is bad. Ordered, active and quarantined
    /// numbers are left alone.
    #[graphql(guard = "Allow(STAFF)")]
    async fn import_numbers(
        &self,
        ctx: &Context<'_>,
        csv: String,
        #[graphql(default_with = "String::from(\"USD\")")] currency: String,
    ) -> Result<NumberImport> {
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let imported = conn
            .transaction(async |conn| {
                let imported =
                    inventory::import(conn, &csv, &currency, &actor.label, Utc::now()).await?;
                audit::record_change(
                    conn,
                    &actor,
                    "numbers.import",
                    "numbers",
                    &format!(
                        "{} new, {} updated, {} held",
                        imported.new,
                        imported.updated,
                        imported.held.len()
                    ),
                    &Change::created(serde_json::json!({
                        "new": imported.new,
                        "updated": imported.updated,
                        "currency": currency,
                    })),
                )
                .await?;
                Ok::<_, ImportError>(imported)
            })
            .await;
        match imported {
            Ok(imported) => Ok(imported.into()),
            Err(ImportError::BadRows(preview)) => {
                let errors = preview.errors.len();
                Err(async_graphql::Error::new(format!(
                    "{errors} rows are bad; nothing was imported. Preview the file to see them."
                )))
            }
            Err(error) => Err(import_refused(error)),
        }
    }

    /// Prices a tier; available numbers it prices follow.
    #[graphql(guard = "Allow(STAFF)")]
    async fn set_number_tier(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(desc = "A decimal amount: 1.50")] setup_fee: String,
        #[graphql(desc = "A decimal amount: 0.85")] monthly_fee: String,
        #[graphql(default_with = "String::from(\"USD\")")] currency: String,
    ) -> Result<NumberTier> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 40 {
            return Err("A tier's name is 1 to 40 characters.".into());
        }
        let fee = |label: &str, text: &str| match CoreMoney::parse_decimal(text.trim()) {
            Ok(m) if m.micros() >= 0 => Ok(m.micros()),
            Ok(_) => Err(format!("The {label} must not be negative.")),
            Err(e) => Err(format!("The {label} {e}.")),
        };
        let currency = switchboard_core::domain::parse_currency(&currency)
            .map_err(|e| format!("The currency {e}."))?;
        let tier = Tier {
            name,
            setup_fee: fee("setup fee", &setup_fee)?,
            monthly_fee: fee("monthly fee", &monthly_fee)?,
            currency,
        };
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let before = inventory::set_tier(conn, &tier).await?;
            audit::record_change(
                conn,
                &actor,
                "numbers.tier",
                &format!("number_tier:{}", tier.name),
                "",
                &Change::from_to(before, &tier),
            )
            .await
        })
        .await
        .map_err(internal)?;
        Ok(tier.into())
    }

    /// Orders available numbers for one of the viewer's PBXs, paid from
    /// the balance (setup fees and the first month); staff are told what
    /// to configure. The same `requestKey` again is the same order.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn order_numbers(
        &self,
        ctx: &Context<'_>,
        pbx_id: ID,
        number_ids: Vec<ID>,
        #[graphql(desc = "A random value from the form: ordering again with it changes nothing.")]
        request_key: String,
    ) -> Result<NumberOrder> {
        let user = guards::user(ctx)?;
        let pbx = parse_id(&pbx_id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        // The PBX's account pays: the viewer's own, or a reseller's sub-account.
        let account = visible_account_of_pbx(ctx, &mut conn, pbx).await?;
        let new = NewOrder {
            account,
            pbx,
            numbers: number_ids.iter().map(parse_id).collect::<Result<_>>()?,
            request_key,
            ordered_by: Some(user.user_id),
            actor: user.username.clone(),
        };
        let notices = notices(ctx)?;
        let now = Utc::now();
        let placed = ordering::order(&mut conn, &new, notices, now)
            .await
            .map_err(refused)?;
        Ok(NumberOrder {
            id: ID(placed.order.to_string()),
            numbers: placed
                .numbers
                .into_iter()
                .map(|n| PhoneNumber::new(n, now))
                .collect(),
            total: Money::new(placed.total, &placed.currency),
            replayed: placed.replayed,
        })
    }

    /// Releases one of the viewer's numbers: its monthly fee stops at the
    /// end of the paid period and it is quarantined before it is sold again.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn release_number(&self, ctx: &Context<'_>, number_id: ID) -> Result<PhoneNumber> {
        let user = guards::user(ctx)?;
        let id = parse_id(&number_id)?;
        let days = commerce(ctx)?.settings.numbers.quarantine_days;
        let notices = notices(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let now = Utc::now();
        let not_found = || async_graphql::Error::new(format!("No number {id}."));
        let holder = inventory::get(&mut conn, id)
            .await
            .map_err(internal)?
            .and_then(|n| n.account_id)
            .ok_or_else(not_found)?;
        let account = match accounts::get(&mut conn, AccountId(holder))
            .await
            .map_err(internal)?
        {
            Some((account, _)) if guards::may_see_account(user, &account) => AccountId(holder),
            _ => return Err(not_found()),
        };
        let released = ordering::release(
            &mut conn,
            Some(account),
            id,
            &user.username,
            days,
            notices,
            now,
        )
        .await
        .map_err(refused)?;
        Ok(PhoneNumber::new(released.number, now))
    }

    /// Marks an ordered number active: staff configured it on its PBX.
    #[graphql(guard = "Allow(STAFF)")]
    async fn activate_number(&self, ctx: &Context<'_>, number_id: ID) -> Result<PhoneNumber> {
        let id = parse_id(&number_id)?;
        let actor = actor(ctx);
        let now = Utc::now();
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let before = ordering::activate(conn, id, &actor.label, now).await?;
            audit::record_change(
                conn,
                &actor,
                "number.activate",
                &format!("number:{id}"),
                "",
                &Change::from_to(
                    serde_json::json!({ "status": before.as_str() }),
                    serde_json::json!({ "status": Status::Active.as_str() }),
                ),
            )
            .await?;
            Ok::<_, OrderError>(())
        })
        .await
        .map_err(refused)?;
        let number = inventory::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("No number {id}."))?;
        Ok(PhoneNumber::new(number, now))
    }
}
