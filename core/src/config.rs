//! Settings, layered: defaults, then an optional TOML file, then
//! `SWITCHBOARD_*` environment variables (nested with `__`), then the command
//! line.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// A value that must never reach a log: `Debug` and `Display` hide it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

/// Development allows the conveniences of a demo; production refuses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Development,
    Production,
}

/// Everything Switchboard can be told at start-up.
#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    /// Address the web server listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The address people reach the portal at; `https://` makes cookies `Secure`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Holds the private PostgreSQL cluster, the secret key and other state.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// An existing PostgreSQL server; without it Switchboard runs its own.
    #[serde(default)]
    pub database_url: Option<Secret>,
    /// Signs sessions and encrypts secrets at rest: 64 hex digits. Generated
    /// into the data folder when not given.
    #[serde(default)]
    pub secret_key: Option<Secret>,
    #[serde(default)]
    pub mode: Mode,
    /// A `tracing` filter such as `info` or `switchboard=debug,info`.
    #[serde(default = "default_log")]
    pub log: String,
    /// How long a session lasts without being used, in hours.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
    /// How long a session lasts at most, however much it is used, in hours.
    #[serde(default = "default_session_max_hours")]
    pub session_max_hours: u32,
    /// Connections in the database pool.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How email leaves.
    #[serde(default)]
    pub email: EmailSettings,
    /// Load balancers or proxies in front of Switchboard: from these peers the
    /// client address is taken from `X-Forwarded-For`.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The hosting controller that runs the PBXs.
    #[serde(default)]
    pub controller: ControllerSettings,
    /// How customers pay.
    #[serde(default)]
    pub payments: PaymentSettings,
    /// How CDRs are pulled from PBXs' Asterisk CDR tables.
    #[serde(default)]
    pub cdr_pull: CdrPullSettings,
    /// Scheduled backups, and the passphrase that seals the key in every backup.
    #[serde(default)]
    pub backups: BackupSettings,
    /// Single sign-on for staff through an OpenID provider; off when not set.
    #[serde(default)]
    pub sso: Option<SsoSettings>,
    /// Adding funds, and the standing rules' periods.
    #[serde(default)]
    pub billing: BillingSettings,
    /// Who may read `/metrics`.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Phone numbers: how long a released one rests before it is sold again.
    #[serde(default)]
    pub numbers: NumberSettings,
}

/// Phone numbers' settings.
#[derive(Clone, Debug, Deserialize)]
pub struct NumberSettings {
    /// Days a released number stays out of the inventory, so calls meant for
    /// its last owner do not reach the next.
    #[serde(default = "default_quarantine_days")]
    pub quarantine_days: u32,
}

impl Default for NumberSettings {
    fn default() -> NumberSettings {
        NumberSettings {
            quarantine_days: default_quarantine_days(),
        }
    }
}

fn default_quarantine_days() -> u32 {
    30
}

/// An OpenID Connect provider staff may sign in through. A provider's user
/// signs in as the staff member or admin with the same verified email;
/// nobody is ever created from it.
#[derive(Clone, Debug, Deserialize)]
pub struct SsoSettings {
    /// The provider's issuer, e.g. `https://accounts.example.com`: its
    /// `/.well-known/openid-configuration` says the rest.
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// What the sign-in page's button says.
    #[serde(default = "default_sso_label")]
    pub label: String,
}

fn default_sso_label() -> String {
    "Sign in with your company account".into()
}

/// Adding funds and the periods of the standing rules.
#[derive(Clone, Debug, Deserialize)]
pub struct BillingSettings {
    /// The smallest amount a client may add at once, in whole units of the
    /// account's currency.
    #[serde(default = "default_top_up_min")]
    pub top_up_min: u32,
    /// The largest, likewise.
    #[serde(default = "default_top_up_max")]
    pub top_up_max: u32,
    /// Days from calling suspended to powered off, while the balance stays unpaid.
    #[serde(default = "default_grace_days")]
    pub grace_days: u32,
    /// Days from powered off to staff being told the account is due for termination.
    #[serde(default = "default_termination_days")]
    pub termination_days: u32,
    /// The starting call credit the cart offers, in whole units (0 is "none").
    #[serde(default = "default_starting_credit")]
    pub starting_credit: Vec<u32>,
    /// The one chosen unless the visitor picks another.
    #[serde(default = "default_starting_credit_chosen")]
    pub starting_credit_chosen: u32,
}

