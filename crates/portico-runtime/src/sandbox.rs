//! The sandbox an execution environment runs in: which user its processes run as, what
//! they may read and write, how much memory, CPU and how many processes they get, and how
//! every one of them is found and killed when the environment ends.
//!
//! Each mechanism is used where the host allows it; what is missing is reported once at
//! start-up ([`Sandbox::gaps`]):
//! - **users** (Portico runs as root): every environment gets its own unprivileged uid from
//!   a block of uids this instance claims with a lock file, and its function's own gid, with
//!   no supplementary groups. A function reaches its code only through a directory of its
//!   group (hard links into the shared, content-addressed tree); its TMPDIR is `0700`;
//!   Portico's data dir is `0700` root and never on a function's path. A spare (started
//!   before its function is known) has a group of its own and reaches its code through a
//!   directory only its uid may enter, where the code is linked on assignment.
//! - **Landlock** (Linux 5.13+): reads limited to system directories, the interpreter, the
//!   runtime client and the task root; writes to the environment's TMPDIR; signals and
//!   abstract UNIX sockets scoped to the environment (ABI 6+).
//! - **cgroups** (v2, or v1 memory/cpu/pids when writable): a memory limit of MemorySize
//!   with no swap, a CPU weight proportional to memory as on Lambda, 1024 tasks; without a
//!   memory cgroup, a watchdog polls the process tree's resident memory every 50 ms.
//! - **rlimits** and `PR_SET_NO_NEW_PRIVS`: 1024 open files, no core dumps, no file larger
//!   than the ephemeral storage, 1024 processes per (per-environment) uid.
//! - **TMPDIR** (`scratch.rs`): as root with loop devices, a loop-mounted ext4 file system
//!   of exactly EphemeralStorage MB per environment, so the total written is bounded
//!   (ENOSPC); kept ready in a pool, deleted with its environment. Else a directory, where
//!   only the per-file limit applies.
//!
//! Network namespaces are deliberately not used: the runtime must reach its Runtime API
//! listener on 127.0.0.1.
//!
//! This module knows nothing of the Runtime API or invocations: `environment.rs` asks it
//! to prepare a [`Lease`], apply it to the command, start watching, measure and kill.

mod cgroup;
mod loopdev;
mod procfs;
mod scratch;

pub use scratch::{ScratchError, TmpStorage};

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portico_model::Function;
use rustix::process::{Pid, Resource, Rlimit, Signal};

use crate::launch::Launcher;
use cgroup::{Cgroups, EnvCgroup};
use scratch::{Scratch, Volume};

/// How the sandbox is set up, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Run each environment as its own unprivileged user when Portico runs as root.
    pub isolate_users: bool,
    /// Restrict file access with Landlock when the kernel supports it.
    pub landlock: bool,
    /// Put each environment in its own cgroup when Portico's cgroup is writable.
    pub cgroups: bool,
    /// Host directory for what isolated environments may see (task roots, runtime
    /// clients, scratch directories) and for the locks of uid blocks. Root-owned.
    pub root: PathBuf,
    /// First uid of the blocks handed out to environments (gids use the same numbers).
    pub uid_base: u32,
    /// The init phase limit (AWS: 10 s); an init that exceeds it is retried at the first
    /// invocation under the function's timeout.
    pub init_timeout: Duration,
    /// What each environment's TMPDIR is: its own file system of EphemeralStorage MB, or
    /// a directory.
    pub tmp_storage: TmpStorage,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            isolate_users: true,
            landlock: true,
            cgroups: true,
            root: PathBuf::from("/var/lib/portico"),
            uid_base: 200_000,
            init_timeout: Duration::from_secs(10),
            tmp_storage: TmpStorage::Auto,
        }
    }
}

/// What a lease is sized and named by.
struct Sizing<'a> {
    /// Whose group the environment's user joins (a function ARN); `None`: a group of
    /// its own (a spare's).
    owner: Option<&'a str>,
    /// How messages name what the environment is for.
    label: &'a str,
    memory_size: u32,
    ephemeral_storage: u32,
}

/// Uids per instance block; an instance claims one block and uses it for its
/// environments (uids) and functions (gids).
const BLOCK: u32 = 10_000;
/// How many blocks are tried, so that several instances can share a host.
const BLOCKS: u32 = 64;
/// Lambda's quota of file descriptors per execution environment.
const MAX_FILES: u64 = 1024;
/// How often the memory watchdog looks at an environment without a memory cgroup.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// The sandboxing this host allows, shared by every environment.
#[derive(Debug)]
pub struct Sandbox {
    cfg: SandboxConfig,
    users: Option<Users>,
    /// After `users`: dropped once their processes are killed.
    scratch: Scratch,
    cgroups: Option<Cgroups>,
    landlock_abi: Option<i64>,
    gaps: Vec<String>,
}

/// This instance's block of uids and its directory under the sandbox root.
#[derive(Debug)]
struct Users {
    base: u32,
    dir: PathBuf,
    /// Held (flock) for the instance's lifetime: the block is ours while it is locked.
    _lock: File,
    ids: Mutex<Ids>,
}

#[derive(Debug, Default)]
struct Ids {
    next_uid: u32,
    free_uids: VecDeque<u32>,
    gids: HashMap<String, u32>,
    /// Interpreters copied or linked where sandbox users can run them.
    programs: HashMap<PathBuf, PathBuf>,
}

