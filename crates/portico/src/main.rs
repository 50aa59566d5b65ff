//! `portico`: the binary. Parses the command line, opens the store, starts the
//! runtime, gateway and control plane, publishes catalog snapshots to them, serves the
//! one public listener, and shuts everything down on SIGINT/SIGTERM.

mod front;
mod publish;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use portico_runtime::launch::{Interpreters, Launchers};
use portico_runtime::{Invoker, RuntimeConfig};
use portico_store::{AccessKey, KeyStore, SqliteEventQueue, SqliteStore, Store};

#[derive(Debug, Parser)]
#[command(name = "portico", version, about = "AWS Lambda and API Gateway HTTP APIs on your own machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: Lambda, API Gateway v2 and STS APIs plus every HTTP API, on one port.
    Serve(Box<ServeArgs>),
    /// Manage the access keys that sign control-plane calls (works while the server runs).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an access key for an account and print it as a shared-credentials profile.
    Create(KeysCreateArgs),
    /// List the access keys: ids, accounts and creation times (never secrets).
    List(DataDirArg),
    /// Delete an access key: calls signed with it are refused from now on.
    Delete(KeysDeleteArgs),
}

#[derive(Debug, clap::Args)]
struct DataDirArg {
    /// The server's data dir [default: $XDG_DATA_HOME/portico or ~/.local/share/portico].
    #[arg(long, env = "PORTICO_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct KeysCreateArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// The 12-digit account the key acts for: it sees and changes that account's resources only.
    #[arg(long, env = "PORTICO_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
}

