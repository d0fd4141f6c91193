//! People: accounts (who pays), users (who signs in), their passwords,
//! sessions and sign-in limits.

pub mod accounts;
pub mod password_resets;
pub mod passwords;
pub mod sessions;
pub mod sign_in;
pub mod two_factor;
pub mod users;
