//! PBXs: hosted phone systems, one per plan bought.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::calls::dialling::DiallingRules;
use crate::domain::AccountId;
use crate::schema::pbxes;

/// The sealing purpose of a PBX's GUI password.
pub const GUI_PASSWORD: crate::sealed::Purpose = crate::sealed::PBX_GUI_PASSWORD;

/// A PBX as stored.
#[derive(Clone, Debug, Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = pbxes)]
pub struct Pbx {
    pub id: i64,
    pub account_id: i64,
    pub plan_id: i64,
    pub order_id: Option<i64>,
    pub request_id: String,
    pub controller_id: Option<String>,
    pub hostname: Option<String>,
    pub gui_password_sealed: String,
    pub state: String,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    /// What its client calls it (empty for none).
    pub label: String,
}

/// Creates the PBX a paid order bought, with a fresh GUI password sealed
/// with `key`, and queues its provisioning: the same for a signup and for
/// another PBX ordered later. Returns its id.
pub async fn create_for_order(
    conn: &mut AsyncPgConnection,
    key: &crate::keys::SecretKey,
    order: &crate::commerce::orders::Order,
    plan_id: i64,
) -> QueryResult<i64> {
    let password = crate::people::passwords::generate();
    let pbx_id: i64 = diesel::insert_into(pbxes::table)
        .values((
            pbxes::account_id.eq(order.account_id),
            pbxes::plan_id.eq(plan_id),
            pbxes::order_id.eq(order.id),
            pbxes::request_id.eq(format!("pbx-{}", order.public_id)),
            pbxes::gui_password_sealed.eq(key.encrypt(GUI_PASSWORD, &password)),
        ))
        .returning(pbxes::id)
        .get_result(conn)
        .await?;
    crate::queue::enqueue(
        conn,
        crate::queue::PROVISION_PBX,
        &pbx_id.to_string(),
        Some(&format!("provision:{pbx_id}")),
    )
    .await?;
    Ok(pbx_id)
}

/// The longest label a PBX may have, in characters.
pub const LABEL_MAX: usize = 60;

/// A PBX's label as typed, trimmed; empty clears it.
pub fn parse_label(typed: &str) -> Result<String, String> {
    let label = typed.trim();
    if label.chars().count() > LABEL_MAX {
        return Err(format!("must be at most {LABEL_MAX} characters"));
    }
    if label.chars().any(char::is_control) {
        return Err("must be one line of text".into());
    }
    Ok(label.to_owned())
}

/// Gives a PBX a label; returns the one it had, `None` when there is no
/// such PBX.
pub async fn set_label(
    conn: &mut AsyncPgConnection,
    id: i64,
    label: &str,
) -> QueryResult<Option<String>> {
    let before: Option<String> = pbxes::table
        .find(id)
        .select(pbxes::label)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    if before.is_some() {
        diesel::update(pbxes::table.find(id))
            .set(pbxes::label.eq(label))
            .execute(conn)
            .await?;
    }
    Ok(before)
}

/// One PBX.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Pbx>> {
    pbxes::table
        .find(id)
        .select(Pbx::as_select())
        .first(conn)
        .await
        .optional()
}

/// The PBX of an order, if it has one yet.
pub async fn of_order(conn: &mut AsyncPgConnection, order_id: i64) -> QueryResult<Option<Pbx>> {
    pbxes::table
        .filter(pbxes::order_id.eq(order_id))
        .select(Pbx::as_select())
        .first(conn)
        .await
        .optional()
}

/// An account's PBXs, oldest first.
pub async fn of_account(conn: &mut AsyncPgConnection, account: AccountId) -> QueryResult<Vec<Pbx>> {
    pbxes::table
        .filter(pbxes::account_id.eq(account.0))
        .order(pbxes::id)
        .select(Pbx::as_select())
        .load(conn)
        .await
}

/// Every PBX, newest first, optionally in one state.
pub async fn list(
    conn: &mut AsyncPgConnection,
    state: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Pbx>> {
    let mut query = pbxes::table
        .order(pbxes::id.desc())
        .limit(limit)
        .select(Pbx::as_select())
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(pbxes::state.eq(state));
    }
    if let Some(before) = before {
        query = query.filter(pbxes::id.lt(before));
    }
    query.load(conn).await
}

