//! The emails a ticket's new messages send: a client's to staff, staff's
//! replies to the client. Internal notes send none. The message is quoted as
//! typed: plain in the text version, escaped with its line breaks kept in
//! the HTML one.

use maud::html;

use crate::outbox::{layout, Email};

/// What a notice says of one new message.
pub struct NewMessage<'a> {
    pub to: &'a str,
    pub ticket: i64,
    pub subject: &'a str,
    /// Who wrote it, as the reader knows them.
    pub author: &'a str,
    pub body: &'a str,
    /// Where the reader answers.
    pub link: &'a str,
}

fn subject_line(ticket: i64, subject: &str) -> String {
    format!("[Ticket #{ticket}] {subject}")
}

/// To staff: a client opened a ticket or wrote on one.
pub fn to_staff(message: &NewMessage<'_>, account: &str, opened: bool) -> Email {
    let intro = if opened {
        format!("{} of {account} opened a ticket:", message.author)
    } else {
        format!("{} of {account} wrote on their ticket:", message.author)
    };
    email(message, &intro, "Answer it in the staff section")
}

/// To the client: staff answered their ticket.
pub fn to_client(message: &NewMessage<'_>) -> Email {
    let intro = format!("{} from support answered your ticket:", message.author);
    email(message, &intro, "See the ticket and reply")
}

fn email(message: &NewMessage<'_>, intro: &str, action: &str) -> Email {
    let subject = subject_line(message.ticket, message.subject);
    let quoted: String = message
        .body
        .lines()
        .map(|line| format!("> {line}\n"))
        .collect();
    let text = format!(
        "Hello,\n\n{intro}\n\n{quoted}\n{action}: {link}\n",
        link = message.link
    );
    let html = layout(
        &subject,
        html! {
            p { "Hello," }
            p { (intro) }
            div style="white-space: pre-wrap; border-left: 3px solid #c4cad6; padding-left: 12px; margin: 12px 0;" {
                (message.body)
            }
            p { a href=(message.link) { (action) } }
        },
    );
    Email {
        to: message.to.to_owned(),
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_quoted_escaped_in_html_and_plain_in_text() {
        let email = to_client(&NewMessage {
            to: "c@example.com",
            ticket: 7,
            subject: "No <dial> tone",
            author: "sam",
            body: "<script>alert(1)</script>\nSecond line",
            link: "https://portal.example/portal/tickets/7",
        });
        assert_eq!(email.subject, "[Ticket #7] No <dial> tone");
        assert!(email
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;\nSecond line"));
        assert!(!email.html.contains("<script>"));
        assert!(email
            .text
            .contains("> <script>alert(1)</script>\n> Second line\n"));
    }
}
