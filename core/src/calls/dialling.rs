//! A PBX's dialling rules: how the numbers its people dial become
//! international digits before the longest-prefix match, which numbers are
//! emergency and service numbers (never rated as international), and which
//! of its channels are trunks. Pure functions over plain data.
//!
//! A dialled number is read in this order:
//!
//! 1. anything that is not a phone number (`s`, `*97`, `#21#`) is unknown;
//! 2. an emergency or service number (`911`, `112`), also behind the
//!    outside-line digit (`9911`), is a service call;
//! 3. the outside-line digit is dropped (`9 1 555 010 0199`);
//! 4. `+` or the international prefix (`011`, `00`) starts an
//!    international number;
//! 5. the national prefix (`1` in North America, `0` in most of Europe)
//!    starts a national number, given the country code;
//! 6. without one: a ten-digit North American number gets `1`; in a country
//!    with no national prefix a number is national as dialled; otherwise the
//!    PBX's area code makes a local number national (`555 0199` in 212 is
//!    `1 212 555 0199`);
//! 7. eleven digits or more that fit none of these are an international
//!    number written without its `+` (`442079460958`), as many PBXs and
//!    trunks write them;
//! 8. anything else is unknown: such a call is unrated, never guessed.

use serde::{Deserialize, Serialize};

/// How a PBX dials, and which of its channels are trunks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiallingRules {
    /// The PBX's country calling code: `1`, `44`, `49`.
    pub country_code: String,
    /// Dialled before a national number: `1` (North America), `0` (UK), or
    /// empty where there is none.
    pub national_prefix: String,
    /// Dialled before an international number: `011`, `00`.
    pub international_prefix: String,
    /// The outside-line digit dialled before every outside number (`9`), if
    /// the PBX uses one.
    pub outside_line: String,
    /// The area code local numbers are dialled in, where people dial them
    /// without it (`212`); empty when unknown.
    pub area_code: String,
    /// Emergency and service numbers: never rated as international, and
    /// not charged.
    pub service_numbers: Vec<String>,
    /// The PBX's trunks, as channel names (`PJSIP/voipms`, `SIP/211553`,
    /// `DAHDI/*`) or device names (`voipms`). When empty, trunks are guessed
    /// from the channel names.
    pub trunks: Vec<String>,
}

impl Default for DiallingRules {
    fn default() -> DiallingRules {
        DiallingRules::for_country("1")
    }
}

/// What a dialled number is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dialled {
    /// International digits, without `+`: `15550100199`.
    Number(String),
    /// An emergency or service number.
    Service(String),
    /// Not a number these rules can place.
    Unknown,
}

impl DiallingRules {
    /// The usual rules of a country by its calling code: North America's
    /// for `1`, the UK's for `44`, and `00`/`0` with 112 elsewhere.
    pub fn for_country(country_code: &str) -> DiallingRules {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        let (national, international, services): (&str, &str, Vec<String>) = match country_code {
            "1" => (
                "1",
                "011",
                strings(&[
                    "911", "933", "112", "211", "311", "411", "511", "611", "711", "811", "988",
                ]),
            ),
            "44" => ("0", "00", strings(&["999", "112", "101", "111", "119"])),
            _ => ("0", "00", strings(&["112"])),
        };
        DiallingRules {
            country_code: country_code.to_owned(),
            national_prefix: national.to_owned(),
            international_prefix: international.to_owned(),
            outside_line: String::new(),
            area_code: String::new(),
            service_numbers: services,
            trunks: Vec::new(),
        }
    }

