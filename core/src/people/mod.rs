//! People: accounts (who pays), users (who signs in), their passwords,
//! second factors, sessions, sign-in limits and single sign-on.

pub mod accounts;
pub mod password_resets;
pub mod passwords;
pub mod sessions;
pub mod sign_in;
pub mod single_sign_on;
pub mod two_factor;
pub mod users;
