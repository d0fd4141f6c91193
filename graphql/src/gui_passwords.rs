//! A PBX's GUI administrator password, changed through the controller by
//! the client who owns the PBX or by an admin.

use async_graphql::{Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use switchboard_core::audit::{self, Change};
use switchboard_core::commerce::gui_passwords::{self, ChangeState, RequestError};
use switchboard_core::commerce::pbxes;
use switchboard_core::{db, AccountId, Role};

use crate::commerce::commerce;
use crate::guards::{self, Allow, CUSTOMERS_AND_ADMIN};
use crate::mutation::actor;
use crate::types::parse_id;
use crate::{internal, pool};

/// Where a new GUI password is.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordChangeState {
    /// On its way to the controller: the old password is still in force.
    Pending,
    /// The controller confirmed it: it is the PBX's password.
    Done,
    /// The controller never took it: the old password is still in force.
    Failed,
    /// A later change replaced it before the controller took it.
    Superseded,
}

/// A new GUI password asked for; never the password itself.
#[derive(SimpleObject, Clone, Debug)]
pub struct PbxPasswordChange {
    pub id: ID,
    pub state: PasswordChangeState,
    pub requested_at: DateTime<Utc>,
    /// When the controller confirmed it and it took effect.
    pub took_effect_at: Option<DateTime<Utc>>,
    /// When it was given up or replaced.
    pub given_up_at: Option<DateTime<Utc>>,
    /// The controller's latest complaint about it, if any.
    pub error: Option<String>,
}

impl From<gui_passwords::Change> for PbxPasswordChange {
    fn from(change: gui_passwords::Change) -> PbxPasswordChange {
        let state = match change.state() {
            ChangeState::Pending => PasswordChangeState::Pending,
            ChangeState::Done => PasswordChangeState::Done,
            ChangeState::Failed => PasswordChangeState::Failed,
            ChangeState::Superseded => PasswordChangeState::Superseded,
        };
        let done = state == PasswordChangeState::Done;
        PbxPasswordChange {
            id: ID(change.id.to_string()),
            state,
            requested_at: change.requested_at,
            took_effect_at: change.settled_at.filter(|_| done),
            given_up_at: change.settled_at.filter(|_| !done),
            error: change.last_error,
        }
    }
}

/// A change just asked for, with its password: shown this once.
#[derive(SimpleObject, Clone, Debug)]
pub struct PbxPasswordChangeStarted {
    pub password: String,
    pub change: PbxPasswordChange,
}

/// A PBX's latest password change, for a `Pbx` the viewer may see.
pub(crate) async fn latest(ctx: &Context<'_>, pbx: i64) -> Result<Option<PbxPasswordChange>> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    Ok(gui_passwords::latest(&mut conn, pbx)
        .await
        .map_err(internal)?
        .map(Into::into))
}

/// Changing GUI passwords.
#[derive(Default)]
pub struct GuiPasswordMutation;

#[Object]
impl GuiPasswordMutation {
    /// Sets a new GUI administrator password on a PBX through the
    /// controller: the client's own PBX (a reseller's sub-accounts' too), or
    /// any for an admin. Give `password`, or `generate: true` for a strong
    /// random one. The answer holds the password this once; the PBX's
    /// stored password changes only when the controller confirms it, which
    /// `Pbx.passwordChange` tells. Audited.
    #[graphql(guard = "Allow(CUSTOMERS_AND_ADMIN)")]
    async fn change_pbx_password(
        &self,
        ctx: &Context<'_>,
        pbx_id: ID,
        password: Option<String>,
        #[graphql(default)] generate: bool,
    ) -> Result<PbxPasswordChangeStarted> {
        let user = guards::user(ctx)?;
        let id = parse_id(&pbx_id)?;
        let commerce = commerce(ctx)?;
        let actor = actor(ctx);
        let password = match (generate, password.filter(|p| !p.is_empty())) {
            (true, _) => gui_passwords::generate(),
            (false, Some(password)) => password,
            (false, None) => return Err("Type a new password, or choose to generate one.".into()),
        };
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let not_found = || async_graphql::Error::new(format!("No PBX {id}."));
        let pbx = pbxes::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        if user.role != Role::Admin {
            let owner =
                switchboard_core::people::accounts::get(&mut conn, AccountId(pbx.account_id))
                    .await
                    .map_err(internal)?;
            if !owner.is_some_and(|(account, _)| guards::may_see_account(user, &account)) {
                return Err(not_found());
            }
        }
        let change = conn
            .transaction(async |conn| {
                let change = gui_passwords::request(
                    conn,
                    &commerce.key,
                    id,
                    &password,
                    Some(user.user_id),
                    Utc::now(),
                )
                .await?;
                audit::record_change(
                    conn,
                    &actor,
                    "pbx.change_gui_password",
                    &format!("pbx:{id}"),
                    if user.role == Role::Admin {
                        "set by an admin"
                    } else {
                        "set by the client"
                    },
                    &Change::created(serde_json::json!({
                        "password_change": change.id,
                        "state": change.state,
                    })),
                )
                .await?;
                Ok::<_, RequestError>(change)
            })
            .await
            .map_err(|e| match e {
                RequestError::Database(e) => internal(e),
                refusal => refusal.to_string().into(),
            })?;
        Ok(PbxPasswordChangeStarted {
            password,
            change: change.into(),
        })
    }
}