    /// Checks the rules as staff set them; names the first field that is
    /// wrong.
    pub fn check(&self) -> Result<(), String> {
        let digits = |name: &str, value: &str, empty_ok: bool, longest: usize| {
            if value.is_empty() && empty_ok {
                return Ok(());
            }
            if value.is_empty()
                || value.len() > longest
                || !value.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!("The {name} must be 1 to {longest} digits."));
            }
            Ok(())
        };
        digits("country code", &self.country_code, false, 3)?;
        if self.country_code.starts_with('0') {
            return Err("The country code does not start with 0.".into());
        }
        digits("national prefix", &self.national_prefix, true, 2)?;
        digits("international prefix", &self.international_prefix, true, 4)?;
        digits("outside-line digit", &self.outside_line, true, 2)?;
        digits("area code", &self.area_code, true, 5)?;
        for number in &self.service_numbers {
            digits("service number", number, false, 6)?;
        }
        if self.service_numbers.len() > 50 {
            return Err("At most 50 service numbers.".into());
        }
        for trunk in &self.trunks {
            let ok = !trunk.is_empty()
                && trunk.len() <= 80
                && !trunk.contains(char::is_whitespace)
                && !trunk.starts_with("Local/")
                && trunk.matches('*').count() <= usize::from(trunk.ends_with('*'));
            if !ok {
                return Err(format!(
                    "The trunk {trunk:?} is not a channel name such as PJSIP/voipms or DAHDI/*."
                ));
            }
        }
        if self.trunks.len() > 50 {
            return Err("At most 50 trunks.".into());
        }
        Ok(())
    }

    /// What `dialled` is under these rules.
    pub fn normalize(&self, dialled: &str) -> Dialled {
        let text = dialled.trim();
        let international = text.starts_with('+');
        let body = text.strip_prefix('+').unwrap_or(text);
        // Digits with the usual separators; anything else (a letter, `*`,
        // `#`) is not a phone number.
        if !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '/'))
        {
            return Dialled::Unknown;
        }
        let mut digits: String = body.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Dialled::Unknown;
        }
        if international {
            return Dialled::Number(digits);
        }
        if self.is_service(&digits) {
            return Dialled::Service(digits);
        }
        if !self.outside_line.is_empty() && digits.len() > self.outside_line.len() {
            if let Some(rest) = digits.strip_prefix(&self.outside_line) {
                if self.is_service(rest) {
                    return Dialled::Service(rest.to_owned());
                }
                digits = rest.to_owned();
            }
        }
        if !self.international_prefix.is_empty() {
            if let Some(rest) = digits.strip_prefix(&self.international_prefix) {
                return if rest.is_empty() {
                    Dialled::Unknown
                } else {
                    Dialled::Number(rest.to_owned())
                };
            }
        }
        let north_american = self.country_code == "1";
        if !self.national_prefix.is_empty() {
            if let Some(rest) = digits.strip_prefix(&self.national_prefix) {
                // In North America the national prefix is the country code
                // itself, and ten digits follow it.
                if !rest.is_empty() && (!north_american || rest.len() == 10) {
                    return Dialled::Number(format!("{}{rest}", self.country_code));
                }
            }
        }
        if north_american && digits.len() == 10 {
            return Dialled::Number(format!("1{digits}"));
        }
        if self.national_prefix.is_empty() {
            return Dialled::Number(format!("{}{digits}", self.country_code));
        }
        if !self.area_code.is_empty() && (!north_american || digits.len() == 7) {
            return Dialled::Number(format!("{}{}{digits}", self.country_code, self.area_code));
        }
        if digits.len() >= 11 {
            return Dialled::Number(digits);
        }
        Dialled::Unknown
    }

    fn is_service(&self, digits: &str) -> bool {
        self.service_numbers.iter().any(|s| s == digits)
    }

    /// Whether `channel` is one of the PBX's trunks; `None` when no trunks
    /// are known (guess them with [`looks_like_trunk`]).
    pub fn is_trunk(&self, channel: &str) -> Option<bool> {
        if self.trunks.is_empty() {
            return None;
        }
        let Some((technology, device)) = split_channel(channel) else {
            return Some(false);
        };
        if technology.eq_ignore_ascii_case("Local") {
            return Some(false);
        }
        Some(self.trunks.iter().any(|trunk| {
            let (wanted_technology, wanted_device) = match trunk.split_once('/') {
                Some((t, d)) => (Some(t), d),
                None => (None, trunk.as_str()),
            };
            let technology_matches =
                wanted_technology.is_none_or(|t| t.eq_ignore_ascii_case(technology));
            let device_matches = match wanted_device.strip_suffix('*') {
                Some(start) => device.starts_with(start),
                None => device == wanted_device,
            };
            technology_matches && device_matches
        }))
    }
}

