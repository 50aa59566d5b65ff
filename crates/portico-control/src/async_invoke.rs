//! Asynchronous invocation (`InvocationType=Event`), as Lambda runs it: the event is
//! queued durably before the caller gets 202, then run by a dispatcher.
//!
//! Retries follow Lambda's defaults: a function error is retried twice (the first
//! retry after one delay, the second after two); a throttle or a failure to start is
//! retried with exponential backoff until the event is six hours old. The request id
//! stays the same across attempts, as on Lambda.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use portico_model::FunctionArn;
use portico_runtime::InvokeError;
use portico_store::{EventQueue, QueuedEvent};
use tokio::sync::{Notify, Semaphore};

use crate::Control;

/// Function-error retries (Lambda's default `MaximumRetryAttempts`).
const MAX_RETRIES: u32 = 2;
/// Oldest an event may get before it is discarded (`MaximumEventAgeInSeconds`).
const MAX_EVENT_AGE: Duration = Duration::from_secs(6 * 60 * 60);
/// Events run at once by the dispatcher; the rest wait in the queue.
const MAX_RUNNING: usize = 64;

/// The durable queue and the dispatcher's wake-up call.
#[derive(Debug)]
pub struct AsyncInvocations {
    queue: Arc<dyn EventQueue>,
    wake: Notify,
    /// Delay before the first function-error retry (Lambda: one minute); the second
    /// waits twice as long.
    retry_delay: Duration,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl AsyncInvocations {
    /// Asynchronous invocation over `queue`.
    pub fn new(queue: Arc<dyn EventQueue>, retry_delay: Duration) -> AsyncInvocations {
        AsyncInvocations { queue, wake: Notify::new(), retry_delay }
    }

    /// Queues an event durably and wakes the dispatcher.
    pub(crate) async fn enqueue(&self, request_id: &str, function_arn: &str, payload: Bytes) -> Result<(), String> {
        let queue = self.queue.clone();
        let (rid, arn) = (request_id.to_string(), function_arn.to_string());
        tokio::task::spawn_blocking(move || queue.push(&rid, &arn, &payload, now_ms()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        self.wake.notify_one();
        Ok(())
    }
}

/// Runs queued events until the process ends.
pub fn start(control: Arc<Control>) {
    tokio::spawn(async move {
        let running = Arc::new(Semaphore::new(MAX_RUNNING));
        let events = &control.events;
        loop {
            let free = running.available_permits();
            let queue = events.queue.clone();
            let due = match tokio::task::spawn_blocking(move || queue.take_due(now_ms(), free)).await {
                Ok(Ok(due)) => due,
                Ok(Err(e)) => {
                    tracing::error!("reading the asynchronous invocation queue: {e}");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
            for event in due {
                let Ok(permit) = running.clone().acquire_owned().await else { return };
                let control = control.clone();
                tokio::spawn(async move {
                    run(&control, event).await;
                    drop(permit);
                    control.events.wake.notify_one();
                });
            }
            let queue = events.queue.clone();
            let next =
                tokio::task::spawn_blocking(move || queue.next_due_ms()).await.ok().and_then(Result::ok).flatten();
            // Wake for the next due event, a new one, or a finished run; poll at least
            // every few seconds so a missed wake-up costs little.
            let wait = next.map_or(5_000, |t| (t - now_ms()).clamp(0, 5_000));
            if running.available_permits() == 0 || wait > 0 {
                let _ = tokio::time::timeout(Duration::from_millis(wait.unsigned_abs().max(1)), events.wake.notified())
                    .await;
            }
        }
    });
}

/// What to do with an event after one attempt.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Done,
    Retry { attempts: u32, after: Duration },
    Discard(String),
}

fn after_function_error(attempts: u32, delay: Duration) -> Next {
    if attempts < MAX_RETRIES {
        Next::Retry { attempts: attempts + 1, after: delay * (attempts + 1) }
    } else {
        Next::Discard(format!("the function failed {} times", attempts + 1))
    }
}

fn after_throttle(event: &QueuedEvent, now: i64, backoff_step: u32) -> Next {
    if now - event.enqueued_ms > ms(MAX_EVENT_AGE) {
        return Next::Discard("the event is older than the maximum event age (6 hours)".into());
    }
    // 1 s, 2 s, 4 s ... up to 5 minutes, as Lambda backs off on throttles.
    let after = Duration::from_secs(1u64 << backoff_step.min(8)).min(Duration::from_secs(300));
    Next::Retry { attempts: event.attempts, after }
}

async fn run(control: &Arc<Control>, event: QueuedEvent) {
    let catalog = control.catalog();
    // The queue holds the reference the caller used: an alias resolves now.
    let target = FunctionArn::from_integration_uri(&event.function_arn)
        .and_then(|arn| catalog.invocation_target(&arn, rand::random::<f64>()));
    let next = match target {
        None => Next::Discard("the function (or the version or alias invoked) no longer exists".into()),
        Some(target) => {
            let function = target.function;
            let out = control
                .invoker
                .invoke(
                    function,
                    Bytes::from(event.payload.clone()),
                    Arc::from(target.invoked_arn.as_str()),
                    Arc::from(event.request_id.as_str()),
                    false,
                )
                .await;
            match out {
                Ok(out) if !out.function_error => Next::Done,
                Ok(out) => {
                    tracing::warn!(function = %function.name, request_id = %event.request_id,
                        "asynchronous invocation failed (attempt {}): {}", event.attempts + 1,
                        String::from_utf8_lossy(&out.payload));
                    after_function_error(event.attempts, control.events.retry_delay)
                }
                Err(InvokeError::ShuttingDown) => {
                    // Left taken in the queue: it runs again after the restart.
                    return;
                }
                Err(e) => {
                    tracing::warn!(function = %function.name, request_id = %event.request_id,
                        "asynchronous invocation could not run: {e}");
                    // The longer the event has waited, the longer the next wait.
                    let age_s = u64::try_from((now_ms() - event.enqueued_ms) / 1000).unwrap_or(0);
                    after_throttle(&event, now_ms(), (age_s + 1).ilog2())
                }
            }
        }
    };
    let queue = control.events.queue.clone();
    let id = event.id;
    let result = tokio::task::spawn_blocking(move || match next {
        Next::Done => queue.finish(id),
        Next::Retry { attempts, after } => queue.retry(id, attempts, now_ms() + ms(after)),
        Next::Discard(why) => {
            tracing::warn!(request_id = %event.request_id, function = %event.function_arn,
                "discarding asynchronous invocation: {why}");
            queue.finish(id)
        }
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("updating the asynchronous invocation queue: {e}"),
        Err(e) => tracing::error!("updating the asynchronous invocation queue: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_errors_are_retried_twice_with_growing_delays() {
        let d = Duration::from_secs(60);
        assert_eq!(after_function_error(0, d), Next::Retry { attempts: 1, after: Duration::from_secs(60) });
        assert_eq!(after_function_error(1, d), Next::Retry { attempts: 2, after: Duration::from_secs(120) });
        assert!(matches!(after_function_error(2, d), Next::Discard(_)));
    }

    #[test]
    fn throttles_back_off_until_the_event_is_too_old() {
        let event = QueuedEvent {
            id: 1,
            request_id: "r".into(),
            function_arn: "a".into(),
            payload: vec![],
            attempts: 0,
            enqueued_ms: 0,
        };
        assert_eq!(after_throttle(&event, 1_000, 0), Next::Retry { attempts: 0, after: Duration::from_secs(1) });
        assert_eq!(after_throttle(&event, 1_000, 20), Next::Retry { attempts: 0, after: Duration::from_secs(256) });
        assert!(matches!(after_throttle(&event, ms(MAX_EVENT_AGE) + 1, 3), Next::Discard(_)));
    }
}
