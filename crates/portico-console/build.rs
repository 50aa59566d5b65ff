// The console's pages are embedded from `console/static` (include_dir): rebuild when any
// of them changes, or a file is added or removed.
fn main() {
    println!("cargo:rerun-if-changed=../../console/static");
}
