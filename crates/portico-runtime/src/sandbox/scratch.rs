//! Each environment's TMPDIR, bounded in total by the function's EphemeralStorage.
//!
//! Where the host allows it (Portico is root, `/dev/loop-control` exists, `mkfs.ext4`,
//! `mount` and `umount` are installed), TMPDIR is a file system of its own: a sparse
//! image of exactly EphemeralStorage MB (disk is used only as it is written), formatted
//! ext4 without journal or reserved blocks and loop-mounted `nosuid,nodev` at
//! `<sandbox root>/scratch-<k>/mnt/<pid>-<n>`; its root directory is handed to the
//! environment's uid, mode `0700`. A write past the size fails with ENOSPC inside the
//! function and touches nothing else.
//!
//! A volume is a sparse copy of a template formatted once per size, loop-mounted
//! in-process (`loopdev.rs`: `LOOP_CONFIGURE` and `mount(2)`, the `mount` tool when that
//! fails): no subprocess per environment. Making one still waits on the kernel for
//! milliseconds, so it stays off the cold start: a background thread keeps [`READY_PER_SIZE`] volumes formatted and mounted for each of
//! the [`POOLED_SIZES`] sizes asked for most recently (512 MB from start-up), so a cold
//! start only takes one and chowns it. A released volume is unmounted and its image
//! deleted: the next environment always gets a freshly made, empty one.
//!
//! The directory `scratch-<k>` is claimed with a lock file, as uid blocks are. Start-up
//! unmounts and deletes what a dead instance left in every unlocked slot (and detaches
//! loop devices still bound to its images); shutdown does the same for this instance.
//!
//! Elsewhere TMPDIR is a directory per environment and only RLIMIT_FSIZE applies (each
//! file is capped at EphemeralStorage, the total is not): the reason is reported once.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{chmod, loopdev, private_dir, BLOCKS};

/// How TMPDIR is provided (`--tmp-storage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TmpStorage {
    /// A loop-mounted file system per environment where the host allows it, else a directory.
    #[default]
    Auto,
    /// A loop-mounted file system per environment, or Portico does not start.
    Loop,
    /// A directory per environment: each file is capped, the total is not.
    Dir,
}

/// Lambda's range of EphemeralStorage, MB.
const MIN_MB: u32 = 512;
const MAX_MB: u32 = 10_240;
const MIB: u64 = 1024 * 1024;
/// Volumes kept formatted and mounted for each pooled size.
const READY_PER_SIZE: usize = 2;
/// How many sizes (the most recently asked for) have volumes kept ready.
const POOLED_SIZES: usize = 4;
/// How long the background thread waits after failing to make a volume.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long shutdown waits for volumes being made to be finished (then removed).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);
/// Most bytes of data a copy of a template may hold (a fresh image holds well under 1 MB
/// per GB); beyond, the file system keeps no holes and volumes are formatted instead.
const SPARSE_COPY_MAX: u64 = 32 * MIB;
/// The only PATH the tools run with.
const TOOL_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a TMPDIR volume could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    /// EphemeralStorage outside Lambda's range (the model validates it first).
    #[error("EphemeralStorage must be {MIN_MB}-{MAX_MB} MB, got {0} MB")]
    Size(u32),
    /// Portico is stopping and removes its volumes.
    #[error("Portico is stopping: no new TMPDIR volume")]
    Stopping,
    /// A file operation on a volume's image, mount point or directory failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// `mkfs.ext4`, `mount` or `umount` failed.
    #[error("`{command}` failed: {output}")]
    Tool {
        /// The command line.
        command: String,
        /// Its exit status and error output.
        output: String,
    },
    /// The host cannot provide loop-mounted volumes.
    #[error("{0}")]
    Unavailable(String),
}

