//! Deployment packages: validating and unpacking function zips into a content-addressed
//! tree, `<root>/<sha256-hex>/`, which environments use as their task root.
//!
//! Extraction refuses anything that could write outside the tree (absolute paths, `..`,
//! symlinks pointing out) and counts the bytes actually written, so a zip bomb that
//! lies about its sizes is stopped at AWS's unzipped limit. Symlinks are checked by
//! their text alone, which is sound only if nothing is resolved through another link:
//! so no entry is written through (or over) a symlink extracted before it, and a
//! link's target may climb with `..` only before its first name (`../lib/a.js`, not
//! `lib/../..`), since a name may itself be a link to elsewhere in the tree.
//!
//! A finished tree is read-only: files `0444` (`0555` when executable), directories
//! `0555`, owned by Portico's user. Functions running as other users (see `sandbox.rs`)
//! can neither write nor chmod it; remove a tree with [`remove_tree`].

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use portico_model::function::limits::MAX_UNZIPPED_BYTES;

/// Why a package was refused.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// Not a readable zip archive.
    #[error("Could not unzip uploaded file. Please check your file, then try to upload again.")]
    NotAZip(#[source] zip::result::ZipError),
    /// An entry would land outside the code directory.
    #[error("Could not unzip uploaded file: entry '{0}' would be extracted outside the function's code directory.")]
    UnsafePath(String),
    /// The unzipped package exceeds AWS's limit.
    #[error("Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")]
    TooLarge,
    /// Writing the tree failed (a server-side fault).
    #[error("writing code to {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

/// Unpacked code trees, content-addressed by the zip's SHA-256.
#[derive(Debug, Clone)]
pub struct CodeCache {
    root: PathBuf,
}

impl CodeCache {
    /// A cache rooted at `root` (created on demand).
    pub fn new(root: PathBuf) -> CodeCache {
        CodeCache { root }
    }

    /// The task root for a package.
    pub fn path(&self, sha256_hex: &str) -> PathBuf {
        self.root.join(sha256_hex)
    }

    /// Whether a package is unpacked already.
    pub fn contains(&self, sha256_hex: &str) -> bool {
        self.path(sha256_hex).is_dir()
    }

    /// Validates `zip` and unpacks it under its hash. Idempotent; the tree appears
    /// atomically (extracted to a temporary sibling, then renamed).
    pub fn install(&self, sha256_hex: &str, zip: &[u8]) -> Result<PathBuf, CodeError> {
        let dest = self.path(sha256_hex);
        if dest.is_dir() {
            return Ok(dest);
        }
        let ioerr = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CodeError::Io { path, source }
        };
        fs::create_dir_all(&self.root).map_err(ioerr(&self.root))?;
        let tmp = self.root.join(format!(".{sha256_hex}.{}", uuid::Uuid::new_v4().simple()));
        let result = extract(zip, &tmp).and_then(|()| seal_dirs(&tmp).map_err(ioerr(&tmp)));
        if let Err(e) = result {
            let _ = remove_tree(&tmp);
            return Err(e);
        }
        match fs::rename(&tmp, &dest) {
            Ok(()) => Ok(dest),
            // Another upload of the same package won the race: same content.
            Err(_) if dest.is_dir() => {
                let _ = remove_tree(&tmp);
                Ok(dest)
            }
            Err(e) => Err(CodeError::Io { path: dest, source: e }),
        }
    }
}

/// Makes every directory of a tree `0555`: nothing can be added, renamed or removed.
fn seal_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            seal_dirs(&entry.path())?;
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o555))
}

/// Removes a code tree: its directories are made writable again first, since only
/// root may delete entries of a `0555` directory.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fn open_up(dir: &Path) -> io::Result<()> {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                open_up(&entry.path())?;
            }
        }
        Ok(())
    }
    match open_up(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        _ => {}
    }
    fs::remove_dir_all(dir)
}

/// Checks that a zip entry name stays inside the tree; returns the relative path.
fn safe_relative(name: &str) -> Result<PathBuf, CodeError> {
    let path = Path::new(name);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(CodeError::UnsafePath(name.to_string()))
            }
        }
    }
    if name.contains('\\') || name.contains('\0') {
        return Err(CodeError::UnsafePath(name.to_string()));
    }
    Ok(out)
}

