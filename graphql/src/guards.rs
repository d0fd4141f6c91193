//! Authorization, in one place: which roles may use which field, and which
//! accounts a viewer may see. The authorization matrix test reads the same
//! lists through the schema.

use async_graphql::{Context, Guard, Result};
use switchboard_core::people::accounts::Account;
use switchboard_core::people::sessions::SessionUser;
use switchboard_core::Role;

/// Who is asking: a session's or an API token's user, or nobody.
#[derive(Clone, Debug, Default)]
pub struct Viewer {
    pub user: Option<SessionUser>,
    /// The address the request came from, for the audit log.
    pub ip: String,
}

impl Viewer {
    pub fn anonymous() -> Viewer {
        Viewer::default()
    }

    pub fn signed_in(user: SessionUser, ip: impl Into<String>) -> Viewer {
        Viewer {
            user: Some(user),
            ip: ip.into(),
        }
    }

    pub fn role(&self) -> Option<Role> {
        self.user.as_ref().map(|u| u.role)
    }
}

/// Every signed-in role.
pub const SIGNED_IN: &[Role] = &[Role::Client, Role::Reseller, Role::Staff, Role::Admin];
/// Those who buy: clients and resellers.
pub const CUSTOMERS: &[Role] = &[Role::Client, Role::Reseller];
/// The company's people.
pub const STAFF: &[Role] = &[Role::Staff, Role::Admin];
/// The company's owners.
pub const ADMIN: &[Role] = &[Role::Admin];
/// Customers acting on their own, and admins on anyone's (a PBX's GUI password).
pub const CUSTOMERS_AND_ADMIN: &[Role] = &[Role::Client, Role::Reseller, Role::Admin];

/// Lets a field through for the listed roles only, once the user has
/// replaced any one-time password and, as an admin where two factors are
/// required, turned two-factor sign-in on.
pub struct Allow(pub &'static [Role]);

impl Guard for Allow {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        AllowBeforeTwoFactor(self.0).check(ctx).await?;
        match ctx.data_opt::<Viewer>().and_then(|v| v.user.as_ref()) {
            Some(user)
                if !user.two_factor && crate::people::two_factor_required(ctx, user.role) =>
            {
                Err("Turn on two-factor sign-in first (startTwoFactor).".into())
            }
            _ => Ok(()),
        }
    }
}

/// The same, but open to an admin who must still turn two-factor sign-in
/// on: only for what they need to do it.
pub struct AllowBeforeTwoFactor(pub &'static [Role]);

impl Guard for AllowBeforeTwoFactor {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        AllowBeforePasswordChange(self.0).check(ctx).await?;
        match ctx.data_opt::<Viewer>().and_then(|v| v.user.as_ref()) {
            Some(user) if user.must_change_password => {
                Err("Choose a new password first (changePassword).".into())
            }
            _ => Ok(()),
        }
    }
}

/// The same, but open to a user who still has a one-time password: only for
/// what they need to replace it.
pub struct AllowBeforePasswordChange(pub &'static [Role]);

impl Guard for AllowBeforePasswordChange {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        match ctx.data_opt::<Viewer>().and_then(Viewer::role) {
            None => Err("Sign in first.".into()),
            Some(role) if self.0.contains(&role) => Ok(()),
            Some(_) => Err("You are not allowed to do this.".into()),
        }
    }
}

/// The signed-in user; guards have already refused anonymous viewers.
pub fn user<'a>(ctx: &Context<'a>) -> Result<&'a SessionUser> {
    ctx.data_opt::<Viewer>()
        .and_then(|v| v.user.as_ref())
        .ok_or_else(|| "Sign in first.".into())
}

/// Whether the viewer may see this account: staff see all, a client their
/// own, a reseller their own and its sub-accounts.
pub fn may_see_account(viewer: &SessionUser, account: &Account) -> bool {
    match viewer.role {
        Role::Staff | Role::Admin => true,
        Role::Client => viewer.account_id.map(|a| a.0) == Some(account.id),
        Role::Reseller => viewer
            .account_id
            .is_some_and(|own| own.0 == account.id || account.parent_id == Some(own.0)),
    }
}
