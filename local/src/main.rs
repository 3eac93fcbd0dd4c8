//! `tickwork-local`: the whole system in one process, and a command line for people at a
//! terminal.
//!
//! ```text
//! tickwork-local [serve] [--db FILE]           API, tick and worker pool in this process
//! tickwork-local schedule "CRON" [--tz ZONE] [--count N]
//! tickwork-local jobs list|create|get|pause|resume|trigger|delete ...
//! tickwork-local history JOB_ID [--limit N]
//! tickwork-local dead-letters [--job JOB_ID] | requeue EXECUTION_ID [--force]
//! tickwork-local reseal                        stored secrets under the current key
//! ```
//!
//! Exit codes: 0 done, 1 failed (server unreachable, server error), 2 bad command line,
//! 3 the API refused the request (the message says why).

mod args;
mod cli;
mod serve;

use std::process::ExitCode;

use args::Args;

const USAGE: &str = "\
tickwork-local: tickwork in one process, and its command line

USAGE:
  tickwork-local [serve] [--db FILE]             run the API, the tick and a worker pool
  tickwork-local schedule CRON [--tz ZONE] [--count N]
                                                 next fire times (no server needed)
  tickwork-local jobs list [--limit N] [--all]   jobs, newest first (--all: deleted too)
  tickwork-local jobs get JOB_ID
  tickwork-local jobs create --name NAME --cron CRON --target URL [--method M] [--tz ZONE]
                 [--body TEXT] [--header 'Name: value']... [--type AT_LEAST_ONCE|AT_MOST_ONCE]
                 [--retries N] [--timeout SECONDS] [--deadline SECONDS] [--description TEXT]
  tickwork-local jobs create --from FILE         the JSON body of POST /api/v1/jobs (- = stdin)
  tickwork-local jobs pause|resume|delete JOB_ID
  tickwork-local jobs trigger JOB_ID             run it now, once (a MANUAL fire)
  tickwork-local history JOB_ID [--limit N]      a job's executions, latest first
  tickwork-local dead-letters [--job JOB_ID] [--limit N]
                                                 FAILED, ABANDONED and EXPIRED fires, newest first
  tickwork-local requeue EXECUTION_ID [--force]  send a dead letter again (--force: AT_MOST_ONCE)
  tickwork-local reseal                          after an ENCRYPTION_KEY change: seal every stored
                                                 secret under the new key (operator key)

OPTIONS (commands that talk to the API):
  --url URL     the API (default http://127.0.0.1:8080, or TICKWORK_URL); an API key, when
                the API needs one, comes from TICKWORK_API_KEY
  --json        print the API's JSON instead of a table

serve uses PostgreSQL and Redis when DATABASE_URL/DB_HOST or REDIS_URL/REDIS_HOST is set
(the same environment as the three functions); otherwise the embedded backend: an SQLite
file (--db FILE, or TICKWORK_DB, default ./tickwork.db; one process at a time) and a work
queue in memory.

EXIT CODES: 0 done, 1 failed, 2 bad command line, 3 refused by the API";

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => return usage_error(&message),
    };
    if args.flag("help") || args.positional(0) == Some("help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let outcome = match args.positional(0) {
        None | Some("serve") => match serve::check(&args) {
            Ok(()) => serve::run(&args).await.map_err(cli::Failure::Failed),
            Err(message) => return usage_error(&message),
        },
        Some("schedule") => cli::schedule(&args),
        Some("jobs") => cli::jobs(&args).await,
        Some("history") => cli::history(&args).await,
        Some("dead-letters") => cli::dead_letters(&args).await,
        Some("requeue") => cli::requeue(&args).await,
        Some("reseal") => cli::reseal(&args).await,
        Some(other) => return usage_error(&format!("unknown command {other:?}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("tickwork-local: {message}\n\n{USAGE}");
    ExitCode::from(2)
}
