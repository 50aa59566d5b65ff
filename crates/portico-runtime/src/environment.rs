//! One execution environment: a runtime process, its private Runtime API listener, its
//! output pipe and its scratch directory. It serves one invocation at a time.
//!
//! The process is started in its own process group with a clean environment (Lambda's
//! variables and the function's, nothing of the host's), inside the sandbox's lease
//! (its own user, Landlock, cgroup and limits where the host allows them: see
//! `sandbox.rs`); dropping the environment kills every process of it, so nothing a
//! function starts outlives it.
//!
//! Its log stream reads as Lambda's: `INIT_START` as the process starts, whatever init
//! wrote, then per invocation `START`, the invocation's output, `END` and `REPORT`. A
//! warm runtime already waits in `GET /next`, so START is placed and the event handed
//! over at once; on a cold start the event is handed over only once the runtime has
//! asked for it (init is over), and START is placed just before, after the init output.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use portico_model::{Function, Runtime};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::launch::Launcher;
use crate::logs::{LogPipe, LogSink, LogTarget, TAIL_BYTES};
use crate::runtime_api::{self, Invocation, Reply, Slot};
use crate::sandbox::{Lease, Sandbox};

/// How an invocation ended, as the caller of Invoke sees it.
#[derive(Debug)]
pub struct Completed {
    /// The response document, or the error document when `function_error`.
    pub payload: Bytes,
    /// Whether this is a function error (`X-Amz-Function-Error: Unhandled`).
    pub function_error: bool,
    /// Wall time from hand-off to answer.
    pub duration: Duration,
    /// The environment can serve again.
    pub reusable: bool,
}

