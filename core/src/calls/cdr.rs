//! Call detail records as Asterisk writes them, and what Switchboard derives
//! from them: direction, extension, status, which legs make one call. Pure
//! functions over plain data, and the reader of Asterisk's `Master.csv`.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};

use crate::calls::dialling::{self, DiallingRules};

/// One CDR as received, Asterisk's columns (FreePBX's extra ones optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct RawCdr {
    pub calldate: DateTime<Utc>,
    pub clid: String,
    pub src: String,
    pub dst: String,
    pub dcontext: String,
    pub channel: String,
    pub dstchannel: String,
    pub lastapp: String,
    pub lastdata: String,
    pub duration: i32,
    pub billsec: i32,
    pub disposition: String,
    pub amaflags: i32,
    pub accountcode: String,
    pub uniqueid: String,
    pub userfield: String,
    pub linkedid: Option<String>,
    pub sequence: Option<i32>,
    pub did: Option<String>,
    pub recordingfile: Option<String>,
    pub cnum: Option<String>,
    pub cnam: Option<String>,
    pub outbound_cnum: Option<String>,
    pub outbound_cnam: Option<String>,
    pub dst_cnam: Option<String>,
    pub peeraccount: Option<String>,
}

/// Which way a call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        }
    }
}

/// How a call ended, from Asterisk's disposition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Answered,
    NoAnswer,
    Busy,
    Failed,
    Congestion,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Answered => "answered",
            Status::NoAnswer => "no_answer",
            Status::Busy => "busy",
            Status::Failed => "failed",
            Status::Congestion => "congestion",
        }
    }
}

