//! Capture of a runtime process's stdout and stderr (one pipe, as on Lambda), line by
//! line, into the environment's log stream.
//!
//! Runtimes write their log records synchronously before posting a response, so when
//! an invocation completes its output is already in the pipe. A flush
//! ([`LogPipe::platform`], [`LogPipe::finish_capture`]) reads the pipe dry without
//! waiting, so an invocation's lines always precede its `END` line, and its log tail is
//! complete, without any sleep or polling.
//!
//! The pipe and the stream's pending lines sit behind one lock: a background task reads
//! what the process writes between invocations, and a flush reads the rest on the
//! invoking task itself, with no hand-over to another task (it is on the path of every
//! invocation). So function lines and platform lines (`INIT_START`, `START`, `END`,
//! `REPORT`) reach the [`LogSink`] in the order they happened.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use portico_model::Scope;
use tokio::net::unix::pipe;

/// Largest line kept as one event (CloudWatch's event limit is 256 KB); longer output
/// is split.
const MAX_LINE: usize = 256 * 1024;

/// Most reads (of 16 KB) a flush makes before it lets the invocation go on.
const MAX_DRAIN_READS: usize = 256;

/// How much of an invocation's log `LogType: Tail` returns (its last 4 KB, as AWS).
pub(crate) const TAIL_BYTES: usize = 4096;

/// One log event: a line of the function's output, or a platform line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// When it was written (ms since the epoch).
    pub timestamp_ms: i64,
    /// The message as CloudWatch shows it: the line with its `\n`.
    pub message: String,
}

/// Where environments' log events go (Portico's durable log store).
pub trait LogSink: Send + Sync + fmt::Debug + 'static {
    /// Appends `events` to `stream` in `group` of `scope`. Called on the invocation
    /// path: it must not block.
    fn append(&self, scope: &Scope, group: &str, stream: &str, events: Vec<LogEvent>);
}

/// The log stream an environment writes to.
#[derive(Debug, Clone)]
pub struct LogTarget {
    /// Where events go.
    pub sink: Arc<dyn LogSink>,
    /// Account and region of the function.
    pub scope: Scope,
    /// `/aws/lambda/{name}`.
    pub group: String,
    /// `YYYY/MM/DD/[$LATEST]{hex}`.
    pub stream: String,
}

/// The reading end of an environment's output.
#[derive(Debug, Clone)]
pub struct LogPipe {
    shared: Arc<Mutex<Reader>>,
    /// Whether events are kept (a sink exists).
    kept: bool,
}

/// Output collected for a `LogType: Tail` answer.
#[derive(Debug)]
struct Capture {
    /// Output is being collected.
    active: bool,
    /// The process is in its init (from its start until [`LogPipe::end_init`]): only
    /// the last [`TAIL_BYTES`] are kept, for the cold start's tail.
    init: bool,
    bytes: Vec<u8>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The message CloudWatch shows for one line: runtimes replace the newlines inside a
/// record with `\r` to keep it one line (Node's console does); the stored event has them
/// back, and ends with `\n` as Lambda's events do.
fn message(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let mut m = text.replace('\r', "\n");
    m.push('\n');
    m
}

impl LogPipe {
    /// Starts the background reader of `reader`; `function` names the source in
    /// Portico's own log; `target`, when given, receives every line as an event, after
    /// `head` (platform lines that open the stream, such as `INIT_START`, each ending in
    /// `\n`): those come first even when the process wrote before this is called.
    pub fn spawn(
        reader: io::PipeReader,
        function: Arc<str>,
        target: Option<LogTarget>,
        head: Vec<String>,
    ) -> io::Result<LogPipe> {
        let fd: std::os::fd::OwnedFd = reader.into();
        let pipe = Arc::new(pipe::Receiver::from_owned_fd(fd)?);
        let kept = target.is_some();
        let mut reader = Reader {
            pipe: pipe.clone(),
            open: true,
            buf: vec![0u8; 16 * 1024],
            capture: Capture { active: true, init: true, bytes: Vec::new() },
            function,
            target,
            line: Vec::new(),
            pending: Vec::new(),
        };
        if kept {
            let ts = now_ms();
            reader.pending.extend(head.into_iter().map(|message| LogEvent { timestamp_ms: ts, message }));
        }
        // The stream's head, before anything read.
        reader.emit();
        let shared = Arc::new(Mutex::new(reader));
        tokio::spawn(read_in_background(pipe, shared.clone()));
        Ok(LogPipe { shared, kept })
    }

