//! Plans, orders and PBXs: the storefront's operations and their staff side.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{
    ComplexObject, Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject, ID,
};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use switchboard_core::commerce::orders::{
    self, PaymentReport, PaymentResult, SignupError, SignupForm,
};
use switchboard_core::commerce::plans::{self, PlanError, PlanInput as CorePlanInput};
use switchboard_core::config::Settings;
use switchboard_core::forms::FieldErrors;
use switchboard_core::keys::SecretKey;
use switchboard_core::people::sign_in::{self, Limits, Purpose, SignInError};
use switchboard_core::{audit, commerce::pbxes, db, queue, AccountId, Money as CoreMoney};
use switchboard_payments::{test_gateway, Gateway};

use crate::guards::{self, Allow, ADMIN, CUSTOMERS, SIGNED_IN, STAFF};
use crate::types::{parse_id, Money};
use crate::{internal, pool};

/// What the storefront's operations need besides the database.
#[derive(Clone)]
pub struct Commerce {
    pub key: SecretKey,
    pub gateway: Gateway,
    pub settings: Arc<Settings>,
    /// The hosting controller, for PBX status; none when not configured.
    pub controller: Option<switchboard_controller::Controller>,
    /// Recent status answers, so a busy page does not hammer the controller.
    pub status_cache:
        Arc<std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, PbxHealth)>>>,
    /// Calling plans' rate tables, kept while their rates are unchanged, for
    /// pricing imported CDRs.
    pub rate_tables: switchboard_core::calls::calling_plans::RateTables,
    /// The plans on sale, kept in memory between staff's changes.
    pub catalogue: switchboard_core::commerce::catalogue::Catalogue,
}

/// How long a PBX's status is reused.
const STATUS_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// A PBX's health as the controller last reported it.
#[derive(SimpleObject, Clone, Debug)]
pub struct PbxHealth {
    /// `up`, `down`, or `unknown` when the controller did not answer.
    pub state: String,
    pub version: Option<String>,
    pub uptime_seconds: Option<i64>,
    /// `enabled`, `suspended`, or unknown.
    pub calling: Option<String>,
}

impl PbxHealth {
    fn unknown() -> PbxHealth {
        PbxHealth {
            state: "unknown".into(),
            version: None,
            uptime_seconds: None,
            calling: None,
        }
    }
}

pub(crate) fn commerce<'a>(ctx: &Context<'a>) -> Result<&'a Commerce> {
    ctx.data::<Commerce>()
}

/// Turns field errors into one GraphQL error that names every field in its
/// `fields` extension, so a form can show each next to its input.
pub fn field_errors(errors: &FieldErrors) -> async_graphql::Error {
    let fields: Vec<async_graphql::Value> = errors
        .iter()
        .map(|(field, message)| {
            let mut object = async_graphql::indexmap::IndexMap::new();
            object.insert(
                async_graphql::Name::new("field"),
                async_graphql::Value::String(field.to_owned()),
            );
            object.insert(
                async_graphql::Name::new("message"),
                async_graphql::Value::String(message.to_owned()),
            );
            async_graphql::Value::Object(object)
        })
        .collect();
    async_graphql::Error::new("Some fields need correcting.")
        .extend_with(|_, e| e.set("fields", async_graphql::Value::List(fields.clone())))
}

/// A plan on sale.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Plan {
    pub id: ID,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub setup_fee: Money,
    pub monthly_fee: Money,
    /// The setup fee and the first month: what a signup pays, besides any
    /// starting call credit.
    pub first_payment: Money,
    pub included_extensions: i32,
    /// Hidden plans are not sold; only staff see them.
    pub active: bool,
    pub position: i32,
    #[graphql(skip)]
    pub calling_plan: Option<i64>,
    #[graphql(skip)]
    pub row: plans::Plan,
}

/// An amount of call credit the cart offers with a plan.
#[derive(SimpleObject, Clone, Debug)]
pub struct StartingCreditChoice {
    /// The credit (zero for none).
    pub amount: Money,
    /// The plan's first payment with this credit: what the card is charged.
    pub due_today: Money,
    /// The one the cart picks unless the visitor picks another.
    pub suggested: bool,
}