fn io_other(msg: String) -> io::Error {
    io::Error::other(msg)
}

fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Makes `dir` (a directory Portico alone writes) exist, root-owned, with `mode`.
fn private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("creating {}: {e}", dir.display()))),
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != 0 {
        return Err(io_other(format!("{} is not a directory owned by root", dir.display())));
    }
    chmod(dir, mode)
}

/// Whether a user that is neither owner nor group member can reach `path` (search every
/// directory above it) and has `bits` (of `0o007`) on it.
fn others_can(path: &Path, bits: u32) -> bool {
    let Ok(path) = path.canonicalize() else { return false };
    let searchable = path.ancestors().skip(1).all(|d| fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 != 0));
    searchable && fs::metadata(&path).is_ok_and(|m| m.mode() & bits == bits)
}

impl Users {
    /// Claims the first free block of uids: its lock file, its stale processes (a
    /// previous holder that crashed) killed, its directory emptied.
    fn claim(cfg: &SandboxConfig) -> Result<Users, String> {
        if cfg.uid_base < 1000 || u64::from(cfg.uid_base) + u64::from(BLOCK * BLOCKS) >= u64::from(u32::MAX - 1) {
            return Err(format!(
                "--sandbox-uid-base {} leaves no room for {BLOCKS} blocks of {BLOCK} uids",
                cfg.uid_base
            ));
        }
        let root = &cfg.root;
        fs::create_dir_all(root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        private_dir(root, 0o755).map_err(|e| e.to_string())?;
        for k in 0..BLOCKS {
            let lock_path = root.join(format!("block-{k}.lock"));
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
            if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            let base = cfg.uid_base + k * BLOCK;
            let survivors = procfs::kill_uids(base..base + BLOCK);
            if survivors > 0 {
                tracing::warn!("{survivors} processes of a previous Portico in uids {base}.. survived SIGKILL");
            }
            let dir = root.join(format!("block-{k}"));
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(format!("emptying {}: {e}", dir.display()))
                }
                _ => {}
            }
            let make = || -> io::Result<()> {
                private_dir(&dir, 0o711)?;
                private_dir(&dir.join("code"), 0o711)?;
                private_dir(&dir.join("tmp"), 0o711)?;
                private_dir(&dir.join("tasks"), 0o711)?;
                private_dir(&dir.join("bin"), 0o711)?;
                private_dir(&dir.join("runtimes"), 0o755)
            };
            make().map_err(|e| e.to_string())?;
            let ids = Ids { next_uid: 1, ..Ids::default() };
            return Ok(Users { base, dir, _lock: lock, ids: Mutex::new(ids) });
        }
        Err(format!("all {BLOCKS} uid blocks under {} are held by other Portico instances", root.display()))
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, Ids> {
        // The maps stay consistent after any panic: each update is one insert or pop.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A uid for a new environment and its gid: `function`'s group, or for a spare
    /// (`None`) a group of its own, numbered as its uid. Uids count up from the block's
    /// start and function groups down from its end, so a spare's group is never a
    /// function's.
    fn allocate(&self, function: Option<&str>) -> io::Result<(u32, u32)> {
        let mut ids = self.ids();
        let groups = u32::try_from(ids.gids.len()).unwrap_or(BLOCK);
        let uid = match ids.free_uids.pop_front() {
            Some(u) => u,
            None if ids.next_uid + groups < BLOCK - 1 => {
                ids.next_uid += 1;
                self.base + ids.next_uid - 1
            }
            None => return Err(io_other(format!("all {BLOCK} sandbox uids and gids are in use"))),
        };
        let Some(function) = function else { return Ok((uid, uid)) };
        if let Some(gid) = ids.gids.get(function) {
            return Ok((uid, *gid));
        }
        let gid = self.base + BLOCK - 1 - groups;
        if gid <= self.base + ids.next_uid {
            ids.free_uids.push_front(uid);
            return Err(io_other(format!("all {BLOCK} sandbox uids and gids are in use")));
        }
        ids.gids.insert(function.to_string(), gid);
        Ok((uid, gid))
    }

    /// Returns a uid whose processes are all gone.
    fn release(&self, uid: u32) {
        self.ids().free_uids.push_back(uid);
    }

    /// The task root as the function's group sees it: `code/g<gid>/<sha>`, a directory
    /// `0750 root:<gid>` holding hard links to the shared tree (same inodes, read-only,
    /// root-owned), so other functions cannot even reach it.
    fn gate(&self, task_root: &Path, gid: u32) -> io::Result<PathBuf> {
        let sha = task_root.file_name().ok_or_else(|| io_other(format!("bad task root {}", task_root.display())))?;
        let group_dir = self.dir.join("code").join(format!("g{gid}"));
        private_dir(&group_dir, 0o750)?;
        std::os::unix::fs::chown(&group_dir, Some(0), Some(gid))?;
        let dest = group_dir.join(sha);
        if dest.is_dir() {
            return Ok(dest);
        }
        let tmp = group_dir.join(format!(".{}.{}", sha.to_string_lossy(), uuid::Uuid::new_v4().simple()));
        let built = link_tree(task_root, &tmp).and_then(|()| fs::rename(&tmp, &dest));
        match built {
            Ok(()) => Ok(dest),
            // A concurrent cold start of the same function built it first.
            Err(_) if dest.is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
                Ok(dest)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(io::Error::new(e.kind(), format!("preparing the task root of {}: {e}", task_root.display())))
            }
        }
    }

