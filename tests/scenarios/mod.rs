//! Test binaries of scenarios that each run in a child process of their own (`harness = false`:
//! tests/exhaustion.rs, tests/signals.rs): they lower resource limits, install signal handlers
//! or fork, which must not touch the other scenarios. The binary runs itself once per scenario
//! with an environment variable naming it, and reports each one as libtest would. Also
//! [`fork_child`], for a test that forks (tests/queue_faults.rs too).

#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// A named scenario.
pub type Scenario = (&'static str, fn());

/// How a scenario binary runs.
pub struct Runner {
    /// The environment variable that names a child's scenario.
    pub role: &'static str,
    /// How long a child may run before it counts as hung (and is killed).
    pub watchdog: Duration,
    /// More environment for the children.
    pub env: &'static [(&'static str, &'static str)],
    /// Runs in the child before its scenario.
    pub before: fn(),
}

impl Runner {
    /// In a child: runs its scenario. Otherwise runs every scenario whose name contains one of
    /// the command line's filters (all without any), each in a child, prints `test … ok` or
    /// `FAILED` with the child's output, and panics naming the failed ones.
    pub fn main(&self, scenarios: &[Scenario]) {
        if let Ok(role) = std::env::var(self.role) {
            let (_, scenario) = scenarios
                .iter()
                .find(|(name, _)| *name == role)
                .expect("a known role");
            (self.before)();
            scenario();
            return;
        }
        let filter: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        let mut failed = Vec::new();
        for (name, _) in scenarios {
            if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
                continue;
            }
            match self.run_child(name) {
                Ok(()) => println!("test {name} ... ok"),
                Err(why) => {
                    println!("test {name} ... FAILED\n{why}");
                    failed.push(*name);
                }
            }
        }
        if !failed.is_empty() {
            panic!("failed: {failed:?}");
        }
    }

    /// Runs scenario `name` in a child; `Err` with its output if it failed or hung.
    fn run_child(&self, name: &str) -> Result<(), String> {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(self.role, name)
            .envs(self.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let deadline = Instant::now() + self.watchdog;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                let output = child.wait_with_output().map_err(|e| e.to_string())?;
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "{status}\n{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    ))
                };
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let output = child.wait_with_output().map_err(|e| e.to_string())?;
                return Err(format!(
                    "hung (killed after {:?})\n{}",
                    self.watchdog,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(10)); // polling a child's exit, a watchdog
        }
    }
}

/// Wakes the thread that polls.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is ready, or `None` after `bound` (a scenario that
/// must not hang its child).
pub fn block_on_within<F: Future>(bound: Duration, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + bound;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// Forks; the child runs `f` and exits at once (`_exit`: nothing inherited is dropped) with
/// 0 if it returned, 1 if it panicked. `Err` says why if the child failed, or hung (ran longer
/// than `bound`: then it is killed).
pub fn fork_child(bound: Duration, f: impl FnOnce()) -> Result<(), String> {
    fork_child_alongside(bound, f, || ()).0
}

/// [`fork_child`], with the parent running `parent` while the child runs `child`; returns the
/// child's result and what `parent` returned.
pub fn fork_child_alongside<P>(
    bound: Duration,
    child: impl FnOnce(),
    parent: impl FnOnce() -> P,
) -> (Result<(), String>, P) {
    // SAFETY: the child only runs `child` (the documented uses after a fork, X7) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).is_ok();
        // SAFETY: `_exit` ends the process at once.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let deadline = Instant::now() + bound;
    let parent = parent();
    (wait_for_child(pid, deadline), parent)
}

/// Reaps `pid`, killing it once `deadline` has passed.
fn wait_for_child(pid: libc::pid_t, deadline: Instant) -> Result<(), String> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid int; `pid` is our child.
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            0 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            0 => {
                // SAFETY: our unreaped child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                // SAFETY: as above; reaps it.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                return Err("the forked child hung".into());
            }
            _ if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 => return Ok(()),
            _ => return Err(format!("the forked child failed ({status:#x})")),
        }
    }
}