fn filled(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// An extension's number from a channel: its device when that is an
/// extension's number (`PJSIP/201-0000abcd`), or the number a `Local/`
/// channel dials when that is one (`Local/201@from-queue-00000001;1`: a
/// queue or ring group member).
pub fn extension_of_channel(channel: &str) -> Option<String> {
    let number = match dialling::local_number(channel) {
        Some(number) => number,
        None => dialling::split_channel(channel)?.1,
    };
    dialling::is_extension_number(number).then(|| number.to_owned())
}

/// Whether a channel is a trunk: one of the PBX's known trunks, or, when
/// none are known, a device whose name is not an extension's.
fn is_trunk(channel: &str, rules: &DiallingRules) -> bool {
    rules
        .is_trunk(channel)
        .unwrap_or_else(|| dialling::looks_like_trunk(channel))
}

/// Contexts FreePBX routes calls from outside through.
fn is_inbound_context(context: &str) -> bool {
    matches!(context, "from-trunk" | "from-pstn")
        || context.starts_with("from-did")
        || context.starts_with("ext-did")
}

/// Which way a leg went. Only columns every source carries are read
/// (channels and context: a pull, a `Master.csv` import and a push of the
/// same record agree). With the PBX's trunks known: from a trunk is inbound,
/// to a trunk outbound, anything else internal. Without them, an inbound
/// context or a trunk-looking channel is inbound, a trunk-looking
/// destination outbound.
pub fn direction(cdr: &RawCdr, rules: &DiallingRules) -> Direction {
    if rules.trunks.is_empty() {
        if is_inbound_context(&cdr.dcontext) {
            return Direction::Inbound;
        }
        if is_trunk(&cdr.dstchannel, rules) {
            return Direction::Outbound;
        }
        if is_trunk(&cdr.channel, rules) {
            return Direction::Inbound;
        }
        return Direction::Internal;
    }
    if is_trunk(&cdr.channel, rules) {
        Direction::Inbound
    } else if is_trunk(&cdr.dstchannel, rules) {
        Direction::Outbound
    } else {
        Direction::Internal
    }
}

/// The extension a leg belongs to: the answering one for inbound legs (the
/// phone, or the queue or ring group member a `Local/` channel reached), the
/// caller's for outbound and internal ones. Read from the channels only, so
/// every source gives the same.
pub fn extension(cdr: &RawCdr, direction: Direction) -> Option<String> {
    match direction {
        Direction::Inbound => extension_of_channel(&cdr.dstchannel),
        _ => extension_of_channel(&cdr.channel),
    }
}

/// The status a disposition names; an unknown one is a failure.
pub fn status(disposition: &str) -> Status {
    match disposition.trim().to_ascii_uppercase().as_str() {
        "ANSWERED" => Status::Answered,
        "NO ANSWER" | "NOANSWER" => Status::NoAnswer,
        "BUSY" => Status::Busy,
        "CONGESTION" => Status::Congestion,
        _ => Status::Failed,
    }
}

/// `Local/` legs are Asterisk's plumbing, not calls, unless they reach a
/// trunk: a ring group or follow-me member that is an outside number, a
/// forward to a mobile, a callback. Those are outbound legs and are billed.
pub fn is_helper_leg(cdr: &RawCdr, rules: &DiallingRules) -> bool {
    dialling::local_number(&cdr.channel).is_some() && !is_trunk(&cdr.dstchannel, rules)
}

/// The legs of one call share a `linkedid` (a ring group ringing five phones
/// is one call); without one, each `uniqueid` is its own call.
pub fn call_key(cdr: &RawCdr) -> String {
    filled(&cdr.linkedid).unwrap_or(&cdr.uniqueid).to_owned()
}

/// What makes a record the same record whichever way it arrives: its
/// `uniqueid` and a digest of the columns every source carries alike (the
/// start to the second, in UTC; the channels; disposition; duration and
/// billsec; source and destination numbers). `sequence` is left out, since
/// `Master.csv` usually lacks it; the channels, disposition and times tell
/// apart the records Asterisk writes for one channel (a CONGESTION on one
/// trunk and ANSWERED on the next; a transfer). The same digest is computed
/// in SQL by the migration that introduced it.
pub fn record_key(cdr: &RawCdr) -> String {
    let duration = cdr.duration.to_string();
    let billsec = cdr.billsec.to_string();
    let start = cdr.calldate.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let fields = [
        cdr.uniqueid.as_str(),
        start.as_str(),
        cdr.channel.as_str(),
        cdr.dstchannel.as_str(),
        cdr.disposition.as_str(),
        duration.as_str(),
        billsec.as_str(),
        cdr.src.as_str(),
        cdr.dst.as_str(),
    ];
    let digest = Sha256::digest(fields.join("\u{1f}").as_bytes());
    format!("{}#{}", cdr.uniqueid, hex::encode(&digest[..8]))
}

/// The longest call Switchboard believes: a week.
pub const LONGEST_CALL_SECONDS: i32 = 7 * 24 * 3600;

/// Why a record cannot be stored, whichever way it arrived; `None` when it
/// can. `now` bounds how far in the future a call may start (a PBX whose
/// clock is a little ahead is allowed a day).
pub fn problem(cdr: &RawCdr, now: DateTime<Utc>) -> Option<String> {
    let earliest = DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or_default();
    if cdr.calldate < earliest {
        return Some("no call date, or one before 2000".into());
    }
    if cdr.calldate > now + chrono::Duration::days(1) {
        return Some(format!("the call date {} is in the future", cdr.calldate));
    }
    if cdr.disposition.trim().is_empty() {
        return Some("no disposition".into());
    }
    if cdr.duration < 0 || cdr.billsec < 0 || cdr.billsec > cdr.duration {
        return Some(format!(
            "billsec {} and duration {} do not fit together",
            cdr.billsec, cdr.duration
        ));
    }
    if cdr.duration > LONGEST_CALL_SECONDS {
        return Some(format!(
            "a duration of {} seconds is longer than any call",
            cdr.duration
        ));
    }
    None
}

/// The column order of `cdr_csv`'s `Master.csv`; the last five are optional.
pub const MASTER_CSV_COLUMNS: [&str; 21] = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
];

/// A line of a CSV file that could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub line: usize,
    pub raw: String,
    pub reason: String,
}

/// Reads Asterisk CSV CDRs (`Master.csv`, or `cdr_custom` with `columns`
/// naming the order), whose times are in the PBX's local `zone`. Quoted
/// fields with doubled quotes and an empty answer time are Asterisk's own.
pub fn read_csv(text: &str, columns: &[&str], zone: chrono_tz::Tz) -> (Vec<RawCdr>, Vec<Rejected>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let (mut read, mut rejected) = (Vec::new(), Vec::new());
    for (index, record) in reader.records().enumerate() {
        let line = index + 1;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                rejected.push(Rejected {
                    line,
                    raw: String::new(),
                    reason: error.to_string(),
                });
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let raw: String = record.iter().collect::<Vec<_>>().join(",");
        match from_record(&record, columns, zone) {
            Ok(cdr) => read.push(cdr),
            Err(reason) => rejected.push(Rejected { line, raw, reason }),
        }
    }
    (read, rejected)
}

