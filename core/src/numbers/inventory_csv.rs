//! Inventory files as CSV: the numbers carriers publish per rate center,
//! read from the columns people bring (`,` or `;` separated), every row
//! checked. Pure: no I/O.
//!
//! Columns, by the names carriers and NANPA-style exports write (compared
//! without case, spaces or punctuation):
//!
//! | meaning | names accepted | needed |
//! |---|---|---|
//! | number | `number`, `did`, `tn`, `telephone_number`, `phone_number`, `phone`, `e164`, `dn` | yes |
//! | area code | `npa`, `area_code` | no: read from the number, checked against it when given |
//! | exchange | `nxx`, `exchange`, `prefix` | likewise |
//! | both at once | `npa-nxx`, `npanxx` | likewise |
//! | rate center | `rate_center`, `ratecenter`, `rc`, `rate_center_name`, `rc_name` | yes |
//! | state or region | `state`, `region`, `province`, `st` | yes |
//! | city | `city`, `locality`, `town` | no |
//! | LATA | `lata` | no |
//! | carrier | `carrier`, `ocn`, `ocn_name`, `company`, `vendor` | no |
//! | tier | `tier`, `class`, `price_tier` | no |
//! | setup fee | `setup_fee`, `setup`, `nrc`, `activation`, `one_time` | unless a tier prices the row |
//! | monthly fee | `monthly_fee`, `monthly`, `mrc`, `recurring` | likewise |
//!
//! A row prices itself with both fees, or names a tier whose prices staff
//! set (its own fees win where it has both).

use std::collections::{BTreeMap, HashMap, HashSet};

pub use crate::calls::rate_csv::RowError;
use crate::calls::rate_csv::{self, squash};
use crate::money::Money;
use crate::numbers::E164;

/// One checked row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryRow {
    /// The row's line in the file (the header is line 1).
    pub line: usize,
    pub number: E164,
    pub npa: String,
    pub nxx: String,
    pub rate_center: String,
    pub state: String,
    pub city: Option<String>,
    pub lata: Option<String>,
    pub carrier: Option<String>,
    pub tier: Option<String>,
    /// Whether the prices are the tier's (and follow it while available).
    pub priced_by_tier: bool,
    pub setup_fee: Money,
    pub monthly_fee: Money,
}

/// A tier's prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierPrices {
    pub setup_fee: Money,
    pub monthly_fee: Money,
}

/// What a file holds.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub rows: Vec<InventoryRow>,
    pub errors: Vec<RowError>,
    /// The file's headers that were read, with what each was read as.
    pub columns: Vec<(String, &'static str)>,
    /// Headers that mean nothing here: their columns are not read.
    pub unknown: Vec<String>,
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Column {
    Number,
    Npa,
    Nxx,
    NpaNxx,
    RateCenter,
    State,
    City,
    Lata,
    Carrier,
    Tier,
    SetupFee,
    MonthlyFee,
}

impl Column {
    fn meaning(self) -> &'static str {
        match self {
            Column::Number => "number",
            Column::Npa => "area code (NPA)",
            Column::Nxx => "exchange (NXX)",
            Column::NpaNxx => "NPA-NXX",
            Column::RateCenter => "rate center",
            Column::State => "state or region",
            Column::City => "city",
            Column::Lata => "LATA",
            Column::Carrier => "carrier",
            Column::Tier => "tier",
            Column::SetupFee => "setup fee",
            Column::MonthlyFee => "monthly fee",
        }
    }
}

fn column_of(squashed: &str) -> Option<Column> {
    Some(match squashed {
        "number" | "did" | "tn" | "telephonenumber" | "phonenumber" | "phone" | "e164" | "dn"
        | "didnumber" => Column::Number,
        "npa" | "areacode" => Column::Npa,
        "nxx" | "exchange" | "prefix" => Column::Nxx,
        "npanxx" => Column::NpaNxx,
        "ratecenter" | "rc" | "ratecentername" | "rcname" | "ratecentre" => Column::RateCenter,
        "state" | "region" | "province" | "st" => Column::State,
        "city" | "locality" | "town" => Column::City,
        "lata" => Column::Lata,
        "carrier" | "ocn" | "ocnname" | "company" | "vendor" => Column::Carrier,
        "tier" | "class" | "pricetier" => Column::Tier,
        "setupfee" | "setup" | "nrc" | "activation" | "onetime" | "activationfee" => {
            Column::SetupFee
        }
        "monthlyfee" | "monthly" | "mrc" | "recurring" | "monthlyprice" => Column::MonthlyFee,
        _ => return None,
    })
}

/// A price as carriers write it: `1.50`, `$1.50`, `0`.
fn price(text: &str) -> Result<Money, String> {
    let text = text.trim().trim_start_matches('$').trim();
    match Money::parse_decimal(text) {
        Ok(money) if money.micros() < 0 => Err("must not be negative".into()),
        Ok(money) if money.micros() > 100_000 * crate::money::MICROS_PER_UNIT => {
            Err("is more than 100,000".into())
        }
        Ok(money) => Ok(money),
        Err(error) => Err(format!("{text:?} {error}")),
    }
}

