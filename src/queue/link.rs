//! [`Link`]: one connection to Redis that comes back by itself (docs/semantics.md Q6).
//!
//! # Reconnect protocol
//!
//! Every request is a batch of commands sent in one write and answered in one read (a
//! pipeline). When the connection breaks — the server was killed, a reply took longer than the
//! read timeout, the server is still loading its data after a restart — the link drops the
//! connection, waits (10 ms doubling to 1 s by default, with jitter), opens a new one, loads the
//! queue's scripts into the server's script cache, and sends **the same batch again**, until it
//! is answered or the owner says to stop.
//!
//! Sending a batch again is only correct if running it twice does what running it once does,
//! because a batch whose reply was lost may or may not have run. Every batch the queue sends is
//! built that way (see `scripts.rs`): finishing a job checks that the consumer still owns it,
//! so a second run finds it gone and does nothing; reads that were answered into a broken
//! connection leave their jobs pending for this consumer, and the consumer takes them back from
//! its own pending list after every reconnect ([`Link::take_fresh`]). The one exception is a
//! producer's `add` without a dedupe key, which may then queue the job twice (at least once);
//! with a dedupe key the second run finds the key and adds nothing.
//!
//! # Read timeouts
//!
//! A connection's read timeout is the longest any of its commands may legitimately take plus
//! the command timeout. For the wake-up reader that blocks in `XREAD BLOCK`, that is the block
//! time plus the command timeout: a blocking read never trips the client's timeout, the classic
//! pitfall of Redis clients that share one timeout between blocking and ordinary commands.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Cmd, ConnectionLike, ErrorKind, Value};

use super::config::Config;
use super::random;
use super::reply;
use super::scripts;
use crate::region::MadeIn;

/// Why a request was not answered.
#[derive(Debug)]
pub(super) enum LinkError {
    /// The owner said to stop (closing, deadline passed) before Redis answered.
    GaveUp {
        /// The last failure seen.
        last_error: String,
        /// Since the request started.
        tried_for: Duration,
    },
    /// A failure no retry fixes (authentication refused, a malformed URL).
    Fatal(redis::RedisError),
}

/// One self-healing connection (see the module docs).
pub(super) struct Link {
    config: Arc<Config>,
    /// What this connection is for, in `CLIENT SETNAME` (shows in `CLIENT LIST`).
    client_name: String,
    read_timeout: Duration,
    con: Option<redis::Connection>,
    /// The fork generation `con` was opened in: after a `fork()` the child's copy of the
    /// connection is the parent's socket too (X7), so the child opens one of its own.
    opened_in: MadeIn,
    /// Connections opened after the first one, shared with whoever reports them.
    reconnects: Arc<AtomicU64>,
    opened: u64,
    /// A connection was (re)opened since the last [`take_fresh`](Link::take_fresh).
    fresh: bool,
    /// The server's id of the current connection (`CLIENT ID`), 0 before the first.
    client_id: Arc<AtomicI64>,
}

/// Error codes after which the same batch is sent again, after a pause, on the same connection:
/// the server is loading its data, busy in a script, or not ready.
const TRANSIENT: [&str; 5] = ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"];

/// How late a server may end a blocking command, allowed for on top of its block time (Q6).
/// Redis checks blocked clients' timeouts on its timer (`hz`, 10 times a second by default):
/// `BLOCK 100` measured 201 ms here, so a command timeout of 100 ms or less, counted from the
/// block time alone, tripped on healthy reads.
const BLOCK_LATENESS: Duration = Duration::from_millis(200);

/// How long a reply to a command that may block for `longest_command` may take (Q6): the
/// block time, the server's lateness if it blocks at all, then the command timeout.
pub(super) fn read_timeout(longest_command: Duration, command_timeout: Duration) -> Duration {
    let lateness = if longest_command.is_zero() {
        Duration::ZERO
    } else {
        BLOCK_LATENESS
    };
    longest_command
        .saturating_add(lateness)
        .saturating_add(command_timeout)
}

