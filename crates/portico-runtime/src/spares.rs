//! Spare runtime processes: started ahead of demand, assigned a function on its cold
//! start (see [`Spare`]).
//!
//! A cold start spends most of its time before any function code runs: starting the
//! interpreter, loading the runtime client, completing the sandbox. A spare has done
//! all that, so a cold start that finds one costs linking the code and loading the
//! handler. Spares are kept per [`Profile`] (runtime, memory, storage), as many as the
//! profile's cold starts in the last minute, at least one while the profile was used
//! within the idle timeout, at most `per_profile`. Demand is a cold start, or a new or
//! redeployed function of that profile (its next invocation is likely to follow).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::environment::{Profile, Spare};

/// How long a cold start waits for a spare being started before starting its own: a
/// bound for a start that went wrong, since one begun earlier is ready sooner anyway.
const WAIT_FOR_STARTING: Duration = Duration::from_secs(2);

/// How far back cold starts count towards how many spares a profile keeps.
const DEMAND_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Shelf {
    /// Oldest first: the likeliest to have finished starting its interpreter.
    ready: VecDeque<Spare>,
    /// Spares being started for this shelf.
    starting: usize,
    /// Of the spares started for this shelf, those whose runtime client has not started
    /// yet (what [`Spares::deficit`] bounds: the CPU they take), ready or not.
    warming: usize,
    /// Cold starts waiting for a spare being started (one each), oldest first.
    waiters: VecDeque<oneshot::Sender<Spare>>,
    /// Recent demand (cold starts, new or redeployed functions), oldest first, within [`DEMAND_WINDOW`].
    demand: VecDeque<Instant>,
    /// The last demand, however old.
    last: Option<Instant>,
}

impl Shelf {
    fn note(&mut self, now: Instant) {
        while self.demand.front().is_some_and(|t| now.duration_since(*t) > DEMAND_WINDOW) {
            self.demand.pop_front();
        }
        self.demand.push_back(now);
        self.last = Some(now);
    }

    /// How many spares the shelf should hold now.
    fn target(&self, per_profile: usize, keep: Duration, now: Instant) -> usize {
        match self.last {
            Some(t) if now.duration_since(t) < keep => {
                let recent = self.demand.iter().filter(|t| now.duration_since(**t) <= DEMAND_WINDOW).count();
                recent.max(1).min(per_profile)
            }
            _ => 0,
        }
    }
}

/// The spares of every profile.
#[derive(Debug)]
pub(crate) struct Spares {
    per_profile: usize,
    /// Spares of one profile started at once, at most: a refill after a burst of cold
    /// starts must not compete with the burst's own processes for the CPUs (100 at once
    /// made a second burst of 100 take 6.0 s instead of 3.3 s on 2 CPUs). Each spare that
    /// is ready lets the next start (see [`Spares::stock`]'s caller).
    at_once: usize,
    /// A profile without demand for this long keeps no spares.
    keep: Duration,
    shelves: Mutex<HashMap<Profile, Shelf>>,
    /// What [`Spares::report`] last said, so that it speaks only of changes.
    reported: Mutex<String>,
}

impl Spares {
    pub(crate) fn new(per_profile: usize, at_once: usize, keep: Duration) -> Spares {
        Spares {
            per_profile,
            at_once: at_once.max(1),
            keep,
            shelves: Mutex::new(HashMap::new()),
            reported: Mutex::new(String::new()),
        }
    }

