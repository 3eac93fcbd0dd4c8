//! tickwork's integration tests: one binary, real PostgreSQL and Redis, a local target.
//!
//! Each test gets its own database and Redis key prefix, so they run in parallel. Tests
//! listed in `on_both_backends!` run twice: on PostgreSQL and Redis (`on_servers`) and on
//! the embedded SQLite file and in-memory queue (`on_embedded`).

mod activity; // per-minute rollups behind /api/v1/activity; the jobs list by last outcome and by name
mod api; // job endpoints: create, read, list, history, and every kind of bad input
mod auth; // API keys and tenants: 401s, keys shown once, no endpoint leaks another tenant's job
mod cluster; // real tick and worker processes, and PostgreSQL and Redis servers of a test's own
mod conformance; // the store and queue contracts, directly, on both backends
mod deadline; // startingDeadlineSeconds: late first attempts end EXPIRED, never sent
mod deploy; // Dockerfile, compose files, SAM template and README name the same binaries
mod edge; // idle and slow clients cut off, oversize requests refused early, hyper's own refusals
mod faults; // crashes, restarts, concurrent instances: nothing lost or doubled where promised
mod forwarding; // a store forwarding to the real one, with a shifted clock or lost answers on demand
mod handover; // a stopping tick releases what it recorded ahead; workers move due fires alone
mod helpers; // spawn_app(): the API, store, queue, worker and a logging HTTP target
mod lifecycle; // retries, backoff, dead letters, attempts, cancellation
mod local; // tickwork-local: serve in one process, and the command line
mod manage; // PATCH, soft delete, reactivation, filters, schedule preview, stats
mod openapi; // the committed API document is the generated one; served with Swagger UI
mod operate; // run now, pause/resume, dead letters and requeue, schedule preview
mod outbound; // the SSRF guard: blocked ranges at creation and at call time, no redirects
mod partitions; // the PostgreSQL history by day: lookups by id, retention, online conversion
mod pinned; // every bad-input answer the tests know, byte for byte (tests/pinned/)
mod roles; // key roles: a viewer key reads what its tenant may see and changes nothing
mod saturation; // workers fed more than they can send deliver every fire once
mod secrets; // signed requests, credentials sealed at rest, masks
mod target; // the local HTTP target: logs requests, sleeps, fails or hangs on demand
mod tick; // the tick pass and the sweeper, driven with a chosen `now`
mod ui; // the dashboard's files and their policy; the pages run in Chromium (tests/browser)
mod worker; // delivery: headers, outcomes, duplicate deliveries
