//! The `techpass` binary's library: configuration, wiring of concrete types into [`AppState`],
//! the HTTP router ([`http::app`]), startup and shutdown. It holds no business rules: those live
//! in `techpass-domain`, the protocol in `techpass-oidc`, storage in `techpass-store`.

/// Account administration (the service layer's).
pub use techpass_service::accounts;
pub mod api;
pub mod app_return;
pub mod client_address;
pub mod config;
pub mod cookies;
pub mod dev;
pub mod guesses;
pub mod http;
pub mod invitation;
pub mod jobs;
pub mod login;
/// Email: the outbox and the SMTP relay (the service layer's).
pub use techpass_service::mail;
pub mod metrics;
pub mod paths;
pub mod portal;
pub mod provider;
pub mod ratelimit;
pub mod server;
pub mod signin;
pub mod state;
pub mod telemetry;
pub mod terms;
/// Tenants, apps, access and invitations (the service layer's).
pub use techpass_service::tenancy;
pub mod transport;
pub mod web;
/// Webhooks (the service layer's).
pub use techpass_service::webhooks;

pub use http::{app, metrics_app};
pub use state::AppState;

/// Every allocation of the process's Rust code goes through mimalloc: glibc's `malloc` cost a
/// token grant about 5 % of its CPU, mimalloc a third of that (BENCHMARKS.md, issue 17).
/// SQLite and aws-lc, which are C, still allocate with glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
