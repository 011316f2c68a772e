pub mod apply;
pub mod check;
pub mod compile;
pub mod explain;