    /// One line on the spares ready and their memory, when their number changed since
    /// the last report.
    pub(crate) fn report(&self) -> Option<String> {
        let census = self.census();
        let counts: String = census.iter().map(|(p, n, _)| format!("{p} ×{n}; ")).collect();
        let mut last = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        if *last == counts {
            return None;
        }
        *last = counts;
        if census.is_empty() {
            return Some("spare runtimes: none".into());
        }
        let each: Vec<String> =
            census.iter().map(|(p, n, kb)| format!("{p} ×{n} ({:.1} MB resident)", *kb as f64 / 1024.0)).collect();
        Some(format!("spare runtimes: {}", each.join(", ")))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Profile, Shelf>> {
        // Every update is a push, pop or counter step: consistent after a panic.
        self.shelves.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether spares are kept at all.
    pub(crate) fn enabled(&self) -> bool {
        self.per_profile > 0
    }

    /// A live spare of `profile`: a ready one, or one being started that no other cold
    /// start waits for (it began earlier than a process started now would). `None`:
    /// the caller starts a process. Counts as demand either way.
    pub(crate) async fn take(&self, profile: Profile) -> Option<Spare> {
        if !self.enabled() {
            return None;
        }
        let rx = {
            let mut shelves = self.lock();
            let shelf = shelves.entry(profile).or_default();
            shelf.note(Instant::now());
            while let Some(spare) = shelf.ready.pop_front() {
                if spare.alive() {
                    return Some(spare);
                }
            }
            shelf.waiters.retain(|w| !w.is_closed());
            if shelf.starting <= shelf.waiters.len() {
                return None;
            }
            let (tx, rx) = oneshot::channel();
            shelf.waiters.push_back(tx);
            rx
        };
        match tokio::time::timeout(WAIT_FOR_STARTING, rx).await {
            Ok(Ok(spare)) if spare.alive() => Some(spare),
            _ => None,
        }
    }

    /// Demand for `profile` without a cold start (a new or redeployed function).
    pub(crate) fn expect(&self, profile: Profile) {
        if self.enabled() {
            self.lock().entry(profile).or_default().note(Instant::now());
        }
    }

    /// How many spares of `profile` to start now (no more than `at_once` starting in
    /// all); the caller starts them, hands each to [`Spares::stock`] (or reports a
    /// failure with `None`) and then asks again.
    pub(crate) fn deficit(&self, profile: Profile) -> usize {
        let mut shelves = self.lock();
        let Some(shelf) = shelves.get_mut(&profile) else { return 0 };
        let want = shelf.target(self.per_profile, self.keep, Instant::now());
        let missing =
            want.saturating_sub(shelf.ready.len() + shelf.starting).min(self.at_once.saturating_sub(shelf.warming));
        shelf.starting += missing;
        shelf.warming += missing;
        missing
    }

    /// A spare started for [`Spares::deficit`] is ready (or failed to start: `None`).
    /// It is dropped (stopped) when its profile no longer wants it.
    pub(crate) fn stock(&self, profile: Profile, spare: Option<Spare>) {
        let mut shelves = self.lock();
        let Some(shelf) = shelves.get_mut(&profile) else { return };
        shelf.starting = shelf.starting.saturating_sub(1);
        let Some(mut spare) = spare else {
            shelf.warming = shelf.warming.saturating_sub(1);
            // A waiter for it starts its own process.
            shelf.waiters.pop_front();
            return;
        };
        while let Some(waiter) = shelf.waiters.pop_front() {
            match waiter.send(spare) {
                Ok(()) => return,
                // That cold start stopped waiting.
                Err(back) => spare = back,
            }
        }
        if shelf.ready.len() + shelf.starting < shelf.target(self.per_profile, self.keep, Instant::now()) {
            shelf.ready.push_back(spare);
        } else {
            drop(shelves);
            drop(spare);
        }
    }

    /// A spare stocked by [`Spares::stock`] has its runtime client started (or is past
    /// the time that should take): the next one may start.
    pub(crate) fn warmed(&self, profile: Profile) {
        if let Some(shelf) = self.lock().get_mut(&profile) {
            shelf.warming = shelf.warming.saturating_sub(1);
        }
    }

    /// Stops dead spares and those of profiles without recent demand; returns the
    /// profiles that hold fewer spares than they want (the caller refills them).
    pub(crate) fn reap(&self) -> Vec<Profile> {
        let now = Instant::now();
        let mut stopped = Vec::new();
        let mut short = Vec::new();
        let mut shelves = self.lock();
        shelves.retain(|profile, shelf| {
            let target = shelf.target(self.per_profile, self.keep, now);
            let (live, dead): (VecDeque<Spare>, VecDeque<Spare>) = shelf.ready.drain(..).partition(Spare::alive);
            stopped.extend(dead);
            shelf.ready = live;
            while shelf.ready.len() > target {
                stopped.extend(shelf.ready.pop_back());
            }
            if shelf.ready.len() + shelf.starting < target {
                short.push(*profile);
            }
            target > 0 || shelf.starting > 0
        });
        drop(shelves);
        // Killing and cleaning up happens off the lock.
        drop(stopped);
        short
    }

    /// Stops every spare.
    pub(crate) fn clear(&self) {
        let all: Vec<Spare> = self.lock().drain().flat_map(|(_, s)| s.ready).collect();
        drop(all);
    }

    /// Spares ready now, per profile, with their resident memory in kB (their cost).
    pub(crate) fn census(&self) -> Vec<(Profile, usize, u64)> {
        let shelves = self.lock();
        let mut out: Vec<(Profile, usize, u64)> = shelves
            .iter()
            .filter(|(_, s)| !s.ready.is_empty())
            .map(|(p, s)| (*p, s.ready.len(), s.ready.iter().filter_map(Spare::resident_kb).sum()))
            .collect();
        out.sort_by_key(|(p, _, _)| (p.runtime.as_str(), p.memory_size, p.ephemeral_storage));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shelf_wants_its_recent_demand_within_bounds() {
        let now = Instant::now();
        let keep = Duration::from_secs(600);
        let mut shelf = Shelf::default();
        assert_eq!(shelf.target(4, keep, now), 0, "no demand, no spares");
        shelf.note(now);
        assert_eq!(shelf.target(4, keep, now), 1);
        for _ in 0..9 {
            shelf.note(now);
        }
        assert_eq!(shelf.target(4, keep, now), 4, "capped per profile");
        // Past the window one is kept, until the idle timeout.
        let later = now + DEMAND_WINDOW + Duration::from_secs(1);
        assert_eq!(shelf.target(4, keep, later), 1);
        assert_eq!(shelf.target(4, keep, now + keep + Duration::from_secs(1)), 0);
        // Old demand leaves the window as new demand comes.
        shelf.note(later);
        assert_eq!(shelf.demand.len(), 1);
    }

    /// `take` when nothing is starting: it answers without waiting.
    fn futures_take(spares: &Spares, p: Profile) -> Option<Spare> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        rt.block_on(spares.take(p))
    }

    #[test]
    fn deficits_count_what_is_starting() {
        let spares = Spares::new(2, 2, Duration::from_secs(600));
        let p = Profile { runtime: portico_model::Runtime::Nodejs22, memory_size: 128, ephemeral_storage: 512 };
        assert_eq!(spares.deficit(p), 0, "no demand yet");
        assert!(futures_take(&spares, p).is_none());
        assert_eq!(spares.deficit(p), 1);
        assert_eq!(spares.deficit(p), 0, "one is starting");
        spares.expect(p);
        assert_eq!(spares.deficit(p), 1, "two asked for in the last minute");
        spares.stock(p, None);
        spares.stock(p, None);
        assert_eq!(spares.deficit(p), 2, "failed starts are retried");
        let off = Spares::new(0, 2, Duration::from_secs(600));
        assert!(futures_take(&off, p).is_none());
        off.expect(p);
        assert_eq!(off.deficit(p), 0);
    }

    #[test]
    fn a_refill_starts_at_most_at_once_spares_at_a_time() {
        let spares = Spares::new(100, 2, Duration::from_secs(600));
        let p = Profile { runtime: portico_model::Runtime::Nodejs22, memory_size: 128, ephemeral_storage: 512 };
        for _ in 0..10 {
            spares.expect(p);
        }
        assert_eq!(spares.deficit(p), 2, "ten wanted, two at a time");
        assert_eq!(spares.deficit(p), 0, "two are starting");
        spares.stock(p, None);
        assert_eq!(spares.deficit(p), 1, "one failed: the next may start");
        spares.stock(p, None);
        spares.stock(p, None);
        assert_eq!(spares.deficit(p), 2);
        // A start that succeeds frees its place only once its client has started.
        let spares = Spares::new(100, 2, Duration::from_secs(600));
        for _ in 0..10 {
            spares.expect(p);
        }
        assert_eq!(spares.deficit(p), 2);
        spares.warmed(p);
        assert_eq!(spares.deficit(p), 1, "one client started");
        assert_eq!(spares.deficit(p), 0);
    }
}
