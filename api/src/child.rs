//! Jobs run in a child process, so that one that runs out of memory (killed by the kernel,
//! or aborting on a failed allocation) takes down only that child: the worker loop that
//! supervises it fails the job in hand `out_of_memory`, starts a new child for the next job,
//! and no other job loses an attempt. Each loop keeps one long-lived child (and with it the
//! child's key cache); the child limits its own address space to the worker's memory and
//! some slack.
//!
//! The protocol is JSON lines: the first line to the child is its [`ChildConfig`], then one
//! [`Request`] per line; the child answers each with one [`Response`] line prefixed by
//! [`MARK`]. Other lines it prints (a library's stray output) are passed to stderr.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::ceilings::Ceilings;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::executor::{Executor, Request, Response};
use crate::store::Store;
use crate::worker::{Capacity, KeyCache, WorkerConfig};

/// What starts a protocol line on the child's stdout.
pub const MARK: &str = "\u{1}zkinfer-job ";

/// What the child needs to run a worker's jobs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildConfig {
    /// The database URL.
    pub database_url: String,
    /// The artifact store URL (`None`: the default under `service_dir`).
    pub store: Option<String>,
    /// The service's data dir (the default store lives under it).
    pub service_dir: PathBuf,
    /// The worker's cache dir.
    pub cache_dir: PathBuf,
    /// The ceremony file setups use.
    pub srs: Option<PathBuf>,
    /// The worker's lease, in ms.
    pub lease_ms: u64,
    /// Bytes of proving keys the child keeps loaded.
    pub key_cache_bytes: usize,
    /// The worker's ceilings.
    pub ceilings: Ceilings,
    /// The worker's name in the queue (phases are written under it).
    pub name: String,
}

/// How to start a worker loop's child: the executable (run as `EXE job-runner --worker
/// NAME`, the name for operators' `ps`) and its configuration.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    /// The executable.
    pub exe: PathBuf,
    /// What it is told first.
    pub config: ChildConfig,
}

/// How a child ended while it held a job.
#[derive(Clone, Debug)]
pub struct Died {
    /// Killed by a signal the kernel's OOM killer sends, or aborted (a failed allocation).
    pub out_of_memory: bool,
    /// What happened, for the job's error.
    pub message: String,
}

impl Died {
    fn of(status: Option<ExitStatus>) -> Self {
        #[cfg(unix)]
        let signal = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s));
        #[cfg(not(unix))]
        let signal: Option<i32> = None;
        // SIGKILL (9): the OOM killer, or an operator; SIGABRT (6): Rust's handler for a
        // failed allocation aborts the process.
        let out_of_memory = matches!(signal, Some(9) | Some(6));
        let message = match (signal, status) {
            (Some(sig), _) if out_of_memory => format!(
                "the job's process ran out of memory (ended by signal {sig}); it used more than \
                 this worker allows"
            ),
            (Some(sig), _) => format!("the job's process crashed (signal {sig})"),
            (None, Some(s)) => format!("the job's process exited ({s}) while running it"),
            (None, None) => "the job's process stopped answering".to_string(),
        };
        Died {
            out_of_memory,
            message,
        }
    }
}

/// What runs a worker loop's jobs: the loop's own process, or its child.
pub enum Runner {
    /// In this process.
    Local(Arc<Executor>),
    /// In a supervised child process.
    Child(Box<ChildRunner>),
}

impl Runner {
    /// Runs one step; `Err` if the child died doing it (it is restarted for the next).
    pub async fn call(&mut self, request: Request) -> std::result::Result<Response, Died> {
        match self {
            Runner::Local(e) => Ok(e.execute(request).await),
            Runner::Child(c) => c.call(request).await,
        }
    }

    /// Abandons the step in progress: a child is killed (a new one starts for the next step);
    /// in process, the step's thread is left to finish on its own.
    pub async fn abandon(&mut self) {
        if let Runner::Child(c) = self {
            c.kill().await;
        }
    }

    /// The child's process id, while one runs.
    pub fn child_pid(&self) -> Option<u32> {
        match self {
            Runner::Child(c) => c.running.as_ref().and_then(|r| r.child.id()),
            Runner::Local(_) => None,
        }
    }
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

/// A worker loop's child process, started when first needed and again after it dies.
pub struct ChildRunner {
    spec: ChildSpec,
    running: Option<Running>,
}

impl ChildRunner {
    /// A runner that starts children as `spec` says.
    pub fn new(spec: ChildSpec) -> Self {
        Self {
            spec,
            running: None,
        }
    }

