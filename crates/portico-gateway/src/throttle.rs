//! Request throttling as API Gateway applies it: token buckets for each route (a
//! stage's `RouteSettings`, else its `DefaultRouteSettings`) and one per account and
//! region, refilled at `ThrottlingRateLimit` requests per second up to
//! `ThrottlingBurstLimit`.
//!
//! Each bucket is one atomic word holding a "theoretical arrival time" (the generic
//! cell rate algorithm, equivalent to a token bucket): admitting a request is a single
//! compare-and-swap, with no lock on the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A token bucket of `burst` tokens refilled at `rate` per second.
#[derive(Debug)]
pub struct Bucket {
    /// Nanoseconds between two tokens.
    interval_ns: u64,
    /// How far ahead of now the arrival time may run: `burst` intervals.
    tolerance_ns: u64,
    /// When the bucket will be full again, in ns since `epoch`.
    tat_ns: AtomicU64,
    epoch: Instant,
    rate: f64,
    burst: u64,
}

impl Bucket {
    /// A full bucket. A rate of zero never refills; a burst of zero admits nothing.
    pub fn new(rate: f64, burst: u64) -> Bucket {
        let interval_ns = if rate > 0.0 && rate.is_finite() {
            // Clamped to [1, 1e18] first, so the cast neither wraps nor loses a sign.
            #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
            let ns = (1e9 / rate).clamp(1.0, 1e18) as u64;
            ns
        } else {
            u64::MAX / 4
        };
        Bucket {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(burst),
            tat_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            rate,
            burst,
        }
    }

    /// Whether this bucket was made with these settings (so it can be kept across a
    /// configuration reload without refilling it).
    pub fn has_settings(&self, rate: f64, burst: u64) -> bool {
        self.rate.to_bits() == rate.to_bits() && self.burst == burst
    }

    /// Takes one token if there is one.
    pub fn try_take(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX / 2);
        self.tat_ns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                let next = tat.max(now).saturating_add(self.interval_ns);
                (next - now <= self.tolerance_ns).then_some(next)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let b = Bucket::new(10.0, 5);
        assert_eq!((0..5).filter(|_| b.try_take()).count(), 5, "the whole burst is available at once");
        assert!(!b.try_take(), "then the bucket is empty");
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert!(b.try_take(), "a token comes back after 1/rate seconds");
    }

    #[test]
    fn zero_burst_admits_nothing_and_zero_rate_never_refills() {
        assert!(!Bucket::new(100.0, 0).try_take());
        let b = Bucket::new(0.0, 2);
        assert!(b.try_take() && b.try_take());
        assert!(!b.try_take());
    }
}
