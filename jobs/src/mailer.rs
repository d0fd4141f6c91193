//! Delivering the outbox: SMTP through lettre, or `.eml` files in the data
//! folder when no SMTP server is configured (a demo then shows what would
//! have been sent).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use switchboard_core::config::{Settings, SmtpSecurity};
use switchboard_core::db::{self, Pool};
use switchboard_core::keys::SecretKey;
use switchboard_core::outbox;
use switchboard_core::schema::emails;

/// After this many attempts an email is marked failed and left for staff.
pub const MAX_ATTEMPTS: i32 = 12;

/// Where email goes, and the key that opens sealed bodies.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    key: SecretKey,
}

#[derive(Clone)]
enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        timeout: Duration,
    },
    Files {
        dir: PathBuf,
    },
}

impl Mailer {
    /// The mailer the settings ask for.
    pub fn from_settings(settings: &Settings, key: SecretKey) -> anyhow::Result<Mailer> {
        let from: Mailbox =
            settings.email.from.parse().with_context(|| {
                format!("email.from {:?} is not an address", settings.email.from)
            })?;
        let Some(smtp) = &settings.email.smtp else {
            return Ok(Mailer {
                transport: Transport::Files {
                    dir: settings.data_dir.join("outbox"),
                },
                from,
                key,
            });
        };
        let builder = match smtp.security {
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    .port(smtp.port.unwrap_or(25))
            }
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                    .context("setting up STARTTLS")?
                    .port(smtp.port.unwrap_or(587))
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                .context("setting up TLS")?
                .port(smtp.port.unwrap_or(465)),
        };
        let timeout = Duration::from_secs(smtp.timeout_seconds.max(1));
        let mut builder = builder.timeout(Some(timeout));
        if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                password.expose().to_owned(),
            ));
        }
        Ok(Mailer {
            transport: Transport::Smtp {
                transport: builder.build(),
                timeout,
            },
            from,
            key,
        })
    }

    fn from(&self) -> &Mailbox {
        &self.from
    }

    /// How long a claimed email is left alone: longer than one delivery can
    /// take, so no other instance sends it meanwhile, and short, so one whose
    /// sender died is tried again soon (delivery is at least once).
    pub fn lease(&self) -> chrono::Duration {
        let longest_send = match &self.transport {
            Transport::Smtp { timeout, .. } => *timeout * SEND_TIMEOUTS,
            Transport::Files { .. } => Duration::ZERO,
        };
        chrono::Duration::from_std(longest_send).unwrap_or(chrono::Duration::hours(1))
            + chrono::Duration::seconds(LEASE_MARGIN_SECONDS)
    }

    async fn send(&self, id: i64, message: Message) -> Result<(), Failure> {
        match &self.transport {
            Transport::Smtp { transport, timeout } => {
                // lettre's own timeout covers each read and write; this one
                // covers a server that trickles.
                match tokio::time::timeout(*timeout * SEND_TIMEOUTS, transport.send(message)).await
                {
                    Err(_) => Err(Failure::Retry(
                        "the mail server did not finish in time".into(),
                    )),
                    Ok(Err(error)) if error.is_permanent() => {
                        Err(Failure::Permanent(error.to_string()))
                    }
                    Ok(Err(error)) => Err(Failure::Retry(error.to_string())),
                    Ok(Ok(_)) => Ok(()),
                }
            }
            Transport::Files { dir } => {
                let path = dir.join(format!("{id:08}.eml"));
                write_private(dir, &path, &message.formatted())
                    .await
                    .map_err(|e| Failure::Retry(format!("writing {}: {e}", path.display())))
            }
        }
    }
}

/// Writes a message where only Switchboard's own user can read it: some
/// carry a PBX's password. The folder is 0700 and the file 0600, whatever
/// they were before.
async fn write_private(
    dir: &std::path::Path,
    path: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncWriteExt;
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await?;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).await?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .await?;
    file.write_all(bytes).await?;
    file.sync_all().await
}

enum Failure {
    /// Worth trying again later.
    Retry(String),
    /// Will never work (a refused recipient, a malformed address).
    Permanent(String),
}

/// What one delivery pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

type Due = (i64, String, String, String, String, bool, i32);

/// One delivery to an SMTP server takes at most this many of its timeouts.
const SEND_TIMEOUTS: u32 = 4;
/// Added to the longest delivery in a lease.
const LEASE_MARGIN_SECONDS: i64 = 30;