    async fn start(&mut self) -> std::io::Result<&mut Running> {
        // A child that died while idle (killed between jobs) is replaced before it is given a
        // job, so the job is not failed for a death it did not cause.
        if let Some(r) = self.running.as_mut() {
            if !matches!(r.child.try_wait(), Ok(None)) {
                tracing::warn!(worker = %self.spec.config.name, "the idle job process had died");
                self.running = None;
            }
        }
        if self.running.is_none() {
            let mut child = Command::new(&self.spec.exe)
                .args(["job-runner", "--worker", &self.spec.config.name])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()?;
            let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(std::io::Error::other("the child's pipes"));
            };
            let mut first =
                serde_json::to_string(&self.spec.config).map_err(std::io::Error::other)?;
            first.push('\n');
            stdin.write_all(first.as_bytes()).await?;
            tracing::info!(worker = %self.spec.config.name, pid = ?child.id(), "job process started");
            self.running = Some(Running {
                child,
                stdin,
                lines: BufReader::new(stdout).lines(),
            });
        }
        Ok(self.running.as_mut().expect("started above"))
    }

    async fn call(&mut self, request: Request) -> std::result::Result<Response, Died> {
        let started = self.start().await;
        let running = match started {
            Ok(r) => r,
            Err(e) => {
                self.running = None;
                return Err(Died {
                    out_of_memory: false,
                    message: format!("the job's process could not start: {e}"),
                });
            }
        };
        let mut line = match serde_json::to_string(&request) {
            Ok(l) => l,
            Err(e) => {
                return Err(Died {
                    out_of_memory: false,
                    message: format!("request: {e}"),
                })
            }
        };
        line.push('\n');
        let sent = running.stdin.write_all(line.as_bytes()).await;
        if sent.is_ok() {
            let mut malformed = None;
            while let Ok(Some(l)) = running.lines.next_line().await {
                match l.strip_prefix(MARK) {
                    Some(json) => match serde_json::from_str(json) {
                        Ok(response) => return Ok(response),
                        Err(e) => {
                            malformed = Some(e.to_string());
                            break;
                        }
                    },
                    None => eprintln!("{l}"),
                }
            }
            if let Some(e) = malformed {
                // Out of step with its parent: no later line can be trusted.
                self.kill().await;
                return Err(Died {
                    out_of_memory: false,
                    message: format!("the job's process answered out of protocol: {e}"),
                });
            }
        }
        // The child is gone (or its pipes are): how it ended says why.
        let status = self.reap().await;
        Err(Died::of(status))
    }

    /// Waits briefly for the child to end and forgets it; its exit status if it ended.
    async fn reap(&mut self) -> Option<ExitStatus> {
        let mut running = self.running.take()?;
        match tokio::time::timeout(Duration::from_secs(5), running.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = running.child.kill().await;
                None
            }
        }
    }

    async fn kill(&mut self) {
        if let Some(mut running) = self.running.take() {
            let _ = running.child.kill().await;
        }
    }
}

/// The address space a child may map for `memory` bytes of jobs: thread stacks, malloc
/// arenas and the binary's mappings are address space that is never resident, so the limit
/// leaves them slack (2 GiB, and 128 MiB per core for arenas and stacks).
pub fn address_space_for(memory: u64) -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    memory
        .saturating_add(2 << 30)
        .saturating_add(cores.saturating_mul(128 << 20))
}

/// The new soft limit for a wish of `want` bytes under the inherited `(soft, hard)` limits:
/// never above either (a lower inherited limit is kept, not raised).
pub fn tolerated_limit(want: u64, soft: u64, hard: u64) -> u64 {
    want.min(soft).min(hard)
}

/// Limits this process's address space to `want` bytes (or less, if it was already limited
/// lower); returns the limit in force.
#[cfg(unix)]
pub fn limit_address_space(want: u64) -> std::result::Result<u64, String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_AS).map_err(|e| e.to_string())?;
    let limit = tolerated_limit(want, soft, hard);
    setrlimit(Resource::RLIMIT_AS, limit, hard).map_err(|e| e.to_string())?;
    Ok(limit)
}

