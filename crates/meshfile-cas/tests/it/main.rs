//! The one integration-test binary of meshfile-cas.

mod store;