    fn lock(&self) -> MutexGuard<'_, Reader> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a cold start's init: reads the pipe dry, places `start` (its START line)
    /// after everything init wrote, and returns what init wrote (its last
    /// [`TAIL_BYTES`]) when `tail`: a cold start's `LogType: Tail` begins with it, as on
    /// AWS. From here on output is collected when `tail`, else not.
    pub fn end_init(&self, start: String, tail: bool) -> Vec<u8> {
        let mut r = self.lock();
        if self.kept || tail {
            r.flush(vec![start]);
        }
        let c = &mut r.capture;
        c.init = false;
        c.active = tail;
        if tail {
            std::mem::take(&mut c.bytes)
        } else {
            c.bytes = Vec::new();
            Vec::new()
        }
    }

    /// Starts collecting output (for a `LogType: Tail` invocation).
    pub fn start_capture(&self) {
        let mut r = self.lock();
        r.capture.active = true;
        r.capture.bytes.clear();
    }

    /// Reads whatever the process has written so far, then stops collecting and
    /// returns what was collected.
    pub fn finish_capture(&self) -> Vec<u8> {
        let mut r = self.lock();
        r.flush(Vec::new());
        r.capture.active = false;
        std::mem::take(&mut r.capture.bytes)
    }

    /// Appends platform lines (`START`, `END`, `REPORT`; each ending in `\n`) to the
    /// stream after everything the process has written so far; what it writes
    /// afterwards comes after them. Does nothing when no sink keeps events.
    pub fn platform(&self, lines: Vec<String>) {
        if self.kept {
            self.lock().flush(lines);
        }
    }

    /// Hands everything the process wrote so far to the sink (only tests need it).
    #[cfg(test)]
    pub fn settled(&self) {
        self.lock().flush(Vec::new());
    }
}

/// Reads what the process writes between flushes, as it comes, until the pipe closes.
async fn read_in_background(pipe: Arc<pipe::Receiver>, shared: Arc<Mutex<Reader>>) {
    loop {
        let open = pipe.readable().await.is_ok() && {
            let mut r = shared.lock().unwrap_or_else(|e| e.into_inner());
            r.read_available()
        };
        if !open {
            let mut r = shared.lock().unwrap_or_else(|e| e.into_inner());
            r.close();
            return;
        }
    }
}

/// The pipe's reader and the stream's state.
struct Reader {
    pipe: Arc<pipe::Receiver>,
    /// The pipe has not reached its end.
    open: bool,
    buf: Vec<u8>,
    capture: Capture,
    function: Arc<str>,
    target: Option<LogTarget>,
    /// The line being read.
    line: Vec<u8>,
    /// Events read but not yet handed to the sink.
    pending: Vec<LogEvent>,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").field("function", &self.function).field("open", &self.open).finish_non_exhaustive()
    }
}

impl Reader {
    /// One read, when tokio's reactor says the pipe is readable; whether it is still open.
    fn read_available(&mut self) -> bool {
        if !self.open {
            return false;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let open = match self.pipe.try_read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.absorb(&buf[..n]);
                true
            }
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
        self.buf = buf;
        self.emit();
        open
    }

    /// The pipe reached its end (the process is gone): its last partial line is a line.
    fn close(&mut self) {
        self.open = false;
        if !self.line.is_empty() {
            self.end_line();
        }
        self.emit();
    }

