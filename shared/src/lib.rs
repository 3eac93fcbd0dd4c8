//! tickwork: a distributed cron scheduler with second-level precision.
//!
//! People register jobs (a cron expression with seconds, a time zone, an HTTP target and
//! a delivery guarantee) through the API; every second the tick turns due jobs into
//! executions in PostgreSQL and pushes them to Redis; workers call the targets and record
//! the outcomes. PostgreSQL is the truth, Redis carries the work; `tickwork-local` runs
//! all three in one process, on the same servers or on an SQLite file and a queue in
//! memory.
//!
//! # Layout
//!
//! - [`schedule`]: cron parsing (croner), time zones, next fire times, and a schedule in
//!   plain words ([`schedule::describe`]). Pure.
//! - [`model`]: jobs, executions, their states, and the checked values a job is made of;
//!   each checked value reads its own JSON field (`model/field.rs`).
//! - [`store`]: the storage traits, one per entity ([`store::Jobs`], [`store::Fires`],
//!   [`store::Deliveries`], [`store::History`], [`store::ApiKeys`]; [`store::Store`] is all
//!   of them; methods named entity then verb) and their two implementations, a folder each
//!   with a file per trait: PostgreSQL (with the history in daily partitions) and the
//!   embedded SQLite file (feature `embedded`). What both share is written once: rows
//!   (`store/rows.rs`), SQL text (`store/sql.rs`), the decisions around it
//!   (`store/rules.rs`) and whole statements (`store/shared.rs`).
//! - [`queue`]: the queue trait and its two implementations: Redis (Lua scripts in
//!   `queue/lua`) and the in-memory queue of `tickwork-local`.
//! - [`tick`]: which fires a due job gets, one tick pass at a given `now`, and the loop
//!   around it.
//! - [`maintenance`]: the duties any process runs: releasing fires recorded ahead,
//!   promoting due retries, sweeping lost pushes, history retention.
//! - [`worker`]: claiming fires into free slots, calling targets
//!   ([`worker::CallOutcome`]), recording outcomes in batches, draining at shutdown,
//!   reaping the fires of dead workers.
//! - [`api`]: the axum router, request parsing and the error mapping.
//! - [`ui`]: the dashboard at `/ui` (a page, its script and style, compiled in), served by
//!   the API's router; a client of the public API.
//! - [`metrics`]: counters and histograms, encoded by `prometheus-client` in the Prometheus
//!   text format or OpenMetrics.
//! - [`outbound`]: which addresses job targets may reach (the SSRF guard).
//! - [`secrets`]: sealing credentials at rest (AES-256-GCM; those in URL queries in
//!   `secrets::query`) and signing requests (Standard Webhooks).
//! - [`config`]: settings from the environment, as plain values in sections; it imports
//!   nothing else of the crate.
//! - [`telemetry`]: tracing setup.
//! - [`os`]: the open-file limit, raised at start.
//! - [`startup`]: what is built from the settings, in one place: the backend (servers or
//!   embedded) with its store and queue clients, the keyring, auth, the outbound guard,
//!   the API's state; migrations; the shutdown signal.
//! - `lambda` (feature `lambda`): the three functions inside AWS Lambda invocations.

pub mod api;
pub mod config;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod os;
pub mod outbound;
pub mod queue;
pub mod schedule;
pub mod secrets;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tick;
pub mod ui;
pub mod worker;
