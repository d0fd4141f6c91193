//! Additional services: staff keep the catalogue; a client orders a service
//! (paid from the balance), sees where it is and cancels it; staff mark
//! what they had to set up as done. A client reaches only their own
//! account's services (a reseller also its sub-accounts'); another's id
//! reads as not found.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use switchboard_core::audit::{self, Change};
use switchboard_core::commerce::services::{
    self, Attachment, NewOrder, Orderer, ServiceError, ServiceInput as CoreInput, Status,
};
use switchboard_core::people::accounts;
use switchboard_core::support::tickets::Mail;
use switchboard_core::{db, AccountId, Money as CoreMoney};

use crate::commerce::{commerce, connection, field_errors, page};
use crate::guards::{self, Allow, CUSTOMERS, SIGNED_IN, STAFF};
use crate::mutation::actor;
use crate::types::{parse_id, Money};
use crate::{internal, pool};

/// What an order of a service names.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceAttachment {
    /// One of the account's PBXs: the order names it.
    Pbx,
    /// The account as a whole.
    Account,
}

impl From<Attachment> for ServiceAttachment {
    fn from(attachment: Attachment) -> ServiceAttachment {
        match attachment {
            Attachment::Pbx => ServiceAttachment::Pbx,
            Attachment::Account => ServiceAttachment::Account,
        }
    }
}

impl From<ServiceAttachment> for Attachment {
    fn from(attachment: ServiceAttachment) -> Attachment {
        match attachment {
            ServiceAttachment::Pbx => Attachment::Pbx,
            ServiceAttachment::Account => Attachment::Account,
        }
    }
}

/// Where an ordered service is.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceOrderState {
    /// Paid; staff must set it up before it works.
    AwaitingStaff,
    /// Working (when cancelled, until `endsAt`).
    Active,
    /// Cancelled, and its last paid period is over.
    Ended,
}

impl From<Status> for ServiceOrderState {
    fn from(status: Status) -> ServiceOrderState {
        match status {
            Status::AwaitingStaff => ServiceOrderState::AwaitingStaff,
            Status::Active => ServiceOrderState::Active,
            Status::Ended => ServiceOrderState::Ended,
        }
    }
}

/// An add-on of the catalogue.
#[derive(SimpleObject, Clone, Debug)]
pub struct Service {
    pub id: ID,
    pub name: String,
    pub description: String,
    pub one_time_fee: Money,
    pub monthly_fee: Money,
    /// The one-time fee and the first month: what ordering takes from the
    /// balance.
    pub first_payment: Money,
    pub attaches_to: ServiceAttachment,
    /// Staff must act before it works: an order waits for them.
    pub needs_staff: bool,
    /// Clients can order it.
    pub offered: bool,
    pub updated_at: DateTime<Utc>,
}

impl From<services::Service> for Service {
    fn from(row: services::Service) -> Service {
        Service {
            id: ID(row.id.to_string()),
            one_time_fee: Money::new(CoreMoney(row.one_time_fee), &row.currency),
            monthly_fee: Money::new(CoreMoney(row.monthly_fee), &row.currency),
            first_payment: Money::new(row.first_payment(), &row.currency),
            attaches_to: row.attachment().into(),
            needs_staff: row.needs_staff,
            offered: row.offered,
            updated_at: row.updated_at,
            name: row.name,
            description: row.description,
        }
    }
}

/// A service an account ordered, with the name and fees it was bought for.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct ServiceOrder {
    pub id: ID,
    pub name: String,
    pub service_id: ID,
    pub account_id: ID,
    /// The PBX it is for, when the service attaches to one.
    pub pbx_id: Option<ID>,
    pub one_time_fee: Money,
    pub monthly_fee: Money,
    pub state: ServiceOrderState,
    pub ordered_at: DateTime<Utc>,
    /// When it started working: at once, or when staff marked it done.
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When a cancelled service stops: the end of the period paid.
    pub ends_at: Option<DateTime<Utc>>,
    /// When the next month is charged; none once it is cancelled (or free).
    pub next_charge_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub row_account: i64,
}

impl ServiceOrder {
    fn new(row: services::ServiceOrder, now: DateTime<Utc>) -> ServiceOrder {
        ServiceOrder {
            id: ID(row.id.to_string()),
            service_id: ID(row.service_id.to_string()),
            account_id: ID(row.account_id.to_string()),
            pbx_id: row.pbx_id.map(|p| ID(p.to_string())),
            one_time_fee: Money::new(CoreMoney(row.one_time_fee), &row.currency),
            monthly_fee: Money::new(CoreMoney(row.monthly_fee), &row.currency),
            state: row.status(now).into(),
            ordered_at: row.ordered_at,
            completed_at: row.completed_at,
            cancelled_at: row.cancelled_at,
            ends_at: row.ends_at,
            next_charge_at: row.next_charge_at(now),
            row_account: row.account_id,
            name: row.name,
        }
    }
}

#[ComplexObject]
impl ServiceOrder {
    /// The account that ordered it.
    async fn account(&self, ctx: &Context<'_>) -> Result<crate::types::Account> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        accounts::get(&mut conn, AccountId(self.row_account))
            .await
            .map_err(internal)?
            .map(|(row, balance)| crate::types::Account::new(row, balance))
            .ok_or_else(|| "The service's account is gone.".into())
    }
}