/// A live environment.
#[derive(Debug)]
pub struct Environment {
    /// The function configuration it was started with.
    pub function: Arc<Function>,
    slot: Arc<Slot>,
    /// The runtime's `/proc/{pid}/status`, kept open: REPORT's memory figure re-reads it
    /// with one `pread` per invocation instead of a path lookup, open and close.
    proc_status: Option<std::fs::File>,
    /// The last `VmHWM` read from it (kB), and when.
    resident_peak: std::cell::Cell<Option<(Instant, u64)>>,
    exit: watch::Receiver<Option<String>>,
    server: JoinHandle<()>,
    logs: LogPipe,
    /// Its share of the sandbox: user, scratch directory, cgroup, watchdog.
    lease: Lease,
    /// How to start it again (an init past the init limit is retried).
    respawn: Respawn,
    /// When the runtime process started.
    spawned: Instant,
    /// When init began, until the first invocation (the cold start, which reports Init
    /// Duration) is over.
    pending_init: Option<Instant>,
    /// What init wrote (its last 4 KB), which a cold start's `LogType: Tail` begins with
    /// (kept only for such an invocation).
    init_output: Vec<u8>,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`.
    pub log_stream: String,
    /// When it last finished an invocation.
    pub last_used: Instant,
    /// For an environment that was a spare: how long its process took to start (the
    /// part of a cold start the spare saved).
    pub spare_start: Option<Duration>,
}

/// What `spawn` needs besides the function.
#[derive(Debug)]
pub struct SpawnSpec<'a> {
    /// How to start the runtime.
    pub launcher: &'a Launcher,
    /// The unpacked code.
    pub task_root: PathBuf,
    /// Parent of per-environment scratch directories.
    pub tmp_root: PathBuf,
    /// A unique number for this environment.
    pub id: u64,
    /// Where the environment's log events go.
    pub log_sink: Option<Arc<dyn LogSink>>,
    /// The sandbox it runs in.
    pub sandbox: Arc<Sandbox>,
}

/// An owned [`SpawnSpec`], kept to start the environment's process again.
#[derive(Debug, Clone)]
struct Respawn {
    launcher: Launcher,
    task_root: PathBuf,
    tmp_root: PathBuf,
    id: u64,
    /// How many times the process was started again (names its scratch dir and cgroup).
    restarts: u32,
    log_sink: Option<Arc<dyn LogSink>>,
    sandbox: Arc<Sandbox>,
}

impl From<SpawnSpec<'_>> for Respawn {
    fn from(spec: SpawnSpec<'_>) -> Respawn {
        Respawn {
            launcher: spec.launcher.clone(),
            task_root: spec.task_root,
            tmp_root: spec.tmp_root,
            id: spec.id,
            restarts: 0,
            log_sink: spec.log_sink,
            sandbox: spec.sandbox,
        }
    }
}

/// The V8 heap limits Lambda's Node.js bootstrap derives from MemorySize, so a function
/// runs out of heap where it would on Lambda: a tenth of the memory for the young
/// generation (two semi-spaces), the rest for the old one.
fn node_memory_args(runtime: Runtime, memory_size: u32) -> Vec<String> {
    if !matches!(runtime, Runtime::Nodejs22 | Runtime::Nodejs20) {
        return Vec::new();
    }
    let new_space = memory_size / 10;
    vec![
        "--expose-gc".into(),
        "--max-http-header-size=81920".into(),
        format!("--max-semi-space-size={}", new_space / 2),
        format!("--max-old-space-size={}", memory_size - new_space),
    ]
}

/// The runtime version an environment reports on its `INIT_START` line, as AWS names
/// them: `nodejs:22.v1`, `python:3.12.v1`, `provided:al2023.v1`.
///
/// AWS numbers the builds of each runtime (`nodejs:22.v41`) and moves functions to new
/// ones. Portico's runtimes are its embedded runtime clients on the host's interpreter,
/// so they change only with a Portico release: each runtime has the one version `v1`,
/// and the release is told apart by [`runtime_version_arn`].
pub fn runtime_version(runtime: Runtime) -> String {
    let family = match runtime {
        Runtime::Nodejs22 => "nodejs:22",
        Runtime::Nodejs20 => "nodejs:20",
        Runtime::Python314 => "python:3.14",
        Runtime::Python313 => "python:3.13",
        Runtime::Python312 => "python:3.12",
        Runtime::Python311 => "python:3.11",
        Runtime::Python310 => "python:3.10",
        Runtime::ProvidedAl2023 => "provided:al2023",
        Runtime::ProvidedAl2 => "provided:al2",
    };
    format!("{family}.v1")
}

/// The ARN of [`runtime_version`] in `region`: `arn:aws:lambda:{region}::runtime:{hash}`,
/// where AWS's 64 hex digits are, here, the SHA-256 of `portico {Portico's version}
/// {runtime version}` (`portico 0.1.0 nodejs:22.v1`): the same for every function of a
/// runtime on one Portico release, different on the next, as an AWS runtime version's
/// ARN is (the region aside, it names no host or data of its own).
pub fn runtime_version_arn(runtime: Runtime, region: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("portico {} {}", env!("CARGO_PKG_VERSION"), runtime_version(runtime)));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("arn:aws:lambda:{region}::runtime:{hex}")
}

/// The line that opens a new environment's log stream, as Lambda writes it (two fields
/// separated by a tab): `INIT_START Runtime Version: nodejs:22.v1\tRuntime Version ARN:
/// arn:aws:lambda:us-east-1::runtime:<64 hex>`.
fn init_start_line(runtime: Runtime, region: &str) -> String {
    format!(
        "INIT_START Runtime Version: {}\tRuntime Version ARN: {}\n",
        runtime_version(runtime),
        runtime_version_arn(runtime, region)
    )
}

/// How long a read of the runtime's `VmHWM` stands for REPORT lines.
const RESIDENT_PEAK_EVERY: Duration = Duration::from_secs(1);

fn log_stream_name(version: &str) -> String {
    format!("{}/[{version}]{}", chrono::Utc::now().format("%Y/%m/%d"), uuid::Uuid::new_v4().simple())
}

/// A started runtime process with its Runtime API server and sandbox, not yet tied to
/// a log stream: an environment's, or a spare's until it is assigned.
#[derive(Debug)]
struct Process {
    slot: Arc<Slot>,
    server: JoinHandle<()>,
    lease: Lease,
    exit: watch::Receiver<Option<String>>,
    proc_status: Option<std::fs::File>,
    /// The read end of its stdout and stderr.
    output: std::io::PipeReader,
    /// When it started (for a spare: when it was assigned), which init counts from.
    spawned: Instant,
    /// `AWS_LAMBDA_RUNTIME_API`: its listener's address.
    api: String,
}

impl Process {
    /// Starts `launcher`'s runtime in `lease` with the variables `own` (the function's)
    /// and then `vars(runtime_api)` (Lambda's, which win), nothing of the host's, `cwd`
    /// as its working directory, stdout and
    /// stderr on one pipe, in its own process group; its Runtime API is served on a
    /// loopback listener of its own, through `slot`.
    fn launch(
        mut lease: Lease,
        launcher: &Launcher,
        args: Vec<String>,
        cwd: &std::path::Path,
        slot: Slot,
        own: &BTreeMap<String, String>,
        vars: impl FnOnce(&str) -> Vec<(&'static str, String)>,
    ) -> std::io::Result<Process> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let api = std_listener.local_addr()?.to_string();
        let listener = TcpListener::from_std(std_listener)?;
        let slot = Arc::new(slot);
        // Portico's own clients talk over a socket pair they inherit: a UNIX socket costs
        // a fraction of loopback TCP per message, and needs no check of who connected.
        // The listener stays, for `AWS_LAMBDA_RUNTIME_API` and a client that reconnects.
        let (inherited, child_end) = match launcher.own_client {
            true => {
                let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
                ours.set_nonblocking(true)?;
                (Some(tokio::net::UnixStream::from_std(ours)?), Some(OwnedFd::from(theirs)))
            }
            false => (None, None),
        };
        let server = tokio::spawn({
            let (slot, admit) = (slot.clone(), lease.admit());
            async move {
                let listening = runtime_api::serve(listener, slot.clone(), admit);
                match inherited {
                    Some(socket) => drop(tokio::join!(listening, runtime_api::serve_connection(socket, slot))),
                    None => listening.await,
                }
            }
        });
        // Portico's own runtime clients wait for the cgroups to be joined from here, after
        // the start (see `Lease::apply`); a package's bootstrap joins them before exec.
        let join_later = if launcher.own_client { lease.cgroup_procs()? } else { Vec::new() };

        let (reader, writer) = std::io::pipe()?;
        let writer2 = writer.try_clone()?;
        let mut cmd = tokio::process::Command::new(lease.program());
        cmd.args(args)
            .args(&launcher.args)
            .env_clear()
            .envs(own)
            .envs(vars(&api))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(writer2))
            .process_group(0)
            .kill_on_drop(true);
        if !join_later.is_empty() || slot.is_spare() {
            cmd.env("_PORTICO_AWAIT_SANDBOX", "1");
        }
        if child_end.is_some() {
            cmd.env("_PORTICO_RUNTIME_API_FD", crate::sandbox::RUNTIME_API_FD.to_string());
        }
        let started = lease.apply(&mut cmd, !join_later.is_empty(), child_end).and_then(|()| cmd.spawn());
        // Drop our copies of the write end (inside `cmd`) so EOF arrives when the process exits.
        drop(cmd);
        let mut child = match started {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(e);
            }
        };
        let pid = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw);
        let Some(pgid) = pid else {
            server.abort();
            return Err(std::io::Error::other("runtime process exited at once"));
        };
        lease.started(pgid);
        if join_later.is_empty() {
            slot.sandbox_done(true);
        } else {
            let slot = slot.clone();
            tokio::task::spawn_blocking(move || {
                let joined = crate::sandbox::join_cgroups(&join_later, pgid);
                if let Err(e) = &joined {
                    tracing::warn!("runtime process {pgid:?}: joining its cgroups failed: {e}");
                }
                slot.sandbox_done(joined.is_ok());
            });
        }
        let proc_status = std::fs::File::open(format!("/proc/{}/status", pgid.as_raw_nonzero())).ok();
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await;
            let why = match status {
                Ok(s) => exit_reason(s),
                Err(e) => e.to_string(),
            };
            let _ = exit_tx.send(Some(why));
        });
        Ok(Process { slot, server, lease, exit, proc_status, output: reader, spawned: Instant::now(), api })
    }
}

/// A runtime process started before its function is known, sized for a [`Profile`]:
/// interpreter up, runtime client loaded, sandbox complete, waiting to be told which
/// function it runs. [`Spare::assign`] makes it that function's environment, for the
/// cost of linking the code and loading it, instead of a process start.
///
/// Only Portico's own runtime clients can be spares: told so by the answer to
/// `GET /2018-06-01/runtime/portico/sandbox`, they wait in
/// `GET /2018-06-01/runtime/portico/assignment`, whose answer carries the function's
/// environment variables and task root.
#[derive(Debug)]
pub struct Spare {
    process: Process,
    id: u64,
}