#[derive(Debug, clap::Args)]
struct KeysDeleteArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// The access key id (`AKIA...`).
    access_key_id: String,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "PORTICO_LISTEN", default_value = "127.0.0.1:4750")]
    listen: SocketAddr,
    /// Where state, code and logs live [default: $XDG_DATA_HOME/portico or ~/.local/share/portico].
    #[arg(long, env = "PORTICO_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Region used for requests that carry no SigV4 scope.
    #[arg(long, env = "PORTICO_REGION", default_value = "us-east-1")]
    region: String,
    /// Account of the administrator key created on a data dir's first start (and of
    /// every caller under --insecure-accept-any-credentials).
    #[arg(long, env = "PORTICO_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// Accept every control-plane call, signed or not, as --account-id. For throwaway
    /// local use only: anyone who reaches the port can then run code on this host.
    #[arg(long, env = "PORTICO_INSECURE_ACCEPT_ANY_CREDENTIALS")]
    insecure_accept_any_credentials: bool,
    /// Node.js 22 binary for nodejs22.x [default: a `node22` or `node` v22 on PATH].
    #[arg(long, env = "PORTICO_NODEJS22_BIN")]
    nodejs22_bin: Option<PathBuf>,
    /// Node.js 20 binary for nodejs20.x [default: a `node20` or `node` v20 on PATH].
    #[arg(long, env = "PORTICO_NODEJS20_BIN")]
    nodejs20_bin: Option<PathBuf>,
    /// Python 3 for every python3.x runtime; another minor version than a function's runtime
    /// is an explicit mapping, logged at start [default: a `python3.X` of the exact version on PATH].
    #[arg(long, env = "PORTICO_PYTHON_BIN")]
    python_bin: Option<PathBuf>,
    /// `on`: an invocation that finds no idle environment waits for a busy one when the
    /// function's recent invocations say that is quicker than a cold start (short
    /// functions then run in a few hot environments); `off`: it starts a new environment
    /// at once, as Lambda does.
    #[arg(long, env = "PORTICO_WARM_WAIT", default_value = "on", value_parser = ["on", "off"])]
    warm_wait: String,
    /// Spare runtime processes kept ready per profile (runtime, memory, storage) at most:
    /// started ahead of cold starts (as many as the profile's cold starts in the last
    /// minute, one while it was used within --idle-timeout, one as soon as a function of
    /// it is created or redeployed), then assigned a function; 0 turns them off. Node.js and Python.
    #[arg(long, env = "PORTICO_SPARE_RUNTIMES", default_value_t = 2)]
    spare_runtimes: usize,
    /// Threads that serve requests (default: half the CPUs, at least one).
    #[arg(long, env = "PORTICO_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
    /// Seconds an idle execution environment is kept warm.
    #[arg(long, env = "PORTICO_IDLE_TIMEOUT", default_value_t = 600)]
    idle_timeout: u64,
    /// Concurrent executions allowed per account, as Lambda's account limit.
    #[arg(long, env = "PORTICO_ACCOUNT_CONCURRENCY", default_value_t = 1000)]
    account_concurrency: u32,
    /// Days function log events are kept at most, whatever a log group's own retention.
    #[arg(long, env = "PORTICO_LOG_RETENTION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=3653))]
    log_retention_days: u32,
    /// Megabytes of function log messages kept at most; the oldest go first.
    #[arg(long, env = "PORTICO_LOG_MAX_MB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    log_max_mb: u64,
    /// Seconds before the first retry of a failed asynchronous invocation (Lambda: 60);
    /// the second retry waits twice as long.
    #[arg(long, env = "PORTICO_ASYNC_RETRY_DELAY", default_value_t = 60.0)]
    async_retry_delay: f64,
    /// HTTP APIs' account-level throttle per region, requests per second (AWS: 10000).
    #[arg(long, env = "PORTICO_API_THROTTLE_RATE", default_value_t = 10_000.0)]
    api_throttle_rate: f64,
    /// HTTP APIs' account-level burst per region (AWS: 5000).
    #[arg(long, env = "PORTICO_API_THROTTLE_BURST", default_value_t = 5_000)]
    api_throttle_burst: u64,
    /// Seconds a function's init may take (Lambda: 10); a longer init is retried once as
    /// part of the first invocation, under the function's timeout.
    #[arg(long, env = "PORTICO_INIT_TIMEOUT", default_value_t = 10.0)]
    init_timeout: f64,
    /// `auto`: as root, run each environment as its own unprivileged user; `off`: run
    /// functions as Portico's own user.
    #[arg(long, env = "PORTICO_ISOLATION", default_value = "auto", value_parser = ["auto", "off"])]
    isolation: String,
    /// `auto`: limit what functions may read and write with Landlock where the kernel has it.
    #[arg(long, env = "PORTICO_LANDLOCK", default_value = "auto", value_parser = ["auto", "off"])]
    landlock: String,
    /// `auto`: a cgroup per environment (memory, CPU weight, tasks) where Portico's is
    /// writable; otherwise a watchdog on resident memory.
    #[arg(long, env = "PORTICO_CGROUPS", default_value = "auto", value_parser = ["auto", "off"])]
    cgroups: String,
    /// Root-owned host directory for what isolated functions see (task roots, runtime
    /// clients, scratch directories) and the locks of uid blocks.
    #[arg(long, env = "PORTICO_SANDBOX_ROOT", default_value = "/var/lib/portico")]
    sandbox_root: PathBuf,
    /// First uid (and gid) handed to environments; each instance claims a block of 10000.
    #[arg(long, env = "PORTICO_SANDBOX_UID_BASE", default_value_t = 200_000)]
    sandbox_uid_base: u32,
    /// `auto`: as root with loop devices, each environment's TMPDIR is its own ext4 file
    /// system of EphemeralStorage MB (the total written is enforced), else a directory;
    /// `loop`: that file system or Portico does not start; `dir`: a directory (each file
    /// is capped at EphemeralStorage, the total is not).
    #[arg(long, env = "PORTICO_TMP_STORAGE", default_value = "auto", value_parser = ["auto", "loop", "dir"])]
    tmp_storage: String,
    /// Seconds a client may take to send a request's line and headers (an idle
    /// keep-alive connection is closed after as long), or pause while sending its body.
    #[arg(long, env = "PORTICO_CLIENT_TIMEOUT", default_value_t = 30.0)]
    client_timeout: f64,
    /// Connections served at once; past it new ones wait until one ends.
    #[arg(long, env = "PORTICO_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// PEM bundle of CA certificates that JWT authorizers trust for https issuers (their
    /// OpenID discovery and JWKS), besides the Mozilla roots built in: for a private or
    /// local issuer.
    #[arg(long, env = "PORTICO_EXTRA_CA_CERTS", value_name = "FILE")]
    extra_ca_certs: Option<PathBuf>,
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("portico"));
    }
    let home = std::env::var_os("HOME").context("neither --data-dir, XDG_DATA_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".local/share/portico"))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PORTICO_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            // Half the CPUs by default: the other half runs the functions' environments.
            // Fewer workers also hand each request between fewer threads (each hand-over
            // is a wake-up, the dearest part of a request that is otherwise microseconds).
            let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            let workers = args.worker_threads.map_or((cpus / 2).max(1), usize::from);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()?
                .block_on(serve(*args))
        }
        Command::Keys { command } => keys(command),
    }
}

fn validate_account(account_id: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit()),
        "--account-id must be 12 digits, got {account_id:?}"
    );
    Ok(())
}

