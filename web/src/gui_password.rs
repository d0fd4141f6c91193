//! The pieces of a page that changes a PBX's GUI password, shared by the
//! client's control panel and the admins' PBX page: the form, the state of
//! the latest change, and the new password shown once.

use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::csrf_field;
use crate::PageContext;

/// The operation both pages run, as the viewer.
pub const CHANGE: &str = "mutation ChangePbxPassword($pbx: ID!, $password: String, $generate: Boolean!) { \
                          changePbxPassword(pbxId: $pbx, password: $password, generate: $generate) { \
                          password change { state requestedAt } } }";

/// The fields a page reads of a change (`Pbx.passwordChange`).
pub const CHANGE_FIELDS: &str = "state requestedAt tookEffectAt givenUpAt error";

/// A change as a page reads it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    pub state: String,
    pub requested_at: chrono::DateTime<chrono::Utc>,
    pub took_effect_at: Option<chrono::DateTime<chrono::Utc>>,
    pub given_up_at: Option<chrono::DateTime<chrono::Utc>>,
    pub error: Option<String>,
}

/// What the form posts: `choice` is `generate` or `typed`.
#[derive(Debug, Default, Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    pub choice: String,
    #[serde(default)]
    pub password: String,
}

impl ChangeForm {
    /// The operation's variables for PBX `pbx`.
    pub fn variables(&self, pbx: &str) -> serde_json::Value {
        let generate = self.choice != "typed";
        serde_json::json!({
            "pbx": pbx,
            "generate": generate,
            "password": (!generate).then_some(self.password.as_str()),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Started {
    change_pbx_password: StartedChange,
}

#[derive(Deserialize)]
struct StartedChange {
    password: String,
}

/// The new password out of the operation's answer.
pub fn started_password(answer: serde_json::Value) -> Option<String> {
    serde_json::from_value::<Started>(answer)
        .ok()
        .map(|s| s.change_pbx_password.password)
}

/// Whether a change is still on its way, so the page should look again.
pub fn pending(change: Option<&PasswordChange>) -> bool {
    change.is_some_and(|c| c.state == "PENDING")
}

/// Where the latest change is, in words.
pub fn status(change: Option<&PasswordChange>) -> Markup {
    let at = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! {
        @match change {
            None => p.muted data-testid="password-status" { "The password has not been changed since the PBX was set up." },
            Some(c) if c.state == "DONE" => div.alert.ok role="status" data-testid="password-status" {
                "The new password took effect at " (c.took_effect_at.as_ref().map(at).unwrap_or_default()) " (asked for at " (at(&c.requested_at)) ")."
            },
            Some(c) if c.state == "PENDING" => div.alert.info role="status" data-testid="password-status" {
                "A new password asked for at " (at(&c.requested_at)) " is on its way to the PBX. Until the hosting controller confirms it, the old password stays in force."
                @if let Some(error) = &c.error { " The controller has not taken it yet (" (error) "); we keep trying for a few minutes." }
            },
            Some(c) if c.state == "FAILED" => div.alert.error role="alert" data-testid="password-status" {
                "The new password asked for at " (at(&c.requested_at)) " did not take effect: the hosting controller did not accept it"
                @if let Some(error) = &c.error { " (" (error) ")" }
                ". The old password is still in force. Try again later."
            },
            Some(c) => p.muted data-testid="password-status" { "The password asked for at " (at(&c.requested_at)) " was replaced by a later one." },
        }
    }
}

/// The new password, shown once after it was asked for.
pub fn shown_once(password: &str) -> Markup {
    html! {
        div.alert.ok role="status" {
            p { "The new password (user " code { "admin" } "), shown this once — copy it now:" }
            p { code #new-gui-password data-testid="new-gui-password" { (password) } }
            p { "It takes effect when the hosting controller confirms it, usually within a minute; until then the old one works." }
        }
    }
}

/// The form; `error` is why the last try was refused.
pub fn form(ctx: &PageContext, action: &str, typed: &ChangeForm, error: Option<&str>) -> Markup {
    let typed_choice = typed.choice == "typed";
    html! {
        form #gui-password-form .card.stack method="post" action=(action) {
            (csrf_field(ctx))
            fieldset.choices {
                legend { "New GUI password" }
                label.checkbox {
                    input #choice-generate type="radio" name="choice" value="generate" checked[!typed_choice];
                    "Generate a strong one for me"
                }
                label.checkbox {
                    input #choice-typed type="radio" name="choice" value="typed" checked[typed_choice];
                    "I'll choose one:"
                }
                div {
                    label for="gui-password" { "Password" }
                    input #gui-password type="password" name="password" autocomplete="new-password" maxlength="64"
                        aria-describedby="gui-password-rules"
                        aria-invalid=[error.map(|_| "true")];
                    p #gui-password-rules .muted { "At least 12 characters, no spaces; mix three of small letters, capitals, digits and symbols; no common words such as \"password\" or \"admin\"." }
                }
            }
            @if let Some(error) = error { div #gui-password-error .field-error role="alert" { (error) } }
            button.primary type="submit" { "Change the password" }
        }
    }
}