/// Delivers every queued email that is due, a batch at a time. A batch is
/// claimed in a short transaction (`FOR UPDATE SKIP LOCKED`, then leased), so
/// instances never send one twice and no lock or connection is held while
/// the mail server talks; each result is recorded on its own. The lease is
/// renewed before each message, so a batch may take longer than one lease,
/// and a message whose lease ran out and was claimed elsewhere is skipped.
pub async fn deliver_due(pool: &Pool, mailer: &Mailer) -> anyhow::Result<Delivery> {
    let mut total = Delivery::default();
    let lease = mailer.lease();
    loop {
        let batch = {
            let mut conn = db::conn(pool).await?;
            conn.transaction(async |conn| claim(conn, lease).await)
                .await?
        };
        if batch.is_empty() {
            return Ok(total);
        }
        for (id, to, subject, text, html, sealed, attempts) in batch {
            if !renew(&mut *db::conn(pool).await?, id, attempts, lease).await? {
                continue;
            }
            let bodies = if sealed {
                mailer
                    .key
                    .decrypt(outbox::SEALED_BODY, &text)
                    .and_then(|text| Ok((text, mailer.key.decrypt(outbox::SEALED_BODY, &html)?)))
                    .map_err(|e| format!("the sealed body does not open: {e:#}"))
            } else {
                Ok((text, html))
            };
            let result = match bodies
                .and_then(|(text, html)| build(mailer.from(), id, &to, &subject, text, html))
            {
                Ok(message) => mailer.send(id, message).await,
                Err(why) => Err(Failure::Permanent(why)),
            };
            let mut conn = db::conn(pool).await?;
            record(&mut conn, id, attempts, result, &mut total).await?;
        }
    }
}

/// Takes up to 20 due emails and leases them; returns them with their
/// attempt number.
async fn claim(conn: &mut AsyncPgConnection, lease: chrono::Duration) -> anyhow::Result<Vec<Due>> {
    // The state is written into the statement, not bound: the partial index
    // of queued emails is used only by a plan that knows the value, and
    // pooled connections plan every statement once, for any value.
    let due: Vec<Due> = emails::table
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "emails.state = 'queued'",
        ))
        .filter(emails::next_attempt_at.le(Utc::now()))
        .order(emails::id)
        .limit(20)
        .select((
            emails::id,
            emails::to_address,
            emails::subject,
            emails::text_body,
            emails::html_body,
            emails::sealed,
            emails::attempts,
        ))
        .for_update()
        .skip_locked()
        .load(conn)
        .await?;
    let ids: Vec<i64> = due.iter().map(|d| d.0).collect();
    diesel::update(emails::table.filter(emails::id.eq_any(&ids)))
        .set((
            emails::attempts.eq(emails::attempts + 1),
            emails::next_attempt_at.eq(Utc::now() + lease),
        ))
        .execute(conn)
        .await?;
    Ok(due
        .into_iter()
        .map(|(id, to, subject, text, html, sealed, attempts)| {
            (id, to, subject, text, html, sealed, attempts + 1)
        })
        .collect())
}

/// Extends the lease of an email about to be sent; false when it is no
/// longer this sender's (its lease ran out and another claimed it).
async fn renew(
    conn: &mut AsyncPgConnection,
    id: i64,
    attempts: i32,
    lease: chrono::Duration,
) -> anyhow::Result<bool> {
    let renewed = diesel::update(
        emails::table
            .find(id)
            .filter(emails::state.eq("queued"))
            .filter(emails::attempts.eq(attempts)),
    )
    .set(emails::next_attempt_at.eq(Utc::now() + lease))
    .execute(conn)
    .await?;
    Ok(renewed == 1)
}

async fn record(
    conn: &mut AsyncPgConnection,
    id: i64,
    attempts: i32,
    result: Result<(), Failure>,
    delivery: &mut Delivery,
) -> anyhow::Result<()> {
    match result {
        Ok(()) => {
            diesel::update(emails::table.find(id))
                .set((
                    emails::state.eq("sent"),
                    emails::sent_at.eq(Utc::now()),
                    emails::last_error.eq(None::<String>),
                ))
                .execute(conn)
                .await?;
            delivery.sent += 1;
        }
        Err(Failure::Retry(why)) if attempts < MAX_ATTEMPTS => {
            tracing::warn!(email = id, attempts, error = %why, "email not delivered yet");
            diesel::update(emails::table.find(id))
                .set((
                    emails::last_error.eq(why),
                    emails::next_attempt_at.eq(Utc::now() + crate::backoff(attempts)),
                ))
                .execute(conn)
                .await?;
            delivery.retrying += 1;
        }
        Err(Failure::Retry(why) | Failure::Permanent(why)) => {
            tracing::error!(email = id, attempts, error = %why, "email given up");
            diesel::update(emails::table.find(id))
                .set((emails::state.eq("failed"), emails::last_error.eq(why)))
                .execute(conn)
                .await?;
            delivery.failed += 1;
        }
    }
    Ok(())
}

/// The Message-ID of outbox email `id`: the same at every attempt, so a
/// message delivered twice (a crash after the server took it, before the
/// outbox heard so) is recognizable as one.
pub fn message_id(from: &Mailbox, id: i64) -> String {
    format!("<outbox-{id}@{}>", from.email.domain())
}

fn build(
    from: &Mailbox,
    id: i64,
    to: &str,
    subject: &str,
    text: String,
    html: String,
) -> Result<Message, String> {
    let to: Mailbox = to
        .parse()
        .map_err(|e| format!("the address {to:?} is not valid: {e}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .message_id(Some(message_id(from, id)))
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("the message could not be built: {e}"))
}
