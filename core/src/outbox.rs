//! The outbox: emails are queued as rows, in the same database transaction as
//! whatever caused them, and a job delivers them. Every message is a text and
//! HTML pair; maud escapes everything a template inserts.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use maud::{html, Markup, DOCTYPE};

use crate::schema::emails;

/// A message ready to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Queues an email; with a dedupe key, queuing it again is harmless. Returns
/// whether a row was added.
pub async fn queue(
    conn: &mut AsyncPgConnection,
    email: &Email,
    dedupe_key: Option<&str>,
) -> QueryResult<bool> {
    diesel::insert_into(emails::table)
        .values((
            emails::dedupe_key.eq(dedupe_key),
            emails::to_address.eq(&email.to),
            emails::subject.eq(&email.subject),
            emails::text_body.eq(&email.text),
            emails::html_body.eq(&email.html),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|rows| rows == 1)
}

/// The sealing purpose of email bodies.
pub const SEALED_BODY: crate::sealed::Purpose = crate::sealed::EMAIL_BODY;

/// Queues an email whose bodies carry a credential (a PBX password): they
/// are stored sealed with the secret key and opened only to be sent.
pub async fn queue_sealed(
    conn: &mut AsyncPgConnection,
    key: &crate::keys::SecretKey,
    email: &Email,
    dedupe_key: Option<&str>,
) -> QueryResult<bool> {
    diesel::insert_into(emails::table)
        .values((
            emails::dedupe_key.eq(dedupe_key),
            emails::to_address.eq(&email.to),
            emails::subject.eq(&email.subject),
            emails::text_body.eq(key.encrypt(SEALED_BODY, &email.text)),
            emails::html_body.eq(key.encrypt(SEALED_BODY, &email.html)),
            emails::sealed.eq(true),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|rows| rows == 1)
}

/// An email as stored, for the staff's Outbox page (bodies are read apart:
/// some carry credentials).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = emails, check_for_backend(diesel::pg::Pg))]
pub struct QueuedEmail {
    pub id: i64,
    pub to_address: String,
    pub subject: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The bodies carry a credential and are stored sealed.
    pub sealed: bool,
}

/// One email as the Outbox page lists it.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<QueuedEmail>> {
    emails::table
        .find(id)
        .select(QueuedEmail::as_select())
        .first(conn)
        .await
        .optional()
}

/// An email's text version as stored: sealed when `sealed` says so.
pub async fn stored_text(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
    emails::table
        .find(id)
        .select(emails::text_body)
        .first(conn)
        .await
        .optional()
}

/// The newest emails first, before `before` when paging.
pub async fn list(
    conn: &mut AsyncPgConnection,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<QueuedEmail>> {
    let mut query = emails::table
        .order(emails::id.desc())
        .limit(limit)
        .select(QueuedEmail::as_select())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(emails::id.lt(before));
    }
    query.load(conn).await
}

/// Wraps a message body in the layout every email shares.
pub(crate) fn layout(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) } }
            body style="font-family: Arial, sans-serif; color: #1d2433; line-height: 1.5; max-width: 560px; margin: 0 auto; padding: 24px;" {
                p style="font-weight: bold; font-size: 18px;" { "Switchboard" }
                (body)
                p style="color: #5b6475; font-size: 12px; margin-top: 32px;" {
                    "You receive this email because you have an account with Switchboard."
                }
            }
        }
    }
    .into_string()
}

/// Tells a user their portal password was changed, in case it was not them.
pub fn password_changed(to: &str, username: &str, at: DateTime<Utc>, from_address: &str) -> Email {
    let when = at.format("%Y-%m-%d %H:%M UTC").to_string();
    let text = format!(
        "Hello {username},\n\nThe password of your Switchboard user {username} was changed on {when} \
         from the address {from_address}.\n\nIf this was you, there is nothing to do. If it was not, \
         reply to this email or contact support at once: someone may have your password.\n"
    );
    let html = layout(
        "Your password was changed",
        html! {
            p { "Hello " (username) "," }
            p {
                "The password of your Switchboard user " strong { (username) }
                " was changed on " (when) " from the address " (from_address) "."
            }
            p {
                "If this was you, there is nothing to do. If it was not, reply to this email or "
                "contact support at once: someone may have your password."
            }
        },
    );
    Email {
        to: to.to_owned(),
        subject: "Your Switchboard password was changed".into(),
        text,
        html,
    }
}