impl Default for BillingSettings {
    fn default() -> BillingSettings {
        BillingSettings {
            top_up_min: default_top_up_min(),
            top_up_max: default_top_up_max(),
            grace_days: default_grace_days(),
            termination_days: default_termination_days(),
            starting_credit: default_starting_credit(),
            starting_credit_chosen: default_starting_credit_chosen(),
        }
    }
}

impl BillingSettings {
    /// The standing rules' periods.
    pub fn periods(&self) -> crate::standing::Periods {
        crate::standing::Periods {
            grace: chrono::Duration::days(i64::from(self.grace_days)),
            termination: chrono::Duration::days(i64::from(self.termination_days)),
        }
    }
}

fn default_top_up_min() -> u32 {
    10
}
fn default_top_up_max() -> u32 {
    1_000
}
fn default_grace_days() -> u32 {
    7
}
fn default_termination_days() -> u32 {
    30
}
fn default_starting_credit() -> Vec<u32> {
    vec![0, 10, 25, 50]
}
fn default_starting_credit_chosen() -> u32 {
    25
}

/// `/metrics`, in Prometheus' text format: off the public listener, or
/// behind a token on it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct MetricsSettings {
    /// An address of its own that serves only `/metrics`, without a token
    /// (keep it off the public network: `127.0.0.1:9464`, say).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// On the public listener, `/metrics` answers only a request with
    /// `Authorization: Bearer` and this token; without it, it is not there.
    #[serde(default)]
    pub token: Option<Secret>,
}

/// Pulling PBXs' CDR tables.
#[derive(Clone, Debug, Deserialize)]
pub struct CdrPullSettings {
    /// Rows read in one pull; a full batch queues the next pull at once.
    #[serde(default = "default_pull_batch")]
    pub batch: usize,
    /// How far back each pull reads before the end of the last call seen,
    /// for rows Asterisk writes late (its CDR batch mode holds rows up to
    /// five minutes by default).
    #[serde(default = "default_pull_overlap")]
    pub overlap_minutes: u32,
}

impl Default for CdrPullSettings {
    fn default() -> CdrPullSettings {
        CdrPullSettings {
            batch: default_pull_batch(),
            overlap_minutes: default_pull_overlap(),
        }
    }
}

/// Backups: scheduled ones when `folder` is set; the passphrase serves
/// `switchboard backup` and `restore` too.
#[derive(Clone, Debug, Deserialize)]
pub struct BackupSettings {
    /// Where scheduled backups go; none are taken without it.
    #[serde(default)]
    pub folder: Option<PathBuf>,
    /// When, as a cron expression with seconds (UTC): default daily at 03:00.
    #[serde(default = "default_backup_schedule")]
    pub schedule: String,
    /// How many scheduled backups are kept; older ones are deleted.
    #[serde(default = "default_backup_keep")]
    pub keep: usize,
    /// Seals the secret key inside each backup; without it backups hold no
    /// key, and the key must be kept safe apart.
    #[serde(default)]
    pub passphrase: Option<Secret>,
}

impl Default for BackupSettings {
    fn default() -> BackupSettings {
        BackupSettings {
            folder: None,
            schedule: default_backup_schedule(),
            keep: default_backup_keep(),
            passphrase: None,
        }
    }
}

fn default_pull_batch() -> usize {
    20_000
}

fn default_pull_overlap() -> u32 {
    10
}

fn default_backup_schedule() -> String {
    "0 0 3 * * *".into()
}
fn default_backup_keep() -> usize {
    7
}

/// The hosting controller: where its commands go and what they look like.
/// Each command's method, path and body are templates (see the README's
/// controller contract); the defaults are the reference contract.
#[derive(Clone, Debug, Deserialize, Default)]
pub struct ControllerSettings {
    /// The controller's base URL. Without one, development runs the built-in
    /// simulator; production refuses to start.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Seconds before a command counts as failed.
    #[serde(default = "default_controller_timeout")]
    pub timeout_seconds: u64,
    /// Headers sent with every command (an API key, say); values are secret.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Secret>,
    #[serde(default)]
    pub commands: ControllerCommands,
}

/// One templated HTTP command.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct CommandTemplate {
    pub method: String,
    /// Appended to the base URL; `{id}` and the like are filled in, URL-encoded.
    pub path: String,
    /// A JSON body; placeholders are filled in JSON-escaped.
    #[serde(default)]
    pub body: Option<String>,
}

fn command(method: &str, path: &str, body: Option<&str>) -> CommandTemplate {
    CommandTemplate {
        method: method.into(),
        path: path.into(),
        body: body.map(Into::into),
    }
}

