//! The standing state machine, as a pure function (DESIGN.md, Standing).
//! Driven by the balance and time, never by hand:
//!
//! - `good` while the balance is at or above the account's threshold;
//! - `low` below it (the notice goes out once per crossing; an automatic
//!   top-up is tried);
//! - `calling_suspended` once the balance is below zero minus the credit
//!   limit (every PBX stops outbound calls);
//! - `powered_off` when it is still there a grace period after calling was
//!   suspended (every PBX is powered off);
//! - a further period after the power-off, staff are told the account is
//!   due for termination; nothing is deleted;
//! - a payment that brings the balance back to zero minus the credit limit
//!   or above restores the account: to `low` or `good` as the balance says,
//!   PBXs powered on, then calling resumed.

use chrono::{DateTime, Duration, Utc};

use crate::domain::Standing;
use crate::money::Money;

/// The periods the rules wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Periods {
    /// From calling suspended to powered off.
    pub grace: Duration,
    /// From powered off to staff being told the account is due for termination.
    pub termination: Duration,
}

/// What the rules look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub standing: Standing,
    /// When the current standing began.
    pub since: DateTime<Utc>,
    pub balance: Money,
    pub threshold: Money,
    pub credit_limit: Money,
    /// Staff were told of this power-off already.
    pub termination_notice_sent: bool,
}

/// Why the standing changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    BelowThreshold,
    BelowCreditLimit,
    GracePeriodOver,
    PaidBack,
    AboveThreshold,
}

impl Cause {
    /// The cause as staff and the client read it.
    pub fn describe(self) -> &'static str {
        match self {
            Cause::BelowThreshold => "the balance fell below the low-balance threshold",
            Cause::BelowCreditLimit => "the balance fell below zero minus the credit limit",
            Cause::GracePeriodOver => "the balance was still unpaid when the grace period ended",
            Cause::PaidBack => "a payment brought the balance back",
            Cause::AboveThreshold => "the balance rose above the low-balance threshold",
        }
    }
}

/// What to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Stay,
    Move(Standing, Cause),
    /// Tell staff the account is due for termination (once).
    DueForTermination,
}

/// The one next step for an account at `now`. Applied until it says `Stay`:
/// from `good` with a deep negative balance, the first step is straight to
/// `calling_suspended`.
pub fn next(facts: &Facts, periods: &Periods, now: DateTime<Utc>) -> Step {
    let floor = Money(-facts.credit_limit.micros().max(0));
    let below_floor = facts.balance < floor;
    let below_threshold = facts.balance < facts.threshold;
    match facts.standing {
        Standing::Good | Standing::Low if below_floor => {
            Step::Move(Standing::CallingSuspended, Cause::BelowCreditLimit)
        }
        Standing::Good if below_threshold => Step::Move(Standing::Low, Cause::BelowThreshold),
        Standing::Low if !below_threshold => Step::Move(Standing::Good, Cause::AboveThreshold),
        Standing::Good | Standing::Low => Step::Stay,
        Standing::CallingSuspended | Standing::PoweredOff if !below_floor => {
            let to = if below_threshold {
                Standing::Low
            } else {
                Standing::Good
            };
            Step::Move(to, Cause::PaidBack)
        }
        Standing::CallingSuspended if now >= facts.since + periods.grace => {
            Step::Move(Standing::PoweredOff, Cause::GracePeriodOver)
        }
        Standing::CallingSuspended => Step::Stay,
        Standing::PoweredOff
            if !facts.termination_notice_sent && now >= facts.since + periods.termination =>
        {
            Step::DueForTermination
        }
        Standing::PoweredOff => Step::Stay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;

    fn periods() -> Periods {
        Periods {
            grace: Duration::days(7),
            termination: Duration::days(30),
        }
    }

    fn facts(standing: Standing, balance: i64) -> Facts {
        Facts {
            standing,
            since: DateTime::from_timestamp(0, 0).expect("epoch"),
            balance: Money(balance),
            threshold: Money(5_000_000),
            credit_limit: Money(2_000_000),
            termination_notice_sent: false,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("time")
    }

    #[test]
    fn the_balance_moves_a_good_account_down_and_back() {
        let now = at(0);
        use Standing::*;
        assert_eq!(next(&facts(Good, 5_000_000), &periods(), now), Step::Stay);
        assert_eq!(
            next(&facts(Good, 4_999_999), &periods(), now),
            Step::Move(Low, Cause::BelowThreshold)
        );
        assert_eq!(next(&facts(Low, -2_000_000), &periods(), now), Step::Stay);
        assert_eq!(
            next(&facts(Low, -2_000_001), &periods(), now),
            Step::Move(CallingSuspended, Cause::BelowCreditLimit)
        );
        assert_eq!(
            next(&facts(Good, -9_000_000), &periods(), now),
            Step::Move(CallingSuspended, Cause::BelowCreditLimit)
        );
        assert_eq!(
            next(&facts(Low, 5_000_000), &periods(), now),
            Step::Move(Good, Cause::AboveThreshold)
        );
    }

    #[test]
    fn time_moves_a_suspended_account_to_powered_off_then_to_staff() {
        use Standing::*;
        let suspended = facts(CallingSuspended, -3_000_000);
        assert_eq!(next(&suspended, &periods(), at(7 * DAY - 1)), Step::Stay);
        assert_eq!(
            next(&suspended, &periods(), at(7 * DAY)),
            Step::Move(PoweredOff, Cause::GracePeriodOver)
        );
        let off = facts(PoweredOff, -3_000_000);
        assert_eq!(next(&off, &periods(), at(30 * DAY - 1)), Step::Stay);
        assert_eq!(
            next(&off, &periods(), at(30 * DAY)),
            Step::DueForTermination
        );
        let told = Facts {
            termination_notice_sent: true,
            ..off
        };
        assert_eq!(next(&told, &periods(), at(300 * DAY)), Step::Stay);
    }

    #[test]
    fn a_payment_restores_a_suspended_or_powered_off_account_to_what_the_balance_says() {
        use Standing::*;
        for standing in [CallingSuspended, PoweredOff] {
            assert_eq!(
                next(&facts(standing, -2_000_000), &periods(), at(0)),
                Step::Move(Low, Cause::PaidBack)
            );
            assert_eq!(
                next(&facts(standing, 10_000_000), &periods(), at(99 * DAY)),
                Step::Move(Good, Cause::PaidBack)
            );
        }
    }
}
