//! Accounts: who pays.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::domain::{AccountId, AccountKind, Role, Standing};
use crate::forms::FieldErrors;
use crate::money::ledger;
use crate::money::Money;
use crate::schema::{accounts, ledger_accounts};

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub parent_id: Option<i64>,
    pub draws_on_parent: bool,
    pub currency: String,
    pub standing: String,
    pub turned_off: bool,
    pub low_balance_threshold: i64,
    pub credit_limit: i64,
    pub time_zone: String,
    pub contact_name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    pub created_at: DateTime<Utc>,
    /// The calling plan its PBXs' calls are billed with, over their plans'.
    pub calling_plan_id: Option<i64>,
    /// When the current standing began.
    pub standing_since: DateTime<Utc>,
    /// How often the balance fell below the threshold.
    pub low_crossings: i32,
    /// When staff were told the account is due for termination.
    pub termination_notice_at: Option<DateTime<Utc>>,
    pub auto_replenish: bool,
    pub replenish_amount: i64,
    pub replenish_monthly_cap: i64,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub card_exp_month: Option<i32>,
    pub card_exp_year: Option<i32>,
    /// Why an admin turned the account off, while it is.
    pub turned_off_reason: Option<String>,
    /// When an admin turned it off, while it is.
    pub turned_off_at: Option<DateTime<Utc>>,
}

impl Account {
    pub fn id(&self) -> AccountId {
        AccountId(self.id)
    }

    pub fn kind(&self) -> AccountKind {
        self.kind.parse().unwrap_or(AccountKind::Retail)
    }

    pub fn standing(&self) -> Standing {
        self.standing.parse().unwrap_or(Standing::Good)
    }
}

/// An account to open.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub name: String,
    pub kind: AccountKind,
    pub parent: Option<AccountId>,
    pub currency: String,
    pub contact_name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub address: String,
}

/// Opens an account together with the ledger account that holds its balance.
pub async fn create(conn: &mut AsyncPgConnection, new: &NewAccount) -> QueryResult<AccountId> {
    conn.transaction(async |conn| {
        let id: i64 = diesel::insert_into(accounts::table)
            .values((
                accounts::name.eq(&new.name),
                accounts::kind.eq(new.kind.as_str()),
                accounts::parent_id.eq(new.parent.map(|p| p.0)),
                accounts::currency.eq(&new.currency),
                accounts::contact_name.eq(&new.contact_name),
                accounts::company.eq(&new.company),
                accounts::email.eq(&new.email),
                accounts::phone.eq(&new.phone),
                accounts::address.eq(&new.address),
            ))
            .returning(accounts::id)
            .get_result(conn)
            .await?;
        ledger::open_customer_account(conn, AccountId(id), &new.currency).await?;
        Ok(AccountId(id))
    })
    .await
}

/// One account with its balance, or `None`.
pub async fn get(
    conn: &mut AsyncPgConnection,
    id: AccountId,
) -> QueryResult<Option<(Account, Money)>> {
    accounts::table
        .inner_join(ledger_accounts::table)
        .filter(accounts::id.eq(id.0))
        .select((Account::as_select(), ledger_accounts::balance))
        .first::<(Account, i64)>(conn)
        .await
        .optional()
        .map(|found| found.map(|(account, balance)| (account, Money(balance))))
}

/// Which accounts a staff list shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Part of the name, company or email, in any case.
    pub search: Option<String>,
    pub standing: Option<Standing>,
}