/// What a runtime process is started with before its function is known: functions
/// with the same profile can take each other's spares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    /// The runtime.
    pub runtime: Runtime,
    /// MemorySize (cgroup limit, V8's heap limits).
    pub memory_size: u32,
    /// EphemeralStorage (TMPDIR's size).
    pub ephemeral_storage: u32,
}

/// Variables that act when an interpreter starts (its options, library paths, locale,
/// time zone, allocator): a function that sets one needs a process started with it, not
/// a spare. Prefixes and exact names.
const STARTUP_PREFIXES: &[&str] = &["NODE_", "UV_", "PYTHON", "LD_", "OPENSSL_", "SSL_", "LC_", "MALLOC_", "GLIBC_"];
const STARTUP_NAMES: &[&str] = &["LANG", "LANGUAGE", "TZ", "PATH", "TMPDIR", "HOME"];

impl Profile {
    /// The profile of `function` when a spare can serve it: a runtime whose client is
    /// Portico's own, and no variable of the function's that acts at start-up.
    pub fn of(function: &Function, launcher: &Launcher) -> Option<Profile> {
        let startup =
            |k: &String| STARTUP_NAMES.contains(&k.as_str()) || STARTUP_PREFIXES.iter().any(|p| k.starts_with(p));
        (launcher.own_client && !function.environment.keys().any(startup)).then_some(Profile {
            runtime: function.runtime,
            memory_size: function.memory_size,
            ephemeral_storage: function.ephemeral_storage,
        })
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} MB", self.runtime.as_str(), self.memory_size)?;
        if self.ephemeral_storage != 512 {
            write!(f, " /tmp {} MB", self.ephemeral_storage)?;
        }
        Ok(())
    }
}

impl Spare {
    /// Starts a spare for `profile` (`launcher` must be its runtime's, a client that
    /// awaits its sandbox). `id` is unique among environments.
    pub fn start(
        profile: Profile,
        launcher: &Launcher,
        tmp_root: PathBuf,
        id: u64,
        sandbox: &Arc<Sandbox>,
    ) -> std::io::Result<Spare> {
        let lease = sandbox.prepare_spare(
            profile.memory_size,
            profile.ephemeral_storage,
            launcher,
            &tmp_root,
            &format!("env-{id}"),
        )?;
        let tmp_dir = lease.tmp_dir().to_path_buf();
        // Variables that act at start-up already name the directory the code will be in.
        let task_root = lease.future_task_root(std::path::Path::new("/"));
        let runtime_dir = launcher.runtime_dir.to_string_lossy().into_owned();
        let process = Process::launch(
            lease,
            launcher,
            node_memory_args(profile.runtime, profile.memory_size),
            std::path::Path::new("/"),
            Slot::spare(),
            &BTreeMap::new(),
            |api| {
                let mut vars = startup_variables(profile.runtime, launcher, &task_root, &tmp_dir, &runtime_dir);
                vars.push(("AWS_LAMBDA_RUNTIME_API", api.to_string()));
                vars
            },
        )?;
        Ok(Spare { process, id })
    }

    /// Whether the process still runs.
    pub fn alive(&self) -> bool {
        self.process.exit.borrow().is_none()
    }

    /// Resolves once the spare's runtime client has started (or its process has ended),
    /// whoever holds the spare by then.
    pub fn started(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let slot = self.process.slot.clone();
        let mut exit = self.process.exit.clone();
        async move {
            tokio::select! {
                () = slot.client_started() => {}
                _ = exit.wait_for(Option::is_some) => {}
            }
        }
    }

    /// Its resident memory now, in kB (what a spare costs while it waits).
    pub fn resident_kb(&self) -> Option<u64> {
        read_status_kb(self.process.proc_status.as_ref()?, "VmRSS:")
    }

    /// Makes this process `function`'s environment: the code at `spec.task_root` is
    /// linked into its task root and the runtime client is told the function's
    /// environment; init (loading the handler) then runs as on a cold start, and is
    /// reported from now. `function` must have this spare's profile.
    pub fn assign(self, function: Arc<Function>, spec: SpawnSpec<'_>) -> std::io::Result<Environment> {
        let Spare { mut process, id, .. } = self;
        // Its runtime client has started once it asks for its assignment; if it has not
        // yet, the rest of its start is part of this cold start anyway.
        let started = process.slot.asked_assignment().unwrap_or_else(Instant::now);
        let spare_start = started.saturating_duration_since(process.spawned);
        process.lease.assign_code(&spec.task_root)?;
        let log_stream = log_stream_name(&function.version);
        let task_root = process.lease.task_root().to_path_buf();
        let tmp_dir = process.lease.tmp_dir().to_path_buf();
        let api = process.api.clone();
        let mut environment: serde_json::Map<String, serde_json::Value> =
            function.environment.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))).collect();
        for (k, v) in reserved_variables(&function, spec.launcher, &task_root, &tmp_dir, &log_stream, &api) {
            environment.insert(k.to_string(), v.into());
        }
        let answer = serde_json::json!({ "environment": environment, "taskRoot": task_root.to_string_lossy() });
        process.spawned = Instant::now();
        process.slot.assign(Bytes::from(answer.to_string()));
        // The spare's own number names its directories; a retried init starts afresh.
        let respawn = Respawn { id, ..Respawn::from(spec) };
        let mut env = Environment::attach(process, function, respawn, log_stream)?;
        env.spare_start = Some(spare_start);
        Ok(env)
    }
}

impl Environment {
    /// Starts the runtime process for `function`. Returns once the process exists; its
    /// init runs concurrently and the first invocation waits for it.
    pub fn spawn(function: Arc<Function>, spec: SpawnSpec<'_>) -> std::io::Result<Environment> {
        let log_stream = log_stream_name(&function.version);
        Environment::start(function, Respawn::from(spec), log_stream)
    }

