//! How each runtime id becomes a command line, and where its interpreter comes from.
//!
//! Interpreters are resolved explicitly: a configured path, or a `node` on `PATH`
//! whose major version matches the runtime. A missing interpreter is reported with
//! what to install, never replaced by another version.

use std::path::{Path, PathBuf};
use std::process::Command;

use portico_model::Runtime;

/// The Node.js runtime client, shipped inside the binary.
pub const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/nodejs/bootstrap.mjs");

/// Why a runtime cannot start.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// The interpreters configured for each runtime.
#[derive(Debug, Clone, Default)]
pub struct Interpreters {
    /// `nodejs22.x`: path of a Node.js 22 binary.
    pub nodejs22: Option<PathBuf>,
    /// `nodejs20.x`: path of a Node.js 20 binary.
    pub nodejs20: Option<PathBuf>,
}

/// A resolved runtime: how to start it.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Directory holding the runtime's own files (`LAMBDA_RUNTIME_DIR`).
    pub runtime_dir: PathBuf,
}

/// Resolved launchers for every runtime, or why each is unavailable.
#[derive(Debug, Clone)]
pub struct Launchers {
    nodejs22: Result<Launcher, Unavailable>,
    nodejs20: Result<Launcher, Unavailable>,
}

fn node_major(bin: &Path) -> Option<u32> {
    let out = Command::new(bin).arg("--version").env_clear().output().ok()?;
    let v = String::from_utf8(out.stdout).ok()?;
    v.trim().strip_prefix('v')?.split('.').next()?.parse().ok()
}

fn find_on_path(name: &str) -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).filter(|p| p.is_file()).collect())
        .unwrap_or_default()
}

impl Launchers {
    /// Resolves every runtime. `runtimes_dir` is where the bootstraps are written.
    pub fn resolve(cfg: &Interpreters, runtimes_dir: &Path) -> std::io::Result<Launchers> {
        let node_dir = runtimes_dir.join("nodejs");
        std::fs::create_dir_all(&node_dir)?;
        let bootstrap = node_dir.join("bootstrap.mjs");
        if std::fs::read_to_string(&bootstrap).ok().as_deref() != Some(NODE_BOOTSTRAP) {
            std::fs::write(&bootstrap, NODE_BOOTSTRAP)?;
        }
        let node = |configured: &Option<PathBuf>, major: u32, flag: &str| -> Result<Launcher, Unavailable> {
            let program = match configured {
                Some(p) => match node_major(p) {
                    Some(m) if m == major => p.clone(),
                    Some(m) => {
                        return Err(Unavailable(format!(
                            "{flag} points at {} which is Node.js {m}, not Node.js {major}",
                            p.display()
                        )))
                    }
                    None => {
                        return Err(Unavailable(format!("{flag} points at {}, which does not run", p.display())))
                    }
                },
                None => find_on_path(&format!("node{major}"))
                    .into_iter()
                    .chain(find_on_path("node"))
                    .find(|p| node_major(p) == Some(major))
                    .ok_or_else(|| {
                        Unavailable(format!(
                            "runtime nodejs{major}.x needs Node.js {major}, and no `node` of that version is on PATH: install it (for example `npm install --prefix ~/.portico/node{major} node@{major}`) and pass {flag} or set its environment variable"
                        ))
                    })?,
            };
            Ok(Launcher {
                program,
                args: vec![bootstrap.to_string_lossy().into_owned()],
                runtime_dir: node_dir.clone(),
            })
        };
        Ok(Launchers {
            nodejs22: node(&cfg.nodejs22, 22, "--nodejs22-bin"),
            nodejs20: node(&cfg.nodejs20, 20, "--nodejs20-bin"),
        })
    }

    /// The launcher of `runtime`.
    pub fn get(&self, runtime: Runtime) -> Result<&Launcher, &Unavailable> {
        match runtime {
            Runtime::Nodejs22 => self.nodejs22.as_ref(),
            Runtime::Nodejs20 => self.nodejs20.as_ref(),
        }
    }

    /// One line per runtime, for the start-up banner.
    pub fn describe(&self) -> Vec<String> {
        Runtime::ALL
            .iter()
            .map(|r| match self.get(*r) {
                Ok(l) => format!("{}: {}", r.as_str(), l.program.display()),
                Err(e) => format!("{}: unavailable ({e})", r.as_str()),
            })
            .collect()
    }
}
