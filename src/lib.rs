//! Switchboard: the website, billing system and control panel of a hosted
//! PBX reseller. This crate puts the pieces together: the command line, the
//! database start-up, the routes and the demo data.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod database;
pub mod demo;
pub mod hostile;
pub mod page_load;
pub mod server;
