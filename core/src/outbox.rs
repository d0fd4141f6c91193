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
pub const SEALED_BODY: &str = "email.body";

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

/// An email as stored, for the staff's Outbox page (bodies are left out:
/// some carry credentials).
#[derive(Clone, Debug, Queryable)]
pub struct QueuedEmail {
    pub id: i64,
    pub to_address: String,
    pub subject: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
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
        .select((
            emails::id,
            emails::to_address,
            emails::subject,
            emails::state,
            emails::attempts,
            emails::last_error,
            emails::created_at,
            emails::sent_at,
        ))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(emails::id.lt(before));
    }
    query.load(conn).await
}

/// Wraps a message body in the layout every email shares.
fn layout(title: &str, body: Markup) -> String {
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

/// A notice for staff: a subject and a few labelled facts.
fn staff_notice(to: &str, subject: &str, intro: &str, facts: &[(&str, &str)]) -> Email {
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

/// Tells staff a PBX could not be provisioned.
pub fn provisioning_failed(staff: &str, account: &str, pbx: i64, error: &str) -> Email {
    staff_notice(
        staff,
        &format!("Provisioning failed for {account}"),
        "The hosting controller did not create a paid PBX within the retry budget. Retry it from the staff section once the controller is fixed.",
        &[("Account", account), ("PBX", &pbx.to_string()), ("Last error", error)],
    )
}

/// What the welcome email tells a new client about their PBX.
pub struct WelcomeDetails<'a> {
    pub to: &'a str,
    pub username: &'a str,
    pub plan: &'a str,
    pub hostname: &'a str,
    pub gui_password: &'a str,
    pub portal_url: &'a str,
}

/// The welcome email: the username, where the PBX is, and its GUI password.
/// Never the portal password.
pub fn welcome(details: &WelcomeDetails<'_>) -> Email {
    let gui_url = format!("https://{}/", details.hostname);
    let text = format!(
        "Welcome to Switchboard, {username}!\n\nYour {plan} PBX is running.\n\n\
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
            p { "Welcome to Switchboard, " (details.username) "!" }
            p { "Your " strong { (details.plan) } " PBX is running." }
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
