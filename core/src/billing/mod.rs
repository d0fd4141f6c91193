//! Billing: what the balance pays for each period (`recurring`, over the
//! pure `periods`), automatic top-ups of the balance from a saved card
//! (`replenish`) and monthly statements (`statements`).

pub mod periods;
pub mod recurring;
pub mod replenish;
pub mod statements;
