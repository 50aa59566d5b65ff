//! One function version's environments: the idle ones, and the invocations waiting for one.
//!
//! Lambda starts a new environment for every invocation that finds none idle. For a
//! function whose invocations take a fraction of a millisecond that is the slow choice:
//! a cold start costs tens of milliseconds, while a busy environment is free again
//! almost at once, and dozens of processes each woken for every few requests run their
//! code cold (caches, JIT) and cost several times the CPU per invocation of a few busy
//! ones. So by default (warm-first) an invocation that finds no idle environment queues
//! for a busy one when the function's recent turnaround says that is likely quicker than
//! a cold start, and starts its own once it has waited as long as a cold start takes.
//! Up to a few busy environments per CPU it never waits (the caller says how many: see
//! `ENVIRONMENTS_PER_CPU`): those keep every CPU and Portico busy. Functions whose
//! invocations take longer than a cold start scale out at once, as on Lambda;
//! `warm_wait: false` restores Lambda's rule for every function.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use portico_model::Function;
use tokio::sync::oneshot;

use crate::environment::Environment;
use crate::metrics::FunctionEntry;

/// Invocations whose turnaround floor is below this (seconds) gain nothing from more
/// processes than run in parallel: past those, they queue for a busy one even when one is
/// idle. Each process more adds wake-ups and cold caches, and work this short is served
/// sooner in turn by a few than shared out among many.
const FAST_TURNAROUND: f64 = 0.005;
/// How much each new sample moves a running average.
const WEIGHT: f64 = 0.2;

/// A running average of durations in seconds; empty until the first sample.
#[derive(Debug, Default, Clone, Copy)]
struct Average(Option<f64>);

impl Average {
    fn add(&mut self, d: Duration) {
        let x = d.as_secs_f64();
        self.0 = Some(self.0.map_or(x, |avg| avg + WEIGHT * (x - avg)));
    }
}

#[derive(Debug, Default)]
struct State {
    /// Warm environments, the most recently used last (taken first: its caches are hot).
    idle: Vec<Environment>,
    /// Invocations waiting for a busy environment, oldest first.
    waiters: VecDeque<oneshot::Sender<Environment>>,
    /// Environments running an invocation or starting for one.
    busy: u32,
    /// Of those, the ones starting (their caller's cold start is not over).
    starting: u32,
    /// How long a warm environment stays busy per invocation.
    turnaround: Average,
    /// How long an invocation that started its environment took, start included.
    cold: Average,
    /// The lower envelope of warm turnarounds: what an invocation costs when it does not
    /// wait for a CPU (the average grows with the load itself; this stays near the work).
    floor: Floor,
}

/// A running minimum that drifts up slowly (1/64 per sample), so it follows a function
/// that became slower.
#[derive(Debug, Default, Clone, Copy)]
struct Floor(Option<f64>);

impl Floor {
    fn add(&mut self, d: Duration) {
        let x = d.as_secs_f64();
        self.0 = Some(self.0.map_or(x, |f| x.min(f * (1.0 + 1.0 / 64.0))));
    }
}

impl State {
    /// The most recently used idle environment that can serve `function`, counted busy;
    /// those of an older configuration met on the way are dropped (killed).
    fn take_idle(&mut self, function: &Arc<Function>) -> Option<Environment> {
        while let Some(env) = self.idle.pop() {
            if env.alive() && same_config(&env.function, function) {
                self.busy += 1;
                return Some(env);
            }
        }
        None
    }

    /// How long a new waiter may wait for a busy environment; `None`: start one now.
    /// Below `free` busy environments it never waits: so many run in parallel anyway.
    fn patience(&self, free: u32) -> Option<Duration> {
        let (Some(turnaround), Some(cold)) = (self.turnaround.0, self.cold.0) else {
            return None;
        };
        if self.busy < free.max(1) {
            return None;
        }
        let ahead = self.waiters.len() as f64 + 1.0;
        let expected = turnaround * ahead / f64::from(self.busy);
        (expected < cold).then(|| Duration::from_secs_f64(cold))
    }
}

/// A function version's environments.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    state: Mutex<State>,
    /// The function's metrics, looked up once for the pool's life.
    metrics: Arc<FunctionEntry>,
}

impl Pool {
    /// An empty pool whose invocations are recorded in `metrics`.
    pub(crate) fn new(metrics: Arc<FunctionEntry>) -> Pool {
        Pool { state: Mutex::default(), metrics }
    }

