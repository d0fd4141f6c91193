//! Sending commands to the hosting controller.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use switchboard_core::config::{CommandTemplate, ControllerSettings};

use crate::template::{render, Escape};

/// A client for one controller.
#[derive(Clone, Debug)]
pub struct Controller {
    http: reqwest::Client,
    base_url: String,
    settings: ControllerSettings,
}

/// What creating a PBX needs.
#[derive(Clone, Debug)]
pub struct CreatePbx {
    /// Stable per PBX: the controller must answer a repeated request id with
    /// the PBX it already made.
    pub request_id: String,
    pub plan: String,
    pub extensions: i32,
    pub gui_password: String,
    pub account: String,
}

/// The controller's answer to a create.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Created {
    pub id: String,
    pub hostname: String,
    /// The PBX's trunks as channel names (`PJSIP/trunk-voip`), when the
    /// controller says: calls through them are the outside calls.
    #[serde(default)]
    pub trunks: Vec<String>,
}

/// A PBX's health as the controller reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct PbxStatus {
    /// `up` or `down`.
    pub state: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub uptime_seconds: u64,
    /// `enabled` or `suspended`.
    #[serde(default)]
    pub calling: String,
}

/// A call in progress.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct LiveCall {
    pub channel: String,
    pub from: String,
    pub to: String,
    pub direction: String,
    pub started_at: String,
}

#[derive(Deserialize)]
struct LiveCalls {
    calls: Vec<LiveCall>,
}

/// Why a command did not work. Every kind is worth retrying: a controller
/// that answers garbage today may be fixed tomorrow.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("the controller did not answer: {0}")]
    Unreachable(String),
    #[error("the controller refused ({status}): {body}")]
    Refused { status: u16, body: String },
    #[error("the controller's answer makes no sense: {0}")]
    Garbage(String),
    #[error("the controller command is misconfigured: {0}")]
    Misconfigured(String),
}

