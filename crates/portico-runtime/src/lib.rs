//! Execution environments: Portico's only crate that starts processes.
//!
//! [`Invoker::invoke`] runs one invocation of a function: it takes a warm, idle
//! [`Environment`](environment::Environment) from the function's pool or starts one
//! (a cold start), hands it the event through the Lambda Runtime API, waits for the
//! answer within the function's timeout, and returns the environment to the pool when
//! it can serve again. Each environment serves one invocation at a time; concurrent
//! invocations run in separate environments.
//!
//! This crate knows functions only through the model's [`Function`] it is given; it
//! never reads the store.

pub mod code;
pub mod concurrency;
pub mod environment;
pub mod launch;
mod logs;
pub mod metrics;
mod pool;
pub mod runtime_api;
pub mod sandbox;
mod spares;

pub use logs::{LogEvent, LogSink};
pub use metrics::{FunctionMetrics, FunctionPoint, FunctionUsage};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use portico_model::Function;

use crate::code::CodeCache;
use crate::environment::{Environment, Profile, Spare, SpawnSpec};
use crate::launch::Launchers;
use crate::pool::{same_config, Pool};
use crate::spares::Spares;

/// How long after a cold start took a spare its replacement is started.
const REFILL_AFTER: Duration = Duration::from_millis(20);
/// A spare's runtime client that has not started within this no longer holds up the
/// next spare of its refill.
const SPARE_START_OVERDUE: Duration = Duration::from_secs(2);

/// Settings of the execution layer, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where unpacked code trees live.
    pub code_dir: PathBuf,
    /// Parent of the environments' private scratch directories.
    pub tmp_dir: PathBuf,
    /// How long an environment may stay idle before it is stopped.
    pub idle_timeout: Duration,
    /// Concurrent executions allowed per account (Lambda's default is 1000).
    pub account_concurrency: u32,
    /// What environments run in (users, Landlock, cgroups, limits), probed once.
    pub sandbox: Arc<sandbox::Sandbox>,
    /// Where environments' log events go (none: function output only reaches Portico's
    /// own log).
    pub log_sink: Option<Arc<dyn LogSink>>,
    /// Warm-first dispatch: an invocation that finds no idle environment may wait for a
    /// busy one when that is likely quicker than a cold start (see `pool.rs`). Off: it
    /// starts one at once, as Lambda does.
    pub warm_wait: bool,
    /// Spare runtime processes kept per profile at most (0: none), so that a cold start
    /// can take one instead of starting a process (see `spares.rs`).
    pub spares_per_profile: usize,
}

/// Why an invocation could not run at all (as opposed to a function error, which is
/// a normal [`InvokeOutput`]).
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function's runtime has no interpreter on this host.
    #[error("{0}")]
    RuntimeUnavailable(String),
    /// The function's code is not unpacked on this host.
    #[error("code for {function} ({sha}) is not available")]
    CodeMissing {
        /// Function name.
        function: String,
        /// Package hash.
        sha: String,
    },
    /// The runtime process could not be started.
    #[error("starting the runtime: {0}")]
    Spawn(#[source] std::io::Error),
    /// Portico is stopping.
    #[error("Portico is shutting down")]
    ShuttingDown,
    /// No concurrency is available for the function (`TooManyRequestsException`).
    #[error("Rate Exceeded.")]
    Throttled(concurrency::Throttle),
}

/// The result of an invocation that ran.
#[derive(Debug)]
pub struct InvokeOutput {
    /// Request id (`x-amzn-RequestId`, and the id the function saw).
    pub request_id: Arc<str>,
    /// Response document, or error document when `function_error`.
    pub payload: Bytes,
    /// `X-Amz-Function-Error: Unhandled`.
    pub function_error: bool,
    /// The last 4 KB of the invocation's log, when asked for.
    pub log_tail: Option<String>,
    /// Wall time of the invocation.
    pub duration: Duration,
}

