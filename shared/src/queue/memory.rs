//! The embedded queue: the Redis queue's lists and sets, in this process's memory, for
//! `tickwork-local` without servers. Each operation takes one lock, so it is atomic like
//! the Redis scripts it mirrors.
//!
//! It keeps nothing on disk, like the Redis server of the default setup: after a restart
//! the store, which is the truth, refills it (the sweeper pushes QUEUED fires again, the
//! reaper takes back RUNNING ones whose lease ran out, overdue retries are rebuilt).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Queue, QueueError, QueueStats, RateLimit, Settled, COMPLETED_KEPT};

/// A sorted set of ids by time (milliseconds), like a Redis ZSET.
#[derive(Default)]
struct TimedSet {
    by_time: BTreeSet<(i64, Uuid)>,
    times: HashMap<Uuid, i64>,
}

impl TimedSet {
    /// Adds `id` at `at`, moving it if it is already in.
    fn add(&mut self, id: Uuid, at: i64) {
        if let Some(old) = self.times.insert(id, at) {
            self.by_time.remove(&(old, id));
        }
        self.by_time.insert((at, id));
    }

    fn remove(&mut self, id: Uuid) -> bool {
        match self.times.remove(&id) {
            Some(at) => self.by_time.remove(&(at, id)),
            None => false,
        }
    }

    /// Takes up to `max` ids due at or before `now`, earliest first.
    fn take_due(&mut self, now: i64, max: usize) -> Vec<Uuid> {
        let due: Vec<(i64, Uuid)> = self
            .by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .copied()
            .collect();
        for entry in &due {
            self.by_time.remove(entry);
            self.times.remove(&entry.1);
        }
        due.into_iter().map(|(_, id)| id).collect()
    }

    fn len(&self) -> u64 {
        self.times.len() as u64
    }
}

#[derive(Default)]
struct Lists {
    /// Oldest at the back (workers take from the back, pushes go to the front).
    ready: VecDeque<Uuid>,
    ready_ids: HashSet<Uuid>,
    processing: TimedSet,
    scheduled: TimedSet,
    upcoming: TimedSet,
    completed: VecDeque<Uuid>,
    failed: VecDeque<Uuid>,
}

impl Lists {
    /// Adds `id` to the ready list unless it is waiting there already.
    fn make_ready(&mut self, id: Uuid) -> bool {
        let added = self.ready_ids.insert(id);
        if added {
            self.ready.push_front(id);
        }
        added
    }
}

/// The queue in this process's memory.
#[derive(Default)]
pub struct MemoryQueue {
    lists: Mutex<Lists>,
    /// Rate-limit buckets: tokens left, and when they were counted.
    buckets: Mutex<HashMap<String, (f64, std::time::Instant)>>,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lists(&self) -> MutexGuard<'_, Lists> {
        // Every operation leaves the lists whole before it can panic, so a poisoned lock
        // still guards consistent lists.
        self.lists.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn push(&self, ids: &[Uuid]) -> Result<usize, QueueError> {
        let mut lists = self.lists();
        Ok(ids.iter().filter(|id| lists.make_ready(**id)).count())
    }

    async fn push_untaken(
        &self,
        ids: &[Uuid],
        taken_since: DateTime<Utc>,
    ) -> Result<usize, QueueError> {
        let since = taken_since.timestamp_millis();
        let mut lists = self.lists();
        let mut added = 0;
        for id in ids {
            let taken_lately = lists
                .processing
                .times
                .get(id)
                .is_some_and(|at| *at >= since);
            if !taken_lately && lists.make_ready(*id) {
                added += 1;
            }
        }
        Ok(added)
    }

    async fn repush(&self, ids: &[Uuid]) -> Result<usize, QueueError> {
        let mut lists = self.lists();
        for id in ids {
            lists.ready_ids.remove(id);
        }
        Ok(ids.iter().filter(|id| lists.make_ready(**id)).count())
    }

    async fn push_upcoming(&self, items: &[(Uuid, DateTime<Utc>)]) -> Result<(), QueueError> {
        let mut lists = self.lists();
        for (id, at) in items {
            lists.upcoming.add(*id, at.timestamp_millis());
        }
        Ok(())
    }

    async fn release_upcoming(&self, now: DateTime<Utc>, max: usize) -> Result<usize, QueueError> {
        let mut lists = self.lists();
        let due = lists.upcoming.take_due(now.timestamp_millis(), max);
        for id in &due {
            lists.make_ready(*id);
        }
        Ok(due.len())
    }

    async fn pop(&self, max: usize) -> Result<Vec<Uuid>, QueueError> {
        let mut lists = self.lists();
        let now = Utc::now().timestamp_millis();
        let mut taken = Vec::with_capacity(max.min(lists.ready.len()));
        while taken.len() < max {
            let Some(id) = lists.ready.pop_back() else {
                break;
            };
            lists.ready_ids.remove(&id);
            lists.processing.add(id, now);
            taken.push(id);
        }
        Ok(taken)
    }

    async fn settle(&self, items: &[(Uuid, Settled)]) -> Result<(), QueueError> {
        let mut lists = self.lists();
        for (id, how) in items {
            lists.processing.remove(*id);
            match how {
                Settled::Completed => lists.completed.push_front(*id),
                Settled::Failed => lists.failed.push_front(*id),
                Settled::Dropped => {}
                Settled::Retry { due } => lists.scheduled.add(*id, due.timestamp_millis()),
            }
        }
        lists.completed.truncate(COMPLETED_KEPT);
        Ok(())
    }

    async fn take_due(&self, now: DateTime<Utc>, max: usize) -> Result<Vec<Uuid>, QueueError> {
        Ok(self.lists().scheduled.take_due(now.timestamp_millis(), max))
    }

    async fn take_token(
        &self,
        bucket: &str,
        limit: RateLimit,
    ) -> Result<Option<std::time::Duration>, QueueError> {
        let now = std::time::Instant::now();
        let capacity = f64::from(limit.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, at) = buckets.entry(bucket.to_string()).or_insert((capacity, now));
        *tokens = (*tokens
            + now.duration_since(*at).as_secs_f64() * f64::from(limit.per_second.max(1)))
        .min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(None);
        }
        Ok(Some(std::time::Duration::from_secs_f64(
            (1.0 - *tokens) / f64::from(limit.per_second.max(1)),
        )))
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let lists = self.lists();
        Ok(QueueStats {
            ready: lists.ready.len() as u64,
            scheduled: lists.scheduled.len() + lists.upcoming.len(),
            processing: lists.processing.len(),
            completed: lists.completed.len() as u64,
            failed: lists.failed.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_set_moves_an_id_it_already_holds_and_takes_the_earliest_first() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut set = TimedSet::default();
        set.add(a, 50);
        set.add(b, 20);
        set.add(a, 10);
        assert_eq!(set.len(), 2);
        assert_eq!(set.take_due(15, 10), vec![a]);
        assert_eq!(set.take_due(15, 10), Vec::<Uuid>::new());
        assert_eq!(set.take_due(100, 10), vec![b]);
        assert_eq!(set.len(), 0);
    }
}
