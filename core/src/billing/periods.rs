//! Billing periods, as pure functions. A recurring item's periods follow the
//! anniversary of its anchor (a PBX's activation): period `n` starts `n`
//! months after the anchor, on the same day and at the same time, or on the
//! month's last day when the month is shorter (an item anchored on 31
//! January is billed on 28 or 29 February, then on 31 March: each start is
//! counted from the anchor, never from the start before it).

use chrono::{DateTime, Months, Utc};

/// The start of period `n` of an item anchored at `anchor`.
pub fn period_start(anchor: DateTime<Utc>, n: i32) -> Option<DateTime<Utc>> {
    let months = u32::try_from(n).ok()?;
    anchor.checked_add_months(Months::new(months))
}

/// The periods from `next` on that are due at `now` (they start at or
/// before it) and start before `ends_at`: `next..end`, possibly empty.
pub fn due_periods(
    anchor: DateTime<Utc>,
    next: i32,
    now: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
) -> std::ops::Range<i32> {
    let mut end = next;
    while let Some(start) = period_start(anchor, end) {
        if start > now || ends_at.is_some_and(|ends| start >= ends) {
            break;
        }
        end += 1;
    }
    next..end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn periods_follow_the_anniversary_and_a_short_month_ends_on_its_last_day() {
        let anchor = at("2027-01-31T09:30:00Z");
        let starts: Vec<_> = (0..4)
            .map(|n| period_start(anchor, n).expect("a start"))
            .collect();
        assert_eq!(
            starts,
            vec![
                at("2027-01-31T09:30:00Z"),
                at("2027-02-28T09:30:00Z"),
                at("2027-03-31T09:30:00Z"),
                at("2027-04-30T09:30:00Z"),
            ]
        );
        assert_eq!(
            period_start(at("2028-01-30T00:00:00Z"), 1),
            Some(at("2028-02-29T00:00:00Z"))
        );
        assert_eq!(period_start(anchor, -1), None);
    }

    #[test]
    fn due_periods_are_those_started_by_now_and_before_the_end() {
        let anchor = at("2027-01-15T12:00:00Z");
        assert_eq!(
            due_periods(anchor, 1, at("2027-02-15T11:59:59Z"), None),
            1..1
        );
        assert_eq!(
            due_periods(anchor, 1, at("2027-02-15T12:00:00Z"), None),
            1..2
        );
        // Three periods missed while stopped: all three are due, once.
        assert_eq!(
            due_periods(anchor, 1, at("2027-04-20T00:00:00Z"), None),
            1..4
        );
        assert_eq!(
            due_periods(anchor, 4, at("2027-04-20T00:00:00Z"), None),
            4..4
        );
        assert_eq!(
            due_periods(
                anchor,
                1,
                at("2027-06-01T00:00:00Z"),
                Some(at("2027-03-15T12:00:00Z"))
            ),
            1..2
        );
    }
}
