//! Control groups for environments: one cgroup per environment under a `portico-<pid>`
//! group created inside Portico's own cgroup, on cgroup v2 (one unified hierarchy) or
//! on cgroup v1 (one hierarchy per controller: memory, cpu, pids).
//!
//! Each environment's cgroup carries its memory limit (MemorySize, no swap), a CPU
//! weight proportional to memory as on Lambda, and Lambda's 1024-task quota; it also
//! names every process of the environment, whatever they do with sessions or process
//! groups, so the environment can be killed whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::{Pid, Signal};

/// The controllers Portico uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Controllers {
    memory: bool,
    cpu: bool,
    pids: bool,
}

impl Controllers {
    fn names(self) -> Vec<&'static str> {
        [("memory", self.memory), ("cpu", self.cpu), ("pids", self.pids)]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect()
    }
}

/// One hierarchy's `portico-<pid>` group.
#[derive(Debug)]
struct Parent {
    dir: PathBuf,
    v2: bool,
    controllers: Controllers,
}

/// Where environments' cgroups are made.
#[derive(Debug)]
pub(super) struct Cgroups {
    parents: Vec<Parent>,
}

/// One environment's cgroup (one directory per hierarchy).
#[derive(Debug)]
pub(super) struct EnvCgroup {
    dirs: Vec<EnvDir>,
}

#[derive(Debug)]
struct EnvDir {
    dir: PathBuf,
    v2: bool,
    memory: bool,
    /// `cgroup.procs`, opened by Portico so the child can join with a plain write.
    procs: File,
    /// The memory controller's peak file, kept open: every REPORT line re-reads it.
    peak: Option<File>,
}

fn peak_file(v2: bool) -> &'static str {
    if v2 {
        "memory.peak"
    } else {
        "memory.max_usage_in_bytes"
    }
}

/// Lambda allocates one vCPU at 1,769 MB and CPU in proportion to memory.
const MB_PER_VCPU: u64 = 1769;
/// Lambda's quota of processes and threads per execution environment.
pub(super) const MAX_TASKS: u64 = 1024;

fn write(path: &Path, value: &str) -> io::Result<()> {
    // cgroupfs files exist already; open without O_CREAT/O_TRUNC semantics surprises.
    OpenOptions::new().write(true).open(path)?.write_all(value.as_bytes())
}

/// Lines of `/proc/self/cgroup`: (controllers, path). v2 has an empty controller list.
fn own_cgroups(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let ctl = parts.next()?;
            let path = parts.next()?;
            let ctl = if ctl.is_empty() { Vec::new() } else { ctl.split(',').map(str::to_string).collect() };
            Some((ctl, path.to_string()))
        })
        .collect()
}

/// A cgroup mount from `/proc/self/mountinfo`.
#[derive(Debug, PartialEq)]
struct Mount {
    root: String,
    point: PathBuf,
    v2: bool,
    options: Vec<String>,
}

fn cgroup_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let options = right.next().unwrap_or("").split(',').map(str::to_string).collect();
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            // mountinfo escapes spaces and the like as octal; cgroup mount points don't have them.
            Some(Mount { root: left.get(3)?.to_string(), point: PathBuf::from(left.get(4)?), v2, options })
        })
        .collect()
}

/// The directory of our own cgroup inside a mount, if the mount shows it.
fn own_dir(mount: &Mount, path: &str) -> Option<PathBuf> {
    let rel = if mount.root == "/" { path } else { path.strip_prefix(mount.root.as_str())? };
    Some(mount.point.join(rel.trim_start_matches('/')))
}

/// Kills what is left in the groups of Portico instances that are gone and removes them.
fn remove_stale(own: &Path, v2: bool) {
    let Ok(entries) = fs::read_dir(own) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("portico-")).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = e.path();
        if let Ok(envs) = fs::read_dir(&dir) {
            for env in envs.flatten().filter(|e| e.path().is_dir()) {
                kill_members(&env.path(), v2);
                let _ = remove_dir_retrying(&env.path());
            }
        }
        let _ = remove_dir_retrying(&dir);
    }
}

