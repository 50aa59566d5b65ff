//! Functions' per-minute metrics (Lambda's `Invocations`, `Errors`, `Throttles`,
//! `Duration`, `ConcurrentExecutions`) and their usage since Portico started, kept in
//! memory for the console.
//!
//! The invoker records every invocation: a throttle when admission refuses it, then,
//! once admitted, [`Busy`] from admission until its environment is free again. A
//! function's entry is looked up once per pool (a pool caches its `Arc`), so recording
//! takes one short lock of that function's own entry and allocates nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use portico_model::metrics::{lock, FunctionSeries, Registry};
pub use portico_model::metrics::{FunctionPoint, PERIOD_MS, RETAINED_MINUTES};
use portico_model::{Architecture, Function, Scope};
use serde::Serialize;

/// Milliseconds since the epoch of `t` (0 before it).
pub fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One function's usage since Portico started, as the console's cost estimate reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUsage {
    /// The function's name.
    pub function_name: String,
    /// `x86_64` or `arm64`, as last invoked.
    pub architecture: String,
    /// Memory size in MB, as last invoked.
    pub memory_mb: u32,
    /// Invocations that ran (billed requests).
    pub requests: u64,
    /// Billed duration (rounded up to 1 ms) times memory, in GB-seconds (1 GB = 1024 MB).
    pub gb_seconds: f64,
}

#[derive(Debug)]
struct State {
    series: FunctionSeries,
    requests: u64,
    /// Sum of billed milliseconds times memory MB: integral, so nothing drifts.
    mb_ms: u64,
    architecture: Architecture,
    memory_mb: u32,
}

impl Default for State {
    fn default() -> Self {
        State {
            series: FunctionSeries::default(),
            requests: 0,
            mb_ms: 0,
            architecture: Architecture::X86_64,
            memory_mb: 128,
        }
    }
}

/// One function's metrics (all its versions together, as Lambda's `FunctionName`
/// dimension).
#[derive(Debug, Default)]
pub(crate) struct FunctionEntry {
    state: Mutex<State>,
}

impl FunctionEntry {
    /// An invocation refused for want of concurrency.
    pub(crate) fn throttled(&self) {
        lock(&self.state).series.throttle(epoch_ms(SystemTime::now()));
    }

    /// An invocation admitted: its environment counts as busy until the returned guard
    /// is finished or dropped.
    pub(crate) fn begin(&self) -> Busy<'_> {
        let began = (epoch_ms(SystemTime::now()), Instant::now());
        lock(&self.state).series.begin(began.0);
        Busy { entry: self, began, done: false }
    }
}

/// An admitted invocation's hold on its function's concurrency gauge (borrowed from the
/// pool the invocation holds: no reference count per invocation).
#[derive(Debug)]
pub(crate) struct Busy<'a> {
    entry: &'a FunctionEntry,
    /// When it was admitted: wall clock (ms) and monotonic, so the end needs no second
    /// wall-clock read.
    began: (i64, Instant),
    done: bool,
}

impl Busy<'_> {
    fn now_ms(&self) -> i64 {
        self.began.0.saturating_add(i64::try_from(self.began.1.elapsed().as_millis()).unwrap_or(i64::MAX))
    }

    /// The invocation ran for `duration` (the REPORT line's); `error`: it ended in a
    /// function error, a timeout or a crash.
    pub(crate) fn finish(mut self, function: &Function, duration: Duration, error: bool) {
        let now = self.now_ms();
        // Lambda bills the duration rounded up to the millisecond, at least 1 ms.
        let billed_ms = u64::try_from(duration.as_micros().div_ceil(1000)).unwrap_or(u64::MAX).max(1);
        let mut s = lock(&self.entry.state);
        s.series.end(now, duration, error);
        s.requests += 1;
        s.mb_ms = s.mb_ms.saturating_add(billed_ms.saturating_mul(u64::from(function.memory_size)));
        s.architecture = function.architectures.first().copied().unwrap_or(Architecture::X86_64);
        s.memory_mb = function.memory_size;
        drop(s);
        self.done = true;
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if !self.done {
            // No environment could be started: the gauge goes down, nothing ran.
            let now = self.now_ms();
            lock(&self.entry.state).series.abandon(now);
        }
    }
}

/// Every function's metrics, by account and region, then name.
#[derive(Debug)]
pub struct FunctionMetrics {
    functions: Registry<FunctionEntry>,
}

impl Default for FunctionMetrics {
    fn default() -> Self {
        FunctionMetrics::new(epoch_ms(SystemTime::now()))
    }
}

impl FunctionMetrics {
    /// Metrics counted from `since_ms` (milliseconds since the epoch).
    pub fn new(since_ms: i64) -> FunctionMetrics {
        FunctionMetrics { functions: Registry::new(since_ms) }
    }