#[ComplexObject]
impl Plan {
    /// The starting call credit a signup may buy with this plan, paid in
    /// the same payment as the setup and first month.
    async fn starting_credit_choices(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<StartingCreditChoice>> {
        let billing = &commerce(ctx)?.settings.billing;
        let currency = &self.first_payment.currency;
        billing
            .starting_credit
            .iter()
            .map(|units| {
                let amount =
                    CoreMoney(i64::from(*units) * switchboard_core::money::MICROS_PER_UNIT);
                let due = orders::signup_total(&self.row, amount)
                    .ok_or("A starting credit is too large.")?;
                Ok(StartingCreditChoice {
                    amount: Money::new(amount, currency),
                    due_today: Money::new(due, currency),
                    suggested: *units == billing.starting_credit_chosen,
                })
            })
            .collect()
    }

    /// The calling plan its PBXs' calls are billed with, for staff; null
    /// when it has none (its calls are then unrated).
    #[graphql(guard = "Allow(STAFF)")]
    async fn calling_plan_id(&self) -> Option<ID> {
        self.calling_plan.map(|id| ID(id.to_string()))
    }
}

impl From<plans::Plan> for Plan {
    fn from(plan: plans::Plan) -> Plan {
        Plan {
            row: plan.clone(),
            id: ID(plan.id.to_string()),
            setup_fee: Money::new(CoreMoney(plan.setup_fee), &plan.currency),
            monthly_fee: Money::new(CoreMoney(plan.monthly_fee), &plan.currency),
            first_payment: Money::new(plan.first_payment(), &plan.currency),
            slug: plan.slug,
            name: plan.name,
            description: plan.description,
            included_extensions: plan.included_extensions,
            active: plan.active,
            position: plan.position,
            calling_plan: plan.calling_plan_id,
        }
    }
}

/// What an order buys.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderKind {
    /// A plan, with its setup fee and first month.
    Signup,
    /// Funds added to the balance.
    TopUp,
    /// Another PBX, paid from the balance.
    Pbx,
}

/// Where an order is.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    AwaitingPayment,
    Paid,
    Fulfilling,
    Fulfilled,
    Failed,
    Refunded,
}

fn order_state(state: &str) -> OrderState {
    match state {
        "paid" => OrderState::Paid,
        "fulfilling" => OrderState::Fulfilling,
        "fulfilled" => OrderState::Fulfilled,
        "failed" => OrderState::Failed,
        "refunded" => OrderState::Refunded,
        _ => OrderState::AwaitingPayment,
    }
}

/// One line of an order.
#[derive(SimpleObject, Clone, Debug)]
pub struct OrderLine {
    pub description: String,
    pub amount: Money,
}

/// A purchase: a signup so far.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Order {
    /// The order's public id (what its address carries).
    pub id: ID,
    pub kind: OrderKind,
    pub state: OrderState,
    pub total: Money,
    pub gateway: String,
    pub account_id: ID,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub row_id: i64,
    #[graphql(skip)]
    pub currency: String,
}

#[ComplexObject]
impl Order {
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<OrderLine>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let lines = orders::lines(&mut conn, self.row_id)
            .await
            .map_err(internal)?;
        Ok(lines
            .into_iter()
            .map(|l| OrderLine {
                description: l.description,
                amount: Money::new(CoreMoney(l.amount), &self.currency),
            })
            .collect())
    }

    /// The PBX this order bought, once it is paid.
    async fn pbx(&self, ctx: &Context<'_>) -> Result<Option<Pbx>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(pbxes::of_order(&mut conn, self.row_id)
            .await
            .map_err(internal)?
            .map(Pbx::from))
    }
}

impl From<orders::Order> for Order {
    fn from(order: orders::Order) -> Order {
        Order {
            id: ID(order.public_id),
            kind: match order.kind.as_str() {
                "top_up" => OrderKind::TopUp,
                "pbx" => OrderKind::Pbx,
                _ => OrderKind::Signup,
            },
            state: order_state(&order.state),
            total: Money::new(CoreMoney(order.total), &order.currency),
            gateway: order.gateway,
            account_id: ID(order.account_id.to_string()),
            created_at: order.created_at,
            paid_at: order.paid_at,
            row_id: order.id,
            currency: order.currency,
        }
    }
}

/// Where a PBX is in its life.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PbxState {
    Provisioning,
    Active,
    CallingSuspended,
    PoweredOff,
    Failed,
    Cancelled,
}

