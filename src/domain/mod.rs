//! The domain model shared by both wire dialects: identifiers, key material, validation and the
//! plain data types the store persists. Nothing in here knows about HTTP or SQL.

pub mod audit;
pub mod catalogue;
pub mod client_secret;
pub mod console;
pub mod cursor;
pub mod federation;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod limits;
pub mod model;
pub mod names;
pub mod outcomes;
pub mod page;
pub mod random;
pub mod time;
