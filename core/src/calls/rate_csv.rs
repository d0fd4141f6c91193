//! Rate tables as CSV: reading the columns people bring (our own export,
//! A2Billing's, ASTPP's; `,` or `;` separated), checking every row, and
//! comparing a file with the table in force. Pure: no I/O.
//!
//! A column a file leaves out, or a cell left empty, says nothing: a prefix
//! already in the table keeps its current value for it, a new prefix gets
//! the default (no connection fee, 60/60, no minimum). The comparison names
//! every field that changes, and a header we do not know is named too, so
//! nothing changes without the preview saying so.
//!
//! Columns, by the names each system writes (compared without case, spaces
//! or punctuation):
//!
//! | meaning | ours | A2Billing | ASTPP |
//! |---|---|---|---|
//! | prefix | `prefix` | `dialprefix` | `Code` |
//! | description | `description` | `destination` | `Destination` |
//! | per-minute price | `per_minute` | `rateinitial` | `Cost/Min` |
//! | connection fee | `connection_fee` | `connectcharge` | `Connection Cost` |
//! | first block, seconds | `initial_increment` | `initblock` | `Initial Increment` |
//! | then blocks of, seconds | `subsequent_increment` | `billingblock` | `Increment` |
//! | minimum billed, seconds | `minimum_duration` | | |
//! | free seconds | | `minimal_time_charge` | `Grace Time` |
//!
//! A2Billing bills at least `initblock` seconds, then rounds up to whole
//! `billingblock`s; `initblock` 0 means no first block: the call is billed
//! in `billingblock`s from its first second, which is what an initial
//! increment equal to the subsequent one does here. (Where `initblock` is not
//! a multiple of `billingblock`, A2Billing rounds the whole duration to
//! `billingblock`s and we round what follows the first block: the two agree
//! whenever the first block is a multiple of the next.) ASTPP treats an
//! initial increment of 0 as 1 second. Either system's 0 `billingblock` or
//! `Increment` bills by the second. MagnusBilling's `minimal_time_charge`
//! (calls this short cost nothing) and ASTPP's `Grace Time` (seconds of
//! every call not charged) have no counterpart in Switchboard's rates: a
//! file with them at 0 imports, a row with any other value is refused, so
//! no price is silently changed.

use std::collections::{BTreeMap, HashSet};

use crate::calls::rating::Rate;
use crate::csv_cell;
use crate::money::{Money, PerMinute};

/// One checked row. `None` is a field the file does not give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateRow {
    /// The row's line in the file (the header is line 1).
    pub line: usize,
    pub prefix: String,
    pub description: Option<String>,
    pub per_minute: PerMinute,
    pub connection_fee: Option<Money>,
    pub initial_increment: Option<u32>,
    pub subsequent_increment: Option<u32>,
    pub minimum_duration: Option<u32>,
}

/// A rate's terms, every field known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    pub prefix: String,
    pub description: String,
    pub per_minute: PerMinute,
    pub connection_fee: Money,
    pub initial_increment: u32,
    pub subsequent_increment: u32,
    pub minimum_duration: u32,
}

impl Terms {
    /// A rate's terms as they are.
    pub fn of(rate: &Rate) -> Terms {
        Terms {
            prefix: rate.prefix.clone(),
            description: rate.description.clone(),
            per_minute: rate.per_minute,
            connection_fee: rate.connection_fee,
            initial_increment: rate.initial_increment,
            subsequent_increment: rate.subsequent_increment,
            minimum_duration: rate.minimum_duration,
        }
    }
}