/// The controller made it: record where it lives.
pub async fn mark_active(
    conn: &mut AsyncPgConnection,
    id: i64,
    controller_id: &str,
    hostname: &str,
) -> QueryResult<()> {
    diesel::update(pbxes::table.find(id))
        .set((
            pbxes::state.eq("active"),
            pbxes::controller_id.eq(controller_id),
            pbxes::hostname.eq(hostname),
            pbxes::last_error.eq(None::<String>),
            pbxes::activated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Provisioning gave up.
pub async fn mark_failed(conn: &mut AsyncPgConnection, id: i64, error: &str) -> QueryResult<()> {
    diesel::update(pbxes::table.find(id))
        .set((pbxes::state.eq("failed"), pbxes::last_error.eq(error)))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Notes the latest failure while still trying.
pub async fn note_error(conn: &mut AsyncPgConnection, id: i64, error: &str) -> QueryResult<()> {
    diesel::update(pbxes::table.find(id))
        .set(pbxes::last_error.eq(error))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Puts a failed PBX back to provisioning, for a retry staff asked for.
pub async fn reopen(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::update(pbxes::table.find(id).filter(pbxes::state.eq("failed")))
        .set(pbxes::state.eq("provisioning"))
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// Gives a PBX a new token for pushing its CDRs, replacing any old one;
/// returns the token, which is stored only as its SHA-256.
pub async fn issue_cdr_token(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
    let token = crate::keys::random_token();
    let changed = diesel::update(pbxes::table.find(id))
        .set(pbxes::cdr_token_hash.eq(token_digest(&token)))
        .execute(conn)
        .await?;
    Ok((changed == 1).then_some(token))
}

/// The PBX a CDR token belongs to, with the time zone it writes in.
pub async fn by_cdr_token(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> QueryResult<Option<(i64, String)>> {
    pbxes::table
        .filter(pbxes::cdr_token_hash.eq(token_digest(token)))
        .select((pbxes::id, pbxes::time_zone))
        .first(conn)
        .await
        .optional()
}

fn token_digest(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The sealing purpose of a PBX's CDR database URL.
pub const CDR_SOURCE: crate::sealed::Purpose = crate::sealed::PBX_CDR_SOURCE;

/// Where to pull a PBX's CDRs from: a `mysql://user:password@host:port/asteriskcdrdb`
/// URL, sealed with the key, and the zone the PBX writes times in.
pub async fn set_cdr_source(
    conn: &mut AsyncPgConnection,
    key: &crate::keys::SecretKey,
    id: i64,
    url: &str,
    time_zone: &str,
) -> Result<bool, &'static str> {
    let url = url.trim();
    if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
        return Err(
            "must be a mysql:// address such as mysql://reader:secret@10.0.0.5:3306/asteriskcdrdb",
        );
    }
    if time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err("must be a time zone such as America/New_York");
    }
    let url = url.replacen("mariadb://", "mysql://", 1);
    diesel::update(pbxes::table.find(id))
        .set((
            pbxes::cdr_source_sealed.eq(key.encrypt(CDR_SOURCE, &url)),
            pbxes::time_zone.eq(time_zone),
        ))
        .execute(conn)
        .await
        .map(|n| n == 1)
        .map_err(|_| "could not be saved")
}

/// A PBX's CDR source: the sealed URL, the end time from which its rows may
/// not all have been read yet, and its time zone.
pub async fn cdr_source(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<(String, Option<DateTime<Utc>>, String)>> {
    let found: Option<(Option<String>, Option<DateTime<Utc>>, String)> = pbxes::table
        .find(id)
        .select((
            pbxes::cdr_source_sealed,
            pbxes::cdr_pull_from,
            pbxes::time_zone,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(found.and_then(|(sealed, until, zone)| sealed.map(|s| (s, until, zone))))
}

/// Every PBX that has a CDR source.
pub async fn with_cdr_source(conn: &mut AsyncPgConnection) -> QueryResult<Vec<i64>> {
    pbxes::table
        .filter(pbxes::cdr_source_sealed.is_not_null())
        .select(pbxes::id)
        .load(conn)
        .await
}

/// Remembers where the next pull of a PBX's CDR table starts: rows that
/// ended at or after `from` may not all have been read.
pub async fn set_pull_from(
    conn: &mut AsyncPgConnection,
    id: i64,
    from: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(pbxes::table.find(id))
        .set(pbxes::cdr_pull_from.eq(from))
        .execute(conn)
        .await
        .map(|_| ())
}

/// A PBX's dialling rules: North America's, trunks guessed, when none are
/// set. `None` when there is no such PBX.
pub async fn dialling_rules(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<DiallingRules>> {
    let stored: Option<Option<serde_json::Value>> = pbxes::table
        .find(id)
        .select(pbxes::dialling_rules)
        .first(conn)
        .await
        .optional()?;
    Ok(stored.map(crate::calls::rules_of))
}

/// Sets a PBX's dialling rules after checking them; returns whether the PBX
/// exists. Ingestion reads them under the PBX's lock, so a batch is derived
/// wholly under the old rules or wholly under the new.
pub async fn set_dialling_rules(
    conn: &mut AsyncPgConnection,
    id: i64,
    rules: &DiallingRules,
) -> Result<bool, String> {
    rules.check()?;
    let value = serde_json::to_value(rules).map_err(|e| e.to_string())?;
    diesel::update(pbxes::table.find(id))
        .set(pbxes::dialling_rules.eq(Some(value)))
        .execute(conn)
        .await
        .map(|n| n == 1)
        .map_err(|e| e.to_string())
}

/// Records the trunks the controller reported for a PBX, unless staff have
/// set its dialling rules already.
pub async fn learn_trunks(
    conn: &mut AsyncPgConnection,
    id: i64,
    trunks: &[String],
) -> QueryResult<()> {
    if trunks.is_empty() {
        return Ok(());
    }
    let rules = DiallingRules {
        trunks: trunks.to_vec(),
        ..DiallingRules::default()
    };
    if rules.check().is_err() {
        return Ok(());
    }
    let value = serde_json::to_value(&rules).unwrap_or_default();
    diesel::update(pbxes::table.find(id))
        .filter(pbxes::dialling_rules.is_null())
        .set(pbxes::dialling_rules.eq(Some(value)))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The zone a PBX writes its local times in; `None` when there is no such PBX.
pub async fn time_zone(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
    pbxes::table
        .find(id)
        .select(pbxes::time_zone)
        .first(conn)
        .await
        .optional()
}

/// PBXs the controller runs (not cancelled, provisioned), newest first, with
/// only those of accounts in trouble (standing not good, or turned off) when
/// `trouble`: what the calling status page lists.
pub async fn calling_status(
    conn: &mut AsyncPgConnection,
    trouble: bool,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Pbx>> {
    use crate::schema::accounts;
    let mut query = pbxes::table
        .inner_join(accounts::table)
        .filter(pbxes::controller_id.is_not_null())
        .filter(pbxes::state.ne("cancelled"))
        .order(pbxes::id.desc())
        .limit(limit)
        .select(Pbx::as_select())
        .into_boxed();
    if trouble {
        query = query.filter(
            accounts::standing
                .ne("good")
                .or(accounts::turned_off.eq(true))
                .or(pbxes::state.ne("active")),
        );
    }
    if let Some(before) = before {
        query = query.filter(pbxes::id.lt(before));
    }
    query.load(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_one_trimmed_line_of_at_most_sixty_characters() {
        assert_eq!(parse_label("  Main office "), Ok("Main office".to_owned()));
        assert_eq!(parse_label(""), Ok(String::new()));
        assert_eq!(
            parse_label(&"é".repeat(60)).map(|l| l.chars().count()),
            Ok(60)
        );
        assert!(parse_label(&"x".repeat(61)).is_err());
        assert!(parse_label("two\nlines").is_err());
    }
}
