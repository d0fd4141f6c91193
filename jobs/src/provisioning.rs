//! Provisioning a paid PBX at the hosting controller.

use anyhow::Context;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use switchboard_controller::CreatePbx;
use switchboard_core::billing::recurring;
use switchboard_core::outbox::{self, WelcomeDetails};
use switchboard_core::schema::{accounts, pbxes as pbxes_table, users};
use switchboard_core::{commerce::orders, commerce::pbxes, commerce::plans};

use crate::JobContext;

fn pbx_id(data: &str) -> anyhow::Result<i64> {
    data.trim()
        .parse()
        .with_context(|| format!("{data:?} is not a PBX id"))
}

/// Creates the PBX (the request id makes a retry after a lost answer find
/// the same one), marks it active, completes the order and queues the welcome
/// email. A PBX no longer provisioning is left alone. `conn` is in no
/// transaction: the controller is called with none open, and what its answer
/// changes is written in one short transaction after it.
pub async fn provision(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
) -> anyhow::Result<()> {
    let id = pbx_id(data)?;
    let pbx = pbxes::get(conn, id)
        .await?
        .context("the PBX no longer exists")?;
    if pbx.state != "provisioning" {
        return Ok(());
    }
    let plan = plans::get(conn, pbx.plan_id)
        .await?
        .context("the PBX's plan no longer exists")?;
    let password = ctx
        .key
        .decrypt(pbxes::GUI_PASSWORD, &pbx.gui_password_sealed)
        .context("opening the PBX's GUI password")?;
    let created = ctx
        .controller
        .create(&CreatePbx {
            request_id: pbx.request_id.clone(),
            plan: plan.slug.clone(),
            extensions: plan.included_extensions,
            gui_password: password.clone(),
            account: pbx.account_id.to_string(),
        })
        .await?;
    conn.transaction(async |conn| {
        // Looked at again under a lock: a run whose lease ran out, or staff,
        // may have settled the PBX while the controller worked.
        let state: String = pbxes_table::table
            .find(id)
            .select(pbxes_table::state)
            .for_update()
            .first(conn)
            .await?;
        if state != "provisioning" {
            return Ok(());
        }
        pbxes::mark_active(conn, id, &created.id, &created.hostname).await?;
        switchboard_core::commerce::pbx_commands::hold_if_turned_off(conn, id).await?;
        // The signup paid the first month; the plan is billed from the next.
        recurring::start_pbx_plan(
            conn,
            switchboard_core::AccountId(pbx.account_id),
            id,
            pbx.plan_id,
            ctx.clock.now(),
        )
        .await?;
        pbxes::learn_trunks(conn, id, &created.trunks).await?;
        if let Some(order) = pbx.order_id {
            orders::set_state(conn, order, "fulfilled").await?;
        }
        let (username, email): (String, String) = users::table
            .filter(users::account_id.eq(pbx.account_id))
            .order(users::id)
            .select((users::username, users::email))
            .first(conn)
            .await?;
        let name: String = accounts::table
            .find(pbx.account_id)
            .select(accounts::contact_name)
            .first(conn)
            .await?;
        let portal_url = format!("{}/sign-in", ctx.settings.base_url());
        let welcome = outbox::welcome(&WelcomeDetails {
            to: &email,
            name: &name,
            username: &username,
            plan: &plan.name,
            hostname: &created.hostname,
            gui_password: &password,
            portal_url: &portal_url,
        });
        outbox::queue_sealed(conn, &ctx.key, &welcome, Some(&format!("welcome:{id}"))).await?;
        tracing::info!(pbx = id, controller_id = %created.id, "PBX provisioned");
        anyhow::Ok(())
    })
    .await
}

/// Shows the latest failure on the PBX and the order as being worked on.
pub async fn note_failure(
    conn: &mut AsyncPgConnection,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    let id = pbx_id(data)?;
    pbxes::note_error(conn, id, error).await?;
    if let Some(order) = pbxes::get(conn, id).await?.and_then(|p| p.order_id) {
        orders::set_state(conn, order, "fulfilling").await?;
    }
    Ok(())
}

/// Marks the PBX and its order failed and tells staff.
pub async fn give_up(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    let id = pbx_id(data)?;
    let Some(pbx) = pbxes::get(conn, id).await? else {
        return Ok(());
    };
    pbxes::mark_failed(conn, id, error).await?;
    if let Some(order) = pbx.order_id {
        orders::set_state(conn, order, "failed").await?;
    }
    let account: String = accounts::table
        .find(pbx.account_id)
        .select(accounts::name)
        .first(conn)
        .await?;
    let notice =
        outbox::provisioning_failed(&ctx.settings.email.staff_address, &account, id, error);
    outbox::queue(conn, &notice, None).await?;
    Ok(())
}
