//! A token bucket per tenant: `rate` requests per second with a burst of the same size.
//! Hand-rolled because it is one counter under a lock; a rate-limiting crate would bring
//! keyed limiters and clocks a single bucket does not need.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    bucket: std::sync::Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second);
        RateLimit {
            rate,
            bucket: std::sync::Mutex::new((rate, Instant::now())),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.rate
    }

    /// Take one request's token, or say how long until one is free.
    pub fn take(&self) -> Result<(), Duration> {
        let Ok(mut bucket) = self.bucket.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let (tokens, last) = *bucket;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.rate);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            Ok(())
        } else {
            *bucket = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }
}
