//! The command line, as types: help, errors and shell completions come from them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// tickwork in one process, and its command line.
#[derive(Debug, Parser)]
#[command(
    name = "tickwork-local",
    bin_name = "tickwork-local",
    args_override_self = true,
    version,
    args_conflicts_with_subcommands = true,
    after_help = "serve uses PostgreSQL and Redis when DATABASE_URL/DB_HOST or REDIS_URL/REDIS_HOST \
is set (the same environment as the three functions); otherwise the embedded backend: an \
SQLite file (--db FILE, or TICKWORK_DB, default ./tickwork.db; one process at a time) and a \
work queue in memory.\n\nAn API key, when the API needs one, comes from TICKWORK_API_KEY.\n\n\
EXIT CODES: 0 done, 1 failed, 2 bad command line, 3 refused by the API"
)]
pub struct Cli {
    /// The command (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s options, when no command is named.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, the tick and a worker pool in this process.
    Serve(ServeArgs),
    /// The next fire times of a cron expression (no server needed).
    Schedule(ScheduleArgs),
    /// Jobs: list, get, create, pause, resume, trigger, delete.
    #[command(subcommand)]
    Jobs(Box<JobsCommand>),
    /// A job's executions, latest first.
    History {
        /// The job.
        job_id: String,
        /// Most executions shown.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=500))]
        limit: u64,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// FAILED, ABANDONED and EXPIRED fires, newest first.
    DeadLetters {
        /// Only this job's.
        #[arg(long, value_name = "JOB_ID")]
        job: Option<String>,
        /// Most fires shown.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=500))]
        limit: u64,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Send a dead letter again.
    Requeue {
        /// The execution (see dead-letters).
        execution_id: String,
        /// Send an AT_MOST_ONCE fire whose request may have reached its target.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// After an ENCRYPTION_KEY change: seal every stored secret under the new key
    /// (operator key).
    Reseal {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print a completion script for a shell (e.g. `tickwork-local completions bash >
    /// /etc/bash_completion.d/tickwork-local`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `serve`'s options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The embedded backend's SQLite file (default: TICKWORK_DB, else ./tickwork.db);
    /// refused when PostgreSQL and Redis are configured.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
}

/// `schedule`'s arguments.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The cron expression, six fields with seconds or five without.
    #[arg(value_name = "CRON")]
    pub cron: String,
    /// The IANA time zone it is read in.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub tz: String,
    /// How many fire times.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub count: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of every command that talks to the API.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The API.
    #[arg(
        long,
        value_name = "URL",
        env = "TICKWORK_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `jobs …`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs, newest first.
    List {
        /// Most jobs shown.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=500))]
        limit: u64,
        /// Deleted jobs too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// One job.
    Get(JobArgs),
    /// Make a job, from options or from the JSON body of POST /api/v1/jobs.
    Create(Box<CreateArgs>),
    /// Stop a job firing.
    Pause(JobArgs),
    /// Let a paused job fire again.
    Resume(JobArgs),
    /// Run a job now, once (a MANUAL fire).
    Trigger(JobArgs),
    /// Delete a job (its history stays).
    Delete(JobArgs),
}

/// A job named by its id.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job.
    pub job_id: String,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `jobs create`'s options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The JSON body of POST /api/v1/jobs, from a file (- reads standard input).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "cron", "target", "method", "tz", "body", "header", "guarantee", "retries", "timeout", "deadline", "description"])]
    pub from: Option<String>,
    /// The job's name.
    #[arg(long, required_unless_present = "from")]
    pub name: Option<String>,
    /// When it fires: a cron expression.
    #[arg(long, value_name = "CRON", required_unless_present = "from")]
    pub cron: Option<String>,
    /// The URL each fire calls.
    #[arg(long, value_name = "URL", required_unless_present = "from")]
    pub target: Option<String>,
    /// The HTTP method (default POST).
    #[arg(long, value_name = "M")]
    pub method: Option<String>,
    /// The IANA time zone the expression is read in (default UTC).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// The request body.
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
    /// A request header, `Name: value` (repeatable).
    #[arg(long, value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    /// AT_LEAST_ONCE (default) or AT_MOST_ONCE.
    #[arg(long = "type", id = "guarantee", value_name = "GUARANTEE")]
    pub guarantee: Option<String>,
    /// Retries after a failed attempt (AT_LEAST_ONCE).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=20))]
    pub retries: Option<u64>,
    /// Seconds each request may take.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=90))]
    pub timeout: Option<u64>,
    /// Seconds after its time a fire may still start (startingDeadlineSeconds).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub deadline: Option<u64>,
    /// Free text.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_switches_and_repeated_headers() {
        let cli = Cli::try_parse_from([
            "tickwork-local",
            "jobs",
            "create",
            "--name",
            "a",
            "--cron",
            "* * * * * *",
            "--target",
            "http://example.com",
            "--header",
            "A: 1",
            "--header",
            "B: 2",
            "--json",
        ])
        .unwrap();
        let Some(Command::Jobs(jobs)) = cli.command else {
            panic!("not jobs: {cli:?}");
        };
        let JobsCommand::Create(create) = *jobs else {
            panic!("not jobs create");
        };
        assert_eq!(create.header, ["A: 1", "B: 2"]);
        assert!(create.api.json);
    }

    #[test]
    fn mistakes_are_named() {
        let error =
            Cli::try_parse_from(["tickwork-local", "schedule", "* * * * * *", "--count", "x"])
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("--count") && error.contains("'x'"),
            "{error}"
        );
        let error = Cli::try_parse_from(["tickwork-local", "history", "id", "--colour", "red"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--colour"), "{error}");
        let error = Cli::try_parse_from(["tickwork-local", "jobs", "get", "a", "b"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("'b'"), "{error}");
    }
}
