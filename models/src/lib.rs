//! Models of the optbench suite, and the seeded random generator their initialisation (and
//! every other random choice of a run) draws from.

pub mod rng;

pub use rng::SeededRng;
