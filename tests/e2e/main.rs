//! End-to-end tests: real servers on 127.0.0.1:0 (in-process through `app(state)`, or the
//! `techpass` binary as a process), real databases (SQLite files and PostgreSQL schemas), real
//! HTTP. One test binary, modules per area, so it links once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod audit_export;
mod browser;
mod callers;
mod ci_workload;
mod cli;
mod consent;
mod dev;
mod device;
mod discovery;
mod dpop;
mod email;
mod faults;
mod fuzz;
mod gate;
mod health;
mod interop;
mod jobs;
mod logout;
mod machine;
mod pending;
mod portal;
mod provider;
mod refusals;
mod replicas;
mod sessions;
mod shutdown;
mod signin;
mod signing_algs;
mod soak;
mod support;
mod tenancy;
mod tenant_access;
mod terms;
mod transport;
mod webhook_admin;