/// A call in progress on a PBX, as its controller reports it.
#[derive(SimpleObject, Clone, Debug)]
pub struct LiveCall {
    pub channel: String,
    pub from: String,
    pub to: String,
    /// `inbound`, `outbound` or `internal`, as the controller says.
    pub direction: String,
    pub started_at: Option<DateTime<Utc>>,
}

/// A hosted PBX.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Pbx {
    pub id: ID,
    pub state: PbxState,
    /// Where the PBX answers, once the controller made it.
    pub hostname: Option<String>,
    /// What its client calls it (empty for none).
    pub label: String,
    pub account_id: ID,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub last_error_text: Option<String>,
    #[graphql(skip)]
    pub controller_id: Option<String>,
    #[graphql(skip)]
    pub plan_id: i64,
}

#[ComplexObject]
impl Pbx {
    /// Up, down or unknown, from the controller's status command (cached
    /// for 30 seconds).
    #[graphql(complexity = "crate::limits::cost::CONTROLLER + child_complexity")]
    async fn health(&self, ctx: &Context<'_>) -> Result<PbxHealth> {
        let commerce = commerce(ctx)?;
        let (Some(controller), Some(id)) = (&commerce.controller, &self.controller_id) else {
            return Ok(PbxHealth::unknown());
        };
        if let Some((at, health)) = commerce.status_cache.lock().map_err(|_| "busy")?.get(id) {
            if at.elapsed() < STATUS_TTL {
                return Ok(health.clone());
            }
        }
        let health =
            match tokio::time::timeout(std::time::Duration::from_secs(3), controller.status(id))
                .await
            {
                Ok(Ok(status)) => PbxHealth {
                    state: status.state,
                    version: Some(status.version).filter(|v| !v.is_empty()),
                    uptime_seconds: i64::try_from(status.uptime_seconds).ok(),
                    calling: Some(status.calling).filter(|c| !c.is_empty()),
                },
                _ => PbxHealth::unknown(),
            };
        commerce
            .status_cache
            .lock()
            .map_err(|_| "busy")?
            .insert(id.clone(), (std::time::Instant::now(), health.clone()));
        Ok(health)
    }