/// A channel's technology and device name (`SIP/201-0000abcd` → `SIP`,
/// `201`; `PJSIP/trunk-voip-00000031` → `PJSIP`, `trunk-voip`;
/// `Local/201@from-queue-00000001;2` → `Local`, `201@from-queue`).
pub fn split_channel(channel: &str) -> Option<(&str, &str)> {
    let (technology, rest) = channel.split_once('/')?;
    let rest = rest.split(';').next().unwrap_or(rest);
    let device = match rest.rfind('-') {
        Some(dash) => &rest[..dash],
        None => rest,
    };
    (!technology.is_empty() && !device.is_empty()).then_some((technology, device))
}

/// The number a `Local/` channel dials (`Local/201@from-queue-…;1` → `201`).
pub fn local_number(channel: &str) -> Option<&str> {
    let (technology, device) = split_channel(channel)?;
    if !technology.eq_ignore_ascii_case("Local") {
        return None;
    }
    device.split('@').next().filter(|n| !n.is_empty())
}

/// Whether a device name is an extension's: one to eight digits.
pub fn is_extension_number(name: &str) -> bool {
    (1..=8).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_digit())
}

/// The guess when a PBX's trunks are not known: a SIP, PJSIP, IAX2 or DAHDI
/// device whose name is not an extension's number.
pub fn looks_like_trunk(channel: &str) -> bool {
    let Some((technology, device)) = split_channel(channel) else {
        return false;
    };
    let known = ["SIP", "PJSIP", "IAX2", "DAHDI"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(technology));
    known && !is_extension_number(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(digits: &str) -> Dialled {
        Dialled::Number(digits.into())
    }

    #[test]
    fn emergency_and_service_numbers_are_never_rated_as_international() {
        let us = DiallingRules::default();
        // 911 is not India (+91), 112 is not North America (+1), 411 is not
        // Greece (+30)'s neighbour Romania (+40).
        assert_eq!(us.normalize("911"), Dialled::Service("911".into()));
        assert_eq!(us.normalize("112"), Dialled::Service("112".into()));
        assert_eq!(us.normalize("411"), Dialled::Service("411".into()));
        assert_eq!(us.normalize("988"), Dialled::Service("988".into()));
        let mut with_nine = us.clone();
        with_nine.outside_line = "9".into();
        assert_eq!(with_nine.normalize("911"), Dialled::Service("911".into()));
        assert_eq!(with_nine.normalize("9911"), Dialled::Service("911".into()));
        let uk = DiallingRules::for_country("44");
        assert_eq!(uk.normalize("999"), Dialled::Service("999".into()));
        assert_eq!(uk.normalize("112"), Dialled::Service("112".into()));
        let de = DiallingRules::for_country("49");
        assert_eq!(de.normalize("112"), Dialled::Service("112".into()));
    }

    #[test]
    fn a_local_number_needs_the_area_code_and_is_never_brazil() {
        let mut us = DiallingRules::default();
        assert_eq!(
            us.normalize("5550199"),
            Dialled::Unknown,
            "seven digits without an area code are not Brazil's 55"
        );
        us.area_code = "212".into();
        assert_eq!(us.normalize("555-0199"), number("12125550199"));
        assert_eq!(us.normalize("12345"), Dialled::Unknown, "a short code");
    }

    #[test]
    fn the_outside_line_digit_is_dropped_before_anything_else() {
        let us = DiallingRules {
            outside_line: "9".into(),
            ..DiallingRules::default()
        };
        assert_eq!(us.normalize("915550100199"), number("15550100199"));
        assert_eq!(us.normalize("95550100199"), number("15550100199"));
        assert_eq!(us.normalize("9011442079460958"), number("442079460958"));
        let mut uk = DiallingRules::for_country("44");
        uk.outside_line = "9".into();
        assert_eq!(uk.normalize("902079460958"), number("442079460958"));
        assert_eq!(uk.normalize("90033123456789"), number("33123456789"));
    }

    #[test]
    fn national_and_international_numbers_get_their_country_code() {
        let us = DiallingRules::default();
        assert_eq!(us.normalize("(555) 010-0199"), number("15550100199"));
        assert_eq!(us.normalize("1 555 010 0199"), number("15550100199"));
        assert_eq!(us.normalize("011 44 20 7946 0958"), number("442079460958"));
        assert_eq!(us.normalize("+44 20 7946 0958"), number("442079460958"));
        assert_eq!(us.normalize("+911123456789"), number("911123456789"));
        assert_eq!(
            us.normalize("442079460958"),
            number("442079460958"),
            "international, written without its +"
        );
        assert_eq!(
            us.normalize("44207946"),
            Dialled::Unknown,
            "too short to tell"
        );
        assert_eq!(us.normalize("011"), Dialled::Unknown);
        assert_eq!(us.normalize("s"), Dialled::Unknown);
        assert_eq!(us.normalize("*97"), Dialled::Unknown);
        assert_eq!(us.normalize(""), Dialled::Unknown);
        let uk = DiallingRules::for_country("44");
        assert_eq!(uk.normalize("020 7946 0958"), number("442079460958"));
        assert_eq!(uk.normalize("0044 20 7946 0958"), number("442079460958"));
        assert_eq!(uk.normalize("0033 1 23 45 67 89"), number("33123456789"));
        let mut no_prefix = DiallingRules::for_country("45");
        no_prefix.national_prefix.clear();
        assert_eq!(no_prefix.normalize("33 12 34 56"), number("4533123456"));
    }

    #[test]
    fn known_trunks_are_matched_by_channel_or_device_name() {
        let rules = DiallingRules {
            trunks: vec!["SIP/211553".into(), "voipms".into(), "DAHDI/*".into()],
            ..DiallingRules::default()
        };
        assert_eq!(rules.is_trunk("SIP/211553-0000abcd"), Some(true));
        assert_eq!(rules.is_trunk("sip/211553-0000abcd"), Some(true));
        assert_eq!(rules.is_trunk("PJSIP/211553-0000abcd"), Some(false));
        assert_eq!(rules.is_trunk("PJSIP/voipms-00000031"), Some(true));
        assert_eq!(rules.is_trunk("DAHDI/1-1"), Some(true));
        assert_eq!(rules.is_trunk("PJSIP/201-00000031"), Some(false));
        assert_eq!(rules.is_trunk("Local/voipms@x-1;2"), Some(false));
        assert_eq!(DiallingRules::default().is_trunk("SIP/x-1"), None);
    }

    #[test]
    fn channels_are_split_into_technology_and_device() {
        assert_eq!(split_channel("SIP/201-0000abcd"), Some(("SIP", "201")));
        assert_eq!(
            split_channel("PJSIP/trunk-voip-00000031"),
            Some(("PJSIP", "trunk-voip"))
        );
        assert_eq!(
            split_channel("Local/201@from-queue-00000001;2"),
            Some(("Local", "201@from-queue"))
        );
        assert_eq!(local_number("Local/201@from-queue-00000001;2"), Some("201"));
        assert_eq!(local_number("PJSIP/201-1"), None);
        assert!(looks_like_trunk("PJSIP/voipms-1"));
        assert!(!looks_like_trunk("PJSIP/201-1"));
        assert!(!looks_like_trunk("Local/0612345678@from-internal-1;2"));
    }

    #[test]
    fn rules_staff_set_are_checked_field_by_field() {
        assert_eq!(DiallingRules::default().check(), Ok(()));
        let zero_country = DiallingRules {
            country_code: "0".into(),
            ..DiallingRules::default()
        };
        assert!(zero_country.check().is_err());
        let spaced_trunk = DiallingRules {
            trunks: vec!["PJSIP/voip ms".into()],
            ..DiallingRules::default()
        };
        let why = spaced_trunk.check().expect_err("a trunk with a space");
        assert!(why.contains("voip ms"), "{why}");
        let lettered_service = DiallingRules {
            service_numbers: vec!["9x1".into()],
            ..DiallingRules::default()
        };
        let why = lettered_service
            .check()
            .expect_err("a service number with a letter");
        assert!(why.contains("service number"), "{why}");
    }
}