/// Accounts in id order after `after`, with their balances: one page of a
/// keyset-paginated list.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &Filter,
    after: Option<AccountId>,
    limit: i64,
) -> QueryResult<Vec<(Account, Money)>> {
    let mut query = accounts::table
        .inner_join(ledger_accounts::table)
        .select((Account::as_select(), ledger_accounts::balance))
        .order(accounts::id)
        .limit(limit)
        .into_boxed();
    if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let pattern = format!("%{}%", escape_like(search.trim()));
        query = query.filter(
            accounts::name
                .ilike(pattern.clone())
                .or(accounts::company.ilike(pattern.clone()))
                .or(accounts::email.ilike(pattern)),
        );
    }
    if let Some(standing) = filter.standing {
        query = query.filter(accounts::standing.eq(standing.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(accounts::id.gt(after.0));
    }
    let rows: Vec<(Account, i64)> = query.load(conn).await?;
    Ok(rows.into_iter().map(|(a, b)| (a, Money(b))).collect())
}

/// An account's details as an admin edits them, each as typed.
#[derive(Clone, Debug, Default)]
pub struct AccountEdit {
    pub name: String,
    pub kind: String,
    pub contact_name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    /// A decimal amount in the account's currency.
    pub credit_limit: String,
    /// A decimal amount in the account's currency.
    pub low_balance_threshold: String,
    /// The calling plan's id; empty bills with the PBXs' plans'.
    pub calling_plan_id: String,
}

/// An edit that passed its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedEdit {
    pub name: String,
    pub kind: AccountKind,
    pub contact_name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    pub credit_limit: Money,
    pub low_balance_threshold: Money,
    pub calling_plan_id: Option<i64>,
}

impl AccountEdit {
    /// Checks every field at once: a clear message for each that is wrong.
    pub fn check(&self) -> Result<CheckedEdit, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 120 {
            errors.add("name", "must be 1 to 120 characters");
        }
        let kind = self.kind.trim().to_lowercase().parse::<AccountKind>();
        if kind.is_err() {
            errors.add("kind", "must be retail or wholesale");
        }
        let email = crate::domain::Email::parse(&self.email);
        if let Err(why) = &email {
            errors.add("email", why);
        }
        for (field, value, max) in [
            ("contact_name", &self.contact_name, 120),
            ("company", &self.company, 120),
            ("phone", &self.phone, 40),
            ("address", &self.address, 300),
        ] {
            if value.trim().chars().count() > max {
                errors.add(field, "is too long");
            }
        }
        let amount =
            |field: &str, text: &str, errors: &mut FieldErrors| match Money::parse_decimal(text) {
                Ok(money) if money.micros() < 0 => {
                    errors.add(field, "must not be negative");
                    Money::ZERO
                }
                Ok(money) => money,
                Err(why) => {
                    errors.add(field, &why.to_string());
                    Money::ZERO
                }
            };
        let credit_limit = amount("credit_limit", &self.credit_limit, &mut errors);
        let low_balance_threshold = amount(
            "low_balance_threshold",
            &self.low_balance_threshold,
            &mut errors,
        );
        let calling_plan_id = match self.calling_plan_id.trim() {
            "" => None,
            text => match text.parse::<i64>() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.add("calling_plan_id", "is not a calling plan");
                    None
                }
            },
        };
        errors.into_result(())?;
        Ok(CheckedEdit {
            name: name.to_owned(),
            kind: kind.unwrap_or(AccountKind::Retail),
            contact_name: self.contact_name.trim().to_owned(),
            company: self.company.trim().to_owned(),
            email: email.map(|e| e.as_str().to_owned()).unwrap_or_default(),
            phone: self.phone.trim().to_owned(),
            address: self.address.trim().to_owned(),
            credit_limit,
            low_balance_threshold,
            calling_plan_id,
        })
    }
}

impl CheckedEdit {
    /// The details as the audit log keeps them (amounts in micro-units).
    pub fn for_audit(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "kind": self.kind.as_str(),
            "contact_name": self.contact_name,
            "company": self.company,
            "email": self.email,
            "phone": self.phone,
            "address": self.address,
            "credit_limit": self.credit_limit.micros(),
            "low_balance_threshold": self.low_balance_threshold.micros(),
            "calling_plan_id": self.calling_plan_id,
        })
    }

    /// An account's details as they are, in the same shape.
    pub fn of(account: &Account) -> CheckedEdit {
        CheckedEdit {
            name: account.name.clone(),
            kind: account.kind(),
            contact_name: account.contact_name.clone(),
            company: account.company.clone(),
            email: account.email.clone(),
            phone: account.phone.clone(),
            address: account.address.clone(),
            credit_limit: Money(account.credit_limit),
            low_balance_threshold: Money(account.low_balance_threshold),
            calling_plan_id: account.calling_plan_id,
        }
    }
}