    /// The calls in progress, from the controller's live-calls command, for
    /// staff; null when the controller did not answer in three seconds.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "crate::limits::cost::CONTROLLER + 10 * child_complexity"
    )]
    async fn live_calls(&self, ctx: &Context<'_>) -> Result<Option<Vec<LiveCall>>> {
        let commerce = commerce(ctx)?;
        let (Some(controller), Some(id)) = (&commerce.controller, &self.controller_id) else {
            return Ok(Some(Vec::new()));
        };
        match tokio::time::timeout(std::time::Duration::from_secs(3), controller.live_calls(id))
            .await
        {
            Ok(Ok(calls)) => Ok(Some(
                calls
                    .into_iter()
                    .map(|c| LiveCall {
                        channel: c.channel,
                        from: c.from,
                        to: c.to,
                        direction: c.direction,
                        started_at: DateTime::parse_from_rfc3339(&c.started_at)
                            .ok()
                            .map(|t| t.with_timezone(&Utc)),
                    })
                    .collect(),
            )),
            Ok(Err(error)) => {
                tracing::warn!(%error, pbx = %self.id.as_str(), "live calls not answered");
                Ok(None)
            }
            Err(_) => Ok(None),
        }
    }

    /// The latest new GUI password asked for, and whether it took effect.
    async fn password_change(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<crate::gui_passwords::PbxPasswordChange>> {
        crate::gui_passwords::latest(ctx, parse_id(&self.id)?).await
    }

    /// The controller's last complaint, for staff.
    #[graphql(guard = "Allow(STAFF)")]
    async fn last_error(&self) -> Option<String> {
        self.last_error_text.clone()
    }

    /// How the PBX dials and which channels are its trunks, for staff.
    #[graphql(guard = "Allow(STAFF)")]
    async fn dialling_rules(&self, ctx: &Context<'_>) -> Result<crate::calls::DiallingRules> {
        crate::calls::dialling_rules_of(ctx, parse_id(&self.id)?).await
    }

    /// The account that owns this PBX and pays for it.
    async fn account(&self, ctx: &Context<'_>) -> Result<crate::types::Account> {
        let id = parse_id(&self.account_id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        switchboard_core::people::accounts::get(&mut conn, AccountId(id))
            .await
            .map_err(internal)?
            .map(|(row, balance)| crate::types::Account::new(row, balance))
            .ok_or_else(|| "The PBX's account is gone.".into())
    }

    /// The plan this PBX runs on.
    async fn plan(&self, ctx: &Context<'_>) -> Result<Plan> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        plans::get(&mut conn, self.plan_id)
            .await
            .map_err(internal)?
            .map(Into::into)
            .ok_or_else(|| "The PBX's plan is gone.".into())
    }
}

impl From<pbxes::Pbx> for Pbx {
    fn from(pbx: pbxes::Pbx) -> Pbx {
        Pbx {
            id: ID(pbx.id.to_string()),
            state: match pbx.state.as_str() {
                "active" => PbxState::Active,
                "calling_suspended" => PbxState::CallingSuspended,
                "powered_off" => PbxState::PoweredOff,
                "failed" => PbxState::Failed,
                "cancelled" => PbxState::Cancelled,
                _ => PbxState::Provisioning,
            },
            hostname: pbx.hostname,
            label: pbx.label,
            account_id: ID(pbx.account_id.to_string()),
            created_at: pbx.created_at,
            activated_at: pbx.activated_at,
            last_error_text: pbx.last_error,
            controller_id: pbx.controller_id,
            plan_id: pbx.plan_id,
        }
    }
}

/// The checkout form.
#[derive(InputObject)]
pub struct SignUpInput {
    /// The plan's slug.
    pub plan: String,
    pub username: String,
    pub password: String,
    pub password_confirmation: String,
    pub contact_name: String,
    #[graphql(default)]
    pub company: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    pub accept_terms: bool,
    /// A random value from the checkout page: sending the same one again
    /// returns the first signup instead of making another.
    pub checkout_token: String,
    /// Call credit to start with, paid with the setup and first month: a
    /// decimal in the plan's currency, one of the plan's
    /// `startingCreditChoices`; none when left out.
    #[graphql(default)]
    pub starting_credit: String,
}

/// A signup, waiting for payment.
#[derive(SimpleObject)]
pub struct SignUpPayload {
    pub order: Order,
    /// Where the customer pays.
    pub payment_url: String,
    /// The new client user.
    pub user_id: ID,
}

/// How a test card payment ended.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    Paid,
    Declined,
    NeedsAuthentication,
    /// The card's authentication (3-D Secure) failed; nothing was charged.
    AuthenticationFailed,
}

/// The result of paying with a test card.
#[derive(SimpleObject)]
pub struct TestPaymentPayload {
    pub outcome: PaymentOutcome,
    pub order: Order,
}

/// A plan as staff type it.
#[derive(InputObject)]
pub struct PlanInput {
    pub slug: String,
    pub name: String,
    #[graphql(default)]
    pub description: String,
    #[graphql(default_with = "\"USD\".to_string()")]
    pub currency: String,
    /// Decimal, in the plan's currency.
    pub setup_fee: String,
    /// Decimal, in the plan's currency.
    pub monthly_fee: String,
    pub included_extensions: i32,
    #[graphql(default = true)]
    pub active: bool,
    #[graphql(default)]
    pub position: i32,
    /// The calling plan its PBXs' calls are billed with, in the plan's
    /// currency; on a change, leaving it out keeps the one it has.
    pub calling_plan_id: Option<ID>,
}

impl From<PlanInput> for CorePlanInput {
    fn from(input: PlanInput) -> CorePlanInput {
        CorePlanInput {
            slug: input.slug,
            name: input.name,
            description: input.description,
            currency: input.currency,
            setup_fee: input.setup_fee,
            monthly_fee: input.monthly_fee,
            included_extensions: input.included_extensions.to_string(),
            active: input.active,
            position: input.position,
            // An id that is not a number names no calling plan: refused as
            // one that does not exist.
            calling_plan_id: input
                .calling_plan_id
                .map(|id| id.parse::<i64>().unwrap_or(-1)),
        }
    }
}

/// The storefront's reads.
#[derive(Default)]
pub struct CommerceQuery;

