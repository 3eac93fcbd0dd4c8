//! The benchmark's HTTP target: answers 200 at once over keep-alive and logs, per request,
//! the job, the execution, the fire time and the arrival time.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};

/// One request as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// `X-Tickwork-Job-Id`.
    pub job: u128,
    /// `X-Tickwork-Execution-Id`.
    pub execution: u128,
    /// `X-Tickwork-Scheduled-At`, ms since the epoch.
    pub scheduled_ms: i64,
    /// Arrival, µs since the epoch.
    pub arrived_us: i64,
}

/// A running target.
#[derive(Clone)]
pub struct Target {
    /// Base URL.
    pub url: String,
    log: Arc<Mutex<Vec<Arrival>>>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn uuid(headers: &HeaderMap, name: &str) -> u128 {
    header(headers, name)
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
        .map(|u| u.as_u128())
        .unwrap_or(0)
}

impl Target {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        let log: Arc<Mutex<Vec<Arrival>>> = Arc::new(Mutex::new(Vec::with_capacity(1 << 20)));
        let shared = log.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let log = shared.clone();
            async move {
                let arrived_us = Utc::now().timestamp_micros();
                let scheduled_ms = header(&headers, "x-tickwork-scheduled-at")
                    .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(0);
                let arrival = Arrival {
                    job: uuid(&headers, "x-tickwork-job-id"),
                    execution: uuid(&headers, "x-tickwork-execution-id"),
                    scheduled_ms,
                    arrived_us,
                };
                if let Ok(mut log) = log.lock() {
                    log.push(arrival);
                }
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url, log })
    }

    /// Everything received so far.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
