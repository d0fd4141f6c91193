//! The balance running the account: adding funds, the saved card and
//! automatic top-ups, standing and its history, recurring charges and
//! monthly statements.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use switchboard_core::billing::{recurring, replenish, statements};
use switchboard_core::commerce::orders;
use switchboard_core::money::MICROS_PER_UNIT;
use switchboard_core::people::accounts::Account as AccountRow;
use switchboard_core::{db, standing, AccountId, Money as CoreMoney};
use switchboard_payments::Gateway;

use crate::commerce::{commerce, test_card, Order};
use crate::guards::{self, Allow, CUSTOMERS};
use crate::types::{Account, Money, Standing};
use crate::{internal, pool};

/// The card kept for automatic top-ups.
#[derive(SimpleObject, Clone, Debug)]
pub struct SavedCard {
    /// `visa`, `mastercard`, …
    pub brand: String,
    pub last4: String,
    pub exp_month: i32,
    pub exp_year: i32,
}

impl SavedCard {
    pub fn of(row: &AccountRow) -> Option<SavedCard> {
        Some(SavedCard {
            brand: row.card_brand.clone()?,
            last4: row.card_last4.clone()?,
            exp_month: row.card_exp_month?,
            exp_year: row.card_exp_year?,
        })
    }
}

/// Automatic top-ups: when the balance falls below `threshold`, the saved
/// card is charged `amount`, at most `monthlyCap` a calendar month.
#[derive(SimpleObject, Clone, Debug)]
pub struct AutoReplenish {
    pub enabled: bool,
    /// The account's low-balance threshold: below it the client and staff
    /// are told, and a top-up is made.
    pub threshold: Money,
    pub amount: Money,
    pub monthly_cap: Money,
}

impl AutoReplenish {
    pub fn of(row: &AccountRow) -> AutoReplenish {
        let c = &row.currency;
        AutoReplenish {
            enabled: row.auto_replenish,
            threshold: Money::new(CoreMoney(row.low_balance_threshold), c),
            amount: Money::new(CoreMoney(row.replenish_amount), c),
            monthly_cap: Money::new(CoreMoney(row.replenish_monthly_cap), c),
        }
    }
}

/// The smallest and largest amount a client may add at once.
#[derive(SimpleObject, Clone, Debug)]
pub struct TopUpLimits {
    pub min: Money,
    pub max: Money,
}

/// One change of an account's standing.
#[derive(SimpleObject, Clone, Debug)]
pub struct StandingChange {
    pub at: DateTime<Utc>,
    pub from: Standing,
    pub to: Standing,
    pub cause: String,
    /// The balance when it changed.
    pub balance: Money,
}

fn standing_of(text: &str) -> Standing {
    text.parse::<switchboard_core::Standing>()
        .unwrap_or(switchboard_core::Standing::Good)
        .into()
}

/// An automatic top-up attempt.
#[derive(SimpleObject, Clone, Debug)]
pub struct Replenishment {
    pub at: DateTime<Utc>,
    pub amount: Money,
    /// `pending`, `succeeded`, `declined`, `needs_authentication`, `failed`.
    pub state: String,
    pub detail: String,
}

/// Something billed every month from the balance.
#[derive(SimpleObject, Clone, Debug)]
pub struct RecurringCharge {
    pub description: String,
    pub amount: Money,
    /// When the next period starts and is charged.
    pub next_charge_at: DateTime<Utc>,
}

/// One line of a statement.
#[derive(SimpleObject, Clone, Debug)]
pub struct StatementLine {
    pub posted_at: DateTime<Utc>,
    pub kind: String,
    pub memo: String,
    pub amount: Money,
}

/// The cost of one PBX's calls in a month.
#[derive(SimpleObject, Clone, Debug)]
pub struct PbxUsage {
    pub pbx_id: ID,
    pub calls: i64,
    pub cost: Money,
}

/// A month of an account: opening and closing balance and what moved it.
#[derive(SimpleObject, Clone, Debug)]
pub struct Statement {
    /// The month's first moment, in the account's time zone.
    pub from: DateTime<Utc>,
    /// The next month's first moment.
    pub to: DateTime<Utc>,
    /// `November 2026`.
    pub month: String,
    pub opening_balance: Money,
    pub payments: Money,
    pub charges: Money,
    pub usage: Money,
    pub other: Money,
    pub closing_balance: Money,
    pub lines: Vec<StatementLine>,
    pub usage_per_pbx: Vec<PbxUsage>,
    /// Each PBX's calls and charges, then the charges tied to no PBX.
    pub per_pbx: Vec<crate::pbxes::PbxUsageLine>,
}

