//! Switchboard's core: the domain types, the database, the ledger and
//! sign-in. Everything above it (the GraphQL schema, pages, jobs) goes through
//! these functions; nothing above it writes SQL that moves money.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod audit;
pub mod call_records;
pub mod calling_plans;
pub mod cdr;
pub mod cluster;
pub mod config;
pub mod db;
pub mod domain;
pub mod forms;
pub mod keys;
pub mod ledger;
pub mod money;
pub mod orders;
pub mod outbox;
pub mod passwords;
pub mod pbxes;
pub mod plans;
pub mod queue;
pub mod rate_csv;
pub mod rating;
pub mod schema;
pub mod sessions;
pub mod sign_in;
pub mod users;

pub use domain::{AccountId, AccountKind, Role, Standing, UserId, Username};
pub use money::Money;
