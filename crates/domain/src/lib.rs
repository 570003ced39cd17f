//! TechPass's domain: the vocabulary and the pure rules of the product.
//!
//! Owns newtypes, entities and decisions that need no IO (the signing-key schedule, account classification,
//! session lifetimes, redirect matching, the token gate, the tenant model and the account lifecycle). Everything here takes
//! `now` as an argument and must not know about HTTP, SQL or an async runtime.

pub mod account;
pub mod client;
pub mod clock;
pub mod device;
pub mod gate;
pub mod keys;
pub mod lifecycle;
pub mod session;
pub mod tenancy;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
