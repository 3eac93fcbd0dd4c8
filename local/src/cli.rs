//! The commands for people at a terminal: each one call to the API (or none, for
//! `schedule`), printed as a table, or as the API's JSON with `--json`.

use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use tickwork::schedule::{describe, Schedule};

use crate::args::{ApiArgs, CreateArgs, JobsCommand, ScheduleArgs};

/// Why a command did not do what was asked; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// The API answered 4xx: the request was refused (exit 3).
    Refused(String),
    /// Anything else: the API is unreachable or failed (exit 1).
    Failed(anyhow::Error),
}

impl Failure {
    /// Prints the failure and returns its exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Usage(message) => {
                eprintln!("tickwork-local: {message} (see tickwork-local --help)");
                ExitCode::from(2)
            }
            Failure::Refused(message) => {
                eprintln!("tickwork-local: {message}");
                ExitCode::from(3)
            }
            Failure::Failed(error) => {
                eprintln!("tickwork-local: {error:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// `schedule CRON [--tz ZONE] [--count N]`: the next fire times, computed here.
pub fn schedule(args: &ScheduleArgs) -> Result<(), Failure> {
    let (cron, zone) = (args.cron.as_str(), args.tz.as_str());
    let count = usize::try_from(args.count).unwrap_or(usize::MAX);
    let schedule = Schedule::parse(cron, zone)
        .map_err(|e| Failure::Usage(format!("schedule {cron:?} --tz {zone}: {e}")))?;
    let fires = schedule.upcoming(Utc::now(), count);
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    if args.json {
        let times: Vec<String> = fires
            .iter()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .collect();
        print_json(&json!({
            "cronExpression": cron,
            "timezone": zone,
            "description": describe(&schedule),
            "fireTimes": times,
        }));
        return Ok(());
    }
    println!("{}", describe(&schedule));
    if fires.is_empty() {
        println!("{cron} ({zone}) never fires again");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = fires
        .iter()
        .map(|t| {
            vec![
                t.to_rfc3339_opts(SecondsFormat::Secs, true),
                t.with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M:%S %Z")
                    .to_string(),
            ]
        })
        .collect();
    print_table(&["UTC", zone], &rows);
    Ok(())
}

/// `jobs list|get|create|pause|resume|trigger|delete`.
pub async fn jobs(command: JobsCommand) -> Result<(), Failure> {
    match command {
        JobsCommand::List { limit, all, api } => list_jobs(limit, all, &Api::new(&api)).await,
        JobsCommand::Get(job) => {
            let api = Api::new(&job.api);
            let found = api.call("GET", &job_path(&job.job_id), None).await?;
            print_job(&api, &found);
            Ok(())
        }
        JobsCommand::Create(create) => {
            let api = Api::new(&create.api);
            let job = api
                .call("POST", "/api/v1/jobs", Some(create_body(&create)?))
                .await?;
            print_job(&api, &job);
            Ok(())
        }
        JobsCommand::Pause(job) => change_job(&job.job_id, "pause", &Api::new(&job.api)).await,
        JobsCommand::Resume(job) => change_job(&job.job_id, "resume", &Api::new(&job.api)).await,
        JobsCommand::Trigger(job) => {
            let api = Api::new(&job.api);
            let path = format!("{}/trigger", job_path(&job.job_id));
            let execution = api.call("POST", &path, None).await?;
            print_queued(&api, &execution, "queued a manual fire");
            Ok(())
        }
        JobsCommand::Delete(job) => {
            let api = Api::new(&job.api);
            api.call("DELETE", &job_path(&job.job_id), None).await?;
            if api.json {
                print_json(&json!({ "deleted": job.job_id }));
            } else {
                println!("deleted job {}", job.job_id);
            }
            Ok(())
        }
    }
}

/// `jobs pause|resume JOB_ID`.
async fn change_job(id: &str, verb: &str, api: &Api) -> Result<(), Failure> {
    let path = format!("{}/{verb}", job_path(id));
    let job = api.call("POST", &path, None).await?;
    print_job(api, &job);
    Ok(())
}

/// `jobs list [--limit N] [--all]`.
async fn list_jobs(limit: u64, all: bool, api: &Api) -> Result<(), Failure> {
    let mut path = format!("/api/v1/jobs?limit={limit}");
    if all {
        path.push_str("&includeDeleted=true");
    }
    let page = api.call("GET", &path, None).await?;
    print_page(
        api,
        &page,
        "jobs",
        &[
            ("ID", |j| text(j, "id")),
            ("NAME", |j| text(j, "name")),
            ("CRON", |j| text(j, "cronExpression")),
            ("TZ", |j| text(j, "timezone")),
            ("STATE", state),
            ("NEXT RUN", |j| text(j, "nextRunAt")),
            ("LAST", |j| text(j, "lastStatus")),
        ],
    );
    Ok(())
}

/// Prints an execution the API just queued (trigger, requeue).
fn print_queued(api: &Api, execution: &Value, what: &str) {
    if api.json {
        print_json(execution);
    } else {
        println!(
            "{what}: execution {} of job {}, due {}",
            text(execution, "id"),
            text(execution, "jobId"),
            text(execution, "scheduledAt")
        );
    }
}

/// `dead-letters [--job JOB_ID] [--limit N]`.
pub async fn dead_letters(job: Option<&str>, limit: u64, api: &ApiArgs) -> Result<(), Failure> {
    let mut path = format!("/api/v1/dead-letters?limit={limit}");
    if let Some(job) = job {
        path.push_str(&format!("&jobId={job}"));
    }
    let api = Api::new(api);
    let page = api.call("GET", &path, None).await?;
    print_page(
        &api,
        &page,
        "executions",
        &[
            ("EXECUTION", |e| text(e, "id")),
            ("JOB", |e| text(e, "jobId")),
            ("SCHEDULED", |e| text(e, "scheduledAt")),
            ("STATUS", |e| text(e, "status")),
            ("ATTEMPT", |e| text(e, "attempt")),
            ("ERROR", |e| text(e, "error")),
        ],
    );
    Ok(())
}

/// `requeue EXECUTION_ID [--force]`.
pub async fn requeue(id: &str, force: bool, api: &ApiArgs) -> Result<(), Failure> {
    let mut path = format!("/api/v1/dead-letters/{id}/requeue");
    if force {
        path.push_str("?force=true");
    }
    let api = Api::new(api);
    let execution = api.call("POST", &path, None).await?;
    print_queued(&api, &execution, "requeued");
    Ok(())
}

/// `reseal`: every page of `POST /api/v1/admin/reseal`, then the totals.
pub async fn reseal(api: &ApiArgs) -> Result<(), Failure> {
    let api = Api::new(api);
    let fields = [
        "scanned",
        "resealedJobs",
        "resealedValues",
        "unreadable",
        "changedMeanwhile",
    ];
    let mut totals = [0u64; 5];
    let mut path = "/api/v1/admin/reseal".to_string();
    loop {
        let page = api.call("POST", &path, None).await?;
        for (total, field) in totals.iter_mut().zip(fields) {
            *total += page[field].as_u64().unwrap_or(0);
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/admin/reseal?cursor={cursor}"),
            None => break,
        }
    }
    if api.json {
        let report: serde_json::Map<String, Value> = fields
            .iter()
            .zip(totals)
            .map(|(field, total)| (field.to_string(), Value::from(total)))
            .collect();
        print_json(&Value::Object(report));
        return Ok(());
    }
    let [scanned, jobs, values, unreadable, changed] = totals;
    println!("{scanned} jobs read, {values} secrets of {jobs} jobs sealed under the current key");
    if unreadable > 0 {
        println!(
            "{unreadable} secrets did not open under any key the API holds (see its log); \
             keep the earlier keys until they are dealt with"
        );
    }
    if changed > 0 {
        println!("{changed} jobs changed during the run; run reseal again");
    }
    if unreadable == 0 && changed == 0 {
        println!("every stored secret is under the current key: ENCRYPTION_PREVIOUS_KEYS can go");
    }
    Ok(())
}

/// `history JOB_ID [--limit N]`.
pub async fn history(id: &str, limit: u64, api: &ApiArgs) -> Result<(), Failure> {
    let api = Api::new(api);
    let page = api
        .call(
            "GET",
            &format!("/api/v1/jobs/{id}/history?limit={limit}"),
            None,
        )
        .await?;
    print_page(
        &api,
        &page,
        "executions",
        &[
            ("SCHEDULED", |e| text(e, "scheduledAt")),
            ("STATUS", |e| text(e, "status")),
            ("ATTEMPT", |e| text(e, "attempt")),
            ("HTTP", |e| text(e, "httpStatus")),
            ("DURATION", duration),
            ("ERROR", |e| text(e, "error")),
        ],
    );
    Ok(())
}

/// `/api/v1/jobs/{id}`.
fn job_path(id: &str) -> String {
    format!("/api/v1/jobs/{id}")
}

/// The body of `jobs create`, from `--from FILE` or from the options.
fn create_body(args: &CreateArgs) -> Result<Value, Failure> {
    if let Some(file) = &args.from {
        let text = if file == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(file)
        }
        .map_err(|e| Failure::Usage(format!("cannot read {file}: {e}")))?;
        return serde_json::from_str(&text)
            .map_err(|e| Failure::Usage(format!("{file} is not JSON: {e}")));
    }
    let mut body = Map::new();
    let text_fields = [
        ("name", &args.name),
        ("cronExpression", &args.cron),
        ("httpUrl", &args.target),
        ("httpMethod", &args.method),
        ("timezone", &args.tz),
        ("httpBody", &args.body),
        ("executionType", &args.guarantee),
        ("description", &args.description),
    ];
    for (field, value) in text_fields {
        if let Some(value) = value {
            body.insert(field.into(), value.as_str().into());
        }
    }
    let number_fields = [
        ("maxRetries", args.retries),
        ("timeoutSeconds", args.timeout),
        ("startingDeadlineSeconds", args.deadline),
    ];
    for (field, value) in number_fields {
        if let Some(value) = value {
            body.insert(field.into(), value.into());
        }
    }
    let mut headers = Map::new();
    for header in &args.header {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Failure::Usage(format!("--header {header:?} is not \"Name: value\"")))?;
        headers.insert(name.trim().into(), value.trim().into());
    }
    if !headers.is_empty() {
        body.insert("httpHeaders".into(), Value::Object(headers));
    }
    Ok(Value::Object(body))
}

/// The API at `--url`, `TICKWORK_URL` or the default.
struct Api {
    base: String,
    json: bool,
    /// `TICKWORK_API_KEY`, sent as `Authorization: Bearer` (an environment variable, so
    /// the key stays out of shell history).
    key: Option<String>,
    client: reqwest::Client,
}

impl Api {
    fn new(args: &ApiArgs) -> Self {
        Self {
            base: args.url.trim_end_matches('/').to_string(),
            json: args.json,
            key: std::env::var("TICKWORK_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            client: reqwest::Client::new(),
        }
    }

    /// One request; a 4xx is [`Failure::Refused`] with the API's message.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Failure::Failed(anyhow::anyhow!("bad method {method}: {e}")))?;
        let mut request = self.client.request(method, &url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| {
            Failure::Failed(anyhow::anyhow!(
                "cannot reach the API at {}: {e} (is `tickwork-local serve` running? --url)",
                self.base
            ))
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Failed(anyhow::anyhow!("reading the API's answer: {e}")))?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        let message = match (error["message"].as_str(), error["field"].as_str()) {
            (Some(message), Some(field)) => format!("{status}: {field}: {message}"),
            (Some(message), None) => format!("{status}: {message}"),
            _ => format!("{status}: {value}"),
        };
        if status.is_client_error() {
            Err(Failure::Refused(message))
        } else {
            Err(Failure::Failed(anyhow::anyhow!(
                "the API failed: {message}"
            )))
        }
    }
}

fn print_job(api: &Api, job: &Value) {
    if api.json {
        print_json(job);
        return;
    }
    let fields = [
        ("id", "id"),
        ("name", "name"),
        ("cron", "cronExpression"),
        ("timezone", "timezone"),
        ("target", "httpUrl"),
        ("method", "httpMethod"),
        ("guarantee", "executionType"),
        ("next run", "nextRunAt"),
        ("last run", "lastRunAt"),
        ("last status", "lastStatus"),
    ];
    for (label, field) in fields {
        println!("{label:<12} {}", text(job, field));
        if field == "timezone" {
            println!("{:<12} {}", "schedule", schedule_words(job));
        }
    }
    println!("{:<12} {}", "state", state(job));
}

/// A job's schedule in plain words, or what the expression is when it does not parse.
fn schedule_words(job: &Value) -> String {
    let (cron, zone) = (text(job, "cronExpression"), text(job, "timezone"));
    match Schedule::parse(&cron, &zone) {
        Ok(schedule) => describe(&schedule),
        Err(error) => format!("{cron:?} ({zone}): {error}"),
    }
}

fn state(job: &Value) -> String {
    if !job["deletedAt"].is_null() {
        "deleted".into()
    } else if job["isActive"].as_bool() == Some(true) {
        "active".into()
    } else {
        "paused".into()
    }
}

fn items<'a>(page: &'a Value, key: &str) -> &'a [Value] {
    page[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn text(value: &Value, field: &str) -> String {
    match &value[field] {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Columns padded to their widest cell.
/// One column of a table: its header and how a cell is read from an item.
type Column = (&'static str, fn(&Value) -> String);

/// Prints the `key` items of a page: the page as JSON with `--json`, else a table of
/// `columns`, a row per item.
fn print_page(api: &Api, page: &Value, key: &str, columns: &[Column]) {
    if api.json {
        print_json(page);
        return;
    }
    let headers: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
    let rows: Vec<Vec<String>> = items(page, key)
        .iter()
        .map(|item| columns.iter().map(|(_, cell)| cell(item)).collect())
        .collect();
    print_table(&headers, &rows);
}

/// An attempt's duration as the history shows it.
fn duration(execution: &Value) -> String {
    match execution.get("durationMs").and_then(Value::as_i64) {
        Some(ms) => format!("{ms} ms"),
        None => "-".into(),
    }
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    if rows.is_empty() {
        println!("(none)");
    }
}
