//! One way to retry: exponential backoff (the `backon` crate) around an attempt that says
//! whether its failure is worth another try. Used by the NetBox and PRTG clients and the
//! SSH connect loop; the webhook outbox takes its delays from the same [`Backoff`].

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

/// How one attempt failed.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Worth another try (a 5xx, a 429, a refused connection); the reason for the log and
    /// for the final error.
    Retry(String),
    /// Final: no retry changes it.
    Fatal(E),
}

/// Why retrying ended without success.
#[derive(Debug)]
pub enum Failed<E> {
    Fatal(E),
    /// Every attempt failed with a retryable reason; the last one.
    Exhausted {
        attempts: u32,
        last: String,
    },
}

/// Exponential backoff from `first`, doubling up to `max` between attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    fn builder(self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .with_factor(2.0)
    }

    /// The pause before attempt number `attempt` (1 is the first retry).
    pub fn delay(self, attempt: u32) -> Duration {
        self.builder()
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max)
    }

    /// Run `op` up to `retries + 1` times.
    pub async fn run<T, E, F, Fut>(self, retries: u32, op: F) -> Result<T, Failed<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Attempt<E>>>,
    {
        attempts(self.builder().with_max_times(retries as usize), None, op).await
    }

    /// Run `op` until it succeeds, fails fatally, or the next pause would pass `deadline`.
    pub async fn until<T, E, F, Fut>(
        self,
        deadline: tokio::time::Instant,
        op: F,
    ) -> Result<T, Failed<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Attempt<E>>>,
    {
        attempts(self.builder().without_max_times(), Some(deadline), op).await
    }
}

async fn attempts<T, E, F, Fut>(
    builder: ExponentialBuilder,
    deadline: Option<tokio::time::Instant>,
    mut op: F,
) -> Result<T, Failed<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    let mut count = 0u32;
    let out = (|| {
        count += 1;
        op()
    })
    .retry(builder)
    .sleep(tokio::time::sleep)
    .when(|e: &Attempt<E>| matches!(e, Attempt::Retry(_)))
    .adjust(move |_, next| {
        next.filter(|pause| deadline.is_none_or(|d| tokio::time::Instant::now() + *pause < d))
    })
    .await;
    out.map_err(|e| match e {
        Attempt::Fatal(e) => Failed::Fatal(e),
        Attempt::Retry(last) => Failed::Exhausted {
            attempts: count,
            last,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Backoff = Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(4),
    };

    #[tokio::test]
    async fn retries_then_gives_up_with_the_last_reason() {
        let mut n = 0;
        let out: Result<(), Failed<()>> = QUICK
            .run(2, || {
                n += 1;
                let reason = format!("try {n}");
                async move { Err(Attempt::Retry(reason)) }
            })
            .await;
        match out {
            Err(Failed::Exhausted { attempts, last }) => {
                assert_eq!((attempts, last.as_str()), (3, "try 3"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_fatal_failure_is_not_retried_and_success_returns() {
        let mut n = 0;
        let out: Result<(), Failed<&str>> = QUICK
            .run(5, || {
                n += 1;
                async { Err(Attempt::Fatal("no")) }
            })
            .await;
        assert!(matches!(out, Err(Failed::Fatal("no"))));
        assert_eq!(n, 1);
        let mut m = 0;
        let out: Result<u32, Failed<()>> = QUICK
            .run(5, || {
                m += 1;
                let done = m == 3;
                async move {
                    if done {
                        Ok(7)
                    } else {
                        Err(Attempt::Retry("not yet".into()))
                    }
                }
            })
            .await;
        assert_eq!(out.unwrap(), 7);
    }

    #[test]
    fn delays_double_up_to_the_maximum() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        let ms = |n| b.delay(n).as_millis();
        assert_eq!((ms(1), ms(2), ms(3), ms(4)), (100, 200, 400, 500));
    }
}