    /// Empties the pipe without waiting (everything written before the runtime posted
    /// its answer is already there), then appends `platform`. The reads go to the fd
    /// itself: tokio's `try_read` answers WouldBlock until its reactor has seen the
    /// readiness event, which may not have happened yet. Bounded, so a process that
    /// never stops writing cannot hold up the invocation; the rest is read as usual.
    fn flush(&mut self, platform: Vec<String>) {
        if self.open {
            let mut buf = std::mem::take(&mut self.buf);
            for _ in 0..MAX_DRAIN_READS {
                match rustix::io::read(&*self.pipe, &mut buf[..]) {
                    Ok(0) => break,
                    Ok(n) => self.absorb(&buf[..n]),
                    Err(_) => break,
                }
            }
            self.buf = buf;
        }
        // A partial line belongs before the platform lines that follow it.
        if !self.line.is_empty() {
            self.end_line();
        }
        if self.target.is_some() {
            let ts = now_ms();
            self.pending.extend(platform.into_iter().map(|message| LogEvent { timestamp_ms: ts, message }));
        }
        self.emit();
    }

    fn absorb(&mut self, chunk: &[u8]) {
        let c = &mut self.capture;
        if c.active {
            c.bytes.extend_from_slice(chunk);
            if c.init && c.bytes.len() > 2 * TAIL_BYTES {
                let cut = c.bytes.len() - TAIL_BYTES;
                c.bytes.drain(..cut);
            }
        }
        for &b in chunk {
            if b == b'\n' || self.line.len() >= MAX_LINE {
                self.end_line();
            }
            if b != b'\n' {
                self.line.push(b);
            }
        }
    }

    /// Ends the current line as an event.
    fn end_line(&mut self) {
        tracing::info!(target: "portico::function", function = %self.function, "{}", String::from_utf8_lossy(&self.line));
        if self.target.is_some() {
            self.pending.push(LogEvent { timestamp_ms: now_ms(), message: message(&self.line) });
        }
        self.line.clear();
    }

    fn emit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(t) = &self.target {
            t.sink.append(&t.scope, &t.group, &t.stream, std::mem::take(&mut self.pending));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<(String, String, String)>>);

    impl LogSink for Collect {
        fn append(&self, _scope: &Scope, group: &str, stream: &str, events: Vec<LogEvent>) {
            let mut v = self.0.lock().expect("lock");
            v.extend(events.into_iter().map(|e| (group.to_string(), stream.to_string(), e.message)));
        }
    }

    #[test]
    fn messages_restore_newlines_and_end_with_one() {
        assert_eq!(message(b"a\rb\rc"), "a\nb\nc\n");
        assert_eq!(message(b"crlf\r"), "crlf\n");
        assert_eq!(message(b""), "\n");
        assert_eq!(message(b"bad \xff utf8"), "bad \u{fffd} utf8\n");
    }

    #[tokio::test]
    async fn lines_then_platform_lines_in_order() {
        let sink = Arc::new(Collect::default());
        let (reader, mut writer) = io::pipe().expect("pipe");
        let target = LogTarget {
            sink: sink.clone(),
            scope: Scope { account_id: "111122223333".into(), region: "us-east-1".into() },
            group: "/aws/lambda/f".into(),
            stream: "s".into(),
        };
        let pipe = LogPipe::spawn(reader, Arc::from("f"), Some(target), Vec::new()).expect("spawn");
        pipe.platform(vec!["START\n".into()]);
        pipe.start_capture();
        io::Write::write_all(&mut writer, b"one\ntwo\rlines\npartial").expect("write");
        pipe.platform(vec!["END\n".into(), "REPORT\n".into()]);
        let tail = pipe.finish_capture();
        assert_eq!(tail, b"one\ntwo\rlines\npartial");
        drop(writer);
        let got: Vec<String> = sink.0.lock().expect("lock").iter().map(|(_, _, m)| m.clone()).collect();
        assert_eq!(got, ["START\n", "one\n", "two\nlines\n", "partial\n", "END\n", "REPORT\n"]);
        assert!(sink.0.lock().expect("lock").iter().all(|(g, s, _)| g == "/aws/lambda/f" && s == "s"));
    }

