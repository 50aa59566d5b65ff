//! Per-minute metrics, kept in memory for the console: a ring of the last
//! [`RETAINED_MINUTES`] one-minute buckets per function or API, each with counters and a
//! compact latency histogram from which p50 and p99 are read.
//!
//! Pure: the time is always a parameter (milliseconds since the epoch), so the
//! recorders (`portico_runtime::metrics`, `portico_gateway::metrics`) decide where it
//! comes from and tests decide what it is. Nothing here is persisted: a restart starts
//! from zero, as the console says ("since Portico started").

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use crate::Scope;

/// One bucket's length: a minute, in milliseconds.
pub const PERIOD_MS: i64 = 60_000;

/// How many minutes of history are kept (three hours).
pub const RETAINED_MINUTES: u32 = 180;

/// The minute (since the epoch) that `now_ms` falls in.
pub fn minute_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(PERIOD_MS)
}

/// Locks a recorder's state. Every update leaves it consistent, so it is reused after a
/// panic elsewhere.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The recorders of one kind (functions or APIs), by account and region, then name: each
/// made when first seen and then held by its function's pool or its compiled API, so a
/// record takes only the entry's own lock, never this map's.
#[derive(Debug)]
pub struct Registry<E> {
    since_ms: i64,
    entries: Mutex<HashMap<Scope, HashMap<String, Arc<E>>>>,
}

impl<E: Default> Registry<E> {
    /// An empty registry counting from `since_ms` (milliseconds since the epoch).
    pub fn new(since_ms: i64) -> Registry<E> {
        Registry { since_ms, entries: Mutex::new(HashMap::new()) }
    }

    /// When counting began (Portico's start), milliseconds since the epoch.
    pub fn since_ms(&self) -> i64 {
        self.since_ms
    }

    /// The entry of `scope`'s `name`, made when first seen.
    pub fn entry(&self, scope: &Scope, name: &str) -> Arc<E> {
        let mut entries = lock(&self.entries);
        if let Some(e) = entries.get(scope).and_then(|by_name| by_name.get(name)) {
            return e.clone();
        }
        entries.entry(scope.clone()).or_default().entry(name.to_string()).or_default().clone()
    }

    /// The entry of `scope`'s `name`, if it was ever recorded.
    pub fn find(&self, scope: &Scope, name: &str) -> Option<Arc<E>> {
        lock(&self.entries).get(scope).and_then(|by_name| by_name.get(name)).cloned()
    }