impl Link {
    /// A link (not connected until its first request) whose commands may take up to
    /// `longest_command` before the command timeout starts counting.
    pub(super) fn new(
        config: Arc<Config>,
        client_name: String,
        longest_command: Duration,
        reconnects: Arc<AtomicU64>,
    ) -> Link {
        let read_timeout = read_timeout(longest_command, config.command_timeout);
        Link {
            config,
            client_name,
            read_timeout,
            con: None,
            opened_in: MadeIn::now(),
            reconnects,
            opened: 0,
            fresh: false,
            client_id: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Publishes the `CLIENT ID` of each new connection in `sink` as soon as it is opened (so
    /// another connection can `CLIENT UNBLOCK` a blocking read of this one).
    pub(super) fn publish_client_id(mut self, sink: Arc<AtomicI64>) -> Link {
        self.client_id = sink;
        self
    }

    /// Whether a connection was (re)opened since the last call; clears the flag. A consumer
    /// then takes back the jobs a lost reply may have left pending for it.
    pub(super) fn take_fresh(&mut self) -> bool {
        std::mem::take(&mut self.fresh)
    }

    /// Drops the connection (the next request opens a new one).
    pub(super) fn disconnect(&mut self) {
        self.con = None;
    }

    /// Sends `commands` as one pipeline and returns one reply per command (server errors
    /// included, as `Value::ServerError`), reconnecting and sending them again until they are
    /// answered; `should_stop` is asked before every pause.
    pub(super) fn request(
        &mut self,
        commands: &[Cmd],
        should_stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Value>, LinkError> {
        let started = Instant::now();
        let mut pause = self.config.reconnect_min;
        loop {
            let last_error = match self.attempt(commands) {
                Ok(values) => {
                    let transient = values
                        .iter()
                        .filter_map(reply::error_code)
                        .find(|code| TRANSIENT.contains(code));
                    match transient {
                        None => return Ok(values),
                        Some(code) => format!("server answered {code}"),
                    }
                }
                Err(error) if is_fatal(&error) => return Err(LinkError::Fatal(error)),
                Err(error) => {
                    self.con = None;
                    error.to_string()
                }
            };
            if should_stop() {
                return Err(LinkError::GaveUp {
                    last_error,
                    tried_for: started.elapsed(),
                });
            }
            sleep_unless(jittered(pause), should_stop);
            pause = pause.saturating_mul(2).min(self.config.reconnect_max);
        }
    }

    /// One try: connect if needed, send, read; reload the scripts and resend the commands that
    /// found none (`NOSCRIPT`: the server restarted or its cache was flushed).
    fn attempt(&mut self, commands: &[Cmd]) -> redis::RedisResult<Vec<Value>> {
        if self.con.is_some() && self.opened_in.forked() {
            // Opened before a fork: one socket, two processes reading its replies. Dropping
            // our copy closes only this process's descriptor (no `QUIT`, no `shutdown`), so
            // the parent's connection goes on as before.
            self.con = None;
        }
        if self.con.is_none() {
            self.open()?;
        }
        let con = self.con.as_mut().expect("opened above");
        let mut values = con.req_packed_commands(&pack(commands), 0, commands.len())?;
        let missing: Vec<usize> = (0..values.len())
            .filter(|&i| reply::error_code(&values[i]) == Some("NOSCRIPT"))
            .collect();
        if !missing.is_empty() {
            load_scripts(con)?;
            let again: Vec<Cmd> = missing.iter().map(|&i| commands[i].clone()).collect();
            let answers = con.req_packed_commands(&pack(&again), 0, again.len())?;
            for (i, answer) in missing.into_iter().zip(answers) {
                values[i] = answer;
            }
        }
        Ok(values)
    }

    fn open(&mut self) -> redis::RedisResult<()> {
        let mut con = self
            .config
            .client
            .get_connection_with_timeout(self.config.connect_timeout)?;
        con.set_read_timeout(Some(self.read_timeout))?;
        con.set_write_timeout(Some(self.config.command_timeout))?;
        let mut setup = redis::pipe();
        setup
            .cmd("CLIENT")
            .arg("SETNAME")
            .arg(&self.client_name)
            .ignore()
            .cmd("CLIENT")
            .arg("ID");
        let (id,): (i64,) = setup.query(&mut con)?;
        load_scripts(&mut con)?;
        self.client_id.store(id, Ordering::SeqCst);
        self.con = Some(con);
        self.opened_in = MadeIn::now();
        if self.opened > 0 {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        self.opened += 1;
        self.fresh = true;
        Ok(())
    }
}

/// Loads every script of the queue into the server's cache (so pipelines can `EVALSHA` them).
fn load_scripts(con: &mut redis::Connection) -> redis::RedisResult<()> {
    let mut load = redis::pipe();
    for script in scripts::all() {
        load.cmd("SCRIPT").arg("LOAD").arg(script.source).ignore();
    }
    load.query::<()>(con)
}

/// Failures that reconnecting cannot fix.
fn is_fatal(error: &redis::RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
    )
}

fn pack(commands: &[Cmd]) -> Vec<u8> {
    let mut packed = Vec::new();
    for command in commands {
        command.write_packed_command(&mut packed);
    }
    packed
}

/// `pause` moved by up to a quarter either way, so clients that lost the same server do not
/// all knock at once.
fn jittered(pause: Duration) -> Duration {
    let ms = super::clock::millis(pause).max(1);
    Duration::from_millis(random::between(ms - ms / 4, ms + ms / 4))
}

/// Sleeps `pause` in short steps, returning early once `should_stop` holds.
pub(super) fn sleep_unless(pause: Duration, should_stop: &dyn Fn() -> bool) {
    let until = super::clock::later(Instant::now(), pause);
    loop {
        let now = Instant::now();
        if now >= until || should_stop() {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}