impl From<statements::Statement> for Statement {
    fn from(s: statements::Statement) -> Statement {
        let c = s.currency.clone();
        let money = |m: CoreMoney| Money::new(m, &c);
        Statement {
            from: s.from,
            to: s.to,
            month: s.from.format("%B %Y").to_string(),
            opening_balance: money(s.opening),
            payments: money(s.payments),
            charges: money(s.charges),
            usage: money(s.usage),
            other: money(s.other),
            closing_balance: money(s.closing),
            lines: s
                .lines
                .into_iter()
                .map(|l| StatementLine {
                    posted_at: l.posted_at,
                    kind: l.kind,
                    memo: l.memo,
                    amount: money(CoreMoney(l.amount)),
                })
                .collect(),
            per_pbx: crate::pbxes::PbxUsageLine::all(&s.per_pbx, &c),
            usage_per_pbx: s
                .usage_per_pbx
                .into_iter()
                .map(|u| PbxUsage {
                    pbx_id: ID(u.pbx_id.to_string()),
                    calls: u.calls,
                    cost: money(CoreMoney(u.cost)),
                })
                .collect(),
        }
    }
}

/// The fields of `Account` this context adds, read by `types::Account`.
pub(crate) async fn standing_history(
    ctx: &Context<'_>,
    account: i64,
    currency: &str,
    first: i32,
) -> Result<Vec<StandingChange>> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let rows = standing::history(
        &mut conn,
        AccountId(account),
        i64::from(first.clamp(1, 100)),
    )
    .await
    .map_err(internal)?;
    Ok(rows
        .into_iter()
        .map(|c| StandingChange {
            at: c.at,
            from: standing_of(&c.from_standing),
            to: standing_of(&c.to_standing),
            cause: c.cause,
            balance: Money::new(CoreMoney(c.balance), currency),
        })
        .collect())
}

pub(crate) async fn replenishments(
    ctx: &Context<'_>,
    account: i64,
    currency: &str,
    first: i32,
) -> Result<Vec<Replenishment>> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let rows = replenish::of_account(
        &mut conn,
        AccountId(account),
        i64::from(first.clamp(1, 100)),
    )
    .await
    .map_err(internal)?;
    Ok(Replenishment::all(rows, currency))
}

impl Replenishment {
    pub(crate) fn all(rows: Vec<replenish::Replenishment>, currency: &str) -> Vec<Replenishment> {
        rows.into_iter()
            .map(|r| Replenishment {
                at: r.created_at,
                amount: Money::new(CoreMoney(r.amount), currency),
                state: r.state,
                detail: r.detail,
            })
            .collect()
    }
}

pub(crate) async fn recurring_charges(
    ctx: &Context<'_>,
    account: i64,
) -> Result<Vec<RecurringCharge>> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let rows = recurring::of_account(&mut conn, AccountId(account))
        .await
        .map_err(internal)?;
    Ok(rows
        .into_iter()
        .filter(|i| i.ends_at.is_none_or(|ends| i.next_due_at < ends))
        .map(|i| RecurringCharge {
            amount: Money::new(CoreMoney(i.amount), &i.currency),
            description: i.description,
            next_charge_at: i.next_due_at,
        })
        .collect())
}

pub(crate) async fn statement(
    ctx: &Context<'_>,
    account: i64,
    months_back: i32,
) -> Result<Statement> {
    if !(0..=24).contains(&months_back) {
        return Err("monthsBack must be between 0 and 24.".into());
    }
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    statements::statement(
        &mut conn,
        AccountId(account),
        Utc::now(),
        months_back.unsigned_abs(),
    )
    .await
    .map_err(internal)?
    .map(<Statement as From<statements::Statement>>::from)
    .ok_or_else(|| format!("No account {account}.").into())
}

pub(crate) fn top_up_limits(ctx: &Context<'_>, currency: &str) -> Result<TopUpLimits> {
    let billing = &commerce(ctx)?.settings.billing;
    let units = |n: u32| Money::new(CoreMoney(i64::from(n) * MICROS_PER_UNIT), currency);
    Ok(TopUpLimits {
        min: units(billing.top_up_min),
        max: units(billing.top_up_max),
    })
}

/// Where the client pays for funds being added.
#[derive(SimpleObject)]
pub struct AddFundsPayload {
    pub order: Order,
    pub payment_url: String,
}

