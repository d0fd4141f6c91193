//! Phone numbers (DIDs): the inventory staff load from carriers'
//! rate-center files (`inventory_csv`, pure; `inventory`), and the numbers
//! clients order for their PBXs, pay for from the balance and release
//! (`ordering`). A number is `available`, `ordered` (paid; to be configured
//! on its PBX), `active`, or `quarantined` after a release until its
//! quarantine ends, when it is available again without anyone moving it.

pub mod inventory;
pub mod inventory_csv;
pub mod ordering;

use std::fmt;

/// Where a number is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Available,
    Ordered,
    Active,
    Quarantined,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Available => "available",
            Status::Ordered => "ordered",
            Status::Active => "active",
            Status::Quarantined => "quarantined",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "available" => Status::Available,
            "ordered" => Status::Ordered,
            "active" => Status::Active,
            "quarantined" => Status::Quarantined,
            _ => return None,
        })
    }
}

/// A phone number in E.164: `+` and 8 to 15 digits, the first not 0.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct E164(String);

impl E164 {
    /// Reads a number as people and carriers write it: `+1 (312) 555-0142`,
    /// `312.555.0142`, `1-312-555-0142`, `13125550142`, `011 44 20 7946
    /// 0958`. Ten digits, or eleven starting with 1, are North American
    /// (area code and exchange starting 2 to 9); other numbers need their
    /// country code after `+`, `00` or `011`.
    pub fn parse(text: &str) -> Result<E164, &'static str> {
        let text = text.trim();
        let mut digits = String::with_capacity(text.len());
        let mut plus = false;
        for (at, c) in text.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if at == 0 => plus = true,
                ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
                _ => return Err("is not a phone number"),
            }
        }
        if digits.is_empty() {
            return Err("is empty");
        }
        let international = if plus {
            Some(digits.as_str())
        } else if let Some(rest) = digits.strip_prefix("011") {
            Some(rest)
        } else {
            digits.strip_prefix("00")
        };
        let full = match international {
            Some(rest) => rest.to_owned(),
            None => match digits.len() {
                10 => format!("1{digits}"),
                11 if digits.starts_with('1') => digits.clone(),
                _ => return Err("is not a 10-digit North American number or +country code"),
            },
        };
        if full.len() < 8 || full.len() > 15 || full.starts_with('0') {
            return Err("does not have 8 to 15 digits with its country code");
        }
        if let Some(national) = full.strip_prefix('1') {
            let bytes = national.as_bytes();
            if bytes.len() != 10 {
                return Err("a +1 number has 10 digits after the 1");
            }
            if bytes[0] < b'2' || bytes[3] < b'2' {
                return Err("its area code and exchange must start with 2 to 9");
            }
        }
        Ok(E164(format!("+{full}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// North America's area code (NPA) and exchange (NXX), for a +1 number.
    pub fn npa_nxx(&self) -> Option<(&str, &str)> {
        let national = self.0.strip_prefix("+1")?;
        Some((&national[..3], &national[3..6]))
    }

    /// Whether a number as a PBX wrote it (a CDR's `did` or `dst`: `+1…`,
    /// `1…`, ten digits, with or without punctuation) is this one.
    pub fn is_written_as(&self, written: &str) -> bool {
        E164::parse(written).is_ok_and(|n| n == *self)
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_common_way_of_writing_a_north_american_number_reads_the_same() {
        for written in [
            "+1 (312) 555-0142",
            "(312) 555-0142",
            "312-555-0142",
            "312.555.0142",
            "1-312-555-0142",
            "13125550142",
            "3125550142",
            "+13125550142",
            "011 1 312 555 0142",
        ] {
            assert_eq!(
                E164::parse(written).map(|n| n.to_string()),
                Ok("+13125550142".to_owned()),
                "{written}"
            );
        }
    }

    #[test]
    fn other_countries_need_their_country_code() {
        assert_eq!(
            E164::parse("+44 20 7946 0958").map(|n| n.to_string()),
            Ok("+442079460958".into())
        );
        assert_eq!(
            E164::parse("0044 20 7946 0958").map(|n| n.to_string()),
            Ok("+442079460958".into())
        );
        assert!(E164::parse("020 7946 0958").is_err());
    }

    #[test]
    fn malformed_numbers_are_refused() {
        for bad in [
            "",
            "555-0142",
            "312-555-014x",
            "(112) 555-0142",
            "312-155-0142",
            "+1 312 555 01423",
            "+0 123 4567",
            "1+312",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad:?} was read");
        }
    }

    #[test]
    fn a_pbx_may_write_the_number_a_call_reached_in_several_ways() {
        let number = E164::parse("+13125550142").expect("a number");
        assert!(number.is_written_as("13125550142"));
        assert!(number.is_written_as("3125550142"));
        assert!(number.is_written_as("+13125550142"));
        assert!(!number.is_written_as("3125550143"));
        assert!(!number.is_written_as("201"));
        assert_eq!(number.npa_nxx(), Some(("312", "555")));
    }
}