/// Runs invocations in pooled environments.
#[derive(Debug)]
pub struct Invoker {
    cfg: RuntimeConfig,
    launchers: Launchers,
    code: CodeCache,
    pools: DashMap<String, Arc<Pool>>,
    spares: Spares,
    limits: concurrency::Limits,
    next_env: AtomicU64,
    stopping: AtomicBool,
    /// How many busy environments of a function warm-first dispatch lets run before it
    /// considers queueing: [`ENVIRONMENTS_PER_CPU`] per CPU this process may use.
    parallelism: u32,
    /// Per-minute metrics and usage of every function invoked.
    metrics: Arc<FunctionMetrics>,
}

/// Busy environments of one function per CPU before warm-first dispatch queues for
/// them. Even a function that only computes spends most of its turnaround waiting for
/// Portico to take its answer and hand it the next event; with a few per CPU, Portico and
/// each runtime find work waiting when they wake and take it in one go, instead of
/// waking once per event: on 2 CPUs, 8 environments served the seed's function at 1.5-2×
/// the requests per second of 2, each request costing about half the CPU on both sides
/// (bench/README.md).
const ENVIRONMENTS_PER_CPU: u32 = 4;

impl Invoker {
    /// An invoker with no environments yet.
    pub fn new(cfg: RuntimeConfig, launchers: Launchers) -> Arc<Invoker> {
        let code = CodeCache::new(cfg.code_dir.clone());
        let limits = concurrency::Limits::new(cfg.account_concurrency);
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let spares = Spares::new(cfg.spares_per_profile, cpus, cfg.idle_timeout);
        let invoker = Arc::new(Invoker {
            spares,
            cfg,
            launchers,
            code,
            pools: DashMap::new(),
            limits,
            next_env: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            parallelism: u32::try_from(cpus).unwrap_or(u32::MAX).saturating_mul(ENVIRONMENTS_PER_CPU),
            metrics: Arc::new(FunctionMetrics::default()),
        });
        let weak = Arc::downgrade(&invoker);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let Some(inv) = weak.upgrade() else { break };
                inv.reap_idle();
                inv.reap_spares();
            }
        });
        invoker
    }

    /// The code cache, where the control plane unpacks uploads.
    pub fn code(&self) -> &CodeCache {
        &self.code
    }

    /// The resolved runtimes.
    pub fn launchers(&self) -> &Launchers {
        &self.launchers
    }

    /// Every function's per-minute metrics and usage since start.
    pub fn metrics(&self) -> &Arc<FunctionMetrics> {
        &self.metrics
    }

    /// Invokes `function` with `payload`. `invoked_arn` is the ARN the caller used.
    pub async fn invoke(
        self: &Arc<Self>,
        function: &Arc<Function>,
        payload: Bytes,
        invoked_arn: Arc<str>,
        request_id: Arc<str>,
        tail: bool,
    ) -> Result<InvokeOutput, InvokeError> {
        // The invocation runs on its own task: a caller that goes away (a closed
        // connection) must not kill an environment in the middle of its work.
        let this = self.clone();
        let function = function.clone();
        let rid = request_id.clone();
        let task = tokio::spawn(async move { this.run(&function, rid, payload, invoked_arn, tail).await });
        let (done, log_tail) = match task.await {
            Ok(r) => r?,
            Err(e) => return Err(InvokeError::Spawn(std::io::Error::other(e))),
        };
        Ok(InvokeOutput {
            request_id,
            payload: done.payload,
            function_error: done.function_error,
            log_tail,
            duration: done.duration,
        })
    }

    async fn run(
        self: &Arc<Self>,
        function: &Arc<Function>,
        request_id: Arc<str>,
        payload: Bytes,
        invoked_arn: Arc<str>,
        tail: bool,
    ) -> Result<(environment::Completed, Option<String>), InvokeError> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(InvokeError::ShuttingDown);
        }
        // One pool per version: a published version's environments run its own code.
        let key = function.version_arn();
        let pool = match self.pools.get(&key) {
            Some(p) => p.clone(),
            None => self
                .pools
                .entry(key)
                .or_insert_with(|| Arc::new(Pool::new(self.metrics.entry(&function.scope, &function.name))))
                .clone(),
        };
        // The unit of concurrency is held until the environment is idle again, so a
        // caller that sees its answer can immediately reuse that environment.
        let _lease = self.limits.admit(function).map_err(|t| {
            pool.metrics().throttled();
            InvokeError::Throttled(t)
        })?;
        let began = Instant::now();
        let wait_beyond = self.cfg.warm_wait.then_some(self.parallelism);
        let acquired = pool.acquire(function, wait_beyond).await;
        // The concurrency gauge counts environments busy (a starting one included), not
        // invocations queued for one; dropped unfinished when none could be started.
        let busy = pool.metrics().begin();
        let (mut env, cold) = match acquired {
            Some(env) => (env, false),
            None => match self.start(function).await {
                Ok(env) => (env, true),
                Err(e) => {
                    pool.release(None, began.elapsed(), true);
                    return Err(e);
                }
            },
        };
        let ran = Instant::now();
        // What this cold start would have cost without a spare: warm-first dispatch weighs
        // waiting against starting an environment, and spares run out.
        let saved = env.spare_start.take().unwrap_or_default();
        let (done, log) = env.invoke(request_id, payload, invoked_arn, tail).await;
        // Function errors, timeouts and crashes all answer with `function_error`: what
        // Lambda counts as Errors. The duration is the REPORT line's.
        busy.finish(function, done.duration, done.function_error);
        let reusable = done.reusable && !self.stopping.load(Ordering::Relaxed);
        // A cold start is measured from the request, a warm turnaround from the hand-over.
        let took = if cold { began.elapsed() + saved } else { ran.elapsed() };
        pool.release(reusable.then_some(env), took, cold);
        if cold {
            // After the cold start, not during it: a spare starting competes for the CPU.
            self.refill(function);
        }
        Ok((done, log))
    }

    /// A new environment for `function`: a spare assigned to it when one of its profile
    /// is ready, else a process started for it.
    async fn start(&self, function: &Arc<Function>) -> Result<Environment, InvokeError> {
        let launcher =
            self.launchers.get(function.runtime).map_err(|e| InvokeError::RuntimeUnavailable(e.0.clone()))?;
        let spare = match Profile::of(function, launcher) {
            Some(profile) => self.spares.take(profile).await,
            None => None,
        };
        if let Some(spare) = spare {
            match self
                .spec(function, launcher)
                .and_then(|spec| spare.assign(function.clone(), spec).map_err(InvokeError::Spawn))
            {
                Ok(env) => return Ok(env),
                Err(e) => tracing::warn!("{}: assigning a spare runtime failed ({e}); starting one", function.name),
            }
        }
        Environment::spawn(function.clone(), self.spec(function, launcher)?).map_err(InvokeError::Spawn)
    }

    /// `function`'s profile, when spares can serve it.
    fn profile(&self, function: &Function) -> Option<Profile> {
        Profile::of(function, self.launchers.get(function.runtime).ok()?)
    }

    /// Starts the spares `function`'s profile is short of, in the background.
    fn refill(self: &Arc<Self>, function: &Function) {
        let Some(profile) = self.profile(function) else { return };
        // Not while the answer that took a spare is still on its way: starting one forks
        // Portico, and its threads then fault on the pages they write.
        self.refill_profile(profile, REFILL_AFTER);
    }

    /// Starts the spares `profile` is short of, each on a blocking thread, after `delay`.
    fn refill_profile(self: &Arc<Self>, profile: Profile, delay: Duration) {
        for _ in 0..self.spares.deficit(profile) {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let started = tokio::task::spawn_blocking(move || {
                    let started = match this.launchers.get(profile.runtime) {
                        _ if this.stopping.load(Ordering::Relaxed) => None,
                        Ok(launcher) => {
                            let id = this.next_env.fetch_add(1, Ordering::Relaxed);
                            Spare::start(profile, launcher, this.cfg.tmp_dir.clone(), id, &this.cfg.sandbox)
                                .inspect_err(|e| tracing::warn!("starting a spare runtime ({profile}) failed: {e}"))
                                .ok()
                        }
                        Err(_) => None,
                    };
                    let ready = started.as_ref().map(Spare::started);
                    this.spares.stock(profile, started);
                    ready.map(|ready| (this, ready))
                })
                .await;
                // The next spare of a refill capped at `at_once` (see `Spares::deficit`)
                // once this one's runtime client has started, or its start is overdue.
                // Not after a failure: the next cold start or reap asks again.
                if let Ok(Some((this, ready))) = started {
                    let _ = tokio::time::timeout(SPARE_START_OVERDUE, ready).await;
                    this.spares.warmed(profile);
                    this.refill_profile(profile, Duration::ZERO);
                }
            });
        }
    }

    /// A function was created or changed: its first invocation is likely soon, so its
    /// profile gets a spare ready.
    pub fn expect(self: &Arc<Self>, function: &Function) {
        let Some(profile) = self.profile(function) else { return };
        self.spares.expect(profile);
        self.refill_profile(profile, Duration::ZERO);
    }

    fn reap_spares(self: &Arc<Self>) {
        for profile in self.spares.reap() {
            self.refill_profile(profile, Duration::ZERO);
        }
        if let Some(line) = self.spares.report() {
            tracing::info!("{line}");
        }
    }

    fn spec<'a>(&'a self, function: &Function, launcher: &'a launch::Launcher) -> Result<SpawnSpec<'a>, InvokeError> {
        let sha = &function.code.sha256_hex;
        if !self.code.contains(sha) {
            return Err(InvokeError::CodeMissing { function: function.name.clone(), sha: sha.clone() });
        }
        if self.stopping.load(Ordering::Relaxed) {
            return Err(InvokeError::ShuttingDown);
        }
        let id = self.next_env.fetch_add(1, Ordering::Relaxed);
        Ok(SpawnSpec {
            launcher,
            task_root: self.code.path(sha),
            tmp_root: self.cfg.tmp_dir.clone(),
            id,
            log_sink: self.cfg.log_sink.clone(),
            sandbox: self.cfg.sandbox.clone(),
        })
    }

    /// Stops environments idle for longer than the idle timeout.
    pub fn reap_idle(&self) {
        let limit = self.cfg.idle_timeout;
        for pool in self.pools.iter() {
            pool.retain_idle(|e| e.alive() && e.last_used.elapsed() < limit);
        }
    }

    /// Stops the idle environments of functions that no longer exist or changed.
    /// `current` answers whether an environment's configuration is still current.
    pub fn retain(&self, current: impl Fn(&Arc<Function>) -> bool) {
        for pool in self.pools.iter() {
            pool.retain_idle(|e| current(&e.function));
        }
        self.pools.retain(|_, p| !p.is_empty() || Arc::strong_count(p) > 1);
    }

    /// The account concurrency limits (reservations are updated from each catalog).
    pub fn limits(&self) -> &concurrency::Limits {
        &self.limits
    }

    /// Invocations of the function with unqualified ARN `arn` in flight now.
    pub fn in_flight(&self, arn: &str) -> u32 {
        self.limits.in_flight(arn)
    }

    /// Number of idle environments (for metrics and tests).
    pub fn idle_environments(&self) -> usize {
        self.pools.iter().map(|p| p.idle_count()).sum()
    }

    /// Refuses new invocations and stops every idle environment. Busy environments
    /// are stopped when their invocation ends.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.spares.clear();
        for pool in self.pools.iter() {
            pool.retain_idle(|_| false);
        }
    }
}

