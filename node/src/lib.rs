//! # pogo-node
//!
//! The `pogo` command-line tool and node. All logic lives in this library so tests call it
//! directly; `main.rs` only parses arguments and turns errors into exit codes.

pub mod cmd;
pub mod quantize;
pub mod train;
