//! TechPass's domain: the vocabulary and the pure rules of the product.
//!
//! Owns newtypes, entities and decisions that need no IO (the signing-key schedule today; redirect
//! matching, account classification and the token gate as they arrive). Everything here takes
//! `now` as an argument and must not know about HTTP, SQL or an async runtime.

pub mod clock;
pub mod keys;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