impl From<ScratchError> for io::Error {
    fn from(e: ScratchError) -> io::Error {
        let kind = match &e {
            ScratchError::Size(_) => io::ErrorKind::InvalidInput,
            ScratchError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ScratchError + 'a {
    move |source| ScratchError::Io { action, path: path.to_path_buf(), source }
}

/// One environment's TMPDIR volume, handed back with [`Scratch::release`].
#[derive(Debug)]
pub(crate) struct Volume {
    id: u64,
    path: PathBuf,
}

impl Volume {
    /// The mount point: the environment's TMPDIR.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The environments' TMPDIR provider: loop-mounted volumes, or plain directories.
#[derive(Debug)]
pub(crate) struct Scratch {
    requested: TmpStorage,
    volumes: Option<Arc<Volumes>>,
    /// Why TMPDIR is a plain directory (`None` with volumes).
    why_not: Option<String>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Scratch {
    /// Probes the host (making the first 512 MB volume) and starts the pool's thread.
    pub(super) fn setup(requested: TmpStorage, root: &Path) -> Scratch {
        let plain = |why: String| Scratch { requested, volumes: None, why_not: Some(why), worker: Mutex::new(None) };
        if requested == TmpStorage::Dir {
            return plain("--tmp-storage dir".into());
        }
        let volumes = match Volumes::open(root) {
            Ok(v) => Arc::new(v),
            Err(e) => return plain(e.to_string()),
        };
        // The probe: a volume made and mounted now, kept as the pool's first.
        match volumes.create(MIN_MB) {
            Ok(id) => volumes.state().ready.entry(MIN_MB).or_default().push(id),
            Err(e) => {
                volumes.shutdown();
                return plain(format!("making a test volume failed: {e}"));
            }
        }
        let pool = volumes.clone();
        let worker = std::thread::Builder::new().name("portico-tmpdir".into()).spawn(move || pool.refill());
        match worker {
            Ok(handle) => {
                Scratch { requested, volumes: Some(volumes), why_not: None, worker: Mutex::new(Some(handle)) }
            }
            Err(e) => {
                volumes.shutdown();
                plain(format!("starting the volume pool's thread: {e}"))
            }
        }
    }

    /// Whether TMPDIRs are volumes of their own.
    pub(super) fn is_loop(&self) -> bool {
        self.volumes.is_some()
    }

    /// One line saying what TMPDIR is.
    pub(super) fn describe(&self) -> String {
        match (&self.volumes, &self.why_not) {
            (Some(v), _) => format!(
                "a loop-mounted ext4 file system of EphemeralStorage MB per environment, {READY_PER_SIZE} kept ready per recent size (images in {})",
                v.dir.display()
            ),
            (None, why) => format!(
                "a directory per environment, each file capped at EphemeralStorage, the total not enforced ({})",
                why.as_deref().unwrap_or("")
            ),
        }
    }

    /// What is missing, as a sandbox gap.
    pub(super) fn gap(&self) -> Option<String> {
        let why = self.why_not.as_deref()?;
        Some(format!(
            "tmp: TMPDIR is a plain directory ({why}); each file is capped at EphemeralStorage by RLIMIT_FSIZE, but the total a function writes is not enforced"
        ))
    }

    /// Why `--tmp-storage loop` cannot be honoured.
    pub(super) fn refused(&self) -> Option<&str> {
        (self.requested == TmpStorage::Loop).then_some(self.why_not.as_deref()).flatten()
    }

    /// An empty volume of `mb` MB whose root only `owner` (uid, gid; else Portico's
    /// user) can open. Only with [`Scratch::is_loop`].
    pub(super) fn acquire(&self, mb: u32, owner: Option<(u32, u32)>) -> Result<Volume, ScratchError> {
        let Some(volumes) = &self.volumes else {
            return Err(ScratchError::Unavailable("TMPDIR volumes are not in use".into()));
        };
        volumes.acquire(mb, owner)
    }

    /// Unmounts and deletes a volume whose environment's processes are gone.
    pub(super) fn release(&self, volume: Volume) {
        if let Some(volumes) = &self.volumes {
            volumes.release(volume.id);
        }
    }

    /// Stops the pool and unmounts and deletes every volume; new requests are refused.
    /// The caller first ends the processes that could hold the volumes open.
    pub(super) fn shutdown(&self) {
        let Some(volumes) = &self.volumes else { return };
        volumes.stop();
        let worker = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = worker {
            let _ = w.join();
        }
        volumes.shutdown();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The programs volumes are made and removed with.
#[derive(Debug)]
struct Tools {
    mkfs: PathBuf,
    mount: PathBuf,
    umount: PathBuf,
    /// Only to detach loop devices a dead instance left bound to its images.
    losetup: Option<PathBuf>,
}

impl Tools {
    fn find() -> Result<Tools, ScratchError> {
        let need = |name: &str, package: &str| {
            find_program(name)
                .ok_or_else(|| ScratchError::Unavailable(format!("{name} is not installed (Debian package {package})")))
        };
        Ok(Tools {
            mkfs: need("mkfs.ext4", "e2fsprogs")?,
            mount: need("mount", "mount")?,
            umount: need("umount", "mount")?,
            losetup: find_program("losetup"),
        })
    }

    /// Unmounts `point`; lazily when it is busy (a process that survived its SIGKILL):
    /// the loop device is freed when its last user goes.
    fn unmount(&self, point: &Path) {
        if loopdev::unmount(point).is_ok() {
            return;
        }
        if let Err(e) = run(&self.umount, &[point.as_os_str()]) {
            if let Err(lazy) = run(&self.umount, &[OsStr::new("-l"), point.as_os_str()]) {
                tracing::warn!("TMPDIR volume {}: {e}; {lazy}", point.display());
            }
        }
    }
}

/// `name` in PATH or in the system directories.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(std::env::split_paths(TOOL_PATH))
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// Runs a tool with a clean environment; its error output becomes the error.
fn run(program: &Path, args: &[&OsStr]) -> Result<(), ScratchError> {
    let command = || {
        std::iter::once(program.as_os_str())
            .chain(args.iter().copied())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let out = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", TOOL_PATH)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ScratchError::Tool { command: command(), output: e.to_string() })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(ScratchError::Tool { command: command(), output: format!("{}: {}", out.status, stderr.trim()) })
}

/// This instance's volumes and its `scratch-<k>` directory.
#[derive(Debug)]
struct Volumes {
    dir: PathBuf,
    tools: Tools,
    next: AtomicU64,
    state: Mutex<State>,
    /// Signalled when a size is asked for, a volume is made, or Portico stops.
    changed: Condvar,
    /// Held (flock) for the instance's lifetime: the slot is ours while it is locked.
    _lock: File,
}

#[derive(Debug, Default)]
struct State {
    /// Every volume mounted, pooled or in use: id → MB.
    live: HashMap<u64, u32>,
    /// Volumes ready to hand out, per size.
    ready: HashMap<u32, Vec<u64>>,
    /// Sizes to keep volumes ready for, most recently asked for first.
    sizes: Vec<u32>,
    /// Volumes being made now (shutdown waits for them).
    building: usize,
    stopping: bool,
}

impl State {
    fn asked_for(&mut self, mb: u32) {
        self.sizes.retain(|s| *s != mb);
        self.sizes.insert(0, mb);
        self.sizes.truncate(POOLED_SIZES);
    }
}

/// What the pool's thread does next.
enum Task {
    Make(u32),
    Remove(Vec<u64>),
}

impl Volumes {
    /// Claims the first free slot under `root` after cleaning it, then cleans every other
    /// slot no live instance holds.
    fn open(root: &Path) -> Result<Volumes, ScratchError> {
        if !rustix::process::geteuid().is_root() {
            return Err(ScratchError::Unavailable("Portico is not root".into()));
        }
        if !Path::new("/dev/loop-control").exists() {
            return Err(ScratchError::Unavailable("no /dev/loop-control (loop devices)".into()));
        }
        let tools = Tools::find()?;
        fs::create_dir_all(root).map_err(io_error("creating", root))?;
        private_dir(root, 0o755).map_err(io_error("preparing", root))?;
        let mut claimed = None;
        for k in 0..BLOCKS {
            let Some(lock) = try_lock(&root.join(format!("scratch-{k}.lock")))? else { continue };
            let dir = root.join(format!("scratch-{k}"));
            if let Err(e) = clean(&dir, &tools) {
                tracing::warn!("TMPDIR volumes: {e}; trying the next slot");
                continue;
            }
            claimed = Some((k, dir, lock));
            break;
        }
        let Some((k, dir, lock)) = claimed else {
            return Err(ScratchError::Unavailable(format!(
                "all {BLOCKS} slots scratch-<k> under {} are held or cannot be cleaned",
                root.display()
            )));
        };
        sweep(root, k, &tools);
        let make = |d: &Path, mode: u32| fs::DirBuilder::new().mode(mode).create(d).map_err(io_error("creating", d));
        make(&dir, 0o711)?;
        make(&dir.join("img"), 0o700)?;
        make(&dir.join("mnt"), 0o711)?;
        let state = State { sizes: vec![MIN_MB], ..State::default() };
        Ok(Volumes {
            dir,
            tools,
            next: AtomicU64::new(1),
            state: Mutex::new(state),
            changed: Condvar::new(),
            _lock: lock,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Each update of the state is a few inserts and removals: consistent after a panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Named by Portico's pid too: a volume a dead instance left is never taken for ours.
    fn image(&self, id: u64) -> PathBuf {
        self.dir.join("img").join(format!("{}-{id}.img", std::process::id()))
    }

    fn mount_point(&self, id: u64) -> PathBuf {
        self.dir.join("mnt").join(format!("{}-{id}", std::process::id()))
    }

    fn acquire(&self, mb: u32, owner: Option<(u32, u32)>) -> Result<Volume, ScratchError> {
        if !(MIN_MB..=MAX_MB).contains(&mb) {
            return Err(ScratchError::Size(mb));
        }
        let pooled = {
            let mut st = self.state();
            if st.stopping {
                return Err(ScratchError::Stopping);
            }
            st.asked_for(mb);
            st.ready.get_mut(&mb).and_then(Vec::pop)
        };
        // The pool's thread makes the next one (or starts keeping this size ready).
        self.changed.notify_all();
        let id = match pooled {
            Some(id) => id,
            None => blocking(|| self.create(mb))?,
        };
        let path = self.mount_point(id);
        let handed = match owner {
            Some((uid, gid)) => std::os::unix::fs::chown(&path, Some(uid), Some(gid)),
            None => Ok(()),
        }
        .and_then(|()| chmod(&path, 0o700));
        if let Err(e) = handed {
            self.release(id);
            return Err(ScratchError::Io { action: "handing over", path, source: e });
        }
        Ok(Volume { id, path })
    }

    /// Makes and mounts a volume and registers it as live.
    fn create(&self, mb: u32) -> Result<u64, ScratchError> {
        {
            let mut st = self.state();
            if st.stopping {
                return Err(ScratchError::Stopping);
            }
            st.building += 1;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let made = self.build(id, mb);
        let registered = made.is_ok() && {
            let mut st = self.state();
            !st.stopping && st.live.insert(id, mb).is_none()
        };
        if !registered {
            self.destroy(id);
        }
        self.state().building -= 1;
        self.changed.notify_all();
        match made {
            Ok(()) if registered => Ok(id),
            Ok(()) => Err(ScratchError::Stopping),
            Err(e) => Err(e),
        }
    }

    /// A sparse image of exactly `mb` MB, formatted and mounted, its root empty: a copy
    /// of the size's template, loop-mounted in-process (the tools when that fails).
    fn build(&self, id: u64, mb: u32) -> Result<(), ScratchError> {
        let image = self.image(id);
        let point = self.mount_point(id);
        let template = self.template(mb)?;
        match loopdev::copy_sparse(&template, &image, SPARSE_COPY_MAX) {
            Ok(()) => {}
            // A file system without holes would copy the whole image: format instead.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => self.format(&image, mb)?,
            Err(e) => return Err(io_error("copying the template to", &image)(e)),
        }
        fs::DirBuilder::new().mode(0o700).create(&point).map_err(io_error("creating", &point))?;
        if let Err(e) = loopdev::mount(&image, &point) {
            tracing::debug!("TMPDIR volume {}: in-process loop mount: {e}; using mount(8)", point.display());
            run(
                &self.tools.mount,
                &[
                    OsStr::new("-t"),
                    OsStr::new("ext4"),
                    OsStr::new("-o"),
                    OsStr::new("loop,nosuid,nodev,noinit_itable"),
                    image.as_os_str(),
                    point.as_os_str(),
                ],
            )?;
        }
        // The function starts with an empty TMPDIR, as on Lambda (no fsck ever runs).
        let found = point.join("lost+found");
        fs::remove_dir(&found).map_err(io_error("removing", &found))
    }

    /// The formatted image every volume of `mb` MB is copied from, made once per size:
    /// no journal (nothing survives the environment), no blocks reserved for root, inode
    /// tables left for the kernel (never initialised: `noinit_itable`).
    fn template(&self, mb: u32) -> Result<PathBuf, ScratchError> {
        let path = self.dir.join("img").join(format!("template-{mb}.img"));
        if path.exists() {
            return Ok(path);
        }
        let made = self.image(self.next.fetch_add(1, Ordering::Relaxed));
        let formatted = self.format(&made, mb);
        // Two builders of the same size may race: either's template is as good.
        let placed = formatted.and_then(|()| fs::rename(&made, &path).map_err(io_error("placing", &path)));
        let _ = fs::remove_file(&made);
        placed.map(|()| path)
    }

    /// Makes `image`: a sparse file of `mb` MB, formatted.
    fn format(&self, image: &Path, mb: u32) -> Result<(), ScratchError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(image)
            .map_err(io_error("creating", image))?;
        file.set_len(u64::from(mb) * MIB).map_err(io_error("sizing", image))?;
        drop(file);
        run(
            &self.tools.mkfs,
            &["-q", "-F", "-b", "4096", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1,nodiscard"]
                .map(OsStr::new)
                .into_iter()
                .chain([image.as_os_str()])
                .collect::<Vec<_>>(),
        )
    }

    /// Unmounts (if mounted) and deletes a volume; never follows into its files.
    fn destroy(&self, id: u64) {
        let point = self.mount_point(id);
        if is_mount_point(&point) {
            self.tools.unmount(&point);
        }
        match fs::remove_dir(&point) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!("TMPDIR volume: removing {}: {e}", point.display())
            }
            _ => {}
        }
        let image = self.image(id);
        match fs::remove_file(&image) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!("TMPDIR volume: removing {}: {e}", image.display())
            }
            _ => {}
        }
    }

    fn release(&self, id: u64) {
        // Whoever takes it out of `live` removes it (shutdown may have done so already).
        let live = self.state().live.remove(&id).is_some();
        if live {
            self.destroy(id);
        }
    }

    /// The pool's thread: keeps volumes ready for the sizes recently asked for, removes
    /// those of sizes no longer asked for.
    fn refill(&self) {
        loop {
            let task = {
                let mut st = self.state();
                loop {
                    if st.stopping {
                        return;
                    }
                    let dropped: Vec<u32> = st.ready.keys().filter(|s| !st.sizes.contains(s)).copied().collect();
                    if !dropped.is_empty() {
                        let ids: Vec<u64> = dropped.iter().filter_map(|s| st.ready.remove(s)).flatten().collect();
                        for id in &ids {
                            st.live.remove(id);
                        }
                        break Task::Remove(ids);
                    }
                    let short = st.sizes.iter().copied().find(|s| st.ready.get(s).map_or(0, Vec::len) < READY_PER_SIZE);
                    if let Some(mb) = short {
                        break Task::Make(mb);
                    }
                    st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            match task {
                Task::Remove(ids) => ids.into_iter().for_each(|id| self.destroy(id)),
                Task::Make(mb) => match self.create(mb) {
                    Ok(id) => self.state().ready.entry(mb).or_default().push(id),
                    Err(ScratchError::Stopping) => return,
                    Err(e) => {
                        tracing::warn!("TMPDIR volumes: making a {mb} MB volume for the pool: {e}");
                        let st = self.state();
                        let _ = self.changed.wait_timeout_while(st, RETRY_AFTER, |s| !s.stopping);
                    }
                },
            }
        }
    }

    /// Refuses new volumes and wakes the pool's thread.
    fn stop(&self) {
        self.state().stopping = true;
        self.changed.notify_all();
    }

    /// Unmounts and deletes every volume and the slot's directory.
    fn shutdown(&self) {
        self.stop();
        let ids: Vec<u64> = {
            let st = self.state();
            let (mut st, _) = self
                .changed
                .wait_timeout_while(st, SHUTDOWN_WAIT, |s| s.building > 0)
                .unwrap_or_else(|e| e.into_inner());
            st.ready.clear();
            st.live.drain().map(|(id, _)| id).collect()
        };
        for id in ids {
            self.destroy(id);
        }
        if let Err(e) = clean(&self.dir, &self.tools) {
            tracing::warn!("TMPDIR volumes: {e}");
        }
    }
}

/// Runs `f` (a pool miss: mkfs and mount, some milliseconds) without holding up the other
/// tasks of the async worker it is called on, when that is a multi-threaded runtime's.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Opens `path` and takes its lock, or `None` when another process holds it.
fn try_lock(path: &Path) -> Result<Option<File>, ScratchError> {
    let lock =
        OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io_error("opening", path))?;
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(lock)),
        Err(_) => Ok(None),
    }
}

/// Cleans the slots of instances that are gone (their lock is free) other than `own`.
fn sweep(root: &Path, own: u32, tools: &Tools) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(k) = name
            .to_str()
            .and_then(|n| n.strip_prefix("scratch-"))
            .and_then(|n| n.strip_suffix(".lock"))
            .and_then(|k| k.parse::<u32>().ok())
        else {
            continue;
        };
        if k == own {
            continue;
        }
        if let Ok(Some(_lock)) = try_lock(&entry.path()) {
            if let Err(e) = clean(&root.join(format!("scratch-{k}")), tools) {
                tracing::warn!("TMPDIR volumes of a previous Portico: {e}");
            }
        }
    }
}

/// Unmounts everything mounted under `dir`, detaches loop devices bound to images in it,
/// then deletes it. Fails, deleting nothing, if something stays mounted there.
fn clean(dir: &Path, tools: &Tools) -> Result<(), ScratchError> {
    let mounted = |dir: &Path| -> Result<Vec<PathBuf>, ScratchError> {
        let text = fs::read_to_string("/proc/self/mountinfo")
            .map_err(io_error("reading", Path::new("/proc/self/mountinfo")))?;
        Ok(mounts_under(&text, dir))
    };
    let points = mounted(dir)?;
    for point in &points {
        tools.unmount(point);
    }
    if !points.is_empty() {
        tracing::info!("TMPDIR volumes: unmounted {} left by a previous Portico under {}", points.len(), dir.display());
    }
    if let Some(losetup) = &tools.losetup {
        for device in loops_backed_under(dir) {
            if let Err(e) = run(losetup, &[OsStr::new("-d"), device.as_os_str()]) {
                tracing::warn!("TMPDIR volumes: {e}");
            }
        }
    }
    let left = mounted(dir)?;
    if let Some(point) = left.first() {
        return Err(ScratchError::Unavailable(format!(
            "{} is still mounted; not deleting {}",
            point.display(),
            dir.display()
        )));
    }
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(ScratchError::Io { action: "deleting", path: dir.into(), source: e })
        }
        _ => Ok(()),
    }
}

/// Whether `path` is a directory with a file system mounted on it.
fn is_mount_point(path: &Path) -> bool {
    let (Ok(meta), Some(parent)) = (fs::symlink_metadata(path), path.parent()) else { return false };
    fs::symlink_metadata(parent).is_ok_and(|p| meta.is_dir() && p.dev() != meta.dev())
}

/// Mount points strictly below `dir` in a `/proc/self/mountinfo` text, deepest first.
fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p != dir && p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    points
}

/// `/proc/self/mountinfo` writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8).wrapping_add(b - b'0')));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Loop devices whose backing file is (or was, before its deletion) under `dir`.
fn loops_backed_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(blocks) = fs::read_dir("/sys/block") else { return Vec::new() };
    blocks
        .flatten()
        .filter_map(|b| {
            let name = b.file_name().to_str()?.to_string();
            if !name.starts_with("loop") {
                return None;
            }
            let backing = fs::read_to_string(b.path().join("loop/backing_file")).ok()?;
            let backing = backing.trim_end_matches('\n');
            let backing = backing.strip_suffix(" (deleted)").unwrap_or(backing);
            Path::new(backing).starts_with(dir).then(|| PathBuf::from("/dev").join(name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    #[test]
    fn mountinfo_paths_are_unescaped_and_filtered() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    90 27 7:0 / /var/lib/p/scratch-0/mnt/s1 rw,nosuid - ext4 /dev/loop0 rw\n\
                    91 27 7:1 / /var/lib/p/scratch-0/mnt/with\\040space rw - ext4 /dev/loop1 rw\n\
                    92 27 7:2 / /var/lib/p/scratch-01/mnt/s1 rw - ext4 /dev/loop2 rw\n";
        let under = mounts_under(text, Path::new("/var/lib/p/scratch-0"));
        assert_eq!(
            under,
            vec![PathBuf::from("/var/lib/p/scratch-0/mnt/s1"), PathBuf::from("/var/lib/p/scratch-0/mnt/with space")]
        );
        assert_eq!(unescape(r"a\134b\011c\0"), "a\\b\tc\\0");
    }

    #[test]
    fn recent_sizes_are_kept_in_order() {
        let mut st = State { sizes: vec![MIN_MB], ..State::default() };
        for mb in [1024, 2048, 512, 4096, 8192] {
            st.asked_for(mb);
        }
        assert_eq!(st.sizes, vec![8192, 4096, 512, 2048]);
    }

    #[test]
    fn errors_keep_their_kind() {
        let e: io::Error = ScratchError::Size(100).into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e: io::Error = ScratchError::Io {
            action: "creating",
            path: PathBuf::from("/x"),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().starts_with("creating /x: "), "{e}");
    }

    fn loop_host() -> bool {
        let ok = rustix::process::geteuid().is_root()
            && Path::new("/dev/loop-control").exists()
            && find_program("mkfs.ext4").is_some();
        if !ok {
            eprintln!("skipped: needs root, /dev/loop-control and mkfs.ext4");
        }
        ok
    }

    /// Writes `mb` MB with fallocate; the errno on failure.
    fn fill(path: &Path, mb: u64) -> Result<(), Errno> {
        let f = File::create(path).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
        rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, mb * MIB)
    }

    #[test]
    fn volumes_hold_exactly_their_size_and_leave_nothing_behind() {
        if !loop_host() {
            return;
        }
        let root = tempfile::tempdir().expect("tempdir");
        let scratch = Scratch::setup(TmpStorage::Loop, root.path());
        assert!(scratch.is_loop(), "{}", scratch.describe());
        assert!(scratch.refused().is_none());
        let dir = scratch.volumes.as_ref().map(|v| v.dir.clone()).expect("volumes");
        let a = scratch.acquire(512, Some((4242, 4243))).expect("acquire");
        let b = scratch.acquire(1024, None).expect("acquire another size");
        let meta = fs::metadata(a.path()).expect("stat");
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o7777), (4242, 4243, 0o700));
        assert_eq!(fs::read_dir(a.path()).expect("list").count(), 0, "an empty TMPDIR");
        // The total is bounded: the third 200 MB file does not fit in 512 MB.
        fill(&a.path().join("1"), 200).expect("first 200 MB");
        fill(&a.path().join("2"), 200).expect("second 200 MB");
        assert_eq!(fill(&a.path().join("3"), 200), Err(Errno::NOSPC));
        // Another volume is unaffected.
        fill(&b.path().join("1"), 900).expect("900 MB in 1024 MB");
        scratch.release(a);
        scratch.release(b);
        assert_eq!(
            scratch.acquire(MIN_MB - 1, None).err().map(|e| e.to_string()),
            Some(ScratchError::Size(511).to_string())
        );
        let fresh = scratch.acquire(512, None).expect("acquire again");
        assert_eq!(fs::read_dir(fresh.path()).expect("list").count(), 0, "the next TMPDIR is empty");
        drop(scratch);
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(mounts_under(&mountinfo, root.path()).is_empty(), "{mountinfo}");
        assert!(loops_backed_under(root.path()).is_empty());
        assert!(!dir.exists(), "the slot's directory is deleted");
    }

