//! Concurrency accounting, as Lambda does it: an invocation occupies one unit of
//! concurrency from the moment it is admitted until its environment is free again.
//!
//! A function with reserved concurrency draws only from its reservation; every other
//! function of the account shares what the reservations leave of the account limit
//! (the "unreserved" pool). As on AWS, limits apply per account and region. Admission is a compare-and-increment on one counter, so
//! it never waits and never over-admits.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use portico_model::{Function, Scope};

/// Why an invocation was refused (Lambda's `TooManyRequestsException` `Reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// The function's reserved concurrency is in use (or is zero).
    ReservedFunctionConcurrentInvocationLimitExceeded,
    /// The account's unreserved concurrency is in use.
    ConcurrentInvocationLimitExceeded,
}

impl Throttle {
    /// The `Reason` member of the error.
    pub fn reason(self) -> &'static str {
        match self {
            Throttle::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
            Throttle::ConcurrentInvocationLimitExceeded => "ConcurrentInvocationLimitExceeded",
        }
    }
}

/// One account's counters in one region.
#[derive(Debug, Default)]
struct Account {
    /// Invocations in flight of functions without a reservation.
    unreserved_in_flight: AtomicU32,
    /// Sum of the reservations of the account's functions in the region.
    reserved_total: AtomicU32,
}

/// One function's counters, shared by all its versions.
#[derive(Debug)]
struct FunctionCounters {
    in_flight: AtomicU32,
    /// Reserved concurrency, or [`NO_RESERVATION`].
    reserved: AtomicU32,
}

const NO_RESERVATION: u32 = u32::MAX;

impl Default for FunctionCounters {
    fn default() -> FunctionCounters {
        FunctionCounters { in_flight: AtomicU32::new(0), reserved: AtomicU32::new(NO_RESERVATION) }
    }
}

/// Concurrency limits of every account and function.
#[derive(Debug)]
pub struct Limits {
    account_limit: u32,
    accounts: DashMap<String, Arc<Account>>,
    /// By unqualified function ARN: a reservation covers every version.
    functions: DashMap<String, Arc<FunctionCounters>>,
}

/// A unit of concurrency held by one invocation; given back on drop.
#[derive(Debug)]
pub struct Lease {
    function: Arc<FunctionCounters>,
    account: Option<Arc<Account>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.function.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(a) = &self.account {
            a.unreserved_in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Increments `counter` if it is below `limit`.
fn try_increment(counter: &AtomicU32, limit: u32) -> bool {
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).is_ok()
}

impl Limits {
    /// Limits with `account_limit` concurrent executions per account.
    pub fn new(account_limit: u32) -> Limits {
        Limits { account_limit, accounts: DashMap::new(), functions: DashMap::new() }
    }

    /// The configured per-account limit (`AccountLimit.ConcurrentExecutions`).
    pub fn account_limit(&self) -> u32 {
        self.account_limit
    }

    fn key(scope: &Scope) -> String {
        format!("{}/{}", scope.region, scope.account_id)
    }

    fn account(&self, scope: &Scope) -> Arc<Account> {
        let key = Limits::key(scope);
        match self.accounts.get(&key) {
            Some(a) => a.clone(),
            None => self.accounts.entry(key).or_default().clone(),
        }
    }

    fn function(&self, arn: &str) -> Arc<FunctionCounters> {
        match self.functions.get(arn) {
            Some(f) => f.clone(),
            None => self.functions.entry(arn.to_string()).or_default().clone(),
        }
    }

    /// Records each function's reservation and each account's total; called whenever
    /// the catalog changes, with every function's `$LATEST`.
    pub fn set_reservations<'a>(&self, functions: impl IntoIterator<Item = &'a Function>) {
        let mut totals: std::collections::HashMap<String, (u32, &Scope)> = std::collections::HashMap::new();
        let mut reserved: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        for f in functions {
            if let Some(r) = f.reserved_concurrency {
                let e = totals.entry(Limits::key(&f.scope)).or_insert((0, &f.scope));
                e.0 = e.0.saturating_add(r);
                reserved.insert(f.arn(), r);
            }
        }
        for c in self.functions.iter() {
            c.reserved.store(reserved.remove(c.key()).unwrap_or(NO_RESERVATION), Ordering::Release);
        }
        for (arn, r) in reserved {
            self.function(&arn).reserved.store(r, Ordering::Release);
        }
        // Counters of functions with nothing in flight and no reservation are rebuilt on demand.
        self.functions.retain(|_, c| {
            c.in_flight.load(Ordering::Acquire) > 0 || c.reserved.load(Ordering::Acquire) != NO_RESERVATION
        });
        for a in self.accounts.iter() {
            a.reserved_total.store(totals.remove(a.key()).map_or(0, |t| t.0), Ordering::Release);
        }
        for (total, scope) in totals.into_values() {
            self.account(scope).reserved_total.store(total, Ordering::Release);
        }
    }

