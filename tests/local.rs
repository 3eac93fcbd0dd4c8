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
    assert_eq!(json(&output)["description"], "every 15 seconds, UTC");

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
    assert!(
        text.starts_with("at 09:30, on Monday through Friday, Europe/Paris\nUTC"),
        "{text}"
    );
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
    let message = stderr(&bad_count);
    assert!(
        message.contains("'many'") && message.contains("--count"),
        "{message}"
    );
    let too_many = local(&["schedule", "* * * * * *", "--count", "5000"]).await;
    assert_eq!(too_many.status.code(), Some(2));
    assert!(
        stderr(&too_many).contains("1..=1000"),
        "{}",
        stderr(&too_many)
    );

    let unknown = local(&["jobs", "frobnicate"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        stderr(&unknown)
    );

    let missing = local(&["jobs", "create", "--name", "x", "--cron", "* * * * * *"]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("--target"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn every_command_has_help_and_the_shells_get_completions() {
    let commands: [&[&str]; 14] = [
        &[],
        &["serve"],
        &["schedule"],
        &["jobs"],
        &["jobs", "list"],
        &["jobs", "get"],
        &["jobs", "create"],
        &["jobs", "pause"],
        &["jobs", "resume"],
        &["jobs", "trigger"],
        &["jobs", "delete"],
        &["history"],
        &["dead-letters"],
        &["requeue"],
    ];
    for command in commands
        .iter()
        .chain([&["reseal"][..], &["completions"][..]].iter())
    {
        let mut words = command.to_vec();
        words.push("--help");
        let help = local(&words).await;
        assert!(help.status.success(), "{words:?}: {}", stderr(&help));
        assert!(
            stdout(&help).contains("Usage: tickwork-local"),
            "{words:?}: {}",
            stdout(&help)
        );
    }
    let top = stdout(&local(&["--help"]).await);
    assert!(top.contains("EXIT CODES"), "{top}");
    let create = stdout(&local(&["jobs", "create", "--help"]).await);
    for option in [
        "--from",
        "--name",
        "--cron",
        "--target",
        "--header",
        "--type",
        "--deadline",
    ] {
        assert!(
            create.contains(option),
            "jobs create --help lacks {option}: {create}"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = local(&["completions", shell]).await;
        assert!(script.status.success(), "{shell}: {}", stderr(&script));
        let text = stdout(&script);
        assert!(
            text.contains("tickwork-local") && text.contains("dead-letters"),
            "{shell}: {text}"
        );
    }
    let wrong_shell = local(&["completions", "cmd.exe"]).await;
    assert_eq!(wrong_shell.status.code(), Some(2));
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
            "--deadline",
            "30",
            "--json",
        ],
    )
    .await;
    let job = json(&created);
    let id = job["id"].as_str().expect("id").to_string();
    assert_eq!(job["executionType"], "AT_MOST_ONCE");
    assert_eq!(job["startingDeadlineSeconds"], 30);
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
    let got = stdout(&ok(&app, &["jobs", "get", &id]).await);
    assert!(got.contains("paused"), "{got}");
    assert!(got.contains("schedule     every 5 seconds, UTC"), "{got}");
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

/// Waits for `GET {api}/health` to answer 200, up to 10 s.
async fn healthy(api: &str) -> bool {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{api}/health")).send().await {
            if r.status().is_success() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A writable connection to an embedded database that `serve` is using.
async fn embedded_rows(db: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db)
                .busy_timeout(Duration::from_secs(10)),
        )
        .await
        .expect("cannot open the embedded database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_serve_keeps_both_promises_across_kill_9_and_refuses_a_second_process() {
    let target = crate::target::Target::spawn().await;
    let db = std::env::temp_dir().join(format!(
        "tickwork-test-kill-{}.db",
        uuid::Uuid::now_v7().simple()
    ));
    let port = free_port().to_string();
    let env = [
        ("SERVER_PORT", port.as_str()),
        ("SERVER_HOST", "127.0.0.1"),
        ("LEASE_DURATION", "2s"),
    ];
    let api = format!("http://127.0.0.1:{port}");
    let mut serve = Process::embedded(&db, &env);
    assert!(
        healthy(&api).await,
        "serve did not start: {}",
        serve.output()
    );
    assert!(
        serve.output().contains("backend embedded"),
        "{}",
        serve.output()
    );

    // A second process on the same file is refused, and the first is unharmed.
    let second_port = free_port().to_string();
    let second = Process::embedded(&db, &[("SERVER_PORT", second_port.as_str())]);
    let mut second = second;
    let status = second.wait_exit(Duration::from_secs(10)).await;
    assert!(
        status.is_some_and(|s| !s.success()),
        "a second process started: {status:?}"
    );
    assert!(
        second.output().contains("in use by another process"),
        "{}",
        second.output()
    );
    assert!(healthy(&api).await);

    // Every second, one fire of each kind taking 1.5 s at the target.
    let client = reqwest::Client::new();
    for (kind, path) in [
        ("AT_LEAST_ONCE", "/sleep/1500"),
        ("AT_MOST_ONCE", "/sleep/1501"),
    ] {
        let response = client
            .post(format!("{api}/api/v1/jobs"))
            .json(&serde_json::json!({
                "name": kind,
                "cronExpression": "* * * * * *",
                "httpUrl": format!("{}{path}", target.url),
                "executionType": kind,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // Kill it while requests of both kinds are in flight.
    let in_flight = target
        .wait_until(Duration::from_secs(15), |received| received.len() >= 8)
        .await;
    assert!(in_flight, "no requests: {}", serve.output());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while target.in_flight("/sleep/1500") == 0 || target.in_flight("/sleep/1501") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never had requests of both kinds in flight at once within 30 s \
             (AT_LEAST_ONCE {}, AT_MOST_ONCE {}): {}",
            target.in_flight("/sleep/1500"),
            target.in_flight("/sleep/1501"),
            serve.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serve.kill9();
    let rows = embedded_rows(&db).await;
    let before: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM executions WHERE status = 'SUCCEEDED'")
            .fetch_all(&rows)
            .await
            .unwrap();
    assert!(!before.is_empty());

    // Start again on the same file: the lock went with the killed process.
    let mut serve = Process::embedded(&db, &env);
    assert!(healthy(&api).await, "no restart: {}", serve.output());
    tokio::time::sleep(Duration::from_secs(2)).await;
    sqlx::query("UPDATE jobs SET next_run_at = NULL")
        .execute(&rows)
        .await
        .unwrap();
    let mut settled = false;
    for _ in 0..300 {
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM executions WHERE status IN ('QUEUED', 'RUNNING', 'RETRYING')",
        )
        .fetch_one(&rows)
        .await
        .unwrap();
        if unfinished == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(settled, "fires left unfinished: {}", serve.output());

    let all: Vec<(uuid::Uuid, String, String, i32)> = sqlx::query_as(
        "SELECT e.id, j.execution_type, e.status, e.crashes FROM executions e \
         JOIN jobs j ON j.id = e.job_id",
    )
    .fetch_all(&rows)
    .await
    .unwrap();
    let r = crate::cluster::Reconciliation {
        rows: all
            .iter()
            .map(|(id, kind, status, _)| (id.to_string(), kind.clone(), status.clone()))
            .collect(),
        requests: target.requests_per_execution(),
    };
    r.assert_promises_kept();
    assert_eq!(
        r.unknown_requests(),
        0,
        "a request for a fire not in history"
    );
    let rerun = all
        .iter()
        .filter(|(_, kind, status, crashes)| {
            kind == "AT_LEAST_ONCE" && status == "SUCCEEDED" && *crashes > 0
        })
        .count();
    let abandoned = r.count("AT_MOST_ONCE", "ABANDONED");
    assert!(
        rerun >= 1,
        "the AT_LEAST_ONCE fire cut off was not run again"
    );
    assert!(
        abandoned >= 1,
        "the AT_MOST_ONCE fire cut off was not abandoned"
    );
    for (id, status) in &before {
        let kept = all.iter().find(|(i, ..)| i == id);
        assert_eq!(
            kept.map(|k| k.2.as_str()),
            Some(status.as_str()),
            "history lost {id}"
        );
    }
    println!(
        "embedded kill -9: {} fires, {} AT_LEAST_ONCE run again after the kill, {} AT_MOST_ONCE abandoned, \
         0 lost, 0 delivered twice, {} finished fires kept",
        all.len(),
        rerun,
        abandoned,
        before.len()
    );

    serve.signal("TERM");
    let status = serve.wait_exit(Duration::from_secs(20)).await;
    assert!(status.is_some_and(|s| s.success()), "{}", serve.output());
    rows.close().await;
    for suffix in ["", "-wal", "-shm", ".lock", ".key"] {
        let mut file = db.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

#[tokio::test]
async fn trigger_dead_letters_and_requeue_from_the_command_line() {
    let app = crate::helpers::spawn_embedded_app().await;
    let job = app
        .create_job(serde_json::json!({"cronExpression": "0 0 0 1 1 *", "maxRetries": 0}))
        .await;
    let job_id = job["id"].as_str().unwrap();
    app.target.respond_with(500);
    let triggered = ok(&app, &["jobs", "trigger", job_id]).await;
    assert!(stdout(&triggered).starts_with("queued a manual fire: execution "));
    app.drain_queue().await;

    let listed = ok(&app, &["dead-letters", "--job", job_id, "--json"]).await;
    let execution_id = json(&listed)["executions"][0]["id"]
        .as_str()
        .expect("a dead letter")
        .to_string();
    let table = ok(&app, &["dead-letters"]).await;
    assert!(
        stdout(&table).starts_with("EXECUTION"),
        "{}",
        stdout(&table)
    );
    assert!(stdout(&table).contains(&execution_id));

    app.target.respond_with(200);
    let requeued = ok(&app, &["requeue", &execution_id, "--json"]).await;
    assert_eq!(json(&requeued)["status"], "QUEUED");
    app.drain_queue().await;
    let again = local(&["requeue", &execution_id, "--url", app.address.as_str()]).await;
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(stderr(&again).contains("SUCCEEDED"), "{}", stderr(&again));
}

#[tokio::test]
async fn reseal_from_the_command_line_reads_every_page_and_says_when_old_keys_can_go() {
    let app = crate::helpers::spawn_embedded_app().await;
    // Three pages of 500: each job has a credential header sealed under the app's key.
    let jobs: u64 = 1001;
    for chunk in 0..jobs.div_ceil(50) {
        let creates = (chunk * 50..(chunk * 50 + 50).min(jobs)).map(|_| {
            app.create_job(serde_json::json!({"httpHeaders": {"Authorization": "Bearer x"}}))
        });
        futures_util::future::join_all(creates).await;
    }
    // The key changes: an API sealing under a new key, which still opens the old one.
    let mut state = app.state();
    let new = tickwork::secrets::Keyring::generate_key();
    state.keyring = std::sync::Arc::new(
        tickwork::secrets::Keyring::new(&new, &[app.encryption_key.as_str()]).unwrap(),
    );
    let api = crate::helpers::serve_api(state).await;
    let output = local(&["reseal", "--json", "--url", api.as_str()]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    // Every page read; each job's header and signing secret moved.
    assert_eq!(report["scanned"], jobs);
    assert_eq!(report["resealedJobs"], jobs);
    assert_eq!(report["resealedValues"], 2 * jobs);
    assert_eq!(report["unreadable"], 0);
    // Run again: read, nothing left to move, and the old key can go.
    let output = local(&["reseal", "--url", api.as_str()]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("{jobs} jobs read, 0 secrets")),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("ENCRYPTION_PREVIOUS_KEYS can go"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn serve_refuses_db_when_the_servers_are_configured() {
    let output = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_tickwork-test-local"))
            .args(["serve", "--db", "/nonexistent/tickwork.db"])
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
            .output()
            .expect("cannot run tickwork-local")
    })
    .await
    .expect("tickwork-local runner panicked");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--db names the embedded database, but DATABASE_URL"),
        "{}",
        stderr(&output)
    );
}
