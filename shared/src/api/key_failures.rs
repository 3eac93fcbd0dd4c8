//! Wrong API keys counted by client address, so that a flood of guesses is refused before
//! the store is asked about each one.
//!
//! Each address has a bucket of `burst` wrong keys, refilled at `per_second`. A request
//! from an address whose bucket is empty gets 429 without a lookup; a key that is right
//! costs nothing. Counted in this process's memory: a guess costs no database or Redis
//! work at all, and each API instance (or warm Lambda instance) counts on its own, so a
//! fleet of `n` allows `n` times the rate. Right keys are never cached: a revoked key is
//! refused at its next request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::outbound::Cidr;
use crate::queue::RateLimit;

/// Most addresses remembered at once. When full, addresses whose buckets have refilled are
/// forgotten; if none has, all are (a flood from that many addresses is not slowed by
/// counting it).
const MOST_ADDRESSES: usize = 100_000;

/// Wrong keys per client address; cheap to clone (the counts are shared).
#[derive(Debug, Clone)]
pub struct KeyFailures {
    limit: Option<RateLimit>,
    trusted_proxies: Arc<[Cidr]>,
    buckets: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    left: f64,
    at: Instant,
}

impl KeyFailures {
    /// `limit` wrong keys per client address (`None`: not counted); the client address is
    /// read behind `trusted_proxies` (see [`super::client`]).
    pub fn new(limit: Option<RateLimit>, trusted_proxies: Vec<Cidr>) -> Self {
        Self {
            limit,
            trusted_proxies: trusted_proxies.into(),
            buckets: Arc::default(),
        }
    }

    /// Wrong keys not counted.
    pub fn off() -> Self {
        Self::new(None, Vec::new())
    }

    /// The limit in force.
    pub fn limit(&self) -> Option<RateLimit> {
        self.limit
    }

    /// The ranges whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &[Cidr] {
        &self.trusted_proxies
    }

    /// How long `address` must wait before its next key is looked up, when it has used up
    /// its wrong keys.
    pub fn wait(&self, address: IpAddr) -> Option<Duration> {
        let limit = self.limit?;
        let buckets = self.buckets.lock().ok()?;
        let bucket = buckets.get(&address)?;
        let left = refilled(*bucket, limit, Instant::now());
        (left < 1.0).then(|| Duration::from_secs_f64((1.0 - left) / f64::from(limit.per_second)))
    }

    /// Counts a wrong key from `address`.
    pub fn failed(&self, address: IpAddr) {
        let Some(limit) = self.limit else {
            return;
        };
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        let now = Instant::now();
        if buckets.len() >= MOST_ADDRESSES && !buckets.contains_key(&address) {
            buckets.retain(|_, bucket| refilled(*bucket, limit, now) < f64::from(limit.burst));
            if buckets.len() >= MOST_ADDRESSES {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(address).or_insert(Bucket {
            left: f64::from(limit.burst),
            at: now,
        });
        *bucket = Bucket {
            left: (refilled(*bucket, limit, now) - 1.0).max(0.0),
            at: now,
        };
    }
}

/// What `bucket` holds at `now`.
fn refilled(bucket: Bucket, limit: RateLimit, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.left + elapsed * f64::from(limit.per_second)).min(f64::from(limit.burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_stopped_after_its_burst_of_wrong_keys_and_others_are_not() {
        let failures = KeyFailures::new(
            Some(RateLimit {
                per_second: 1,
                burst: 3,
            }),
            Vec::new(),
        );
        let guesser: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(failures.wait(guesser), None);
            failures.failed(guesser);
        }
        let wait = failures.wait(guesser).expect("stopped after three");
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        assert_eq!(failures.wait(other), None);
        assert_eq!(KeyFailures::off().wait(guesser), None);
    }
}
