//! How each runtime id becomes a command line, and where its interpreter comes from.
//!
//! Everything is resolved once, at start-up, and explicitly:
//! - `nodejsNN.x`: a configured path, or a `node` on `PATH` whose major version matches.
//! - `python3.X`: `--python-bin` when given: one Python 3 for every Python runtime, a
//!   runtime of another minor version running on it with the mapping reported; otherwise
//!   a `python3.X` (or `python3`, `python`) on `PATH` of exactly that version.
//! - `provided.al2023`, `provided.al2`: the package's own `bootstrap` executable.
//!
//! A missing interpreter is reported with what to install, never silently replaced by
//! another version.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use portico_model::Runtime;

/// The Node.js runtime client, shipped inside the binary.
pub const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/nodejs/bootstrap.cjs");

/// The Python runtime client, shipped inside the binary.
pub const PYTHON_BOOTSTRAP: &str = include_str!("../../../runtimes/python/bootstrap.py");

/// Oldest Python 3 minor version the Python runtime client runs on.
const PYTHON_MIN_MINOR: u32 = 8;

/// The entrypoint of OS-only runtimes, run by bash with the function's environment.
///
/// Lambda's init starts the package's `bootstrap` itself and answers the invocation with
/// `Runtime.InvalidEntrypoint` when it is missing or cannot be executed; Portico's
/// environments start one process, so this script stands in for that step: it becomes
/// the bootstrap (`exec`, same process), or serves the Runtime API's invocations with
/// Lambda's error document.
const PROVIDED_ENTRYPOINT: &str = r#"# Portico: entrypoint of the provided.al2023 and provided.al2 runtimes (see launch.rs).
b=$LAMBDA_TASK_ROOT/bootstrap
shopt -s execfail
if [[ -f $b && -x $b ]]; then
  # An executable is an ELF binary or a script with a #! line, as the kernel requires.
  LC_ALL=C IFS= read -r -n 4 magic < "$b"
  if [[ $magic == '#!'* || $magic == $'\x7fELF' ]]; then
    exec "$b"
    [[ $? == 127 ]] && why="fork/exec $b: no such file or directory" || why="fork/exec $b: exec format error"
  else
    why="fork/exec $b: exec format error"
  fi
elif [[ -e $b && ! -d $b ]]; then
  why="fork/exec $b: permission denied"
else
  why="Couldn't find valid bootstrap(s): [$b]"
