//! Leaf utilities: they import nothing from the rest of the crate, so the data layer, the
//! runner, the plan and the reports can all use them without pointing at each other.

pub mod atomic;
pub mod hash;
pub mod time;
