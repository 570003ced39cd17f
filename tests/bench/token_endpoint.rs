//! Placeholder: the token endpoint benchmark is being written.
fn main() {}
