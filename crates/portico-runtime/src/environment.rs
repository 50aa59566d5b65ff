//! One execution environment: a runtime process, its private Runtime API listener, its
//! output pipe and its scratch directory. It serves one invocation at a time.
//!
//! The process is started in its own process group with a clean environment (Lambda's
//! variables and the function's, nothing of the host's), inside the sandbox's lease
//! (its own user, Landlock, cgroup and limits where the host allows them: see
//! `sandbox.rs`); dropping the environment kills every process of it, so nothing a
//! function starts outlives it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use portico_model::Function;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::launch::Launcher;
use crate::logs::{LogPipe, LogSink, LogTarget};
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
    exit: watch::Receiver<Option<String>>,
    server: JoinHandle<()>,
    logs: LogPipe,
    /// Its share of the sandbox: user, scratch directory, cgroup, watchdog.
    lease: Lease,
    /// How to start it again (an init past the init limit is retried).
    respawn: Respawn,
    /// When the runtime process started.
    spawned: Instant,
    /// Init duration, reported on the first invocation only.
    pending_init: Option<Instant>,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`.
    pub log_stream: String,
    /// When it last finished an invocation.
    pub last_used: Instant,
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

/// The V8 heap limits Lambda's Node.js bootstrap derives from MemorySize, so a function
/// runs out of heap where it would on Lambda: a tenth of the memory for the young
/// generation (two semi-spaces), the rest for the old one.
fn node_memory_args(function: &Function) -> Vec<String> {
    if !matches!(function.runtime, portico_model::Runtime::Nodejs22 | portico_model::Runtime::Nodejs20) {
        return Vec::new();
    }
    let new_space = function.memory_size / 10;
    vec![
        "--expose-gc".into(),
        "--max-http-header-size=81920".into(),
        format!("--max-semi-space-size={}", new_space / 2),
        format!("--max-old-space-size={}", function.memory_size - new_space),
    ]
}

fn log_stream_name(version: &str) -> String {
    format!("{}/[{version}]{}", chrono::Utc::now().format("%Y/%m/%d"), uuid::Uuid::new_v4().simple())
}

impl Environment {
    /// Starts the runtime process for `function`. Returns once the process exists; its
    /// init runs concurrently and the first invocation waits for it.
    pub fn spawn(function: Arc<Function>, spec: SpawnSpec<'_>) -> std::io::Result<Environment> {
        let respawn = Respawn {
            launcher: spec.launcher.clone(),
            task_root: spec.task_root,
            tmp_root: spec.tmp_root,
            id: spec.id,
            restarts: 0,
            log_sink: spec.log_sink,
            sandbox: spec.sandbox,
        };
        Environment::start(function.clone(), respawn, log_stream_name(&function.version))
    }

    fn start(function: Arc<Function>, respawn: Respawn, log_stream: String) -> std::io::Result<Environment> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let api_addr = std_listener.local_addr()?;
        let listener = TcpListener::from_std(std_listener)?;
        let slot = Arc::new(Slot::default());

        let mut lease = respawn.sandbox.prepare(
            &function,
            &respawn.task_root,
            &respawn.launcher,
            &respawn.tmp_root,
            &match respawn.restarts {
                0 => format!("env-{}", respawn.id),
                n => format!("env-{}-{n}", respawn.id),
            },
        )?;
        let server = tokio::spawn(runtime_api::serve(listener, slot.clone(), lease.admit()));
        // The function sees the task root and scratch directory its sandbox user can reach.
        let spec = SpawnSpec {
            launcher: &respawn.launcher,
            task_root: lease.task_root().to_path_buf(),
            tmp_root: respawn.tmp_root.clone(),
            id: respawn.id,
            log_sink: respawn.log_sink.clone(),
            sandbox: respawn.sandbox.clone(),
        };
        let tmp_dir = lease.tmp_dir().to_path_buf();

        let (reader, writer) = std::io::pipe()?;
        let writer2 = writer.try_clone()?;
        let mut cmd = tokio::process::Command::new(lease.program());
        cmd.args(node_memory_args(&function))
            .args(&spec.launcher.args)
            .env_clear()
            .envs(&function.environment)
            .envs(reserved_variables(&function, &spec, &tmp_dir, &log_stream, &api_addr.to_string()))
            .current_dir(&spec.task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(writer2))
            .process_group(0)
            .kill_on_drop(true);
        let started = lease.apply(&mut cmd).and_then(|()| cmd.spawn());
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
        let proc_status = std::fs::File::open(format!("/proc/{}/status", pgid.as_raw_nonzero())).ok();
        let spec = &respawn;
        let target = spec.log_sink.clone().map(|sink| LogTarget {
            sink,
            scope: function.scope.clone(),
            group: function.log_group(),
            stream: log_stream.clone(),
        });
        let logs = LogPipe::spawn(reader, Arc::from(function.name.as_str()), target)?;
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await;
            let why = match status {
                Ok(s) => exit_reason(s),
                Err(e) => e.to_string(),
            };
            let _ = exit_tx.send(Some(why));
        });
        let now = Instant::now();
        Ok(Environment {
            function,
            slot,
            proc_status,
            exit,
            server,
            logs,
            lease,
            respawn,
            spawned: now,
            pending_init: Some(now),
            log_stream,
            last_used: now,
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
        let timeout = Duration::from_secs(u64::from(self.function.timeout));
        let started = Instant::now();
        let deadline_ms =
            chrono::Utc::now().timestamp_millis() + i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        // START follows whatever the process wrote before (init output, late lines).
        self.logs
            .platform_placed(vec![format!("START RequestId: {request_id} Version: {}\n", self.function.version)])
            .await;
        if tail {
            self.logs.start_capture();
        }
        let outcome = self.outcome(&request_id, payload, invoked_arn, deadline_ms, started, tail).await;
        self.last_used = Instant::now();
        // A cold start's wait for init is reported as Init Duration, not Duration.
        let init_done = self.slot.initialised();
        let duration = self.last_used - init_done.map_or(started, |t| t.max(started));
        let report = self.report_line(&request_id, duration);
        // END and REPORT follow everything the function wrote for this invocation; the
        // caller does not wait for them to be stored.
        self.logs.platform(vec![format!("END RequestId: {request_id}\n"), report.clone()]);
        let log = if tail {
            let output = self.logs.finish_capture().await;
            Some(log_tail(&request_id, &self.function.version, &output, &report))
        } else {
            None
        };
        self.pending_init = None;
        let (payload, function_error, reusable) = outcome;
        (Completed { payload, function_error, duration, reusable }, log)
    }

    /// Hands the invocation to the runtime and waits for the first of: its answer, the
    /// function's timeout (counted from the end of init), the runtime's exit (an
    /// out-of-memory kill included) or, on a cold start, the init limit. As on AWS, an
    /// init past the limit is retried once, as part of this invocation and under the
    /// function's timeout. Returns (payload, function error, reusable).
    async fn outcome(
        &mut self,
        request_id: &Arc<str>,
        payload: Bytes,
        invoked_arn: Arc<str>,
        deadline_ms: i64,
        started: Instant,
        tail: bool,
    ) -> (Bytes, bool, bool) {
        /// How often a cold start whose init outlives the function's timeout mark looks
        /// whether init has finished (its timeout then counts from there).
        const INIT_POLL: Duration = Duration::from_millis(20);
        let timeout = Duration::from_secs(u64::from(self.function.timeout));
        let deliver = |slot: &Slot, payload: Bytes| {
            let (reply, rx) = oneshot::channel();
            let inv = Invocation {
                request_id: request_id.clone(),
                payload,
                deadline_ms,
                invoked_arn: invoked_arn.clone(),
                reply,
            };
            slot.deliver(inv);
            rx
        };
        let mut reply_rx = deliver(&self.slot, payload.clone());
        let init_limit = self.spawned + self.respawn.sandbox.init_timeout();
        let mut in_init = self.slot.initialised().is_none();
        let mut deadline = if in_init { init_limit.min(started + timeout) } else { started + timeout };
        let mut retried = false;
        loop {
            let mut exit = self.exit.clone();
            tokio::select! {
                // A runtime that posts its answer and exits at once (an init error) must
                // be judged by its answer, not by its exit.
                biased;
                r = &mut reply_rx => return match r {
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
                    // Lambda's own words for a sandbox killed at its memory limit.
                    let doc = if self.lease.out_of_memory() {
                        error_doc("Runtime.OutOfMemory", &format!(
                            "RequestId: {request_id} Error: Runtime exited with error: {why}"))
                    } else {
                        exit_error(request_id, &why)
                    };
                    return (doc, true, false);
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    let now = Instant::now();
                    if in_init {
                        match self.slot.initialised() {
                            Some(ready) => {
                                in_init = false;
                                deadline = ready.max(started) + timeout;
                                if deadline > now {
                                    continue;
                                }
                            }
                            None if now < init_limit => {
                                deadline = init_limit.min(now + INIT_POLL);
                                continue;
                            }
                            None if !retried => {
                                tracing::info!(
                                    "{}: init exceeded {:.1} s; retrying it within the invocation",
                                    self.function.name,
                                    self.respawn.sandbox.init_timeout().as_secs_f64()
                                );
                                retried = true;
                                in_init = false;
                                if let Err(e) = self.restart() {
                                    return (exit_error(request_id, &e.to_string()), true, false);
                                }
                                if tail {
                                    self.logs.start_capture();
                                }
                                reply_rx = deliver(&self.slot, payload.clone());
                                deadline = Instant::now() + timeout;
                                continue;
                            }
                            None => {}
                        }
                    }
                    return (error_doc("Sandbox.Timedout", &format!(
                        "RequestId: {request_id} Error: Task timed out after {}.00 seconds",
                        self.function.timeout)), true, false);
                }
            }
        }
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

    /// The runtime process's peak resident memory (`VmHWM`), in kB.
    fn peak_resident_kb(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        // status is about 1.5 kB; VmHWM sits in its first half.
        let mut buf = [0u8; 4096];
        let n = self.proc_status.as_ref()?.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(buf.get(..n)?).ok()?;
        let value = text.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
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

/// The `LogType: Tail` answer: the invocation's log, last 4 KB (as AWS returns).
fn log_tail(request_id: &str, version: &str, output: &[u8], report: &str) -> String {
    let text = format!(
        "START RequestId: {request_id} Version: {version}\n{}END RequestId: {request_id}\n{report}",
        String::from_utf8_lossy(output)
    );
    let bytes = text.as_bytes();
    let start = bytes.len().saturating_sub(4096);
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

fn reserved_variables(
    f: &Function,
    spec: &SpawnSpec<'_>,
    tmp_dir: &std::path::Path,
    log_stream: &str,
    api: &str,
) -> Vec<(&'static str, String)> {
    use portico_model::Runtime;
    let root = spec.task_root.to_string_lossy().into_owned();
    let runtime_dir = spec.launcher.runtime_dir.to_string_lossy().into_owned();
    // The interpreter's directory first, as /var/lang/bin on Lambda. An OS-only
    // runtime has no interpreter: its launcher is only the entrypoint's shell.
    let path = match spec.launcher.program.parent().filter(|_| !f.runtime.is_os_only()) {
        Some(dir) => format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display()),
        None => "/usr/local/bin:/usr/bin:/bin".to_string(),
    };
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
        ("LAMBDA_TASK_ROOT", root.clone()),
        ("LAMBDA_RUNTIME_DIR", runtime_dir.clone()),
        ("TZ", ":UTC".to_string()),
        ("TMPDIR", tmp_dir.to_string_lossy().into_owned()),
    ];
    // AWS leaves AWS_EXECUTION_ENV undefined for OS-only runtimes.
    if !f.runtime.is_os_only() {
        vars.push(("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", f.runtime.as_str())));
    }
    // Not reserved: AWS's defaults, which the function's own variables replace. Library
    // paths are AWS's list with Lambda's directories mapped to this environment's.
    let mut defaults = vec![
        ("LANG", "en_US.UTF-8".to_string()),
        ("PATH", path),
        ("LD_LIBRARY_PATH", format!("/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{root}:{root}/lib")),
    ];
    match f.runtime {
        Runtime::Nodejs22 | Runtime::Nodejs20 => {
            defaults.push(("NODE_PATH", spec.task_root.join("node_modules").to_string_lossy().into_owned()))
        }
        r if r.python_minor().is_some() => defaults.push(("PYTHONPATH", runtime_dir)),
        _ => {}
    }
    vars.extend(defaults.into_iter().filter(|(k, _)| !f.environment.contains_key(*k)));
    vars
}
