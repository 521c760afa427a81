//! Test harness shared by Twofold's crates.

pub mod browser;
pub mod db;

pub use db::{both, Backend, TestDb};