/// Resolves a symlink target relative to the link's directory and checks it stays inside.
/// `..` may only lead the target: after a name it would climb out of wherever that name
/// points, which the text alone does not tell (`a -> ../..` then `b -> a/../../..`).
fn safe_link_target(link_rel: &Path, target: &str) -> Result<(), CodeError> {
    let unsafe_path = || CodeError::UnsafePath(format!("{} -> {target}", link_rel.display()));
    if target.starts_with('/') {
        return Err(unsafe_path());
    }
    let mut depth = i64::try_from(link_rel.components().count()).unwrap_or(i64::MAX) - 1;
    let mut named = false;
    for c in Path::new(target).components() {
        match c {
            Component::Normal(_) => {
                depth += 1;
                named = true;
            }
            Component::ParentDir if named => return Err(unsafe_path()),
            Component::ParentDir => depth -= 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => depth = -1,
        }
        if depth < 0 {
            return Err(unsafe_path());
        }
    }
    Ok(())
}

/// Refuses an entry whose path goes through, or ends at, a symlink extracted before it:
/// writing there would follow the link (`l -> .`, `l/up -> ..`, then `l/up/x` lands
/// outside the tree).
fn no_link_on_path(dest: &Path, rel: &Path, name: &str) -> Result<(), CodeError> {
    let mut at = dest.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(CodeError::UnsafePath(name.to_string())),
            Ok(_) => {}
            // Nothing here yet, so nothing below it either.
            Err(_) => break,
        }
    }
    Ok(())
}

