//! A local HTTP target that logs every request with its arrival time, and behaves as its path says:
//! `/sleep/{ms}` answers after that long, `/flaky` answers 503 to first attempts (and
//! `/slow-flaky` does so after 1.5 s),
//! `/poison` announces itself and hangs; `/to-metadata` redirects (302) to the cloud
//! metadata address; `/binary` answers bytes that are not text (NUL, not UTF-8); `/echo`
//! answers the request's URI and headers as JSON; anything else answers the chosen status
//! (or the scripted answers first).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};

/// One request as the target received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// HTTP method.
    pub method: Method,
    /// Path and query.
    pub uri: Uri,
    /// Every header.
    pub headers: HeaderMap,
    /// The body, as text.
    pub body: String,
    /// When it arrived, by this host's wall clock (taken first thing in the handler, in
    /// microseconds: finer than the milliseconds a scheduled time carries).
    pub arrived: DateTime<Utc>,
}

impl Received {
    /// One header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The fire time it names (`X-Tickwork-Scheduled-At`).
    pub fn scheduled_at(&self) -> DateTime<Utc> {
        let raw = self
            .header("x-tickwork-scheduled-at")
            .expect("a request without X-Tickwork-Scheduled-At");
        DateTime::parse_from_rfc3339(raw)
            .unwrap_or_else(|e| panic!("X-Tickwork-Scheduled-At {raw:?}: {e}"))
            .with_timezone(&Utc)
    }

    /// The job id it carries.
    pub fn job_id(&self) -> String {
        self.header("x-tickwork-job-id")
            .unwrap_or_default()
            .to_string()
    }

    /// The execution id it carries.
    pub fn execution_id(&self) -> String {
        self.header("x-tickwork-execution-id")
            .unwrap_or_default()
            .to_string()
    }
}

/// A scripted answer: status and an optional `Retry-After` value.
type Answer = (u16, Option<String>);

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Answer>,
    /// Requests being answered now, per path.
    in_flight: HashMap<String, usize>,
    /// The most requests ever answered at once, per path.
    most_at_once: HashMap<String, usize>,
}

/// The target: clone it freely, every clone sees the same log.
#[derive(Clone)]
pub struct Target {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    state: Arc<Mutex<State>>,
    status: Arc<AtomicU16>,
}

impl Target {
    /// Starts a target on a free port.
    pub async fn spawn() -> Self {
        let state: Arc<Mutex<State>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (shared, answer) = (state.clone(), status.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (state, answer) = (shared.clone(), answer.clone());
                async move { handle(state, answer, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("could not bind the target");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("target has no address")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state, status }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the target answer every later request with `status`.
    pub fn respond_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Answers the next requests with these, in order, then with the chosen status.
    pub fn script(&self, answers: &[(u16, Option<&str>)]) {
        self.state()
            .script
            .extend(answers.iter().map(|(s, r)| (*s, r.map(str::to_string))));
    }

    /// What it has received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    /// Requests being answered right now on `path`.
    pub fn in_flight(&self, path: &str) -> usize {
        self.state().in_flight.get(path).copied().unwrap_or(0)
    }

    /// The most requests ever answered at once on `path`.
    pub fn most_at_once(&self, path: &str) -> usize {
        self.state().most_at_once.get(path).copied().unwrap_or(0)
    }

    /// Requests per execution id.
    pub fn requests_per_execution(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for r in self.state().received.iter() {
            *counts.entry(r.execution_id()).or_insert(0) += 1;
        }
        counts
    }

    /// Requests per fire: (job id, `X-Tickwork-Scheduled-At`), whichever execution they name.
    pub fn requests_per_fire(&self) -> HashMap<(String, DateTime<Utc>), usize> {
        let mut counts = HashMap::new();
        for r in self.state().received.iter() {
            *counts.entry((r.job_id(), r.scheduled_at())).or_insert(0) += 1;
        }
        counts
    }

    /// Waits until `done` holds for the log, up to `limit`; true if it did.
    pub async fn wait_until(&self, limit: Duration, done: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if done(&self.state().received) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    answer: Arc<AtomicU16>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let arrived = Utc::now();
    let path = uri.path().to_string();
    let attempt = headers
        .get("x-tickwork-attempt")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let scripted = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.received.push(Received {
            method,
            uri,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            arrived,
        });
        let now = {
            let n = s.in_flight.entry(path.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let most = s.most_at_once.entry(path.clone()).or_insert(0);
        *most = (*most).max(now);
        s.script.pop_front()
    };
    // Leaves the in-flight count even when the worker hangs up mid-answer.
    let _leaving = Leaving {
        state: state.clone(),
        path: path.clone(),
    };

    let (code, retry_after) = if let Some(ms) = path.strip_prefix("/sleep/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(1000))).await;
        (200, None)
    } else if path == "/flaky" {
        (if attempt == "1" { 503 } else { 200 }, None)
    } else if path == "/slow-flaky" {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        (if attempt == "1" { 503 } else { 200 }, None)
    } else if path == "/poison" {
        tokio::time::sleep(Duration::from_secs(60)).await;
        (200, None)
    } else {
        scripted.unwrap_or((answer.load(Ordering::SeqCst), None))
    };
    if path == "/echo" {
        // What a debugging endpoint does: the request back, as JSON.
        let echoed = {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.received.last().map(|r| {
                let headers: HashMap<String, String> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                    .collect();
                serde_json::json!({"uri": r.uri.to_string(), "headers": headers})
            })
        };
        return (StatusCode::OK, axum::Json(echoed)).into_response();
    }
    if path == "/binary" {
        return (StatusCode::OK, &b"\0\xffok\0"[..]).into_response();
    }
    if path == "/to-metadata" {
        return (
            StatusCode::FOUND,
            [("location", "http://169.254.169.254/latest/meta-data/")],
            "see the metadata service",
        )
            .into_response();
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, format!("answer {code}")).into_response();
    if let Some(value) = retry_after.and_then(|v| v.parse().ok()) {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

struct Leaving {
    state: Arc<Mutex<State>>,
    path: String,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = s.in_flight.get_mut(&self.path) {
            *n = n.saturating_sub(1);
        }
    }
}