/// Why an edit was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("Some fields need correcting.")]
    Invalid(FieldErrors),
    #[error("No account {0}.")]
    NotFound(AccountId),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

fn invalid(field: &str, message: &str) -> EditError {
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    EditError::Invalid(errors)
}

/// Changes an account's details; returns them as they were and as they
/// are. Its users follow its kind: a wholesale account's are resellers, a
/// retail one's clients. A wholesale account with sub-accounts stays
/// wholesale, a sub-account stays retail, and the calling plan must exist
/// and be in the account's currency.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: AccountId,
    edit: &CheckedEdit,
) -> Result<(CheckedEdit, CheckedEdit), EditError> {
    use crate::schema::{calling_plans, users};
    conn.transaction(async |conn| {
        let account = accounts::table
            .find(id.0)
            .select(Account::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(EditError::NotFound(id))?;
        let before = CheckedEdit::of(&account);
        if edit.kind != account.kind() {
            if edit.kind == AccountKind::Retail {
                let subs: i64 = accounts::table
                    .filter(accounts::parent_id.eq(id.0))
                    .count()
                    .get_result(conn)
                    .await?;
                if subs > 0 {
                    return Err(invalid("kind", "stays wholesale while it has sub-accounts"));
                }
            } else if account.parent_id.is_some() {
                return Err(invalid("kind", "of a sub-account stays retail"));
            }
        }
        if let Some(plan) = edit.calling_plan_id {
            let currency: Option<String> = calling_plans::table
                .find(plan)
                .select(calling_plans::currency)
                .first(conn)
                .await
                .optional()?;
            match currency {
                None => return Err(invalid("calling_plan_id", "is not a calling plan")),
                Some(c) if c != account.currency => {
                    return Err(invalid(
                        "calling_plan_id",
                        "must price calls in the account's currency",
                    ))
                }
                Some(_) => {}
            }
        }
        let updated = diesel::update(accounts::table.find(id.0))
            .set((
                accounts::name.eq(&edit.name),
                accounts::kind.eq(edit.kind.as_str()),
                accounts::contact_name.eq(&edit.contact_name),
                accounts::company.eq(&edit.company),
                accounts::email.eq(&edit.email),
                accounts::phone.eq(&edit.phone),
                accounts::address.eq(&edit.address),
                accounts::credit_limit.eq(edit.credit_limit.micros()),
                accounts::low_balance_threshold.eq(edit.low_balance_threshold.micros()),
                accounts::calling_plan_id.eq(edit.calling_plan_id),
            ))
            .returning(Account::as_returning())
            .get_result(conn)
            .await?;
        if edit.kind != account.kind() {
            let (from, to) = match edit.kind {
                AccountKind::Wholesale => (Role::Client, Role::Reseller),
                AccountKind::Retail => (Role::Reseller, Role::Client),
            };
            diesel::update(
                users::table
                    .filter(users::account_id.eq(id.0))
                    .filter(users::role.eq(from.as_str())),
            )
            .set(users::role.eq(to.as_str()))
            .execute(conn)
            .await?;
        }
        Ok((before, CheckedEdit::of(&updated)))
    })
    .await
}

/// The details a client keeps up themselves, each as typed.
#[derive(Clone, Debug, Default)]
pub struct ProfileEdit {
    pub contact_name: String,
    pub company: String,
    pub phone: String,
    pub address: String,
    /// An IANA time zone: `Europe/Paris`, `America/New_York`, `UTC`.
    pub time_zone: String,
}

/// A profile that passed its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub contact_name: String,
    pub company: String,
    pub phone: String,
    pub address: String,
    pub time_zone: String,
}