/// An account's ordered services, newest first (for `Account.serviceOrders`;
/// the account is already known to be visible).
pub(crate) async fn of_account(ctx: &Context<'_>, account: i64) -> Result<Vec<ServiceOrder>> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let now = Utc::now();
    Ok(services::of_account(&mut conn, AccountId(account))
        .await
        .map_err(internal)?
        .into_iter()
        .map(|row| ServiceOrder::new(row, now))
        .collect())
}

/// The ordered service, when the viewer may see it: staff any, a client
/// their own account's. Unknown and foreign ids read alike.
async fn visible(
    ctx: &Context<'_>,
    conn: &mut AsyncPgConnection,
    id: &ID,
) -> Result<services::ServiceOrder> {
    let user = guards::user(ctx)?;
    let not_found = || async_graphql::Error::new(format!("No service order {}.", id.as_str()));
    let id = parse_id(id).map_err(|_| not_found())?;
    let order = services::get_order(conn, id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    if user.role.is_company() {
        return Ok(order);
    }
    match accounts::get(conn, AccountId(order.account_id))
        .await
        .map_err(internal)?
    {
        Some((account, _)) if guards::may_see_account(user, &account) => Ok(order),
        _ => Err(not_found()),
    }
}

fn refused(error: ServiceError) -> async_graphql::Error {
    match error {
        ServiceError::Invalid(errors) => field_errors(&errors),
        ServiceError::NoService => "No such service.".into(),
        ServiceError::NoOrder => "No such service order.".into(),
        ServiceError::NotOffered => "This service is no longer offered.".into(),
        ServiceError::WrongCurrency => {
            "This service is not sold in your account's currency.".into()
        }
        ServiceError::TurnedOff => {
            "Your account is turned off: nothing can be ordered. Support can tell you more.".into()
        }
        ServiceError::TooLittleBalance {
            balance,
            needed,
            currency,
        } => format!(
            "Your balance ({}) does not cover this service's first payment ({}): add funds, then order again. Nothing was charged.",
            balance.format(&currency),
            needed.format(&currency)
        )
        .into(),
        ServiceError::Ledger(error) => internal(error),
        ServiceError::Database(error) => internal(error),
    }
}

fn mail<'a>(ctx: &Context<'a>) -> Result<Mail<'a>> {
    let settings = &commerce(ctx)?.settings;
    Ok(Mail {
        base_url: settings.base_url(),
        staff_address: &settings.email.staff_address,
    })
}

/// Reading the catalogue and ordered services.
#[derive(Default)]
pub struct ServicesQuery;

#[Object]
impl ServicesQuery {
    /// The services that can be ordered, by name.
    #[graphql(
        guard = "Allow(SIGNED_IN)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn services(&self, ctx: &Context<'_>) -> Result<Vec<Service>> {
        catalogue(ctx, true).await
    }

    /// Every service of the catalogue, withdrawn ones too, for staff.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn all_services(&self, ctx: &Context<'_>) -> Result<Vec<Service>> {
        catalogue(ctx, false).await
    }

    /// One ordered service: staff read any, a client their own account's.
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn service_order(&self, ctx: &Context<'_>, id: ID) -> Result<ServiceOrder> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let row = visible(ctx, &mut conn, &id).await?;
        Ok(ServiceOrder::new(row, Utc::now()))
    }

    /// Every account's ordered services, newest first, for staff; with
    /// `awaitingStaff`, only those waiting for them.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn service_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] awaiting_staff: bool,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, ServiceOrder>> {
        let (first, before) = page(first, after)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = services::queue(&mut conn, awaiting_staff, before, first + 1)
            .await
            .map_err(internal)?;
        let now = Utc::now();
        Ok(connection(
            rows,
            first,
            before.is_some(),
            |o| o.id,
            |o| ServiceOrder::new(o, now),
        ))
    }
}

async fn catalogue(ctx: &Context<'_>, offered_only: bool) -> Result<Vec<Service>> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    Ok(services::catalogue(&mut conn, offered_only)
        .await
        .map_err(internal)?
        .into_iter()
        .map(Service::from)
        .collect())
}

/// A service of the catalogue as staff write it.
#[derive(InputObject)]
pub struct ServiceInput {
    pub name: String,
    #[graphql(default)]
    pub description: String,
    #[graphql(default_with = "String::from(\"USD\")")]
    pub currency: String,
    /// A decimal amount: `25`, `4.99`.
    pub one_time_fee: String,
    /// A decimal amount: `25`, `4.99`.
    pub monthly_fee: String,
    pub attaches_to: ServiceAttachment,
    pub needs_staff: bool,
    #[graphql(default = true)]
    pub offered: bool,
}

impl From<ServiceInput> for CoreInput {
    fn from(input: ServiceInput) -> CoreInput {
        CoreInput {
            name: input.name,
            description: input.description,
            currency: input.currency,
            one_time_fee: input.one_time_fee,
            monthly_fee: input.monthly_fee,
            attaches_to: Attachment::from(input.attaches_to).as_str().to_owned(),
            needs_staff: input.needs_staff,
            offered: input.offered,
        }
    }
}