impl RateRow {
    /// The terms this row sets: what it gives, and for the rest the current
    /// rate's values, or the defaults for a new prefix.
    pub fn terms(&self, current: Option<&Rate>) -> Terms {
        let initial = self
            .initial_increment
            .or(current.map(|r| r.initial_increment))
            .unwrap_or(60);
        Terms {
            prefix: self.prefix.clone(),
            description: self
                .description
                .clone()
                .or_else(|| current.map(|r| r.description.clone()))
                .unwrap_or_default(),
            per_minute: self.per_minute,
            connection_fee: self
                .connection_fee
                .or(current.map(|r| r.connection_fee))
                .unwrap_or(Money::ZERO),
            initial_increment: initial,
            subsequent_increment: self
                .subsequent_increment
                .or(current.map(|r| r.subsequent_increment))
                .unwrap_or(initial),
            minimum_duration: self
                .minimum_duration
                .or(current.map(|r| r.minimum_duration))
                .unwrap_or(0),
        }
    }
}

impl RateRow {
    /// One rate as a form gives it (empty or missing fields keep the
    /// current rate's), checked exactly as a line of an imported file is;
    /// the message names the field that is wrong.
    #[allow(clippy::too_many_arguments)]
    pub fn from_form(
        prefix: &str,
        description: Option<&str>,
        per_minute: &str,
        connection_fee: Option<&str>,
        initial_increment: Option<i32>,
        subsequent_increment: Option<i32>,
        minimum_duration: Option<i32>,
    ) -> Result<RateRow, String> {
        let number = |n: Option<i32>| n.map(|n| n.to_string()).unwrap_or_default();
        let mut writer = csv::Writer::from_writer(Vec::new());
        let description = description.map(|d| csv_cell::neutralize(d.trim()).into_owned());
        let cells = [
            prefix.trim().to_owned(),
            description.unwrap_or_default(),
            per_minute.trim().to_owned(),
            connection_fee.unwrap_or("").trim().to_owned(),
            number(initial_increment),
            number(subsequent_increment),
            number(minimum_duration),
        ];
        writer
            .write_record(EXPORT_HEADER)
            .and_then(|_| writer.write_record(&cells))
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8(writer.into_inner().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let parsed = parse(&text).map_err(|e| e.to_string())?;
        if let Some(error) = parsed.errors.first() {
            return Err(format!(
                "The {} {}.",
                error.column.replace('_', " "),
                error.reason
            ));
        }
        parsed
            .rows
            .into_iter()
            .next()
            .ok_or_else(|| "The rate needs a prefix and a price a minute.".to_owned())
    }
}

/// A row that cannot be imported, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub column: String,
    pub reason: String,
}

/// Whose column names a file uses, which decides what a 0 first block means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Ours,
    A2Billing,
    Astpp,
}

/// What a file holds.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub rows: Vec<RateRow>,
    pub errors: Vec<RowError>,
    pub dialect: Dialect,
    /// The file's headers that were read, with what each was read as.
    pub columns: Vec<(String, &'static str)>,
    /// What the file does not give: kept for prefixes already in the table,
    /// defaults for new ones.
    pub missing: Vec<&'static str>,
    /// Headers that mean nothing here: their columns are not read.
    pub unknown: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Column {
    Prefix,
    Description,
    PerMinute,
    ConnectionFee,
    Initial,
    Subsequent,
    Minimum,
    FreeSeconds,
}

impl Column {
    fn meaning(self) -> &'static str {
        match self {
            Column::Prefix => "prefix",
            Column::Description => "description",
            Column::PerMinute => "per-minute price",
            Column::ConnectionFee => "connection fee",
            Column::Initial => "first billing block",
            Column::Subsequent => "next billing blocks",
            Column::Minimum => "minimum billed duration",
            Column::FreeSeconds => "free seconds (must be 0)",
        }
    }

    const OPTIONAL: [Column; 5] = [
        Column::Description,
        Column::ConnectionFee,
        Column::Initial,
        Column::Subsequent,
        Column::Minimum,
    ];
}

