//! A PBX's GUI administrator password, changed through the controller. A
//! change is a row written with its job in the transaction that asked for
//! it; the job sends the password with no transaction open, and only the
//! controller's confirmation puts it in the PBX's row. So until then, and
//! for good when the controller never took it, the old password is the one
//! in force, and Switchboard says so.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::commerce::pbxes::GUI_PASSWORD;
use crate::domain::UserId;
use crate::keys::SecretKey;
use crate::queue;
use crate::schema::{pbx_password_changes, pbxes};

/// Why a GUI password is refused: it guards a PBX's web administration on
/// the open internet, so it is long and mixed, and plain ASCII without
/// spaces so that every controller and browser takes it as typed.
pub fn check_strength(password: &str) -> Result<(), &'static str> {
    let length = password.chars().count();
    if length < 12 {
        return Err("must be at least 12 characters");
    }
    if length > 64 {
        return Err("must be at most 64 characters");
    }
    if !password.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must be letters, digits and symbols only, without spaces");
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| c.is_ascii_punctuation()),
    ];
    if classes.into_iter().filter(|has| *has).count() < 3 {
        return Err("must mix at least three of: small letters, capitals, digits, symbols");
    }
    let lower = password.to_ascii_lowercase();
    if [
        "password", "trixbox", "asterisk", "admin", "123456", "qwerty",
    ]
    .iter()
    .any(|common| lower.contains(common))
    {
        return Err("must not contain a common word such as \"password\" or \"admin\"");
    }
    Ok(())
}

/// A random password that passes [`check_strength`].
pub fn generate() -> String {
    loop {
        let password = crate::people::passwords::generate();
        if check_strength(&password).is_ok() {
            return password;
        }
    }
}

/// The state of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeState {
    /// On its way to the controller: the old password is in force.
    Pending,
    /// The controller confirmed it: it is the PBX's password.
    Done,
    /// The controller never took it: the old password is in force.
    Failed,
    /// A later change replaced it before it was sent.
    Superseded,
}

impl ChangeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeState::Pending => "pending",
            ChangeState::Done => "done",
            ChangeState::Failed => "failed",
            ChangeState::Superseded => "superseded",
        }
    }

    fn parse(text: &str) -> ChangeState {
        match text {
            "done" => ChangeState::Done,
            "failed" => ChangeState::Failed,
            "superseded" => ChangeState::Superseded,
            _ => ChangeState::Pending,
        }
    }
}