    fn start(function: Arc<Function>, respawn: Respawn, log_stream: String) -> std::io::Result<Environment> {
        let lease = respawn.sandbox.prepare(
            &function,
            &respawn.task_root,
            &respawn.launcher,
            &respawn.tmp_root,
            &match respawn.restarts {
                0 => format!("env-{}", respawn.id),
                n => format!("env-{}-{n}", respawn.id),
            },
        )?;
        // The function sees the task root and scratch directory its sandbox user can reach.
        let task_root = lease.task_root().to_path_buf();
        let tmp_dir = lease.tmp_dir().to_path_buf();
        let process = Process::launch(
            lease,
            &respawn.launcher,
            node_memory_args(function.runtime, function.memory_size),
            &task_root,
            Slot::default(),
            &function.environment,
            |api| reserved_variables(&function, &respawn.launcher, &task_root, &tmp_dir, &log_stream, api),
        )?;
        Environment::attach(process, function, respawn, log_stream)
    }

    /// Makes a started process `function`'s environment: its output becomes the log
    /// stream `log_stream`, which opens with INIT_START (unless this is a retried init).
    fn attach(
        process: Process,
        function: Arc<Function>,
        respawn: Respawn,
        log_stream: String,
    ) -> std::io::Result<Environment> {
        let Process { slot, server, lease, exit, proc_status, output, spawned, .. } = process;
        let target = respawn.log_sink.clone().map(|sink| LogTarget {
            sink,
            scope: function.scope.clone(),
            group: function.log_group(),
            stream: log_stream.clone(),
        });
        // A new stream opens with INIT_START; a retried init writes on in the same stream.
        let head = match respawn.restarts {
            0 => vec![init_start_line(function.runtime, &function.scope.region)],
            _ => Vec::new(),
        };
        let logs = match LogPipe::spawn(output, Arc::from(function.name.as_str()), target, head) {
            Ok(l) => l,
            Err(e) => {
                server.abort();
                return Err(e);
            }
        };
        Ok(Environment {
            function,
            slot,
            proc_status,
            resident_peak: std::cell::Cell::new(None),
            exit,
            server,
            logs,
            lease,
            respawn,
            spawned,
            pending_init: Some(spawned),
            init_output: Vec::new(),
            log_stream,
            last_used: spawned,
            spare_start: None,
        })
    }

    /// Runs one invocation. `deadline` bounds the wait; past it, or when the process
    /// dies, the environment is marked not reusable and the caller gets AWS's error.
    pub async fn invoke(
        &mut self,
        request_id: Arc<str>,
        payload: Bytes,
        invoked_arn: Arc<str>,
        tail: bool,
    ) -> (Completed, Option<String>) {
        let started = Instant::now();
        let start = format!("START RequestId: {request_id} Version: {}\n", self.function.version);
        // The first invocation of an environment is its cold start: START waits for the
        // end of init (see `cold_start`). Otherwise the runtime is parked in GET /next
        // and START follows whatever the process wrote before (late lines).
        let cold = match self.pending_init {
            Some(_) => Some(start),
            None => {
                self.logs.platform(vec![start]);
                if tail {
                    self.logs.start_capture();
                }
                None
            }
        };
        let outcome = self.outcome(&request_id, payload, invoked_arn, started, tail, cold).await;
        self.last_used = Instant::now();
        // A cold start's wait for init is reported as Init Duration, not Duration.
        let init_done = self.slot.initialised();
        let duration = self.last_used - init_done.map_or(started, |t| t.max(started));
        let report = self.report_line(&request_id, duration);
        // END and REPORT follow everything the function wrote for this invocation; the
        // caller does not wait for them to be stored.
        self.logs.platform(vec![format!("END RequestId: {request_id}\n"), report.clone()]);
        let log = if tail {
            let output = self.logs.finish_capture();
            let init = std::mem::take(&mut self.init_output);
            Some(log_tail(&init, &request_id, &self.function.version, &output, &report))
        } else {
            None
        };
        self.pending_init = None;
        let (payload, function_error, reusable) = outcome;
        (Completed { payload, function_error, duration, reusable }, log)
    }

