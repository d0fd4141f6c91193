//! `serve --demo`: a demo admin, a demo client with some balance, and a few
//! other accounts, so a first look at Switchboard has something to show.

use anyhow::Context;
use switchboard_core::accounts::{self, NewAccount};
use switchboard_core::domain::Email;
use switchboard_core::ledger::{self, Book, NewTransaction};
use switchboard_core::users::{self, NewUser};
use switchboard_core::{db, passwords, plans, AccountKind, Money, Role, Username};

/// Who can sign in to the demo, with the passwords set just now.
pub struct DemoCredentials {
    pub admin: (String, String),
    pub client: (String, String),
}

struct DemoAccount {
    name: &'static str,
    kind: AccountKind,
    contact: &'static str,
    email: &'static str,
    payment: i64,
    spent: i64,
}

const ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        name: "Demo Dental Clinic",
        kind: AccountKind::Retail,
        contact: "Dana Demo",
        email: "office@demo-dental.example",
        payment: 40_000_000,
        spent: 14_500_000,
    },
    DemoAccount {
        name: "Harbor Logistics",
        kind: AccountKind::Wholesale,
        contact: "Sam Harbor",
        email: "it@harbor-logistics.example",
        payment: 250_000_000,
        spent: 61_250_000,
    },
    DemoAccount {
        name: "Corner Bakery",
        kind: AccountKind::Retail,
        contact: "Lee Baker",
        email: "hello@corner-bakery.example",
        payment: 10_000_000,
        spent: 12_400_000,
    },
];

const PLANS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "starter",
        "Starter",
        "A PBX for a small office: voicemail to email, a ring group and an auto attendant.",
        "49",
        "29",
        "5",
    ),
    (
        "office",
        "Office",
        "For a growing team: queues, call recording on request and room for fifteen desks.",
        "99",
        "79",
        "15",
    ),
    (
        "call-centre",
        "Call Centre",
        "Forty agents, queues with wallboards and reports per extension.",
        "249",
        "199",
        "40",
    ),
];

/// Creates what is missing and sets fresh passwords for the two demo users.
pub async fn seed(pool: &db::Pool) -> anyhow::Result<DemoCredentials> {
    let mut conn = db::conn(pool).await?;
    for (position, (slug, name, description, setup, monthly, extensions)) in
        PLANS.iter().enumerate()
    {
        if plans::by_slug(&mut conn, slug).await?.is_none() {
            plans::create(
                &mut conn,
                &plans::PlanInput {
                    slug: (*slug).into(),
                    name: (*name).into(),
                    description: (*description).into(),
                    currency: "USD".into(),
                    setup_fee: (*setup).into(),
                    monthly_fee: (*monthly).into(),
                    included_extensions: (*extensions).into(),
                    active: true,
                    position: position as i32,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("seeding the plan {slug}: {e}"))?;
        }
    }
    let mut client_account = None;
    for (index, demo) in ACCOUNTS.iter().enumerate() {
        let existing = accounts::list(
            &mut conn,
            &accounts::Filter {
                search: Some(demo.email.to_owned()),
                standing: None,
            },
            None,
            1,
        )
        .await?;
        let id = match existing.first() {
            Some((account, _)) => account.id(),
            None => {
                accounts::create(
                    &mut conn,
                    &NewAccount {
                        name: demo.name.into(),
                        kind: demo.kind,
                        parent: None,
                        currency: "USD".into(),
                        contact_name: demo.contact.into(),
                        company: demo.name.into(),
                        email: demo.email.into(),
                        phone: "+1 555 0100".into(),
                        address: "1 Demo Street, Springfield".into(),
                    },
                )
                .await?
            }
        };
        let customer = ledger::customer_account(&mut conn, id).await?;
        let payments = ledger::book(&mut conn, Book::Payments, "USD").await?;
        let revenue = ledger::book(&mut conn, Book::Revenue, "USD").await?;
        for (key, kind, memo, amount, other) in [
            (
                "payment",
                "payment",
                "Card payment (demo)",
                demo.payment,
                payments,
            ),
            (
                "usage",
                "charge",
                "Calls and monthly fees (demo)",
                -demo.spent,
                revenue,
            ),
        ] {
            ledger::post(
                &mut conn,
                &NewTransaction {
                    idempotency_key: format!("demo:{}:{key}", demo.email),
                    kind: kind.into(),
                    memo: memo.into(),
                    currency: "USD".into(),
                    posted_by: None,
                    entries: vec![(customer, Money(amount)), (other, Money(-amount))],
                },
            )
            .await
            .context("posting demo money")?;
        }
        if index == 0 {
            client_account = Some(id);
        }
    }
    let client_account = client_account.context("the demo has a client account")?;
    let admin = ensure_user(
        &mut conn,
        "admin",
        "admin@switchboard.example",
        Role::Admin,
        None,
    )
    .await?;
    let client = ensure_user(
        &mut conn,
        "demo",
        "dana@demo-dental.example",
        Role::Client,
        Some(client_account),
    )
    .await?;
    Ok(DemoCredentials {
        admin: ("admin".into(), admin),
        client: ("demo".into(), client),
    })
}

async fn ensure_user(
    conn: &mut diesel_async::AsyncPgConnection,
    username: &str,
    email: &str,
    role: Role,
    account: Option<switchboard_core::AccountId>,
) -> anyhow::Result<String> {
    let password = passwords::generate();
    match users::find_by_username(conn, username).await? {
        Some(user) => users::set_password(conn, user.id(), &password, false).await?,
        None => {
            users::create(
                conn,
                &NewUser {
                    username: Username::parse(username).map_err(anyhow::Error::msg)?,
                    email: Email::parse(email).map_err(anyhow::Error::msg)?,
                    password: password.clone(),
                    role,
                    account,
                    must_change_password: false,
                },
            )
            .await?;
        }
    }
    Ok(password)
}
