//! `tickwork-local`: `serve` runs the whole system in one process; the command line talks to
//! the API, prints tables or JSON, and says what went wrong with a distinct exit code.

use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, Timelike};
use serde_json::Value;

use crate::cluster::{free_port, Binary, Process};
use crate::helpers::{spawn_app, TestApp};

/// Runs `tickwork-local ARGS` to the end, off the test's runtime (which serves the API).
async fn local(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tickwork-test-local"))
            .args(&args)
            .env_remove("TICKWORK_URL")
            .output()
            .expect("cannot run tickwork-local")
    })
    .await
    .expect("tickwork-local runner panicked")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

/// `tickwork-local ARGS --url <app's API>`, which must succeed.
async fn ok(app: &TestApp, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--url", app.address.as_str()]);
    let output = local(&all).await;
    assert!(
        output.status.success(),
        "tickwork-local {args:?} failed: {}",
        stderr(&output)
    );
    output
}

#[tokio::test]
async fn schedule_prints_the_next_fire_times_without_a_server() {
    let output = local(&["schedule", "*/15 * * * * *", "--count", "3", "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let times: Vec<DateTime<chrono::FixedOffset>> = json(&output)["fireTimes"]
        .as_array()
        .expect("fireTimes")
        .iter()
        .map(|t| DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    assert!(times.iter().all(|t| t.second() % 15 == 0), "{times:?}");
    assert_eq!((times[1] - times[0]).num_seconds(), 15);

    let table = local(&[
        "schedule",
        "0 30 9 * * MON-FRI",
        "--tz",
        "Europe/Paris",
        "--count",
        "2",
    ])
    .await;
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.starts_with("UTC"), "{text}");
    assert_eq!(text.matches("09:30:00 CE").count(), 2, "{text}");
}

#[tokio::test]
async fn a_bad_command_line_exits_2_and_says_what_is_wrong() {
    let bad_cron = local(&["schedule", "61 * * * * *"]).await;
    assert_eq!(bad_cron.status.code(), Some(2));
    let message = stderr(&bad_cron);
    assert!(
        message.contains("\"61 * * * * *\"") && message.contains("not valid"),
        "{message}"
    );

    let bad_count = local(&["schedule", "* * * * * *", "--count", "many"]).await;
    assert_eq!(bad_count.status.code(), Some(2));
    assert!(stderr(&bad_count).contains("--count is \"many\""));

    let unknown = local(&["jobs", "frobnicate"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("unknown jobs command \"frobnicate\""));

    let missing = local(&["jobs", "create", "--name", "x", "--cron", "* * * * * *"]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("--target"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn jobs_are_created_listed_paused_resumed_and_deleted_from_the_command_line() {
    let app = spawn_app().await;
    let target = format!("{}/hook", app.target.url);
    let created = ok(
        &app,
        &[
            "jobs",
            "create",
            "--name",
            "from the terminal",
            "--cron",
            "*/5 * * * * *",
            "--target",
            &target,
            "--header",
            "X-Team: platform",
            "--type",
            "AT_MOST_ONCE",
            "--retries",
            "0",
            "--json",
        ],
    )
    .await;
    let job = json(&created);
    let id = job["id"].as_str().expect("id").to_string();
    assert_eq!(job["executionType"], "AT_MOST_ONCE");
    assert_eq!(job["httpHeaders"]["X-Team"], "platform");

    let list = ok(&app, &["jobs", "list"]).await;
    let table = stdout(&list);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(&id) && table.contains("from the terminal"),
        "{table}"
    );

    let paused = json(&ok(&app, &["jobs", "pause", &id, "--json"]).await);
    assert_eq!(paused["isActive"], false);
    assert!(stdout(&ok(&app, &["jobs", "get", &id]).await).contains("paused"));
    let resumed = json(&ok(&app, &["jobs", "resume", &id, "--json"]).await);
    assert_eq!(resumed["isActive"], true);

    let history = json(&ok(&app, &["history", &id, "--json"]).await);
    assert_eq!(history["executions"], Value::Array(vec![]));

    ok(&app, &["jobs", "delete", &id]).await;
    assert!(stdout(&ok(&app, &["jobs", "get", &id]).await).contains("deleted"));
    let unknown = "0190a3b0-0000-7000-8000-000000000000";
    let missing = local(&["jobs", "get", unknown, "--url", &app.address]).await;
    assert_eq!(missing.status.code(), Some(3), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("404"), "{}", stderr(&missing));
    let listed = json(&ok(&app, &["jobs", "list", "--all", "--json"]).await);
    assert_eq!(listed["jobs"][0]["id"], id.as_str());
    assert!(!listed["jobs"][0]["deletedAt"].is_null());
}

#[tokio::test]
async fn a_refused_request_exits_3_naming_the_field_and_an_unreachable_api_exits_1() {
    let app = spawn_app().await;
    let refused = local(&[
        "jobs",
        "create",
        "--name",
        "x",
        "--cron",
        "* * *",
        "--target",
        "http://127.0.0.1:9/",
        "--url",
        &app.address,
    ])
    .await;
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        stderr(&refused).contains("cronExpression"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(app.job_rows().await, 0, "nothing was created");

    let port = free_port();
    let unreachable = local(&["jobs", "list", "--url", &format!("http://127.0.0.1:{port}")]).await;
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(stderr(&unreachable).contains("cannot reach the API"));
}

#[tokio::test]
async fn serve_runs_the_api_the_tick_and_a_worker_in_one_process() {
    let app = spawn_app().await;
    let port = free_port();
    let mut serve = Process::spawn(
        &app,
        Binary::Local,
        &[
            ("SERVER_PORT", &port.to_string()),
            ("SERVER_HOST", "127.0.0.1"),
        ],
    );
    let api = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{api}/health")).send().await {
            healthy = r.status().is_success();
            if healthy {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "serve did not answer /health: {}", serve.output());
    assert!(serve
        .output()
        .contains(&format!("API on http://127.0.0.1:{port}")));

    let created = ok(
        &app,
        &[
            "jobs",
            "create",
            "--name",
            "every second",
            "--cron",
            "* * * * * *",
            "--target",
            &format!("{}/hook", app.target.url),
            "--json",
            "--url",
            &api,
        ],
    )
    .await;
    let id = json(&created)["id"].as_str().expect("id").to_string();
    let delivered = app
        .target
        .wait_until(Duration::from_secs(10), |received| {
            received
                .iter()
                .filter(|r| r.header("X-Tickwork-Job-Id") == Some(id.as_str()))
                .count()
                >= 2
        })
        .await;
    assert!(delivered, "no fires reached the target: {}", serve.output());

    serve.signal("TERM");
    let status = serve.wait_exit(Duration::from_secs(20)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "serve did not stop cleanly on SIGTERM: {status:?}\n{}",
        serve.output()
    );
}
