//! The `techpass` binary's library: configuration, wiring of concrete types into [`AppState`],
//! the HTTP router ([`http::app`]), startup and shutdown. It holds no business rules: those live
//! in `techpass-domain`, the protocol in `techpass-oidc`, storage in `techpass-store`.

pub mod accounts;
pub mod api;
pub mod config;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod portal;
pub mod provider;
pub mod ratelimit;
pub mod server;
pub mod signin;
pub mod state;
pub mod telemetry;
pub mod tenancy;
pub mod transport;
pub mod web;
pub mod webhooks;

pub use http::app;
pub use state::AppState;
