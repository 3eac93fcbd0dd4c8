//! Just enough of the Redis protocol to read the queue's lengths and the server's memory
//! during a run, on a connection of the benchmark's own (the queue's own client stays
//! inside tickwork).

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// One reply the benchmark can read: an integer, a (bulk or simple) string, or nil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Int(i64),
    Text(String),
    Nil,
}

impl Reply {
    /// The integer, or 0 for anything else.
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            _ => 0,
        }
    }

    /// The string, or "" for anything else.
    pub fn text(&self) -> &str {
        match self {
            Reply::Text(s) => s,
            _ => "",
        }
    }
}

/// A plain TCP connection to Redis.
pub struct Redis {
    stream: BufStream<TcpStream>,
}

impl Redis {
    /// Connects to a `redis://[user:password@]host[:port][/db]` URL.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let parsed =
            reqwest::Url::parse(url).with_context(|| format!("{url:?} is not a redis URL"))?;
        if parsed.scheme() != "redis" {
            bail!("the benchmark reads the queue over redis:// only, not {url:?}");
        }
        let host = parsed.host_str().unwrap_or("127.0.0.1");
        let port = parsed.port().unwrap_or(6379);
        let stream = TcpStream::connect((host, port))
            .await
            .with_context(|| format!("cannot reach Redis at {host}:{port}"))?;
        let mut redis = Self {
            stream: BufStream::new(stream),
        };
        if let Some(password) = parsed.password() {
            let auth: Vec<&str> = match parsed.username() {
                "" => vec!["AUTH", password],
                user => vec!["AUTH", user, password],
            };
            redis.query(&[&auth]).await.context("Redis AUTH")?;
        }
        let db = parsed.path().trim_start_matches('/');
        if !db.is_empty() {
            redis
                .query(&[&["SELECT", db]])
                .await
                .context("Redis SELECT")?;
        }
        Ok(redis)
    }

    /// Sends `commands` in one pipeline and reads their replies, in order.
    pub async fn query(&mut self, commands: &[&[&str]]) -> anyhow::Result<Vec<Reply>> {
        for command in commands {
            let mut frame = format!("*{}\r\n", command.len());
            for arg in *command {
                frame.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
            }
            self.stream.write_all(frame.as_bytes()).await?;
        }
        self.stream.flush().await?;
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(self.reply().await?);
        }
        Ok(replies)
    }

    async fn reply(&mut self) -> anyhow::Result<Reply> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            bail!("Redis closed the connection");
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = (line.get(..1).unwrap_or(""), line.get(1..).unwrap_or(""));
        let number = || {
            rest.parse::<i64>()
                .with_context(|| format!("Redis answered {line:?}"))
        };
        Ok(match kind {
            "+" => Reply::Text(rest.to_string()),
            "-" => bail!("Redis answered {rest}"),
            ":" => Reply::Int(number()?),
            "$" => match usize::try_from(number()?) {
                Ok(len) => {
                    let mut bytes = vec![0; len + 2];
                    self.stream.read_exact(&mut bytes).await?;
                    bytes.truncate(len);
                    Reply::Text(String::from_utf8_lossy(&bytes).into_owned())
                }
                Err(_) => Reply::Nil,
            },
            _ => bail!("unexpected Redis reply {line:?}"),
        })
    }
}

/// A field of `INFO` (`used_memory`, ...), as a number.
pub fn info_field(info: &str, field: &str) -> Option<i64> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}
