//! The hosting controller: the HTTP commands that create and run PBXs, and a
//! simulator that implements the reference contract for development, demos
//! and tests.
#![forbid(unsafe_code)]

mod client;
pub mod simulator;
mod template;
pub mod traffic;

pub use client::{Controller, ControllerError, CreatePbx, Created, LiveCall, PbxStatus};