    /// The interpreter as sandbox users can run it: itself when every directory above it
    /// is searchable by others, else a hard link (or copy) under `bin/`.
    fn reachable_program(&self, program: &Path, self_contained: bool) -> io::Result<PathBuf> {
        if others_can(program, 0o005) {
            return Ok(program.to_path_buf());
        }
        let mut ids = self.ids();
        if let Some(p) = ids.programs.get(program) {
            return Ok(p.clone());
        }
        let real = program.canonicalize()?;
        let name = real.file_name().ok_or_else(|| io_other(format!("bad interpreter {}", real.display())))?;
        // Only a self-contained binary (Node.js) runs correctly as a copy: an interpreter
        // that loads its own prefix (a Python under /root/.pyenv) would silently pick up
        // another installation's libraries.
        if !self_contained {
            return Err(io_other(format!(
                "interpreter {} is in a directory the sandbox users cannot search: install it under a \
                 world-searchable prefix (/usr, /usr/local, /opt), e.g. --python-bin /usr/bin/python3",
                program.display()
            )));
        }
        let dir = self.dir.join("bin").join(ids.programs.len().to_string());
        private_dir(&dir, 0o711)?;
        let dest = dir.join(name);
        let linked =
            fs::metadata(&real).is_ok_and(|m| m.mode() & 0o005 == 0o005) && fs::hard_link(&real, &dest).is_ok();
        if !linked {
            fs::copy(&real, &dest)?;
            chmod(&dest, 0o755)?;
        }
        tracing::warn!(
            "sandbox: interpreter {} is in a directory sandbox users cannot search; running a linked copy, {}. \
             Install interpreters under a world-searchable prefix (/usr, /usr/local, /opt) to run them as they are",
            program.display(),
            dest.display()
        );
        ids.programs.insert(program.to_path_buf(), dest.clone());
        Ok(dest)
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        // Nothing of this instance survives it: every process of the block, every file.
        procfs::kill_uids(self.base..self.base + BLOCK);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Mirrors a tree with hard links (copies across file systems); directories `0555`.
fn link_tree(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            link_tree(&from, &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to)?;
        }
    }
    chmod(dst, 0o555)
}

/// The Landlock ABI the kernel offers, if any.
fn landlock_abi() -> Option<i64> {
    // LANDLOCK_CREATE_RULESET_VERSION: asks for the ABI version, creates nothing.
    const VERSION: libc::c_uint = 1;
    #[allow(unsafe_code)]
    // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) reads no memory and returns a number.
    let abi = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, VERSION) };
    (abi > 0).then_some(abi)
}

impl Sandbox {
    /// Probes the host and sets up what it allows. Never fails: what cannot be used is
    /// listed in [`Sandbox::gaps`].
    pub fn new(cfg: SandboxConfig) -> Sandbox {
        let mut gaps = Vec::new();
        let euid = rustix::process::geteuid();
        let users = if !cfg.isolate_users {
            gaps.push(format!(
                "users: disabled (--isolation off); functions run as Portico's own user (uid {}) and can read, write and signal what it can, except what Landlock denies",
                euid.as_raw()
            ));
            None
        } else if !euid.is_root() {
            gaps.push(format!(
                "users: Portico is not root, so functions run as its own user (uid {}): the data dir, other functions' code and other environments' scratch directories are protected only by Landlock, and a function can chmod its code tree",
                euid.as_raw()
            ));
            None
        } else {
            match Users::claim(&cfg) {
                Ok(u) => Some(u),
                Err(e) => {
                    gaps.push(format!("users: {e}; functions run as root"));
                    None
                }
            }
        };
        let landlock_abi = if cfg.landlock { landlock_abi() } else { None };
        match (cfg.landlock, landlock_abi) {
            (false, _) => gaps.push("landlock: disabled (--landlock off); file access is limited by file modes only".into()),
            (true, None) => gaps.push("landlock: not supported by this kernel (Linux 5.13+ with landlock in the LSM list); file access is limited by file modes only".into()),
            (true, Some(abi)) if abi < 6 => gaps.push(format!(
                "landlock: ABI {abi} cannot scope signals (ABI 6, Linux 6.12): functions can signal processes of their own uid"
            )),
            _ => {}
        }
        let cgroups = if cfg.cgroups {
            match Cgroups::setup() {
                Ok(c) => Some(c),
                Err(e) => {
                    gaps.push(format!("cgroups: {e}; memory is enforced by a 50 ms watchdog on resident memory, CPU is not shared in proportion to memory, and processes are found by process tree and uid"));
                    None
                }
            }
        } else {
            gaps.push(
                "cgroups: disabled (--cgroups off); memory is enforced by a 50 ms watchdog on resident memory".into(),
            );
            None
        };
        if cgroups.as_ref().is_some_and(|c| !c.has_memory()) {
            gaps.push(
                "cgroups: no memory controller; memory is enforced by a 50 ms watchdog on resident memory".into(),
            );
        }
        let scratch = Scratch::setup(cfg.tmp_storage, &cfg.root);
        gaps.extend(scratch.gap());
        Sandbox { cfg, users, scratch, cgroups, landlock_abi, gaps }
    }

    /// One line saying what each environment's TMPDIR is.
    pub fn tmp_storage(&self) -> String {
        self.scratch.describe()
    }