/// A link to set a new password, which an admin sent. It works like a
/// password, so it is queued sealed.
pub fn password_reset(to: &str, username: &str, link: &str, hours: i64) -> Email {
    let text = format!(
        "Hello {username},\n\nA Switchboard administrator asked us to send you a link to set a \
         new password for your user {username}:\n\n{link}\n\nThe link works once, for {hours} hours. \
         If you did not expect it, you can ignore this email: your password stays as it is.\n"
    );
    let html = layout(
        "Set your Switchboard password",
        html! {
            p { "Hello " (username) "," }
            p {
                "A Switchboard administrator asked us to send you a link to set a new password for your user "
                strong { (username) } ":"
            }
            p { a href=(link) { "Set a new password" } }
            p { "The link works once, for " (hours) " hours. If you did not expect it, you can ignore this email: your password stays as it is." }
        },
    );
    Email {
        to: to.to_owned(),
        subject: "Set your Switchboard password".into(),
        text,
        html,
    }
}

/// A link to set a new password, asked for with "Forgot your password?".
/// It works like a password, so it is queued sealed.
pub fn password_recovery(to: &str, username: &str, link: &str, hours: i64) -> Email {
    let lifetime = if hours == 1 {
        "one hour".to_owned()
    } else {
        format!("{hours} hours")
    };
    client_notice(
        to,
        "Set a new Switchboard password",
        &[
            format!(
                "Someone, probably you, asked for a link to set a new password for your \
                 Switchboard user {username}. Follow it to choose one:"
            ),
            format!(
                "The link works once, for {lifetime}. If you did not ask for it, ignore this \
                 email: your password stays as it is. We never send passwords by email."
            ),
        ],
        Some(("Set a new password", link)),
    )
}

/// A link that makes this the address of a user. It proves the mailbox, so
/// it is queued sealed.
pub fn email_change_link(to: &str, username: &str, link: &str, hours: i64) -> Email {
    client_notice(
        to,
        "Confirm your new Switchboard email address",
        &[
            format!(
                "The Switchboard user {username} asked to use this address from now on. It \
                 takes effect when you follow the link:"
            ),
            format!(
                "The link works once, for {hours} hours. If you did not ask for this, ignore \
                 this email: nothing changes."
            ),
        ],
        Some(("Use this address", link)),
    )
}

/// To the address a user had, when a new one took its place.
pub fn email_changed(to: &str, username: &str, new_address: &str) -> Email {
    client_notice(
        to,
        "Your Switchboard email address was changed",
        &[
            format!(
                "The email address of your Switchboard user {username} is now {new_address}; \
                 this address gets no more email about it."
            ),
            "If this was not you, reply to this email or contact support at once.".to_owned(),
        ],
        None,
    )
}

/// To an address a user asked to change to that another user already has:
/// the profile page itself does not say so.
pub fn email_change_to_taken_address(to: &str) -> Email {
    client_notice(
        to,
        "Your Switchboard email address",
        &[
            "Someone asked to use this address for a Switchboard user, but another user \
             already has it, so nothing changed."
                .to_owned(),
            "If that was you, sign in with the user that has this address, or choose another \
             address. If it was not you, there is nothing to do."
                .to_owned(),
        ],
        None,
    )
}

/// To the owner of an address someone tried to sign up with again: the
/// checkout form itself does not say the address has an account.
pub fn sign_up_with_taken_address(to: &str) -> Email {
    let text = "Hello,\n\nSomeone tried to open a Switchboard account with this email address. \
                It already has an account: if that was you, sign in with your username instead \
                of signing up again. If you no longer know your password, reply to this email.\n\n\
                If it was not you, there is nothing to do: nothing was changed.\n"
        .to_owned();
    let html = layout(
        "Someone tried to sign up with your address",
        html! {
            p { "Hello," }
            p { "Someone tried to open a Switchboard account with this email address. It already has an account: if that was you, sign in with your username instead of signing up again. If you no longer know your password, reply to this email." }
            p { "If it was not you, there is nothing to do: nothing was changed." }
        },
    );
    Email {
        to: to.to_owned(),
        subject: "Signing up with an address that has an account".into(),
        text,
        html,
    }
}