    /// Hands the invocation to the runtime and waits for the first of: its answer, the
    /// function's timeout or the runtime's exit (an out-of-memory kill included). On a
    /// cold start (`cold` holds its START line) the invocation is handed over only once
    /// init is over ([`Environment::cold_start`]), and the timeout counts from there.
    /// Returns (payload, function error, reusable).
    async fn outcome(
        &mut self,
        request_id: &Arc<str>,
        payload: Bytes,
        invoked_arn: Arc<str>,
        started: Instant,
        tail: bool,
        cold: Option<String>,
    ) -> (Bytes, bool, bool) {
        let timeout = Duration::from_secs(u64::from(self.function.timeout));
        let (deadline, left) = match cold {
            None => (started + timeout, timeout),
            Some(start) => match self.cold_start(request_id, started, start, tail).await {
                // The runtime's deadline counts from the end of init too.
                Ok(deadline) => (deadline, deadline.saturating_duration_since(Instant::now())),
                Err(outcome) => return outcome,
            },
        };
        let deadline_ms = chrono::Utc::now().timestamp_millis() + i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
        let (reply, mut reply_rx) = oneshot::channel();
        self.slot.deliver(Invocation { request_id: request_id.clone(), payload, deadline_ms, invoked_arn, reply });
        let mut exit = self.exit.clone();
        tokio::select! {
            // A runtime that posts its answer and exits at once (an init error) must
            // be judged by its answer, not by its exit.
            biased;
            r = &mut reply_rx => match r {
                Ok(Reply::Response(body)) => (body, false, true),
                Ok(Reply::Error { body, .. }) => {
                    // An error before init finished is an init error: the runtime exits.
                    let reusable = self.slot.initialised().is_some() && self.exit.borrow().is_none();
                    (body, true, reusable)
                }
                Ok(Reply::TooLarge) => (error_doc("Function.ResponseSizeTooLarge", &format!(
                    "Response payload size exceeded maximum allowed payload size ({} bytes).",
                    portico_model::function::limits::MAX_SYNC_PAYLOAD)), true, true),
                Err(_) => (exit_error(request_id, "runtime closed the invocation"), true, false),
            },
            why = exit.wait_for(|s| s.is_some()) => {
                let why = why.map(|w| w.clone().unwrap_or_default()).unwrap_or_default();
                self.exited(request_id, &why)
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => self.timed_out(request_id),
        }
    }

    /// A cold start, before the invocation is handed over: waits until init is over
    /// (the runtime's first GET /next, or its init error), then places START after
    /// everything the runtime wrote meanwhile, so the stream reads INIT_START, the init
    /// output, START, the invocation's output. Returns when the invocation's timeout
    /// ends (counted from the end of init), or its outcome when init failed: the
    /// runtime exited, or init outlived the init limit twice (as on AWS, an init past
    /// the limit is retried once, as part of this invocation and under the function's
    /// timeout). START is placed in every case, before END.
    async fn cold_start(
        &mut self,
        request_id: &str,
        started: Instant,
        start: String,
        tail: bool,
    ) -> Result<Instant, (Bytes, bool, bool)> {
        let timeout = Duration::from_secs(u64::from(self.function.timeout));
        let mut limit = self.spawned + self.respawn.sandbox.init_timeout();
        let mut retried = false;
        let result = loop {
            let slot = self.slot.clone();
            let mut exit = self.exit.clone();
            tokio::select! {
                // An init error is posted before the runtime exits: it wins.
                biased;
                () = slot.init_over() => break Ok(match (retried, slot.initialised()) {
                    // The retried init counts against the function's timeout.
                    (true, _) => limit,
                    (false, ready) => ready.map_or(started, |t| t.max(started)) + timeout,
                }),
                why = exit.wait_for(|s| s.is_some()) => {
                    let why = why.map(|w| w.clone().unwrap_or_default()).unwrap_or_default();
                    break Err(self.exited(request_id, &why));
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(limit)) => {
                    if retried {
                        break Err(self.timed_out(request_id));
                    }
                    tracing::info!(
                        "{}: init exceeded {:.1} s; retrying it within the invocation",
                        self.function.name,
                        self.respawn.sandbox.init_timeout().as_secs_f64()
                    );
                    retried = true;
                    if let Err(e) = self.restart() {
                        break Err((exit_error(request_id, &e.to_string()), true, false));
                    }
                    limit = Instant::now() + timeout;
                }
            }
        };
        let init_output = self.logs.end_init(start, tail);
        if tail {
            self.init_output = init_output;
        }
        result
    }

    /// The outcome when the runtime exited (or was killed) before answering.
    fn exited(&self, request_id: &str, why: &str) -> (Bytes, bool, bool) {
        // Lambda's own words for a sandbox killed at its memory limit.
        let doc = if self.lease.out_of_memory() {
            error_doc(
                "Runtime.OutOfMemory",
                &format!("RequestId: {request_id} Error: Runtime exited with error: {why}"),
            )
        } else {
            exit_error(request_id, why)
        };
        (doc, true, false)
    }

    /// The outcome of an invocation past the function's timeout.
    fn timed_out(&self, request_id: &str) -> (Bytes, bool, bool) {
        let doc = error_doc(
            "Sandbox.Timedout",
            &format!("RequestId: {request_id} Error: Task timed out after {}.00 seconds", self.function.timeout),
        );
        (doc, true, false)
    }

    /// Replaces the process with a fresh one (same log stream): the old one and
    /// everything it started are killed.
    fn restart(&mut self) -> std::io::Result<()> {
        let mut respawn = self.respawn.clone();
        respawn.restarts += 1;
        let fresh = Environment::start(self.function.clone(), respawn, self.log_stream.clone())?;
        let old = std::mem::replace(self, fresh);
        // The retried init is part of the invocation: no Init Duration for it.
        self.pending_init = None;
        drop(old);
        Ok(())
    }

    /// The REPORT line, ending in `\n` (Init Duration on a cold start), as both the log
    /// stream and the tail show it.
    fn report_line(&self, request_id: &str, duration: Duration) -> String {
        let ms = duration.as_secs_f64() * 1000.0;
        let mut line = format!(
            "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
            duration.as_micros().div_ceil(1000).max(1),
            self.function.memory_size,
            self.max_memory_mb(),
        );
        if let (Some(spawned), Some(ready)) = (self.pending_init, self.slot.initialised()) {
            let init = ready.saturating_duration_since(spawned).as_secs_f64() * 1000.0;
            line.push_str(&format!("Init Duration: {init:.2} ms\t"));
        }
        line.push('\n');
        line
    }

    fn max_memory_mb(&self) -> u64 {
        // The sandbox's measure (cgroup peak or watchdog) covers every process but not
        // file pages another cgroup paid for first (the interpreter's own binary); the
        // runtime's peak resident memory does: report the larger, as Lambda counts both.
        let sandbox = self.lease.max_memory_mb().unwrap_or(0);
        self.peak_resident_kb().map_or(0, |kb| kb.div_ceil(1024)).max(sandbox)
    }

    /// The runtime process's peak resident memory (`VmHWM`), in kB, re-read at most once
    /// per [`RESIDENT_PEAK_EVERY`]: the kernel renders all of `status` for it, which cost
    /// more than the rest of a warm invocation's bookkeeping. Growth in between is still
    /// reported, through the sandbox's peak (read every time, one number).
    fn peak_resident_kb(&self) -> Option<u64> {
        if let Some((at, kb)) = self.resident_peak.get() {
            if at.elapsed() < RESIDENT_PEAK_EVERY {
                return Some(kb);
            }
        }
        let kb = self.read_peak_resident_kb()?;
        self.resident_peak.set(Some((Instant::now(), kb)));
        Some(kb)
    }

    fn read_peak_resident_kb(&self) -> Option<u64> {
        read_status_kb(self.proc_status.as_ref()?, "VmHWM:")
    }

    /// Whether the process is still running.
    pub fn alive(&self) -> bool {
        self.exit.borrow().is_none()
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        // The lease, dropped next, kills the runtime and anything the function started
        // (group, cgroup, uid), waits for them to go and removes the scratch directory.
        self.server.abort();
    }
}

/// The `LogType: Tail` answer: the invocation's log, last 4 KB, as AWS returns it. That
/// is the stream from START to REPORT, and on a cold start what init wrote (`init`)
/// before START too, but not INIT_START: AWS's tail of a failed init shows the init's
/// error output before START, and its INIT_START line is "not visible in the console"
/// (whose test output is this tail).
fn log_tail(init: &[u8], request_id: &str, version: &str, output: &[u8], report: &str) -> String {
    let text = format!(
        "{}START RequestId: {request_id} Version: {version}\n{}END RequestId: {request_id}\n{report}",
        String::from_utf8_lossy(init),
        String::from_utf8_lossy(output)
    );
    let bytes = text.as_bytes();
    let start = bytes.len().saturating_sub(TAIL_BYTES);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn error_doc(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

/// An exit status as Lambda's runtime supervisor (Go's `os.ProcessState`) words it:
/// `exit status 1`, `signal: killed`.
fn exit_reason(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => {
            let name = match sig {
                1 => "hangup",
                2 => "interrupt",
                3 => "quit",
                4 => "illegal instruction",
                5 => "trace/breakpoint trap",
                6 => "aborted",
                7 => "bus error",
                8 => "floating point exception",
                9 => "killed",
                10 => "user defined signal 1",
                11 => "segmentation fault",
                12 => "user defined signal 2",
                13 => "broken pipe",
                14 => "alarm clock",
                15 => "terminated",
                24 => "CPU time limit exceeded",
                25 => "file size limit exceeded",
                31 => "bad system call",
                _ => return format!("signal: signal {sig}"),
            };
            let core = if status.core_dumped() { " (core dumped)" } else { "" };
            format!("signal: {name}{core}")
        }
        _ => status.to_string(),
    }
}

fn exit_error(request_id: &str, why: &str) -> Bytes {
    error_doc("Runtime.ExitError", &format!("RequestId: {request_id} Error: Runtime exited with error: {why}"))
}

/// A process's `/proc/{pid}/status` field `field` (`VmHWM:`), in kB.
fn read_status_kb(status: &std::fs::File, field: &str) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    // status is about 1.5 kB; the memory figures sit in its first half.
    let mut buf = [0u8; 4096];
    let n = status.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(buf.get(..n)?).ok()?;
    let value = text.lines().find_map(|l| l.strip_prefix(field))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Every variable Lambda sets for `f`'s runtime, `api` its Runtime API: the reserved
/// ones, and AWS's defaults that the function's own variables replace (those are left
/// out when the function sets them).
fn reserved_variables(
    f: &Function,
    launcher: &Launcher,
    task_root: &std::path::Path,
    tmp_dir: &std::path::Path,
    log_stream: &str,
    api: &str,
) -> Vec<(&'static str, String)> {
    let runtime_dir = launcher.runtime_dir.to_string_lossy().into_owned();
    let mut vars = vec![
        ("_HANDLER", f.handler.clone()),
        ("AWS_REGION", f.scope.region.clone()),
        ("AWS_DEFAULT_REGION", f.scope.region.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_size.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", f.version.clone()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", f.log_group()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_string()),
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
    ];
    // AWS leaves AWS_EXECUTION_ENV undefined for OS-only runtimes.
    if !f.runtime.is_os_only() {
        vars.push(("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", f.runtime.as_str())));
    }
    for (k, v) in startup_variables(f.runtime, launcher, task_root, tmp_dir, &runtime_dir) {
        if !DEFAULTS.contains(&k) || !f.environment.contains_key(k) {
            vars.push((k, v));
        }
    }
    vars
}

/// Of [`startup_variables`], AWS's defaults, which a function's own variables replace.
const DEFAULTS: &[&str] = &["LANG", "PATH", "LD_LIBRARY_PATH", "NODE_PATH", "PYTHONPATH"];

/// The variables a runtime process needs from its start, which depend on no function
/// beyond its runtime and where its code and scratch directory are (a spare starts with
/// these): the task root, runtime directory, TZ and TMPDIR (reserved), and [`DEFAULTS`].
fn startup_variables(
    runtime: Runtime,
    launcher: &Launcher,
    task_root: &std::path::Path,
    tmp_dir: &std::path::Path,
    runtime_dir: &str,
) -> Vec<(&'static str, String)> {
    let root = task_root.to_string_lossy().into_owned();
    // The interpreter's directory first, as /var/lang/bin on Lambda. An OS-only
    // runtime has no interpreter: its launcher is only the entrypoint's shell.
    let path = match launcher.program.parent().filter(|_| !runtime.is_os_only()) {
        Some(dir) => format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display()),
        None => "/usr/local/bin:/usr/bin:/bin".to_string(),
    };
    // Library paths are AWS's list with Lambda's directories mapped to this environment's.
    let mut vars = vec![
        ("LAMBDA_TASK_ROOT", root.clone()),
        ("LAMBDA_RUNTIME_DIR", runtime_dir.to_string()),
        ("TZ", ":UTC".to_string()),
        ("TMPDIR", tmp_dir.to_string_lossy().into_owned()),
        ("LANG", "en_US.UTF-8".to_string()),
        ("PATH", path),
        ("LD_LIBRARY_PATH", format!("/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{root}:{root}/lib")),
    ];
    match runtime {
        Runtime::Nodejs22 | Runtime::Nodejs20 => {
            vars.push(("NODE_PATH", task_root.join("node_modules").to_string_lossy().into_owned()))
        }
        r if r.python_minor().is_some() => vars.push(("PYTHONPATH", runtime_dir.to_string())),
        _ => {}
    }
    vars
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use portico_model::function::{CodeRef, FunctionState, LastUpdateStatus};
    use portico_model::Scope;