impl ProfileEdit {
    /// Checks every field at once: a clear message for each that is wrong.
    pub fn check(&self) -> Result<Profile, FieldErrors> {
        let mut errors = FieldErrors::default();
        let contact_name = self.contact_name.trim();
        if contact_name.is_empty() {
            errors.add("contact_name", "must not be empty");
        }
        for (field, value, max) in [
            ("contact_name", contact_name, 120),
            ("company", self.company.trim(), 120),
            ("phone", self.phone.trim(), 40),
            ("address", self.address.trim(), 300),
        ] {
            if value.chars().count() > max {
                errors.add(field, &format!("must be at most {max} characters"));
            }
        }
        let phone = self.phone.trim();
        if !phone
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
            || (!phone.is_empty() && !phone.chars().any(|c| c.is_ascii_digit()))
        {
            errors.add(
                "phone",
                "may hold only digits, spaces, +, -, dots and brackets",
            );
        }
        let time_zone = match self.time_zone.trim().parse::<chrono_tz::Tz>() {
            Ok(zone) => zone.name().to_owned(),
            Err(_) => {
                errors.add(
                    "time_zone",
                    "is not a time zone we know: choose one such as Europe/London",
                );
                String::new()
            }
        };
        errors.into_result(Profile {
            contact_name: contact_name.to_owned(),
            company: self.company.trim().to_owned(),
            phone: phone.to_owned(),
            address: self.address.trim().to_owned(),
            time_zone,
        })
    }
}

impl Profile {
    /// The profile as the audit log keeps it.
    pub fn for_audit(&self) -> serde_json::Value {
        serde_json::json!({
            "contact_name": self.contact_name,
            "company": self.company,
            "phone": self.phone,
            "address": self.address,
            "time_zone": self.time_zone,
        })
    }

    /// An account's profile as it is.
    pub fn of(account: &Account) -> Profile {
        Profile {
            contact_name: account.contact_name.clone(),
            company: account.company.clone(),
            phone: account.phone.clone(),
            address: account.address.clone(),
            time_zone: account.time_zone.clone(),
        }
    }
}

/// Sets an account's profile; returns it as it was and as it is, or `None`
/// when there is no such account.
pub async fn update_profile(
    conn: &mut AsyncPgConnection,
    id: AccountId,
    profile: &Profile,
) -> QueryResult<Option<(Profile, Profile)>> {
    conn.transaction(async |conn| {
        let Some(before) = accounts::table
            .find(id.0)
            .select(Account::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
        else {
            return Ok(None);
        };
        let after = diesel::update(accounts::table.find(id.0))
            .set((
                accounts::contact_name.eq(&profile.contact_name),
                accounts::company.eq(&profile.company),
                accounts::phone.eq(&profile.phone),
                accounts::address.eq(&profile.address),
                accounts::time_zone.eq(&profile.time_zone),
            ))
            .returning(Account::as_returning())
            .get_result(conn)
            .await?;
        Ok(Some((Profile::of(&before), Profile::of(&after))))
    })
    .await
}

/// Escapes `%`, `_` and `\` so a search for them finds them literally.
pub(crate) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ProfileEdit;

    fn edit(phone: &str, time_zone: &str) -> ProfileEdit {
        ProfileEdit {
            contact_name: " Ada Lovelace ".into(),
            phone: phone.into(),
            time_zone: time_zone.into(),
            ..ProfileEdit::default()
        }
    }

    #[test]
    fn a_profile_takes_a_known_time_zone_and_a_dialable_phone() {
        let profile = edit("+44 (20) 7946-0958", "Europe/London")
            .check()
            .expect("valid");
        assert_eq!(profile.contact_name, "Ada Lovelace");
        assert_eq!(profile.time_zone, "Europe/London");
        assert!(edit("", "UTC").check().is_ok(), "no phone is fine");
    }

    #[test]
    fn a_profile_names_every_wrong_field() {
        let errors = ProfileEdit {
            contact_name: "  ".into(),
            phone: "call me".into(),
            time_zone: "Mars/Olympus".into(),
            address: "x".repeat(301),
            ..ProfileEdit::default()
        }
        .check()
        .expect_err("invalid");
        let fields: Vec<&str> = errors.fields().collect();
        assert_eq!(fields, ["contact_name", "address", "phone", "time_zone"]);
    }

    #[test]
    fn like_wildcards_are_searched_literally() {
        assert_eq!(super::escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