/// Every command Switchboard sends.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ControllerCommands {
    pub create: CommandTemplate,
    pub suspend_calling: CommandTemplate,
    pub resume_calling: CommandTemplate,
    pub power_off: CommandTemplate,
    pub power_on: CommandTemplate,
    pub set_gui_password: CommandTemplate,
    pub status: CommandTemplate,
    pub live_calls: CommandTemplate,
    /// Routes a phone number to a PBX; without it staff configure numbers
    /// by hand and mark them active.
    pub assign_number: Option<CommandTemplate>,
    /// Takes a released number off its PBX; without it staff are told to.
    pub unassign_number: Option<CommandTemplate>,
}

impl Default for ControllerCommands {
    fn default() -> ControllerCommands {
        ControllerCommands {
            create: command(
                "POST",
                "/pbxes",
                Some(
                    r#"{"request_id":"{request_id}","plan":"{plan}","extensions":{extensions},"gui_password":"{gui_password}","account":"{account}"}"#,
                ),
            ),
            suspend_calling: command("POST", "/pbxes/{id}/calling/suspend", None),
            resume_calling: command("POST", "/pbxes/{id}/calling/resume", None),
            power_off: command("POST", "/pbxes/{id}/power/off", None),
            power_on: command("POST", "/pbxes/{id}/power/on", None),
            set_gui_password: command(
                "PUT",
                "/pbxes/{id}/gui-password",
                Some(r#"{"password":"{gui_password}"}"#),
            ),
            status: command("GET", "/pbxes/{id}", None),
            live_calls: command("GET", "/pbxes/{id}/calls", None),
            assign_number: None,
            unassign_number: None,
        }
    }
}

impl ControllerCommands {
    /// The reference contract's number commands (the simulator speaks
    /// them): `POST /pbxes/{id}/numbers` with the number, and `DELETE
    /// /pbxes/{id}/numbers/{number}`.
    pub fn reference_number_commands() -> (CommandTemplate, CommandTemplate) {
        (
            command(
                "POST",
                "/pbxes/{id}/numbers",
                Some(r#"{"number":"{number}"}"#),
            ),
            command("DELETE", "/pbxes/{id}/numbers/{number}", None),
        )
    }
}

fn default_controller_timeout() -> u64 {
    10
}

/// Which gateway takes payments, and Stripe's settings.
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentSettings {
    /// `test` (the built-in test gateway, refused in production) or `stripe`.
    #[serde(default = "default_gateway")]
    pub gateway: String,
    #[serde(default)]
    pub stripe: StripeSettings,
}

impl Default for PaymentSettings {
    fn default() -> PaymentSettings {
        PaymentSettings {
            gateway: default_gateway(),
            stripe: StripeSettings::default(),
        }
    }
}

fn default_gateway() -> String {
    "test".into()
}

/// Stripe's API keys and address.
#[derive(Clone, Debug, Deserialize)]
pub struct StripeSettings {
    /// `sk_live_…` or `sk_test_…`.
    #[serde(default)]
    pub secret_key: Option<Secret>,
    /// `whsec_…`, from the webhook endpoint's settings at Stripe.
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
    /// Stripe's API address; changed only to talk to a stand-in in tests.
    #[serde(default = "default_stripe_api")]
    pub api_base: String,
}

impl Default for StripeSettings {
    fn default() -> StripeSettings {
        StripeSettings {
            secret_key: None,
            webhook_secret: None,
            api_base: default_stripe_api(),
        }
    }
}

fn default_stripe_api() -> String {
    "https://api.stripe.com/".into()
}

/// Email: SMTP when `smtp` is set, otherwise `.eml` files in `<data_dir>/outbox`.
#[derive(Clone, Debug, Deserialize)]
pub struct EmailSettings {
    /// The sender of every message.
    #[serde(default = "default_from")]
    pub from: String,
    /// Where notices for staff go.
    #[serde(default = "default_staff_address")]
    pub staff_address: String,
    #[serde(default)]
    pub smtp: Option<SmtpSettings>,
}

impl Default for EmailSettings {
    fn default() -> EmailSettings {
        EmailSettings {
            from: default_from(),
            staff_address: default_staff_address(),
            smtp: None,
        }
    }
}

/// An SMTP server.
#[derive(Clone, Debug, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    /// Default: 587 with STARTTLS, 465 with TLS, 25 with none.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Seconds to wait for the server before counting an attempt as failed.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_seconds: u64,
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection: only for a relay on the same machine or in tests.
    None,
    #[default]
    Starttls,
    Tls,
}

fn default_from() -> String {
    "Switchboard <noreply@switchboard.invalid>".into()
}
fn default_staff_address() -> String {
    "staff@switchboard.invalid".into()
}
fn default_smtp_timeout() -> u64 {
    15
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_base_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./switchboard-data")
}
fn default_log() -> String {
    "info,tokio_cron_scheduler=warn".into()
}
fn default_session_hours() -> u32 {
    12
}
fn default_session_max_hours() -> u32 {
    7 * 24
}
fn default_pool_size() -> usize {
    16
}

/// What the command line may set; `None` leaves the lower layers' value.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

impl Settings {
    /// Reads the layers in order; a named file that is missing is an error.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Settings> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            anyhow::ensure!(
                file.is_file(),
                "the configuration file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        let figment = figment
            .merge(Env::prefixed("SWITCHBOARD_").split("__"))
            .merge(Serialized::defaults(overrides));
        let mut settings: Settings = figment
            .extract()
            .context("the configuration is not valid")?;
        // Unless told otherwise, people reach the server where it listens,
        // so links and the sign-in address follow `--listen`.
        if !figment.contains("base_url") && settings.listen.port() != 0 {
            let mut reachable = settings.listen;
            if reachable.ip().is_unspecified() {
                reachable.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            settings.base_url = format!("http://{reachable}");
        }
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.base_url.starts_with("http://") || self.base_url.starts_with("https://"),
            "base_url must start with http:// or https://"
        );
        anyhow::ensure!(self.session_hours > 0, "session_hours must be at least 1");
        anyhow::ensure!(
            self.session_max_hours >= self.session_hours,
            "session_max_hours must be at least session_hours"
        );
        anyhow::ensure!(self.pool_size > 0, "pool_size must be at least 1");
        anyhow::ensure!(self.backups.keep > 0, "backups.keep must be at least 1");
        anyhow::ensure!(
            self.billing.top_up_min > 0 && self.billing.top_up_min <= self.billing.top_up_max,
            "billing.top_up_min must be at least 1 and at most billing.top_up_max"
        );
        anyhow::ensure!(
            self.billing
                .starting_credit
                .contains(&self.billing.starting_credit_chosen),
            "billing.starting_credit_chosen must be one of billing.starting_credit"
        );
        anyhow::ensure!(
            self.metrics
                .token
                .as_ref()
                .is_none_or(|t| t.expose().len() >= 16),
            "metrics.token must be at least 16 characters"
        );
        match self.payments.gateway.as_str() {
            "test" => anyhow::ensure!(
                self.mode == Mode::Development,
                "the test payment gateway is refused in production mode: set payments.gateway = \"stripe\""
            ),
            "stripe" => anyhow::ensure!(
                self.payments.stripe.secret_key.is_some() && self.payments.stripe.webhook_secret.is_some(),
                "payments.gateway = \"stripe\" needs payments.stripe.secret_key and payments.stripe.webhook_secret"
            ),
            other => anyhow::bail!("payments.gateway must be \"test\" or \"stripe\", not {other:?}"),
        }
        if let Some(sso) = &self.sso {
            anyhow::ensure!(
                sso.issuer_url.starts_with("https://")
                    || (self.mode == Mode::Development && sso.issuer_url.starts_with("http://")),
                "sso.issuer_url must start with https:// (http:// only in development)"
            );
            anyhow::ensure!(!sso.client_id.trim().is_empty(), "sso.client_id is empty");
        }
        anyhow::ensure!(
            self.mode == Mode::Development || self.controller.base_url.is_some(),
            "production mode needs controller.base_url (the built-in simulator is for development)"
        );
        Ok(())
    }

