//! The jobs that let the balance run the account: recurring charges, the
//! standing review, automatic top-ups, the controller's commands that
//! standing calls for, and monthly statements. Every rule that depends on
//! time reads the context's clock.

use anyhow::Context;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use switchboard_core::billing::replenish::{self, Notify};
use switchboard_core::billing::{recurring, statements};
use switchboard_core::commerce::pbx_commands::{Command, CommandJob};
use switchboard_core::commerce::pbxes;
use switchboard_core::schema::accounts;
use switchboard_core::{outbox, standing, AccountId};
use switchboard_payments::off_session::OffSessionCharge;

use crate::JobContext;

/// Periods billed in one run before the job gives its lane a turn; the
/// schedule and the next run go on where it stopped.
const PERIODS_PER_RUN: usize = 5_000;

/// Charges every recurring period that is due.
pub async fn bill_recurring(conn: &mut AsyncPgConnection, ctx: &JobContext) -> anyhow::Result<()> {
    let run = recurring::bill_due(conn, ctx.clock.now(), PERIODS_PER_RUN).await?;
    if run.charged + run.replayed > 0 {
        tracing::info!(
            charged = run.charged,
            replayed = run.replayed,
            "recurring charges billed"
        );
    }
    Ok(())
}

fn policy(ctx: &JobContext) -> standing::Policy<'_> {
    standing::Policy {
        periods: ctx.settings.billing.periods(),
        staff_address: &ctx.settings.email.staff_address,
        base_url: ctx.settings.base_url(),
    }
}

/// Reviews one account's standing (data: its id) or every account that may
/// need it (data empty), each in its own transaction.
pub async fn review_standing(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
) -> anyhow::Result<()> {
    let accounts = match data.trim() {
        "" | "{}" => standing::accounts_to_review(conn).await?,
        id => vec![id
            .parse()
            .with_context(|| format!("{data:?} is not an account id"))?],
    };
    let policy = policy(ctx);
    for account in accounts {
        let changes = standing::review(conn, AccountId(account), &policy, ctx.clock.now()).await?;
        for change in changes {
            tracing::info!(
                account,
                from = %change.from_standing,
                to = %change.to_standing,
                cause = %change.cause,
                "standing changed"
            );
        }
    }
    Ok(())
}

/// Charges an account's saved card for the top-up the rule calls for: the
/// attempt is written first, the gateway called with none open and the
/// attempt's key, and the answer recorded in a short transaction after.
pub async fn replenish(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
) -> anyhow::Result<()> {
    let account: i64 = data
        .trim()
        .parse()
        .with_context(|| format!("{data:?} is not an account id"))?;
    let now = ctx.clock.now();
    let Some(attempt) = replenish::begin(conn, AccountId(account), ctx.gateway.name(), now).await?
    else {
        return Ok(());
    };
    let (customer, method) = replenish::saved_card(conn, AccountId(account)).await?;
    let notify = Notify {
        staff_address: &ctx.settings.email.staff_address,
        base_url: ctx.settings.base_url(),
    };
    let Some(method) = method else {
        let outcome = replenish::Outcome::Failed {
            detail: "the saved card was removed".into(),
        };
        replenish::settle(conn, attempt.id, &outcome, &notify, now).await?;
        return Ok(());
    };
    let key = attempt.charge_key();
    let charge = OffSessionCharge {
        idempotency_key: &key,
        cents: switchboard_core::Money(attempt.amount).to_cents(),
        currency: &attempt.currency,
        customer: customer.as_deref(),
        payment_method: &method,
        replenishment: attempt.id,
        account,
    };
    // An error (no answer) leaves the attempt pending: the retry sends the
    // same key and gets the same charge's answer.
    match ctx.gateway.charge_saved_card(&charge).await? {
        Some(outcome) => {
            let settled = replenish::settle(conn, attempt.id, &outcome, &notify, now).await?;
            tracing::info!(account, attempt = attempt.id, ?settled, "automatic top-up");
        }
        None => tracing::info!(
            account,
            attempt = attempt.id,
            "automatic top-up processing; its webhook will tell"
        ),
    }
    Ok(())
}