/// Whether two configurations can share environments (exposed for the catalog
/// watcher, which stops stale environments early).
pub fn can_share_environments(a: &Arc<Function>, b: &Arc<Function>) -> bool {
    same_config(a, b)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use portico_model::Architecture;

    use super::*;
    use crate::launch::Interpreters;
    use crate::sandbox::{Sandbox, SandboxConfig, TmpStorage};

    /// A `provided.al2023` bootstrap in Python: echoes the event; `"fail"` is a function
    /// error, `"sleep"` answers after 300 ms.
    const BOOTSTRAP: &str = r#"#!/usr/bin/env python3
import http.client, os, time
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
api = http.client.HTTPConnection(host, int(port))
while True:
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    r = api.getresponse()
    event = r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    if event == b'"sleep"':
        time.sleep(0.3)
    if event == b'"fail"':
        api.request("POST", "/2018-06-01/runtime/invocation/" + rid + "/error", body=b'{"errorType":"Test","errorMessage":"boom"}')
    else:
        api.request("POST", "/2018-06-01/runtime/invocation/" + rid + "/response", body=event)
    api.getresponse().read()
"#;

    fn package() -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let exec = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        w.start_file("bootstrap", exec).expect("start");
        w.write_all(BOOTSTRAP.as_bytes()).expect("write");
        w.finish().expect("finish").into_inner()
    }

    #[tokio::test]
    async fn invocations_are_recorded_in_the_functions_metrics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launchers = Launchers::resolve(&Interpreters::default(), &dir.path().join("runtimes")).expect("launchers");
        let sandbox = Arc::new(Sandbox::new(SandboxConfig {
            isolate_users: false,
            landlock: false,
            cgroups: false,
            root: dir.path().join("sandbox"),
            tmp_storage: TmpStorage::Dir,
            ..SandboxConfig::default()
        }));
        let invoker = Invoker::new(
            RuntimeConfig {
                code_dir: dir.path().join("code"),
                tmp_dir: dir.path().join("tmp"),
                idle_timeout: Duration::from_secs(60),
                account_concurrency: 10,
                sandbox,
                log_sink: None,
                warm_wait: false,
                spares_per_profile: 0,
            },
            launchers,
        );
        let sha = "ab".repeat(32);
        invoker.code().install(&sha, &package()).expect("install");
        let mut f = (*environment::tests::function(&[])).clone();
        (f.code.sha256_hex, f.memory_size, f.architectures) = (sha, 256, vec![Architecture::Arm64]);
        let mut g = f.clone();
        (g.name, g.reserved_concurrency) = ("g".into(), Some(0));
        let (f, g) = (Arc::new(f), Arc::new(g));
        invoker.limits().set_reservations([&*f, &*g]);

        let invoke = |function: &Arc<Function>, event: &'static str, rid: &'static str| {
            let (invoker, function) = (invoker.clone(), function.clone());
            async move {
                invoker
                    .invoke(&function, Bytes::from_static(event.as_bytes()), Arc::from("arn"), Arc::from(rid), false)
                    .await
            }
        };
        let ok = invoke(&f, "1", "rid-1").await.expect("invoke");
        assert!(!ok.function_error, "{:?}", ok.payload);
        let failed = invoke(&f, r#""fail""#, "rid-2").await.expect("invoke");
        assert!(failed.function_error);
        // Two at once: two environments busy.
        let (a, b) = tokio::join!(invoke(&f, r#""sleep""#, "rid-3"), invoke(&f, r#""sleep""#, "rid-4"));
        assert!(a.is_ok() && b.is_ok());
        assert!(matches!(invoke(&g, "1", "rid-5").await, Err(InvokeError::Throttled(_))));

        let now = metrics::epoch_ms(std::time::SystemTime::now());
        let points = invoker.metrics().series(&f.scope, "f", now, 5);
        assert_eq!(points.len(), 5);
        let sum = |points: &[FunctionPoint], get: fn(&FunctionPoint) -> u64| points.iter().map(get).sum::<u64>();
        assert_eq!((sum(&points, |p| p.invocations), sum(&points, |p| p.errors)), (4, 1));
        assert_eq!(points.iter().map(|p| p.concurrency_max).max(), Some(2), "{points:?}");
        // Nothing stays busy once the invocations are over: a later quiet minute shows 0.
        let later = invoker.metrics().series(&f.scope, "f", now + 120_000, 1);
        assert_eq!(later[0].concurrency_max, 0, "{later:?}");
        let p99 = points.iter().filter_map(|p| p.duration_p99_ms).fold(0.0, f64::max);
        assert!(p99 >= 290.0, "{points:?}");
        let g_points = invoker.metrics().series(&g.scope, "g", now, 5);
        assert_eq!((sum(&g_points, |p| p.throttles), sum(&g_points, |p| p.invocations)), (1, 0));

        let usage = invoker.metrics().usage(&f.scope);
        assert_eq!(usage.len(), 1, "a throttled function ran nothing: {usage:?}");
        let u = &usage[0];
        assert_eq!(
            (u.function_name.as_str(), u.architecture.as_str(), u.memory_mb, u.requests),
            ("f", "arm64", 256, 4)
        );
        // Two invocations of at least 300 ms at 0.25 GB, and two short ones.
        assert!(u.gb_seconds >= 2.0 * 0.3 * 0.25 && u.gb_seconds < 1.0, "{u:?}");
        assert!(invoker.metrics().since_ms() <= now);
        invoker.shutdown();
    }
}
