//! The one integration-test binary of meshfile-cas.

mod signed;
mod store;
