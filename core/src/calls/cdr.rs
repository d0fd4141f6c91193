//! Call detail records as Asterisk writes them, and what Switchboard derives
//! from them: direction, extension, status, which legs make one call. Pure
//! functions over plain data, and the reader of Asterisk's `Master.csv`.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};

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

/// The device name of a channel (`SIP/201-0000abcd` → `201`,
/// `PJSIP/trunk-00000031` → `trunk`), without technology or suffix.
fn device(channel: &str) -> Option<&str> {
    let (_, rest) = channel.split_once('/')?;
    let name = match rest.rfind('-') {
        Some(dash) => &rest[..dash],
        None => rest,
    };
    (!name.is_empty()).then_some(name)
}

/// An extension's number from a channel, when the device is one.
pub fn extension_of_channel(channel: &str) -> Option<String> {
    if channel.starts_with("Local/") {
        return None;
    }
    let name = device(channel)?;
    (name.len() <= 8 && name.bytes().all(|b| b.is_ascii_digit())).then(|| name.to_owned())
}

/// Whether a channel went out through a trunk: a SIP, PJSIP, IAX2 or DAHDI
/// device that is not an extension.
fn is_trunk(channel: &str) -> bool {
    let technology = channel.split('/').next().unwrap_or("");
    matches!(technology, "SIP" | "PJSIP" | "IAX2" | "DAHDI" | "Dahdi")
        && extension_of_channel(channel).is_none()
        && device(channel).is_some()
}

/// Outbound when it has an outbound caller id or left through a trunk;
/// inbound when it came to a DID or from the trunk contexts; else internal.
pub fn direction(cdr: &RawCdr) -> Direction {
    if filled(&cdr.outbound_cnum).is_some() || is_trunk(&cdr.dstchannel) {
        return Direction::Outbound;
    }
    let context = cdr.dcontext.as_str();
    if filled(&cdr.did).is_some()
        || context == "from-trunk"
        || context == "from-pstn"
        || context.starts_with("ext-did")
        || is_trunk(&cdr.channel)
    {
        return Direction::Inbound;
    }
    Direction::Internal
}

/// The extension a call belongs to: the caller's for outbound and internal
/// calls (`cnum`, else the channel), the answering one for inbound calls.
pub fn extension(cdr: &RawCdr, direction: Direction) -> Option<String> {
    match direction {
        Direction::Inbound => extension_of_channel(&cdr.dstchannel),
        _ => filled(&cdr.cnum)
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .or_else(|| extension_of_channel(&cdr.channel)),
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

/// `Local/` legs are Asterisk's plumbing, not calls.
pub fn is_helper_leg(cdr: &RawCdr) -> bool {
    cdr.channel.starts_with("Local/")
}

/// The legs of one call share a `linkedid` (a ring group ringing five phones
/// is one call); without one, each `uniqueid` is its own call.
pub fn call_key(cdr: &RawCdr) -> String {
    filled(&cdr.linkedid).unwrap_or(&cdr.uniqueid).to_owned()
}

/// What makes a record the same record when it arrives again: its uniqueid
/// and sequence, or, without a uniqueid, a digest of everything in it.
pub fn record_key(cdr: &RawCdr) -> String {
    if !cdr.uniqueid.trim().is_empty() {
        return format!(
            "{}:{}",
            cdr.uniqueid.trim(),
            cdr.sequence.map(|s| s.to_string()).unwrap_or_default()
        );
    }
    let raw = serde_json::to_string(cdr).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes())))
}

/// One call made of its legs, as reports count it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub key: String,
    pub start: DateTime<Utc>,
    pub direction: Direction,
    pub status: Status,
    /// The longest answered leg's seconds.
    pub billsec: i32,
    pub legs: usize,
}

