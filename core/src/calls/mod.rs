//! Calls: reading CDRs as Asterisk writes them, deriving what they mean,
//! rating them against calling plans, storing and billing them, and summing
//! them for reports.

pub mod calling_plans;
pub mod cdr;
pub mod dialling;
pub mod months;
pub mod pulling;
pub mod rate_csv;
pub mod rating;
mod records;

pub use records::*;
