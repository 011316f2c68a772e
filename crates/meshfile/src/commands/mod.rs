pub mod apply;
pub mod cas;
pub mod check;
pub mod compile;
pub mod explain;