    /// Whether cookies must carry `Secure`.
    pub fn https(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load(file: Option<&str>, overrides: &Overrides) -> Result<Settings, String> {
        Settings::load(file.map(Path::new), overrides).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn defaults_need_no_configuration() {
        Jail::expect_with(|_| {
            let settings = load(None, &Overrides::default())?;
            assert_eq!(settings.listen, default_listen());
            assert_eq!(settings.data_dir, PathBuf::from("./switchboard-data"));
            assert_eq!(settings.mode, Mode::Development);
            assert!(settings.database_url.is_none());
            Ok(())
        });
    }

    #[test]
    fn the_environment_overrides_the_file_and_the_command_line_overrides_both() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "switchboard.toml",
                concat!(
                    "base_url = \"https://pbx.example.com\"\nmode = \"production\"\n",
                    "data_dir = \"/srv/a\"\nlog = \"warn\"\n",
                    "[payments]\ngateway = \"stripe\"\n",
                    "[payments.stripe]\nsecret_key = \"sk_test_1\"\nwebhook_secret = \"whsec_1\"\n",
                    "[controller]\nbase_url = \"https://controller.example.com\"\n",
                ),
            )?;
            jail.set_env("SWITCHBOARD_DATA_DIR", "/srv/b");
            jail.set_env("SWITCHBOARD_LOG", "debug");
            let settings = load(Some("switchboard.toml"), &Overrides::default())?;
            assert!(settings.https());
            assert_eq!(settings.mode, Mode::Production);
            assert_eq!(settings.data_dir, PathBuf::from("/srv/b"));
            assert_eq!(settings.log, "debug");
            let overrides = Overrides {
                data_dir: Some("/srv/c".into()),
                ..Overrides::default()
            };
            let settings = load(Some("switchboard.toml"), &overrides)?;
            assert_eq!(settings.data_dir, PathBuf::from("/srv/c"));
            Ok(())
        });
    }

    #[test]
    fn the_address_people_use_follows_the_listening_one_unless_it_is_set() {
        Jail::expect_with(|jail| {
            let listening = Overrides {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 18080))),
                ..Overrides::default()
            };
            assert_eq!(load(None, &listening)?.base_url(), "http://127.0.0.1:18080");
            assert_eq!(
                load(None, &Overrides::default())?.base_url(),
                "http://127.0.0.1:8080"
            );
            let everywhere = Overrides {
                listen: Some(SocketAddr::from(([0, 0, 0, 0], 9000))),
                ..Overrides::default()
            };
            assert_eq!(load(None, &everywhere)?.base_url(), "http://127.0.0.1:9000");
            jail.set_env("SWITCHBOARD_BASE_URL", "https://pbx.example.com");
            assert_eq!(
                load(None, &listening)?.base_url(),
                "https://pbx.example.com"
            );
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_or_a_bad_value_is_refused_with_a_reason() {
        Jail::expect_with(|jail| {
            let missing = load(Some("nowhere.toml"), &Overrides::default());
            assert!(missing.expect_err("refused").contains("does not exist"));
            jail.set_env("SWITCHBOARD_BASE_URL", "ftp://x");
            let bad = load(None, &Overrides::default());
            assert!(bad.expect_err("refused").contains("base_url"));
            jail.set_env("SWITCHBOARD_BASE_URL", "http://x");
            jail.set_env("SWITCHBOARD_LISTEN", "not an address");
            let bad = load(None, &Overrides::default());
            let why = bad.expect_err("refused");
            assert!(why.contains("LISTEN"), "{why}");
            Ok(())
        });
    }

    #[test]
    fn production_refuses_the_test_gateway_and_the_simulator() {
        Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_MODE", "production");
            let refused = load(None, &Overrides::default()).expect_err("refused");
            assert!(
                refused.contains("test payment gateway is refused in production"),
                "{refused}"
            );
            jail.set_env("SWITCHBOARD_PAYMENTS__GATEWAY", "stripe");
            jail.set_env("SWITCHBOARD_PAYMENTS__STRIPE__SECRET_KEY", "sk_test_1");
            jail.set_env("SWITCHBOARD_PAYMENTS__STRIPE__WEBHOOK_SECRET", "whsec_1");
            let refused = load(None, &Overrides::default()).expect_err("refused");
            assert!(refused.contains("controller.base_url"), "{refused}");
            jail.set_env(
                "SWITCHBOARD_CONTROLLER__BASE_URL",
                "https://controller.example.com",
            );
            let settings = load(None, &Overrides::default())?;
            assert_eq!(settings.payments.gateway, "stripe");
            assert!(!format!("{settings:?}").contains("sk_test_1"));
            Ok(())
        });
    }

    #[test]
    fn one_controller_command_can_be_replaced_and_the_rest_keep_the_contract() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "switchboard.toml",
                "[controller.commands.create]\nmethod = \"PUT\"\npath = \"/v2/instances/{request_id}\"\n",
            )?;
            let settings = load(Some("switchboard.toml"), &Overrides::default())?;
            assert_eq!(settings.controller.commands.create.method, "PUT");
            assert_eq!(settings.controller.commands.create.body, None);
            assert_eq!(settings.controller.commands.status.path, "/pbxes/{id}");
            Ok(())
        });
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_DATABASE_URL", "postgres://u:hunter2@db/x");
            let settings = load(None, &Overrides::default())?;
            assert!(!format!("{settings:?}").contains("hunter2"));
            assert_eq!(
                settings.database_url.as_ref().map(Secret::expose),
                Some("postgres://u:hunter2@db/x")
            );
            Ok(())
        });
    }
}
