//! Capture of a runtime process's stdout and stderr (one pipe, as on Lambda).
//!
//! Runtimes write their log records synchronously before posting a response, so when
//! an invocation completes its output is already in the pipe. [`LogPipe::drain`] reads
//! the pipe dry without waiting, which makes an invocation's log tail complete without
//! any sleep or polling.

use std::io;
use std::sync::{Arc, Mutex};

use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

/// Largest line forwarded to Portico's own log at once.
const MAX_LINE: usize = 256 * 1024;

/// The reading end of an environment's output, owned by a background task.
#[derive(Debug, Clone)]
pub struct LogPipe {
    shared: Arc<Mutex<Capture>>,
    drain: mpsc::Sender<oneshot::Sender<()>>,
}

#[derive(Debug, Default)]
struct Capture {
    active: bool,
    bytes: Vec<u8>,
}

impl LogPipe {
    /// Starts the reader task for `reader`; `function` names the source in Portico's log.
    pub fn spawn(reader: io::PipeReader, function: Arc<str>) -> io::Result<LogPipe> {
        let fd: std::os::fd::OwnedFd = reader.into();
        let rx = pipe::Receiver::from_owned_fd(fd)?;
        let shared = Arc::new(Mutex::new(Capture::default()));
        let (drain, drain_rx) = mpsc::channel(4);
        tokio::spawn(read_loop(rx, shared.clone(), drain_rx, function));
        Ok(LogPipe { shared, drain })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Capture> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts collecting output (for a `LogType: Tail` invocation).
    pub fn start_capture(&self) {
        let mut c = self.lock();
        c.active = true;
        c.bytes.clear();
    }

    /// Reads whatever the process has written so far, then stops collecting and
    /// returns what was collected.
    pub async fn finish_capture(&self) -> Vec<u8> {
        let (tx, rx) = oneshot::channel();
        if self.drain.send(tx).await.is_ok() {
            let _ = rx.await;
        }
        let mut c = self.lock();
        c.active = false;
        std::mem::take(&mut c.bytes)
    }
}

async fn read_loop(
    rx: pipe::Receiver,
    shared: Arc<Mutex<Capture>>,
    mut drains: mpsc::Receiver<oneshot::Sender<()>>,
    function: Arc<str>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut line = Vec::new();
    let absorb = |chunk: &[u8], line: &mut Vec<u8>| {
        {
            let mut c = shared.lock().unwrap_or_else(|e| e.into_inner());
            if c.active {
                c.bytes.extend_from_slice(chunk);
            }
        }
        for &b in chunk {
            if b == b'\n' || line.len() >= MAX_LINE {
                tracing::info!(target: "portico::function", function = %function, "{}", String::from_utf8_lossy(line));
                line.clear();
            }
            if b != b'\n' {
                line.push(b);
            }
        }
    };
    loop {
        tokio::select! {
            ready = rx.readable() => {
                if ready.is_err() { break; }
                match rx.try_read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => absorb(&buf[..n], &mut line),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
            Some(done) = drains.recv() => {
                // Empty the pipe without waiting: everything written before the
                // runtime posted its answer is already there.
                loop {
                    match rx.try_read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => absorb(&buf[..n], &mut line),
                        Err(_) => break,
                    }
                }
                let _ = done.send(());
            }
        }
    }
    if !line.is_empty() {
        tracing::info!(target: "portico::function", function = %function, "{}", String::from_utf8_lossy(&line));
    }
    // Answer late drain requests so no invoker waits on a dead pipe.
    drains.close();
    while let Some(done) = drains.recv().await {
        let _ = done.send(());
    }
}
