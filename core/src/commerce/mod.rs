//! Commerce: the plan catalogue, orders and their fulfilment, and the PBXs
//! they provision.

pub mod orders;
pub mod pbxes;
pub mod plans;
