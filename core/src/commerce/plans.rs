//! Plans: what the storefront sells.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::forms::FieldErrors;
use crate::money::Money;
use crate::schema::plans;

/// A plan as stored.
#[derive(Clone, Debug, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = plans)]
pub struct Plan {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub currency: String,
    pub setup_fee: i64,
    pub monthly_fee: i64,
    pub included_extensions: i32,
    pub calling_plan_id: Option<i64>,
    pub active: bool,
    pub position: i32,
    pub created_at: DateTime<Utc>,
}

impl Plan {
    /// What a signup pays up front: the setup fee and the first month.
    pub fn first_payment(&self) -> Money {
        Money(self.setup_fee)
            .checked_add(Money(self.monthly_fee))
            .expect("plan fees are bounded by the plans table's checks")
    }
}

/// The largest setup or monthly fee (the plans table checks it too).
const MOST_A_FEE: Money = Money(1_000_000 * crate::money::MICROS_PER_UNIT);

/// A plan as staff type it.
#[derive(Clone, Debug, Default)]
pub struct PlanInput {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub currency: String,
    pub setup_fee: String,
    pub monthly_fee: String,
    pub included_extensions: String,
    pub active: bool,
    pub position: i32,
    /// The calling plan its PBXs' calls are billed with, in the plan's
    /// currency. On a change, `None` keeps the one it has.
    pub calling_plan_id: Option<i64>,
}

/// A checked plan, ready to store.
#[derive(Clone, Debug)]
struct ValidPlan {
    slug: String,
    name: String,
    description: String,
    currency: String,
    setup_fee: Money,
    monthly_fee: Money,
    included_extensions: i32,
    active: bool,
    position: i32,
}

fn validate(input: &PlanInput) -> Result<ValidPlan, FieldErrors> {
    let mut errors = FieldErrors::default();
    let slug = input.slug.trim().to_lowercase();
    if slug.is_empty()
        || slug.len() > 40
        || slug.starts_with('-')
        || !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errors.add("slug", "must be 1 to 40 lower-case letters, digits and '-'");
    }
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.len() > 80 {
        errors.add("name", "must be 1 to 80 characters");
    }
    let currency = crate::domain::parse_currency(&input.currency)
        .map_err(|why| errors.add("currency", why))
        .unwrap_or_default();
    // Card payments are in cents; currencies with no or three minor digits
    // would be charged the wrong amount.
    if crate::money::minor_digits(&currency) != 2 {
        errors.add("currency", "must be one with cents (USD, EUR, GBP, CAD …)");
    }
    let mut fee = |field: &str, text: &str| match Money::parse_decimal(text) {
        Ok(m) if m.micros() >= 0 && m.micros() % 10_000 != 0 => {
            errors.add(field, "must be whole cents, such as 29.99");
            Money::ZERO
        }
        Ok(m) if m > MOST_A_FEE => {
            errors.add(field, "must be at most 1,000,000");
            Money::ZERO
        }
        Ok(m) if m.micros() >= 0 => m,
        Ok(_) => {
            errors.add(field, "must not be negative");
            Money::ZERO
        }
        Err(why) => {
            errors.add(field, &why.to_string());
            Money::ZERO
        }
    };
    let setup_fee = fee("setup_fee", &input.setup_fee);
    let monthly_fee = fee("monthly_fee", &input.monthly_fee);
    let included_extensions = match input.included_extensions.trim().parse::<i32>() {
        Ok(n) if (1..=10_000).contains(&n) => n,
        _ => {
            errors.add(
                "included_extensions",
                "must be a whole number from 1 to 10000",
            );
            1
        }
    };
    errors.into_result(ValidPlan {
        slug,
        name,
        description: input.description.trim().to_owned(),
        currency,
        setup_fee,
        monthly_fee,
        included_extensions,
        active: input.active,
        position: input.position,
    })
}

/// Plans in catalogue order; hidden ones only when asked.
pub async fn list(conn: &mut AsyncPgConnection, include_hidden: bool) -> QueryResult<Vec<Plan>> {
    let mut query = plans::table
        .order((plans::position, plans::id))
        .select(Plan::as_select())
        .into_boxed();
    if !include_hidden {
        query = query.filter(plans::active.eq(true));
    }
    query.load(conn).await
}

/// One plan by its address name.
pub async fn by_slug(conn: &mut AsyncPgConnection, slug: &str) -> QueryResult<Option<Plan>> {
    plans::table
        .filter(plans::slug.eq(slug))
        .select(Plan::as_select())
        .first(conn)
        .await
        .optional()
}

