//! People: accounts (who pays) and their short lists read together (the
//! client home's), users (who signs in), their passwords, second factors,
//! sessions, sign-in limits and single sign-on, and what clients change
//! themselves (their profile, a new email address, a forgotten password).

pub mod accounts;
pub mod email_changes;
pub mod overview;
pub mod password_resets;
pub mod passwords;
pub mod recovery;
pub mod sessions;
pub mod sign_in;
pub mod single_sign_on;
pub mod two_factor;
pub mod users;
