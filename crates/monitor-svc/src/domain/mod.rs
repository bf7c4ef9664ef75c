//! The monitor's rules, free of I/O: turning counters into rates, a month's traffic, alert
//! state, sample tiers and which replica polls which node.

pub mod alerts;
pub mod assign;
pub mod reading;
pub mod tiers;
pub mod traffic;