#[Object]
impl CommerceQuery {
    /// The plans on sale, in catalogue order.
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn plans(&self, ctx: &Context<'_>) -> Result<Vec<Plan>> {
        let catalogue = &commerce(ctx)?.catalogue;
        let plans = match catalogue.fresh() {
            Some(plans) => plans.iter().filter(|p| p.active).cloned().collect(),
            None => {
                let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
                catalogue.on_sale(&mut conn).await.map_err(internal)?
            }
        };
        Ok(plans.into_iter().map(Plan::from).collect())
    }

    /// One plan on sale by its slug.
    async fn plan(&self, ctx: &Context<'_>, slug: String) -> Result<Option<Plan>> {
        let catalogue = &commerce(ctx)?.catalogue;
        let plan = match catalogue.fresh() {
            Some(plans) => plans.iter().find(|p| p.active && p.slug == slug).cloned(),
            None => {
                let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
                catalogue
                    .on_sale_by_slug(&mut conn, &slug)
                    .await
                    .map_err(internal)?
            }
        };
        Ok(plan.map(Plan::from))
    }

    /// Every plan, hidden ones too, for staff.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn all_plans(&self, ctx: &Context<'_>) -> Result<Vec<Plan>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(plans::list(&mut conn, true)
            .await
            .map_err(internal)?
            .into_iter()
            .map(Plan::from)
            .collect())
    }

    /// One order by its public id: its owner's, or any for staff.
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Order> {
        let user = guards::user(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        match orders::by_public_id(&mut conn, &id)
            .await
            .map_err(internal)?
        {
            Some(order)
                if user.role.is_company()
                    || user.account_id == Some(AccountId(order.account_id)) =>
            {
                Ok(order.into())
            }
            _ => Err("No such order.".into()),
        }
    }

    /// Every order, newest first, for staff.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, Order>> {
        let (first, before) = page(first, after)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = orders::list(&mut conn, before, first + 1)
            .await
            .map_err(internal)?;
        Ok(connection(
            rows,
            first,
            before.is_some(),
            |o| o.id,
            Order::from,
        ))
    }

    /// One PBX: any for staff, a client's or reseller's own (and a
    /// reseller's sub-accounts'). Another's id reads as not found.
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn pbx(&self, ctx: &Context<'_>, id: ID) -> Result<Pbx> {
        let user = guards::user(ctx)?;
        let id = parse_id(&id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let not_found = || format!("No PBX {id}.").into();
        let pbx = pbxes::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let owner = switchboard_core::people::accounts::get(&mut conn, AccountId(pbx.account_id))
            .await
            .map_err(internal)?;
        match owner {
            Some((account, _)) if guards::may_see_account(user, &account) => Ok(pbx.into()),
            _ => Err(not_found()),
        }
    }

    /// The PBXs the controller runs, newest first, for the calling status
    /// page; with `trouble`, only those of accounts not in good standing or
    /// turned off, and PBXs not active.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn calling_status(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] trouble: bool,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, Pbx>> {
        let (first, before) = page(first, after)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = pbxes::calling_status(&mut conn, trouble, before, first + 1)
            .await
            .map_err(internal)?;
        Ok(connection(
            rows,
            first,
            before.is_some(),
            |p| p.id,
            Pbx::from,
        ))
    }

    /// Every PBX, newest first, optionally in one state, for staff.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn pbxes(
        &self,
        ctx: &Context<'_>,
        state: Option<PbxState>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, Pbx>> {
        let (first, before) = page(first, after)?;
        let state = state.map(|s| match s {
            PbxState::Provisioning => "provisioning",
            PbxState::Active => "active",
            PbxState::CallingSuspended => "calling_suspended",
            PbxState::PoweredOff => "powered_off",
            PbxState::Failed => "failed",
            PbxState::Cancelled => "cancelled",
        });
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = pbxes::list(&mut conn, state, before, first + 1)
            .await
            .map_err(internal)?;
        Ok(connection(
            rows,
            first,
            before.is_some(),
            |p| p.id,
            Pbx::from,
        ))
    }
}

/// Reads `first` and an `after` cursor of a newest-first list.
pub(crate) fn page(first: i32, after: Option<String>) -> Result<(i64, Option<i64>)> {
    if !(1..=200).contains(&first) {
        return Err("first must be between 1 and 200.".into());
    }
    let before = match after {
        Some(cursor) => Some(
            cursor
                .parse::<i64>()
                .map_err(|_| format!("{cursor:?} is not a cursor from this list"))?,
        ),
        None => None,
    };
    Ok((i64::from(first), before))
}

