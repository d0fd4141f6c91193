//! Where a ticket is, and where each new message takes it: a plain function
//! over plain values, so every pair is tested below.

use std::fmt;
use std::str::FromStr;

/// A ticket's state (DESIGN.md, Ticket).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TicketState {
    /// Opened by the client; staff have not answered yet.
    Open,
    /// The client wrote after staff answered (or reopened a closed ticket).
    AwaitingStaff,
    /// Staff answered; the client's turn.
    AwaitingClient,
    /// Staff closed it; a client's reply reopens it.
    Closed,
}

impl TicketState {
    pub const ALL: &'static [TicketState] = &[
        TicketState::Open,
        TicketState::AwaitingStaff,
        TicketState::AwaitingClient,
        TicketState::Closed,
    ];

    /// The value as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::AwaitingStaff => "awaiting_staff",
            TicketState::AwaitingClient => "awaiting_client",
            TicketState::Closed => "closed",
        }
    }
}

impl FromStr for TicketState {
    type Err = String;
    fn from_str(s: &str) -> Result<TicketState, String> {
        TicketState::ALL
            .iter()
            .copied()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a ticket state"))
    }
}

impl fmt::Display for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a ticket is about, so staff can sort the queue by eye.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    Calls,
    Billing,
    Pbx,
    Numbers,
    Account,
    Other,
}

impl Category {
    pub const ALL: &'static [Category] = &[
        Category::Calls,
        Category::Pbx,
        Category::Numbers,
        Category::Billing,
        Category::Account,
        Category::Other,
    ];

    /// The value as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Calls => "calls",
            Category::Billing => "billing",
            Category::Pbx => "pbx",
            Category::Numbers => "numbers",
            Category::Account => "account",
            Category::Other => "other",
        }
    }

    /// As people read it.
    pub fn label(self) -> &'static str {
        match self {
            Category::Calls => "Calls and call quality",
            Category::Billing => "Billing and payments",
            Category::Pbx => "The PBX and its settings",
            Category::Numbers => "Phone numbers",
            Category::Account => "The account and its users",
            Category::Other => "Something else",
        }
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Category, String> {
        Category::ALL
            .iter()
            .copied()
            .find(|category| category.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a ticket category"))
    }
}

/// Something that happens to a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    ClientWrote,
    StaffReplied,
    /// Staff wrote an internal note: the client is not waiting on it.
    StaffNoted,
    StaffClosed,
}

/// The state a ticket is in after `event`.
pub fn after(state: TicketState, event: Event) -> TicketState {
    use TicketState::*;
    match (state, event) {
        // Until staff first answer, more from the client keeps it new.
        (Open, Event::ClientWrote) => Open,
        (_, Event::ClientWrote) => AwaitingStaff,
        (_, Event::StaffReplied) => AwaitingClient,
        (state, Event::StaffNoted) => state,
        (_, Event::StaffClosed) => Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_leaves_the_ticket_waiting_on_the_other_side() {
        use TicketState::*;
        for state in TicketState::ALL.iter().copied() {
            let client = after(state, Event::ClientWrote);
            assert_eq!(client, if state == Open { Open } else { AwaitingStaff });
            assert_eq!(after(state, Event::StaffReplied), AwaitingClient);
            assert_eq!(
                after(state, Event::StaffNoted),
                state,
                "a note moves nothing"
            );
            assert_eq!(after(state, Event::StaffClosed), Closed);
        }
    }

    #[test]
    fn a_clients_reply_reopens_a_closed_ticket() {
        assert_eq!(
            after(TicketState::Closed, Event::ClientWrote),
            TicketState::AwaitingStaff
        );
    }

    #[test]
    fn states_and_categories_read_back_as_stored() {
        for state in TicketState::ALL {
            assert_eq!(state.as_str().parse::<TicketState>(), Ok(*state));
        }
        for category in Category::ALL {
            assert_eq!(category.as_str().parse::<Category>(), Ok(*category));
        }
        assert!("reopened".parse::<TicketState>().is_err());
    }
}
