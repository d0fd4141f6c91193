//! What the client's and the staff's ticket pages share: how states and
//! categories read, the thread, and the message box. A message is shown as
//! typed: escaped, with its line breaks kept (the stylesheet's
//! `pre-wrap`), never as markup.

use maud::{html, Markup};
use serde::Deserialize;

/// The categories as the schema names them, with how people read them.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("CALLS", "Calls and call quality"),
    ("PBX", "The PBX and its settings"),
    ("NUMBERS", "Phone numbers"),
    ("BILLING", "Billing and payments"),
    ("ACCOUNT", "The account and its users"),
    ("OTHER", "Something else"),
];

/// The states as the schema names them.
pub const STATES: &[&str] = &["OPEN", "AWAITING_STAFF", "AWAITING_CLIENT", "CLOSED"];

/// How a category reads.
pub fn category_label(category: &str) -> &'static str {
    CATEGORIES
        .iter()
        .find(|(value, _)| *value == category)
        .map(|(_, label)| *label)
        .unwrap_or("Something else")
}

/// How a state reads to the client, who waits on staff or is waited on.
pub fn state_for_client(state: &str) -> &'static str {
    match state {
        "OPEN" => "Open: support will answer",
        "AWAITING_STAFF" => "Waiting for support",
        "AWAITING_CLIENT" => "Support answered",
        "CLOSED" => "Closed",
        _ => "Unknown",
    }
}

/// How a state reads to staff.
pub fn state_for_staff(state: &str) -> &'static str {
    match state {
        "OPEN" => "New",
        "AWAITING_STAFF" => "Awaiting staff",
        "AWAITING_CLIENT" => "Awaiting client",
        "CLOSED" => "Closed",
        _ => "Unknown",
    }
}

/// The badge of a state: a ticket waiting on staff stands out.
pub fn state_badge(state: &str) -> &'static str {
    match state {
        "OPEN" | "AWAITING_STAFF" => "low",
        "AWAITING_CLIENT" => "good",
        _ => "",
    }
}

/// One message of a thread, as the schema returns it.
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ThreadMessage {
    pub id: String,
    pub body: String,
    pub author: String,
    pub from_staff: bool,
    #[serde(default)]
    pub internal: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A thread, oldest first; the last message carries the `latest` anchor.
pub fn thread(messages: &[ThreadMessage], for_staff: bool) -> Markup {
    html! {
        ol.thread aria-label="Messages" {
            @for (n, message) in messages.iter().enumerate() {
                @let class = if message.internal { "message note" } else if message.from_staff { "message staff" } else { "message client" };
                li class=(class) id=[(n + 1 == messages.len()).then_some("latest")] data-testid="message" {
                    div.meta {
                        strong { (message.author) }
                        @if message.internal {
                            " " span.badge.low { "internal note" }
                        } @else if message.from_staff && !for_staff {
                            " " span.badge { "support" }
                        } @else if !message.from_staff && for_staff {
                            " " span.badge { "client" }
                        }
                        " · " time datetime=(message.created_at.to_rfc3339()) { (message.created_at.format("%Y-%m-%d %H:%M UTC")) }
                    }
                    div.body data-testid="message-body" { (message.body) }
                }
            }
        }
    }
}

/// A labelled message box with its error, keeping what was typed.
pub fn message_box(
    name: &str,
    label: &str,
    value: &str,
    errors: &[(String, String)],
    rows: u8,
) -> Markup {
    let error = errors
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, message)| message.as_str());
    let error_id = format!("{name}-error");
    html! {
        label for=(name) { (label) }
        textarea.prose id=(name) name=(name) rows=(rows) required
            aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| error_id.as_str())] { (value) }
        @if let Some(error) = error {
            div.field-error id=(error_id) { (label) " " (error) "." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_escaped_and_keeps_its_lines() {
        let markup = thread(
            &[ThreadMessage {
                id: "1".into(),
                body: "<b>bold</b>\nnext line".into(),
                author: "<i>eve</i>".into(),
                from_staff: false,
                internal: false,
                created_at: chrono::Utc::now(),
            }],
            false,
        )
        .into_string();
        assert!(
            markup.contains("&lt;b&gt;bold&lt;/b&gt;\nnext line"),
            "{markup}"
        );
        assert!(markup.contains("&lt;i&gt;eve&lt;/i&gt;"));
        assert!(!markup.contains("<b>"));
    }
}