    /// Every entry of `scope`, by name.
    pub fn entries(&self, scope: &Scope) -> Vec<(String, Arc<E>)> {
        let mut all: Vec<(String, Arc<E>)> = lock(&self.entries)
            .get(scope)
            .map(|by_name| by_name.iter().map(|(n, e)| (n.clone(), e.clone())).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Sub-buckets per power of two: each bucket spans 1/16 of its lower bound, so a value
/// read back as the bucket's midpoint is within about 3 % of the recorded one.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;

/// The histogram bin of a value in microseconds: exact below 16 µs, log-scaled above.
fn bin_of(us: u64) -> u16 {
    if us < SUB {
        return u16::try_from(us).unwrap_or(u16::MAX);
    }
    let exp = 63 - us.leading_zeros(); // >= SUB_BITS
    let sub = (us >> (exp - SUB_BITS)) & (SUB - 1);
    // At most 61 octaves of 16: fits easily.
    u16::try_from(u64::from(exp - SUB_BITS + 1) * SUB + sub).unwrap_or(u16::MAX)
}

/// The value a bin stands for, in microseconds: the midpoint of the integers it holds.
fn bin_value_us(bin: u16) -> f64 {
    let bin = u64::from(bin);
    if bin < SUB {
        return bin as f64;
    }
    let shift = bin / SUB - 1;
    let low = (SUB + bin % SUB) << shift;
    let width = 1u64 << shift;
    low as f64 + (width - 1) as f64 / 2.0
}

/// A latency histogram: log-scaled bins (about 3 % relative error), stored sparsely as
/// sorted (bin, count) pairs, so a minute costs only the bins its latencies fell in.
/// [`Histogram::clear`] keeps the allocation, so a reused bucket records without
/// allocating once it has seen as many distinct bins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    bins: Vec<(u16, u32)>,
    count: u64,
}

impl Histogram {
    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        let bin = bin_of(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        match self.bins.binary_search_by_key(&bin, |&(b, _)| b) {
            Ok(i) => self.bins[i].1 = self.bins[i].1.saturating_add(1),
            Err(i) => self.bins.insert(i, (bin, 1)),
        }
        self.count += 1;
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q`-quantile (0 < q <= 1) in milliseconds: the smallest recorded value (to
    /// the bin's precision) with at least `q` of all values at or below it; `None` when
    /// empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        // The rank of the quantile, 1-based: ceil(q * n), within 1..=n.
        let rank = (q * self.count as f64).ceil().clamp(1.0, self.count as f64);
        let mut seen = 0u64;
        for &(bin, n) in &self.bins {
            seen += u64::from(n);
            if seen as f64 >= rank {
                return Some(bin_value_us(bin) / 1000.0);
            }
        }
        self.bins.last().map(|&(bin, _)| bin_value_us(bin) / 1000.0)
    }

    /// Empties it, keeping its allocation.
    pub fn clear(&mut self) {
        self.bins.clear();
        self.count = 0;
    }
}

/// What a [`Ring`] holds per minute.
pub trait Bucket: Default {
    /// Empties the bucket for reuse by a later minute (allocations may be kept).
    fn clear(&mut self);
}

/// The last [`RETAINED_MINUTES`] minutes' buckets, indexed by minute modulo the ring's
/// length; a slot holding an older minute is cleared when a newer one needs it.
#[derive(Debug, Clone)]
pub struct Ring<B> {
    /// (minute since the epoch, bucket); `i64::MIN` marks a slot never used.
    slots: Box<[(i64, B)]>,
}

impl<B: Bucket> Default for Ring<B> {
    fn default() -> Self {
        Ring { slots: (0..RETAINED_MINUTES).map(|_| (i64::MIN, B::default())).collect() }
    }
}

impl<B: Bucket> Ring<B> {
    fn index(minute: i64) -> usize {
        // rem_euclid of a positive modulus is in 0..RETAINED_MINUTES.
        usize::try_from(minute.rem_euclid(i64::from(RETAINED_MINUTES))).unwrap_or(0)
    }

    /// The bucket of `minute`, if the ring still holds it.
    pub fn get(&self, minute: i64) -> Option<&B> {
        let (m, b) = &self.slots[Ring::<B>::index(minute)];
        (*m == minute).then_some(b)
    }

    /// The bucket of `minute` to record into, and whether it was just (re)started;
    /// `None` when `minute` is older than what its slot holds now (out of the window).
    pub fn entry(&mut self, minute: i64) -> Option<(&mut B, bool)> {
        let slot = &mut self.slots[Ring::<B>::index(minute)];
        if slot.0 == minute {
            return Some((&mut slot.1, false));
        }
        if slot.0 > minute {
            return None;
        }
        slot.0 = minute;
        slot.1.clear();
        Some((&mut slot.1, true))
    }
}

/// The minutes of a series ending at the current one, oldest first.
fn window(now_ms: i64, minutes: u32) -> impl Iterator<Item = i64> {
    let now = minute_of(now_ms);
    let n = i64::from(minutes.clamp(1, RETAINED_MINUTES));
    (now - n + 1)..=now
}

/// One minute of a function's metrics, as the console's series shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionPoint {
    /// Start of the minute, milliseconds since the epoch.
    pub t: i64,
    /// Invocations that ran (Lambda's `Invocations`: errors included, throttles not).
    pub invocations: u64,
    /// Function errors, timeouts and crashes (Lambda's `Errors`).
    pub errors: u64,
    /// Invocations refused for want of concurrency (Lambda's `Throttles`).
    pub throttles: u64,
    /// Median duration (as the REPORT line gives it), ms.
    pub duration_p50_ms: Option<f64>,
    /// 99th percentile duration, ms.
    pub duration_p99_ms: Option<f64>,
    /// Most environments of the function busy at once during the minute.
    pub concurrency_max: u32,
}

/// A function's minute bucket.
#[derive(Debug, Clone, Default)]
pub struct FunctionBucket {
    invocations: u64,
    errors: u64,
    throttles: u64,
    concurrency_max: u32,
    duration: Histogram,
}

impl Bucket for FunctionBucket {
    fn clear(&mut self) {
        (self.invocations, self.errors, self.throttles, self.concurrency_max) = (0, 0, 0, 0);
        self.duration.clear();
    }
}

/// One function's metrics: the minute buckets plus the concurrency gauge.
///
/// Concurrency changes only at [`FunctionSeries::begin`] and [`FunctionSeries::end`],
/// so a minute with no event held the level the last event left: a minute's bucket
/// starts at that level, and minutes skipped over while environments were busy (a
/// long invocation) are filled with it.
#[derive(Debug, Clone)]
pub struct FunctionSeries {
    ring: Ring<FunctionBucket>,
    /// Environments busy now.
    busy: u32,
    /// The latest minute an event was recorded in.
    last_minute: i64,
}

impl Default for FunctionSeries {
    fn default() -> Self {
        FunctionSeries { ring: Ring::default(), busy: 0, last_minute: i64::MIN }
    }
}

impl FunctionSeries {
    /// The bucket of `now_ms`'s minute, the gauge carried into it.
    fn bucket(&mut self, now_ms: i64) -> Option<&mut FunctionBucket> {
        let minute = minute_of(now_ms);
        let busy = self.busy;
        if minute > self.last_minute {
            if busy > 0 && self.last_minute != i64::MIN {
                let from = (self.last_minute + 1).max(minute - i64::from(RETAINED_MINUTES) + 1);
                for skipped in from..minute {
                    if let Some((b, _)) = self.ring.entry(skipped) {
                        b.concurrency_max = b.concurrency_max.max(busy);
                    }
                }
            }
            self.last_minute = minute;
        }
        let (b, fresh) = self.ring.entry(minute)?;
        if fresh {
            b.concurrency_max = busy;
        }
        Some(b)
    }

    /// An invocation was admitted: one more environment busy (starting one included).
    pub fn begin(&mut self, now_ms: i64) {
        // The bucket first: the minutes skipped held the level before this one.
        let busy = self.busy.saturating_add(1);
        if let Some(b) = self.bucket(now_ms) {
            b.concurrency_max = b.concurrency_max.max(busy);
        }
        self.busy = busy;
    }

    /// An invocation begun with [`FunctionSeries::begin`] ran and ended after
    /// `duration`; `error`: a function error, timeout or crash.
    pub fn end(&mut self, now_ms: i64, duration: Duration, error: bool) {
        if let Some(b) = self.bucket(now_ms) {
            b.invocations += 1;
            b.errors += u64::from(error);
            b.duration.record(duration);
        }
        self.busy = self.busy.saturating_sub(1);
    }

    /// An invocation begun with [`FunctionSeries::begin`] never ran (no environment
    /// could be started for it): only the gauge goes down.
    pub fn abandon(&mut self, now_ms: i64) {
        let _ = self.bucket(now_ms);
        self.busy = self.busy.saturating_sub(1);
    }

    /// An invocation was refused for want of concurrency.
    pub fn throttle(&mut self, now_ms: i64) {
        if let Some(b) = self.bucket(now_ms) {
            b.throttles += 1;
        }
    }

    /// The last `minutes` minutes (at most [`RETAINED_MINUTES`]) up to `now_ms`'s,
    /// oldest first, zero-filled.
    pub fn points(&self, now_ms: i64, minutes: u32) -> Vec<FunctionPoint> {
        window(now_ms, minutes)
            .map(|minute| {
                let t = minute * PERIOD_MS;
                match self.ring.get(minute) {
                    Some(b) => FunctionPoint {
                        t,
                        invocations: b.invocations,
                        errors: b.errors,
                        throttles: b.throttles,
                        duration_p50_ms: b.duration.quantile_ms(0.5),
                        duration_p99_ms: b.duration.quantile_ms(0.99),
                        concurrency_max: b.concurrency_max,
                    },
                    None => FunctionPoint {
                        t,
                        invocations: 0,
                        errors: 0,
                        throttles: 0,
                        duration_p50_ms: None,
                        duration_p99_ms: None,
                        // Since the last event the level has not changed.
                        concurrency_max: if minute > self.last_minute { self.busy } else { 0 },
                    },
                }
            })
            .collect()
    }
}

/// One minute of an HTTP API's metrics, as the console's series shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiPoint {
    /// Start of the minute, milliseconds since the epoch.
    pub t: i64,
    /// Requests answered (API Gateway's `Count`).
    pub requests: u64,
    /// Answers with a 4xx status.
    #[serde(rename = "count4xx")]
    pub count_4xx: u64,
    /// Answers with a 5xx status.
    #[serde(rename = "count5xx")]
    pub count_5xx: u64,
    /// Median latency, from the request's arrival to its response being ready, ms.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub latency_p99_ms: Option<f64>,
}

/// An API's minute bucket.
#[derive(Debug, Clone, Default)]
pub struct ApiBucket {
    requests: u64,
    count_4xx: u64,
    count_5xx: u64,
    latency: Histogram,
}

impl Bucket for ApiBucket {
    fn clear(&mut self) {
        (self.requests, self.count_4xx, self.count_5xx) = (0, 0, 0);
        self.latency.clear();
    }
}

/// One HTTP API's metrics.
#[derive(Debug, Clone, Default)]
pub struct ApiSeries {
    ring: Ring<ApiBucket>,
}

impl ApiSeries {
    /// A request answered with `status` after `latency`.
    pub fn record(&mut self, now_ms: i64, status: u16, latency: Duration) {
        if let Some((b, _)) = self.ring.entry(minute_of(now_ms)) {
            b.requests += 1;
            b.count_4xx += u64::from((400..500).contains(&status));
            b.count_5xx += u64::from((500..600).contains(&status));
            b.latency.record(latency);
        }
    }

    /// The last `minutes` minutes (at most [`RETAINED_MINUTES`]) up to `now_ms`'s,
    /// oldest first, zero-filled.
    pub fn points(&self, now_ms: i64, minutes: u32) -> Vec<ApiPoint> {
        window(now_ms, minutes)
            .map(|minute| {
                let b = self.ring.get(minute);
                ApiPoint {
                    t: minute * PERIOD_MS,
                    requests: b.map_or(0, |b| b.requests),
                    count_4xx: b.map_or(0, |b| b.count_4xx),
                    count_5xx: b.map_or(0, |b| b.count_5xx),
                    latency_p50_ms: b.and_then(|b| b.latency.quantile_ms(0.5)),
                    latency_p99_ms: b.and_then(|b| b.latency.quantile_ms(0.99)),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_000_000_000; // any instant: `at` counts from its minute
    fn at(minute: i64, second: i64) -> i64 {
        minute_of(T0) * PERIOD_MS + minute * PERIOD_MS + second * 1000
    }
    fn ms(x: f64) -> Duration {
        Duration::from_secs_f64(x / 1000.0)
    }

    #[test]
    fn bins_are_exact_when_small_and_within_3_percent_above() {
        for us in 0..16 {
            assert_eq!(bin_value_us(bin_of(us)), us as f64);
        }
        let mut us = 16u64;
        while us < 1 << 40 {
            let back = bin_value_us(bin_of(us));
            let err = (back - us as f64).abs() / us as f64;
            assert!(err <= 1.0 / 32.0 + 1e-9, "{us} µs read back as {back} ({err})");
            us = us * 21 / 20 + 1;
        }
        // Bins grow with the value.
        assert!(bin_of(17) < bin_of(1000) && bin_of(1000) < bin_of(1_000_000));
        assert!(bin_of(u64::MAX) > bin_of(1 << 62));
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_ms(0.5), None);
        for i in 1..=1000 {
            h.record(ms(f64::from(i) / 10.0)); // 0.1 .. 100 ms
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.quantile_ms(0.5).unwrap_or_default();
        let p99 = h.quantile_ms(0.99).unwrap_or_default();
        assert!((p50 - 50.0).abs() / 50.0 < 0.035, "{p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.035, "{p99}");
        // Sparse: only the bins that were hit (~16 per power of two over 10 of them).
        assert!(h.bins.len() < 200, "{}", h.bins.len());
        let mut one = Histogram::default();
        one.record(ms(3.0));
        assert_eq!(one.quantile_ms(0.5), one.quantile_ms(0.99));
        one.clear();
        assert_eq!((one.count(), one.quantile_ms(0.5)), (0, None));
    }

    #[test]
    fn a_series_is_zero_filled_oldest_first_ending_at_the_current_minute() {
        let mut s = FunctionSeries::default();
        s.begin(at(0, 10));
        s.end(at(0, 11), ms(20.0), false);
        s.begin(at(2, 5));
        s.end(at(2, 6), ms(40.0), true);
        s.throttle(at(2, 7));
        let points = s.points(at(3, 30), 5);
        assert_eq!(points.len(), 5);
        assert_eq!(points[4].t, at(3, 0));
        assert_eq!(points[0].t, at(-1, 0));
        let counts: Vec<_> = points.iter().map(|p| (p.invocations, p.errors, p.throttles)).collect();
        assert_eq!(counts, [(0, 0, 0), (1, 0, 0), (0, 0, 0), (1, 1, 1), (0, 0, 0)]);
        let p = &points[1];
        assert!((p.duration_p50_ms.unwrap_or_default() - 20.0).abs() < 0.7, "{p:?}");
        assert_eq!((points[0].duration_p50_ms, points[2].duration_p99_ms), (None, None));
        assert_eq!(points.iter().map(|p| p.concurrency_max).collect::<Vec<_>>(), [0, 1, 0, 1, 0]);
        // At most 180 minutes, at least one.
        assert_eq!(s.points(at(3, 0), 1000).len(), 180);
        assert_eq!(s.points(at(3, 0), 0).len(), 1);
    }

    #[test]
    fn concurrency_is_the_most_busy_at_once_and_spans_quiet_minutes() {
        let mut s = FunctionSeries::default();
        s.begin(at(0, 0));
        s.begin(at(0, 1));
        s.begin(at(0, 2));
        s.end(at(0, 3), ms(1.0), false);
        s.end(at(0, 4), ms(1.0), false);
        // One invocation stays busy for minutes 1-3, ends in minute 4.
        assert_eq!(s.points(at(2, 0), 3).iter().map(|p| p.concurrency_max).collect::<Vec<_>>(), [3, 1, 1]);
        s.end(at(4, 0), ms(240_000.0), false);
        let points = s.points(at(5, 0), 6);
        assert_eq!(points.iter().map(|p| p.concurrency_max).collect::<Vec<_>>(), [3, 1, 1, 1, 1, 0]);
        assert_eq!(points[4].invocations, 1);
    }

    #[test]
    fn old_minutes_fall_out_of_the_ring() {
        let mut s = ApiSeries::default();
        s.record(at(0, 0), 200, ms(1.0));
        s.record(at(0, 1), 404, ms(1.0));
        s.record(at(0, 2), 502, ms(3.0));
        let p = &s.points(at(0, 59), 1)[0];
        assert_eq!((p.requests, p.count_4xx, p.count_5xx), (3, 1, 1));
        assert!(p.latency_p99_ms.unwrap_or_default() > 2.9);
        // 180 minutes later the slot is reused: the old minute is gone, not added to.
        s.record(at(180, 0), 200, ms(1.0));
        let points = s.points(at(180, 0), 180);
        assert_eq!(points.iter().map(|p| p.requests).sum::<u64>(), 1);
        // An event older than the ring's window is dropped.
        s.record(at(0, 3), 200, ms(1.0));
        assert_eq!(s.points(at(180, 0), 180).iter().map(|p| p.requests).sum::<u64>(), 1);
    }

    #[test]
    fn a_registry_makes_each_entry_once_per_scope() {
        let reg: Registry<Mutex<u32>> = Registry::new(7);
        let a = Scope { account_id: "111122223333".into(), region: "us-east-1".into() };
        let b = Scope { account_id: "444455556666".into(), region: "us-east-1".into() };
        *lock(&reg.entry(&a, "f")) += 1;
        *lock(&reg.entry(&a, "f")) += 1;
        *lock(&reg.entry(&a, "e")) += 5;
        assert!(reg.find(&b, "f").is_none(), "another account's entry is its own");
        assert_eq!(reg.find(&a, "f").map(|e| *lock(&e)), Some(2));
        let names: Vec<String> = reg.entries(&a).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["e", "f"]);
        assert!(reg.entries(&b).is_empty());
        assert_eq!(reg.since_ms(), 7);
    }

    #[test]
    fn serialized_names_follow_the_console_contract() {
        let p = ApiPoint {
            t: 60_000,
            requests: 2,
            count_4xx: 1,
            count_5xx: 0,
            latency_p50_ms: Some(1.5),
            latency_p99_ms: None,
        };
        assert_eq!(
            serde_json::to_value(&p).ok(),
            Some(serde_json::json!({"t": 60000, "requests": 2, "count4xx": 1, "count5xx": 0,
                "latencyP50Ms": 1.5, "latencyP99Ms": null}))
        );
        let mut s = FunctionSeries::default();
        s.throttle(60_000);
        let v = serde_json::to_value(&s.points(60_000, 1)[0]).ok();
        assert_eq!(
            v,
            Some(serde_json::json!({"t": 60000, "invocations": 0, "errors": 0, "throttles": 1,
                "durationP50Ms": null, "durationP99Ms": null, "concurrencyMax": 0}))
        );
    }
}