fn resolve_data_dir(d: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match d {
        Some(d) => Ok(d.clone()),
        None => default_data_dir(),
    }
}

/// The access keys of a data dir (`<data-dir>/state/keys.db`), created when absent.
fn open_keys(data_dir: &Path) -> anyhow::Result<KeyStore> {
    create_private_dir(data_dir)?;
    KeyStore::open(&data_dir.join("state"))
        .with_context(|| format!("opening the access keys in {}", data_dir.display()))
}

/// `portico keys ...`: one short-lived handle on the same file the server reads, so the
/// server sees a new key, or misses a deleted one, on its next request.
fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create(args) => {
            validate_account(&args.account_id)?;
            let store = open_keys(&resolve_data_dir(&args.dir.data_dir)?)?;
            let key = store.create(&args.account_id)?;
            eprintln!("Created access key {} for account {}.", key.access_key_id, key.account_id);
            print!("{}", key.credentials_profile("default"));
        }
        KeysCommand::List(dir) => {
            let store = open_keys(&resolve_data_dir(&dir.data_dir)?)?;
            println!("{:<22}{:<15}CREATED", "ACCESS KEY ID", "ACCOUNT");
            for k in store.list()? {
                let created = chrono::DateTime::from_timestamp_millis(k.created_ms)
                    .map(portico_model::time::iso8601)
                    .unwrap_or_default();
                println!("{:<22}{:<15}{created}", k.access_key_id, k.account_id);
            }
        }
        KeysCommand::Delete(args) => {
            let store = open_keys(&resolve_data_dir(&args.dir.data_dir)?)?;
            anyhow::ensure!(store.delete(&args.access_key_id)?, "no access key {:?}", args.access_key_id);
            eprintln!("Deleted access key {}.", args.access_key_id);
        }
    }
    Ok(())
}

/// On a data dir's first start (no key yet), creates the administrator key for
/// `account_id` and writes it to `<data-dir>/credentials` (AWS shared-credentials
/// format, profile `default`, mode 0600). Returns the key when it made one.
fn first_start_key(keys: &KeyStore, data_dir: &Path, account_id: &str) -> anyhow::Result<Option<AccessKey>> {
    if !keys.is_empty()? {
        return Ok(None);
    }
    let key = keys.create(account_id)?;
    let text = format!(
        "# Portico administrator access key for account {account_id}, made by the data dir's first start.\n\
         # Use: export AWS_SHARED_CREDENTIALS_FILE={}\n{}",
        credentials_path(data_dir).display(),
        key.credentials_profile("default")
    );
    write_private_file(&credentials_path(data_dir), text.as_bytes())?;
    Ok(Some(key))
}

fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("credentials")
}

