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

/// The (rate, burst) of a route's bucket from its settings, or none when they set
/// neither (then only the account's bucket applies).
///
/// API Gateway's "Throttling requests to your HTTP APIs" says route-level settings
/// *override* the account-level limits for a stage or route; it does not say what
/// happens when only one of the two is set. A value not set overrides nothing, so it
/// stays the account's (`account_rate` / `account_burst`): `ThrottlingBurstLimit: 5`
/// alone is a bucket of 5 refilled at the account's rate, never a bucket that is empty
/// for good. A negative burst admits nothing.
pub fn route_limits(
    rate: Option<f64>,
    burst: Option<i64>,
    account_rate: f64,
    account_burst: u64,
) -> Option<(f64, u64)> {
    if rate.is_none() && burst.is_none() {
        return None;
    }
    let burst = burst.map_or(account_burst, |b| u64::try_from(b).unwrap_or(0));
    Some((rate.unwrap_or(account_rate), burst))
}

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
    /// A full bucket. A rate of zero (or NaN, or negative) never refills; an infinite
    /// rate refills at once, so only a burst of zero limits it; a burst of zero admits
    /// nothing.
    pub fn new(rate: f64, burst: u64) -> Bucket {
        let interval_ns = if rate == f64::INFINITY {
            0
        } else if rate > 0.0 && rate.is_finite() {
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
        if self.burst == 0 {
            return false;
        }
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

    #[test]
    fn an_unset_limit_is_the_accounts() {
        assert_eq!(route_limits(None, None, 10_000.0, 5_000), None);
        assert_eq!(route_limits(None, Some(5), 10_000.0, 5_000), Some((10_000.0, 5)));
        assert_eq!(route_limits(Some(2.0), None, 10_000.0, 5_000), Some((2.0, 5_000)));
        assert_eq!(route_limits(Some(2.0), Some(3), 10_000.0, 5_000), Some((2.0, 3)));
        assert_eq!(route_limits(Some(1.0), Some(-1), 10_000.0, 5_000), Some((1.0, 0)));
    }

    #[test]
    fn a_burst_without_a_rate_refills() {
        // Regression: `ThrottlingBurstLimit` alone used to make a bucket that never
        // refilled, blocking the route for good after `burst` requests.
        let (rate, burst) = route_limits(None, Some(2), 1_000.0, 5_000).unwrap_or_default();
        let b = Bucket::new(rate, burst);
        assert!(b.try_take() && b.try_take());
        assert!(!b.try_take(), "the burst of 2 is the limit");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(b.try_take(), "and it refills at the account's rate");
    }

    #[test]
    fn infinite_rate_never_runs_dry_but_zero_burst_still_blocks() {
        // Regression: an infinite rate was once treated like zero, so a route with only
        // a burst set was blocked for good after its first `burst` requests.
        let b = Bucket::new(f64::INFINITY, 2);
        assert_eq!((0..1000).filter(|_| b.try_take()).count(), 1000);
        assert!(!Bucket::new(f64::INFINITY, 0).try_take());
        let nan = Bucket::new(f64::NAN, 1);
        assert!(nan.try_take() && !nan.try_take(), "NaN refills like zero");
    }
}
