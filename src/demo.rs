//! `serve --demo`: a demo admin, a demo client with some balance, and a few
//! other accounts, so a first look at Switchboard has something to show.

use anyhow::Context;
use chrono::Utc;
use switchboard_controller::{traffic, Controller, CreatePbx};
use switchboard_core::calls::calling_plans::RateTables;
use switchboard_core::domain::Email;
use switchboard_core::keys::SecretKey;
use switchboard_core::money::ledger::{self, Book, NewTransaction};
use switchboard_core::money::PerMinute;
use switchboard_core::people::accounts::{self, NewAccount};
use switchboard_core::people::users::{self, NewUser};
use switchboard_core::{
    audit, calls, calls::calling_plans, calls::rate_csv, commerce::pbxes, commerce::plans, db,
    people::passwords, AccountKind, Money, Role, Username,
};

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
        payment: 100_000_000,
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

/// The demo's price list: North America, the UK (mobiles dearer), France,
/// Germany, Australia.
const RATES: &str =
    "prefix,description,per_minute,connection_fee,initial_increment,subsequent_increment\n\
    1,USA and Canada,0.012,0,6,6\n\
    1416,Toronto,0.015,0,6,6\n\
    44,United Kingdom,0.021,0,30,6\n\
    447,United Kingdom mobile,0.12,0.01,30,6\n\
    33,France,0.028,0,30,6\n\
    49,Germany,0.025,0,30,6\n\
    61,Australia,0.045,0,60,60\n";

/// A calling plan with a price list in force since 2020, billing every plan.
async fn seed_calling_plan(conn: &mut diesel_async::AsyncPgConnection) -> anyhow::Result<i64> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::plans as plans_table;
    let existing = calling_plans::list(conn)
        .await?
        .into_iter()
        .find(|p| p.name == "Standard");
    let id = match existing {
        Some(plan) => plan.id,
        None => {
            let id = calling_plans::create(conn, "Standard", "USD", Some(PerMinute(4_000_000)))
                .await
                .map_err(|e| anyhow::anyhow!("seeding the calling plan: {e}"))?;
            let rows = rate_csv::parse(RATES)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .rows;
            let since = "2020-01-01T00:00:00Z".parse().context("a date")?;
            calling_plans::import_history(conn, id, &rows, since, &audit::Actor::system("demo"))
                .await
                .map_err(|e| anyhow::anyhow!("seeding rates: {e}"))?;
            id
        }
    };
    diesel::update(plans_table::table.filter(plans_table::calling_plan_id.is_null()))
        .set(plans_table::calling_plan_id.eq(id))
        .execute(conn)
        .await?;
    Ok(id)
}

/// The demo client's PBX, made at the controller (the simulator), with a
/// month of its calls ingested, rated and billed.
async fn seed_pbx(
    conn: &mut diesel_async::AsyncPgConnection,
    key: &SecretKey,
    controller: &Controller,
    account: switchboard_core::AccountId,
) -> anyhow::Result<()> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::pbxes as pbxes_table;
    let plan = plans::by_slug(conn, "office")
        .await?
        .context("the office plan")?;
    let request = "pbx-demo-dental";
    let existing: Option<(i64, String)> = pbxes_table::table
        .filter(pbxes_table::request_id.eq(request))
        .select((pbxes_table::id, pbxes_table::gui_password_sealed))
        .first(conn)
        .await
        .optional()?;
    let (pbx, sealed) = match existing {
        Some(found) => found,
        None => {
            let sealed = key.encrypt(pbxes::GUI_PASSWORD, &passwords::generate());
            let id = diesel::insert_into(pbxes_table::table)
                .values((
                    pbxes_table::account_id.eq(account.0),
                    pbxes_table::plan_id.eq(plan.id),
                    pbxes_table::request_id.eq(request),
                    pbxes_table::gui_password_sealed.eq(&sealed),
                ))
                .returning(pbxes_table::id)
                .get_result(conn)
                .await?;
            (id, sealed)
        }
    };
    // The simulator forgets its PBXs when it stops: ask it again each start
    // (the same request id is the same PBX at a real controller).
    let created = controller
        .create(&CreatePbx {
            request_id: request.into(),
            plan: plan.slug.clone(),
            extensions: plan.included_extensions,
            gui_password: key.decrypt(pbxes::GUI_PASSWORD, &sealed)?,
            account: account.0.to_string(),
        })
        .await?;
    pbxes::mark_active(conn, pbx, &created.id, &created.hostname).await?;
    let calls = traffic::generate(
        42,
        Utc::now(),
        35,
        plan.included_extensions as u32,
        "15550100199",
    );
    calls::ingest(conn, &RateTables::default(), pbx, "push", &calls, &[])
        .await
        .map_err(|e| anyhow::anyhow!("ingesting the demo's calls: {e}"))?;
    Ok(())
}