    use super::*;
    use crate::logs::LogEvent;
    use crate::sandbox::{SandboxConfig, TmpStorage};

    #[test]
    fn only_functions_without_startup_variables_can_take_spares() {
        let launcher = |own_client| Launcher {
            program: PathBuf::from("/usr/bin/node"),
            args: Vec::new(),
            runtime_dir: PathBuf::from("/r"),
            note: None,
            self_contained: true,
            own_client,
        };
        let f = function(&[("GREETING", "hi")]);
        let p = Profile::of(&f, &launcher(true)).expect("a plain function takes spares");
        assert_eq!((p.runtime, p.memory_size, p.ephemeral_storage), (f.runtime, 128, 512));
        assert!(Profile::of(&f, &launcher(false)).is_none(), "a package's own bootstrap cannot be a spare");
        for var in
            ["NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "PYTHONHASHSEED", "LD_PRELOAD", "TZ", "LANG", "LC_ALL", "PATH"]
        {
            let g = function(&[(var, "x")]);
            assert!(Profile::of(&g, &launcher(true)).is_none(), "{var}");
        }
    }

    #[test]
    fn init_start_names_the_runtime_version_and_its_arn() {
        let line = init_start_line(Runtime::Nodejs22, "eu-west-3");
        let (version, arn) = line
            .strip_prefix("INIT_START Runtime Version: ")
            .and_then(|l| l.strip_suffix('\n'))
            .and_then(|l| l.split_once("\tRuntime Version ARN: "))
            .expect("INIT_START shape");
        assert_eq!(version, "nodejs:22.v1");
        let hash = arn.strip_prefix("arn:aws:lambda:eu-west-3::runtime:").expect("ARN shape");
        assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{hash}");
        // Deterministic, the region aside; one per runtime.
        assert_eq!(
            runtime_version_arn(Runtime::Nodejs22, "us-east-1"),
            format!("arn:aws:lambda:us-east-1::runtime:{hash}")
        );
        let versions: Vec<String> = Runtime::ALL.iter().map(|r| runtime_version(*r)).collect();
        assert_eq!(
            versions,
            [
                "nodejs:22.v1",
                "nodejs:20.v1",
                "python:3.14.v1",
                "python:3.13.v1",
                "python:3.12.v1",
                "python:3.11.v1",
                "python:3.10.v1",
                "provided:al2023.v1",
                "provided:al2.v1"
            ]
        );
        let arns: std::collections::BTreeSet<String> =
            Runtime::ALL.iter().map(|r| runtime_version_arn(*r, "us-east-1")).collect();
        assert_eq!(arns.len(), Runtime::ALL.len());
    }

    #[test]
    fn the_tail_keeps_the_last_4_kb_of_the_invocations_log() {
        let tail = log_tail(b"", "rid", "$LATEST", b"out\n", "REPORT RequestId: rid\t\n");
        assert_eq!(tail, "START RequestId: rid Version: $LATEST\nout\nEND RequestId: rid\nREPORT RequestId: rid\t\n");
        // A cold start's begins with what init wrote.
        let tail = log_tail(b"init\n", "rid", "$LATEST", b"out\n", "REPORT\n");
        assert_eq!(tail, "init\nSTART RequestId: rid Version: $LATEST\nout\nEND RequestId: rid\nREPORT\n");
        let long = log_tail(b"init\n", "rid", "$LATEST", &[b'x'; 5000], "REPORT\n");
        assert_eq!(long.len(), 4096);
        assert!(long.ends_with("xxEND RequestId: rid\nREPORT\n") && long.starts_with("xx"));
    }

    /// A sink that keeps every message.
    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<String>>);