/// A notice for a client: a subject, a few paragraphs, and where to act
/// (a label and an address), if anywhere.
pub fn client_notice(
    to: &str,
    subject: &str,
    paragraphs: &[String],
    action: Option<(&str, &str)>,
) -> Email {
    let mut text = String::from("Hello,\n\n");
    for paragraph in paragraphs {
        text.push_str(paragraph);
        text.push_str("\n\n");
    }
    if let Some((label, url)) = action {
        text.push_str(&format!("{label}: {url}\n"));
    }
    let html = layout(
        subject,
        html! {
            p { "Hello," }
            @for paragraph in paragraphs { p { (paragraph) } }
            @if let Some((label, url)) = action { p { a href=(url) { (label) } } }
        },
    );
    Email {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// A notice for staff: a subject and a few labelled facts.
pub fn staff_notice(to: &str, subject: &str, intro: &str, facts: &[(&str, &str)]) -> Email {
    let mut text = format!("{intro}\n\n");
    for (label, value) in facts {
        text.push_str(&format!("{label}: {value}\n"));
    }
    let html = layout(
        subject,
        html! {
            p { (intro) }
            table {
                @for (label, value) in facts {
                    tr { td style="padding-right: 16px; color: #5b6475;" { (label) } td { (value) } }
                }
            }
        },
    );
    Email {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// Tells staff someone signed up and paid.
pub fn new_signup(staff: &str, account: &str, email: &str, plan: &str, paid: &str) -> Email {
    staff_notice(
        staff,
        &format!("New signup: {account}"),
        "A visitor signed up and paid; their PBX is being provisioned.",
        &[
            ("Account", account),
            ("Email", email),
            ("Plan", plan),
            ("Paid", paid),
        ],
    )
}

/// Tells staff about a payment that fulfilled nothing.
pub fn payment_kept(
    staff: &str,
    why: &str,
    order: &str,
    expected: crate::money::Money,
    paid: crate::money::Money,
    currency: &str,
    credited: bool,
) -> Email {
    let outcome = if credited {
        "It was credited to the customer's balance; refund it from Stripe if they ask."
    } else {
        "It is in another currency and was not credited: settle it by hand."
    };
    staff_notice(
        staff,
        &format!("Payment to check for order {order}"),
        &format!("{why}. {outcome}"),
        &[
            ("Order", order),
            ("Order total", &expected.format(currency)),
            ("Paid", &paid.format(currency)),
        ],
    )
}

/// Money of a payment that went back to the customer's card or bank, as
/// staff are told of it.
pub struct TakenBack<'a> {
    pub staff: &'a str,
    pub account: &'a str,
    pub order: &'a str,
    pub paid: crate::money::Money,
    pub amount: crate::money::Money,
    pub currency: &'a str,
    /// Whether the amount was taken from the customer's balance (it was not
    /// when the payment, in another currency, was never credited).
    pub from_balance: bool,
}

impl TakenBack<'_> {
    fn outcome(&self, taken: &'static str) -> &'static str {
        if self.from_balance {
            taken
        } else {
            "The payment was in another currency and never credited, so the balance is unchanged: settle it by hand."
        }
    }
}

/// Tells staff a payment was partly or wholly refunded to the customer's card.
pub fn refund_recorded(details: &TakenBack<'_>, refunded_in_all: crate::money::Money) -> Email {
    let outcome = details.outcome("The amount was taken from the customer's balance.");
    staff_notice(
        details.staff,
        &format!(
            "Refund of {} for {}",
            details.amount.format(details.currency),
            details.account
        ),
        &format!("Stripe refunded money of a payment to the customer's card. {outcome}"),
        &[
            ("Account", details.account),
            ("Order", details.order),
            ("Paid", &details.paid.format(details.currency)),
            ("Refunded now", &details.amount.format(details.currency)),
            ("Refunded in all", &refunded_in_all.format(details.currency)),
        ],
    )
}

/// Tells staff a customer's bank disputes a payment.
pub fn dispute_opened(details: &TakenBack<'_>, dispute: &str, reason: &str) -> Email {
    let outcome = details.outcome(
        "The amount was taken from the customer's balance and is held in the disputes book; if the dispute is won, credit it back by hand.",
    );
    staff_notice(
        details.staff,
        &format!(
            "Dispute of {} for {}",
            details.amount.format(details.currency),
            details.account
        ),
        &format!(
            "The customer's bank disputes a payment and has taken the amount back until the dispute is settled. \
             Answer it in Stripe's dashboard before its deadline. {outcome}"
        ),
        &[
            ("Account", details.account),
            ("Order", details.order),
            ("Paid", &details.paid.format(details.currency)),
            ("Disputed", &details.amount.format(details.currency)),
            ("Dispute", dispute),
            ("Reason", reason),
        ],
    )
}

/// Tells staff a PBX could not be provisioned.
pub fn provisioning_failed(staff: &str, account: &str, pbx: i64, error: &str) -> Email {
    staff_notice(
        staff,
        &format!("Provisioning failed for {account}"),
        "The hosting controller did not create a paid PBX within the retry budget. Retry it from the staff section once the controller is fixed.",
        &[("Account", account), ("PBX", &pbx.to_string()), ("Last error", error)],
    )
}

/// Tells staff a scheduled backup was not taken.
pub fn backup_failed(staff: &str, slot: &str, folder: &str, error: &str) -> Email {
    staff_notice(
        staff,
        &format!("Scheduled backup failed ({slot})"),
        "Switchboard could not take a scheduled backup, after retrying. Until one is taken, the \
         newest backup is older than the schedule says: take one by hand with `switchboard \
         backup` once the cause is fixed.",
        &[
            ("Scheduled for", slot),
            ("Folder", folder),
            ("Last error", error),
        ],
    )
}

/// What the welcome email tells a new client about their PBX.
pub struct WelcomeDetails<'a> {
    pub to: &'a str,
    /// The person's name, as they gave it when signing up.
    pub name: &'a str,
    pub username: &'a str,
    pub plan: &'a str,
    pub hostname: &'a str,
    pub gui_password: &'a str,
    pub portal_url: &'a str,
}

/// The welcome email: a greeting by name, the username, where the PBX is,
/// and its GUI password. Never the portal password.
pub fn welcome(details: &WelcomeDetails<'_>) -> Email {
    let gui_url = format!("https://{}/", details.hostname);
    // A name left empty (an account made by staff, say) falls back to the username.
    let name = Some(details.name.trim())
        .filter(|n| !n.is_empty())
        .unwrap_or(details.username);
    let text = format!(
        "Hello {name},\n\nWelcome to Switchboard! Your {plan} PBX is running.\n\n\
         PBX address: {gui_url}\nPBX administrator user: admin\nPBX administrator password: {password}\n\n\
         Your control panel is at {portal}; sign in with the username {username} and the password you chose.\n",
        username = details.username,
        plan = details.plan,
        password = details.gui_password,
        portal = details.portal_url,
    );
    let html = layout(
        "Your PBX is ready",
        html! {
            p { "Hello " (name) "," }
            p { "Welcome to Switchboard! Your " strong { (details.plan) } " PBX is running." }
            table {
                tr { td style="padding-right: 16px; color: #5b6475;" { "PBX address" } td { a href=(gui_url) { (gui_url) } } }
                tr { td style="padding-right: 16px; color: #5b6475;" { "Administrator user" } td { "admin" } }
                tr { td style="padding-right: 16px; color: #5b6475;" { "Administrator password" } td { code { (details.gui_password) } } }
            }
            p {
                "Your control panel is at " a href=(details.portal_url) { (details.portal_url) }
                "; sign in with the username " strong { (details.username) } " and the password you chose."
            }
        },
    );
    Email {
        to: details.to.to_owned(),
        subject: "Your Switchboard PBX is ready".into(),
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_what_they_insert_in_html() {
        let email = password_changed(
            "a@example.com",
            "<b>eve</b>",
            Utc::now(),
            "1.2.3.4\"><script>",
        );
        assert!(email.html.contains("&lt;b&gt;eve&lt;/b&gt;"));
        assert!(!email.html.contains("<script>"));
        assert!(email.text.contains("<b>eve</b>"), "text is plain text");
        assert_eq!(email.subject, "Your Switchboard password was changed");
    }
}