/// The add-ons clients can order: (name, description, one-time fee, monthly
/// fee, attaches to, staff set it up).
const SERVICES: &[(&str, &str, &str, &str, &str, bool)] = &[
    (
        "Five more extensions",
        "Five extensions over what the plan includes, for new desks or a softphone each.",
        "0",
        "7.50",
        "pbx",
        false,
    ),
    (
        "Call recording storage",
        "Keeps every recorded call for a year (up to 50 GB), searchable from the PBX.",
        "0",
        "9.99",
        "pbx",
        true,
    ),
    (
        "Fax to email",
        "A fax number whose faxes arrive as PDF attachments in a mailbox you choose.",
        "10.00",
        "4.99",
        "pbx",
        true,
    ),
    (
        "Toll-free number",
        "A toll-free number routed to your PBX; calls to it are billed at inbound rates.",
        "15.00",
        "6.00",
        "account",
        true,
    ),
    (
        "Priority support",
        "Answers within an hour on working days, and a named engineer for your account.",
        "0",
        "25.00",
        "account",
        false,
    ),
];

/// Adds the demo's services the catalogue lacks.
async fn seed_services(conn: &mut diesel_async::AsyncPgConnection) -> anyhow::Result<()> {
    use switchboard_core::commerce::services::{self, ServiceInput};
    let existing: Vec<String> = services::catalogue(conn, false)
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    for (name, description, one_time, monthly, attaches_to, needs_staff) in SERVICES {
        if existing.iter().any(|e| e == name) {
            continue;
        }
        services::create(
            conn,
            &ServiceInput {
                name: (*name).into(),
                description: (*description).into(),
                currency: "USD".into(),
                one_time_fee: (*one_time).into(),
                monthly_fee: (*monthly).into(),
                attaches_to: (*attaches_to).into(),
                needs_staff: *needs_staff,
                offered: true,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding the service {name}: {e}"))?;
    }
    Ok(())
}

/// Creates what is missing and sets fresh passwords for the two demo users.
pub async fn seed(
    pool: &db::Pool,
    key: &SecretKey,
    controller: &Controller,
) -> anyhow::Result<DemoCredentials> {
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
                    calling_plan_id: None,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("seeding the plan {slug}: {e}"))?;
        }
    }
    seed_services(&mut conn).await?;
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
    seed_calling_plan(&mut conn).await?;
    seed_pbx(&mut conn, key, controller, client_account).await?;
    seed_numbers(&mut conn).await?;
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

/// Rate centers the demo sells numbers in: (state, rate center, city,
/// LATA, area code, setup, monthly). The numbers are in the 555-01xx
/// range, which North America keeps for fiction.
const DEMO_RATE_CENTERS: [(&str, &str, &str, &str, &str, &str, &str); 6] = [
    ("IL", "CHICAGO", "Chicago", "358", "312", "1.00", "0.85"),
    ("IL", "EVANSTON", "Evanston", "358", "847", "1.00", "0.85"),
    ("NY", "NWYRCYZN01", "New York", "132", "212", "2.00", "1.50"),
    (
        "CA",
        "LSAN DA 01",
        "Los Angeles",
        "730",
        "213",
        "1.00",
        "1.00",
    ),
    ("TX", "AUSTIN", "Austin", "558", "512", "1.00", "0.85"),
    ("TX", "DALLAS", "Dallas", "552", "214", "1.00", "0.85"),
];

/// A small inventory, as a carrier's file would list it; loading it again
/// changes nothing sold.
async fn seed_numbers(conn: &mut diesel_async::AsyncPgConnection) -> anyhow::Result<()> {
    let mut csv = String::from("number;rate center;state;city;lata;setup fee;monthly fee\n");
    for (state, rate_center, city, lata, npa, setup, monthly) in DEMO_RATE_CENTERS {
        for line in 100..104 {
            csv.push_str(&format!(
                "({npa}) 555-0{line};{rate_center};{state};{city};{lata};{setup};{monthly}\n"
            ));
        }
    }
    switchboard_core::numbers::inventory::import(conn, &csv, "USD", "demo", chrono::Utc::now())
        .await
        .context("seeding the demo's phone numbers")?;
    Ok(())
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