    /// When counting began (Portico's start), milliseconds since the epoch.
    pub fn since_ms(&self) -> i64 {
        self.functions.since_ms()
    }

    /// The entry of `scope`'s function `name`, made when first seen.
    pub(crate) fn entry(&self, scope: &Scope, name: &str) -> Arc<FunctionEntry> {
        self.functions.entry(scope, name)
    }

    /// `scope`'s function `name`: the last `minutes` minutes (1 to 180) up to `now_ms`'s,
    /// oldest first, one point per minute, zero-filled (all zero for a function never
    /// invoked).
    pub fn series(&self, scope: &Scope, function: &str, now_ms: i64, minutes: u32) -> Vec<FunctionPoint> {
        match self.functions.find(scope, function) {
            Some(e) => lock(&e.state).series.points(now_ms, minutes),
            None => FunctionSeries::default().points(now_ms, minutes),
        }
    }

    /// The usage of `scope`'s functions invoked since Portico started, by name.
    pub fn usage(&self, scope: &Scope) -> Vec<FunctionUsage> {
        self.functions
            .entries(scope)
            .into_iter()
            .filter_map(|(function_name, e)| {
                let s = lock(&e.state);
                (s.requests > 0).then(|| FunctionUsage {
                    function_name,
                    architecture: s.architecture.as_str().to_string(),
                    memory_mb: s.memory_mb,
                    requests: s.requests,
                    gb_seconds: s.mb_ms as f64 / 1000.0 / 1024.0,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str, memory: u32, arch: &str) -> Function {
        serde_json::from_value(serde_json::json!({
            "scope": {"account_id": "111122223333", "region": "us-east-1"},
            "name": name, "runtime": "nodejs22.x", "role": "r", "handler": "index.handler",
            "description": "", "timeout": 3, "memory_size": memory, "environment": {},
            "architectures": [arch], "ephemeral_storage": 512,
            "code": {"sha256_hex": "00", "sha256_b64": "AA==", "size": 1},
            "last_modified": "", "revision_id": "", "state": "Active",
            "last_update_status": "Successful", "policy": [], "tags": {}
        }))
        .expect("function fixture")
    }

    #[test]
    fn records_invocations_errors_throttles_and_usage() {
        let metrics = FunctionMetrics::default();
        let f = function("f", 1024, "arm64");
        let e = metrics.entry(&f.scope, &f.name);
        assert!(Arc::ptr_eq(&e, &metrics.entry(&f.scope, "f")), "one entry per function");
        let a = e.begin();
        let b = e.begin();
        a.finish(&f, Duration::from_micros(1500), false); // billed 2 ms
        b.finish(&f, Duration::from_micros(100), true); // billed 1 ms
        e.throttled();
        // Started but never ran: only the gauge moved.
        drop(e.begin());
        let now = epoch_ms(SystemTime::now());
        let points = metrics.series(&f.scope, "f", now, 60);
        assert_eq!(points.len(), 60);
        let last = points.last().cloned().expect("60 points");
        // Around a minute boundary the events may straddle two points.
        let sum = |get: fn(&FunctionPoint) -> u64| points.iter().map(get).sum::<u64>();
        assert_eq!((sum(|p| p.invocations), sum(|p| p.errors), sum(|p| p.throttles)), (2, 1, 1));
        assert!(points.iter().map(|p| p.concurrency_max).max() == Some(2), "{last:?}");
        assert_eq!(
            metrics.usage(&f.scope),
            [FunctionUsage {
                function_name: "f".into(),
                architecture: "arm64".into(),
                memory_mb: 1024,
                requests: 2,
                gb_seconds: 3.0 * 1024.0 / 1000.0 / 1024.0,
            }]
        );
        let other = Scope { account_id: "444455556666".into(), region: "us-east-1".into() };
        assert!(metrics.usage(&other).is_empty());
        let unknown = metrics.series(&other, "f", now, 3);
        assert_eq!(unknown.iter().map(|p| p.invocations).sum::<u64>(), 0);
        assert_eq!(unknown.len(), 3);
    }

    #[test]
    fn usage_serializes_in_the_console_contract_names() {
        let u = FunctionUsage {
            function_name: "f".into(),
            architecture: "x86_64".into(),
            memory_mb: 128,
            requests: 1,
            gb_seconds: 0.5,
        };
        assert_eq!(
            serde_json::to_value(&u).ok(),
            Some(serde_json::json!({"functionName": "f", "architecture": "x86_64", "memoryMb": 128,
                "requests": 1, "gbSeconds": 0.5}))
        );
    }
}