/// An order of a service.
#[derive(InputObject)]
pub struct OrderServiceInput {
    pub service_id: ID,
    /// The PBX it is for, when the service attaches to one.
    pub pbx_id: Option<ID>,
    /// A random value from the form: ordering again with the same one
    /// returns the first order, charged once.
    pub request_key: String,
}

/// Changing the catalogue and ordered services.
#[derive(Default)]
pub struct ServicesMutation;

#[Object]
impl ServicesMutation {
    /// Orders a service for the viewer's account: the one-time fee and the
    /// first month come from the balance at once (refused, with nothing
    /// charged, when it does not cover them), the months after are billed
    /// monthly, and staff are emailed.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn order_service(
        &self,
        ctx: &Context<'_>,
        input: OrderServiceInput,
    ) -> Result<ServiceOrder> {
        let user = guards::user(ctx)?;
        let account = user.account_id.ok_or("Your user belongs to no account.")?;
        let orderer = Orderer {
            user_id: user.user_id,
            username: user.username.clone(),
        };
        // An id that is not a number names no service, and none of the
        // account's PBXs.
        let new = NewOrder {
            service: input.service_id.parse::<i64>().unwrap_or(-1),
            pbx: input.pbx_id.map(|id| id.parse::<i64>().unwrap_or(-1)),
            request_key: &input.request_key,
        };
        let mail = mail(ctx)?;
        let now = Utc::now();
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let ordered = services::order(&mut conn, mail, &orderer, account, &new, now)
            .await
            .map_err(refused)?;
        Ok(ServiceOrder::new(ordered.order, now))
    }

    /// Cancels a service of the viewer's account: it works and is billed
    /// until the end of the period already paid (`endsAt`), then stops;
    /// nothing is refunded. Cancelling again changes nothing.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn cancel_service(
        &self,
        ctx: &Context<'_>,
        service_order_id: ID,
    ) -> Result<ServiceOrder> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let id = visible(ctx, &mut conn, &service_order_id).await?.id;
        let mail = mail(ctx)?;
        let now = Utc::now();
        let order = conn
            .transaction(async |conn| services::cancel(conn, mail, id, now).await)
            .await
            .map_err(refused)?;
        Ok(ServiceOrder::new(order, now))
    }

    /// Marks an ordered service staff had to set up as done: it is active
    /// from now. Done already: nothing changes.
    #[graphql(guard = "Allow(STAFF)")]
    async fn complete_service_order(
        &self,
        ctx: &Context<'_>,
        service_order_id: ID,
    ) -> Result<ServiceOrder> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let id = visible(ctx, &mut conn, &service_order_id).await?.id;
        let by = guards::user(ctx)?.user_id;
        let actor = actor(ctx);
        let now = Utc::now();
        conn.transaction(async |conn| {
            if let Some((before, after)) = services::complete(conn, id, by, now).await? {
                audit::record_change(
                    conn,
                    &actor,
                    "service_order.complete",
                    &format!("service_order:{id}"),
                    &format!("account {}", after.account_id),
                    &Change::from_to(
                        serde_json::json!({ "state": before.state }),
                        serde_json::json!({ "state": after.state }),
                    ),
                )
                .await?;
            }
            Ok::<_, ServiceError>(())
        })
        .await
        .map_err(refused)?;
        let row = services::get_order(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or("No such service order.")?;
        Ok(ServiceOrder::new(row, now))
    }

    /// Adds a service to the catalogue.
    #[graphql(guard = "Allow(STAFF)")]
    async fn create_service(&self, ctx: &Context<'_>, input: ServiceInput) -> Result<Service> {
        let actor = actor(ctx);
        let input = CoreInput::from(input);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let id = services::create(conn, &input).await?;
            let service = services::get(conn, id)
                .await?
                .ok_or(ServiceError::NoService)?;
            audit::record_change(
                conn,
                &actor,
                "service.create",
                &format!("service:{id}"),
                "",
                &Change::created(&service),
            )
            .await?;
            Ok::<_, ServiceError>(service)
        })
        .await
        .map(Service::from)
        .map_err(refused)
    }

    /// Changes a service of the catalogue; services already ordered keep the
    /// name and fees they were bought for.
    #[graphql(guard = "Allow(STAFF)")]
    async fn update_service(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ServiceInput,
    ) -> Result<Service> {
        let id = parse_id(&id)?;
        let actor = actor(ctx);
        let input = CoreInput::from(input);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let before = services::get(conn, id)
                .await?
                .ok_or(ServiceError::NoService)?;
            services::update(conn, id, &input).await?;
            let after = services::get(conn, id)
                .await?
                .ok_or(ServiceError::NoService)?;
            audit::record_change(
                conn,
                &actor,
                "service.update",
                &format!("service:{id}"),
                "",
                &Change::from_to(&before, &after),
            )
            .await?;
            Ok::<_, ServiceError>(after)
        })
        .await
        .map(Service::from)
        .map_err(refused)
    }
}
