//! The API's edge: idle and slow clients are cut off, oversize requests are refused early
//! in the API's error shape, and what hyper refuses itself closes with its bare answer.

use std::time::Duration;

use tickwork::api::{HEADERS_LIMIT, URI_LIMIT};
use tickwork::config::ConnectionSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::cluster::{free_port, Binary, Process};
use crate::helpers::{serve_api_with, spawn_app, spawn_embedded_app};

/// What came back on a raw connection.
#[derive(Debug)]
struct Reply {
    /// The status code, 0 when nothing arrived.
    status: u16,
    /// The status line and headers.
    head: String,
    /// The body as sent.
    body: String,
    /// The server closed the connection before the wait was over.
    closed: bool,
}

impl Reply {
    /// The `code` of a JSON error body.
    fn code(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("not a JSON error: {self:?}"))
    }

    /// A JSON error `status` and `code`, said to close the connection and closed.
    fn assert_closing(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.code(), code);
        let head = self.head.to_ascii_lowercase();
        assert!(head.contains("connection: close"), "{self:?}");
        assert!(self.closed, "the connection stayed open: {self:?}");
    }
}

/// `host:port` of an `http://` address.
fn authority(address: &str) -> &str {
    address.trim_start_matches("http://")
}

/// Reads from `stream` until the server closes it or `limit` has passed.
async fn read_reply(stream: &mut TcpStream, limit: Duration) -> Reply {
    let deadline = Instant::now() + limit;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let mut closed = false;
    while let Ok(read) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        match read {
            Ok(0) | Err(_) => {
                closed = true;
                break;
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
        closed,
    }
}

/// Sends `request` as is on a new connection and reads what comes back within `limit`.
async fn exchange(address: &str, request: &[u8], limit: Duration) -> Reply {
    let mut stream = TcpStream::connect(authority(address))
        .await
        .expect("cannot connect to the API");
    stream.write_all(request).await.expect("cannot send");
    read_reply(&mut stream, limit).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_head_timeout_so_health_keeps_answering() {
    let app = spawn_app().await;
    let port = free_port();
    let head_timeout = Duration::from_secs(2);
    // 256 open files: at most 192 connections served at once, the rest wait to be accepted.
    let mut api = Process::spawn_with_file_limit(
        &app,
        Binary::Api,
        &[
            ("SERVER_PORT", &port.to_string()),
            ("API_HEAD_TIMEOUT", "2"),
        ],
        256,
    );
    let client = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .get(&health)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            api.is_running() && Instant::now() < deadline,
            "the API did not start: {}",
            api.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 300 connections from another loopback address that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..300 {
        let socket = TcpSocket::new_v4().expect("no socket");
        socket
            .bind("127.0.0.2:0".parse().expect("an address"))
            .expect("cannot bind 127.0.0.2");
        let stream = socket
            .connect(format!("127.0.0.1:{port}").parse().expect("an address"))
            .await
            .expect("cannot connect an idle client");
        idle.push(stream);
    }

    // A new connection, behind the idle ones in the listen queue.
    let started = Instant::now();
    let answer = reqwest::Client::new()
        .get(&health)
        .timeout(head_timeout + Duration::from_secs(2))
        .send()
        .await;
    assert!(
        answer.as_ref().is_ok_and(|r| r.status().is_success()),
        "/health behind 300 idle connections: {answer:?} after {:?}\n{}",
        started.elapsed(),
        api.output()
    );

    // The first idle connection was closed by the server, without an answer.
    let first = read_reply(&mut idle[0], head_timeout).await;
    assert!(first.closed, "an idle connection stayed open: {first:?}");
    assert_eq!(
        first.status, 0,
        "an idle connection got an answer: {first:?}"
    );
    assert!(
        api.output()
            .contains("every connection the API serves at once is in use"),
        "a full server said nothing: {}",
        api.output()
    );
}

#[tokio::test]
async fn a_body_trickled_in_is_cut_off_with_408_at_the_body_timeout() {
    let app = spawn_embedded_app().await;
    let settings = ConnectionSettings {
        body_timeout: Duration::from_secs(1),
        ..ConnectionSettings::default()
    };
    let address = serve_api_with(app.state(), settings).await;
    let mut stream = TcpStream::connect(authority(&address))
        .await
        .expect("cannot connect");
    stream
        .write_all(
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{",
        )
        .await
        .expect("cannot send");
    // One byte every 200 ms: each read is quick, the whole body never arrives in time.
    let trickle = async {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_millis(1500), trickle)
        .await
        .ok();
    let reply = read_reply(&mut stream, Duration::from_secs(3)).await;
    reply.assert_closing(408, "request_timeout");

    // Nothing was created.
    let jobs: serde_json::Value = app
        .client
        .get(format!("{}/api/v1/jobs", app.address))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(0), "{jobs}");
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    let app = spawn_embedded_app().await;
    let reply = exchange(
        &app.address,
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1073741824\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    reply.assert_closing(413, "payload_too_large");
}

#[tokio::test]
async fn a_long_uri_or_a_large_header_block_gets_the_api_error_shape() {
    let app = spawn_embedded_app().await;

    let path = format!("/api/v1/jobs?status={}", "a".repeat(URI_LIMIT));
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let reply = exchange(&app.address, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(reply.status, 414, "{reply:?}");
    assert_eq!(reply.code(), "uri_too_long");

    // Just under the limit is read (and answered on its merits).
    let path = format!("/api/v1/jobs?name={}", "a".repeat(URI_LIMIT - 40));
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let reply = exchange(&app.address, request.as_bytes(), Duration::from_secs(5)).await;
    assert_ne!(reply.status, 414, "{reply:?}");

    let filler: String = (0..20)
        .map(|i| format!("X-Filler-{i}: {}\r\n", "b".repeat(HEADERS_LIMIT / 20)))
        .collect();
    let request =
        format!("GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\n{filler}Connection: close\r\n\r\n");
    let reply = exchange(&app.address, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(reply.status, 431, "{reply:?}");
    assert_eq!(reply.code(), "headers_too_large");
}

#[tokio::test]
async fn what_hyper_refuses_itself_gets_its_bare_answer_and_the_connection_closes() {
    let app = spawn_embedded_app().await;
    let wait = Duration::from_secs(5);

    // A URI over hyper's 65,534 bytes.
    let request = format!(
        "GET /api/v1/jobs?name={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let reply = exchange(&app.address, request.as_bytes(), wait).await;
    assert_eq!((reply.status, reply.body.as_str()), (414, ""), "{reply:?}");
    assert!(reply.closed, "{reply:?}");

    // More than 100 headers.
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let reply = exchange(&app.address, request.as_bytes(), wait).await;
    assert_eq!((reply.status, reply.body.as_str()), (431, ""), "{reply:?}");
    assert!(reply.closed, "{reply:?}");

    // A NUL byte in a header value, and two different Content-Length headers.
    for request in [
        &b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\0b\r\n\r\n"[..],
        &b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"[..],
    ] {
        let reply = exchange(&app.address, request, wait).await;
        assert_eq!((reply.status, reply.body.as_str()), (400, ""), "{reply:?}");
        assert!(reply.closed, "{reply:?}");
    }

    // Bytes that are not HTTP at all: closed without an answer worth reading.
    let reply = exchange(
        &app.address,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        wait,
    )
    .await;
    assert!(reply.closed, "{reply:?}");
    assert!(reply.status == 0 || reply.status == 400, "{reply:?}");
}