    /// Why `--tmp-storage loop` cannot be honoured on this host (Portico must not start).
    pub fn tmp_storage_refused(&self) -> Option<&str> {
        self.scratch.refused()
    }

    /// At Portico's shutdown: kills what is left of every environment's processes, then
    /// unmounts and deletes every TMPDIR volume. Environments started afterwards fail.
    pub fn shutdown(&self) {
        if let Some(users) = &self.users {
            procfs::kill_uids(users.base..users.base + BLOCK);
        }
        self.scratch.shutdown();
    }

    /// One line saying what is in force.
    pub fn summary(&self) -> String {
        let users = match &self.users {
            Some(u) => format!("uids {}-{} ({})", u.base + 1, u.base + BLOCK - 1, u.dir.display()),
            None => format!("shared (uid {})", rustix::process::geteuid().as_raw()),
        };
        let landlock = self.landlock_abi.map_or("off".to_string(), |a| format!("ABI {a}"));
        let cgroups = self.cgroups.as_ref().map_or("off".to_string(), |c| c.describe());
        format!(
            "users: {users}; landlock: {landlock}; cgroups: {cgroups}; init limit: {:.1} s",
            self.cfg.init_timeout.as_secs_f64()
        )
    }

    /// What is not isolated on this host, one sentence each.
    pub fn gaps(&self) -> &[String] {
        &self.gaps
    }

    /// Where runtime clients must be written so that sandboxed functions can read them:
    /// under the sandbox root when environments run as other users, else `default`.
    pub fn runtimes_dir(&self, default: PathBuf) -> PathBuf {
        self.users.as_ref().map_or(default, |u| u.dir.join("runtimes"))
    }

    /// The init phase limit.
    pub fn init_timeout(&self) -> Duration {
        self.cfg.init_timeout
    }

    /// Prepares an environment of `function`, `name` unique among live environments
    /// (it names the scratch directory and the cgroup): its identity, task root,
    /// scratch directory, cgroup and limits.
    pub(crate) fn prepare(
        self: &Arc<Self>,
        function: &Function,
        task_root: &Path,
        launcher: &Launcher,
        tmp_root: &Path,
        name: &str,
    ) -> io::Result<Lease> {
        let arn = function.arn();
        let sizing = Sizing {
            owner: Some(&arn),
            label: &function.name,
            memory_size: function.memory_size,
            ephemeral_storage: function.ephemeral_storage,
        };
        self.lease(sizing, Some(task_root), launcher, tmp_root, name)
    }

    /// Prepares a spare environment: sized like the functions it may serve, its task
    /// root an empty directory the function's code is linked into at
    /// [`Lease::assign_code`]. Its user's group is its own, never a function's: it
    /// reaches its code only through that directory.
    pub(crate) fn prepare_spare(
        self: &Arc<Self>,
        memory_size: u32,
        ephemeral_storage: u32,
        launcher: &Launcher,
        tmp_root: &Path,
        name: &str,
    ) -> io::Result<Lease> {
        let sizing = Sizing { owner: None, label: "a spare runtime", memory_size, ephemeral_storage };
        self.lease(sizing, None, launcher, tmp_root, name)
    }

