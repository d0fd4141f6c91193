//! Commerce: the plan catalogue, orders and their fulfilment, the PBXs
//! they provision, payments refunded or disputed afterwards, and the
//! additional services accounts order from the balance.

pub mod catalogue;
pub mod gui_passwords;
pub mod orders;
pub mod pbx_commands;
pub mod pbx_orders;
pub mod pbxes;
pub mod plans;
pub mod reversals;
pub mod services;
