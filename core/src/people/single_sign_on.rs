//! Sign-ins through an OpenID provider under way, kept in the database so
//! whichever instance the provider sends the browser back to can finish one.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::sso_logins;

/// How long a sign-in at the provider may take.
pub const LIFETIME_MINUTES: i64 = 10;

/// What the return from the provider is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: Option<String>,
    pub started_at: DateTime<Utc>,
}

/// Remembers a sign-in sent to the provider under its `state`.
pub async fn remember(
    conn: &mut AsyncPgConnection,
    state: &str,
    pending: &Pending,
) -> QueryResult<()> {
    diesel::delete(
        sso_logins::table
            .filter(sso_logins::created_at.lt(Utc::now() - Duration::minutes(LIFETIME_MINUTES))),
    )
    .execute(conn)
    .await?;
    diesel::insert_into(sso_logins::table)
        .values((
            sso_logins::state.eq(state),
            sso_logins::nonce.eq(&pending.nonce),
            sso_logins::pkce_verifier.eq(&pending.pkce_verifier),
            sso_logins::next.eq(&pending.next),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Takes the sign-in a `state` names, once: a state that comes back a
/// second time, or too late, finds nothing.
pub async fn take(conn: &mut AsyncPgConnection, state: &str) -> QueryResult<Option<Pending>> {
    let found: Option<(String, String, Option<String>, DateTime<Utc>)> =
        diesel::delete(sso_logins::table.find(state))
            .returning((
                sso_logins::nonce,
                sso_logins::pkce_verifier,
                sso_logins::next,
                sso_logins::created_at,
            ))
            .get_result(conn)
            .await
            .optional()?;
    Ok(found
        .filter(|(_, _, _, at)| *at > Utc::now() - Duration::minutes(LIFETIME_MINUTES))
        .map(|(nonce, pkce_verifier, next, started_at)| Pending {
            nonce,
            pkce_verifier,
            next,
            started_at,
        }))
}
