//! tickwork's integration tests: one binary, real PostgreSQL and Redis, a local target.
//!
//! Each test gets its own database and Redis key prefix, so they run in parallel.

mod api; // job endpoints: create, read, list, history, and every kind of bad input
mod helpers; // spawn_app(): the API, store, queue, worker and a logging HTTP target
mod lifecycle; // retries, backoff, dead letters, attempts, cancellation
mod manage; // PATCH, soft delete, reactivation, filters, schedule preview, stats
mod tick; // the tick pass and the sweeper, driven with a chosen `now`
mod worker; // delivery: headers, outcomes, duplicate deliveries