    impl Collect {
        fn messages(&self) -> Vec<String> {
            self.0.lock().expect("lock").clone()
        }
    }

    impl LogSink for Collect {
        fn append(&self, _scope: &portico_model::Scope, _group: &str, _stream: &str, events: Vec<LogEvent>) {
            self.0.lock().expect("lock").extend(events.into_iter().map(|e| e.message));
        }
    }

    /// A runtime client in a few lines of Python: writes a line during init (after
    /// `INIT_DELAY` seconds; forever when the file `HANG_ONCE` does not exist yet, which
    /// it creates), then per invocation writes `handling {id}` and echoes the event; with
    /// `INIT_ERROR` set it reports an init error and exits instead.
    const RUNTIME: &str = r#"
import http.client, os, sys, time
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
hang = os.environ.get("HANG_ONCE")
if hang and not os.path.exists(hang):
    open(hang, "w").close()
    time.sleep(60)
time.sleep(float(os.environ.get("INIT_DELAY", "0")))
if os.environ.get("LIST_FDS"):
    print("fds " + " ".join(sorted(os.listdir("/proc/self/fd"), key=int)), flush=True)
print("init line", flush=True)
api = http.client.HTTPConnection(host, int(port))
if os.environ.get("INIT_ERROR"):
    api.request("POST", "/2018-06-01/runtime/init/error", body=b'{"errorType":"Runtime.Test","errorMessage":"boom"}')
    api.getresponse().read()
    sys.exit(1)
while True:
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    r = api.getresponse()
    event = r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    print("handling " + rid, flush=True)
    api.request("POST", "/2018-06-01/runtime/invocation/" + rid + "/response", body=event)
    api.getresponse().read()
"#;

    /// A python3 for the test's runtime client: the system's, else the first on PATH.
    fn python() -> PathBuf {
        let path = std::env::var_os("PATH").unwrap_or_default();
        ["/usr/bin", "/usr/local/bin", "/bin"]
            .into_iter()
            .map(PathBuf::from)
            .chain(std::env::split_paths(&path))
            .map(|dir| dir.join("python3"))
            .find(|p| p.is_file())
            .expect("python3 (these tests' runtime client is a Python script)")
    }

    /// A function of the test runtime (shared with the pool's tests).
    pub(crate) fn function(vars: &[(&str, &str)]) -> Arc<Function> {
        Arc::new(Function {
            scope: Scope { account_id: "111122223333".into(), region: "eu-west-3".into() },
            name: "f".into(),
            runtime: Runtime::ProvidedAl2023,
            role: "arn:aws:iam::111122223333:role/r".into(),
            handler: "index.handler".into(),
            description: String::new(),
            timeout: 2,
            memory_size: 128,
            environment: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            architectures: vec![portico_model::function::Architecture::X86_64],
            ephemeral_storage: 512,
            code: CodeRef { sha256_hex: "0".repeat(64), sha256_b64: String::new(), size: 0 },
            last_modified: String::new(),
            revision_id: String::new(),
            state: FunctionState::Active,
            last_update_status: LastUpdateStatus::Successful,
            policy: Vec::new(),
            tags: Default::default(),
            reserved_concurrency: None,
            version: "$LATEST".into(),
            last_version: 0,
            state_reason: None,
        })
    }

    /// An environment running [`RUNTIME`], with its stream collected.
    struct Fixture {
        _dir: tempfile::TempDir,
        sink: Arc<Collect>,
        env: Environment,
    }