    fn lease(
        self: &Arc<Self>,
        sizing: Sizing<'_>,
        task_root: Option<&Path>,
        launcher: &Launcher,
        tmp_root: &Path,
        name: &str,
    ) -> io::Result<Lease> {
        let mut lease = Lease {
            sandbox: self.clone(),
            ids: None,
            task_root: task_root.map(Path::to_path_buf).unwrap_or_default(),
            task_parent: None,
            program: launcher.program.clone(),
            runtime_dir: launcher.runtime_dir.clone(),
            tmp_dir: tmp_root.join(name),
            volume: None,
            cgroup: None,
            memory_bytes: u64::from(sizing.memory_size) * 1024 * 1024,
            file_bytes: u64::from(sizing.ephemeral_storage) * 1024 * 1024,
            pgid: None,
            watch: Arc::new(Watch::default()),
            watcher: None,
        };
        if let Some(users) = &self.users {
            let (uid, gid) = users.allocate(sizing.owner)?;
            // From here on, dropping the lease gives the uid back.
            lease.ids = Some((uid, gid));
            match task_root {
                Some(root) => lease.task_root = users.gate(root, gid)?,
                None => {
                    // Only this environment's user may pass: the code linked below is
                    // reachable by no other.
                    let parent = users.dir.join("tasks").join(name);
                    lease.set_task_parent(parent.clone());
                    fs::create_dir(&parent)?;
                    std::os::unix::fs::chown(&parent, Some(uid), Some(gid))?;
                    chmod(&parent, 0o500)?;
                }
            }
            lease.tmp_dir = users.dir.join("tmp").join(name);
            lease.program = users.reachable_program(&launcher.program, launcher.self_contained)?;
            expose_runtime_dir(&launcher.runtime_dir)?;
        } else if task_root.is_none() && self.landlock_abi.is_some() {
            // Landlock's rules are fixed at the start: they name this directory, which
            // the code is linked into later.
            let parent = tmp_root.join(format!("{name}.task"));
            fs::create_dir_all(tmp_root)?;
            match fs::remove_dir_all(&parent) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            lease.set_task_parent(parent.clone());
            fs::create_dir(&parent)?;
            chmod(&parent, 0o700)?;
        }
        if self.scratch.is_loop() {
            // A fresh, empty file system of EphemeralStorage MB, this environment's alone.
            let volume = self.scratch.acquire(sizing.ephemeral_storage, lease.ids)?;
            lease.tmp_dir = volume.path().to_path_buf();
            lease.volume = Some(volume);
        } else {
            if self.users.is_none() {
                fs::create_dir_all(tmp_root)?;
            }
            // A fresh, empty scratch directory only this environment's user can open.
            match fs::remove_dir_all(&lease.tmp_dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            fs::create_dir(&lease.tmp_dir)?;
            chmod(&lease.tmp_dir, 0o700)?;
            if let Some((uid, gid)) = lease.ids {
                std::os::unix::fs::chown(&lease.tmp_dir, Some(uid), Some(gid))?;
            }
        }
        if let Some(cgroups) = &self.cgroups {
            match cgroups.create(name, sizing.memory_size) {
                Ok(cg) => lease.cgroup = Some(cg),
                Err(e) => tracing::warn!("{name} of {}: no cgroup ({e}); using the watchdog", sizing.label),
            }
        }
        Ok(lease)
    }

    /// The Landlock rules of one environment, as a ruleset descriptor for the child to
    /// enforce; `None` when Landlock is not in use.
    fn landlock_ruleset(&self, lease: &Lease) -> io::Result<Option<OwnedFd>> {
        use landlock::{Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI};
        if self.landlock_abi.is_none() {
            return Ok(None);
        }
        // Best effort: the kernel enforces what it knows of this set.
        let abi = ABI::V9;
        let err = |e: landlock::RulesetError| io_other(format!("landlock: {e}"));
        let mut rules = Ruleset::default()
            .handle_access(AccessFs::from_all(abi))
            .map_err(err)?
            .scope(Scope::Signal | Scope::AbstractUnixSocket)
            .map_err(err)?
            .create()
            .map_err(err)?;
        let mut read: Vec<PathBuf> = [
            "/usr",
            "/lib",
            "/lib64",
            "/lib32",
            "/libx32",
            "/bin",
            "/sbin",
            "/etc",
            "/proc",
            "/sys/fs/cgroup",
            "/sys/devices/system/cpu",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        // /etc entries that often point elsewhere (systemd-resolved's resolv.conf, ...).
        for f in ["/etc/resolv.conf", "/etc/hosts", "/etc/localtime", "/etc/nsswitch.conf", "/etc/ssl"] {
            if let Ok(real) = fs::canonicalize(f) {
                read.push(real);
            }
        }
        read.push(interpreter_prefix(&lease.program));
        read.push(lease.runtime_dir.clone());
        // A spare's task root does not exist yet: the rule names the directory it will be in.
        read.push(lease.task_parent.clone().unwrap_or_else(|| lease.task_root.clone()));
        for path in &read {
            let Ok(fd) = PathFd::new(path) else { continue };
            let access = if path.is_dir() {
                AccessFs::from_read(abi)
            } else {
                AccessFs::from_read(abi) & AccessFs::from_file(abi)
            };
            rules = rules.add_rule(PathBeneath::new(fd, access)).map_err(err)?;
        }
        for dev in ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"] {
            let Ok(fd) = PathFd::new(dev) else { continue };
            rules = rules.add_rule(PathBeneath::new(fd, AccessFs::from_file(abi))).map_err(err)?;
        }
        let tmp = PathFd::new(&lease.tmp_dir).map_err(|e| io_other(format!("landlock: {e}")))?;
        rules = rules.add_rule(PathBeneath::new(tmp, AccessFs::from_all(abi))).map_err(err)?;
        Ok(rules.into())
    }

    fn has_memory_cgroup(&self, lease: &Lease) -> bool {
        lease.cgroup.is_some() && self.cgroups.as_ref().is_some_and(|c| c.has_memory())
    }
}

/// The directory an interpreter is installed in: `<prefix>` for `<prefix>/bin/<name>`
/// (never `/`), else the binary's own directory.
fn interpreter_prefix(program: &Path) -> PathBuf {
    let real = program.canonicalize().unwrap_or_else(|_| program.to_path_buf());
    let dir = real.parent().unwrap_or(Path::new("/"));
    match (dir.file_name(), dir.parent()) {
        (Some(bin), Some(prefix)) if bin == "bin" && prefix != Path::new("/") => prefix.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// Makes a runtime client's directory readable by every user (it holds no secret).
fn expose_runtime_dir(dir: &Path) -> io::Result<()> {
    if !others_can(dir, 0o005) {
        chmod(dir, 0o755)?;
        if !others_can(dir, 0o005) {
            return Err(io_other(format!(
                "the runtime directory {} is not reachable by sandbox users: a directory above it is not searchable",
                dir.display()
            )));
        }
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() && meta.mode() & 0o004 == 0 {
            chmod(&entry.path(), (meta.mode() & 0o777) | 0o444)?;
        }
    }
    Ok(())
}

/// What the memory watchdog learned about an environment.
#[derive(Debug, Default)]
struct Watch {
    /// The watchdog killed the environment for exceeding its memory.
    oom: AtomicBool,
    /// Highest resident memory seen, bytes.
    peak: AtomicU64,
    /// Every process seen in the tree, with its start time.
    tree: Mutex<HashMap<i32, u64>>,
}

impl Watch {
    fn tree(&self) -> std::sync::MutexGuard<'_, HashMap<i32, u64>> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One environment's share of the sandbox. Dropping it kills every process of the
/// environment and removes its cgroup, scratch directory and uid.
#[derive(Debug)]
pub(crate) struct Lease {
    sandbox: Arc<Sandbox>,
    ids: Option<(u32, u32)>,
    task_root: PathBuf,
    /// A spare's own directory, which its task root is linked into on assignment;
    /// removed with the lease.
    task_parent: Option<PathBuf>,
    program: PathBuf,
    runtime_dir: PathBuf,
    tmp_dir: PathBuf,
    /// The file system mounted at `tmp_dir`, when TMPDIRs are volumes.
    volume: Option<Volume>,
    cgroup: Option<EnvCgroup>,
    memory_bytes: u64,
    file_bytes: u64,
    pgid: Option<Pid>,
    watch: Arc<Watch>,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    /// The task root the function sees (and its working directory); empty for a spare
    /// not yet assigned.
    pub(crate) fn task_root(&self) -> &Path {
        &self.task_root
    }

    /// Where a spare's task root will be: its directory when it has one (the path the
    /// runtime can be told before the code is there), else `code`.
    pub(crate) fn future_task_root(&self, code: &Path) -> PathBuf {
        self.task_parent.as_ref().map_or_else(|| code.to_path_buf(), |p| p.join("task"))
    }

    fn set_task_parent(&mut self, parent: PathBuf) {
        self.task_parent = Some(parent);
    }

    /// Gives a spare its function's code (the unpacked tree at `code`): hard links in
    /// its own directory, which only it can reach and its Landlock rules allow; with no
    /// such directory (neither users nor Landlock), the tree itself.
    pub(crate) fn assign_code(&mut self, code: &Path) -> io::Result<()> {
        let root = self.future_task_root(code);
        if self.task_parent.is_some() {
            link_tree(code, &root).map_err(|e| {
                io::Error::new(e.kind(), format!("linking {} into {}: {e}", code.display(), root.display()))
            })?;
        }
        self.task_root = root;
        Ok(())
    }

    /// The interpreter to start.
    pub(crate) fn program(&self) -> &Path {
        &self.program
    }

    /// The private scratch directory (`TMPDIR`).
    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp_dir
    }

    /// Sets the user and the in-child steps (cgroup, rlimits, no-new-privs, Landlock).
    /// With `join_later` the child does not join its cgroups itself: the caller hands
    /// [`Lease::cgroup_procs`] to [`join_cgroups`] once the process runs. Joining a cgroup
    /// v1 hierarchy waits out an RCU grace period (7 to 20 ms here); done from outside it
    /// overlaps the interpreter's start instead of delaying it. Only for a runtime client
    /// that runs no function code until told its sandbox is complete.
    /// `runtime_api`, when given, becomes the child's descriptor [`RUNTIME_API_FD`].
    pub(crate) fn apply(
        &self,
        cmd: &mut tokio::process::Command,
        join_later: bool,
        runtime_api: Option<OwnedFd>,
    ) -> io::Result<()> {
        if let Some((uid, gid)) = self.ids {
            // std drops supplementary groups (setgroups(0)) before setuid when root.
            cmd.uid(uid).gid(gid);
        }
        let procs = match &self.cgroup {
            Some(cg) if !join_later => cg.procs_fds()?,
            _ => Vec::new(),
        };
        let landlock = self.sandbox.landlock_ruleset(self)?;
        let hard = |r: Resource, want: u64| rustix::process::getrlimit(r).maximum.map_or(want, |h| h.min(want));
        let mut limits = vec![
            (Resource::Nofile, hard(Resource::Nofile, MAX_FILES)),
            (Resource::Core, 0),
            (Resource::Fsize, hard(Resource::Fsize, self.file_bytes)),
        ];
        if self.ids.is_some() {
            // Per uid, and the uid is this environment's alone.
            limits.push((Resource::Nproc, hard(Resource::Nproc, cgroup::MAX_TASKS)));
        }
        let limits: Vec<(Resource, Rlimit)> =
            limits.into_iter().map(|(r, v)| (r, Rlimit { current: Some(v), maximum: Some(v) })).collect();
        let child = ChildSetup { procs, limits, landlock, runtime_api };
        #[allow(unsafe_code)]
        // SAFETY: the closure runs in the forked child before exec and only makes system
        // calls on data prepared here (no allocation, no lock): see `ChildSetup::run`.
        unsafe {
            cmd.pre_exec(move || child.run());
        }
        Ok(())
    }

    /// The `cgroup.procs` of each of the environment's cgroups (none without cgroups).
    pub(crate) fn cgroup_procs(&self) -> io::Result<Vec<OwnedFd>> {
        self.cgroup.as_ref().map_or(Ok(Vec::new()), |cg| cg.procs_fds())
    }

    /// The runtime process started: remember its group and, without a memory cgroup,
    /// start the watchdog.
    pub(crate) fn started(&mut self, pid: Pid) {
        self.pgid = Some(pid);
        if self.sandbox.has_memory_cgroup(self) {
            return;
        }
        let watch = self.watch.clone();
        let limit = self.memory_bytes;
        let root = pid.as_raw_nonzero().get();
        self.watcher = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let mut tree = watch.tree();
                procfs::track_tree(root, &mut tree);
                if tree.is_empty() {
                    return;
                }
                let used: u64 = tree.keys().filter_map(|p| procfs::rss_bytes(*p)).sum();
                watch.peak.fetch_max(used, Ordering::Relaxed);
                if used > limit {
                    watch.oom.store(true, Ordering::Relaxed);
                    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
                    for (p, started) in tree.iter() {
                        procfs::kill_if_same(*p, *started);
                    }
                    return;
                }
            }
        }));
    }

    /// Accepts a Runtime API connection only from this environment's user, when it has
    /// its own (TCP has no SO_PEERCRED: the owner comes from `/proc/net/tcp`).
    pub(crate) fn admit(&self) -> impl Fn(std::net::SocketAddr, std::net::SocketAddr) -> bool + Send + Sync + 'static {
        let uid = self.ids.map(|(uid, _)| uid);
        move |local, peer| {
            let Some(uid) = uid else { return true };
            let owner = procfs::tcp_peer_uid(local, peer);
            if owner != Some(uid) {
                tracing::warn!("Runtime API: refused a connection from uid {owner:?}, not the environment's uid {uid}");
            }
            owner == Some(uid)
        }
    }

    /// Whether the environment was killed for exceeding its memory.
    pub(crate) fn out_of_memory(&self) -> bool {
        self.watch.oom.load(Ordering::Relaxed) || self.cgroup.as_ref().is_some_and(|c| c.oom_killed())
    }

    /// Highest memory use so far, in MB, when the sandbox measures it.
    pub(crate) fn max_memory_mb(&self) -> Option<u64> {
        let bytes = match &self.cgroup {
            Some(cg) if self.sandbox.has_memory_cgroup(self) => cg.peak_bytes()?,
            _ => Some(self.watch.peak.load(Ordering::Relaxed)).filter(|b| *b > 0)?,
        };
        Some(bytes.div_ceil(1024 * 1024))
    }

    /// SIGKILLs every process of the environment now (the group, the cgroup, the
    /// processes the watchdog saw, the uid's); the thorough sweep follows on drop.
    fn kill_all(&self) {
        let mut tree = self.watch.tree();
        if let (Some(pgid), None) = (self.pgid, &self.cgroup) {
            // Children started since the watchdog's last look (it may not even run).
            procfs::track_tree(pgid.as_raw_nonzero().get(), &mut tree);
        }
        if let Some(pgid) = self.pgid {
            let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
        }
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
        }
        for (pid, started) in tree.iter() {
            procfs::kill_if_same(*pid, *started);
        }
        drop(tree);
        if let Some((uid, _)) = self.ids {
            for pid in procfs::pids() {
                if procfs::live_uid(pid) == Some(uid) {
                    if let Some(p) = Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(p, Signal::KILL);
                    }
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        self.kill_all();
        let teardown = Teardown {
            sandbox: self.sandbox.clone(),
            uid: self.ids.map(|(uid, _)| uid),
            cgroup: self.cgroup.take(),
            tmp_dir: std::mem::take(&mut self.tmp_dir),
            volume: self.volume.take(),
            task_parent: self.task_parent.take(),
        };
        // Waiting for the killed to leave and deleting up to 10 GB of scratch files
        // must not hold an async worker.
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(move || teardown.run())),
            Err(_) => teardown.run(),
        }
    }
}

