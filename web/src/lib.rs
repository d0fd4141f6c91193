//! What every page shares: the application state, the request pipeline
//! (sessions, CSRF, security headers, the request log), the layout and
//! stylesheet, sign-in, and the GraphQL endpoint.
#![forbid(unsafe_code)]

use std::sync::Arc;

use switchboard_core::calls::calling_plans::RateTables;
use switchboard_core::commerce::catalogue::Catalogue;
use switchboard_core::config::Settings;
use switchboard_core::db::Pool;
use switchboard_core::keys::SecretKey;
use switchboard_core::people::sign_in::Limits;
use switchboard_graphql::{Commerce, SwitchboardSchema};
use switchboard_payments::Gateway;

pub mod api;
pub mod assets;
pub mod auth;
pub mod gui_password;
pub mod health;
pub mod layout;
pub mod metrics;
pub mod notice;
pub mod operations;
pub mod pipeline;
pub mod recovery;
pub mod routes;
pub mod sso;
pub mod support;
pub mod two_factor;
pub mod webhooks;

pub use layout::{Nav, Page};
pub use pipeline::PageContext;

/// Everything a request handler may need, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub schema: SwitchboardSchema,
    /// The schema for the pages' own query texts once `schema` accepted
    /// them (see `operations`).
    pub accepted_texts_schema: SwitchboardSchema,
    pub key: SecretKey,
    pub settings: Arc<Settings>,
    pub sign_in_limits: Limits,
    pub gateway: Gateway,
    /// Calling plans' rate tables, shared by every way CDRs come in.
    pub rate_tables: RateTables,
    /// The OpenID provider staff may sign in through, when one is set up.
    pub sso: Option<sso::Provider>,
    /// Sessions used and not yet extended.
    pub session_activity: Arc<switchboard_core::people::sessions::Activity>,
    /// The plans on sale kept in memory, trusted while changes are heard.
    pub catalogue: Catalogue,
}

impl AppState {
    /// The state for these settings; fails when the payment gateway is
    /// misconfigured.
    pub fn new(pool: Pool, key: SecretKey, settings: Settings) -> anyhow::Result<AppState> {
        let sign_in_limits = Limits::default();
        let settings = Arc::new(settings);
        let gateway = Gateway::from_settings(&settings)?;
        let controller = match &settings.controller.base_url {
            Some(url) => Some(switchboard_controller::Controller::new(
                &settings.controller,
                url,
            )?),
            None => None,
        };
        let rate_tables = RateTables::default();
        let catalogue = Catalogue::default();
        let sso = match &settings.sso {
            Some(sso) => Some(sso::Provider::new(sso, settings.base_url())?),
            None => None,
        };
        let commerce = Commerce {
            key: key.clone(),
            gateway: gateway.clone(),
            settings: settings.clone(),
            controller,
            status_cache: Arc::default(),
            rate_tables: rate_tables.clone(),
            catalogue: catalogue.clone(),
        };
        Ok(AppState {
            accepted_texts_schema: switchboard_graphql::schema_for_accepted_texts(
                pool.clone(),
                sign_in_limits,
                commerce.clone(),
            ),
            schema: switchboard_graphql::schema(pool.clone(), sign_in_limits, commerce),
            pool,
            key,
            settings,
            sign_in_limits,
            gateway,
            rate_tables,
            sso,
            session_activity: Arc::default(),
            catalogue,
        })
    }

    /// Starts hearing changes to the catalogue from the database at `url`,
    /// so the storefront can serve the plans from memory; until this runs
    /// (and whenever its connection is down) they are read on every visit.
    pub fn follow_catalogue_changes(&self, url: &str) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.catalogue.clone().follow_changes(url.to_owned()))
    }

    /// How long an unused session lives.
    pub fn session_lifetime(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.settings.session_hours))
    }

    /// How long a session lasts at most, used or not.
    pub fn session_max_age(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.settings.session_max_hours))
    }
}