    fn start(vars: &[(&str, &str)], init_timeout: Duration) -> Fixture {
        let python = python();
        let dir = tempfile::tempdir().expect("tempdir");
        let task_root = dir.path().join("task");
        std::fs::create_dir_all(&task_root).expect("mkdir");
        let script = dir.path().join("runtime.py");
        std::fs::write(&script, RUNTIME).expect("write");
        let sandbox = Arc::new(Sandbox::new(SandboxConfig {
            isolate_users: false,
            landlock: false,
            cgroups: false,
            root: dir.path().join("sandbox"),
            init_timeout,
            tmp_storage: TmpStorage::Dir,
            ..SandboxConfig::default()
        }));
        let launcher = Launcher {
            program: python,
            args: vec![script.to_string_lossy().into_owned()],
            runtime_dir: dir.path().to_path_buf(),
            note: None,
            self_contained: false,
            own_client: false,
        };
        let sink = Arc::new(Collect::default());
        let mut vars = vars.to_vec();
        let hang = dir.path().join("hung").to_string_lossy().into_owned();
        if vars.iter().any(|(k, _)| *k == "HANG_ONCE") {
            vars.retain(|(k, _)| *k != "HANG_ONCE");
            vars.push(("HANG_ONCE", &hang));
        }
        let env = Environment::spawn(
            function(&vars),
            SpawnSpec {
                launcher: &launcher,
                task_root,
                tmp_root: dir.path().join("tmp"),
                id: 1,
                log_sink: Some(sink.clone()),
                sandbox,
            },
        )
        .expect("spawn");
        Fixture { _dir: dir, sink, env }
    }

    impl Fixture {
        async fn invoke(&mut self, rid: &str, tail: bool) -> (Completed, Option<String>) {
            let done = self.env.invoke(Arc::from(rid), Bytes::from_static(b"{}"), Arc::from("arn"), tail).await;
            self.env.logs.settled();
            done
        }

        /// The stream so far, REPORT lines cut after their request id.
        fn stream(&self) -> Vec<String> {
            self.sink
                .messages()
                .into_iter()
                .map(|m| match m.split_once('\t') {
                    Some((head, _)) if head.starts_with("REPORT ") => head.to_string(),
                    _ => m,
                })
                .collect()
        }
    }

    fn init_start() -> String {
        init_start_line(Runtime::ProvidedAl2023, "eu-west-3")
    }

    #[tokio::test]
    async fn the_runtime_inherits_no_descriptor_of_portico_beyond_its_stdio() {
        // A descriptor Portico inherited without close-on-exec, as from a careless shell.
        #[allow(unsafe_code)]
        // SAFETY: dup takes and returns descriptor numbers; the copy is closed below.
        let leaked = unsafe { libc::dup(2) };
        assert!(leaked > 2);
        let mut fx = start(&[("LIST_FDS", "1")], Duration::from_secs(10));
        let _ = fx.invoke("rid-1", false).await;
        #[allow(unsafe_code)]
        // SAFETY: closes the copy made above, which nothing else uses.
        unsafe {
            libc::close(leaked);
        }
        let line = fx.stream().into_iter().find(|m| m.starts_with("fds ")).expect("the runtime listed its descriptors");
        // stdin, stdout, stderr, and the one listdir itself opens.
        let fds: Vec<&str> = line.trim_end().split(' ').skip(1).collect();
        assert_eq!(fds.len(), 4, "{line}");
        assert!(!fds.contains(&leaked.to_string().as_str()), "{line}");
    }

    #[tokio::test]
    async fn init_output_comes_between_init_start_and_start() {
        // Init outlasts the hand-over of the first invocation.
        let mut fx = start(&[("INIT_DELAY", "0.3")], Duration::from_secs(10));
        let (done, tail) = fx.invoke("rid-1", true).await;
        assert!(!done.function_error && done.reusable, "{:?}", done.payload);
        let report = fx.sink.messages().last().cloned().expect("REPORT");
        assert!(report.contains("\tInit Duration: "), "{report}");
        // The tail is the invocation's log, init output included, INIT_START not.
        assert_eq!(
            tail.as_deref(),
            Some(
                format!("init line\nSTART RequestId: rid-1 Version: $LATEST\nhandling rid-1\nEND RequestId: rid-1\n{report}")
                    .as_str()
            )
        );
        // Warm: no INIT_START, no init.
        let (done, tail) = fx.invoke("rid-2", true).await;
        assert!(!done.function_error && done.reusable, "{:?}", done.payload);
        let tail = tail.expect("tail");
        assert!(
            tail.starts_with("START RequestId: rid-2 Version: $LATEST\nhandling rid-2\nEND RequestId: rid-2\nREPORT "),
            "{tail}"
        );
        assert_eq!(
            fx.stream(),
            [
                init_start(),
                "init line\n".into(),
                "START RequestId: rid-1 Version: $LATEST\n".into(),
                "handling rid-1\n".into(),
                "END RequestId: rid-1\n".into(),
                "REPORT RequestId: rid-1".into(),
                "START RequestId: rid-2 Version: $LATEST\n".into(),
                "handling rid-2\n".into(),
                "END RequestId: rid-2\n".into(),
                "REPORT RequestId: rid-2".into(),
            ]
        );
    }

    #[tokio::test]
    async fn an_init_error_answers_the_invocation_after_start() {
        let mut fx = start(&[("INIT_ERROR", "1")], Duration::from_secs(10));
        let (done, tail) = fx.invoke("rid-1", true).await;
        assert!(done.function_error && !done.reusable);
        let tail = tail.expect("tail");
        assert!(
            tail.starts_with("init line\nSTART RequestId: rid-1 Version: $LATEST\nEND RequestId: rid-1\nREPORT "),
            "{tail}"
        );
        assert_eq!(&done.payload[..], br#"{"errorType":"Runtime.Test","errorMessage":"boom"}"#);
        assert_eq!(
            fx.stream(),
            [
                init_start(),
                "init line\n".into(),
                "START RequestId: rid-1 Version: $LATEST\n".into(),
                "END RequestId: rid-1\n".into(),
                "REPORT RequestId: rid-1".into(),
            ]
        );
    }

    #[tokio::test]
    async fn an_init_past_the_limit_is_retried_once_in_the_same_stream() {
        let mut fx = start(&[("HANG_ONCE", "")], Duration::from_millis(300));
        let (done, _) = fx.invoke("rid-1", false).await;
        assert!(!done.function_error && done.reusable, "{:?}", done.payload);
        assert_eq!(
            fx.stream(),
            [
                init_start(),
                "init line\n".into(),
                "START RequestId: rid-1 Version: $LATEST\n".into(),
                "handling rid-1\n".into(),
                "END RequestId: rid-1\n".into(),
                "REPORT RequestId: rid-1".into(),
            ]
        );
    }
}
