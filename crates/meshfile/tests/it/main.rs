//! The one integration-test binary of the `meshfile` command: runs the real binary.

mod apply;
mod cas;
mod check;
mod common;
mod compile;
mod docs;
mod fields;
mod findings;
mod graph;
mod hardening;
mod hostile;
mod layers;
mod lsp;
mod modes;
mod outputs;
mod recipes;
mod registry;
mod rollout;
mod signing;
mod trust;
mod tutorials;

pub use common::*;