fn members(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn kill_members(dir: &Path, v2: bool) {
    // cgroup.kill (v2, Linux 5.14) kills everything at once, forks included.
    if v2 && write(&dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    for _ in 0..20 {
        let pids = members(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            if let Some(p) = Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn remove_dir_retrying(dir: &Path) -> io::Result<()> {
    // A killed process leaves its cgroup a moment after the signal: rmdir says EBUSY until then.
    let mut last = Ok(());
    for _ in 0..100 {
        last = match fs::remove_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => Err(e),
            other => return other,
        };
        std::thread::sleep(Duration::from_millis(10));
    }
    last
}

impl Cgroups {
    /// Finds Portico's own cgroups and makes a `portico-<pid>` group in each usable one.
    /// `Err` says why no cgroup can be used.
    pub(super) fn setup() -> Result<Cgroups, String> {
        let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
        let mounts =
            fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
        let own = own_cgroups(&own);
        let mounts = cgroup_mounts(&mounts);
        let pid = std::process::id();
        let name = format!("portico-{pid}");
        let mut reasons = Vec::new();

        // cgroup v2 with the memory controller available to us: the whole job is done there.
        if let Some((_, path)) = own.iter().find(|(c, _)| c.is_empty()) {
            if let Some(dir) = mounts.iter().filter(|m| m.v2).find_map(|m| own_dir(m, path)) {
                match setup_v2(&dir, &name) {
                    Ok(parent) => return Ok(Cgroups { parents: vec![parent] }),
                    Err(e) => reasons.push(format!("cgroup v2 at {}: {e}", dir.display())),
                }
            }
        }
        // cgroup v1: one hierarchy per controller.
        let mut parents: Vec<Parent> = Vec::new();
        for ctl in ["memory", "cpu", "pids"] {
            let Some((ctls, path)) = own.iter().find(|(c, _)| c.iter().any(|c| c == ctl)) else { continue };
            let Some(mount) = mounts.iter().find(|m| !m.v2 && m.options.iter().any(|o| o == ctl)) else { continue };
            let Some(dir) = own_dir(mount, path) else { continue };
            let wanted = Controllers {
                memory: ctls.iter().any(|c| c == "memory"),
                cpu: ctls.iter().any(|c| c == "cpu"),
                pids: ctls.iter().any(|c| c == "pids"),
            };
            let parent_dir = dir.join(&name);
            if parents.iter().any(|p| p.dir == parent_dir) {
                continue;
            }
            remove_stale(&dir, false);
            match fs::create_dir(&parent_dir) {
                Ok(()) => parents.push(Parent { dir: parent_dir, v2: false, controllers: wanted }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    parents.push(Parent { dir: parent_dir, v2: false, controllers: wanted })
                }
                Err(e) => reasons.push(format!("cgroup v1 {ctl} at {}: {e}", dir.display())),
            }
        }
        if parents.is_empty() {
            if reasons.is_empty() {
                reasons.push("no cgroup hierarchy with the memory, cpu or pids controller is mounted".into());
            }
            return Err(reasons.join("; "));
        }
        Ok(Cgroups { parents })
    }

    /// One line for the start-up log.
    pub(super) fn describe(&self) -> String {
        self.parents
            .iter()
            .map(|p| {
                format!("{} {} ({})", if p.v2 { "v2" } else { "v1" }, p.controllers.names().join("+"), p.dir.display())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether memory is limited by a cgroup.
    pub(super) fn has_memory(&self) -> bool {
        self.parents.iter().any(|p| p.controllers.memory)
    }

    /// Creates the cgroup `name` of an environment, with its limits.
    pub(super) fn create(&self, name: &str, memory_mb: u32) -> io::Result<EnvCgroup> {
        let mut cg = EnvCgroup { dirs: Vec::new() };
        for p in &self.parents {
            if let Err(e) = cg.add(p, name, memory_mb) {
                cg.remove();
                return Err(e);
            }
        }
        Ok(cg)
    }
}

/// The limit files of one environment's cgroup and their values.
fn limits(v2: bool, c: Controllers, memory_mb: u32) -> Vec<(&'static str, String)> {
    let bytes = u64::from(memory_mb) * 1024 * 1024;
    // CPU weight relative to one vCPU's worth of memory (v1 shares: 1024 is one CPU's
    // default; v2 weight: 100), within the kernel's bounds.
    let cpu = |unit: u64, min: u64, max: u64| (unit * u64::from(memory_mb) / MB_PER_VCPU).clamp(min, max);
    let all = if v2 {
        vec![
            (c.memory, "memory.max", bytes.to_string()),
            (c.memory, "memory.swap.max", "0".to_string()),
            // An out-of-memory kill takes the whole environment, as on Lambda.
            (c.memory, "memory.oom.group", "1".to_string()),
            (c.cpu, "cpu.weight", cpu(100, 1, 10_000).to_string()),
            (c.pids, "pids.max", MAX_TASKS.to_string()),
        ]
    } else {
        vec![
            (c.memory, "memory.limit_in_bytes", bytes.to_string()),
            // After the plain limit: memsw may never be below it.
            (c.memory, "memory.memsw.limit_in_bytes", bytes.to_string()),
            (c.cpu, "cpu.shares", cpu(1024, 2, 262_144).to_string()),
            (c.pids, "pids.max", MAX_TASKS.to_string()),
        ]
    };
    all.into_iter().filter_map(|(on, f, v)| on.then_some((f, v))).collect()
}

impl EnvCgroup {
    fn add(&mut self, p: &Parent, name: &str, memory_mb: u32) -> io::Result<()> {
        let dir = p.dir.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("creating {}: {e}", dir.display()))),
        }
        let procs = OpenOptions::new().write(true).open(dir.join("cgroup.procs"));
        let procs = match procs {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                return Err(e);
            }
        };
        let memory = p.controllers.memory;
        let peak = memory.then(|| File::open(dir.join(peak_file(p.v2))).ok()).flatten();
        self.dirs.push(EnvDir { dir: dir.clone(), v2: p.v2, memory, procs, peak });
        for (file, value) in limits(p.v2, p.controllers, memory_mb) {
            let path = dir.join(file);
            match write(&path, &value) {
                // Swap files exist only with swap accounting; memory is bounded without them.
                Err(e) if e.kind() == io::ErrorKind::NotFound && file.contains("sw") => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("writing {}: {e}", path.display()))),
                Ok(()) => {}
            }
        }
        Ok(())
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for p in &self.parents {
            if let Ok(envs) = fs::read_dir(&p.dir) {
                for env in envs.flatten().filter(|e| e.path().is_dir()) {
                    kill_members(&env.path(), p.v2);
                    let _ = remove_dir_retrying(&env.path());
                }
            }
            let _ = fs::remove_dir(&p.dir);
        }
    }
}

/// Enables the controllers for our children on cgroup v2 and makes `name` below `own`.
fn setup_v2(own: &Path, name: &str) -> Result<Parent, String> {
    let available = fs::read_to_string(own.join("cgroup.controllers")).map_err(|e| e.to_string())?;
    let has = |c: &str| available.split_whitespace().any(|a| a == c);
    let wanted = Controllers { memory: has("memory"), cpu: has("cpu"), pids: has("pids") };
    if !wanted.memory {
        return Err("the memory controller is not available to Portico's cgroup".into());
    }
    remove_stale(own, true);
    let enable = |dir: &Path| -> io::Result<()> {
        let list: Vec<String> = wanted.names().iter().map(|n| format!("+{n}")).collect();
        write(&dir.join("cgroup.subtree_control"), &list.join(" "))
    };
    if let Err(first) = enable(own) {
        // "No internal processes": a cgroup that holds processes cannot hand controllers
        // to children. Move Portico into a leaf of its own and try again.
        if first.raw_os_error() != Some(rustix::io::Errno::BUSY.raw_os_error()) {
            return Err(format!("enabling controllers: {first}"));
        }
        let leaf = own.join(format!("{name}-supervisor"));
        fs::create_dir_all(&leaf).map_err(|e| format!("creating {}: {e}", leaf.display()))?;
        write(&leaf.join("cgroup.procs"), &std::process::id().to_string())
            .map_err(|e| format!("moving Portico into {}: {e}", leaf.display()))?;
        enable(own).map_err(|e| format!("enabling controllers (other processes share Portico's cgroup?): {e}"))?;
    }
    let dir = own.join(name);
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("creating {}: {e}", dir.display())),
    }
    enable(&dir).map_err(|e| format!("enabling controllers in {}: {e}", dir.display()))?;
    Ok(Parent { dir, v2: true, controllers: wanted })
}

