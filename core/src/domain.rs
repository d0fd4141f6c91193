//! Small validated types shared by every layer.

use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An account: who pays.
    AccountId
);
id_type!(
    /// A user: who signs in.
    UserId
);

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What a user may do; see the roles table in DESIGN.md.
    Role {
        Client => "client",
        Reseller => "reseller",
        Staff => "staff",
        Admin => "admin",
    }
);

impl Role {
    /// Staff and admins work for the company and belong to no account.
    pub fn is_company(self) -> bool {
        matches!(self, Role::Staff | Role::Admin)
    }
}

text_enum!(
    /// Retail accounts are end customers; wholesale accounts resell.
    AccountKind {
        Retail => "retail",
        Wholesale => "wholesale",
    }
);

text_enum!(
    /// Where an account stands, driven by its balance and time.
    Standing {
        Good => "good",
        Low => "low",
        CallingSuspended => "calling_suspended",
        PoweredOff => "powered_off",
    }
);

/// A stored text that names no known value: the database and the code disagree.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// A login name: 3 to 40 letters, digits, `.`, `_` or `-`, starting with a
/// letter or digit. Compared case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Username, &'static str> {
        let text = text.trim();
        if text.len() < 3 {
            return Err("must be at least 3 characters");
        }
        if text.len() > 40 {
            return Err("must be at most 40 characters");
        }
        if !text.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("must start with a letter or a digit");
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("may hold only letters, digits, '.', '_' and '-'");
        }
        Ok(Username(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness and look-ups.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, checked only for shape: the mail server is the judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Email, &'static str> {
        let text = text.trim();
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err("must look like name@example.com");
        };
        if local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
            || text.len() > 254
        {
            return Err("must look like name@example.com");
        }
        Ok(Email(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A three-letter ISO 4217 currency code.
pub fn parse_currency(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(text.to_owned())
    } else {
        Err("must be a three-letter currency code such as USD")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_validated_and_compared_without_case() {
        assert_eq!(
            Username::parse(" Alice ").map(|u| u.key()),
            Ok("alice".into())
        );
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("-alice").is_err());
        assert!(Username::parse("alice smith").is_err());
        assert!(Username::parse(&"a".repeat(41)).is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_domain() {
        assert!(Email::parse("a@example.com").is_ok());
        assert!(Email::parse("example.com").is_err());
        assert!(Email::parse("a@b").is_err());
        assert!(Email::parse("a b@example.com").is_err());
    }

    #[test]
    fn enums_round_trip_through_their_stored_text() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(*role));
        }
        for standing in Standing::ALL {
            assert_eq!(standing.as_str().parse::<Standing>().ok(), Some(*standing));
        }
        assert!("owner".parse::<Role>().is_err());
    }
}