/// A header squashed: lower case, letters and digits only.
pub(crate) fn squash(header: &str) -> String {
    header
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

fn column_of(squashed: &str) -> Option<Column> {
    Some(match squashed {
        "prefix" | "dialprefix" | "code" | "destinationprefix" | "pattern" => Column::Prefix,
        "description" | "destination" | "name" | "comment" => Column::Description,
        "perminute" | "rateinitial" | "costmin" | "costperminute" | "rate" | "price" => {
            Column::PerMinute
        }
        "connectionfee" | "connectcharge" | "connectioncost" | "connectfee" => {
            Column::ConnectionFee
        }
        "initialincrement" | "initblock" | "initialblock" => Column::Initial,
        "subsequentincrement" | "billingblock" | "increment" => Column::Subsequent,
        "minimumduration" | "minimum" | "minduration" => Column::Minimum,
        "minimaltimecharge" | "gracetime" | "grace" | "includedseconds" => Column::FreeSeconds,
        _ => return None,
    })
}

fn dialect_of(squashed: &[String]) -> Dialect {
    let has = |names: &[&str]| squashed.iter().any(|h| names.contains(&h.as_str()));
    if has(&["costmin", "connectioncost", "gracetime", "increment"]) {
        Dialect::Astpp
    } else if has(&[
        "dialprefix",
        "rateinitial",
        "initblock",
        "billingblock",
        "connectcharge",
    ]) {
        Dialect::A2Billing
    } else {
        Dialect::Ours
    }
}

/// The column names of our own export, in order.
pub const EXPORT_HEADER: [&str; 7] = [
    "prefix",
    "description",
    "per_minute",
    "connection_fee",
    "initial_increment",
    "subsequent_increment",
    "minimum_duration",
];

/// Why a file cannot be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty")]
    Empty,
    #[error("the header has no {0} column (tried names such as {1})")]
    MissingColumn(&'static str, &'static str),
    #[error("the header names {0:?} twice")]
    DuplicateColumn(String),
}

/// A reader for a file people bring: a byte-order mark dropped, `;` as the
/// separator when the header has more of them than `,`, cells trimmed,
/// rows of any length. `None` for a file with nothing in it.
pub(crate) fn reader(text: &str) -> Option<csv::Reader<&[u8]>> {
    let text = text.trim_start_matches('\u{feff}');
    let first_line = text.lines().find(|l| !l.trim().is_empty())?;
    let delimiter = if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    Some(
        csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes()),
    )
}

