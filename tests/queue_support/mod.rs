//! Helpers for the queue tests: a private `redis-server` per test, and child processes that
//! are this test binary re-executed.
//!
//! [`RedisServer::start`] runs `redis-server` on a free loopback port in a temporary
//! directory (options on the command line, no config file), waits until it answers `PING`, and
//! kills and reaps it when dropped — so a failing test leaves no server behind. If
//! `redis-server` is not on `PATH`, a test prints a SKIP line saying how to install it and
//! returns (`.ci/run` installs it first).

#![allow(dead_code)] // each test binary uses part of this

use sharedbuf::queue::redis;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The generous limit for anything that should take well under a second: a hang detector, not a
/// speed measurement.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// A `redis-server` of our own.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    appendonly: bool,
}

/// Starts a server, or returns `None` (after printing a SKIP line) when `redis-server` is
/// missing. Use as `let Some(server) = redis_or_skip("test name") else { return };`.
pub fn redis_or_skip(test: &str) -> Option<RedisServer> {
    RedisServer::start_or_skip(test, false)
}

/// Like [`redis_or_skip`], with the append-only file on (for restart tests).
pub fn redis_with_aof_or_skip(test: &str) -> Option<RedisServer> {
    RedisServer::start_or_skip(test, true)
}

fn redis_installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl RedisServer {
    fn start_or_skip(test: &str, appendonly: bool) -> Option<RedisServer> {
        if !redis_installed() {
            println!(
                "SKIP {test}: redis-server is not on PATH (the queue tests start their own: \
                 apt-get install redis-server)"
            );
            return None;
        }
        Some(RedisServer::start(appendonly))
    }

    fn start(appendonly: bool) -> RedisServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sharedbuf-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        // A free port can be taken by someone else between our probe and the server's bind:
        // try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                child: None,
                port,
                dir: dir.clone(),
                appendonly,
            };
            if server.launch() {
                return server;
            }
        }
        panic!(
            "could not start redis-server (see its log in {})",
            dir.display()
        );
    }

    /// Starts the process and waits until it answers PING; `false` if it exited (port taken).
    fn launch(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.join("redis.log")).expect("log file");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--dir", self.dir.to_str().expect("utf-8 temp dir")])
            .args(["--save", ""])
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }])
            // Every write reaches the file before its reply: a SIGKILLed server loses nothing
            // it acknowledged (what the restart tests check the queue for).
            .args(["--appendfsync", "always"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                eprintln!("redis-server exited with {status} on port {}", self.port);
                return false;
            }
            if self.ping() {
                return true;
            }
            assert!(
                started.elapsed() < WATCHDOG,
                "redis-server on port {} did not answer PING within {WATCHDOG:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut con).is_ok()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A plain connection for the test's own inspection.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect to the test server")
    }

    /// SIGKILLs the server and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (it reloads its append-only
    /// file if it had one). Retries while the port is still held by the dying process.
    pub fn restart(&mut self) {
        self.kill();
        let started = Instant::now();
        while !self.launch() {
            assert!(started.elapsed() < WATCHDOG, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A queue name unique to this process and call.
pub fn queue_name(label: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `condition` every few milliseconds until it holds; panics after the watchdog with
/// `what`.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < WATCHDOG,
            "{what}: not after {WATCHDOG:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A gate that a test's jobs wait at until the test opens it.
///
/// A job spinning at a closed gate keeps its pool thread, and dropping the consumer or the pool
/// waits for it: a test that panics before opening the gate would hang instead of failing (the
/// CI run of 2026-12-03 ran out its time that way). So a test takes [`Gate::open_at_exit`]
/// right after starting the consumer: declared after it, the guard is dropped before it, on
/// every path out of the test.
#[derive(Clone, Default)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets every waiting job through.
    pub fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the gate is open (for a job that also waits for something else).
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Returns once the gate is open (what a job calls).
    pub fn pass(&self) {
        while !self.0.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
    }

    /// A guard that opens the gate when dropped.
    pub fn open_at_exit(&self) -> OpenAtExit {
        OpenAtExit(self.clone())
    }
}

/// Opens its [`Gate`] when dropped.
pub struct OpenAtExit(Gate);

impl Drop for OpenAtExit {
    fn drop(&mut self) {
        self.0.open();
    }
}

// ---- child processes --------------------------------------------------------------------------

/// Set in a child: which role it plays (`<test name>:<role>`).
pub const ROLE: &str = "SHAREDBUF_QUEUE_TEST_ROLE";
/// Set in a child: a free-form argument (the Redis URL, the queue name...).
pub const ARG: &str = "SHAREDBUF_QUEUE_TEST_ARG";

/// The role this process plays, if it is a child started by [`spawn_child`] for `test`.
pub fn child_role(test: &str) -> Option<String> {
    let role = std::env::var(ROLE).ok()?;
    role.strip_prefix(test)
        .and_then(|r| r.strip_prefix(':'))
        .map(str::to_string)
}

/// The argument a child was given.
pub fn child_arg() -> String {
    std::env::var(ARG).unwrap_or_default()
}

/// Starts this test binary again, running only test `test` in role `role` with `arg`.
pub fn spawn_child(test: &str, role: &str, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        // The child runs the same test even when it is #[ignore]d (run with --ignored).
        .arg("--include-ignored")
        .env(ROLE, format!("{test}:{role}"))
        .env(ARG, arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn a child test process")
}

/// Waits for `child` with the watchdog; kills it and panics if it hangs.
pub fn wait_child(mut child: Child, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the child process hung (killed after {WATCHDOG:?})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills children when dropped (a failing test leaves none behind).
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether the parent that started this child is gone (a child then exits on its own).
pub fn orphaned(parent: u32) -> bool {
    std::os::unix::process::parent_id() != parent
}
