//! Sending a PBX's new GUI password to the controller: with no transaction
//! open during the call, and the password made the PBX's own in one short
//! transaction only once the controller confirmed it.

use anyhow::Context;
use diesel_async::AsyncPgConnection;
use switchboard_core::commerce::gui_passwords::{self, ChangeState};
use switchboard_core::commerce::pbxes;
use switchboard_core::outbox;

use crate::JobContext;

fn change_id(data: &str) -> anyhow::Result<i64> {
    data.trim()
        .parse()
        .with_context(|| format!("{data:?} is not a password change id"))
}

/// Sends the change's password; a change no longer pending (superseded by
/// a later one, or settled by an earlier run) is left as it is.
pub async fn send(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
) -> anyhow::Result<()> {
    let id = change_id(data)?;
    let Some(change) = gui_passwords::get(conn, id).await? else {
        return Ok(());
    };
    if change.state() != ChangeState::Pending {
        return Ok(());
    }
    let pbx = pbxes::get(conn, change.pbx_id)
        .await?
        .context("the PBX no longer exists")?;
    let controller_id = pbx
        .controller_id
        .context("the PBX has no id at the controller")?;
    let password = ctx
        .key
        .decrypt(pbxes::GUI_PASSWORD, &change.password_sealed)
        .context("opening the new GUI password")?;
    ctx.controller
        .set_gui_password(&controller_id, &password)
        .await?;
    gui_passwords::confirm(conn, id, ctx.clock.now()).await?;
    tracing::info!(pbx = pbx.id, change = id, "PBX GUI password changed");
    Ok(())
}

/// Keeps the controller's complaint on the change, for the page that waits on it.
pub async fn note_failure(
    conn: &mut AsyncPgConnection,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    gui_passwords::note_error(conn, change_id(data)?, error).await?;
    Ok(())
}

/// The controller never took the password: the change failed and the old
/// password stays in force. Staff hear of it, as the controller may have
/// set it without its answer arriving.
pub async fn give_up(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    let id = change_id(data)?;
    if !gui_passwords::give_up(conn, id, error, ctx.clock.now()).await? {
        return Ok(());
    }
    let Some(change) = gui_passwords::get(conn, id).await? else {
        return Ok(());
    };
    let pbx = change.pbx_id.to_string();
    let notice = outbox::staff_notice(
        &ctx.settings.email.staff_address,
        &format!("The controller did not take a new GUI password for PBX #{pbx}"),
        "Switchboard gave up sending it; the PBX's old password is still the one Switchboard keeps and shows. If the controller did set the new one without answering, set a new password again once the controller works.",
        &[("PBX", &pbx), ("Last error", error)],
    );
    outbox::queue(conn, &notice, None).await?;
    Ok(())
}
