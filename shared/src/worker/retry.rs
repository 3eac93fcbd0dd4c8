//! What happens after a failed attempt: retry with exponential backoff and full jitter,
//! or fail for good.

use std::time::Duration;

use super::CallOutcome;
use crate::model::{Delivery, ExecutionType};

/// Backoff bounds (`RETRY_BACKOFF_BASE`, `RETRY_BACKOFF_MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling of the first retry's delay; each later retry doubles it.
    pub base: Duration,
    /// No delay is longer than this, `Retry-After` included.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

/// The decision for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The target answered 2xx.
    Succeeded,
    /// Try again after this long.
    Retry(Duration),
    /// Failed for good.
    Failed,
}

/// True when another attempt could go differently: no answer at all (timeout, connection
/// error), a 5xx, 408 Request Timeout or 429 Too Many Requests.
pub fn is_retryable(outcome: &CallOutcome) -> bool {
    match outcome {
        CallOutcome::Answered { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        CallOutcome::Unanswered { .. } => true,
        CallOutcome::NotSent { .. } => false,
    }
}

/// The delay before retry number `retry` (1-based): uniformly random in
/// `[0, min(max, base * 2^(retry - 1))]`, with `jitter` in `[0, 1)` picking the point.
pub fn backoff(retry: u32, policy: RetryPolicy, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    let ceiling = policy.base.saturating_mul(factor).min(policy.max);
    ceiling.mul_f64(jitter.clamp(0.0, 1.0))
}

/// Decides what follows an attempt. AT_MOST_ONCE fires are never retried; AT_LEAST_ONCE
/// fires are retried while `maxRetries` allows and the failure is retryable, waiting at
/// least as long as a `Retry-After` asks (up to the policy's max).
pub fn decide(
    outcome: &CallOutcome,
    delivery: &Delivery,
    policy: RetryPolicy,
    jitter: f64,
) -> Verdict {
    if outcome.succeeded() {
        return Verdict::Succeeded;
    }
    // Attempts lost to crashed or stopping workers are not retries, nor are attempts made
    // before the fire was put back from the dead letters.
    let retries_used = delivery
        .attempt
        .saturating_sub(1)
        .saturating_sub(delivery.attempt_base)
        .saturating_sub(delivery.crashes)
        .saturating_sub(delivery.handbacks);
    if delivery.execution_type == ExecutionType::AtMostOnce
        || retries_used >= delivery.max_retries
        || !is_retryable(outcome)
    {
        return Verdict::Failed;
    }
    let retry = u32::try_from(retries_used + 1).unwrap_or(u32::MAX);
    let mut delay = backoff(retry, policy, jitter);
    if let CallOutcome::Answered {
        retry_after: Some(asked),
        ..
    } = outcome
    {
        if *asked > delay {
            delay = (*asked).min(policy.max);
        }
    }
    Verdict::Retry(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HttpBody, HttpHeaders, HttpMethod, HttpTarget, TargetUrl};

    fn delivery(attempt: i32, max_retries: i32, kind: ExecutionType) -> Delivery {
        Delivery {
            worker_id: uuid::Uuid::nil(),
            execution_id: uuid::Uuid::nil(),
            job_id: uuid::Uuid::nil(),
            tenant: String::new(),
            scheduled_at: chrono::DateTime::UNIX_EPOCH,
            attempt,
            execution_type: kind,
            max_retries,
            crashes: 0,
            handbacks: 0,
            attempt_base: 0,
            signing_secrets: Vec::new(),
            target: HttpTarget {
                method: HttpMethod::Post,
                url: TargetUrl::parse("http://example.com").unwrap(),
                headers: HttpHeaders::default(),
                body: HttpBody::default(),
            },
            timeout_seconds: 5,
            wait: Duration::ZERO,
        }
    }

    fn answer(status: Option<u16>) -> CallOutcome {
        answer_asking(status, None)
    }

    fn answer_asking(status: Option<u16>, retry_after: Option<Duration>) -> CallOutcome {
        match status {
            Some(status) => CallOutcome::Answered {
                status,
                retry_after,
                body: None,
                duration: Duration::ZERO,
            },
            None => CallOutcome::Unanswered {
                error: "failed".into(),
                duration: Duration::ZERO,
            },
        }
    }

    const POLICY: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(300),
    };

    #[test]
    fn retryable_failures_are_5xx_408_429_and_no_answer() {
        for status in [None, Some(500), Some(503), Some(408), Some(429)] {
            assert!(is_retryable(&answer(status)), "{status:?}");
        }
        for status in [Some(400), Some(404), Some(410), Some(302)] {
            assert!(!is_retryable(&answer(status)), "{status:?}");
        }
    }

    #[test]
    fn backoff_doubles_its_ceiling_up_to_the_max() {
        let almost_one = 0.999_999;
        assert!(backoff(1, POLICY, almost_one) <= Duration::from_secs(1));
        assert!(backoff(3, POLICY, almost_one) > Duration::from_millis(3_990));
        assert!(backoff(3, POLICY, almost_one) <= Duration::from_secs(4));
        assert_eq!(backoff(30, POLICY, 1.0), Duration::from_secs(300));
        assert_eq!(backoff(4, POLICY, 0.0), Duration::ZERO);
        assert_eq!(backoff(2, POLICY, 0.5), Duration::from_secs(1));
    }

    #[test]
    fn at_least_once_retries_until_max_retries_then_fails() {
        let d = |attempt| delivery(attempt, 2, ExecutionType::AtLeastOnce);
        assert!(matches!(
            decide(&answer(Some(500)), &d(1), POLICY, 0.5),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            decide(&answer(Some(500)), &d(2), POLICY, 0.5),
            Verdict::Retry(_)
        ));
        assert_eq!(
            decide(&answer(Some(500)), &d(3), POLICY, 0.5),
            Verdict::Failed
        );
        assert_eq!(
            decide(&answer(Some(200)), &d(1), POLICY, 0.5),
            Verdict::Succeeded
        );
    }

    #[test]
    fn attempts_lost_to_crashes_and_handbacks_are_not_retries() {
        let mut d = delivery(4, 1, ExecutionType::AtLeastOnce);
        d.crashes = 2;
        d.handbacks = 1;
        // Attempt 4, of which 3 were lost: this is the first real attempt, one retry left.
        assert!(matches!(
            decide(&answer(Some(500)), &d, POLICY, 0.5),
            Verdict::Retry(_)
        ));
    }

    #[test]
    fn a_target_the_guard_refused_is_never_retried() {
        let d = delivery(1, 5, ExecutionType::AtLeastOnce);
        let refused = CallOutcome::NotSent {
            error: "target refused, not called".into(),
            duration: Duration::ZERO,
        };
        assert_eq!(decide(&refused, &d, POLICY, 0.5), Verdict::Failed);
    }

    #[test]
    fn a_fire_put_back_from_the_dead_letters_gets_max_retries_again() {
        let mut d = delivery(4, 2, ExecutionType::AtLeastOnce);
        assert_eq!(decide(&answer(Some(500)), &d, POLICY, 0.5), Verdict::Failed);
        // Requeued after attempt 3: attempt 4 is the first of a new round.
        d.attempt_base = 3;
        assert!(matches!(
            decide(&answer(Some(500)), &d, POLICY, 0.5),
            Verdict::Retry(_)
        ));
        d.attempt = 6;
        assert_eq!(decide(&answer(Some(500)), &d, POLICY, 0.5), Verdict::Failed);
    }

    #[test]
    fn other_4xx_and_at_most_once_fail_at_once() {
        let alo = delivery(1, 5, ExecutionType::AtLeastOnce);
        assert_eq!(
            decide(&answer(Some(404)), &alo, POLICY, 0.5),
            Verdict::Failed
        );
        let amo = delivery(1, 5, ExecutionType::AtMostOnce);
        assert_eq!(
            decide(&answer(Some(503)), &amo, POLICY, 0.5),
            Verdict::Failed
        );
        assert_eq!(decide(&answer(None), &amo, POLICY, 0.5), Verdict::Failed);
    }

    #[test]
    fn retry_after_wins_when_longer_and_is_capped_by_the_max() {
        let d = delivery(1, 3, ExecutionType::AtLeastOnce);
        let r = answer_asking(Some(429), Some(Duration::from_secs(3)));
        assert_eq!(
            decide(&r, &d, POLICY, 0.1),
            Verdict::Retry(Duration::from_secs(3))
        );
        let r = answer_asking(Some(429), Some(Duration::from_secs(3600)));
        assert_eq!(
            decide(&r, &d, POLICY, 0.1),
            Verdict::Retry(Duration::from_secs(300))
        );
        let r = answer_asking(Some(429), Some(Duration::from_millis(1)));
        assert_eq!(
            decide(&r, &d, POLICY, 0.5),
            Verdict::Retry(Duration::from_millis(500))
        );
    }
}