/// One plan by id.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Plan>> {
    plans::table
        .find(id)
        .select(Plan::as_select())
        .first(conn)
        .await
        .optional()
}

/// Why a plan was not saved.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("no such plan")]
    NotFound,
    #[error(transparent)]
    Database(#[from] DieselError),
}

fn taken(error: DieselError) -> PlanError {
    let refused = |field: &str, why: &str| {
        let mut errors = FieldErrors::default();
        errors.add(field, why);
        PlanError::Invalid(errors)
    };
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            refused("slug", "is used by another plan")
        }
        // The calling plan is missing or prices calls in another currency.
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info)
            if info.constraint_name() == Some("plans_calling_plan_currency") =>
        {
            refused(
                "calling_plan",
                "must exist and price calls in the plan's currency",
            )
        }
        DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, info)
            if info.constraint_name() == Some("plans_keep_their_currency") =>
        {
            refused("currency", "cannot change while the plan has PBXs")
        }
        other => PlanError::Database(other),
    }
}

/// Adds a plan; returns its id.
pub async fn create(conn: &mut AsyncPgConnection, input: &PlanInput) -> Result<i64, PlanError> {
    let plan = validate(input).map_err(PlanError::Invalid)?;
    diesel::insert_into(plans::table)
        .values((
            plans::slug.eq(&plan.slug),
            plans::name.eq(&plan.name),
            plans::description.eq(&plan.description),
            plans::currency.eq(&plan.currency),
            plans::setup_fee.eq(plan.setup_fee.micros()),
            plans::monthly_fee.eq(plan.monthly_fee.micros()),
            plans::included_extensions.eq(plan.included_extensions),
            plans::active.eq(plan.active),
            plans::position.eq(plan.position),
            plans::calling_plan_id.eq(input.calling_plan_id),
        ))
        .returning(plans::id)
        .get_result(conn)
        .await
        .map_err(taken)
}

/// Changes a plan. Orders already placed keep what they were sold.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: i64,
    input: &PlanInput,
) -> Result<(), PlanError> {
    let plan = validate(input).map_err(PlanError::Invalid)?;
    conn.transaction(async |conn| {
        let changed = diesel::update(plans::table.find(id))
            .set((
                plans::slug.eq(&plan.slug),
                plans::name.eq(&plan.name),
                plans::description.eq(&plan.description),
                plans::currency.eq(&plan.currency),
                plans::setup_fee.eq(plan.setup_fee.micros()),
                plans::monthly_fee.eq(plan.monthly_fee.micros()),
                plans::included_extensions.eq(plan.included_extensions),
                plans::active.eq(plan.active),
                plans::position.eq(plan.position),
            ))
            .execute(conn)
            .await
            .map_err(taken)?;
        if changed == 0 {
            return Err(PlanError::NotFound);
        }
        if let Some(calling_plan) = input.calling_plan_id {
            diesel::update(plans::table.find(id))
                .set(plans::calling_plan_id.eq(calling_plan))
                .execute(conn)
                .await
                .map_err(taken)?;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PlanInput {
        PlanInput {
            slug: "office-10".into(),
            name: "Office 10".into(),
            description: "Ten extensions".into(),
            currency: "USD".into(),
            setup_fee: "49".into(),
            monthly_fee: "29.99".into(),
            included_extensions: "10".into(),
            active: true,
            position: 1,
            calling_plan_id: None,
        }
    }

    #[test]
    fn a_valid_plan_passes_and_every_bad_field_is_named() {
        let plan = validate(&input()).expect("valid");
        assert_eq!(plan.monthly_fee, Money(29_990_000));
        let bad = PlanInput {
            slug: "Office 10".into(),
            name: String::new(),
            currency: "usd".into(),
            setup_fee: "-1".into(),
            monthly_fee: "ten".into(),
            included_extensions: "0".into(),
            ..input()
        };
        let cents = validate(&PlanInput {
            monthly_fee: "29.995".into(),
            ..input()
        })
        .expect_err("invalid");
        assert_eq!(
            cents.get("monthly_fee"),
            Some("must be whole cents, such as 29.99")
        );
        let yen = validate(&PlanInput {
            currency: "JPY".into(),
            ..input()
        })
        .expect_err("invalid");
        assert!(yen.get("currency").is_some());
        let errors = validate(&bad).expect_err("invalid");
        let fields: Vec<&str> = errors.fields().collect();
        assert_eq!(
            fields,
            [
                "slug",
                "name",
                "currency",
                "setup_fee",
                "monthly_fee",
                "included_extensions"
            ]
        );
    }
}