impl Controller {
    /// A client for the controller at `base_url`, as the settings describe it.
    pub fn new(settings: &ControllerSettings, base_url: &str) -> anyhow::Result<Controller> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_seconds.max(1)))
            .connect_timeout(Duration::from_secs(settings.timeout_seconds.clamp(1, 10)))
            .build()?;
        Ok(Controller {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            settings: settings.clone(),
        })
    }

    async fn call(
        &self,
        command: &CommandTemplate,
        values: &[(&str, &str)],
    ) -> Result<String, ControllerError> {
        let method = Method::from_bytes(command.method.trim().to_uppercase().as_bytes())
            .map_err(|_| ControllerError::Misconfigured(format!("method {:?}", command.method)))?;
        let url = format!(
            "{}{}",
            self.base_url,
            render(&command.path, values, Escape::Path)
        );
        let mut request = self.http.request(method, &url);
        for (name, value) in &self.settings.headers {
            request = request.header(name, value.expose());
        }
        if let Some(body) = &command.body {
            request = request
                .header("content-type", "application/json")
                .body(render(body, values, Escape::Json));
        }
        // Whatever comes back may echo what was sent: secrets never reach
        // an error message, a log line or a staff email.
        let redact = |text: String| {
            values
                .iter()
                .filter(|(name, value)| name.contains("password") && !value.is_empty())
                .fold(text, |text, (_, value)| text.replace(value, "[hidden]"))
        };
        let response = request
            .send()
            .await
            .map_err(|e| ControllerError::Unreachable(redact(e.without_url().to_string())))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| ControllerError::Unreachable(redact(e.without_url().to_string())))?;
        if !status.is_success() {
            return Err(ControllerError::Refused {
                status: status.as_u16(),
                body: redact(body.chars().take(300).collect()),
            });
        }
        Ok(body)
    }

    fn parse<T: for<'de> Deserialize<'de>>(body: &str) -> Result<T, ControllerError> {
        // The error names the position only: the body may hold a secret.
        serde_json::from_str(body)
            .map_err(|e| ControllerError::Garbage(format!("not the expected JSON ({e})")))
    }

    /// Creates a PBX, or finds the one this request id already made.
    pub async fn create(&self, pbx: &CreatePbx) -> Result<Created, ControllerError> {
        let extensions = pbx.extensions.to_string();
        let body = self
            .call(
                &self.settings.commands.create,
                &[
                    ("request_id", &pbx.request_id),
                    ("plan", &pbx.plan),
                    ("extensions", &extensions),
                    ("gui_password", &pbx.gui_password),
                    ("account", &pbx.account),
                ],
            )
            .await?;
        let created: Created = Self::parse(&body)?;
        if created.id.is_empty() || created.hostname.is_empty() {
            return Err(ControllerError::Garbage("no id or hostname".into()));
        }
        Ok(created)
    }

    /// Stops outbound calling.
    pub async fn suspend_calling(&self, id: &str) -> Result<(), ControllerError> {
        self.call(&self.settings.commands.suspend_calling, &[("id", id)])
            .await
            .map(drop)
    }

    /// Allows outbound calling again.
    pub async fn resume_calling(&self, id: &str) -> Result<(), ControllerError> {
        self.call(&self.settings.commands.resume_calling, &[("id", id)])
            .await
            .map(drop)
    }

    /// Powers the PBX off.
    pub async fn power_off(&self, id: &str) -> Result<(), ControllerError> {
        self.call(&self.settings.commands.power_off, &[("id", id)])
            .await
            .map(drop)
    }

    /// Powers the PBX on.
    pub async fn power_on(&self, id: &str) -> Result<(), ControllerError> {
        self.call(&self.settings.commands.power_on, &[("id", id)])
            .await
            .map(drop)
    }

    /// Sets the PBX's GUI administrator password.
    pub async fn set_gui_password(&self, id: &str, password: &str) -> Result<(), ControllerError> {
        self.call(
            &self.settings.commands.set_gui_password,
            &[("id", id), ("gui_password", password)],
        )
        .await
        .map(drop)
    }

    /// Routes a phone number (E.164) to the PBX. `Misconfigured` when the
    /// command is not configured: staff do it by hand then.
    pub async fn assign_number(&self, id: &str, number: &str) -> Result<(), ControllerError> {
        let command = self
            .settings
            .commands
            .assign_number
            .as_ref()
            .ok_or_else(|| ControllerError::Misconfigured("no assign_number command".into()))?;
        self.call(command, &[("id", id), ("number", number)])
            .await
            .map(drop)
    }

    /// Takes a phone number off the PBX.
    pub async fn unassign_number(&self, id: &str, number: &str) -> Result<(), ControllerError> {
        let command = self
            .settings
            .commands
            .unassign_number
            .as_ref()
            .ok_or_else(|| ControllerError::Misconfigured("no unassign_number command".into()))?;
        self.call(command, &[("id", id), ("number", number)])
            .await
            .map(drop)
    }

    /// Whether numbers are assigned by the controller (else by staff).
    pub fn assigns_numbers(&self) -> bool {
        self.settings.commands.assign_number.is_some()
    }

    /// Whether released numbers are taken off by the controller.
    pub fn unassigns_numbers(&self) -> bool {
        self.settings.commands.unassign_number.is_some()
    }

    /// Whether the PBX is up, its version and uptime.
    pub async fn status(&self, id: &str) -> Result<PbxStatus, ControllerError> {
        let body = self
            .call(&self.settings.commands.status, &[("id", id)])
            .await?;
        Self::parse(&body)
    }

    /// The calls in progress.
    pub async fn live_calls(&self, id: &str) -> Result<Vec<LiveCall>, ControllerError> {
        let body = self
            .call(&self.settings.commands.live_calls, &[("id", id)])
            .await?;
        Self::parse::<LiveCalls>(&body).map(|calls| calls.calls)
    }
}
