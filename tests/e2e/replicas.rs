//! Placeholder: the two-replica test is being written.