/// Writes `path` (mode 0600 from its creation) through a temporary file and a rename.
fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn validate(args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.async_retry_delay.is_finite() && (0.0..=86_400.0).contains(&args.async_retry_delay),
        "--async-retry-delay must be between 0 and 86400 seconds, got {}",
        args.async_retry_delay
    );
    validate_account(&args.account_id)?;
    anyhow::ensure!(
        args.client_timeout.is_finite() && (0.1..=3600.0).contains(&args.client_timeout),
        "--client-timeout must be between 0.1 and 3600 seconds, got {}",
        args.client_timeout
    );
    anyhow::ensure!(
        !args.region.is_empty()
            && args.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "--region must look like us-east-1, got {:?}",
        args.region
    );
    Ok(())
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // Created 0700 (never readable by others, even for a moment), and narrowed if it existed.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    validate(&args)?;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => default_data_dir()?,
    };
    create_private_dir(&data_dir)?;
    let keys = Arc::new(open_keys(&data_dir)?);
    let new_key = first_start_key(&keys, &data_dir, &args.account_id)?;
    let authentication = if args.insecure_accept_any_credentials {
        tracing::warn!(
            "INSECURE: --insecure-accept-any-credentials: control-plane calls are not authenticated; \
             anyone who reaches {} acts as account {} and can run code on this host",
            args.listen,
            args.account_id
        );
        portico_control::Authentication::AcceptAny
    } else {
        portico_control::Authentication::Verify(keys.clone())
    };
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&data_dir.join("state"))
            .with_context(|| format!("opening the store in {}", data_dir.display()))?,
    );
    anyhow::ensure!(
        args.init_timeout.is_finite() && args.init_timeout > 0.0 && args.init_timeout <= 900.0,
        "--init-timeout must be between 0 and 900 seconds, got {}",
        args.init_timeout
    );
    let sandbox = Arc::new(portico_runtime::sandbox::Sandbox::new(portico_runtime::sandbox::SandboxConfig {
        isolate_users: args.isolation == "auto",
        landlock: args.landlock == "auto",
        cgroups: args.cgroups == "auto",
        root: args.sandbox_root.clone(),
        uid_base: args.sandbox_uid_base,
        init_timeout: Duration::from_secs_f64(args.init_timeout),
        tmp_storage: match args.tmp_storage.as_str() {
            "loop" => portico_runtime::sandbox::TmpStorage::Loop,
            "dir" => portico_runtime::sandbox::TmpStorage::Dir,
            _ => portico_runtime::sandbox::TmpStorage::Auto,
        },
    }));
    tracing::info!("sandbox: {}", sandbox.summary());
    tracing::info!("sandbox: TMPDIR: {}", sandbox.tmp_storage());
    for gap in sandbox.gaps() {
        tracing::warn!("sandbox: not isolated: {gap}");
    }
    if let Some(why) = sandbox.tmp_storage_refused() {
        anyhow::bail!("--tmp-storage loop: {why}");
    }
    let launchers = Launchers::resolve(
        &Interpreters {
            nodejs22: args.nodejs22_bin.clone(),
            nodejs20: args.nodejs20_bin.clone(),
            python: args.python_bin.clone(),
        },
        &sandbox.runtimes_dir(data_dir.join("runtimes")),
    )
    .context("writing the runtime bootstraps")?;
    for line in launchers.describe() {
        tracing::info!("runtime {line}");
    }
    let logs = portico_store::LogStore::open(
        &data_dir.join("state"),
        portico_store::LogConfig {
            retention_days: args.log_retention_days,
            max_bytes: args.log_max_mb.saturating_mul(1024 * 1024),
        },
    )
    .context("opening the log store")?;
    let tmp_dir = data_dir.join("tmp");
    // Scratch space of environments from a previous run is garbage.
    let _ = std::fs::remove_dir_all(&tmp_dir);
    let invoker = Invoker::new(
        RuntimeConfig {
            code_dir: data_dir.join("code"),
            tmp_dir,
            idle_timeout: Duration::from_secs(args.idle_timeout),
            warm_wait: args.warm_wait == "on",
            spares_per_profile: args.spare_runtimes,
            account_concurrency: args.account_concurrency,
            log_sink: Some(portico_control::logs::sink(logs.clone())),
            sandbox: sandbox.clone(),
        },
        launchers,
    );

    let extra_ca_certs = match &args.extra_ca_certs {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading --extra-ca-certs {}", path.display()))?)
        }
        None => None,
    };
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr()?;

    let access_logs = Arc::new(
        portico_gateway::access_log::AccessLogWriter::start(
            portico_control::logs::sink(logs.clone()),
            Arc::new(StoreLogGroups(logs.clone())),
        )
        .context("starting the access log writer")?,
    );
    let mut gateway = portico_gateway::Gateway::new(
        invoker.clone(),
        portico_gateway::GatewayConfig { account_rate: args.api_throttle_rate, account_burst: args.api_throttle_burst },
    )
    .with_access_logs(access_logs.clone())
    .with_keys(Arc::new(StoreKeys(keys.clone())));
    if let (Some(path), Some(pem)) = (&args.extra_ca_certs, &extra_ca_certs) {
        gateway = gateway
            .with_extra_ca_certs(pem)
            .map_err(|why| anyhow::anyhow!("--extra-ca-certs {}: {why}", path.display()))?;
        tracing::info!("JWT authorizers also trust the CA certificates of {}", path.display());
    }
    let gateway = Arc::new(gateway);
    let catalog = publish::start(store.clone(), invoker.clone(), gateway.clone()).await?;
    let events =
        SqliteEventQueue::open(&data_dir.join("state")).context("opening the asynchronous invocation queue")?;
    let control = portico_control::Control::new(
        store.clone(),
        catalog,
        invoker.clone(),
        portico_control::async_invoke::AsyncInvocations::new(
            Arc::new(events),
            Duration::from_secs_f64(args.async_retry_delay),
        ),
        portico_control::ControlConfig {
            authentication,
            account_id: args.account_id.clone(),
            default_region: args.region.clone(),
            public_port: local.port(),
            logs: logs.clone(),
        },
    );
    portico_control::async_invoke::start(control.clone());
    let limits = front::Limits {
        client_timeout: Duration::from_secs_f64(args.client_timeout),
        max_connections: connection_cap(args.max_connections),
    };
    let console = portico_console::Console::new(control.clone(), invoker.clone(), gateway.clone());
    let front = Arc::new(front::Front { control, console, gateway, limits });

    println!("Portico listening on http://{local} (data dir {})", data_dir.display());
    print_access_hints(&args, &data_dir, local, new_key.as_ref());
    let shutdown = shutdown_signal();
    front::serve(listener, front, shutdown).await;
    tracing::info!("stopping: ending function environments");
    invoker.shutdown();
    // What environments left is killed and every TMPDIR volume unmounted and deleted.
    let _ = tokio::task::spawn_blocking(move || sandbox.shutdown()).await;
    // Function output read so far, and access log lines, reach the disk before exit.
    let flushed = logs.clone();
    let _ = tokio::task::spawn_blocking(move || {
        access_logs.sync(Duration::from_secs(2));
        flushed.sync(Duration::from_secs(5))
    })
    .await;
    Ok(())
}