/// Where to give a new card.
#[derive(SimpleObject)]
pub struct CardSetupPayload {
    /// Stripe's page for the new card; it sends the client back to the
    /// Funds section.
    pub setup_url: String,
}

/// Automatic top-up settings as the client types them.
#[derive(InputObject)]
pub struct AutoReplenishInput {
    pub enabled: bool,
    /// Decimal, in the account's currency: below this balance the client is
    /// told and a top-up is made.
    pub threshold: String,
    /// Decimal: what each top-up adds.
    pub amount: String,
    /// Decimal: the most automatic top-ups may charge in a calendar month.
    pub monthly_cap: String,
}

/// The client's own account, for a mutation on it.
async fn own_account(
    conn: &mut diesel_async::AsyncPgConnection,
    ctx: &Context<'_>,
) -> Result<AccountRow> {
    let user = guards::user(ctx)?;
    let id = user.account_id.ok_or("Your user belongs to no account.")?;
    switchboard_core::people::accounts::get(conn, id)
        .await
        .map_err(internal)?
        .map(|(row, _)| row)
        .ok_or_else(|| "Your user belongs to no account.".into())
}

async fn account_payload(conn: &mut diesel_async::AsyncPgConnection, id: i64) -> Result<Account> {
    let (row, balance) = switchboard_core::people::accounts::get(conn, AccountId(id))
        .await
        .map_err(internal)?
        .ok_or("The account vanished.")?;
    Ok(Account::new(row, balance))
}

