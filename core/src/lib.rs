//! Switchboard's core: the domain, grouped by context, over the database.
//! Everything above it (the GraphQL schema, pages, jobs) goes through these
//! functions; nothing above it writes SQL that moves money.
//!
//! - `calls`: CDRs, their derivation, rating, calling plans, storage, reports
//! - `money`: amounts and the double-entry ledger
//! - `commerce`: plans, orders, PBXs
//! - `people`: accounts, users, passwords, sessions, sign-in
//! - `billing`: recurring charges, automatic top-ups, statements
//! - `standing`: where an account stands, and what follows from it
//! - `numbers`: phone numbers (DIDs): the inventory, orders and releases
//! - `support`: trouble tickets, their threads and the notices they send
//! - the rest are the plumbing every context shares: the database and its
//!   private cluster, configuration, keys, the job queue, the outbox, the
//!   audit log, form errors, safe CSV cells and the shared identifier types.
#![forbid(unsafe_code)]

pub mod audit;
pub mod backup;
pub mod billing;
pub mod calls;
pub mod clock;
pub mod cluster;
pub mod commerce;
pub mod config;
pub mod csv_cell;
pub mod db;
pub mod domain;
pub mod forms;
pub mod keys;
pub mod metrics;
pub mod money;
pub mod numbers;
pub mod outbox;
pub mod people;
pub mod queue;
pub mod schema;
pub mod sealed;
pub mod standing;
pub mod support;

pub use domain::{AccountId, AccountKind, Role, Standing, UserId, Username};
pub use money::Money;
