//! Money: signed micro-units of an account's currency, never floats, and
//! the ledger that moves it.
//!
//! Rounding happens here and nowhere else: half-even, to cents, when an amount
//! is shown or leaves the system.

pub mod ledger;

use std::fmt;
use std::ops::Neg;

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

    /// Whole cents, rounded up: what to ask a card for so that at least
    /// this amount arrives (a shortfall to cover, say).
    pub fn cents_up(self) -> i64 {
        self.0.div_euclid(MICROS_PER_CENT) + i64::from(self.0.rem_euclid(MICROS_PER_CENT) > 0)
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

    /// The amount for people with every digit it has, at least cents:
    /// `$0.0042`, `$0.10`, `-$1,234.567891`. For one call's cost, which
    /// rounded to cents may read `$0.00` though it is charged.
    pub fn format_exact(self, currency: &str) -> String {
        let decimal = self.decimal();
        let (sign, unsigned) = match decimal.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", decimal.as_str()),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let fraction = fraction.trim_end_matches('0');
        let whole = group_thousands(whole.parse().unwrap_or(0));
        let number = format!("{whole}.{fraction:0<2}");
        match currency_symbol(currency) {
            Some(symbol) => format!("{sign}{symbol}{number}"),
            None => format!("{sign}{number} {currency}"),
        }
    }

    /// The exact amount as a decimal with six places: `0.012740`, `-3.500000`.
    pub fn decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let unit = MICROS_PER_UNIT as u64;
        format!("{sign}{}.{:06}", abs / unit, abs % unit)
    }

    /// Parses a decimal amount typed by a person (`12`, `-3.5`, `0.000001`).
    pub fn parse_decimal(text: &str) -> Result<Money, MoneyError> {
        parse_scaled(text, 6).map(Money)
    }

    /// The sum, or `None` when it does not fit. Money has no `+`: every
    /// sum is checked, so an overflow is an error and never a wrapped figure.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// The difference, or `None` when it does not fit.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }
}

/// Why a typed amount is not money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("is not a number such as 12.50")]
    NotANumber,
    #[error("has more than {0} decimal places")]
    TooPrecise(u32),
    #[error("is too large")]
    TooLarge,
}

/// A decimal written by a person, in units of 10^-`digits`: `12`, `-3.5`,
/// `1,000.25`. More decimals than `digits` is refused, never rounded.
fn parse_scaled(text: &str, digits: u32) -> Result<i64, MoneyError> {
    let text = text.trim().replace(',', "");
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !is_digits(whole) || !is_digits(fraction) {
        return Err(MoneyError::NotANumber);
    }
    // Trailing zeros carry no precision: 0.012000000 is 0.012.
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > digits as usize {
        return Err(MoneyError::TooPrecise(digits));
    }
    let scale = 10i64.pow(digits);
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| MoneyError::TooLarge)?
    };
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<width$}", width = digits as usize)
            .parse()
            .map_err(|_| MoneyError::NotANumber)?
    };
    let scaled = whole
        .checked_mul(scale)
        .and_then(|m| m.checked_add(fraction))
        .ok_or(MoneyError::TooLarge)?;
    Ok(if negative { -scaled } else { scaled })
}

/// Nano-units (10^-9 of the currency's unit) per unit of a per-minute price.
pub const NANOS_PER_UNIT: i64 = 1_000_000_000;
/// Nano-units per micro-unit.
pub const NANOS_PER_MICRO: i64 = 1_000;

/// A price per minute in nano-units of a currency: carrier price lists
/// write per-minute prices with seven or eight decimals (`0.0123456`), and
/// they are kept exactly as written, to nine. A call's cost is rounded once,
/// to a micro-unit, from the exact product (see `calls::rating`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PerMinute(pub i64);

impl PerMinute {
    pub const ZERO: PerMinute = PerMinute(0);

    /// The price in nano-units a minute.
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// Parses a per-minute price as written (`0.0123456`), to nine decimals.
    pub fn parse_decimal(text: &str) -> Result<PerMinute, MoneyError> {
        parse_scaled(text, 9).map(PerMinute)
    }

