//! One execution environment: a runtime process, its private Runtime API listener, its
//! output pipe and its scratch directory. It serves one invocation at a time.
//!
//! The process is started in its own process group with a clean environment (Lambda's
//! variables and the function's, nothing of the host's); dropping the environment kills
//! the whole group, so nothing a function starts outlives it.

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
use crate::logs::LogPipe;
use crate::runtime_api::{self, Invocation, Reply, Slot};

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
    pgid: rustix::process::Pid,
    exit: watch::Receiver<Option<String>>,
    server: JoinHandle<()>,
    logs: LogPipe,
    tmp_dir: PathBuf,
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
}

fn log_stream_name() -> String {
    format!("{}/[$LATEST]{}", chrono::Utc::now().format("%Y/%m/%d"), uuid::Uuid::new_v4().simple())
}

impl Environment {
    /// Starts the runtime process for `function`. Returns once the process exists; its
    /// init runs concurrently and the first invocation waits for it.
    pub fn spawn(function: Arc<Function>, spec: SpawnSpec<'_>) -> std::io::Result<Environment> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let api_addr = std_listener.local_addr()?;
        let listener = TcpListener::from_std(std_listener)?;
        let slot = Arc::new(Slot::default());
        let server = tokio::spawn(runtime_api::serve(listener, slot.clone()));

        let tmp_dir = spec.tmp_root.join(format!("env-{}", spec.id));
        std::fs::create_dir_all(&tmp_dir)?;
        let log_stream = log_stream_name();

        let (reader, writer) = std::io::pipe()?;
        let writer2 = writer.try_clone()?;
        let mut cmd = tokio::process::Command::new(&spec.launcher.program);
        cmd.args(&spec.launcher.args)
            .env_clear()
            .envs(&function.environment)
            .envs(reserved_variables(&function, &spec, &tmp_dir, &log_stream, &api_addr.to_string()))
            .current_dir(&spec.task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(writer2))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                let _ = std::fs::remove_dir_all(&tmp_dir);
                return Err(e);
            }
        };
        // Drop our copies of the write end (inside `cmd`) so EOF arrives when the process exits.
        drop(cmd);
        let pid = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw);
        let Some(pgid) = pid else {
            server.abort();
            return Err(std::io::Error::other("runtime process exited at once"));
        };
        let logs = LogPipe::spawn(reader, Arc::from(function.name.as_str()))?;
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await;
            let why = match status {
                Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                    (Some(c), _) => format!("exit status {c}"),
                    (None, Some(sig)) => format!("signal: {sig}"),
                    _ => s.to_string(),
                },
                Err(e) => e.to_string(),
            };
            let _ = exit_tx.send(Some(why));
        });
        let now = Instant::now();
        Ok(Environment {
            function,
            slot,
            pgid,
            exit,
            server,
            logs,
            tmp_dir,
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
        let deadline = tokio::time::Instant::from_std(started + timeout);
        let deadline_ms =
            chrono::Utc::now().timestamp_millis() + i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        if tail {
            self.logs.start_capture();
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        self.slot.deliver(Invocation {
            request_id: request_id.clone(),
            payload,
            deadline_ms,
            invoked_arn,
            reply: reply_tx,
        });
        let mut exit = self.exit.clone();
        let outcome = tokio::select! {
            r = reply_rx => match r {
                Ok(Reply::Response(body)) => (body, false, true),
                Ok(Reply::Error { body, .. }) => {
                    // An error before init finished is an init error: the runtime exits.
                    let reusable = self.slot.initialised().is_some() && self.exit.borrow().is_none();
                    (body, true, reusable)
                }
                Ok(Reply::TooLarge) => (error_doc("Function.ResponseSizeTooLarge", &format!(
                    "Response payload size exceeded maximum allowed payload size ({} bytes).",
                    portico_model::function::limits::MAX_SYNC_PAYLOAD)), true, true),
                Err(_) => (exit_error(&request_id, "runtime closed the invocation"), true, false),
            },
            _ = tokio::time::sleep_until(deadline) => (error_doc("Sandbox.Timedout", &format!(
                "RequestId: {request_id} Error: Task timed out after {}.00 seconds",
                self.function.timeout)), true, false),
            why = exit.wait_for(|s| s.is_some()) => {
                let why = why.map(|w| w.clone().unwrap_or_default()).unwrap_or_default();
                (exit_error(&request_id, &why), true, false)
            }
        };
        self.last_used = Instant::now();
        // A cold start's wait for init is reported as Init Duration, not Duration.
        let init_done = self.slot.initialised();
        let duration = self.last_used - init_done.map_or(started, |t| t.max(started));
        let log = if tail {
            let output = self.logs.finish_capture().await;
            Some(self.log_tail(&request_id, &output, duration))
        } else {
            None
        };
        self.pending_init = None;
        let (payload, function_error, reusable) = outcome;
        (Completed { payload, function_error, duration, reusable }, log)
    }

    fn log_tail(&self, request_id: &str, output: &[u8], duration: Duration) -> String {
        let ms = duration.as_secs_f64() * 1000.0;
        let mut text = format!(
            "START RequestId: {request_id} Version: $LATEST\n{}END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
            String::from_utf8_lossy(output),
            duration.as_micros().div_ceil(1000).max(1),
            self.function.memory_size,
            self.max_memory_mb(),
        );
        if let (Some(spawned), Some(ready)) = (self.pending_init, self.slot.initialised()) {
            let init = ready.saturating_duration_since(spawned).as_secs_f64() * 1000.0;
            text.push_str(&format!("Init Duration: {init:.2} ms\t"));
        }
        text.push('\n');
        // AWS returns the last 4 KB of the log.
        let bytes = text.as_bytes();
        let start = bytes.len().saturating_sub(4096);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    fn max_memory_mb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pgid.as_raw_nonzero()));
        status
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kb| kb.div_ceil(1024))
    }

    /// Whether the process is still running.
    pub fn alive(&self) -> bool {
        self.exit.borrow().is_none()
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        // Kill the whole group: the runtime and anything the function started.
        let _ = rustix::process::kill_process_group(self.pgid, rustix::process::Signal::KILL);
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.tmp_dir);
    }
}

fn error_doc(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
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
    let root = spec.task_root.to_string_lossy().into_owned();
    let path = match spec.launcher.program.parent() {
        Some(dir) => format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display()),
        None => "/usr/local/bin:/usr/bin:/bin".to_string(),
    };
    vec![
        ("_HANDLER", f.handler.clone()),
        ("AWS_REGION", f.scope.region.clone()),
        ("AWS_DEFAULT_REGION", f.scope.region.clone()),
        ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", f.runtime.as_str())),
        ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_size.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", f.log_group()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_string()),
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("LAMBDA_TASK_ROOT", root),
        ("LAMBDA_RUNTIME_DIR", spec.launcher.runtime_dir.to_string_lossy().into_owned()),
        ("TZ", ":UTC".to_string()),
        ("LANG", "en_US.UTF-8".to_string()),
        ("PATH", path),
        ("TMPDIR", tmp_dir.to_string_lossy().into_owned()),
        ("NODE_PATH", spec.task_root.join("node_modules").to_string_lossy().into_owned()),
    ]
}
