//! Models of the optbench suite.