/// What is left to do after an environment's processes were signalled.
struct Teardown {
    sandbox: Arc<Sandbox>,
    uid: Option<u32>,
    cgroup: Option<EnvCgroup>,
    tmp_dir: PathBuf,
    volume: Option<Volume>,
    task_parent: Option<PathBuf>,
}

impl Teardown {
    fn run(self) {
        let mut clean = true;
        if let Some(cg) = &self.cgroup {
            clean &= cg.remove();
        }
        if let Some(uid) = self.uid {
            let left = procfs::kill_uids(uid..uid + 1);
            if left > 0 {
                tracing::warn!("{left} processes of sandbox uid {uid} survived SIGKILL; the uid is not reused");
            }
            clean &= left == 0;
        }
        if let Some(volume) = self.volume {
            // Unmounted (lazily if a survivor still holds it) and deleted, never walked.
            self.sandbox.scratch.release(volume);
        } else if !self.tmp_dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.tmp_dir);
        }
        if let Some(parent) = &self.task_parent {
            // Its directories are 0555: as Portico's own user, opened up first.
            let _ = crate::code::remove_tree(parent);
        }
        if let (Some(uid), Some(users), true) = (self.uid, &self.sandbox.users, clean) {
            users.release(uid);
        }
    }
}

/// The steps the child takes between fork and exec, on data prepared by the parent.
/// Moves process `pid` (every thread of it) into the cgroups whose `cgroup.procs` are
/// given. Blocking: a cgroup v1 join waits for an RCU grace period.
pub(crate) fn join_cgroups(procs: &[OwnedFd], pid: Pid) -> io::Result<()> {
    let pid = pid.as_raw_nonzero().get().to_string();
    for fd in procs {
        rustix::io::write(fd, pid.as_bytes())?;
    }
    Ok(())
}

