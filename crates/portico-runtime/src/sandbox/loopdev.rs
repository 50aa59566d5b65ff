//! TMPDIR volumes without subprocesses: a loop device bound with `LOOP_CONFIGURE`
//! (Linux 5.8+), `mount(2)` and `umount2(2)`, and a sparse copy of a formatted template
//! instead of `mkfs.ext4`. Each replaces a tool run of a few milliseconds of CPU per
//! environment (a burst of cold starts makes one volume per environment).
//!
//! The loop device is bound with `LO_FLAGS_AUTOCLEAR`: it detaches itself when its file
//! system is unmounted, so nothing here has to remember it.

// Every function here is a system call the standard library does not wrap; each
// `unsafe` block passes only live, NUL-terminated or repr(C) arguments (see each SAFETY).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `<linux/loop.h>`: `LOOP_CTL_GET_FREE`, `LOOP_CONFIGURE`, `LO_FLAGS_AUTOCLEAR`.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// Another process may take the free device between asking and binding: ask again.
const BIND_ATTEMPTS: usize = 8;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// Binds `image` to a free loop device (auto-clearing); returns the device's path and an
/// open handle, to be dropped once the device is mounted.
fn bind(image: &Path) -> io::Result<(PathBuf, File)> {
    let backing = OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open(image)?;
    let control = OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open("/dev/loop-control")?;
    let mut last = io::Error::from(io::ErrorKind::ResourceBusy);
    for _ in 0..BIND_ATTEMPTS {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let device = OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open(&path)?;
        let config = LoopConfig {
            fd: u32::try_from(backing.as_raw_fd()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            block_size: 0,
            info: LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: 0,
                lo_sizelimit: 0,
                lo_number: 0,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags: LO_FLAGS_AUTOCLEAR,
                lo_file_name: file_name(image),
                lo_crypt_name: [0; 64],
                lo_encrypt_key: [0; 32],
                lo_init: [0; 2],
            },
            reserved: [0; 8],
        };
        // SAFETY: LOOP_CONFIGURE reads one `struct loop_config`, which `config` is
        // (repr(C), the kernel's layout), alive for the call.
        if unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE, &config as *const LoopConfig) } == 0 {
            return Ok((path, device));
        }
        last = io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::EBUSY) {
            break;
        }
    }
    Err(last)
}

/// The backing file's name as the kernel keeps it (for `losetup -a` and /sys): its last
/// 63 bytes when longer.
fn file_name(image: &Path) -> [u8; 64] {
    let bytes = image.as_os_str().as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(63)..];
    let mut name = [0u8; 64];
    name[..tail.len()].copy_from_slice(tail);
    name
}

/// Loop-mounts the ext4 `image` at `point`, `nosuid,nodev,noinit_itable`.
pub(super) fn mount(image: &Path, point: &Path) -> io::Result<()> {
    let (device, _held) = bind(image)?;
    let (source, target) = (cstring(&device)?, cstring(point)?);
    let data = c"noinit_itable";
    // SAFETY: every pointer is a NUL-terminated string alive for the call.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            c"ext4".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        // Dropping the last handle of an unmounted auto-clearing device detaches it.
        Err(io::Error::last_os_error())
    }
}

