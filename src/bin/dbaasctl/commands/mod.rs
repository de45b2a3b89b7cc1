//! One module per group of commands; main.rs dispatches to them.

pub mod backup;
pub mod data;
pub mod doctor;
pub mod instances;