/// One page of a newest-first list as a Relay connection, cursors being ids.
pub(crate) fn connection<R, T: async_graphql::OutputType>(
    mut rows: Vec<R>,
    first: i64,
    has_previous: bool,
    id: impl Fn(&R) -> i64,
    convert: impl Fn(R) -> T,
) -> Connection<String, T> {
    let has_next = rows.len() as i64 > first;
    rows.truncate(first as usize);
    let mut connection = Connection::new(has_previous, has_next);
    connection.edges.extend(
        rows.into_iter()
            .map(|row| Edge::new(id(&row).to_string(), convert(row))),
    );
    connection
}

/// The storefront's changes.
#[derive(Default)]
pub struct CommerceMutation;

#[Object]
impl CommerceMutation {
    /// Signs a visitor up: account, client user and an order awaiting
    /// payment, all or nothing; every invalid field is named at once. An
    /// address may sign up a few times an hour; a request, once.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<SignUpPayload> {
        let commerce = commerce(ctx)?;
        let limits = *ctx.data::<Limits>()?;
        let actor = crate::mutation::actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        if !sign_in::count_sign_up(&mut conn, &actor.ip, limits)
            .await
            .map_err(internal)?
        {
            return Err(format!(
                "Too many sign-ups from your address. Wait {} minutes and try again.",
                limits.sign_up_window.num_minutes()
            )
            .into());
        }
        let form = SignupForm {
            plan: input.plan,
            username: input.username,
            password: input.password,
            password_confirmation: input.password_confirmation,
            contact_name: input.contact_name,
            company: input.company,
            email: input.email,
            phone: input.phone,
            address: input.address,
            accept_terms: input.accept_terms,
            checkout_token: input.checkout_token,
            starting_credit: input.starting_credit,
        };
        let offered = &commerce.settings.billing.starting_credit;
        let signup = match orders::sign_up(&mut conn, &form, offered, commerce.gateway.name()).await
        {
            Ok(signup) => {
                let subject = format!("account:{}", signup.account_id);
                audit::record(&mut conn, &actor, "account.sign_up", &subject, "")
                    .await
                    .map_err(internal)?;
                signup
            }
            Err(SignupError::Invalid(errors)) => return Err(field_errors(&errors)),
            Err(SignupError::Resubmitted { signup, username }) => {
                // Proving the password counts against the sign-in limits:
                // a checkout token is no way around them.
                match sign_in::sign_in(
                    pool(ctx)?,
                    &username,
                    &form.password,
                    &actor.ip,
                    limits,
                    Purpose::Reauthenticate,
                )
                .await
                {
                    Ok(_) => signup,
                    Err(SignInError::Refused) => {
                        return Err(field_errors(&orders::checkout_used()))
                    }
                    Err(throttled @ SignInError::Throttled { .. }) => {
                        return Err(throttled.to_string().into())
                    }
                    Err(other) => return Err(internal(other)),
                }
            }
            Err(other) => return Err(internal(other)),
        };
        let order = orders::by_public_id(&mut conn, &signup.order_public_id)
            .await
            .map_err(internal)?
            .ok_or("The order vanished.")?;
        let item = checkout_item(&mut conn, &order).await?;
        // The stored address, as paying again sends: the same request under
        // the same idempotency key.
        let email = user_email(&mut conn, order.account_id).await?;
        let payment_url = commerce
            .gateway
            .start_checkout(&mut conn, commerce.settings.base_url(), &order, &item, &email)
            .await
            .map_err(|e| {
                tracing::error!(error = %format!("{e:#}"), "starting a checkout failed");
                async_graphql::Error::new("The payment service is not answering; your order is saved, try paying again in a moment.")
            })?;
        Ok(SignUpPayload {
            order: order.into(),
            payment_url,
            user_id: ID(signup.user_id.0.to_string()),
        })
    }

    /// Starts paying for an order again (after a decline or an abandoned
    /// checkout); returns where to pay: the order's open checkout while it
    /// can still be paid, or the order's page while a payment is being
    /// confirmed, so one order is never paid twice. Only the order's own
    /// client pays it.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn pay_order(&self, ctx: &Context<'_>, order_id: ID) -> Result<String> {
        let commerce = commerce(ctx)?;
        let user = guards::user(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let order = owned_order(&mut conn, user, &order_id).await?;
        if order.state != "awaiting_payment" {
            return Err("This order is paid already.".into());
        }
        let item = checkout_item(&mut conn, &order).await?;
        let email = user_email(&mut conn, order.account_id).await?;
        commerce
            .gateway
            .start_checkout(
                &mut conn,
                commerce.settings.base_url(),
                &order,
                &item,
                &email,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %format!("{e:#}"), "starting a checkout failed");
                async_graphql::Error::new(
                    "The payment service is not answering; try again in a moment.",
                )
            })
    }

    /// Pays an order with one of the test gateway's cards (development
    /// only), as the order's own client.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn pay_with_test_card(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        card_number: String,
        #[graphql(
            desc = "The answer to an authentication step: true completes it, false fails it."
        )]
        authenticated: Option<bool>,
    ) -> Result<TestPaymentPayload> {
        let commerce = commerce(ctx)?;
        if !matches!(commerce.gateway, Gateway::Test) {
            return Err("The test gateway is not in use here.".into());
        }
        let user = guards::user(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let order = owned_order(&mut conn, user, &order_id).await?;
        if order.state != "awaiting_payment" {
            // A real gateway would not charge for a paid order either.
            return Ok(TestPaymentPayload {
                outcome: PaymentOutcome::Paid,
                order: order.into(),
            });
        }
        let outcome = test_gateway::charge(&card_number, authenticated)
            .ok_or("This is not one of the test cards: use 4242 4242 4242 4242, 4000 0000 0000 0002 or 4000 0025 0000 3155.")?;
        let reference = format!("test-{}", &switchboard_core::keys::random_token()[..24]);
        let digits: String = card_number.chars().filter(char::is_ascii_digit).collect();
        let report = PaymentReport {
            gateway: "test".into(),
            reference,
            amount: CoreMoney(order.total),
            currency: order.currency.clone(),
            outcome,
            detail: format!(
                "test card ending {}",
                &digits[digits.len().saturating_sub(4)..]
            ),
            stripe_customer: None,
            stripe_payment_method: None,
            card: test_card(&card_number),
        };
        let result = orders::record_payment(
            &mut conn,
            &commerce.key,
            &commerce.settings.email.staff_address,
            &order.public_id,
            &report,
        )
        .await
        .map_err(internal)?;
        let outcome = match result {
            PaymentResult::Paid { .. }
            | PaymentResult::FundsAdded
            | PaymentResult::AlreadyPaid
            | PaymentResult::Credited => PaymentOutcome::Paid,
            PaymentResult::NeedsAuthentication => PaymentOutcome::NeedsAuthentication,
            PaymentResult::Declined => PaymentOutcome::Declined,
            PaymentResult::AuthenticationFailed => PaymentOutcome::AuthenticationFailed,
            PaymentResult::Mismatch => {
                return Err("The payment does not match the order; staff have been told.".into())
            }
        };
        let order = orders::by_public_id(&mut conn, &order.public_id)
            .await
            .map_err(internal)?
            .ok_or("No such order.")?;
        Ok(TestPaymentPayload {
            outcome,
            order: order.into(),
        })
    }

    /// Tries a failed PBX's provisioning again.
    #[graphql(guard = "Allow(STAFF)")]
    async fn retry_provisioning(&self, ctx: &Context<'_>, pbx_id: ID) -> Result<Pbx> {
        let id = parse_id(&pbx_id)?;
        let actor = crate::mutation::actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        // Reopened, queued and audited together, or none of them: a PBX is
        // never left provisioning with no job to do it.
        let reopened = conn
            .transaction(async |conn| {
                if !pbxes::reopen(conn, id).await? {
                    return Ok(false);
                }
                queue::enqueue(conn, queue::PROVISION_PBX, &id.to_string(), None).await?;
                let change = audit::Change::from_to(
                    serde_json::json!({ "state": "failed" }),
                    serde_json::json!({ "state": "provisioning" }),
                );
                audit::record_change(
                    conn,
                    &actor,
                    "pbx.retry_provisioning",
                    &format!("pbx:{id}"),
                    "",
                    &change,
                )
                .await?;
                Ok::<_, diesel::result::Error>(true)
            })
            .await
            .map_err(internal)?;
        if !reopened {
            return Err("Only a failed PBX can be retried.".into());
        }
        let pbx = pbxes::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or("No such PBX.")?;
        Ok(pbx.into())
    }

    /// Adds a plan to the catalogue (admins: DESIGN.md's roles).
    #[graphql(guard = "Allow(ADMIN)")]
    async fn create_plan(&self, ctx: &Context<'_>, input: PlanInput) -> Result<Plan> {
        let actor = crate::mutation::actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let plan = conn
            .transaction(async |conn| {
                let id = plans::create(conn, &input.into()).await?;
                let plan = plans::get(conn, id).await?.ok_or(PlanError::NotFound)?;
                let change = audit::Change::created(&plan);
                audit::record_change(
                    conn,
                    &actor,
                    "plan.create",
                    &format!("plan:{id}"),
                    "",
                    &change,
                )
                .await?;
                Ok::<_, PlanError>(plan)
            })
            .await
            .map_err(plan_error)?;
        commerce(ctx)?.catalogue.forget();
        Ok(plan.into())
    }

    /// Changes a plan; orders already placed keep what they bought.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn update_plan(&self, ctx: &Context<'_>, id: ID, input: PlanInput) -> Result<Plan> {
        let id = parse_id(&id)?;
        let actor = crate::mutation::actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let plan = conn
            .transaction(async |conn| {
                let before = plans::get(conn, id).await?.ok_or(PlanError::NotFound)?;
                plans::update(conn, id, &input.into()).await?;
                let after = plans::get(conn, id).await?.ok_or(PlanError::NotFound)?;
                let change = audit::Change::from_to(&before, &after);
                audit::record_change(
                    conn,
                    &actor,
                    "plan.update",
                    &format!("plan:{id}"),
                    "",
                    &change,
                )
                .await?;
                Ok::<_, PlanError>(after)
            })
            .await
            .map_err(plan_error)?;
        commerce(ctx)?.catalogue.forget();
        Ok(plan.into())
    }
}