fn extract(zip: &[u8], dest: &Path) -> Result<(), CodeError> {
    let ioerr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CodeError::Io { path, source }
    };
    let mut archive = zip::ZipArchive::new(io::Cursor::new(zip)).map_err(CodeError::NotAZip)?;
    fs::create_dir_all(dest).map_err(ioerr(dest))?;
    let mut budget = MAX_UNZIPPED_BYTES;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(CodeError::NotAZip)?;
        let name = entry.name().to_string();
        let rel = safe_relative(&name)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        no_link_on_path(dest, &rel, &name)?;
        let out = dest.join(&rel);
        if entry.is_dir() {
            fs::create_dir_all(&out).map_err(ioerr(&out))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(ioerr(parent))?;
        }
        let is_symlink = entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000);
        if is_symlink {
            let mut target = String::new();
            entry.by_ref().take(4096).read_to_string(&mut target).map_err(|_| CodeError::UnsafePath(name.clone()))?;
            safe_link_target(&rel, &target)?;
            std::os::unix::fs::symlink(&target, &out).map_err(ioerr(&out))?;
            continue;
        }
        let mut file = fs::File::create(&out).map_err(ioerr(&out))?;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(CodeError::NotAZip(zip::result::ZipError::Io(e))),
            };
            budget = budget.checked_sub(n as u64).ok_or(CodeError::TooLarge)?;
            file.write_all(&buf[..n]).map_err(ioerr(&out))?;
        }
        // Keep the executable bit (custom runtimes' `bootstrap`), drop everything else:
        // the tree is read-only for the function.
        let exec = entry.unix_mode().is_some_and(|m| m & 0o111 != 0);
        let mode = if exec { 0o555 } else { 0o444 };
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&out, fs::Permissions::from_mode(mode)).map_err(ioerr(&out))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).expect("start");
            w.write_all(data).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    #[test]
    fn extracts_and_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CodeCache::new(dir.path().join("code"));
        let zip = make_zip(&[("index.mjs", b"export const handler = 1"), ("lib/a.js", b"x")]);
        let p = cache.install("abc", &zip).expect("install");
        assert_eq!(fs::read(p.join("index.mjs")).expect("read"), b"export const handler = 1");
        assert!(p.join("lib/a.js").is_file());
        cache.install("abc", &zip).expect("again");
    }

    #[test]
    fn trees_are_read_only_and_removable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CodeCache::new(dir.path().join("code"));
        let p = cache.install("abc", &make_zip(&[("index.mjs", b"x"), ("lib/a.js", b"y")])).expect("install");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o555);
        assert_eq!(mode(&p.join("lib")), 0o555);
        assert_eq!(mode(&p.join("lib/a.js")), 0o444);
        remove_tree(&p).expect("remove");
        assert!(!p.exists());
        remove_tree(&p).expect("gone already");
    }

    #[test]
    fn refuses_garbage_and_escapes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CodeCache::new(dir.path().join("code"));
        assert!(matches!(cache.install("a", b"not a zip"), Err(CodeError::NotAZip(_))));
        let evil = make_zip(&[("../evil.js", b"x")]);
        assert!(matches!(cache.install("b", &evil), Err(CodeError::UnsafePath(_))));
        assert!(!dir.path().join("evil.js").exists());
        let abs = make_zip(&[("/tmp/evil.js", b"x")]);
        assert!(matches!(cache.install("c", &abs), Err(CodeError::UnsafePath(_))));
        assert!(!cache.contains("b") && !cache.contains("c"));
    }

    #[test]
    fn link_targets() {
        assert!(safe_link_target(Path::new("a/link"), "../b").is_ok());
        assert!(safe_link_target(Path::new("a/b/link"), "../../lib/./x.js").is_ok());
        assert!(safe_link_target(Path::new("link"), "../b").is_err());
        assert!(safe_link_target(Path::new("link"), "/etc/passwd").is_err());
        // `..` after a name: `a` may be a link itself.
        assert!(safe_link_target(Path::new("p/q/b"), "a/../../..").is_err());
        assert!(safe_link_target(Path::new("p/q/b"), "a/..").is_err());
    }

    /// A zip entry that is a symlink (Unix mode `0o120777`) with this target.
    fn add_link(w: &mut zip::ZipWriter<io::Cursor<Vec<u8>>>, name: &str, target: &str) {
        w.add_symlink(name, target, SimpleFileOptions::default()).expect("symlink entry");
    }

    #[test]
    fn refuses_symlink_escapes() {
        // The seeds fuzz/seeds/zip_extract/symlink-*.zip of the zip_extract fuzz target.
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CodeCache::new(dir.path().join("code"));
        // Each link is inside by its text, but `up` is made through `l`, which is the
        // tree itself: `l/up/escaped.txt` would land in the cache root.
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        add_link(&mut w, "l", ".");
        add_link(&mut w, "l/up", "..");
        w.start_file("l/up/escaped.txt", SimpleFileOptions::default()).expect("start");
        w.write_all(b"outside").expect("write");
        let chain = w.finish().expect("finish").into_inner();
        assert!(matches!(cache.install("a", &chain), Err(CodeError::UnsafePath(_))));
        assert!(!dir.path().join("code/escaped.txt").exists());
        // `a` is the tree's root, so `a/../../..` is three levels above it.
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        add_link(&mut w, "p/q/a", "../..");
        add_link(&mut w, "p/q/b", "a/../../..");
        let dotdot = w.finish().expect("finish").into_inner();
        assert!(matches!(cache.install("b", &dotdot), Err(CodeError::UnsafePath(_))));
        // Links inside the tree work; an entry through one is refused all the same.
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        w.start_file("lib/a.js", SimpleFileOptions::default()).expect("start");
        add_link(&mut w, "node_modules/.bin/a", "../../lib/a.js");
        let ok = w.finish().expect("finish").into_inner();
        let tree = cache.install("c", &ok).expect("links inside the tree");
        assert!(fs::symlink_metadata(tree.join("node_modules/.bin/a")).expect("link").file_type().is_symlink());
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        w.add_directory("lib", SimpleFileOptions::default()).expect("dir");
        add_link(&mut w, "x", "lib");
        w.start_file("x/a.js", SimpleFileOptions::default()).expect("start");
        let over = w.finish().expect("finish").into_inner();
        assert!(matches!(cache.install("d", &over), Err(CodeError::UnsafePath(_))));
        assert!(!cache.contains("a") && !cache.contains("b") && !cache.contains("d"));
    }

    /// A raw deflate stream (one fixed-Huffman block) that inflates to `1 + 258 * runs`
    /// zero bytes from about `13 * runs / 8` bytes: a literal 0, then `runs` matches of
    /// length 258 at distance 1. Hand-made, so the test needs no compressor.
    fn deflate_zeros(runs: usize) -> Vec<u8> {
        struct Bits {
            out: Vec<u8>,
            acc: u32,
            n: u32,
        }
        impl Bits {
            fn bit(&mut self, b: u32) {
                self.acc |= (b & 1) << self.n;
                self.n += 1;
                if self.n == 8 {
                    self.out.push(self.acc as u8);
                    (self.acc, self.n) = (0, 0);
                }
            }
            /// A Huffman code: most significant bit first.
            fn code(&mut self, code: u32, len: u32) {
                for i in (0..len).rev() {
                    self.bit(code >> i);
                }
            }
        }
        let mut w = Bits { out: Vec::with_capacity(runs * 13 / 8 + 8), acc: 0, n: 0 };
        w.bit(1); // BFINAL
        w.bit(1); // BTYPE = 01 (fixed Huffman), least significant bit first
        w.bit(0);
        w.code(0x30, 8); // literal 0
        for _ in 0..runs {
            w.code(0xC5, 8); // length code 285: 258 bytes, no extra bits
            w.code(0, 5); // distance code 0: distance 1
        }
        w.code(0, 7); // end of block (256)
        while w.n != 0 {
            w.bit(0);
        }
        w.out
    }

    /// A one-entry zip of `deflated` whose local and central headers both claim
    /// `claimed` uncompressed bytes with `crc`.
    fn lying_zip(name: &str, deflated: &[u8], claimed: u32, crc: u32) -> Vec<u8> {
        let compressed = u32::try_from(deflated.len()).expect("small enough");
        let name_len = u16::try_from(name.len()).expect("short name");
        let mut z = Vec::new();
        let le16 = |z: &mut Vec<u8>, v: u16| z.extend_from_slice(&v.to_le_bytes());
        let le32 = |z: &mut Vec<u8>, v: u32| z.extend_from_slice(&v.to_le_bytes());
        // Local file header.
        le32(&mut z, 0x0403_4b50);
        for v in [20, 0, 8, 0, 0x21] {
            le16(&mut z, v); // version needed, flags, method (deflate), time, date
        }
        for v in [crc, compressed, claimed] {
            le32(&mut z, v);
        }
        le16(&mut z, name_len);
        le16(&mut z, 0);
        z.extend_from_slice(name.as_bytes());
        z.extend_from_slice(deflated);
        // Central directory.
        let cd_offset = u32::try_from(z.len()).expect("small enough");
        le32(&mut z, 0x0201_4b50);
        for v in [(3 << 8) | 30, 20, 0, 8, 0, 0x21] {
            le16(&mut z, v); // made by (Unix), needed, flags, method, time, date
        }
        for v in [crc, compressed, claimed] {
            le32(&mut z, v);
        }
        for v in [name_len, 0, 0, 0, 0] {
            le16(&mut z, v); // name, extra, comment lengths, disk, internal attributes
        }
        le32(&mut z, 0o100644 << 16);
        le32(&mut z, 0); // the local header's offset
        z.extend_from_slice(name.as_bytes());
        let cd_size = u32::try_from(z.len()).expect("small enough") - cd_offset;
        // End of central directory.
        le32(&mut z, 0x0605_4b50);
        for v in [0, 0, 1, 1] {
            le16(&mut z, v);
        }
        le32(&mut z, cd_size);
        le32(&mut z, cd_offset);
        le16(&mut z, 0);
        z
    }

    #[test]
    fn a_zip_lying_about_its_size_is_stopped_by_the_bytes_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CodeCache::new(dir.path().join("code"));
        // The stream and the container are sound: told the truth, a small one unpacks.
        let small = deflate_zeros(4);
        let honest = lying_zip("index.mjs", &small, 1 + 258 * 4, crc32_of_zeros(1 + 258 * 4));
        let tree = cache.install("honest", &honest).expect("an honest zip");
        assert_eq!(fs::read(tree.join("index.mjs")).expect("read"), vec![0u8; 1 + 258 * 4]);
        // 1.6 MB that inflate to 263 MB (past AWS's 250 MiB), both headers claiming 1 KiB
        // (and the CRC of 1 KiB of zeros): only counting what is written can stop it.
        let runs = 1_020_000;
        assert!(1 + 258 * runs as u64 > MAX_UNZIPPED_BYTES);
        let bomb = lying_zip("index.mjs", &deflate_zeros(runs), 1024, crc32_of_zeros(1024));
        assert!(bomb.len() < 2 * 1024 * 1024, "{}", bomb.len());
        let listed = zip::ZipArchive::new(io::Cursor::new(&bomb[..])).expect("a well-formed archive");
        assert_eq!(listed.decompressed_size(), Some(1024), "the headers claim 1 KiB");
        match cache.install("bomb", &bomb) {
            Err(CodeError::TooLarge) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // Nothing is left: neither the tree nor its temporary sibling.
        assert!(!cache.contains("bomb"));
        let left: Vec<_> = fs::read_dir(dir.path().join("code"))
            .expect("code root")
            .map(|e| e.expect("entry").file_name())
            .filter(|n| n != "honest")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// CRC-32 (IEEE) of `n` zero bytes, bit by bit: small `n` only.
    fn crc32_of_zeros(n: usize) -> u32 {
        let mut crc = !0u32;
        for _ in 0..n {
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