    #[tokio::test]
    async fn platform_lines_after_the_process_is_gone() {
        let sink = Arc::new(Collect::default());
        let (reader, mut writer) = io::pipe().expect("pipe");
        let target = LogTarget {
            sink: sink.clone(),
            scope: Scope { account_id: "111122223333".into(), region: "us-east-1".into() },
            group: "g".into(),
            stream: "s".into(),
        };
        let pipe = LogPipe::spawn(reader, Arc::from("f"), Some(target), Vec::new()).expect("spawn");
        io::Write::write_all(&mut writer, b"last words").expect("write");
        drop(writer);
        // Let the reader see EOF.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        pipe.platform(vec!["END\n".into()]);
        pipe.settled();
        let got: Vec<String> = sink.0.lock().expect("lock").iter().map(|(_, _, m)| m.clone()).collect();
        assert_eq!(got, ["last words\n", "END\n"]);
    }

    #[tokio::test]
    async fn the_head_opens_the_stream_before_what_the_process_wrote() {
        let sink = Arc::new(Collect::default());
        let (reader, mut writer) = io::pipe().expect("pipe");
        // The process writes before the reader exists (it starts first).
        io::Write::write_all(&mut writer, b"init line\n").expect("write");
        let target = LogTarget {
            sink: sink.clone(),
            scope: Scope { account_id: "111122223333".into(), region: "us-east-1".into() },
            group: "g".into(),
            stream: "s".into(),
        };
        let pipe = LogPipe::spawn(reader, Arc::from("f"), Some(target), vec!["INIT_START\n".into()]).expect("spawn");
        io::Write::write_all(&mut writer, b"more init").expect("write");
        pipe.platform(vec!["START\n".into()]);
        io::Write::write_all(&mut writer, b"handler\n").expect("write");
        pipe.platform(vec!["END\n".into()]);
        pipe.settled();
        let got: Vec<String> = sink.0.lock().expect("lock").iter().map(|(_, _, m)| m.clone()).collect();
        assert_eq!(got, ["INIT_START\n", "init line\n", "more init\n", "START\n", "handler\n", "END\n"]);
    }

    #[tokio::test]
    async fn no_sink_no_head() {
        let (reader, writer) = io::pipe().expect("pipe");
        let pipe = LogPipe::spawn(reader, Arc::from("f"), None, vec!["INIT_START\n".into()]).expect("spawn");
        drop(writer);
        pipe.platform(vec!["START\n".into()]);
        pipe.settled();
    }

    #[tokio::test]
    async fn init_output_is_kept_for_the_cold_starts_tail() {
        let (reader, mut writer) = io::pipe().expect("pipe");
        let pipe = LogPipe::spawn(reader, Arc::from("f"), None, Vec::new()).expect("spawn");
        // More than the tail holds: only its last TAIL_BYTES stay.
        let mut init = vec![b'a'; 3 * TAIL_BYTES];
        init.extend_from_slice(b"\nready\n");
        io::Write::write_all(&mut writer, &init).expect("write");
        let kept = pipe.end_init("START\n".into(), true);
        assert!(kept.len() >= TAIL_BYTES && kept.len() <= 2 * TAIL_BYTES, "{}", kept.len());
        assert!(kept.ends_with(b"aaa\nready\n"));
        io::Write::write_all(&mut writer, b"handler\n").expect("write");
        assert_eq!(pipe.finish_capture(), b"handler\n");
        // Without LogType Tail nothing is collected after init.
        let (reader, mut writer) = io::pipe().expect("pipe");
        let pipe = LogPipe::spawn(reader, Arc::from("f"), None, Vec::new()).expect("spawn");
        io::Write::write_all(&mut writer, b"init\n").expect("write");
        assert_eq!(pipe.end_init("START\n".into(), false), b"");
        io::Write::write_all(&mut writer, b"handler\n").expect("write");
        assert_eq!(pipe.finish_capture(), b"");
    }
}