/// Address-space limits are a Unix facility; elsewhere the child runs unlimited.
#[cfg(not(unix))]
pub fn limit_address_space(_want: u64) -> std::result::Result<u64, String> {
    Err("no address-space limit on this OS".into())
}

/// The child's side: `zkinfer job-runner [--worker NAME]`. Reads its configuration and then
/// requests from stdin, answers each on stdout, and ends when stdin closes (or its worker
/// dies).
pub async fn child_main(worker: Option<&str>) -> Result<()> {
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let io = |e: std::io::Error| Error::Config(format!("job process: {e}"));
    let first = input
        .next_line()
        .await
        .map_err(io)?
        .ok_or_else(|| Error::Config("job process: no configuration".into()))?;
    let cfg: ChildConfig = serde_json::from_str(&first)
        .map_err(|e| Error::Config(format!("job process configuration: {e}")))?;
    // A worker killed outright (SIGKILL) cannot stop its child: the kernel does, so no
    // orphan goes on proving a job whose lease another worker takes over.
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        tracing::warn!("the job process would outlive its worker: {e}");
    }
    // Its jobs' share of memory and its own key cache.
    let memory = cfg
        .ceilings
        .max_prove_memory
        .saturating_add(cfg.key_cache_bytes as u64);
    match limit_address_space(address_space_for(memory)) {
        Ok(limit) => tracing::info!(worker = %cfg.name, "address space limited to {limit} bytes"),
        Err(e) => tracing::warn!(worker = %cfg.name, "no address-space limit: {e}"),
    }
    if worker.is_some_and(|w| w != cfg.name) {
        return Err(Error::Config(format!(
            "job process started for worker {worker:?} was configured for {}",
            cfg.name
        )));
    }
    let db = Db::connect(&cfg.database_url).await?;
    let store = Store::open(cfg.store.as_deref(), &cfg.service_dir)?;
    let worker_cfg = WorkerConfig {
        name: cfg.name.clone(),
        data_dir: cfg.cache_dir.clone(),
        srs: cfg.srs.clone(),
        lease: Duration::from_millis(cfg.lease_ms),
        poll: Duration::from_millis(250),
        keys: Arc::new(KeyCache::new(cfg.key_cache_bytes)),
        ceilings: cfg.ceilings,
        capacity: Arc::new(Capacity::new(cfg.ceilings.max_prove_memory)),
        child: None,
        job_timeout: crate::worker::JOB_TIMEOUT,
        unplaceable_grace: crate::worker::UNPLACEABLE_GRACE,
    };
    let executor = Executor::new(db, store, worker_cfg);
    let mut out = tokio::io::stdout();
    while let Some(line) = input.next_line().await.map_err(io)? {
        let request: Request = serde_json::from_str(&line)
            .map_err(|e| Error::Config(format!("job process request: {e}")))?;
        let response = executor.execute(request).await;
        let mut answer = String::from(MARK);
        answer.push_str(
            &serde_json::to_string(&response)
                .map_err(|e| Error::Config(format!("job process answer: {e}")))?,
        );
        answer.push('\n');
        out.write_all(answer.as_bytes()).await.map_err(io)?;
        out.flush().await.map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_inherited_limit_is_kept() {
        let inf = u64::MAX;
        assert_eq!(tolerated_limit(8 << 30, inf, inf), 8 << 30);
        assert_eq!(tolerated_limit(8 << 30, 4 << 30, inf), 4 << 30);
        assert_eq!(tolerated_limit(8 << 30, inf, 6 << 30), 6 << 30);
        assert!(address_space_for(1 << 30) > 3 << 30);
        assert_eq!(address_space_for(u64::MAX), u64::MAX);
    }

    #[test]
    fn deaths_by_the_oom_killer_or_an_abort_are_out_of_memory() {
        use std::os::unix::process::ExitStatusExt;
        for (raw, oom) in [(9, true), (6, true), (11, false)] {
            let d = Died::of(Some(ExitStatus::from_raw(raw)));
            assert_eq!(d.out_of_memory, oom, "{}", d.message);
        }
        let exited = Died::of(Some(ExitStatus::from_raw(1 << 8)));
        assert!(!exited.out_of_memory && exited.message.contains("exited"));
    }
}