struct ChildSetup {
    /// `cgroup.procs` of each hierarchy: writing "0" moves the writer in.
    procs: Vec<OwnedFd>,
    limits: Vec<(Resource, Rlimit)>,
    landlock: Option<OwnedFd>,
    /// The child's end of its Runtime API socket, to be inherited as [`RUNTIME_API_FD`].
    runtime_api: Option<OwnedFd>,
}

/// The descriptor number a runtime client inherits its Runtime API socket on.
pub(crate) const RUNTIME_API_FD: i32 = 3;

impl ChildSetup {
    /// Runs after fork (and after std's setgid/setgroups/setuid/chdir/setpgid): only
    /// async-signal-safe system calls, nothing allocated.
    fn run(&self) -> io::Result<()> {
        for fd in &self.procs {
            rustix::io::write(fd, b"0")?;
        }
        for (resource, limit) in &self.limits {
            rustix::process::setrlimit(*resource, *limit)?;
        }
        // A write past RLIMIT_FSIZE then fails with EFBIG instead of killing the runtime.
        #[allow(unsafe_code)]
        // SAFETY: setting a signal's disposition to SIG_IGN touches no memory of ours.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        }
        // SCHED_BATCH: a runtime woken by the event Portico writes does not preempt
        // Portico mid-batch (it still gets its fair share of the CPU, at once if one is
        // idle). With wake-up preemption, every hand-off to a runtime was a context
        // switch away from Portico's other requests: at 32 connections on 2 CPUs the
        // seed served ~20k req/s at 1.7 context switches per request, ~27k at 1.4
        // without. Best effort: a kernel that refuses it runs the runtime as before.
        let param = libc::sched_param { sched_priority: 0 };
        #[allow(unsafe_code)]
        // SAFETY: sched_setscheduler reads the parameter struct on our stack and nothing
        // else; pid 0 is this (child) process.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
        }
        // No setuid binary or file capability can give the function back any privilege.
        rustix::thread::set_no_new_privs(true)?;
        if let Some(ruleset) = &self.landlock {
            #[allow(unsafe_code)]
            // SAFETY: landlock_restrict_self(fd, 0) takes a ruleset descriptor we own and
            // no pointer.
            let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // Last: descriptor 3 may have been one of the above (they are close-on-exec).
        if let Some(socket) = &self.runtime_api {
            let fd = socket.as_raw_fd();
            #[allow(unsafe_code)]
            // SAFETY: dup2 and fcntl take descriptor numbers, no pointer; the target is
            // free to overwrite in this child, which only holds close-on-exec descriptors
            // of its parent beyond its stdio.
            let r = unsafe {
                if fd == RUNTIME_API_FD {
                    // dup2 onto itself would keep close-on-exec.
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, RUNTIME_API_FD)
                }
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // Nothing else reaches the runtime: a descriptor Portico itself inherited without
        // close-on-exec (from the shell that started it) is closed at exec too. Marked,
        // not closed: std's exec-error pipe must stay open until exec. Kernels before
        // 5.11 lack the call; nothing else depends on it.
        let first = if self.runtime_api.is_some() { RUNTIME_API_FD + 1 } else { 3 };
        #[allow(unsafe_code)]
        // SAFETY: close_range takes numbers and flags, no pointer.
        unsafe {
            libc::syscall(libc::SYS_close_range, first.cast_unsigned(), libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_prefixes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("node/bin");
        fs::create_dir_all(&bin).expect("mkdir");
        fs::write(bin.join("node"), b"").expect("write");
        let real = dir.path().canonicalize().expect("canonical");
        assert_eq!(interpreter_prefix(&bin.join("node")), real.join("node"));
        // Not in a `bin` directory: the directory itself.
        fs::create_dir_all(dir.path().join("tools")).expect("mkdir");
        fs::write(dir.path().join("tools/python"), b"").expect("write");
        assert_eq!(interpreter_prefix(&dir.path().join("tools/python")), real.join("tools"));
    }

    #[test]
    fn link_tree_mirrors_files_links_and_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("lib")).expect("mkdir");
        fs::write(src.join("index.mjs"), b"export const handler = 1").expect("write");
        fs::write(src.join("lib/a.js"), b"a").expect("write");
        std::os::unix::fs::symlink("lib/a.js", src.join("link.js")).expect("symlink");
        let dst = dir.path().join("dst");
        link_tree(&src, &dst).expect("link");
        assert_eq!(fs::read(dst.join("index.mjs")).expect("read"), b"export const handler = 1");
        assert_eq!(fs::read(dst.join("link.js")).expect("read"), b"a");
        assert_eq!(
            fs::metadata(dst.join("index.mjs")).expect("meta").ino(),
            fs::metadata(src.join("index.mjs")).expect("meta").ino(),
            "same inode"
        );
        assert_eq!(fs::metadata(&dst).expect("meta").mode() & 0o777, 0o555);
        chmod(&dst, 0o755).expect("chmod");
        chmod(&dst.join("lib"), 0o755).expect("chmod");
    }

    #[test]
    fn a_disabled_sandbox_says_what_is_missing() {
        let sb = Sandbox::new(SandboxConfig {
            isolate_users: false,
            landlock: false,
            cgroups: false,
            tmp_storage: TmpStorage::Dir,
            ..SandboxConfig::default()
        });
        assert_eq!(sb.gaps().len(), 4, "{:?}", sb.gaps());
        assert!(sb.gaps().iter().any(|g| g.starts_with("tmp: TMPDIR is a plain directory (--tmp-storage dir)")));
        assert!(sb.tmp_storage().contains("the total not enforced"), "{}", sb.tmp_storage());
        assert!(sb.tmp_storage_refused().is_none());
        assert!(sb.summary().contains("landlock: off"), "{}", sb.summary());
        assert_eq!(sb.runtimes_dir(PathBuf::from("/x")), PathBuf::from("/x"));
    }
}
