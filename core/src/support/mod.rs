//! Support: trouble tickets a client opens and staff answer.
//!
//! - `states`: where a ticket is, and where each new message takes it
//! - `tickets`: opening, the thread, replies and internal notes, the queue
//! - `notices`: the emails each new message sends the other side

pub mod notices;
pub mod states;
pub mod tickets;

pub use states::{Category, Event, TicketState};