/// An order its viewer pays: their own account's; another's reads as
/// missing, whoever asks.
async fn owned_order(
    conn: &mut diesel_async::AsyncPgConnection,
    user: &switchboard_core::people::sessions::SessionUser,
    id: &str,
) -> Result<orders::Order> {
    orders::by_public_id(conn, id)
        .await
        .map_err(internal)?
        .filter(|o| user.account_id == Some(AccountId(o.account_id)))
        .ok_or_else(|| "No such order.".into())
}

/// What a checkout line says an order buys.
async fn checkout_item(
    conn: &mut diesel_async::AsyncPgConnection,
    order: &orders::Order,
) -> Result<String> {
    if order.kind == "top_up" {
        return Ok("Call credit".into());
    }
    let plan = plans::get(conn, order.plan_id.unwrap_or_default())
        .await
        .map_err(internal)?
        .ok_or("The plan vanished.")?;
    let with_credit = orders::lines(conn, order.id)
        .await
        .map_err(internal)?
        .iter()
        .any(|l| l.kind == "call_credit");
    Ok(if with_credit {
        format!("{}: setup, first month and call credit", plan.name)
    } else {
        format!("{}: setup and first month", plan.name)
    })
}

/// The card a test card number is kept as, for automatic top-ups.
pub(crate) fn test_card(card_number: &str) -> Option<orders::CardOnFile> {
    let payment_method = test_gateway::saved_as(card_number)?;
    Some(orders::CardOnFile {
        last4: payment_method
            .rsplit('_')
            .next()
            .unwrap_or_default()
            .to_owned(),
        payment_method,
        brand: "visa".into(),
        exp_month: 12,
        exp_year: 2034,
    })
}

async fn user_email(conn: &mut diesel_async::AsyncPgConnection, account: i64) -> Result<String> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::accounts;
    accounts::table
        .find(account)
        .select(accounts::email)
        .first(conn)
        .await
        .map_err(internal)
}

fn plan_error(error: PlanError) -> async_graphql::Error {
    match error {
        PlanError::Invalid(errors) => field_errors(&errors),
        PlanError::NotFound => "No such plan.".into(),
        other => internal(other),
    }
}
