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
//! tickwork-local completions bash|zsh|fish|elvish|powershell
//! ```
//!
//! The command line is declared as types in [`args`] (clap): `--help` on any command is
//! generated from them.
//!
//! Exit codes: 0 done, 1 failed (server unreachable, server error), 2 bad command line,
//! 3 the API refused the request (the message says why).

mod args;
mod cli;
mod serve;

use std::process::ExitCode;

use args::{Cli, Command};
use clap::{CommandFactory, Parser};

#[tokio::main]
async fn main() -> ExitCode {
    // Help and version exit 0; a wrong command line exits 2 with clap's message.
    let cli = Cli::parse();
    let outcome = match cli.command {
        None => serve(&cli.serve).await,
        Some(Command::Serve(args)) => serve(&args).await,
        Some(Command::Schedule(schedule)) => cli::schedule(&schedule),
        Some(Command::Jobs(jobs)) => cli::jobs(*jobs).await,
        Some(Command::History { job_id, limit, api }) => cli::history(&job_id, limit, &api).await,
        Some(Command::DeadLetters { job, limit, api }) => {
            cli::dead_letters(job.as_deref(), limit, &api).await
        }
        Some(Command::Requeue {
            execution_id,
            force,
            api,
        }) => cli::requeue(&execution_id, force, &api).await,
        Some(Command::Reseal { api }) => cli::reseal(&api).await,
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "tickwork-local",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// `serve`: a `--db` the environment contradicts is a wrong command line (exit 2), found
/// before anything starts.
async fn serve(args: &args::ServeArgs) -> Result<(), cli::Failure> {
    let backend = serve::backend(args).map_err(cli::Failure::Usage)?;
    serve::run(backend).await.map_err(cli::Failure::Failed)
}
