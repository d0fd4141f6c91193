//! Rate tables as CSV: reading the columns people bring (our own export,
//! A2Billing's, ASTPP's; `,` or `;` separated), checking every row, and
//! comparing a file with the table in force. Pure: no I/O.

use std::collections::{BTreeMap, HashSet};

use crate::calls::rating::Rate;
use crate::csv_cell;
use crate::money::Money;

/// One checked row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateRow {
    /// The row's line in the file (the header is line 1).
    pub line: usize,
    pub prefix: String,
    pub description: String,
    pub per_minute: Money,
    pub connection_fee: Money,
    pub initial_increment: u32,
    pub subsequent_increment: u32,
    pub minimum_duration: u32,
}

/// A row that cannot be imported, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub column: String,
    pub reason: String,
}

/// What a file holds.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub rows: Vec<RateRow>,
    pub errors: Vec<RowError>,
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
}

/// Header names, squashed (lower case, letters and digits only), per column.
fn column_of(header: &str) -> Option<Column> {
    let key: String = header
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match key.as_str() {
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
        "minimumduration" | "minimum" | "minduration" | "minimaltimecharge" => Column::Minimum,
        _ => return None,
    })
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

/// Reads a rate file. Every bad row is reported with its line, column and
/// reason; the good rows are returned too, but an import applies only a file
/// with no errors.
pub fn parse(text: &str) -> Result<Parsed, FileError> {
    let text = text.trim_start_matches('\u{feff}');
    let first_line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or(FileError::Empty)?;
    let delimiter = if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|_| FileError::Empty)?.clone();
    let mut columns: BTreeMap<Column, (usize, String)> = BTreeMap::new();
    for (index, name) in headers.iter().enumerate() {
        if let Some(column) = column_of(name) {
            if columns.insert(column, (index, name.to_owned())).is_some() {
                return Err(FileError::DuplicateColumn(name.to_owned()));
            }
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

    let mut parsed = Parsed::default();
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
        let mut take_money = |column: Column, default: Money, required: bool| {
            let text = field(column);
            match parse_money(text, default, required) {
                Ok(m) => m,
                Err(why) => {
                    error(column, why);
                    Money::ZERO
                }
            }
        };
        let per_minute = take_money(Column::PerMinute, Money::ZERO, true);
        let connection_fee = take_money(Column::ConnectionFee, Money::ZERO, false);
        let mut take_seconds = |column: Column, default: u32, least: u32| {
            let text = field(column);
            match parse_seconds(text, default, least) {
                Ok(n) => n,
                Err(why) => {
                    error(column, why);
                    default
                }
            }
        };
        let initial_increment = take_seconds(Column::Initial, 60, 1);
        let subsequent_increment = take_seconds(Column::Subsequent, initial_increment, 1);
        let minimum_duration = take_seconds(Column::Minimum, 0, 0);
        if errors.is_empty() {
            parsed.rows.push(RateRow {
                line,
                prefix,
                description: csv_cell::restore(field(Column::Description)).into_owned(),
                per_minute,
                connection_fee,
                initial_increment,
                subsequent_increment,
                minimum_duration,
            });
        } else {
            parsed.errors.extend(errors);
        }
    }
    Ok(parsed)
}

fn parse_money(text: &str, default: Money, required: bool) -> Result<Money, String> {
    if text.is_empty() {
        return if required {
            Err("is empty".into())
        } else {
            Ok(default)
        };
    }
    match Money::parse_decimal(text) {
        Ok(m) if m.micros() >= 0 => Ok(m),
        Ok(_) => Err("must not be negative".into()),
        Err(why) => Err(format!("{text:?} {why}")),
    }
}

fn parse_seconds(text: &str, default: u32, least: u32) -> Result<u32, String> {
    if text.is_empty() {
        return Ok(default);
    }
    match text.parse::<u32>() {
        Ok(n) if (least..=3600).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} must be whole seconds from {least} to 3600"
        )),
    }
}

/// What applying a file would do to the table in force.
#[derive(Clone, Debug, Default)]
pub struct Diff {
    pub added: Vec<RateRow>,
    pub changed: Vec<(Rate, RateRow)>,
    pub removed: Vec<Rate>,
    pub unchanged: usize,
}

fn same(rate: &Rate, row: &RateRow) -> bool {
    rate.description == row.description
        && rate.per_minute == row.per_minute
        && rate.connection_fee == row.connection_fee
        && rate.initial_increment == row.initial_increment
        && rate.subsequent_increment == row.subsequent_increment
        && rate.minimum_duration == row.minimum_duration
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
            None => diff.added.push(row.clone()),
            Some(rate) if same(rate, row) => diff.unchanged += 1,
            Some(rate) => diff.changed.push(((*rate).clone(), row.clone())),
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
    let decimal = |m: Money| {
        let micros = m.micros();
        let text = format!("{}.{:06}", micros / 1_000_000, (micros % 1_000_000).abs());
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    for rate in rates {
        let _ = writer.write_record(
            [
                rate.prefix.clone(),
                rate.description.clone(),
                decimal(rate.per_minute),
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

    #[test]
    fn a2billing_columns_are_understood() {
        let file = "dialprefix,destination,rateinitial,initblock,billingblock,connectcharge\n\
                    44,United Kingdom,0.012,60,60,0\n\
                    447,UK Mobile,0.1,30,6,0.05\n";
        let parsed = parse(file).expect("readable");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.rows.len(), 2);
        let mobile = &parsed.rows[1];
        assert_eq!(mobile.line, 3);
        assert_eq!(
            (
                mobile.prefix.as_str(),
                mobile.per_minute,
                mobile.connection_fee
            ),
            ("447", Money(100_000), Money(50_000))
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
    fn astpp_columns_with_semicolons_are_understood() {
        let file = "Code;Destination;Connection Cost;Cost/Min;Initial Increment;Increment\n\
                    1;USA;0;0.009;6;6\n\
                    1876;Jamaica;0.01;0.25;60;60\n";
        let parsed = parse(file).expect("readable");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.rows[0].per_minute, Money(9_000));
        assert_eq!(parsed.rows[1].connection_fee, Money(10_000));
        assert_eq!(parsed.rows[1].description, "Jamaica");
    }

    #[test]
    fn every_bad_row_is_named_with_its_line_column_and_reason() {
        let file = "prefix,description,per_minute,initial_increment\n\
                    44,UK,0.01,60\n\
                    4x,Bad,0.01,60\n\
                    45,Denmark,-1,60\n\
                    46,Sweden,cheap,60\n\
                    47,Norway,0.02,0\n\
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
    fn what_we_export_reads_back_the_same_and_diffs_to_nothing() {
        let rate = |prefix: &str, micros: i64| Rate {
            id: 1,
            prefix: prefix.into(),
            description: format!("to {prefix}, \"quoted\""),
            per_minute: Money(micros),
            connection_fee: Money(1),
            initial_increment: 30,
            subsequent_increment: 6,
            minimum_duration: 0,
            effective_from: Utc::now(),
            removed: false,
        };
        let rates = [rate("44", 12_345), rate("1", 9_000)];
        let refs: Vec<&Rate> = rates.iter().collect();
        let parsed = parse(&export(&refs)).expect("readable");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
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