/// A change as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = pbx_password_changes)]
pub struct Change {
    pub id: i64,
    pub pbx_id: i64,
    pub password_sealed: String,
    pub state: String,
    pub last_error: Option<String>,
    pub requested_by: Option<i64>,
    pub requested_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

impl Change {
    pub fn state(&self) -> ChangeState {
        ChangeState::parse(&self.state)
    }
}

/// Why a change cannot be asked for.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("The password {0}.")]
    Weak(&'static str),
    #[error("This PBX is not running at the controller yet, so its password cannot be changed.")]
    NotProvisioned,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Asks for `password` to become the PBX's GUI password: the change is
/// written (sealed) and its job queued, and any change of the PBX still
/// pending is superseded, so the last one asked for is the one that lands.
/// Runs in the caller's transaction, beside its audit record.
pub async fn request(
    conn: &mut AsyncPgConnection,
    key: &SecretKey,
    pbx: i64,
    password: &str,
    by: Option<UserId>,
    now: DateTime<Utc>,
) -> Result<Change, RequestError> {
    check_strength(password).map_err(RequestError::Weak)?;
    let (controller_id, state): (Option<String>, String) = pbxes::table
        .find(pbx)
        .select((pbxes::controller_id, pbxes::state))
        .for_update()
        .first(conn)
        .await?;
    if controller_id.is_none() || matches!(state.as_str(), "cancelled" | "failed") {
        return Err(RequestError::NotProvisioned);
    }
    diesel::update(
        pbx_password_changes::table
            .filter(pbx_password_changes::pbx_id.eq(pbx))
            .filter(pbx_password_changes::state.eq(ChangeState::Pending.as_str())),
    )
    .set((
        pbx_password_changes::state.eq(ChangeState::Superseded.as_str()),
        pbx_password_changes::settled_at.eq(now),
    ))
    .execute(conn)
    .await?;
    let change: Change = diesel::insert_into(pbx_password_changes::table)
        .values((
            pbx_password_changes::pbx_id.eq(pbx),
            pbx_password_changes::password_sealed.eq(key.encrypt(GUI_PASSWORD, password)),
            pbx_password_changes::requested_by.eq(by.map(|u| u.0)),
            pbx_password_changes::requested_at.eq(now),
        ))
        .returning(Change::as_returning())
        .get_result(conn)
        .await?;
    queue::enqueue(conn, queue::SET_PBX_PASSWORD, &change.id.to_string(), None).await?;
    Ok(change)
}

/// One change.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Change>> {
    pbx_password_changes::table
        .find(id)
        .select(Change::as_select())
        .first(conn)
        .await
        .optional()
}

/// A PBX's latest change, if it ever had one.
pub async fn latest(conn: &mut AsyncPgConnection, pbx: i64) -> QueryResult<Option<Change>> {
    pbx_password_changes::table
        .filter(pbx_password_changes::pbx_id.eq(pbx))
        .order(pbx_password_changes::id.desc())
        .select(Change::as_select())
        .first(conn)
        .await
        .optional()
}

/// The controller confirmed the change: it becomes the PBX's password, in
/// one transaction with the change's new state. Returns whether it did
/// (a change no longer pending is left as it is).
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    conn.transaction(async |conn| {
        let change: Option<Change> = pbx_password_changes::table
            .find(id)
            .filter(pbx_password_changes::state.eq(ChangeState::Pending.as_str()))
            .select(Change::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some(change) = change else {
            return Ok(false);
        };
        diesel::update(pbxes::table.find(change.pbx_id))
            .set(pbxes::gui_password_sealed.eq(&change.password_sealed))
            .execute(conn)
            .await?;
        diesel::update(pbx_password_changes::table.find(id))
            .set((
                pbx_password_changes::state.eq(ChangeState::Done.as_str()),
                pbx_password_changes::last_error.eq(None::<String>),
                pbx_password_changes::settled_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(true)
    })
    .await
}

/// Notes the controller's latest complaint about a pending change.
pub async fn note_error(conn: &mut AsyncPgConnection, id: i64, error: &str) -> QueryResult<()> {
    diesel::update(
        pbx_password_changes::table
            .find(id)
            .filter(pbx_password_changes::state.eq(ChangeState::Pending.as_str())),
    )
    .set(pbx_password_changes::last_error.eq(error))
    .execute(conn)
    .await
    .map(drop)
}

/// The controller never took the change: it failed, and the old password
/// stays in force. Returns whether a pending change was given up.
pub async fn give_up(
    conn: &mut AsyncPgConnection,
    id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(
        pbx_password_changes::table
            .find(id)
            .filter(pbx_password_changes::state.eq(ChangeState::Pending.as_str())),
    )
    .set((
        pbx_password_changes::state.eq(ChangeState::Failed.as_str()),
        pbx_password_changes::last_error.eq(error),
        pbx_password_changes::settled_at.eq(now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gui_password_must_be_long_mixed_and_uncommon() {
        assert!(check_strength("Short-1").is_err());
        assert!(check_strength("alllowercaseletters").is_err());
        assert!(check_strength("has a space In-it 9").is_err());
        assert!(check_strength("MyPassword-2027").is_err());
        assert!(check_strength("Trixbox-Admin-99").is_err());
        assert!(check_strength(&"Ab1-".repeat(17)).is_err());
        assert_eq!(check_strength("Blue-Harbour-4711"), Ok(()));
        assert_eq!(
            check_strength("lantern7rivet9"),
            Err("must mix at least three of: small letters, capitals, digits, symbols")
        );
    }

    #[test]
    fn a_generated_gui_password_is_always_strong_enough() {
        for _ in 0..500 {
            let password = generate();
            assert_eq!(check_strength(&password), Ok(()), "{password}");
        }
    }
}
