//! TechPass's services: everything that is neither HTTP nor wiring. Sign-in, the gate, apps
//! and their clients, minting, logout, accounts, tenancy, audit, mail, webhooks and the
//! lifecycle move here from the root package step by step (issue 12); what has moved takes a
//! [`ServiceContext`] — store, clock, randomness, secrets, keys, settings, outbound HTTP —
//! instead of the HTTP shell's whole application state.
//!
//! It must not import axum, minijinja, tower, figment or the root package: handlers call it,
//! never the other way round ([`boundaries`] checks the manifest and every `use` line).

pub mod accounts;
pub mod actor;
pub mod audit;
pub mod audit_stream;
pub mod authorize;
#[cfg(test)]
mod boundaries;
pub mod ci_keys;
pub mod clients;
pub mod consent;
pub mod context;
pub mod dates;
pub mod dev_people;
pub mod device;
pub mod dpop;
pub mod gate;
pub mod grants;
pub mod logout;
pub mod mail;
pub mod mailer;
pub mod mint;
pub mod outbound;
pub mod random;
pub mod reveal;
pub mod reverify;
pub mod scopes;
pub mod settings;
pub mod signin;
pub mod tenancy;
pub mod tokens;
pub mod upstream_links;
pub mod upstreams;
pub mod workload;

pub use audit::audit;
pub use context::ServiceContext;
pub use random::{OsRandom, Random, SeqRandom};
pub use settings::Settings;
pub use tenancy::webhooks;