/// Reads an inventory file. Every bad row is reported with its line, column
/// and reason; the good rows are returned too, but an import applies only a
/// file with no errors. `tiers` are the tiers staff priced.
pub fn parse(text: &str, tiers: &HashMap<String, TierPrices>) -> Result<Parsed, FileError> {
    let mut reader = rate_csv::reader(text).ok_or(FileError::Empty)?;
    let headers = reader.headers().map_err(|_| FileError::Empty)?.clone();
    let mut columns: BTreeMap<Column, (usize, String)> = BTreeMap::new();
    let mut read = Vec::new();
    let mut unknown = Vec::new();
    for (index, name) in headers.iter().enumerate() {
        match column_of(&squash(name)) {
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
    for (column, names) in [
        (Column::Number, "number, did, tn, telephone_number"),
        (Column::RateCenter, "rate_center, ratecenter, rc"),
        (Column::State, "state, region, province"),
    ] {
        if !columns.contains_key(&column) {
            return Err(FileError::MissingColumn(column.meaning(), names));
        }
    }
    let mut parsed = Parsed {
        rows: Vec::new(),
        errors: Vec::new(),
        columns: read,
        unknown,
    };
    let mut seen: HashSet<E164> = HashSet::new();
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
        if record.iter().all(str::is_empty) {
            continue;
        }
        let mut errors: Vec<RowError> = Vec::new();
        let mut error = |column: Column, reason: String| {
            let name = columns
                .get(&column)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| column.meaning().to_owned());
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
        let optional = |column: Column| Some(field(column).to_owned()).filter(|s| !s.is_empty());

        let number = match E164::parse(field(Column::Number)) {
            Ok(number) => {
                if !seen.insert(number.clone()) {
                    error(
                        Column::Number,
                        format!("{number} appears earlier in the file"),
                    );
                }
                Some(number)
            }
            Err(reason) => {
                error(
                    Column::Number,
                    format!("{:?} {reason}", field(Column::Number)),
                );
                None
            }
        };
        let (from_number_npa, from_number_nxx) = number
            .as_ref()
            .and_then(E164::npa_nxx)
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap_or_default();
        let combined: String = field(Column::NpaNxx)
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let (given_npa, given_nxx) = if combined.is_empty() {
            (optional(Column::Npa), optional(Column::Nxx))
        } else if combined.len() == 6 {
            (
                Some(combined[..3].to_owned()),
                Some(combined[3..].to_owned()),
            )
        } else {
            error(Column::NpaNxx, "must be six digits".into());
            (None, None)
        };
        let mut npa = from_number_npa.clone();
        let mut nxx = from_number_nxx.clone();
        for (given, derived, slot, column, digits) in [
            (given_npa, &from_number_npa, &mut npa, Column::Npa, 3),
            (given_nxx, &from_number_nxx, &mut nxx, Column::Nxx, 3),
        ] {
            let Some(given) = given else { continue };
            let column = if columns.contains_key(&Column::NpaNxx) {
                Column::NpaNxx
            } else {
                column
            };
            if given.len() != digits || !given.bytes().all(|b| b.is_ascii_digit()) {
                error(column, format!("{given:?} is not {digits} digits"));
            } else if !derived.is_empty() && given != *derived {
                error(column, format!("{given} does not match the number"));
            } else {
                *slot = given;
            }
        }
        let rate_center = field(Column::RateCenter).to_owned();
        if rate_center.is_empty() {
            error(Column::RateCenter, "is empty".into());
        } else if rate_center.chars().count() > 60 {
            error(Column::RateCenter, "is longer than 60 characters".into());
        }
        let state = field(Column::State).to_owned();
        if state.is_empty() {
            error(Column::State, "is empty".into());
        } else if state.chars().count() > 40 {
            error(Column::State, "is longer than 40 characters".into());
        }
        let tier = optional(Column::Tier);
        let tier_prices = match &tier {
            None => None,
            Some(name) => match tiers.get(name) {
                Some(prices) => Some(*prices),
                None => {
                    error(Column::Tier, format!("{name:?} is not a tier staff priced"));
                    None
                }
            },
        };
        let mut fee = |column: Column| match field(column) {
            "" => None,
            text => match price(text) {
                Ok(money) => Some(money),
                Err(reason) => {
                    error(column, reason);
                    Some(Money::ZERO)
                }
            },
        };
        let setup = fee(Column::SetupFee);
        let monthly = fee(Column::MonthlyFee);
        let (setup_fee, monthly_fee, priced_by_tier) = match (setup, monthly, tier_prices) {
            (Some(setup), Some(monthly), _) => (setup, monthly, false),
            (_, _, Some(prices)) => (prices.setup_fee, prices.monthly_fee, true),
            (_, _, None) if tier.is_some() => (Money::ZERO, Money::ZERO, false),
            (None, _, None) => {
                error(
                    Column::SetupFee,
                    "is empty and no tier prices the row".into(),
                );
                (Money::ZERO, Money::ZERO, false)
            }
            (_, None, None) => {
                error(
                    Column::MonthlyFee,
                    "is empty and no tier prices the row".into(),
                );
                (Money::ZERO, Money::ZERO, false)
            }
        };
        if npa.is_empty() && number.is_some() {
            error(Column::Npa, "is needed for a number outside +1".into());
        }
        let city = optional(Column::City);
        let lata = optional(Column::Lata);
        let carrier = optional(Column::Carrier);
        if !errors.is_empty() {
            parsed.errors.extend(errors);
            continue;
        }
        let Some(number) = number else { continue };
        parsed.rows.push(InventoryRow {
            line,
            number,
            npa,
            nxx,
            rate_center,
            state,
            city,
            lata,
            carrier,
            tier,
            priced_by_tier,
            setup_fee,
            monthly_fee,
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> HashMap<String, TierPrices> {
        HashMap::from([(
            "gold".to_owned(),
            TierPrices {
                setup_fee: Money::parse_decimal("5").expect("money"),
                monthly_fee: Money::parse_decimal("3.5").expect("money"),
            },
        )])
    }

    #[test]
    fn a_carrier_style_file_with_semicolons_is_read_and_numbers_stored_e164() {
        let file = "TN;NPA;NXX;Rate Center;State;City;LATA;OCN Name;NRC;MRC\n\
                    (312) 555-0142;312;555;CHICAGO;IL;Chicago;358;Example Telecom;$1.00;$0.85\n\
                    1-312-555-0143;312;555;CHICAGO;IL;;358;;1;0.85\n";
        let parsed = parse(file, &tiers()).expect("a file");
        assert_eq!(parsed.errors, []);
        assert_eq!(parsed.rows.len(), 2);
        let first = &parsed.rows[0];
        assert_eq!(first.number.as_str(), "+13125550142");
        assert_eq!((first.npa.as_str(), first.nxx.as_str()), ("312", "555"));
        assert_eq!(first.rate_center, "CHICAGO");
        assert_eq!(first.carrier.as_deref(), Some("Example Telecom"));
        assert_eq!(first.setup_fee, Money::parse_decimal("1").expect("money"));
        assert_eq!(
            first.monthly_fee,
            Money::parse_decimal("0.85").expect("money")
        );
        assert_eq!(parsed.rows[1].city, None);
    }

    #[test]
    fn a_nanpa_style_npa_nxx_column_and_a_tier_price_the_row() {
        let file = "NPA-NXX,Number,RateCenter,Region,Tier\n212-555,2125550100,NWYRCYZN01,NY,gold\n";
        let parsed = parse(file, &tiers()).expect("a file");
        assert_eq!(parsed.errors, []);
        let row = &parsed.rows[0];
        assert!(row.priced_by_tier);
        assert_eq!(row.monthly_fee, Money::parse_decimal("3.5").expect("money"));
        assert_eq!(row.state, "NY");
    }

    #[test]
    fn every_bad_row_is_named_with_its_line_column_and_reason() {
        let file = "number,rate_center,state,tier,setup_fee,monthly_fee\n\
                    312-555-0142,CHICAGO,IL,,1,0.85\n\
                    312-555-014,CHICAGO,IL,,1,0.85\n\
                    (312) 555-0142,CHICAGO,IL,,1,0.85\n\
                    312-555-0144,CHICAGO,IL,platinum,,\n\
                    312-555-0145,CHICAGO,IL,,one dollar,0.85\n\
                    312-555-0146,,IL,,1,\n";
        let parsed = parse(file, &tiers()).expect("a file");
        let named: Vec<(usize, &str)> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                (3, "number"),
                (4, "number"),
                (5, "tier"),
                (6, "setup_fee"),
                (7, "rate_center"),
                (7, "monthly_fee"),
            ]
        );
        assert!(parsed.errors[1].reason.contains("appears earlier"));
        assert!(parsed.errors[2].reason.contains("platinum"));
        assert_eq!(parsed.rows.len(), 1);
    }

    #[test]
    fn an_npa_that_disagrees_with_the_number_is_refused() {
        let file = "number,npa,nxx,rate_center,state,setup_fee,monthly_fee\n3125550142,313,555,CHICAGO,IL,1,1\n";
        let parsed = parse(file, &tiers()).expect("a file");
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].column, "npa");
    }

    #[test]
    fn a_file_without_the_needed_columns_is_refused_as_a_whole() {
        assert!(matches!(
            parse("number,state\n3125550142,IL\n", &tiers()),
            Err(FileError::MissingColumn("rate center", _))
        ));
        assert_eq!(parse("  \n", &tiers()).err(), Some(FileError::Empty));
    }

    #[test]
    fn a_hundred_thousand_rows_parse() {
        let mut file = String::from("number,rate_center,state,setup_fee,monthly_fee\n");
        for n in 0..100_000 {
            file.push_str(&format!("+1312{:07},CHICAGO,IL,1.00,0.85\n", 2_000_000 + n));
        }
        let parsed = parse(&file, &tiers()).expect("a file");
        assert_eq!(parsed.errors, []);
        assert_eq!(parsed.rows.len(), 100_000);
    }
}