/// The balance's changes.
#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// Adds funds to the viewer's balance: an order for `amount` (a decimal
    /// in the account's currency, within `topUpLimits`), and where to pay
    /// it. Only the payment's confirmation credits the balance, once.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn add_funds(&self, ctx: &Context<'_>, amount: String) -> Result<AddFundsPayload> {
        let commerce = commerce(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let account = own_account(&mut conn, ctx).await?;
        let billing = &commerce.settings.billing;
        let amount = orders::check_top_up(
            &amount,
            billing.top_up_min,
            billing.top_up_max,
            &account.currency,
        )?;
        let order = orders::create_top_up(
            &mut conn,
            account.id(),
            amount,
            &account.currency,
            commerce.gateway.name(),
        )
        .await
        .map_err(internal)?;
        let email = if account.email.is_empty() {
            guards::user(ctx)?.username.clone()
        } else {
            account.email.clone()
        };
        let payment_url = commerce
            .gateway
            .start_checkout(&mut conn, commerce.settings.base_url(), &order, "Call credit", &email)
            .await
            .map_err(|e| {
                tracing::error!(error = %format!("{e:#}"), "starting a checkout failed");
                async_graphql::Error::new(
                    "The payment service is not answering; nothing was charged. Try again in a moment.",
                )
            })?;
        Ok(AddFundsPayload {
            order: order.into(),
            payment_url,
        })
    }

    /// Where the viewer gives a new card to keep for automatic top-ups
    /// (Stripe Checkout in `mode=setup`; with the test gateway, the card
    /// page, where a test card is saved with `saveTestCard`). The card on file changes once
    /// Stripe confirms the new one; nothing is charged. `requestKey` is a
    /// random value (16 to 64 letters, digits, `-` or `_`) made for this
    /// request: sending it again returns the same page instead of another.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn replace_card(
        &self,
        ctx: &Context<'_>,
        request_key: String,
    ) -> Result<CardSetupPayload> {
        let well_formed = (16..=64).contains(&request_key.len())
            && request_key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(
                "requestKey must be 16 to 64 letters, digits, '-' or '_', made anew for each request."
                    .into(),
            );
        }
        let commerce = commerce(ctx)?;
        let Gateway::Stripe(stripe) = &commerce.gateway else {
            // The test gateway's cards are given on the card page itself
            // (`saveTestCard`).
            return Ok(CardSetupPayload {
                setup_url: format!("{}/portal/funds/card", commerce.settings.base_url()),
            });
        };
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let account = own_account(&mut conn, ctx).await?;
        let customer = orders::stripe_customer(&mut conn, account.id)
            .await
            .map_err(internal)?
            .filter(|c| c.starts_with("cus_"));
        let email = if account.email.is_empty() {
            guards::user(ctx)?.username.clone()
        } else {
            account.email.clone()
        };
        let holder = switchboard_payments::stripe::CardHolder {
            id: account.id,
            currency: &account.currency,
            email: &email,
            customer: customer.as_deref(),
        };
        let setup_url = stripe
            .card_setup(commerce.settings.base_url(), &holder, &request_key)
            .await
            .map_err(|e| {
                tracing::error!(error = %format!("{e:#}"), "opening a card setup failed");
                async_graphql::Error::new(
                    "The payment service is not answering; your card is unchanged. Try again in a moment.",
                )
            })?;
        Ok(CardSetupPayload { setup_url })
    }

    /// Sets the viewer's automatic top-ups. Turning them on needs a saved card.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn set_auto_replenish(
        &self,
        ctx: &Context<'_>,
        input: AutoReplenishInput,
    ) -> Result<Account> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let account = own_account(&mut conn, ctx).await?;
        let mut errors = switchboard_core::forms::FieldErrors::default();
        let mut read =
            |field: &str, text: &str, positive: bool| match CoreMoney::parse_decimal(text) {
                Ok(m) if m.micros() < 0 || (positive && m.micros() == 0) => {
                    errors.add(
                        field,
                        if positive {
                            "must be more than zero"
                        } else {
                            "must not be negative"
                        },
                    );
                    CoreMoney::ZERO
                }
                Ok(m) if m.micros() % 10_000 != 0 => {
                    errors.add(field, "must be in whole cents");
                    CoreMoney::ZERO
                }
                Ok(m) => m,
                Err(e) => {
                    errors.add(field, &e.to_string());
                    CoreMoney::ZERO
                }
            };
        let threshold = read("threshold", &input.threshold, false);
        let amount = read("amount", &input.amount, true);
        let cap = read("monthly_cap", &input.monthly_cap, false);
        if errors.is_empty() && input.enabled && cap < amount {
            errors.add("monthly_cap", "must be at least the amount of one top-up");
        }
        let billing = &commerce(ctx)?.settings.billing;
        let max = CoreMoney(i64::from(billing.top_up_max) * MICROS_PER_UNIT);
        if amount > max {
            errors.add(
                "amount",
                &format!("must be at most {}", max.format(&account.currency)),
            );
        }
        if input.enabled && account.card_last4.is_none() {
            errors.add(
                "enabled",
                "needs a saved card: add funds by card first, and it is kept",
            );
        }
        if !errors.is_empty() {
            return Err(crate::commerce::field_errors(&errors));
        }
        {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            use switchboard_core::schema::accounts;
            diesel::update(accounts::table.find(account.id))
                .set((
                    accounts::auto_replenish.eq(input.enabled),
                    accounts::low_balance_threshold.eq(threshold.micros()),
                    accounts::replenish_amount.eq(amount.micros()),
                    accounts::replenish_monthly_cap.eq(cap.micros()),
                ))
                .execute(&mut conn)
                .await
                .map_err(internal)?;
            // The new threshold may call for a notice or a top-up now.
            switchboard_core::queue::review_standing(&mut conn, account.id)
                .await
                .map_err(internal)?;
        }
        account_payload(&mut conn, account.id).await
    }

    /// Forgets the viewer's saved card; automatic top-ups stop with it.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn remove_saved_card(&self, ctx: &Context<'_>) -> Result<Account> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let account = own_account(&mut conn, ctx).await?;
        {
            use diesel::prelude::*;
            use diesel_async::{AsyncConnection, RunQueryDsl};
            use switchboard_core::schema::accounts;
            conn.transaction(async |conn| {
                orders::remove_card(conn, account.id).await?;
                diesel::update(accounts::table.find(account.id))
                    .set(accounts::auto_replenish.eq(false))
                    .execute(conn)
                    .await
                    .map(drop)
            })
            .await
            .map_err(internal)?;
        }
        account_payload(&mut conn, account.id).await
    }

    /// Keeps one of the test gateway's cards as the viewer's saved card
    /// (development only; with Stripe a card is kept when funds are added).
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn save_test_card(&self, ctx: &Context<'_>, card_number: String) -> Result<Account> {
        if !matches!(commerce(ctx)?.gateway, Gateway::Test) {
            return Err("The test gateway is not in use here.".into());
        }
        let card = test_card(&card_number).ok_or(
            "This is not one of the test cards: use 4242 4242 4242 4242, 4000 0000 0000 0002 or 4000 0025 0000 3155.",
        )?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let account = own_account(&mut conn, ctx).await?;
        orders::save_card(&mut conn, account.id, Some("test"), &card)
            .await
            .map_err(internal)?;
        account_payload(&mut conn, account.id).await
    }
}
