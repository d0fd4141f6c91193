//! Phone numbers at the controller: routing an ordered number to its PBX
//! and taking a released one off, with no transaction open during the
//! call and the result written in one short transaction after it.

use anyhow::Context;
use diesel_async::AsyncPgConnection;
use switchboard_core::commerce::pbxes;
use switchboard_core::numbers::ordering::{self, Notices};
use switchboard_core::numbers::{inventory, E164};

use crate::JobContext;

fn number_id(data: &str) -> anyhow::Result<i64> {
    data.trim()
        .parse()
        .with_context(|| format!("{data:?} is not a number id"))
}

fn notices(ctx: &JobContext) -> Notices<'_> {
    Notices {
        staff_address: &ctx.settings.email.staff_address,
        base_url: ctx.settings.base_url(),
        controller_assigns: ctx.controller.assigns_numbers(),
        controller_unassigns: ctx.controller.unassigns_numbers(),
    }
}

/// Routes an ordered number to its PBX; a number no longer ordered (made
/// active by staff, or released) is left as it is.
pub async fn assign(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
) -> anyhow::Result<()> {
    let id = number_id(data)?;
    let Some((number, pbx, controller_id)) = ordering::to_assign(conn, id).await? else {
        return Ok(());
    };
    let controller_id =
        controller_id.context("the PBX has no id at the controller yet (still provisioning?)")?;
    ctx.controller
        .assign_number(&controller_id, number.as_str())
        .await?;
    ordering::assigned(conn, id, pbx, ctx.clock.now()).await?;
    tracing::info!(number = id, pbx, "number assigned by the controller");
    Ok(())
}

/// Keeps the controller's complaint on the number; staff hear of the first.
pub async fn assign_failed(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    ordering::assign_failed(conn, number_id(data)?, error, false, notices(ctx)).await?;
    Ok(())
}

/// The controller never assigned it: staff are told to do it by hand.
pub async fn assign_given_up(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    ordering::assign_failed(conn, number_id(data)?, error, true, notices(ctx)).await?;
    Ok(())
}

/// Takes a released number off the PBX it was on. Data: `number:pbx`.
pub async fn unassign(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
) -> anyhow::Result<()> {
    let (number, pbx) = data
        .split_once(':')
        .context("unassign data is number:pbx")?;
    let (number, pbx): (i64, i64) = (number.parse()?, pbx.parse()?);
    let stored = inventory::get(conn, number)
        .await?
        .context("the number is gone")?;
    // Ordered again by the same PBX since: it stays where it is.
    if stored.pbx_id == Some(pbx) {
        return Ok(());
    }
    let e164 = E164::parse(&stored.e164).map_err(anyhow::Error::msg)?;
    let Some(controller_id) = pbxes::get(conn, pbx).await?.and_then(|p| p.controller_id) else {
        return Ok(());
    };
    ctx.controller
        .unassign_number(&controller_id, e164.as_str())
        .await?;
    inventory::record(
        conn,
        number,
        "unassigned",
        None,
        Some(pbx),
        "controller",
        "taken off the PBX by the controller",
    )
    .await?;
    Ok(())
}

/// The controller never took the number off: staff are told to.
pub async fn unassign_given_up(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    let email = switchboard_core::outbox::staff_notice(
        &ctx.settings.email.staff_address,
        "The controller did not take a released number off its PBX",
        "Remove the number's inbound route from the PBX by hand.",
        &[("Number and PBX", data), ("Last error", error)],
    );
    switchboard_core::outbox::queue(conn, &email, None).await?;
    Ok(())
}