/// Reads a rate file. Every bad row is reported with its line, column and
/// reason; the good rows are returned too, but an import applies only a file
/// with no errors.
pub fn parse(text: &str) -> Result<Parsed, FileError> {
    let mut reader = reader(text).ok_or(FileError::Empty)?;
    let headers = reader.headers().map_err(|_| FileError::Empty)?.clone();
    let squashed: Vec<String> = headers.iter().map(squash).collect();
    let dialect = dialect_of(&squashed);
    let mut columns: BTreeMap<Column, (usize, String)> = BTreeMap::new();
    let mut read = Vec::new();
    let mut unknown = Vec::new();
    for (index, name) in headers.iter().enumerate() {
        match column_of(&squashed[index]) {
            Some(column) => {
                if columns.insert(column, (index, name.to_owned())).is_some() {
                    return Err(FileError::DuplicateColumn(name.to_owned()));
                }
                read.push((name.to_owned(), column.meaning()));
            }
            None if name.is_empty() => {}
            None => unknown.push(name.to_owned()),
        }
    }
    if !columns.contains_key(&Column::Prefix) {
        return Err(FileError::MissingColumn(
            "prefix",
            "prefix, dialprefix, Code",
        ));
    }
    if !columns.contains_key(&Column::PerMinute) {
        return Err(FileError::MissingColumn(
            "per-minute price",
            "per_minute, rateinitial, Cost/Min",
        ));
    }
    let missing = Column::OPTIONAL
        .iter()
        .filter(|c| !columns.contains_key(c))
        .map(|c| c.meaning())
        .collect();

    let mut parsed = Parsed {
        rows: Vec::new(),
        errors: Vec::new(),
        dialect,
        columns: read,
        missing,
        unknown,
    };
    let mut seen: HashSet<String> = HashSet::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                parsed.errors.push(RowError {
                    line,
                    column: String::new(),
                    reason: error.to_string(),
                });
                continue;
            }
        };
        if record.iter().all(|field| field.is_empty()) {
            continue;
        }
        let mut errors = Vec::new();
        let mut error = |column: Column, reason: String| {
            let name = columns
                .get(&column)
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            errors.push(RowError {
                line,
                column: name,
                reason,
            });
        };
        let field = |column: Column| {
            columns
                .get(&column)
                .and_then(|(index, _)| record.get(*index))
                .unwrap_or("")
        };
        let prefix: String = field(Column::Prefix).trim_start_matches('+').to_owned();
        if prefix.is_empty() || prefix.len() > 15 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            error(Column::Prefix, "must be 1 to 15 digits".into());
        } else if !seen.insert(prefix.clone()) {
            error(
                Column::Prefix,
                format!("{prefix} appears earlier in the file"),
            );
        }
        let per_minute = match field(Column::PerMinute) {
            "" => {
                error(Column::PerMinute, "is empty".into());
                PerMinute::ZERO
            }
            text => match PerMinute::parse_decimal(text) {
                Ok(p) if p.nanos() < 0 => {
                    error(Column::PerMinute, "must not be negative".into());
                    p
                }
                Ok(p) if p.nanos() > 10_000 * crate::money::NANOS_PER_UNIT => {
                    error(Column::PerMinute, "is more than 10,000 a minute".into());
                    p
                }
                Ok(p) => p,
                Err(why) => {
                    error(Column::PerMinute, format!("{text:?} {why}"));
                    PerMinute::ZERO
                }
            },
        };
        let connection_fee = match field(Column::ConnectionFee) {
            "" => None,
            text => match Money::parse_decimal(text) {
                Ok(m) if m.micros() >= 0 => Some(m),
                Ok(_) => {
                    error(Column::ConnectionFee, "must not be negative".into());
                    None
                }
                Err(why) => {
                    error(Column::ConnectionFee, format!("{text:?} {why}"));
                    None
                }
            },
        };
        let mut seconds = |column: Column| match field(column) {
            "" => None,
            text => match text.parse::<u32>() {
                Ok(n) if n <= 3600 => Some(n),
                _ => {
                    error(
                        column,
                        format!("{text:?} must be whole seconds from 0 to 3600"),
                    );
                    None
                }
            },
        };
        let initial = seconds(Column::Initial);
        let subsequent = seconds(Column::Subsequent);
        let minimum = seconds(Column::Minimum);
        let free = seconds(Column::FreeSeconds);
        if free.is_some_and(|n| n > 0) {
            error(
                Column::FreeSeconds,
                "free seconds are not a term of Switchboard's rates: only 0 can be imported".into(),
            );
        }
        // 0 means "by the second" for the next blocks everywhere; for the
        // first block it means "none" (bill in next blocks from the start),
        // except in ASTPP, which bills its first second alone.
        let subsequent = subsequent.map(|n| n.max(1));
        let initial = initial.map(|n| match (n, dialect) {
            (0, Dialect::Astpp) => 1,
            (0, _) => subsequent.unwrap_or(1),
            (n, _) => n,
        });
        if errors.is_empty() {
            parsed.rows.push(RateRow {
                line,
                prefix,
                description: Some(csv_cell::restore(field(Column::Description)).into_owned())
                    .filter(|d| !d.is_empty()),
                per_minute,
                connection_fee,
                initial_increment: initial,
                subsequent_increment: subsequent,
                minimum_duration: minimum,
            });
        } else {
            parsed.errors.extend(errors);
        }
    }
    Ok(parsed)
}

/// One field a file changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

