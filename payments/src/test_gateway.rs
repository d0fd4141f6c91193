//! The test gateway: Stripe's test card numbers, no money moves. It goes
//! through the same fulfilment path as a Stripe webhook.

use switchboard_core::commerce::orders::Outcome;

/// Succeeds.
pub const CARD_SUCCEEDS: &str = "4242424242424242";
/// Is declined.
pub const CARD_DECLINED: &str = "4000000000000002";
/// Asks for authentication (3-D Secure) first.
pub const CARD_AUTHENTICATES: &str = "4000002500003155";

/// Every card the test gateway knows.
pub const CARDS: [&str; 3] = [CARD_SUCCEEDS, CARD_DECLINED, CARD_AUTHENTICATES];

/// The payment method a test card is saved as: its last four digits, which
/// tell the three cards apart, so an off-session charge behaves as the card
/// did on-session.
pub fn saved_as(card: &str) -> Option<String> {
    let digits: String = card.chars().filter(char::is_ascii_digit).collect();
    CARDS
        .contains(&digits.as_str())
        .then(|| format!("test_pm_{}", &digits[digits.len() - 4..]))
}

/// What a card number does, or `None` for a number the test gateway does not know.
/// `authenticated` answers the authentication step: `None` before it.
pub fn charge(card: &str, authenticated: Option<bool>) -> Option<Outcome> {
    let digits: String = card.chars().filter(char::is_ascii_digit).collect();
    match digits.as_str() {
        CARD_SUCCEEDS => Some(Outcome::Succeeded),
        CARD_DECLINED => Some(Outcome::Declined),
        CARD_AUTHENTICATES => Some(match authenticated {
            None => Outcome::NeedsAuthentication,
            Some(true) => Outcome::Succeeded,
            Some(false) => Outcome::AuthenticationFailed,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cards_behave_like_stripes() {
        assert_eq!(
            charge("4242 4242 4242 4242", None),
            Some(Outcome::Succeeded)
        );
        assert_eq!(charge(CARD_DECLINED, None), Some(Outcome::Declined));
        assert_eq!(
            charge(CARD_AUTHENTICATES, None),
            Some(Outcome::NeedsAuthentication)
        );
        assert_eq!(
            charge(CARD_AUTHENTICATES, Some(true)),
            Some(Outcome::Succeeded)
        );
        assert_eq!(
            charge(CARD_AUTHENTICATES, Some(false)),
            Some(Outcome::AuthenticationFailed)
        );
        assert_eq!(charge("1234", None), None);
    }
}
