//! Money: signed micro-units of an account's currency, never floats, and
//! the ledger that moves it.
//!
//! Rounding happens here and nowhere else: half-even, to cents, when an amount
//! is shown or leaves the system.

pub mod ledger;

use std::fmt;
use std::ops::{Add, Neg, Sub};

/// Micro-units per major unit (1 USD = 1 000 000).
pub const MICROS_PER_UNIT: i64 = 1_000_000;
const MICROS_PER_CENT: i64 = 10_000;

/// An amount in micro-units of some currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// The amount in micro-units.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// An amount given in cents, as card gateways give them.
    pub fn from_cents(cents: i64) -> Money {
        Money(cents.saturating_mul(MICROS_PER_CENT))
    }

    /// Whole cents, rounded half to even: the one rounding rule of Switchboard.
    pub fn to_cents(self) -> i64 {
        let q = self.0.div_euclid(MICROS_PER_CENT);
        let r = self.0.rem_euclid(MICROS_PER_CENT);
        let half = MICROS_PER_CENT / 2;
        if r > half || (r == half && q % 2 != 0) {
            q + 1
        } else {
            q
        }
    }

    /// The amount for people: `-$1,234.57`, `€0.10`, `12.00 CHF`.
    pub fn format(self, currency: &str) -> String {
        let cents = self.to_cents();
        let sign = if cents < 0 { "-" } else { "" };
        let abs = cents.unsigned_abs();
        let units = group_thousands(abs / 100);
        let number = format!("{units}.{:02}", abs % 100);
        match currency_symbol(currency) {
            Some(symbol) => format!("{sign}{symbol}{number}"),
            None => format!("{sign}{number} {currency}"),
        }
    }

    /// Parses a decimal amount typed by a person (`12`, `-3.5`, `0.000001`).
    pub fn parse_decimal(text: &str) -> Result<Money, MoneyError> {
        let text = text.trim().replace(',', "");
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(&text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !is_digits(whole) || !is_digits(fraction) {
            return Err(MoneyError::NotANumber);
        }
        if fraction.len() > 6 {
            return Err(MoneyError::TooPrecise);
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| MoneyError::TooLarge)?
        };
        let fraction_micros: i64 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<6}")
                .parse()
                .map_err(|_| MoneyError::NotANumber)?
        };
        let micros = whole
            .checked_mul(MICROS_PER_UNIT)
            .and_then(|m| m.checked_add(fraction_micros))
            .ok_or(MoneyError::TooLarge)?;
        Ok(Money(if negative { -micros } else { micros }))
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

/// Why a typed amount is not money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("is not a number such as 12.50")]
    NotANumber,
    #[error("has more than six decimal places")]
    TooPrecise,
    #[error("is too large")]
    TooLarge,
}

impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, other: Money) -> Money {
        Money(self.0 - other.0)
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} micro-units", self.0)
    }
}

/// Digits after the decimal point in a currency's smallest unit (ISO 4217).
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

fn currency_symbol(currency: &str) -> Option<&'static str> {
    match currency {
        "USD" | "CAD" | "AUD" | "NZD" => Some("$"),
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        _ => None,
    }
}

fn group_thousands(mut n: u64) -> String {
    let mut groups = Vec::new();
    loop {
        if n < 1000 {
            groups.push(n.to_string());
            break;
        }
        groups.push(format!("{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cents_round_half_to_even() {
        assert_eq!(Money(5_000).to_cents(), 0);
        assert_eq!(Money(15_000).to_cents(), 2);
        assert_eq!(Money(25_000).to_cents(), 2);
        assert_eq!(Money(25_001).to_cents(), 3);
        assert_eq!(Money(-5_000).to_cents(), 0);
        assert_eq!(Money(-15_000).to_cents(), -2);
        assert_eq!(Money(-25_001).to_cents(), -3);
        assert_eq!(Money(1_234_567).to_cents(), 123);
    }

    #[test]
    fn amounts_are_formatted_for_people() {
        assert_eq!(Money(1_234_567_890).format("USD"), "$1,234.57");
        assert_eq!(Money(-100_000).format("EUR"), "-€0.10");
        assert_eq!(Money(12_000_000).format("CHF"), "12.00 CHF");
        assert_eq!(Money(0).format("USD"), "$0.00");
        assert_eq!(Money(-4_999).format("USD"), "$0.00");
    }

    #[test]
    fn typed_amounts_parse_exactly() {
        assert_eq!(Money::parse_decimal("12"), Ok(Money(12_000_000)));
        assert_eq!(Money::parse_decimal("-3.5"), Ok(Money(-3_500_000)));
        assert_eq!(Money::parse_decimal("0.000001"), Ok(Money(1)));
        assert_eq!(Money::parse_decimal("1,000.25"), Ok(Money(1_000_250_000)));
        assert_eq!(Money::parse_decimal(".5"), Ok(Money(500_000)));
        assert_eq!(Money::parse_decimal("abc"), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse_decimal(""), Err(MoneyError::NotANumber));
        assert_eq!(
            Money::parse_decimal("1.0000001"),
            Err(MoneyError::TooPrecise)
        );
        assert_eq!(
            Money::parse_decimal("99999999999999999"),
            Err(MoneyError::TooLarge)
        );
    }

    proptest! {
        #[test]
        fn rounding_is_within_half_a_cent(micros in -1_000_000_000_000i64..1_000_000_000_000) {
            let cents = Money(micros).to_cents();
            let diff = (cents * MICROS_PER_CENT - micros).abs();
            prop_assert!(diff <= MICROS_PER_CENT / 2);
        }

        #[test]
        fn rounding_is_symmetric(micros in -1_000_000_000_000i64..1_000_000_000_000) {
            prop_assert_eq!(Money(-micros).to_cents(), -Money(micros).to_cents());
        }

        #[test]
        fn parsing_what_we_print_in_micros_gives_it_back(micros in -1_000_000_000_000i64..1_000_000_000_000) {
            let sign = if micros < 0 { "-" } else { "" };
            let abs = micros.unsigned_abs();
            let text = format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000);
            prop_assert_eq!(Money::parse_decimal(&text), Ok(Money(micros)));
        }
    }
}