/// What changes between a rate's terms and new ones, field by field.
pub fn changes(old: &Terms, new: &Terms, currency: &str) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut field = |name: &'static str, from: String, to: String| {
        if from != to {
            changes.push(FieldChange {
                field: name,
                from,
                to,
            });
        }
    };
    field(
        "description",
        old.description.clone(),
        new.description.clone(),
    );
    field(
        "per-minute price",
        old.per_minute.format(currency),
        new.per_minute.format(currency),
    );
    let exact = |m: Money| crate::money::PerMinute(m.micros() * 1_000).format(currency);
    field(
        "connection fee",
        exact(old.connection_fee),
        exact(new.connection_fee),
    );
    let blocks = |t: &Terms| format!("{}/{} s", t.initial_increment, t.subsequent_increment);
    field("billing blocks", blocks(old), blocks(new));
    field(
        "minimum billed",
        format!("{} s", old.minimum_duration),
        format!("{} s", new.minimum_duration),
    );
    changes
}

/// What applying a file would do to the table in force.
#[derive(Clone, Debug, Default)]
pub struct Diff {
    /// New prefixes, with the file's line.
    pub added: Vec<(usize, Terms)>,
    /// Prefixes whose terms change: the rate in force, its new terms, and
    /// the file's line.
    pub changed: Vec<(Rate, Terms, usize)>,
    pub removed: Vec<Rate>,
    pub unchanged: usize,
}

/// Compares a file with the rates in force. With `replace`, prefixes the
/// file does not name are removed; otherwise they stay.
pub fn diff(current: &[&Rate], rows: &[RateRow], replace: bool) -> Diff {
    let by_prefix: BTreeMap<&str, &Rate> =
        current.iter().map(|r| (r.prefix.as_str(), *r)).collect();
    let mut diff = Diff::default();
    let mut named = HashSet::new();
    for row in rows {
        named.insert(row.prefix.as_str());
        match by_prefix.get(row.prefix.as_str()) {
            None => diff.added.push((row.line, row.terms(None))),
            Some(rate) => {
                let terms = row.terms(Some(rate));
                if terms == Terms::of(rate) {
                    diff.unchanged += 1;
                } else {
                    diff.changed.push(((*rate).clone(), terms, row.line));
                }
            }
        }
    }
    if replace {
        diff.removed = current
            .iter()
            .filter(|r| !named.contains(r.prefix.as_str()))
            .map(|r| (*r).clone())
            .collect();
    }
    diff
}

