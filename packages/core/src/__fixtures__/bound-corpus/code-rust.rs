use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A token bucket per client, refilled continuously.
pub struct RateLimiter {
    capacity: f64,
    refill_per_sec: f64,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn new(capacity: u32, per: Duration) -> Self {
        Self {
            capacity: f64::from(capacity),
            refill_per_sec: f64::from(capacity) / per.as_secs_f64(),
            buckets: HashMap::new(),
        }
    }

    /// Takes `cost` tokens for `client`; returns the wait before a retry when it cannot.
    pub fn try_acquire(&mut self, client: &str, cost: f64, now: Instant) -> Result<(), Duration> {
        let bucket = self.buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            return Ok(());
        }
        let missing = cost - bucket.tokens;
        Err(Duration::from_secs_f64(missing / self.refill_per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_over_time() {
        let mut limiter = RateLimiter::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(limiter.try_acquire("a", 2.0, t0).is_ok());
        assert!(limiter.try_acquire("a", 1.0, t0).is_err());
        assert!(limiter.try_acquire("a", 1.0, t0 + Duration::from_millis(500)).is_ok());
    }
}