/// Unmounts `point`; lazily when it is busy (a process that survived its SIGKILL). The
/// loop device detaches itself once its last user is gone.
pub(super) fn unmount(point: &Path) -> io::Result<()> {
    let target = cstring(point)?;
    // SAFETY: `target` is a NUL-terminated string alive for the call.
    if unsafe { libc::umount2(target.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let first = io::Error::last_os_error();
    if first.raw_os_error() != Some(libc::EBUSY) {
        return Err(first);
    }
    // SAFETY: as above.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Copies `from` into the new file `to` hole for hole: only the extents that hold data
/// (a fresh ext4 image of 512 MB has ~300 KB of them) are read and written. A file system
/// that reports no holes would make this a full copy: past `max_data` bytes of data it
/// fails with [`io::ErrorKind::Unsupported`] before writing anything.
pub(super) fn copy_sparse(from: &Path, to: &Path, max_data: u64) -> io::Result<()> {
    let src = File::open(from)?;
    let len = src.metadata()?.len();
    let extents = data_extents(&src, len)?;
    let data: i64 = extents.iter().map(|(start, end)| end - start).sum();
    if u64::try_from(data).unwrap_or(u64::MAX) > max_data {
        return Err(io::Error::new(io::ErrorKind::Unsupported, format!("{} has {data} bytes of data", from.display())));
    }
    let dst = OpenOptions::new().write(true).create_new(true).mode(0o600).open(to)?;
    dst.set_len(len)?;
    for (start, end) in extents {
        let (mut from_off, mut to_off) = (start, start);
        while from_off < end {
            let want = usize::try_from(end - from_off).unwrap_or(usize::MAX);
            // SAFETY: both offsets point at live `i64`s; the descriptors are open.
            let n =
                unsafe { libc::copy_file_range(src.as_raw_fd(), &mut from_off, dst.as_raw_fd(), &mut to_off, want, 0) };
            match n {
                n if n > 0 => {}
                0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                _ => return Err(io::Error::last_os_error()),
            }
        }
    }
    Ok(())
}

/// The `[start, end)` byte ranges of `file` that hold data (`SEEK_DATA`/`SEEK_HOLE`).
fn data_extents(file: &File, len: u64) -> io::Result<Vec<(i64, i64)>> {
    let end = i64::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut extents = Vec::new();
    let mut offset: i64 = 0;
    while offset < end {
        // SAFETY: lseek on an open descriptor; no memory is passed.
        let data = unsafe { libc::lseek(file.as_raw_fd(), offset, libc::SEEK_DATA) };
        if data < 0 {
            let e = io::Error::last_os_error();
            // ENXIO: no data past `offset`; the rest is a hole.
            return if e.raw_os_error() == Some(libc::ENXIO) { Ok(extents) } else { Err(e) };
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(file.as_raw_fd(), data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        extents.push((data, hole));
        offset = hole;
    }
    Ok(extents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_sparse_copy_keeps_the_data_and_the_holes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        let mut f = File::create(&from).expect("create");
        f.set_len(64 << 20).expect("size");
        for (at, byte) in [(0u64, b'a'), (20 << 20, b'b'), ((64 << 20) - 4096, b'c')] {
            f.seek(SeekFrom::Start(at)).expect("seek");
            f.write_all(&[byte; 4096]).expect("write");
        }
        drop(f);
        assert_eq!(
            copy_sparse(&from, &to, 8 << 10).map_err(|e| e.kind()),
            Err(io::ErrorKind::Unsupported),
            "more data than allowed: refused"
        );
        assert!(!to.exists(), "and nothing written");
        copy_sparse(&from, &to, 1 << 20).expect("copy");
        assert_eq!(std::fs::read(&from).expect("read"), std::fs::read(&to).expect("read"));
        let blocks = std::fs::metadata(&to).expect("stat").blocks() * 512;
        assert!(blocks < 1 << 20, "the copy is sparse: {blocks} bytes allocated");
        assert!(copy_sparse(&from, &to, 1 << 20).is_err(), "never overwrites");
    }

    #[test]
    fn a_loop_mount_detaches_its_device_when_unmounted() {
        let root = rustix::process::geteuid().is_root() && Path::new("/dev/loop-control").exists();
        let Some(mkfs) = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"].into_iter().find(|p| Path::new(p).exists()) else {
            return eprintln!("skipped: needs mkfs.ext4");
        };
        if !root {
            return eprintln!("skipped: needs root and /dev/loop-control");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (image, point) = (dir.path().join("v.img"), dir.path().join("mnt"));
        File::create(&image).and_then(|f| f.set_len(64 << 20)).expect("image");
        let made = std::process::Command::new(mkfs).args(["-q", "-F"]).arg(&image).status().expect("mkfs");
        assert!(made.success());
        std::fs::create_dir(&point).expect("mount point");
        mount(&image, &point).expect("mount");
        assert_ne!(std::fs::metadata(&point).expect("stat").dev(), std::fs::metadata(dir.path()).expect("stat").dev());
        let bound = || {
            std::fs::read_dir("/sys/block")
                .expect("/sys/block")
                .flatten()
                .filter_map(|b| std::fs::read_to_string(b.path().join("loop/backing_file")).ok())
                .filter(|f| f.trim_end().starts_with(image.to_string_lossy().as_ref()))
                .count()
        };
        assert_eq!(bound(), 1, "one loop device holds the image");
        unmount(&point).expect("unmount");
        assert_eq!(std::fs::metadata(&point).expect("stat").dev(), std::fs::metadata(dir.path()).expect("stat").dev());
        // Auto-clear runs when the last reference goes, a moment after the unmount.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while bound() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(bound(), 0, "the loop device detached itself");
    }
}