impl EnvCgroup {
    /// Copies of the `cgroup.procs` descriptors, for the child to write "0" into.
    pub(super) fn procs_fds(&self) -> io::Result<Vec<OwnedFd>> {
        self.dirs.iter().map(|d| d.procs.try_clone().map(OwnedFd::from)).collect()
    }

    /// SIGKILLs every member (v2: at once through `cgroup.kill`).
    pub(super) fn kill_all(&self) {
        for d in &self.dirs {
            kill_members(&d.dir, d.v2);
        }
    }

    fn memory_dir(&self) -> Option<&EnvDir> {
        self.dirs.iter().find(|d| d.memory)
    }

    /// Whether the kernel's OOM killer acted in this cgroup.
    pub(super) fn oom_killed(&self) -> bool {
        let Some(d) = self.memory_dir() else { return false };
        let file = if d.v2 { "memory.events" } else { "memory.oom_control" };
        fs::read_to_string(d.dir.join(file)).ok().is_some_and(|s| {
            s.lines().any(|l| {
                let mut kv = l.split_whitespace();
                matches!((kv.next(), kv.next()), (Some("oom_kill"), Some(n)) if n != "0")
            })
        })
    }

    /// Peak memory use (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`), page cache included.
    pub(super) fn peak_bytes(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 32];
        let n = self.memory_dir()?.peak.as_ref()?.read_at(&mut buf, 0).ok()?;
        std::str::from_utf8(buf.get(..n)?).ok()?.trim().parse().ok()
    }

    /// Kills what is left and removes the directories. Returns whether all are gone.
    pub(super) fn remove(&self) -> bool {
        let mut ok = true;
        for d in &self.dirs {
            kill_members(&d.dir, d.v2);
            ok &= remove_dir_retrying(&d.dir).is_ok();
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CGROUP_V1: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
33 25 0:29 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory
36 25 0:32 / /sys/fs/cgroup/pids rw,relatime shared:15 - cgroup cgroup rw,pids
38 25 0:34 / /sys/fs/cgroup/unified rw,relatime shared:17 - cgroup2 cgroup2 rw
40 21 0:36 / /proc rw - proc proc rw
";

    #[test]
    fn parses_own_cgroups_and_mounts() {
        let own = own_cgroups(CGROUP_V1);
        assert!(own.contains(&(vec!["memory".to_string()], "/process_api/abc".to_string())));
        assert!(own.contains(&(Vec::new(), "/".to_string())));
        let mounts = cgroup_mounts(MOUNTINFO);
        assert_eq!(mounts.len(), 4);
        let memory = mounts.iter().find(|m| m.options.iter().any(|o| o == "memory")).expect("memory mount");
        assert_eq!(own_dir(memory, "/process_api/abc"), Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")));
        assert!(mounts.iter().any(|m| m.v2 && m.point == Path::new("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn limits_follow_memory_as_on_lambda() {
        let all = Controllers { memory: true, cpu: true, pids: true };
        let v1 = limits(false, all, 128);
        assert!(v1.contains(&("memory.limit_in_bytes", (128u64 << 20).to_string())));
        assert!(v1.contains(&("memory.memsw.limit_in_bytes", (128u64 << 20).to_string())));
        // 128 MB is 128/1769 of a vCPU: 74 of v1's 1024 shares.
        assert!(v1.contains(&("cpu.shares", "74".to_string())));
        assert!(v1.contains(&("pids.max", "1024".to_string())));
        let v2 = limits(true, all, 1769);
        assert!(v2.contains(&("cpu.weight", "100".to_string())));
        assert!(v2.contains(&("memory.swap.max", "0".to_string())));
        assert!(v2.contains(&("memory.oom.group", "1".to_string())));
        let memory_only = limits(true, Controllers { memory: true, ..Controllers::default() }, 10_240);
        assert_eq!(memory_only.len(), 3, "{memory_only:?}");
        assert!(limits(false, all, 10_240).contains(&("cpu.shares", "5927".to_string())));
    }

    #[test]
    fn a_namespaced_mount_root_is_stripped() {
        let m = Mount { root: "/kubepods/pod1".into(), point: "/sys/fs/cgroup".into(), v2: true, options: vec![] };
        assert_eq!(own_dir(&m, "/kubepods/pod1/ctr"), Some(PathBuf::from("/sys/fs/cgroup/ctr")));
        assert_eq!(own_dir(&m, "/elsewhere"), None);
    }
}
