//! What every page shares: the application state, the request pipeline
//! (sessions, CSRF, security headers, the request log), the layout and
//! stylesheet, sign-in, and the GraphQL endpoint.
#![forbid(unsafe_code)]

use std::sync::Arc;

use switchboard_core::config::Settings;
use switchboard_core::db::Pool;
use switchboard_core::keys::SecretKey;
use switchboard_core::sign_in::Limits;
use switchboard_graphql::SwitchboardSchema;

pub mod api;
pub mod assets;
pub mod auth;
pub mod health;
pub mod layout;
pub mod operations;
pub mod pipeline;

pub use layout::{Nav, Page};
pub use pipeline::PageContext;

/// Everything a request handler may need, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub schema: SwitchboardSchema,
    pub key: SecretKey,
    pub settings: Arc<Settings>,
    pub sign_in_limits: Limits,
}

impl AppState {
    pub fn new(pool: Pool, key: SecretKey, settings: Settings) -> AppState {
        let sign_in_limits = Limits::default();
        AppState {
            schema: switchboard_graphql::schema(pool.clone(), sign_in_limits),
            pool,
            key,
            settings: Arc::new(settings),
            sign_in_limits,
        }
    }

    /// How long an unused session lives.
    pub fn session_lifetime(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.settings.session_hours))
    }
}
