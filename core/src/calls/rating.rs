//! Rating: what a call costs. Pure functions over plain data.
//!
//! A rate is a destination prefix (longest match wins), a per-minute price, a
//! connection fee, an initial and a subsequent billing increment and a
//! minimum billed duration. Rates are versioned by the moment they take
//! effect; a call is priced by the versions in effect when it started.
//!
//! Billed seconds: an unanswered call (0 seconds) bills nothing. Otherwise
//! the duration is raised to the minimum, then the first `initial` seconds are
//! billed as a block and the rest rounded up to whole `subsequent` blocks.
//! Cost = connection fee + billed seconds × per-minute price / 60, computed
//! exactly in 128 bits from the price as written (nano-units) and rounded
//! once, half to even, to a micro-unit. A cost that does not fit is an
//! error, never a wrapped figure.
//!
//! Numbers are priced as international digits: the PBX's dialling rules
//! (`calls::dialling`) turn what was dialled into them first.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::money::{Money, PerMinute, NANOS_PER_MICRO};

/// One version of a rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    /// The row that holds this version, so a rated call can name it.
    pub id: i64,
    pub prefix: String,
    pub description: String,
    pub per_minute: PerMinute,
    pub connection_fee: Money,
    pub initial_increment: u32,
    pub subsequent_increment: u32,
    pub minimum_duration: u32,
    pub effective_from: DateTime<Utc>,
    /// A version that removes the prefix from the table from `effective_from` on.
    pub removed: bool,
}

/// Seconds billed for `billsec` answered seconds under `rate`.
pub fn billed_seconds(billsec: u32, rate: &Rate) -> u32 {
    if billsec == 0 {
        return 0;
    }
    let duration = billsec.max(rate.minimum_duration);
    let initial = rate.initial_increment.max(1);
    let subsequent = rate.subsequent_increment.max(1);
    if duration <= initial {
        return initial;
    }
    let rest = duration - initial;
    initial + rest.div_ceil(subsequent) * subsequent
}

/// What `billed` seconds cost under `rate`, connection fee included;
/// `None` when the amount does not fit.
pub fn cost(billed: u32, rate: &Rate) -> Option<Money> {
    if billed == 0 {
        return Some(Money::ZERO);
    }
    // Nano-units a minute × seconds / 60 s / 1,000 nano-units a micro-unit.
    let divisor = 60 * i128::from(NANOS_PER_MICRO);
    let numerator = i128::from(billed) * i128::from(rate.per_minute.nanos());
    let quotient = numerator.div_euclid(divisor);
    let remainder = numerator.rem_euclid(divisor);
    let rounded = if 2 * remainder > divisor || (2 * remainder == divisor && quotient % 2 != 0) {
        quotient + 1
    } else {
        quotient
    };
    let usage = i64::try_from(rounded).ok()?;
    rate.connection_fee.checked_add(Money(usage))
}

/// A calling plan's rates, every version, indexed for pricing many calls.
#[derive(Clone, Debug, Default)]
pub struct RateTable {
    /// Versions per prefix, oldest first.
    by_prefix: HashMap<String, Vec<Rate>>,
    longest: usize,
}

/// Why a call could not be priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotPriced {
    /// No rate matches: the call is unrated, never free.
    NoRate,
    /// Its cost does not fit in an amount: the record is refused.
    TooLarge,
}

/// A call priced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced {
    pub rate_id: i64,
    pub prefix: String,
    pub billed_seconds: u32,
    pub cost: Money,
}

impl RateTable {
    /// Indexes rate versions (in any order).
    pub fn new(rates: impl IntoIterator<Item = Rate>) -> RateTable {
        let mut table = RateTable::default();
        for rate in rates {
            table.longest = table.longest.max(rate.prefix.len());
            table
                .by_prefix
                .entry(rate.prefix.clone())
                .or_default()
                .push(rate);
        }
        for versions in table.by_prefix.values_mut() {
            versions.sort_by_key(|r| (r.effective_from, r.id));
        }
        table
    }

    /// The rate in effect for `number` (normalized) at `at`: the longest
    /// prefix whose latest version at that moment is not a removal.
    pub fn rate_for(&self, number: &str, at: DateTime<Utc>) -> Option<&Rate> {
        let top = number.len().min(self.longest);
        (1..=top).rev().find_map(|length| {
            let versions = self.by_prefix.get(&number[..length])?;
            let current = versions.iter().rev().find(|r| r.effective_from <= at)?;
            (!current.removed).then_some(current)
        })
    }