/// How to call this server, printed after the listening line: the key made on a first
/// start (its id, never its secret: stdout often ends up in a log), the credentials file,
/// and a loud warning when nothing is verified.
fn print_access_hints(args: &ServeArgs, data_dir: &Path, local: SocketAddr, new_key: Option<&AccessKey>) {
    let credentials = credentials_path(data_dir);
    if let Some(key) = new_key {
        println!(
            "Created the administrator access key {} for account {} in {} (profile default, mode 0600).",
            key.access_key_id,
            key.account_id,
            credentials.display()
        );
    }
    if credentials.exists() {
        println!(
            "Use it: export AWS_SHARED_CREDENTIALS_FILE={} AWS_DEFAULT_REGION={} AWS_ENDPOINT_URL=http://{local}",
            credentials.display(),
            args.region
        );
    }
    println!(
        "Web console: http://{local}/console/ (sign in with an access key and its secret, e.g. from {})",
        credentials.display()
    );
    println!(
        "More keys, for this or other accounts: portico keys create --data-dir {} --account-id ID",
        data_dir.display()
    );
    if args.insecure_accept_any_credentials {
        let reach = if local.ip().is_loopback() { "this host" } else { "the network" };
        println!(
            "WARNING: --insecure-accept-any-credentials: signatures are NOT checked. Anyone on {reach} who reaches \
             http://{local} acts as account {} and can run code here. Use it only for throwaway local work.",
            args.account_id
        );
    }
}

/// How many connections to serve at once: `--max-connections`, within the open-file
/// limit. The soft limit is raised towards the hard one to fit them (1 024 is a common
/// default); what cannot fit lowers the cap, with a warning, keeping 1 024 descriptors
/// for the store, logs and function environments.
fn connection_cap(wanted: u32) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    const RESERVED: u64 = 1024;
    let wanted = u64::from(wanted);
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    let mut available = soft;
    if soft < wanted + RESERVED {
        let raised = limit.maximum.map_or(wanted + RESERVED, |hard| hard.min(wanted + RESERVED));
        if raised > soft
            && setrlimit(Resource::Nofile, Rlimit { current: Some(raised), maximum: limit.maximum }).is_ok()
        {
            available = raised;
        }
    }
    let cap = wanted.min(available.saturating_sub(RESERVED).max(64));
    if cap < wanted {
        tracing::warn!(
            "--max-connections {wanted} does not fit the open-file limit ({available}): serving at most {cap} connections"
        );
    }
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Portico's access keys, as the gateway's `AWS_IAM` routes look them up.
#[derive(Debug)]
struct StoreKeys(Arc<KeyStore>);

impl portico_auth::KeyLookup for StoreKeys {
    fn lookup(&self, access_key_id: &str) -> Result<Option<portico_auth::Key>, portico_auth::LookupError> {
        self.0
            .lookup(access_key_id)
            .map(|k| k.map(|k| portico_auth::Key { secret_access_key: k.secret_access_key, account_id: k.account_id }))
            .map_err(|e| portico_auth::LookupError(e.to_string()))
    }
}

/// The log store's groups, which access logs are written to only when they exist.
#[derive(Debug)]
struct StoreLogGroups(Arc<portico_store::LogStore>);

impl portico_gateway::access_log::LogGroups for StoreLogGroups {
    fn exists(&self, scope: &portico_model::Scope, group: &str) -> bool {
        // A failed read is not a missing group: the append reports its own errors.
        !matches!(self.0.group(scope, group), Ok(None))
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the only way out is being killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