fn local_time(text: &str, zone: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S")
        .map_err(|_| format!("{text:?} is not a time such as 2026-11-01 09:15:02"))?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{text:?} does not exist in {zone}"))
}

fn from_record(
    record: &csv::StringRecord,
    columns: &[&str],
    zone: chrono_tz::Tz,
) -> Result<RawCdr, String> {
    let field = |name: &str| -> Option<String> {
        columns
            .iter()
            .position(|c| *c == name)
            .and_then(|i| record.get(i))
            .map(str::to_owned)
    };
    let text = |name: &str| field(name).unwrap_or_default();
    let number = |name: &str| -> Result<i32, String> {
        let value = text(name);
        if value.is_empty() {
            return Ok(0);
        }
        value
            .trim()
            .parse()
            .map_err(|_| format!("{name} {value:?} is not a whole number"))
    };
    let optional = |name: &str| field(name).filter(|v| !v.is_empty());
    let start = field("start")
        .or_else(|| field("calldate"))
        .filter(|v| !v.is_empty())
        .ok_or("no start time")?;
    let duration = number("duration")?;
    let billsec = number("billsec")?;
    if duration < 0 || billsec < 0 || billsec > duration {
        return Err(format!(
            "billsec {billsec} and duration {duration} do not fit together"
        ));
    }
    let disposition = text("disposition");
    if disposition.is_empty() {
        return Err("no disposition".into());
    }
    Ok(RawCdr {
        calldate: local_time(&start, zone)?,
        clid: text("clid"),
        src: text("src"),
        dst: text("dst"),
        dcontext: text("dcontext"),
        channel: text("channel"),
        dstchannel: text("dstchannel"),
        lastapp: text("lastapp"),
        lastdata: text("lastdata"),
        duration,
        billsec,
        disposition,
        amaflags: number("amaflags").unwrap_or(0),
        accountcode: text("accountcode"),
        uniqueid: text("uniqueid"),
        userfield: text("userfield"),
        linkedid: optional("linkedid"),
        sequence: optional("sequence").and_then(|s| s.trim().parse().ok()),
        did: optional("did"),
        recordingfile: optional("recordingfile"),
        cnum: optional("cnum"),
        cnam: optional("cnam"),
        outbound_cnum: optional("outbound_cnum"),
        outbound_cnam: optional("outbound_cnam"),
        dst_cnam: optional("dst_cnam"),
        peeraccount: optional("peeraccount"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(channel: &str, dstchannel: &str, dcontext: &str, disposition: &str) -> RawCdr {
        RawCdr {
            calldate: DateTime::from_timestamp(1_763_630_102, 0).unwrap_or_default(),
            channel: channel.into(),
            dstchannel: dstchannel.into(),
            dcontext: dcontext.into(),
            disposition: disposition.into(),
            uniqueid: "1700000000.1".into(),
            ..RawCdr::default()
        }
    }

    fn guessing() -> DiallingRules {
        DiallingRules::default()
    }

    #[test]
    fn freepbx_rows_get_their_direction_extension_and_status() {
        let rules = guessing();
        let outbound = leg(
            "PJSIP/201-00000031",
            "PJSIP/voipms-00000032",
            "from-internal",
            "ANSWERED",
        );
        assert_eq!(direction(&outbound, &rules), Direction::Outbound);
        assert_eq!(
            extension(&outbound, Direction::Outbound).as_deref(),
            Some("201")
        );
        let inbound = leg(
            "PJSIP/voipms-00000040",
            "PJSIP/203-00000041",
            "ext-did-0001",
            "ANSWERED",
        );
        assert_eq!(direction(&inbound, &rules), Direction::Inbound);
        assert_eq!(
            extension(&inbound, Direction::Inbound).as_deref(),
            Some("203")
        );
        let from_trunk = leg("IAX2/provider-1234", "", "from-trunk", "NO ANSWER");
        assert_eq!(direction(&from_trunk, &rules), Direction::Inbound);
        let internal = leg(
            "SIP/201-0000abcd",
            "SIP/204-0000abce",
            "from-internal",
            "BUSY",
        );
        assert_eq!(direction(&internal, &rules), Direction::Internal);
        assert_eq!(
            extension(&internal, Direction::Internal).as_deref(),
            Some("201")
        );
        assert_eq!(status("NO ANSWER"), Status::NoAnswer);
        assert_eq!(status("CONGESTION"), Status::Congestion);
        assert_eq!(status("whatever"), Status::Failed);
        assert_eq!(extension_of_channel("IAX2/205-1234"), Some("205".into()));
    }

    #[test]
    fn direction_reads_only_what_every_source_carries() {
        // The same inbound call pulled (FreePBX's `did` and `cnum` filled)
        // and imported from Master.csv (no such columns).
        let rules = guessing();
        let imported = leg("PJSIP/voipms-1", "PJSIP/203-2", "from-trunk", "ANSWERED");
        let mut pulled = imported.clone();
        pulled.did = Some("15550100199".into());
        pulled.cnum = Some("15550177777".into());
        pulled.outbound_cnum = Some("15550100199".into());
        assert_eq!(direction(&pulled, &rules), direction(&imported, &rules));
        assert_eq!(
            extension(&pulled, Direction::Inbound),
            extension(&imported, Direction::Inbound)
        );
    }

    #[test]
    fn a_numerically_named_trunk_known_to_the_pbx_makes_calls_inbound() {
        // An outside caller arriving on trunk SIP/211553 (the DID 211553),
        // forwarded to another PBX's trunk: guessed, the numeric trunk looks
        // like an extension and the call like one to South Sudan (+211).
        let forwarded = RawCdr {
            src: "15550177777".into(),
            dst: "211553".into(),
            ..leg(
                "SIP/211553-0000abcd",
                "SIP/otherpbx-0000abce",
                "macro-dial",
                "ANSWERED",
            )
        };
        assert_eq!(direction(&forwarded, &guessing()), Direction::Outbound);
        let known = DiallingRules {
            trunks: vec!["SIP/211553".into(), "SIP/otherpbx".into()],
            ..DiallingRules::default()
        };
        assert_eq!(direction(&forwarded, &known), Direction::Inbound);
        // And a named device that is a phone is not taken for a trunk.
        let phones = DiallingRules {
            trunks: vec!["PJSIP/voipms".into()],
            ..DiallingRules::default()
        };
        let alice_to_bob = leg("PJSIP/alice-1", "PJSIP/bob-2", "from-internal", "ANSWERED");
        assert_eq!(direction(&alice_to_bob, &guessing()), Direction::Outbound);
        assert_eq!(direction(&alice_to_bob, &phones), Direction::Internal);
    }

    #[test]
    fn a_local_leg_that_reaches_a_trunk_is_a_billed_outbound_leg() {
        let rules = guessing();
        let forward = RawCdr {
            dst: "15550100188".into(),
            ..leg(
                "Local/15550100188@from-internal-00000012;2",
                "PJSIP/voipms-00000013",
                "from-internal",
                "ANSWERED",
            )
        };
        assert!(!is_helper_leg(&forward, &rules));
        assert_eq!(direction(&forward, &rules), Direction::Outbound);
        let queue_member = leg(
            "Local/201@from-queue-00000001;2",
            "PJSIP/201-00000070",
            "from-queue",
            "ANSWERED",
        );
        assert!(is_helper_leg(&queue_member, &rules), "plumbing");
    }

    #[test]
    fn a_queue_or_ring_group_member_reached_through_local_is_the_extension() {
        let answered = leg(
            "PJSIP/voipms-00000050",
            "Local/201@from-queue-00000001;1",
            "ext-queues",
            "ANSWERED",
        );
        let rules = guessing();
        let direction = direction(&answered, &rules);
        assert_eq!(direction, Direction::Inbound);
        assert_eq!(extension(&answered, direction).as_deref(), Some("201"));
        assert_eq!(
            extension_of_channel("Local/15550100188@from-internal-1;2"),
            None,
            "an outside number is no extension"
        );
    }

    #[test]
    fn master_csv_lines_are_read_as_asterisk_writes_them() {
        let text = concat!(
            "\"\",\"201\",\"15550100100\",\"from-internal\",\"\"\"Dana, Front Desk\"\" <201>\",\"PJSIP/201-00000031\",",
            "\"PJSIP/voipms-00000032\",\"Dial\",\"PJSIP/15550100100@voipms,300,Tt\",\"2026-11-01 09:15:02\",",
            "\"2026-11-01 09:15:09\",\"2026-11-01 09:17:10\",128,121,\"ANSWERED\",\"DOCUMENTATION\",\"1761988502.49\",\"\"\n",
            "\"\",\"202\",\"15550100101\",\"from-internal\",\"\",\"PJSIP/202-00000033\",\"\",\"Dial\",\"\",",
            "\"2026-11-01 09:20:00\",,\"2026-11-01 09:20:30\",30,0,\"NO ANSWER\",\"DOCUMENTATION\",\"1761988800.51\",\"\"\n",
            "\"\",\"203\",\"1555\",\"from-internal\",\"\",\"PJSIP/203-1\",\"\",\"Dial\",\"\",\"yesterday\",,,1,0,\"FAILED\",3,\"x\",\"\"\n",
        );
        let zone: chrono_tz::Tz = "America/New_York".parse().expect("a zone");
        let (cdrs, rejected) = read_csv(text, &MASTER_CSV_COLUMNS, zone);
        assert_eq!(cdrs.len(), 2);
        assert_eq!(
            cdrs[0].clid, "\"Dana, Front Desk\" <201>",
            "quoted commas and doubled quotes"
        );
        assert_eq!(
            cdrs[0].calldate.to_rfc3339(),
            "2026-11-01T14:15:02+00:00",
            "local time read in the PBX zone (EST from that morning)"
        );
        assert_eq!((cdrs[0].duration, cdrs[0].billsec), (128, 121));
        assert_eq!(cdrs[1].billsec, 0, "an empty answer time: not answered");
        assert_eq!(status(&cdrs[1].disposition), Status::NoAnswer);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].line, 3);
        assert!(rejected[0].reason.contains("yesterday"));
    }

    #[test]
    fn a_cdr_custom_order_is_read_by_its_column_names() {
        let columns = [
            "calldate",
            "src",
            "dst",
            "disposition",
            "billsec",
            "duration",
            "uniqueid",
        ];
        let (cdrs, rejected) = read_csv(
            "2026-11-02 10:00:00,201,202,ANSWERED,5,9,abc.1\n",
            &columns,
            chrono_tz::UTC,
        );
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(
            (cdrs[0].src.as_str(), cdrs[0].billsec, cdrs[0].duration),
            ("201", 5, 9)
        );
        assert!(record_key(&cdrs[0]).starts_with("abc.1#"));
    }

    #[test]
    fn a_record_has_one_key_from_every_source_and_different_records_differ() {
        let pulled = RawCdr {
            sequence: Some(12),
            linkedid: Some("1700000000.1".into()),
            did: Some("15550100199".into()),
            amaflags: 3,
            ..leg(
                "PJSIP/201-1",
                "PJSIP/trunk1-2",
                "from-internal",
                "CONGESTION",
            )
        };
        let imported = RawCdr {
            amaflags: 0,
            lastdata: "written differently".into(),
            ..leg(
                "PJSIP/201-1",
                "PJSIP/trunk1-2",
                "from-internal",
                "CONGESTION",
            )
        };
        assert_eq!(record_key(&pulled), record_key(&imported));
        // Trunk failover: one channel, one uniqueid, two records.
        let answered_on_the_next = RawCdr {
            billsec: 40,
            duration: 45,
            ..leg("PJSIP/201-1", "PJSIP/trunk2-3", "from-internal", "ANSWERED")
        };
        assert_ne!(record_key(&imported), record_key(&answered_on_the_next));
        let mut keyless = imported.clone();
        keyless.uniqueid = String::new();
        let mut other = keyless.clone();
        other.billsec = 5;
        assert_ne!(record_key(&keyless), record_key(&other));
    }

    #[test]
    fn records_that_make_no_sense_are_named_whatever_their_source() {
        let now = DateTime::from_timestamp(1_764_000_000, 0).unwrap_or_default();
        let good = RawCdr {
            duration: 10,
            billsec: 5,
            ..leg("PJSIP/201-1", "", "from-internal", "ANSWERED")
        };
        assert_eq!(problem(&good, now), None);
        let undated = RawCdr {
            calldate: DateTime::<Utc>::default(),
            ..good.clone()
        };
        assert!(problem(&undated, now)
            .unwrap_or_default()
            .contains("no call date"));
        let backwards = RawCdr {
            billsec: 11,
            ..good.clone()
        };
        assert!(problem(&backwards, now).is_some());
        let undisposed = RawCdr {
            disposition: " ".into(),
            ..good.clone()
        };
        assert!(problem(&undisposed, now).is_some());
        let endless = RawCdr {
            duration: LONGEST_CALL_SECONDS + 1,
            ..good
        };
        assert!(problem(&endless, now).is_some());
    }
}
