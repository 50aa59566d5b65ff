//! The code cache's unpacking (`CodeCache::install`) on arbitrary bytes, in a fresh
//! temporary directory: it never panics, never writes outside its tree, and leaves no
//! symlink in the tree that resolves outside it.
#![no_main]

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portico_runtime::code::{remove_tree, CodeCache};

/// Every symlink under `dir` that resolves must resolve inside `root`.
fn check_links(dir: &Path, root: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_symlink() {
            if let Ok(to) = fs::canonicalize(&path) {
                assert!(to.starts_with(root), "{} resolves outside the tree, to {}", path.display(), to.display());
            }
        } else if kind.is_dir() {
            check_links(&path, root);
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fuzz_target!(|data: &[u8]| {
    // <tmp>/a/b/cache/<hash>: an escape of a few levels still lands inside <tmp>.
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let root = tmp.path().join("a/b/cache");
    let cache = CodeCache::new(root.clone());
    let installed = cache.install("0123abcd", data);
    assert_eq!(names(tmp.path()), ["a"]);
    assert_eq!(names(&tmp.path().join("a")), ["b"]);
    assert_eq!(names(&tmp.path().join("a/b")), ["cache"]);
    match installed {
        Ok(tree) => {
            assert_eq!(names(&root), ["0123abcd"]);
            let tree = fs::canonicalize(tree).expect("the tree exists");
            check_links(&tree, &tree);
            remove_tree(&tree).expect("the tree can be removed");
        }
        // A refused package leaves nothing behind.
        Err(_) => assert!(names(&root).is_empty(), "left behind: {:?}", names(&root)),
    }
});
