//! Reading a PBX's Asterisk CDR table incrementally. Pure: the job that
//! talks to MySQL/MariaDB is in `jobs`.
//!
//! Asterisk writes a row when the call ends, so what makes a row new is its
//! end (`calldate + duration`), not its start: a 45-minute call is written
//! long after shorter calls that started later. Pulls therefore walk the
//! table by end time. Each pull reads the rows that ended at or after its
//! starting point, in order of their end, at most a batch of them:
//!
//! - a batch that is not full was everything: the next pull starts an
//!   overlap before the latest end seen, for rows written late (Asterisk's
//!   CDR batch mode holds rows back, five minutes by default);
//! - a full batch keeps the rows before its last end second, and the next
//!   pull (queued at once) starts at that second, so it makes progress
//!   whatever the overlap holds;
//! - a full batch of rows all ending in one second (more calls than a batch
//!   ending in the same second) is read whole, second by second.
//!
//! The table keeps local wall-clock times without a zone. Near a change of
//! daylight-saving time the same wall-clock hour comes twice, or a call's
//! start plus its duration lands an hour off its real end, so there the
//! starting point is moved back by the size of the change.

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};

/// How to take a batch read in order of end time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Not full: take every row.
    All,
    /// Full: take the first rows, those that ended before `end`; the next
    /// pull starts at `end`.
    Before { rows: usize, end: NaiveDateTime },
    /// Full, and every row ended in the second `end`: read that second
    /// whole; the next pull starts a second later.
    Second { end: NaiveDateTime },
}

/// How to take `ends` (the end times of the rows a pull read, in order)
/// when at most `batch` rows were asked for.
pub fn cut(ends: &[NaiveDateTime], batch: usize) -> Cut {
    let (Some(first), Some(last)) = (ends.first(), ends.last()) else {
        return Cut::All;
    };
    if ends.len() < batch {
        return Cut::All;
    }
    if first == last {
        return Cut::Second { end: *last };
    }
    Cut::Before {
        rows: ends.partition_point(|end| end < last),
        end: *last,
    }
}

/// The wall-clock time in `zone` from which a table holds every row that
/// ended at or after the instant `from`: the local time of `from`, less the
/// size of any change of offset within a day of it.
pub fn local_from<Tz: TimeZone>(from: DateTime<Utc>, zone: &Tz) -> NaiveDateTime {
    let offsets: Vec<i32> = (-24..=24)
        .map(|hours| {
            zone.offset_from_utc_datetime(&(from + Duration::hours(hours)).naive_utc())
                .fix()
                .local_minus_utc()
        })
        .collect();
    let lowest = offsets.iter().copied().min().unwrap_or(0);
    let highest = offsets.iter().copied().max().unwrap_or(0);
    from.naive_utc() + Duration::seconds(i64::from(lowest) - i64::from(highest - lowest))
}

/// The instant of a wall-clock time in `zone`: the earlier one in an hour
/// that comes twice, and the end of the gap in an hour that is skipped.
pub fn instant<Tz: TimeZone>(local: NaiveDateTime, zone: &Tz) -> DateTime<Utc> {
    match zone.from_local_datetime(&local).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => {
            let later = local + Duration::hours(1);
            zone.from_local_datetime(&later)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&local))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(day: u32, h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, day)
            .and_then(|d| d.and_hms_opt(h, m, s))
            .expect("a time")
    }

    #[test]
    fn a_batch_that_is_not_full_is_taken_whole() {
        assert_eq!(cut(&[], 5), Cut::All);
        assert_eq!(cut(&[local(1, 9, 0, 0), local(1, 9, 0, 1)], 5), Cut::All);
    }

    #[test]
    fn a_full_batch_stops_before_its_last_second_so_the_next_pull_moves_on() {
        let ends = [
            local(1, 9, 0, 0),
            local(1, 9, 0, 0),
            local(1, 9, 0, 1),
            local(1, 9, 0, 2),
            local(1, 9, 0, 2),
        ];
        assert_eq!(
            cut(&ends, 5),
            Cut::Before {
                rows: 3,
                end: local(1, 9, 0, 2)
            }
        );
        let crowded = [local(1, 9, 0, 0); 5];
        assert_eq!(
            cut(&crowded, 5),
            Cut::Second {
                end: local(1, 9, 0, 0)
            },
            "a second with more rows than a batch is read whole"
        );
    }

    #[test]
    fn the_starting_point_is_local_time_and_moves_back_near_a_clock_change() {
        let zone: chrono_tz::Tz = "America/New_York".parse().expect("a zone");
        let noon = Utc
            .with_ymd_and_hms(2026, 11, 20, 17, 0, 0)
            .single()
            .expect("a time");
        assert_eq!(local_from(noon, &zone), local(20, 12, 0, 0));
        assert_eq!(local_from(noon, &chrono_tz::UTC), local(20, 17, 0, 0));
        // 1 November 2026, 06:00 UTC is 01:00 EST, the second time 01:00
        // comes round: rows that ended at 01:30 EDT are earlier and are read.
        let repeated = Utc
            .with_ymd_and_hms(2026, 11, 1, 6, 0, 0)
            .single()
            .expect("a time");
        assert_eq!(local_from(repeated, &zone), local(1, 0, 0, 0));
    }

    #[test]
    fn wall_clock_times_become_instants_even_in_a_changing_hour() {
        let zone: chrono_tz::Tz = "America/New_York".parse().expect("a zone");
        assert_eq!(
            instant(local(1, 1, 30, 0), &zone),
            Utc.with_ymd_and_hms(2026, 11, 1, 5, 30, 0)
                .single()
                .expect("a time"),
            "the earlier 01:30"
        );
        let gap = NaiveDate::from_ymd_opt(2026, 3, 8)
            .and_then(|d| d.and_hms_opt(2, 30, 0))
            .expect("a time");
        assert_eq!(
            instant(gap, &zone),
            Utc.with_ymd_and_hms(2026, 3, 8, 7, 30, 0)
                .single()
                .expect("a time"),
        );
    }
}
