//! Billing: what the balance pays for each period (`recurring`, over the
//! pure `periods`), automatic top-ups of the balance from a saved card
//! (`replenish`), monthly statements (`statements`) and what each PBX of
//! an account cost in a month (`per_pbx`).

pub mod per_pbx;
pub mod periods;
pub mod recurring;
pub mod replenish;
pub mod statements;
