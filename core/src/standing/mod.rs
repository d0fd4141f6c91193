//! Standing: where an account stands, driven by its balance and time
//! (`rules`, pure), and the review that applies the rules to an account,
//! records each change with its time and cause, tells people, and queues
//! the controller's commands (`review`); and the admins' manual switch that
//! overrides it (`switch`).

pub mod review;
pub mod rules;
pub mod switch;

pub use review::{accounts_to_review, history, review, Change, Policy};
pub use rules::{Cause, Facts, Periods, Step};
