//! What the sandbox reads from `/proc`: who owns a process, its children, its resident
//! memory, and which user opened a loopback TCP connection.
//!
//! Every reader tolerates processes vanishing between two reads: a process that is gone
//! is simply not reported.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use rustix::process::{Pid, Signal};

/// Pids of every process (thread-group leader) in `/proc`.
pub(super) fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).collect()
}

/// The real uid of a live process; `None` when it is gone or a zombie (a zombie holds
/// nothing and cannot be killed again).
pub(super) fn live_uid(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut uid = None;
    for line in status.lines() {
        if let Some(state) = line.strip_prefix("State:") {
            // Z (zombie) and X (dead) are past killing.
            if matches!(state.trim_start().as_bytes().first(), Some(b'Z' | b'X')) {
                return None;
            }
        } else if let Some(ids) = line.strip_prefix("Uid:") {
            uid = ids.split_whitespace().next().and_then(|u| u.parse().ok());
        }
    }
    uid
}

/// The start time of a process (clock ticks since boot), which tells a process from a
/// later one that reused its pid.
pub(super) fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ')' come state (field 3) ... starttime (field 22): index 19 here.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The direct children of every thread of `pid`.
pub(super) fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(list.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// Resident memory of a process in bytes (threads share it; count each process once).
pub(super) fn rss_bytes(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// `pid` and every descendant reachable through `children`, with start times. Processes
/// already known in `seen` are kept if still alive with the same start time, so a
/// process whose parent died (re-parented away from the tree) stays tracked.
pub(super) fn track_tree(root: i32, seen: &mut HashMap<i32, u64>) {
    seen.retain(|pid, started| start_time(*pid) == Some(*started));
    let mut stack: Vec<i32> = std::iter::once(root).chain(seen.keys().copied()).collect();
    while let Some(pid) = stack.pop() {
        for child in children(pid) {
            if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(child) {
                if let Some(t) = start_time(child) {
                    slot.insert(t);
                    stack.push(child);
                }
            }
        }
    }
    if let Some(t) = start_time(root) {
        seen.insert(root, t);
    }
}

/// SIGKILLs a process if it is still the one recorded (same start time).
pub(super) fn kill_if_same(pid: i32, started: u64) {
    if start_time(pid) == Some(started) {
        if let Some(p) = Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, Signal::KILL);
        }
    }
}

/// SIGKILLs every live process whose real uid is in `uids`, again and again until none
/// is left (a process may fork while the sweep runs; killed ones cannot). Returns how
/// many were still alive after the last round.
pub(super) fn kill_uids(uids: Range<u32>) -> usize {
    let mut left = 0;
    for round in 0..20 {
        let found: Vec<i32> = pids().into_iter().filter(|p| live_uid(*p).is_some_and(|u| uids.contains(&u))).collect();
        left = found.len();
        if found.is_empty() {
            break;
        }
        for pid in found {
            if let Some(p) = Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, Signal::KILL);
            }
        }
        // Give the kernel a moment to turn the killed into zombies before looking again.
        std::thread::sleep(Duration::from_millis(if round < 5 { 2 } else { 20 }));
    }
    left
}

/// The uid owning the client end of a loopback IPv4 TCP connection, from
/// `/proc/net/tcp` (TCP has no SO_PEERCRED; the kernel lists each socket's owner there).
/// `server` is our accepted socket's local address, `client` its peer.
pub(super) fn tcp_peer_uid(server: SocketAddr, client: SocketAddr) -> Option<u32> {
    let (SocketAddr::V4(server), SocketAddr::V4(client)) = (server, client) else { return None };
    // /proc/net/tcp writes an IPv4 address as the 32-bit value in host byte order (x86:
    // little endian), then the port in hex.
    let hex = |a: std::net::SocketAddrV4| format!("{:08X}:{:04X}", u32::from_ne_bytes(a.ip().octets()), a.port());
    let (local, remote) = (hex(client), hex(server));
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(2) == Some(&remote.as_str()))
            .then(|| f.get(7)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        assert_eq!(live_uid(me), Some(rustix::process::getuid().as_raw()));
        assert!(start_time(me).is_some());
        assert!(rss_bytes(me).is_some_and(|b| b > 0));
        assert!(pids().contains(&me));
    }

    #[test]
    fn tracks_a_child_and_its_child() {
        let mut child = std::process::Command::new("sh").args(["-c", "sleep 30 & wait"]).spawn().expect("sh");
        let root = i32::try_from(child.id()).expect("pid fits");
        let mut seen = HashMap::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.len() < 2 && std::time::Instant::now() < deadline {
            track_tree(root, &mut seen);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(seen.len(), 2, "sh and its sleep: {seen:?}");
        for (pid, started) in &seen {
            kill_if_same(*pid, *started);
        }
        child.wait().expect("wait");
    }

    #[test]
    fn finds_the_owner_of_a_loopback_connection() {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let _client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (stream, peer) = listener.accept().expect("accept");
        let uid = tcp_peer_uid(stream.local_addr().expect("local"), peer);
        assert_eq!(uid, Some(rustix::process::getuid().as_raw()));
    }
}