/// Groups legs into calls, leaving out helper legs; a call is answered when
/// any leg was.
pub fn calls(legs: &[RawCdr]) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for leg in legs.iter().filter(|l| !is_helper_leg(l)) {
        let key = call_key(leg);
        let leg_status = status(&leg.disposition);
        match index.get(&key) {
            Some(&i) => {
                let call = &mut calls[i];
                call.legs += 1;
                call.start = call.start.min(leg.calldate);
                if leg_status == Status::Answered {
                    call.status = Status::Answered;
                    call.billsec = call.billsec.max(leg.billsec);
                }
            }
            None => {
                index.insert(key.clone(), calls.len());
                calls.push(Call {
                    key,
                    start: leg.calldate,
                    direction: direction(leg),
                    status: leg_status,
                    billsec: if leg_status == Status::Answered {
                        leg.billsec
                    } else {
                        0
                    },
                    legs: 1,
                });
            }
        }
    }
    calls
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
            channel: channel.into(),
            dstchannel: dstchannel.into(),
            dcontext: dcontext.into(),
            disposition: disposition.into(),
            uniqueid: "1700000000.1".into(),
            ..RawCdr::default()
        }
    }

    #[test]
    fn freepbx_rows_get_their_direction_extension_and_status() {
        let mut outbound = leg(
            "PJSIP/201-00000031",
            "PJSIP/voipms-00000032",
            "from-internal",
            "ANSWERED",
        );
        outbound.outbound_cnum = Some("15550100100".into());
        assert_eq!(direction(&outbound), Direction::Outbound);
        assert_eq!(
            extension(&outbound, Direction::Outbound).as_deref(),
            Some("201")
        );
        let mut trunk_only = leg(
            "SIP/202-0000abcd",
            "SIP/provider-0000abce",
            "from-internal",
            "ANSWERED",
        );
        trunk_only.cnum = Some("202".into());
        assert_eq!(
            direction(&trunk_only),
            Direction::Outbound,
            "left through a trunk"
        );
        let mut inbound = leg(
            "PJSIP/voipms-00000040",
            "PJSIP/203-00000041",
            "ext-did-0001",
            "ANSWERED",
        );
        inbound.did = Some("15550100199".into());
        assert_eq!(direction(&inbound), Direction::Inbound);
        assert_eq!(
            extension(&inbound, Direction::Inbound).as_deref(),
            Some("203")
        );
        let from_trunk = leg("IAX2/provider-1234", "", "from-trunk", "NO ANSWER");
        assert_eq!(direction(&from_trunk), Direction::Inbound);
        let internal = leg(
            "SIP/201-0000abcd",
            "SIP/204-0000abce",
            "from-internal",
            "BUSY",
        );
        assert_eq!(direction(&internal), Direction::Internal);
        assert_eq!(
            extension(&internal, Direction::Internal).as_deref(),
            Some("201")
        );
        assert_eq!(status("NO ANSWER"), Status::NoAnswer);
        assert_eq!(status("CONGESTION"), Status::Congestion);
        assert_eq!(status("whatever"), Status::Failed);
        assert_eq!(extension_of_channel("IAX2/205-1234"), Some("205".into()));
        assert_eq!(extension_of_channel("Local/201@from-queue-0000;1"), None);
    }

    #[test]
    fn a_ring_group_ringing_five_phones_is_one_call() {
        let mut legs = Vec::new();
        for (n, disposition) in [
            "NO ANSWER",
            "NO ANSWER",
            "ANSWERED",
            "NO ANSWER",
            "NO ANSWER",
        ]
        .iter()
        .enumerate()
        {
            let mut l = leg(
                "PJSIP/voipms-00000050",
                &format!("PJSIP/20{n}-0000006{n}"),
                "ext-group",
                disposition,
            );
            l.linkedid = Some("1700000100.50".into());
            l.uniqueid = format!("1700000100.5{n}");
            l.did = Some("15550100199".into());
            l.billsec = if *disposition == "ANSWERED" { 42 } else { 0 };
            legs.push(l);
        }
        let mut helper = leg(
            "Local/201@from-queue-00000001;2",
            "PJSIP/201-00000070",
            "from-queue",
            "ANSWERED",
        );
        helper.linkedid = Some("1700000100.50".into());
        legs.push(helper);
        let calls = calls(&legs);
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].status, calls[0].billsec, calls[0].legs),
            (Status::Answered, 42, 5)
        );
        assert_eq!(calls[0].direction, Direction::Inbound);
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
        assert_eq!(record_key(&cdrs[0]), "abc.1:");
    }

    #[test]
    fn a_record_without_uniqueid_is_known_by_its_digest() {
        let a = leg("SIP/201-1", "", "from-internal", "ANSWERED");
        let mut keyless = a.clone();
        keyless.uniqueid = String::new();
        let mut other = keyless.clone();
        other.billsec = 5;
        assert!(record_key(&keyless).starts_with("sha256:"));
        assert_eq!(record_key(&keyless), record_key(&keyless.clone()));
        assert_ne!(record_key(&keyless), record_key(&other));
        let mut sequenced = a;
        sequenced.sequence = Some(3);
        assert_eq!(record_key(&sequenced), "1700000000.1:3");
    }
}