fi
LC_ALL=C
api=$AWS_LAMBDA_RUNTIME_API
# Every invocation gets the error, as every init attempt on Lambda would.
while exec 3<>"/dev/tcp/${api%:*}/${api##*:}"; do
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\n\r\n' "$api" >&3
  IFS=' ' read -r _ code _ <&3
  [[ $code == 200 ]] || exit $((code != 410))  # 410: the environment is being stopped
  id=
  while IFS= read -r line <&3; do
    line=${line%$'\r'}
    [[ -z $line ]] && break
    if [[ ${line%%:*} == [Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d ]]; then id=${line#*:}; id=${id# }; fi
  done
  exec 3>&-
  message="RequestId: $id Error: $why"
  printf '%s\nRuntime.InvalidEntrypoint\n' "$message"
  esc=${message//\\/\\\\}
  body="{\"errorMessage\":\"${esc//\"/\\\"}\",\"errorType\":\"Runtime.InvalidEntrypoint\"}"
  exec 3<>"/dev/tcp/${api%:*}/${api##*:}" || exit 1
  printf 'POST /2018-06-01/runtime/invocation/%s/error HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nLambda-Runtime-Function-Error-Type: Runtime.InvalidEntrypoint\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$id" "$api" "${#body}" "$body" >&3
  IFS= read -r _ <&3
  exec 3>&-
done
exit 1
"#;

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
    /// `--python-bin`: the Python 3 that runs every `python3.x` runtime.
    pub python: Option<PathBuf>,
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
    /// How the interpreter was chosen when it is not the runtime's own version
    /// (reported once, at start-up).
    pub note: Option<String>,
    /// Whether `program` runs correctly from a copy elsewhere (Node.js is one file; a
    /// Python loads its own prefix and is not).
    pub self_contained: bool,
    /// Whether the runtime client is Portico's own, which asks the Runtime API whether
    /// its sandbox is complete before it loads any function code (the environment may
    /// then join its cgroups while the interpreter starts: see `sandbox.rs`), and talks
    /// to the Runtime API over an inherited UNIX socket (see `environment::Process`).
    pub own_client: bool,
}

/// Resolved launchers for every runtime, or why each is unavailable.
#[derive(Debug, Clone)]
pub struct Launchers {
    runtimes: Vec<(Runtime, Result<Launcher, Unavailable>)>,
    /// Facts about the configuration worth one start-up line each.
    notes: Vec<String>,
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

/// A Python interpreter, as it reports itself.
#[derive(Debug, Clone, PartialEq)]
struct Python {
    /// `sys.executable`: the interpreter itself, behind any wrapper (a pyenv shim, say).
    executable: PathBuf,
    /// `sys.version_info[:3]`.
    version: (u32, u32, u32),
}

impl Python {
    fn version_string(&self) -> String {
        format!("{}.{}.{}", self.version.0, self.version.1, self.version.2)
    }
}

/// Asks `bin` what it is, with a clean environment as functions get.
fn probe_python(bin: &Path) -> Option<Python> {
    let out = Command::new(bin)
        .args(["-c", "import sys; print(sys.executable); print('%d.%d.%d' % tuple(sys.version_info[:3]))"])
        .env_clear()
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_python_probe(bin, &String::from_utf8(out.stdout).ok()?)
}

fn parse_python_probe(bin: &Path, text: &str) -> Option<Python> {
    let mut lines = text.lines();
    let executable = PathBuf::from(lines.next()?.trim());
    let mut parts = lines.next()?.trim().split('.').map(|p| p.parse::<u32>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    // sys.executable is empty when Python cannot tell: keep the path we were given.
    let executable = if executable.is_absolute() && executable.is_file() { executable } else { bin.to_path_buf() };
    Some(Python { executable, version })
}

/// Every `python3.X`, `python3` and `python` on `PATH`, probed in parallel (a pyenv
/// shim takes tens of milliseconds to answer), in `PATH` order per name.
fn pythons_on_path() -> Vec<(String, Python)> {
    let mut names: Vec<String> =
        Runtime::ALL.iter().filter_map(|r| r.python_minor()).map(|m| format!("python3.{m}")).collect();
    names.extend(["python3".to_string(), "python".to_string()]);
    let candidates: Vec<(String, PathBuf)> =
        names.iter().flat_map(|n| find_on_path(n).into_iter().map(move |p| (n.clone(), p))).collect();
    std::thread::scope(|s| {
        let probes: Vec<_> =
            candidates.iter().map(|(name, path)| (name, s.spawn(move || probe_python(path)))).collect();
        probes.into_iter().filter_map(|(name, h)| h.join().ok().flatten().map(|py| (name.clone(), py))).collect()
    })
}

fn find_bash() -> Option<PathBuf> {
    ["/bin/bash", "/usr/bin/bash"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| find_on_path("bash").into_iter().next())
}

/// Writes a runtime's file unless it already holds exactly `content`.
fn install(path: &Path, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::read_to_string(path).ok().as_deref() != Some(content) {
        std::fs::write(path, content)?;
    }
    Ok(())
}

/// Chooses the Python of `python3.{minor}`: the configured one (mapped when its version
/// differs), else one of exactly that version from `on_path`.
fn choose_python(
    runtime: Runtime,
    minor: u32,
    configured: Option<&(PathBuf, Option<Python>)>,
    on_path: &[(String, Python)],
) -> Result<(Python, Option<String>), Unavailable> {
    let name = runtime.as_str();
    match configured {
        Some((path, None)) => Err(Unavailable(format!(
            "--python-bin points at {}, which does not run as a Python interpreter",
            path.display()
        ))),
        Some((path, Some(py))) if py.version.0 != 3 || py.version.1 < PYTHON_MIN_MINOR => {
            Err(Unavailable(format!(
                "--python-bin points at {} which is Python {}; Portico's Python runtime needs Python 3.{PYTHON_MIN_MINOR} or later",
                path.display(),
                py.version_string()
            )))
        }
        Some((_, Some(py))) => {
            let note = (py.version.1 != minor).then(|| {
                format!(
                    "{name} functions run on Python {} (explicit mapping by --python-bin)",
                    py.version_string()
                )
            });
            Ok((py.clone(), note))
        }
        None => on_path
            .iter()
            .find(|(_, py)| py.version.0 == 3 && py.version.1 == minor)
            .map(|(_, py)| (py.clone(), None))
            .ok_or_else(|| {
                Unavailable(format!(
                    "runtime {name} needs Python 3.{minor}, and no `python3.{minor}` (nor a `python3` of that version) is on PATH: install Python 3.{minor} (for example `apt-get install python3.{minor}` or `uv python install 3.{minor}`) and put it on PATH, or pass --python-bin (PORTICO_PYTHON_BIN) to run every python3.x function on a Python 3 of your choice"
                ))
            }),
    }
}

impl Launchers {
    /// Resolves every runtime. `runtimes_dir` is where the runtimes' files are written.
    pub fn resolve(cfg: &Interpreters, runtimes_dir: &Path) -> std::io::Result<Launchers> {
        let node_dir = runtimes_dir.join("nodejs");
        let node_bootstrap = node_dir.join("bootstrap.cjs");
        install(&node_bootstrap, NODE_BOOTSTRAP)?;
        // The ES module client that releases before 2026-11-26 wrote there; never run now.
        let _ = std::fs::remove_file(node_dir.join("bootstrap.mjs"));
        let python_dir = runtimes_dir.join("python");
        let python_bootstrap = python_dir.join("bootstrap.py");
        install(&python_bootstrap, PYTHON_BOOTSTRAP)?;
        let provided_dir = runtimes_dir.join("provided");
        let entrypoint = provided_dir.join("entrypoint.sh");
        install(&entrypoint, PROVIDED_ENTRYPOINT)?;

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
                args: vec![node_bootstrap.to_string_lossy().into_owned()],
                runtime_dir: node_dir.clone(),
                note: None,
                self_contained: true,
                own_client: true,
            })
        };

        let mut notes = Vec::new();
        let configured = cfg.python.as_ref().map(|p| (p.clone(), probe_python(p)));
        let on_path = if configured.is_some() { Vec::new() } else { pythons_on_path() };
        if let Some((path, probe)) = &configured {
            notes.push(match probe {
                Some(py) => format!(
                    "--python-bin {}: Python {} ({})",
                    path.display(),
                    py.version_string(),
                    py.executable.display()
                ),
                None => format!("--python-bin {}: does not run as a Python interpreter", path.display()),
            });
        }
        let python = |runtime: Runtime| -> Result<Launcher, Unavailable> {
            let minor = runtime
                .python_minor()
                .ok_or_else(|| Unavailable(format!("{} is not a Python runtime", runtime.as_str())))?;
            let (py, note) = choose_python(runtime, minor, configured.as_ref(), &on_path)?;
            Ok(Launcher {
                program: py.executable,
                // Unbuffered: a record must be in the pipe before the outcome is posted.
                args: vec!["-u".into(), python_bootstrap.to_string_lossy().into_owned()],
                runtime_dir: python_dir.clone(),
                note,
                self_contained: false,
                own_client: true,
            })
        };
        let provided = match find_bash() {
            Some(bash) => Ok(Launcher {
                program: bash,
                args: vec![entrypoint.to_string_lossy().into_owned()],
                runtime_dir: provided_dir.clone(),
                note: None,
                self_contained: false,
                // The package's own bootstrap is function code from its first instruction.
                own_client: false,
            }),
            None => Err(Unavailable(
                "the provided runtimes start the package's bootstrap through bash, which is not on this host: install bash"
                    .into(),
            )),
        };

        let runtimes = Runtime::ALL
            .iter()
            .map(|&r| {
                let launcher = match r {
                    Runtime::Nodejs22 => node(&cfg.nodejs22, 22, "--nodejs22-bin"),
                    Runtime::Nodejs20 => node(&cfg.nodejs20, 20, "--nodejs20-bin"),
                    Runtime::Python314
                    | Runtime::Python313
                    | Runtime::Python312
                    | Runtime::Python311
                    | Runtime::Python310 => python(r),
                    Runtime::ProvidedAl2023 | Runtime::ProvidedAl2 => provided.clone(),
                };
                (r, launcher)
            })
            .collect();
        Ok(Launchers { runtimes, notes })
    }

    /// The launcher of `runtime`.
    pub fn get(&self, runtime: Runtime) -> Result<&Launcher, &Unavailable> {
        let (_, launcher) =
            self.runtimes.iter().find(|(r, _)| *r == runtime).expect("resolve() covers every runtime in Runtime::ALL");
        launcher.as_ref()
    }

    /// One line per runtime (and per configured interpreter), for the start-up banner.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = self.notes.clone();
        lines.extend(self.runtimes.iter().map(|(r, l)| match l {
            Ok(l) => match &l.note {
                Some(note) => format!("{}: {} ({note})", r.as_str(), l.program.display()),
                None => format!("{}: {}", r.as_str(), l.program.display()),
            },
            Err(e) => format!("{}: unavailable ({e})", r.as_str()),
        }));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(minor: u32) -> Python {
        Python { executable: PathBuf::from(format!("/opt/py3{minor}/bin/python3.{minor}")), version: (3, minor, 4) }
    }

    #[test]
    fn exact_version_from_path_only() {
        let on_path = vec![("python3".to_string(), py(11)), ("python3.12".to_string(), py(12))];
        let (chosen, note) = choose_python(Runtime::Python312, 12, None, &on_path).expect("3.12 is there");
        assert_eq!((chosen, note), (py(12), None));
        let err = choose_python(Runtime::Python313, 13, None, &on_path).expect_err("no 3.13");
        assert!(err.0.contains("needs Python 3.13") && err.0.contains("--python-bin"), "{err}");
    }

    #[test]
    fn configured_python_maps_other_versions_explicitly() {
        let configured = (PathBuf::from("/usr/bin/python3"), Some(py(11)));
        let (chosen, note) = choose_python(Runtime::Python311, 11, Some(&configured), &[]).expect("same version");
        assert_eq!((chosen, note), (py(11), None));
        let (chosen, note) = choose_python(Runtime::Python312, 12, Some(&configured), &[]).expect("mapped");
        assert_eq!(chosen, py(11));
        assert_eq!(
            note.as_deref(),
            Some("python3.12 functions run on Python 3.11.4 (explicit mapping by --python-bin)")
        );
    }

    #[test]
    fn configured_python_must_be_a_recent_python3() {
        let old = (
            PathBuf::from("/usr/bin/python2"),
            Some(Python { executable: "/usr/bin/python2".into(), version: (2, 7, 18) }),
        );
        assert!(choose_python(Runtime::Python312, 12, Some(&old), &[]).is_err());
        let broken = (PathBuf::from("/nope"), None);
        let err = choose_python(Runtime::Python312, 12, Some(&broken), &[]).expect_err("does not run");
        assert!(err.0.contains("/nope"), "{err}");
    }

    #[test]
    fn probe_output() {
        let exe = std::env::current_exe().expect("test binary");
        let text = format!("{}\n3.12.1\n", exe.display());
        assert_eq!(
            parse_python_probe(Path::new("/shim/python3"), &text),
            Some(Python { executable: exe, version: (3, 12, 1) })
        );
        // An interpreter that cannot name itself keeps the configured path.
        assert_eq!(
            parse_python_probe(Path::new("/shim/python3"), "\n3.11.2\n").map(|p| p.executable),
            Some(PathBuf::from("/shim/python3"))
        );
        assert_eq!(parse_python_probe(Path::new("/x"), "/usr/bin/python\n3.x\n"), None);
    }
}