    /// Prices an answered call to `number` (international digits) that
    /// started at `start` and was answered for `billsec` seconds.
    pub fn price(
        &self,
        number: &str,
        start: DateTime<Utc>,
        billsec: u32,
    ) -> Result<Priced, NotPriced> {
        let rate = self.rate_for(number, start).ok_or(NotPriced::NoRate)?;
        let billed = billed_seconds(billsec, rate);
        Ok(Priced {
            rate_id: rate.id,
            prefix: rate.prefix.clone(),
            billed_seconds: billed,
            cost: cost(billed, rate).ok_or(NotPriced::TooLarge)?,
        })
    }

    /// The versions in effect at `at`, one per prefix, sorted by prefix.
    pub fn current(&self, at: DateTime<Utc>) -> Vec<&Rate> {
        let mut rates: Vec<&Rate> = self
            .by_prefix
            .values()
            .filter_map(|versions| versions.iter().rev().find(|r| r.effective_from <= at))
            .filter(|r| !r.removed)
            .collect();
        rates.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 0, 0, 0)
            .single()
            .expect("a date")
    }

    fn rate(
        id: i64,
        prefix: &str,
        per_minute: i64,
        increments: (u32, u32, u32),
        from: u32,
    ) -> Rate {
        Rate {
            id,
            prefix: prefix.into(),
            description: String::new(),
            per_minute: PerMinute(per_minute * NANOS_PER_MICRO),
            connection_fee: Money::ZERO,
            initial_increment: increments.0,
            subsequent_increment: increments.1,
            minimum_duration: increments.2,
            effective_from: at(from),
            removed: false,
        }
    }

    #[test]
    fn increments_and_minimums_round_the_duration_up() {
        let r60 = rate(1, "1", 0, (60, 60, 0), 1);
        assert_eq!(billed_seconds(0, &r60), 0, "unanswered bills nothing");
        assert_eq!(billed_seconds(1, &r60), 60);
        assert_eq!(billed_seconds(60, &r60), 60);
        assert_eq!(billed_seconds(61, &r60), 120);
        let r30_6 = rate(1, "1", 0, (30, 6, 0), 1);
        assert_eq!(billed_seconds(5, &r30_6), 30);
        assert_eq!(billed_seconds(31, &r30_6), 36);
        assert_eq!(billed_seconds(36, &r30_6), 36);
        assert_eq!(billed_seconds(37, &r30_6), 42);
        let r6_6_min60 = rate(1, "1", 0, (6, 6, 60), 1);
        assert_eq!(billed_seconds(7, &r6_6_min60), 60, "the minimum applies");
        assert_eq!(billed_seconds(61, &r6_6_min60), 66);
        let r1_1 = rate(1, "1", 0, (1, 1, 0), 1);
        assert_eq!(billed_seconds(59, &r1_1), 59);
    }

    #[test]
    fn cost_is_the_connection_fee_plus_the_billed_minutes_rounded_once() {
        let mut r = rate(1, "44", 12_000, (60, 60, 0), 1); // $0.012 a minute
        assert_eq!(cost(60, &r), Some(Money(12_000)));
        assert_eq!(cost(90, &r), Some(Money(18_000)));
        r.connection_fee = Money(50_000);
        assert_eq!(cost(60, &r), Some(Money(62_000)));
        assert_eq!(
            cost(0, &r),
            Some(Money::ZERO),
            "an unanswered call costs nothing, not even the fee"
        );
        let odd = rate(1, "1", 7, (1, 1, 0), 1); // 7 micro-units a minute
        assert_eq!(cost(1, &odd), Some(Money(0)), "7/60 rounds to 0");
        assert_eq!(cost(5, &odd), Some(Money(1)), "35/60 rounds to 1");
        let half = rate(1, "1", 6, (1, 1, 0), 1);
        assert_eq!(
            cost(5, &half),
            Some(Money(0)),
            "30/60 is a half: to even, 0"
        );
        assert_eq!(cost(15, &half), Some(Money(2)), "90/60 = 1.5: to even, 2");
    }

    #[test]
    fn prices_with_eight_decimals_are_used_as_written_and_rounded_once() {
        let mut r = rate(1, "44", 0, (1, 1, 0), 1);
        r.per_minute = PerMinute::parse_decimal("0.01234567").expect("a price");
        // 0.01234567 a minute for 61 s = 0.01255143… → 12,551 micro-units;
        // the price cut to six decimals (0.012346) would give 12,552.
        assert_eq!(cost(61, &r), Some(Money(12_551)));
        assert_eq!(cost(3600, &r), Some(Money(740_740)), "0.7407402 → 740,740");
    }

    #[test]
    fn a_cost_that_does_not_fit_is_an_error_never_a_wrapped_figure() {
        let mut r = rate(1, "1", 0, (1, 1, 0), 1);
        r.per_minute = PerMinute(i64::MAX);
        assert_eq!(cost(u32::MAX, &r), None);
        let mut fee = rate(1, "1", 1_000_000, (60, 60, 0), 1);
        fee.connection_fee = Money(i64::MAX);
        assert_eq!(cost(60, &fee), None, "fee plus usage overflows");
        let table = RateTable::new([fee]);
        assert_eq!(
            table.price("15550100199", at(5), 60),
            Err(NotPriced::TooLarge)
        );
    }

    #[test]
    fn the_longest_prefix_wins_and_a_removed_one_falls_back() {
        let mut removed = rate(4, "4479", 0, (1, 1, 0), 10);
        removed.removed = true;
        let table = RateTable::new([
            rate(1, "44", 10_000, (60, 60, 0), 1),
            rate(2, "447", 100_000, (60, 60, 0), 1),
            rate(3, "4479", 150_000, (60, 60, 0), 1),
            removed,
        ]);
        assert_eq!(table.rate_for("442079460958", at(5)).map(|r| r.id), Some(1));
        assert_eq!(table.rate_for("447700900123", at(5)).map(|r| r.id), Some(2));
        assert_eq!(table.rate_for("447900900123", at(5)).map(|r| r.id), Some(3));
        assert_eq!(
            table.rate_for("447900900123", at(11)).map(|r| r.id),
            Some(2),
            "4479 removed on the 10th"
        );
        assert_eq!(
            table.rate_for("33123456789", at(5)),
            None,
            "no rate: unrated, not free"
        );
    }

    #[test]
    fn a_rate_change_mid_month_prices_each_call_by_the_version_of_its_start() {
        let table = RateTable::new([
            rate(1, "1", 10_000, (6, 6, 0), 1),
            rate(2, "1", 20_000, (6, 6, 0), 15),
        ]);
        let before = table.price("15550100199", at(14), 60).expect("rated");
        let after = table.price("15550100199", at(15), 60).expect("rated");
        assert_eq!((before.rate_id, before.cost), (1, Money(10_000)));
        assert_eq!((after.rate_id, after.cost), (2, Money(20_000)));
        assert_eq!(table.current(at(20)).len(), 1);
        assert_eq!(table.current(at(20))[0].id, 2);
        assert_eq!(
            table.price("1555", at(1) - chrono::Duration::days(1), 60),
            Err(NotPriced::NoRate),
            "before any version"
        );
    }

    proptest! {
        #[test]
        fn billed_seconds_cover_the_call_and_fit_the_increments(
            billsec in 1u32..100_000,
            initial in 1u32..120,
            subsequent in 1u32..120,
            minimum in 0u32..300,
        ) {
            let r = rate(1, "1", 0, (initial, subsequent, minimum), 1);
            let billed = billed_seconds(billsec, &r);
            prop_assert!(billed >= billsec && billed >= minimum && billed >= initial);
            prop_assert!(billed == initial || (billed - initial).is_multiple_of(subsequent));
            prop_assert!(billed < billsec.max(minimum).max(initial) + subsequent.max(initial));
        }

        #[test]
        fn cost_is_within_half_a_micro_unit_of_exact(billed in 1u32..1_000_000, nanos in 0i64..100_000_000_000) {
            let mut r = rate(1, "1", 0, (1, 1, 0), 1);
            r.per_minute = PerMinute(nanos);
            let exact = i128::from(billed) * i128::from(nanos);
            let got = i128::from(cost(billed, &r).expect("fits").micros()) * 60_000;
            prop_assert!((got - exact).abs() <= 30_000);
        }
    }
}