    /// The exact decimal, without trailing zeros: `0.0123456`, `1`.
    pub fn decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let unit = NANOS_PER_UNIT as u64;
        let text = format!("{sign}{}.{:09}", abs / unit, abs % unit);
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }

    /// The price for people, with the precision it is stored with but at
    /// least cents: `$0.012`, `$0.0123456`, `$0.10`, `12.50 CHF`.
    pub fn format(self, currency: &str) -> String {
        let decimal = self.decimal();
        let (sign, unsigned) = match decimal.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", decimal.as_str()),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let whole = group_thousands(whole.parse().unwrap_or(0));
        let number = format!("{whole}.{fraction:0<2}");
        match currency_symbol(currency) {
            Some(symbol) => format!("{sign}{symbol}{number}"),
            None => format!("{sign}{number} {currency}"),
        }
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

/// Sums amounts, or `None` when the sum does not fit: never a wrapped figure.
pub fn checked_sum(amounts: impl IntoIterator<Item = Money>) -> Option<Money> {
    amounts
        .into_iter()
        .try_fold(Money::ZERO, |total, m| total.checked_add(m))
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
    fn a_calls_cost_is_shown_with_every_digit_it_has() {
        assert_eq!(Money(4_200).format_exact("USD"), "$0.0042");
        assert_eq!(
            Money(4_200).format("USD"),
            "$0.00",
            "what cents alone would say"
        );
        assert_eq!(Money(100_000).format_exact("EUR"), "€0.10");
        assert_eq!(Money(-1_234_567_891).format_exact("USD"), "-$1,234.567891");
        assert_eq!(Money(0).format_exact("USD"), "$0.00");
        assert_eq!(Money(12_000_001).format_exact("CHF"), "12.000001 CHF");
    }

    #[test]
    fn exact_amounts_are_written_to_the_micro_unit() {
        assert_eq!(Money(12_740).decimal(), "0.012740");
        assert_eq!(Money(-3_500_000).decimal(), "-3.500000");
        assert_eq!(Money(0).decimal(), "0.000000");
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
            Err(MoneyError::TooPrecise(6))
        );
        assert_eq!(
            Money::parse_decimal("1.500000000"),
            Ok(Money(1_500_000)),
            "trailing zeros are no precision"
        );
        assert_eq!(
            Money::parse_decimal("99999999999999999"),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn sums_that_do_not_fit_are_errors_not_wrapped_figures() {
        assert_eq!(Money(i64::MAX).checked_add(Money(1)), None);
        assert_eq!(Money(i64::MIN).checked_sub(Money(1)), None);
        assert_eq!(
            checked_sum([Money(i64::MAX - 1), Money(1)]),
            Some(Money(i64::MAX))
        );
        assert_eq!(checked_sum([Money(i64::MAX), Money(1), Money(-5)]), None);
        assert_eq!(checked_sum([]), Some(Money::ZERO));
    }

    #[test]
    fn release_builds_check_arithmetic_for_overflow() {
        // A `+` somewhere outside Money (seconds, counts) must panic rather
        // than wrap in the builds that run in production too.
        let manifest = include_str!("../../../Cargo.toml");
        let release = manifest
            .split("[profile.release]")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .unwrap_or("");
        assert!(
            release
                .lines()
                .any(|l| l.replace(' ', "") == "overflow-checks=true"),
            "[profile.release] must set overflow-checks = true"
        );
    }

    #[test]
    fn per_minute_prices_keep_the_decimals_carriers_write() {
        assert_eq!(
            PerMinute::parse_decimal("0.0123456"),
            Ok(PerMinute(12_345_600))
        );
        assert_eq!(
            PerMinute::parse_decimal("0.01234567"),
            Ok(PerMinute(12_345_670))
        );
        assert_eq!(
            PerMinute::parse_decimal("0.123456789"),
            Ok(PerMinute(123_456_789))
        );
        assert_eq!(PerMinute::parse_decimal("2"), Ok(PerMinute(2_000_000_000)));
        assert_eq!(
            PerMinute::parse_decimal("0.0000000001"),
            Err(MoneyError::TooPrecise(9))
        );
        assert_eq!(PerMinute(12_345_600).decimal(), "0.0123456");
        assert_eq!(PerMinute(12_000_000).format("USD"), "$0.012");
        assert_eq!(PerMinute(31_000_000).format("USD"), "$0.031");
        assert_eq!(PerMinute(29_000_000).format("USD"), "$0.029");
        assert_eq!(PerMinute(100_000_000).format("USD"), "$0.10");
        assert_eq!(PerMinute(6_000_000).format("USD"), "$0.006");
        assert_eq!(PerMinute(12_500_000_000).format("CHF"), "12.50 CHF");
        assert_eq!(PerMinute(0).format("EUR"), "€0.00");
    }

    proptest! {
        #[test]
        fn per_minute_prices_read_back_what_they_print(nanos in 0i64..1_000_000_000_000) {
            prop_assert_eq!(PerMinute::parse_decimal(&PerMinute(nanos).decimal()), Ok(PerMinute(nanos)));
        }

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
