//! Realistic call traffic for simulated PBXs: FreePBX contexts and PJSIP
//! channel names, outbound calls through a trunk, inbound calls to a DID
//! ringing a group of phones (one call, several legs sharing a `linkedid`),
//! internal calls, and the unanswered, busy and failed calls a real office
//! has. Deterministic for a seed, so demos and tests see the same month.

use chrono::{DateTime, Duration, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_core::calls::cdr::RawCdr;

/// Numbers people call, with how often.
const DESTINATIONS: &[(&str, u32)] = &[
    ("1555010", 55), // local and national
    ("1416555", 10), // Toronto
    ("4420794", 10), // London
    ("4477009", 8),  // UK mobile
    ("3314567", 7),  // Paris
    ("4930123", 6),  // Berlin
    ("6129876", 4),  // Sydney
];

fn pick<'a>(rng: &mut StdRng, weighted: &'a [(&'a str, u32)]) -> &'a str {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (value, weight) in weighted {
        if roll < *weight {
            return value;
        }
        roll -= weight;
    }
    weighted[0].0
}

fn disposition(rng: &mut StdRng) -> &'static str {
    match rng.gen_range(0..100) {
        0..=71 => "ANSWERED",
        72..=87 => "NO ANSWER",
        88..=95 => "BUSY",
        96..=98 => "FAILED",
        _ => "CONGESTION",
    }
}

/// Asterisk's uniqueid: the start time and a counter.
fn next_id(sequence: &mut u32, at: DateTime<Utc>) -> String {
    *sequence += 1;
    format!("{}.{}", at.timestamp(), sequence)
}

/// `days` days of traffic ending at `until` for a PBX with `extensions`
/// extensions (numbered from 201) and the inbound number `did`.
pub fn generate(
    seed: u64,
    until: DateTime<Utc>,
    days: i64,
    extensions: u32,
    did: &str,
) -> Vec<RawCdr> {
    let mut records = Vec::new();
    let extensions = extensions.clamp(2, 40);
    for day in (0..days).rev() {
        let date = (until - Duration::days(day)).date_naive();
        // Each day has its own generator: the same day always gives the same
        // calls, whatever window it is generated in, so regenerating is
        // harmless to ingest.
        let ordinal = chrono::Datelike::num_days_from_ce(&date) as u64;
        let mut rng = StdRng::seed_from_u64(seed ^ (ordinal << 20));
        let mut sequence = (ordinal as u32 % 100_000) * 1_000;
        let weekend = matches!(date.format("%a").to_string().as_str(), "Sat" | "Sun");
        let calls = if weekend {
            rng.gen_range(0..4)
        } else {
            rng.gen_range(12..30)
        };
        for _ in 0..calls {
            let hour = rng.gen_range(8..18);
            let Some(start) = date
                .and_hms_opt(hour, rng.gen_range(0..60), rng.gen_range(0..60))
                .map(|t| t.and_utc())
                .filter(|t| *t <= until)
            else {
                continue;
            };
            let extension = 201 + rng.gen_range(0..extensions);
            let channel_id = rng.gen::<u32>() & 0x00ff_ffff;
            let kind = rng.gen_range(0..100);
            let status = disposition(&mut rng);
            let talk = if status == "ANSWERED" {
                rng.gen_range(8..900)
            } else {
                0
            };
            let ring = rng.gen_range(3..25);
            if kind < 50 {
                // Outbound through the trunk.
                let number = format!(
                    "{}{:04}",
                    pick(&mut rng, DESTINATIONS),
                    rng.gen_range(0..10_000)
                );
                let id = next_id(&mut sequence, start);
                records.push(RawCdr {
                    calldate: start,
                    clid: format!("\"Ext {extension}\" <{extension}>"),
                    src: extension.to_string(),
                    dst: number.clone(),
                    dcontext: "from-internal".into(),
                    channel: format!("PJSIP/{extension}-{channel_id:08x}"),
                    dstchannel: format!("PJSIP/trunk-voip-{:08x}", channel_id + 1),
                    lastapp: "Dial".into(),
                    lastdata: format!("PJSIP/{number}@trunk-voip,300,Tt"),
                    duration: talk + ring,
                    billsec: talk,
                    disposition: status.into(),
                    amaflags: 3,
                    uniqueid: id.clone(),
                    linkedid: Some(id),
                    sequence: Some(sequence as i32),
                    cnum: Some(extension.to_string()),
                    outbound_cnum: Some(did.to_owned()),
                    ..RawCdr::default()
                });
            } else if kind < 85 {
                // Inbound to the DID, ringing a group of three phones.
                let caller = format!("1555{:07}", rng.gen_range(0..10_000_000));
                let linked = next_id(&mut sequence, start);
                let answering = if status == "ANSWERED" {
                    rng.gen_range(0..3)
                } else {
                    99
                };
                for leg in 0..3u32 {
                    let phone = 201 + (extension - 201 + leg) % extensions;
                    let answered = leg == answering;
                    records.push(RawCdr {
                        calldate: start,
                        clid: format!("\"{caller}\" <{caller}>"),
                        src: caller.clone(),
                        dst: "600".into(),
                        dcontext: "ext-group".into(),
                        channel: format!("PJSIP/trunk-voip-{channel_id:08x}"),
                        dstchannel: format!("PJSIP/{phone}-{:08x}", channel_id + 1 + leg),
                        lastapp: "Dial".into(),
                        lastdata: "PJSIP/201&PJSIP/202&PJSIP/203,20".into(),
                        duration: if answered { talk + ring } else { ring },
                        billsec: if answered { talk } else { 0 },
                        disposition: if answered { "ANSWERED" } else { "NO ANSWER" }.into(),
                        amaflags: 3,
                        uniqueid: format!("{linked}{leg}"),
                        linkedid: Some(linked.clone()),
                        sequence: Some((sequence + leg) as i32),
                        did: Some(did.to_owned()),
                        cnum: Some(caller.clone()),
                        ..RawCdr::default()
                    });
                }
                sequence += 3;
            } else {
                // Internal, from one desk to another.
                let other =
                    201 + (extension - 201 + 1 + rng.gen_range(0..extensions - 1)) % extensions;
                let id = next_id(&mut sequence, start);
                records.push(RawCdr {
                    calldate: start,
                    clid: format!("\"Ext {extension}\" <{extension}>"),
                    src: extension.to_string(),
                    dst: other.to_string(),
                    dcontext: "from-internal".into(),
                    channel: format!("PJSIP/{extension}-{channel_id:08x}"),
                    dstchannel: format!("PJSIP/{other}-{:08x}", channel_id + 1),
                    lastapp: "Dial".into(),
                    duration: talk.min(300) + ring,
                    billsec: talk.min(300),
                    disposition: status.into(),
                    amaflags: 3,
                    uniqueid: id.clone(),
                    linkedid: Some(id),
                    sequence: Some(sequence as i32),
                    cnum: Some(extension.to_string()),
                    ..RawCdr::default()
                });
            }
        }
    }
    records.retain(|r| r.calldate.hour() < 24);
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::calls::cdr::{self, Direction};

    #[test]
    fn a_month_of_traffic_looks_like_an_office() {
        let until = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 26, 18, 0, 0)
            .single()
            .expect("a time");
        let records = generate(7, until, 30, 10, "15550100199");
        assert_eq!(
            records,
            generate(7, until, 30, 10, "15550100199"),
            "deterministic for a seed"
        );
        // Legs sharing a call key are one call, answered when any leg was.
        let mut calls: std::collections::BTreeMap<String, (Direction, bool)> = Default::default();
        let rules = switchboard_core::calls::dialling::DiallingRules::default();
        for leg in records.iter().filter(|l| !cdr::is_helper_leg(l, &rules)) {
            let answered = cdr::status(&leg.disposition) == cdr::Status::Answered;
            calls
                .entry(cdr::call_key(leg))
                .or_insert((cdr::direction(leg, &rules), false))
                .1 |= answered;
        }
        assert!(
            calls.len() > 200 && calls.len() < 800,
            "{} calls",
            calls.len()
        );
        assert!(
            records.len() > calls.len(),
            "ring groups make more legs than calls"
        );
        let count = |d: Direction| calls.values().filter(|c| c.0 == d).count();
        assert!(
            count(Direction::Outbound) > 0
                && count(Direction::Inbound) > 0
                && count(Direction::Internal) > 0
        );
        let answered = calls.values().filter(|c| c.1).count();
        assert!(answered * 100 / calls.len() > 50 && answered < calls.len());
        let keys: std::collections::HashSet<String> = records.iter().map(cdr::record_key).collect();
        assert_eq!(keys.len(), records.len(), "every record has its own key");
    }
}