/// Writes rates in our own format, which `parse` reads back.
pub fn export(rates: &[&Rate]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(EXPORT_HEADER);
    let decimal = |m: Money| PerMinute(m.micros() * 1_000).decimal();
    for rate in rates {
        let _ = writer.write_record(
            [
                rate.prefix.clone(),
                rate.description.clone(),
                rate.per_minute.decimal(),
                decimal(rate.connection_fee),
                rate.initial_increment.to_string(),
                rate.subsequent_increment.to_string(),
                rate.minimum_duration.to_string(),
            ]
            .iter()
            .map(|cell| csv_cell::neutralize(cell).into_owned()),
        );
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn price(text: &str) -> PerMinute {
        PerMinute::parse_decimal(text).expect("a price")
    }

    fn rate(prefix: &str, per_minute: &str) -> Rate {
        Rate {
            id: 1,
            prefix: prefix.into(),
            description: format!("to {prefix}, \"quoted\""),
            per_minute: price(per_minute),
            connection_fee: Money(20_000),
            initial_increment: 30,
            subsequent_increment: 6,
            minimum_duration: 0,
            effective_from: Utc::now(),
            removed: false,
        }
    }

    #[test]
    fn a2billing_columns_are_understood() {
        let file = "dialprefix,destination,rateinitial,initblock,billingblock,connectcharge\n\
                    44,United Kingdom,0.012,60,60,0\n\
                    447,UK Mobile,0.1,30,6,0.05\n";
        let parsed = parse(file).expect("readable");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.dialect, Dialect::A2Billing);
        assert_eq!(parsed.rows.len(), 2);
        let mobile = parsed.rows[1].terms(None);
        assert_eq!(parsed.rows[1].line, 3);
        assert_eq!(
            (
                mobile.prefix.as_str(),
                mobile.per_minute,
                mobile.connection_fee
            ),
            ("447", price("0.1"), Money(50_000))
        );
        assert_eq!(
            (
                mobile.initial_increment,
                mobile.subsequent_increment,
                mobile.minimum_duration
            ),
            (30, 6, 0)
        );
    }

    #[test]
    fn a2billings_zero_first_block_bills_in_next_blocks_from_the_start() {
        let file = "dialprefix,destination,rateinitial,initblock,billingblock\n\
                    44,UK,0.012,0,6\n\
                    1,US,0.01,0,0\n";
        let parsed = parse(file).expect("readable");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let uk = parsed.rows[0].terms(None);
        assert_eq!((uk.initial_increment, uk.subsequent_increment), (6, 6));
        let us = parsed.rows[1].terms(None);
        assert_eq!(
            (us.initial_increment, us.subsequent_increment),
            (1, 1),
            "billingblock 0: by the second"
        );
    }

    #[test]
    fn astpp_columns_with_semicolons_are_understood() {
        let file =
            "Code;Destination;Connection Cost;Grace Time;Cost/Min;Initial Increment;Increment\n\
                    1;USA;0;0;0.009;6;6\n\
                    1876;Jamaica;0.01;0;0.25;60;60\n\
                    44;UK;0;0;0.02;0;60\n";
        let parsed = parse(file).expect("readable");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.dialect, Dialect::Astpp);
        assert_eq!(parsed.rows[0].per_minute, price("0.009"));
        assert_eq!(parsed.rows[1].connection_fee, Some(Money(10_000)));
        assert_eq!(parsed.rows[1].description.as_deref(), Some("Jamaica"));
        let uk = parsed.rows[2].terms(None);
        assert_eq!(
            (uk.initial_increment, uk.subsequent_increment),
            (1, 60),
            "ASTPP bills a 0 first block as one second"
        );
    }

    #[test]
    fn free_seconds_other_than_zero_are_refused_not_ignored() {
        let file = "Code;Destination;Grace Time;Cost/Min\n1;USA;0;0.009\n44;UK;6;0.02\n";
        let parsed = parse(file).expect("readable");
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(
            (parsed.errors[0].line, parsed.errors[0].column.as_str()),
            (3, "Grace Time")
        );
        let magnus =
            parse("dialprefix,rateinitial,minimal_time_charge\n1,0.01,3\n").expect("readable");
        assert_eq!(magnus.errors.len(), 1, "calls under 3 s free: refused");
    }

    #[test]
    fn prices_keep_eight_decimals_as_carriers_write_them() {
        let parsed = parse("prefix,per_minute\n44,0.0123456\n33,0.01234567\n").expect("readable");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.rows[0].per_minute, PerMinute(12_345_600));
        assert_eq!(parsed.rows[1].per_minute, PerMinute(12_345_670));
        let too_fine = parse("prefix,per_minute\n44,0.0000000001\n").expect("readable");
        assert_eq!(too_fine.errors.len(), 1);
    }

    #[test]
    fn every_bad_row_is_named_with_its_line_column_and_reason() {
        let file = "prefix,description,per_minute,initial_increment\n\
                    44,UK,0.01,60\n\
                    4x,Bad,0.01,60\n\
                    45,Denmark,-1,60\n\
                    46,Sweden,cheap,60\n\
                    47,Norway,0.02,3601\n\
                    44,UK again,0.01,60\n\
                    48,Poland,,60\n";
        let parsed = parse(file).expect("readable");
        let found: Vec<(usize, &str)> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (3, "prefix"),
                (4, "per_minute"),
                (5, "per_minute"),
                (6, "initial_increment"),
                (7, "prefix"),
                (8, "per_minute")
            ]
        );
        assert!(parsed.errors[4].reason.contains("appears earlier"));
        assert_eq!(parsed.rows.len(), 1);
    }

    #[test]
    fn a_file_without_the_needed_columns_is_refused_as_a_whole() {
        assert!(matches!(parse(""), Err(FileError::Empty)));
        assert!(matches!(
            parse("destination,rate\nUK,1\n"),
            Err(FileError::MissingColumn("prefix", _))
        ));
        assert!(matches!(
            parse("prefix,destination\n44,UK\n"),
            Err(FileError::MissingColumn("per-minute price", _))
        ));
        assert!(matches!(
            parse("prefix,code,rate\n"),
            Err(FileError::DuplicateColumn(_))
        ));
    }

    #[test]
    fn a_file_that_leaves_columns_out_keeps_the_current_terms_and_says_so() {
        let current = rate("44", "0.1");
        let parsed = parse("prefix,rate,surcharge\n44,0.2\n33,0.05\n").expect("readable");
        assert_eq!(parsed.unknown, ["surcharge"], "an unknown header is named");
        assert!(parsed.missing.contains(&"connection fee"));
        assert!(parsed.missing.contains(&"first billing block"));
        let diff = diff(&[&current], &parsed.rows, false);
        let (old, new, line) = &diff.changed[0];
        assert_eq!(*line, 2);
        assert_eq!(
            (
                new.connection_fee,
                new.initial_increment,
                new.subsequent_increment
            ),
            (Money(20_000), 30, 6),
            "the fee and blocks the file does not give are kept"
        );
        assert_eq!(new.description, old.description);
        let changed = changes(&Terms::of(old), new, "USD");
        assert_eq!(
            changed,
            [FieldChange {
                field: "per-minute price",
                from: "$0.10".into(),
                to: "$0.20".into()
            }],
            "only the price changes, and the preview says so"
        );
        let (_, added) = &diff.added[0];
        assert_eq!(
            (
                added.connection_fee,
                added.initial_increment,
                added.subsequent_increment
            ),
            (Money::ZERO, 60, 60),
            "a new prefix gets the defaults"
        );
    }

    #[test]
    fn every_field_that_changes_is_named() {
        let old = Terms::of(&rate("44", "0.1"));
        let new = Terms {
            description: "UK".into(),
            connection_fee: Money(0),
            initial_increment: 60,
            subsequent_increment: 60,
            minimum_duration: 60,
            ..old.clone()
        };
        let fields: Vec<&str> = changes(&old, &new, "USD").iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            [
                "description",
                "connection fee",
                "billing blocks",
                "minimum billed"
            ]
        );
    }

    #[test]
    fn what_we_export_reads_back_the_same_and_diffs_to_nothing() {
        let rates = [rate("44", "0.0123456"), rate("1", "0.009")];
        let refs: Vec<&Rate> = rates.iter().collect();
        let parsed = parse(&export(&refs)).expect("readable");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert!(parsed.unknown.is_empty() && parsed.missing.is_empty());
        let unchanged = diff(&refs, &parsed.rows, true);
        assert_eq!(
            (
                unchanged.added.len(),
                unchanged.changed.len(),
                unchanged.removed.len(),
                unchanged.unchanged
            ),
            (0, 0, 0, 2)
        );
        let edited = parse("prefix,per_minute\n44,0.02\n33,0.1\n").expect("readable");
        let merge = diff(&refs, &edited.rows, false);
        assert_eq!(
            (merge.added.len(), merge.changed.len(), merge.removed.len()),
            (1, 1, 0)
        );
        let replace = diff(&refs, &edited.rows, true);
        assert_eq!(
            replace
                .removed
                .iter()
                .map(|r| r.prefix.as_str())
                .collect::<Vec<_>>(),
            ["1"]
        );
    }

    #[test]
    fn a_hundred_thousand_rows_parse() {
        let mut file = String::from("prefix,description,per_minute\n");
        for n in 0..100_000 {
            file.push_str(&format!("{},Destination {n},0.0{}\n", 100_000 + n, n % 10));
        }
        let parsed = parse(&file).expect("readable");
        assert_eq!(parsed.rows.len(), 100_000);
        assert!(parsed.errors.is_empty());
    }
}