/// Sends one PBX's commands to the controller, in order, unless a later
/// decision has moved the PBX on since they were queued.
pub async fn pbx_command(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
) -> anyhow::Result<()> {
    let job: CommandJob =
        serde_json::from_str(data).with_context(|| format!("{data:?} is not a PBX command"))?;
    let Some(pbx) = pbxes::get(conn, job.pbx).await? else {
        return Ok(());
    };
    if !job.still_wanted(&pbx.state) {
        tracing::info!(pbx = pbx.id, state = %pbx.state, "PBX commands superseded; left undone");
        return Ok(());
    }
    let controller_id = pbx
        .controller_id
        .context("the PBX has no id at the controller yet")?;
    for command in &job.commands {
        match command {
            Command::SuspendCalling => ctx.controller.suspend_calling(&controller_id).await?,
            Command::ResumeCalling => ctx.controller.resume_calling(&controller_id).await?,
            Command::PowerOff => ctx.controller.power_off(&controller_id).await?,
            Command::PowerOn => ctx.controller.power_on(&controller_id).await?,
        }
    }
    tracing::info!(pbx = pbx.id, commands = ?job.commands, "PBX commands sent");
    Ok(())
}

/// A PBX command job was given up: staff must see to the PBX by hand.
pub async fn pbx_command_given_up(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    let job: CommandJob = serde_json::from_str(data)?;
    let commands = format!("{:?}", job.commands);
    let pbx = job.pbx.to_string();
    let notice = outbox::staff_notice(
        &ctx.settings.email.staff_address,
        &format!("The controller did not take commands for PBX #{pbx}"),
        "Switchboard retried for about a day and gave up. The PBX's state in Switchboard already says what it should be: make the controller match it by hand.",
        &[("PBX", &pbx), ("Commands", &commands), ("Last error", error)],
    );
    outbox::queue(conn, &notice, None).await?;
    Ok(())
}

/// Emails every account its statement of the month named in `data`
/// (`YYYY-MM`, the month before the one the job was queued in), once per
/// account and month.
pub async fn send_statements(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
) -> anyhow::Result<()> {
    let month = data.trim().to_owned();
    let ids: Vec<(i64, String, String)> = accounts::table
        .filter(accounts::email.ne(""))
        .order(accounts::id)
        .select((accounts::id, accounts::name, accounts::email))
        .load(conn)
        .await?;
    for (id, name, email) in ids {
        let Some(statement) =
            statements::statement(conn, AccountId(id), ctx.clock.now(), 1).await?
        else {
            continue;
        };
        if statement.from.format("%Y-%m").to_string() != month && !month.is_empty() {
            continue;
        }
        let message = statements::email(&email, &name, &statement, ctx.settings.base_url());
        let key = format!("statement:{id}:{}", statement.from.format("%Y-%m"));
        conn.transaction(async |conn| outbox::queue(conn, &message, Some(&key)).await)
            .await?;
    }
    Ok(())
}

/// An automatic top-up whose gateway never answered is marked failed, so
/// the next day's attempt can be made; a late webhook of a success still
/// credits it.
pub async fn replenish_given_up(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    use switchboard_core::schema::replenishments;
    let account: i64 = data.trim().parse()?;
    let pending: Option<i64> = replenishments::table
        .filter(replenishments::account_id.eq(account))
        .filter(replenishments::state.eq("pending"))
        .select(replenishments::id)
        .first(conn)
        .await
        .optional()?;
    if let Some(id) = pending {
        let notify = Notify {
            staff_address: &ctx.settings.email.staff_address,
            base_url: ctx.settings.base_url(),
        };
        let outcome = replenish::Outcome::Failed {
            detail: format!("the payment service did not answer: {error}"),
        };
        replenish::settle(conn, id, &outcome, &notify, ctx.clock.now()).await?;
    }
    Ok(())
}
