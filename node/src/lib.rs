//! # pogo-node
//!
//! The `pogo` command-line tool and node. All logic lives in this library so tests call it
//! directly; `main.rs` only parses arguments and turns errors into exit codes.

pub mod chain;
pub mod cmd;
pub mod contract;
pub mod demo;
pub mod deploy;
pub mod keystore;
pub mod quantize;
pub mod roles;
pub mod store;
pub mod train;
