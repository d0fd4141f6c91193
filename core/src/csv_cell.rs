//! Cells of the CSV files Switchboard writes, made safe to open in a
//! spreadsheet.
//!
//! Spreadsheets run a cell that begins with `=`, `+`, `-` or `@` (or a tab
//! or carriage return before one) as a formula, and some of what Switchboard
//! exports is typed by strangers: whoever places an inbound call sets its
//! caller number. Following OWASP's advice on CSV injection, such a cell is
//! written with a leading apostrophe, which spreadsheets show as text: a
//! dialled `+442071234567` reads `'+442071234567`, still plain to a person.
//! A number as Switchboard writes one (`-12`, `0.5`) is no formula and is
//! left alone, so amount columns stay numbers. Programs reading our files
//! take one leading apostrophe off a text cell ([`restore`]).

use std::borrow::Cow;

/// What a spreadsheet may read as the start of a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as it is safe to write.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    if needs_mark(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A cell read back as it was before [`neutralize`].
pub fn restore(text: &str) -> Cow<'_, str> {
    match text.strip_prefix('\'') {
        Some(rest) if needs_mark(rest) => Cow::Borrowed(rest),
        _ => Cow::Borrowed(text),
    }
}

/// Whether a cell gets the apostrophe: it starts a formula, or it begins
/// with an apostrophe of its own that [`restore`] would otherwise take off.
fn needs_mark(text: &str) -> bool {
    if text.starts_with(FORMULA_STARTS) {
        return !is_plain_number(text);
    }
    text.strip_prefix('\'').is_some_and(needs_mark)
}

/// `-12`, `-0.25`: an optional minus, digits, an optional fraction.
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formulas_and_what_starts_them_get_an_apostrophe() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x.invalid\",\"call back\")",
                "'=HYPERLINK(\"http://x.invalid\",\"call back\")",
            ),
            ("+442071234567", "'+442071234567"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            // An apostrophe of the cell's own is kept through a round trip.
            ("'=1", "''=1"),
        ] {
            assert_eq!(neutralize(cell), written);
        }
    }

    #[test]
    fn plain_text_and_numbers_are_left_as_they_are() {
        for cell in [
            "15550100100",
            "201",
            "Jamaica",
            "-12",
            "-0.25",
            "0.012",
            "",
            "2026-11-21 08:00:00",
        ] {
            assert_eq!(neutralize(cell), cell);
        }
    }

    proptest! {
        #[test]
        fn restore_undoes_neutralize(cell in ".{0,12}") {
            let written = neutralize(&cell);
            prop_assert_eq!(restore(&written), cell.as_str());
            prop_assert!(!written.starts_with(FORMULA_STARTS) || is_plain_number(&written));
        }
    }
}