    #[test]
    fn a_miss_is_made_on_any_runtime() {
        if !loop_host() {
            return;
        }
        let root = tempfile::tempdir().expect("tempdir");
        let scratch = Arc::new(Scratch::setup(TmpStorage::Loop, root.path()));
        for mut flavor in [tokio::runtime::Builder::new_current_thread(), tokio::runtime::Builder::new_multi_thread()] {
            let rt = flavor.enable_all().build().expect("runtime");
            let s = scratch.clone();
            // 600 MB: no volume of that size is ready.
            let v = rt.block_on(async move { tokio::spawn(async move { s.acquire(600, None) }).await.expect("join") });
            let v = v.expect("acquire");
            assert_eq!(fs::read_dir(v.path()).expect("list").count(), 0);
            scratch.release(v);
        }
    }

    #[test]
    fn a_dead_instances_volumes_are_removed_at_start() {
        if !loop_host() {
            return;
        }
        let root = tempfile::tempdir().expect("tempdir");
        let mut first = Scratch::setup(TmpStorage::Auto, root.path());
        let held = first.acquire(512, None).expect("acquire");
        // As if the first instance had died: its volumes stay mounted, its lock goes.
        let volumes = first.volumes.take().expect("volumes");
        let worker = first.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        volumes.stop();
        if let Some(w) = worker {
            w.join().expect("join");
        }
        drop(first);
        let dir = volumes.dir.clone();
        drop(held);
        let Ok(volumes) = Arc::try_unwrap(volumes) else { panic!("the pool's thread has ended") };
        drop(volumes);
        // A child another test forks holds our descriptors (the lock's too) until its exec.
        let lock = root.path().join("scratch-0.lock");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while try_lock(&lock).expect("lock").is_none() {
            assert!(std::time::Instant::now() < deadline, "the lock stays held");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!mounts_under(&mountinfo, &dir).is_empty(), "left mounted");
        let second = Scratch::setup(TmpStorage::Auto, root.path());
        assert!(second.is_loop(), "{}", second.describe());
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let own = second.volumes.as_ref().map(|v| v.dir.clone()).expect("volumes");
        assert!(mounts_under(&mountinfo, root.path()).iter().all(|p| p.starts_with(&own)), "{mountinfo}");
        drop(second);
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(mounts_under(&mountinfo, root.path()).is_empty(), "{mountinfo}");
        assert!(loops_backed_under(root.path()).is_empty());
    }
}