    /// Where the pool's invocations are recorded.
    pub(crate) fn metrics(&self) -> &Arc<FunctionEntry> {
        &self.metrics
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements: reuse it after a panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A warm environment for `function`: an idle one, or (with `wait_beyond`: Some(n)),
    /// once `n` environments are busy, a busy one when it frees up within the pool's
    /// patience. `None`: the caller starts one (a cold start). Environments of an older
    /// configuration met on the way are dropped (killed). Every call is paired with one
    /// [`Pool::release`].
    pub(crate) async fn acquire(&self, function: &Arc<Function>, wait_beyond: Option<u32>) -> Option<Environment> {
        let (mut rx, patience) = {
            let mut s = self.lock();
            let patience = wait_beyond.and_then(|free| s.patience(free));
            // Beyond the busy environments that run in parallel, a fast function's next
            // invocation waits for one of them even when others are idle: each process more
            // in rotation adds wake-ups, not throughput (32 connections spread over the 34
            // environments a first burst had started ran at a fifth of the rate of 8). The
            // idle ones left out are reaped as usual.
            let concentrate = patience.is_some() && s.floor.0.is_some_and(|t| t < FAST_TURNAROUND);
            if !concentrate {
                if let Some(env) = s.take_idle(function) {
                    return Some(env);
                }
            }
            let Some(patience) = patience else {
                s.busy += 1;
                s.starting += 1;
                return None;
            };
            // An environment handed over stays counted as busy: no unit of our own.
            let (tx, rx) = oneshot::channel();
            s.waiters.push_back(tx);
            (rx, patience)
        };
        let handed = loop {
            tokio::select! {
                env = &mut rx => break env.ok(),
                () = tokio::time::sleep(patience) => {
                    // A process started now would be ready after the ones already
                    // starting (and slow them down): wait for those instead. Without this
                    // a burst into environments still starting on a busy machine timed
                    // out, started more, which slowed the starts further: 27 environments
                    // for 32 connections on 2 CPUs, at a fifth of the throughput of 8.
                    if self.lock().starting > 0 {
                        continue;
                    }
                    // One may have been handed over just now: it is ours, not to be lost.
                    rx.close();
                    if let Ok(env) = rx.try_recv() {
                        break Some(env);
                    }
                    // An idle one passed over to concentrate the load serves before a new one.
                    let mut s = self.lock();
                    if let Some(env) = s.take_idle(function) {
                        // The waiter was not counted as busy; `take_idle` counted it now.
                        return Some(env);
                    }
                    break None;
                }
            }
        };
        match handed {
            Some(env) if env.alive() && same_config(&env.function, function) => Some(env),
            // Stale: dropped here; the one we start takes over its unit of `busy`.
            Some(_) => {
                self.lock().starting += 1;
                None
            }
            None => {
                let mut s = self.lock();
                s.busy += 1;
                s.starting += 1;
                None
            }
        }
    }

    /// Ends an invocation begun with [`Pool::acquire`]: `env` (when it can serve again)
    /// goes to the oldest waiter or back to the idle list. `took` is how long the
    /// invocation ran, its environment's start included when `cold` (for every `None`
    /// from `acquire`: the caller's start, whether it succeeded or not).
    pub(crate) fn release(&self, env: Option<Environment>, took: Duration, cold: bool) {
        let mut s = self.lock();
        if cold {
            s.starting = s.starting.saturating_sub(1);
            s.cold.add(took);
        } else {
            s.turnaround.add(took);
            s.floor.add(took);
        }
        let Some(mut env) = env else {
            s.busy = s.busy.saturating_sub(1);
            return;
        };
        while let Some(waiter) = s.waiters.pop_front() {
            match waiter.send(env) {
                // Still busy: it serves the waiter now.
                Ok(()) => return,
                Err(back) => env = back,
            }
        }
        s.busy = s.busy.saturating_sub(1);
        s.idle.push(env);
    }

    /// Drops the idle environments `keep` refuses; returns how many stay idle.
    pub(crate) fn retain_idle(&self, keep: impl FnMut(&Environment) -> bool) -> usize {
        let mut s = self.lock();
        s.idle.retain(keep);
        s.idle.len()
    }

    /// How many environments are idle.
    pub(crate) fn idle_count(&self) -> usize {
        self.lock().idle.len()
    }

    /// Whether the pool has nothing worth keeping: no environment, busy or idle.
    pub(crate) fn is_empty(&self) -> bool {
        let s = self.lock();
        s.idle.is_empty() && s.busy == 0
    }
}

/// Whether an environment started for `a` can serve `b` (only the fields a running
/// process depends on matter; a permission change does not restart anything).
pub(crate) fn same_config(a: &Arc<Function>, b: &Arc<Function>) -> bool {
    Arc::ptr_eq(a, b)
        || (a.code == b.code
            && a.runtime == b.runtime
            && a.handler == b.handler
            && a.timeout == b.timeout
            && a.memory_size == b.memory_size
            && a.environment == b.environment
            && a.ephemeral_storage == b.ephemeral_storage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(busy: u32, waiters: usize, turnaround_ms: f64, cold_ms: f64) -> State {
        let mut s = State { busy, ..State::default() };
        s.turnaround.add(Duration::from_secs_f64(turnaround_ms / 1000.0));
        s.cold.add(Duration::from_secs_f64(cold_ms / 1000.0));
        for _ in 0..waiters {
            s.waiters.push_back(oneshot::channel().0);
        }
        s
    }

    #[test]
    fn short_invocations_wait_for_a_busy_environment() {
        assert_eq!(state(2, 0, 0.3, 80.0).patience(2), Some(Duration::from_millis(80)));
        // Thirty in line behind two environments of 0.3 ms each: still 4.5 ms, well
        // under a cold start.
        assert!(state(2, 30, 0.3, 80.0).patience(2).is_some());
        // Fewer busy than CPUs: start one, it runs in parallel.
        assert_eq!(state(2, 0, 0.3, 80.0).patience(4), None);
    }

    #[test]
    fn long_invocations_scale_out_at_once() {
        // A 1 s function: waiting would cost more than starting an environment.
        assert_eq!(state(1, 0, 1000.0, 80.0).patience(1), None);
        // A queue long enough to outlast a cold start starts a new environment.
        assert_eq!(state(2, 600, 0.3, 80.0).patience(2), None);
    }

    #[test]
    fn no_waiting_without_a_measure_or_a_busy_environment() {
        assert_eq!(State::default().patience(1), None);
        assert_eq!(state(0, 0, 0.3, 80.0).patience(0), None);
        let mut s = State { busy: 1, ..State::default() };
        s.turnaround.add(Duration::from_micros(300));
        assert_eq!(s.patience(1), None, "no cold start measured yet");
    }

    #[tokio::test]
    async fn a_waiter_outlasts_its_patience_while_an_environment_is_starting() {
        let pool = Arc::new(Pool::default());
        {
            let mut s = pool.lock();
            s.turnaround.add(Duration::from_micros(300));
            s.cold.add(Duration::from_millis(20));
            // One environment, still starting for its caller.
            (s.busy, s.starting) = (1, 1);
        }
        let function = crate::environment::tests::function(&[]);
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire(&function, Some(1)).await.is_none() }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "gave up after 20 ms while an environment was starting");
        // That start failed: nothing is starting now, so the waiter starts its own.
        pool.release(None, Duration::from_millis(20), true);
        let started_own = tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("in time").expect("join");
        assert!(started_own);
        let s = pool.lock();
        assert_eq!((s.busy, s.starting), (1, 1));
    }

    #[test]
    fn the_floor_keeps_the_quick_samples_and_follows_a_slower_function() {
        let mut f = Floor::default();
        for ms in [6.0, 0.3, 9.0, 5.0, 7.0] {
            f.add(Duration::from_secs_f64(ms / 1000.0));
        }
        assert!((f.0.unwrap_or(0.0) - 0.0003).abs() < 0.0001, "{f:?}: the load's waits do not lift it");
        for _ in 0..1000 {
            f.add(Duration::from_secs(2));
        }
        assert_eq!(f.0, Some(2.0), "a function now taking 2 s is not fast any more");
    }

    #[test]
    fn averages_follow_recent_samples() {
        let mut a = Average::default();
        a.add(Duration::from_millis(10));
        assert_eq!(a.0, Some(0.010));
        for _ in 0..50 {
            a.add(Duration::from_millis(1));
        }
        assert!((a.0.unwrap_or(0.0) - 0.001).abs() < 1e-6);
    }
}