    /// Admits one invocation of `function` (any version of it).
    pub fn admit(&self, function: &Function) -> Result<Lease, Throttle> {
        let counters = self.function(&function.arn());
        match counters.reserved.load(Ordering::Acquire) {
            NO_RESERVATION => {
                let account = self.account(&function.scope);
                let unreserved = self.account_limit.saturating_sub(account.reserved_total.load(Ordering::Acquire));
                if !try_increment(&account.unreserved_in_flight, unreserved) {
                    return Err(Throttle::ConcurrentInvocationLimitExceeded);
                }
                counters.in_flight.fetch_add(1, Ordering::AcqRel);
                Ok(Lease { function: counters, account: Some(account) })
            }
            reserved => {
                if !try_increment(&counters.in_flight, reserved) {
                    return Err(Throttle::ReservedFunctionConcurrentInvocationLimitExceeded);
                }
                Ok(Lease { function: counters, account: None })
            }
        }
    }

    /// Invocations of the function with unqualified ARN `arn` in flight now.
    pub fn in_flight(&self, arn: &str) -> u32 {
        self.functions.get(arn).map_or(0, |c| c.in_flight.load(Ordering::Acquire))
    }

    /// `UnreservedConcurrentExecutions` of an account in a region: the limit less its
    /// reservations.
    pub fn unreserved(&self, scope: &Scope) -> u32 {
        let reserved =
            self.accounts.get(&Limits::key(scope)).map(|a| a.reserved_total.load(Ordering::Acquire)).unwrap_or(0);
        self.account_limit.saturating_sub(reserved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(account: &str, reserved: Option<u32>) -> Function {
        let mut f: Function = serde_json::from_value(serde_json::json!({
            "scope": {"account_id": account, "region": "us-east-1"},
            "name": "f", "runtime": "nodejs22.x", "role": "r", "handler": "index.handler",
            "description": "", "timeout": 3, "memory_size": 128, "environment": {},
            "architectures": ["x86_64"], "ephemeral_storage": 512,
            "code": {"sha256_hex": "00", "sha256_b64": "AA==", "size": 1},
            "last_modified": "", "revision_id": "", "state": "Active",
            "last_update_status": "Successful", "policy": [], "tags": {}
        }))
        .expect("function fixture");
        f.reserved_concurrency = reserved;
        f
    }

    #[test]
    fn reserved_concurrency_caps_the_function() {
        let limits = Limits::new(10);
        let f = function("111122223333", Some(2));
        limits.set_reservations([&f]);
        let a = limits.admit(&f).expect("first");
        let _b = limits.admit(&f).expect("second");
        assert_eq!(limits.admit(&f).map(|_| ()), Err(Throttle::ReservedFunctionConcurrentInvocationLimitExceeded));
        assert_eq!(limits.in_flight(&f.arn()), 2);
        drop(a);
        assert!(limits.admit(&f).is_ok());
    }

    #[test]
    fn zero_reservation_blocks_everything() {
        let limits = Limits::new(10);
        let f = function("111122223333", Some(0));
        limits.set_reservations([&f]);
        assert!(limits.admit(&f).is_err());
    }

    #[test]
    fn reservations_shrink_the_unreserved_pool() {
        let limits = Limits::new(3);
        let reserved = function("111122223333", Some(2));
        limits.set_reservations([&reserved]);
        assert_eq!(limits.unreserved(&reserved.scope), 1);
        let mut other = function("111122223333", None);
        other.name = "other".into();
        let _a = limits.admit(&other).expect("one unreserved unit");
        assert_eq!(limits.admit(&other).map(|_| ()), Err(Throttle::ConcurrentInvocationLimitExceeded));
        // Another account has its own pool.
        let elsewhere = function("444455556666", None);
        assert!(limits.admit(&elsewhere).is_ok());
    }
}
