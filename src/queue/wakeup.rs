//! The wake-up reader: a thread of each consumer, with a connection of its own, that blocks in
//! `XREAD BLOCK` while the queue is empty and tells the dispatcher when a job arrives.
//!
//! # Protocol
//!
//! When a FETCH comes back with fewer jobs than it asked for, every level was empty at that
//! instant, and FETCH also answered the last entry id of each stream. The dispatcher *arms* the
//! reader with those ids; the reader runs `XREAD COUNT 1 BLOCK <block> STREAMS high normal low
//! <ids>`, which returns as soon as any stream has an entry after them — so a job added at any
//! moment after that FETCH wakes it, none slips in between (FETCH is atomic). The reader then
//! disarms itself and sends [`Event::Wake`]; the dispatcher FETCHes (which takes jobs in
//! priority order and owns them through the consumer group). The reader never takes a job
//! itself, so it has nothing to give back when the consumer closes.
//!
//! An `XREAD` that ends empty after its block time just starts again. Its connection's read
//! timeout is the block time plus the command timeout ([`Link::new`]), so a blocking read
//! never trips the client's own timeout (docs/semantics.md Q6); a read that outlives even that
//! means the connection is dead, and the link replaces it.
//!
//! Cost: every idle consumer's reader wakes on every new job (a thundering herd of one FETCH
//! each); a fleet of tens of idle consumers pays tens of small scripts per job that arrives in
//! an empty queue, none once the queue has a backlog.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};

use redis::Value;

use super::event::Event;
use super::link::Link;
use super::shared::Shared;
use super::stats::bump;

/// The dispatcher's side: arm the reader, or stop it.
#[derive(Default)]
pub(super) struct WakeupControl {
    state: Mutex<State>,
    bell: Condvar,
}

#[derive(Default)]
struct State {
    /// The last entry id of each level stream to read after, while armed.
    armed: Option<[String; 3]>,
    stop: bool,
}

impl WakeupControl {
    /// Blocks the reader until an entry after `last_ids` arrives.
    pub(super) fn arm(&self, last_ids: [String; 3]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.armed = Some(last_ids);
        self.bell.notify_all();
    }

    /// Tells the reader to end.
    pub(super) fn stop(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.stop = true;
        self.bell.notify_all();
    }

    fn stopped(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stop
    }

    /// Waits until armed (`Some(ids)`) or stopped (`None`).
    fn wait_armed(&self) -> Option<[String; 3]> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.stop {
                return None;
            }
            if let Some(ids) = &state.armed {
                return Some(ids.clone());
            }
            state = self.bell.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Disarms, unless the dispatcher armed it again with other ids meanwhile.
    fn disarm(&self, ids: &[String; 3]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.armed.as_ref() == Some(ids) {
            state.armed = None;
        }
    }
}

/// The reader's loop.
pub(super) fn run(
    mut link: Link,
    shared: Arc<Shared>,
    control: Arc<WakeupControl>,
    events: Sender<Event>,
) {
    let block_ms = super::clock::millis(shared.settings.block).max(1);
    let keys = &shared.config.keys;
    while let Some(ids) = control.wait_armed() {
        let command = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&keys.streams)
            .arg(&ids)
            .clone();
        let answer = link.request(&[command], &|| control.stopped());
        let Ok(mut values) = answer else {
            break; // stopped while Redis was out of reach
        };
        let reconnected = link.take_fresh();
        match values.pop() {
            Some(Value::Nil) | None if !reconnected => bump(&shared.counters.idle_blocks),
            Some(value) if super::reply::server_error(&value).is_some() => {
                // The streams are gone or replaced (a restart without persistence): let the
                // dispatcher look, and pause so a lasting error does not spin.
                control.disarm(&ids);
                let _ = events.send(Event::Wake);
                super::link::sleep_unless(shared.settings.block, &|| control.stopped());
            }
            _ => {
                // Something arrived, or the connection was replaced (something may have
                // arrived while it was down): the dispatcher looks.
                if !reconnected {
                    bump(&shared.counters.wakeups);
                }
                control.disarm(&ids);
                let _ = events.send(Event::Wake);
            }
        }
    }
    shared
        .reader_exited
        .store(true, std::sync::atomic::Ordering::SeqCst);
}
