//! `wait_async` on process-shared buffers: the doorbell thread that turns a notify from any
//! process into a `Waker` call (docs/semantics.md A12, X2).
//!
//! A pending future has no thread to sleep on its slot's futex, and a notifier in another
//! process cannot call a `Waker` of this one. So while futures of this process wait on a
//! process-shared buffer, one thread of this process sleeps on that buffer's *doorbell*: a
//! slot of the header marked `DOORBELL`, whose link word counts rings. A future's slot names
//! the doorbell in its own link word; a notify that takes such a slot rings the doorbell
//! (raises the count, wakes its futex) instead of waking the slot, and the doorbell thread
//! looks at the slots of its futures and wakes the tasks of those that left the queue.
//!
//! The futures' slots are queued and counted like a blocked thread's (`process_waiters.rs`):
//! the doorbell only carries the wakeup. A future's waiter is on the doorbell's list before its
//! slot is published, and the thread reads the ring count before it looks at the list, then
//! sleeps only while the count is unchanged, so no ring is missed.
//!
//! A future that is dropped, or times out (`timer.rs`), is taken off the list by whoever
//! cancels it; whoever takes a waiter off the list sets its outcome and frees its slot, under
//! the list's lock, so exactly once. The doorbell thread starts with the first future of its
//! buffer, and ends (freeing its slot and dropping its clone of the buffer) once its list is
//! empty: a cancel that empties it rings the doorbell so the thread notices. The thread marks
//! its list closed, under the list's lock, in the same look that finds it empty, and a future
//! joins a list only if it is still open under that same lock: one that comes as the thread
//! ends starts a new bridge instead of joining a list nobody serves any more (where a notify
//! would count it and nothing would ever wake its task).
//!
//! A child forked from this process (without `exec`) inherits [`BRIDGES`] but none of the
//! doorbell threads: each bridge records the fork generation it serves, and a future of the child
//! starts a bridge of its own rather than join one nobody in the child serves
//! (docs/semantics.md X7; fault: the child's future joined the parent's list, a notify rang the
//! parent's doorbell, and the child's task was never woken).
//!
//! Another process may overwrite the doorbell slot (docs/semantics.md X5). The thread then still ends:
//! it never sleeps longer than [`RESCAN`] without looking at its list again, so a lost ring
//! costs a delay, never a thread that waits for ever.

use std::time::{Duration, Instant};

use super::cancel::cancel;
use super::outcome::Outcome;
use super::process_waiters::{offset_in, Claimed, Seen, SlotRef};
use super::waiter::{wake_catching, Doorbell, Waiter};
use crate::buffer::SharedBuffer;
use crate::element::Waitable;
use crate::error::Error;
use crate::region::{fork_generation, Header};
use crate::shim::{self, lock, thread, Arc, Mutex, Ordering};
use crate::view::ElementRef;

/// The doorbell of one process-shared buffer in this process, and the futures it serves.
pub(crate) struct Bridge {
    /// Identifies the buffer's mapping: its data's address (unique while the bridge, which
    /// holds a clone of the buffer, lives).
    key: usize,
    /// The fork generation of the process whose doorbell thread serves it: a child forked
    /// from that process inherits the bridge in its copy of [`BRIDGES`] but not the thread,
    /// so it never joins it (docs/semantics.md X7).
    generation: u64,
    doorbell: SlotRef,
    doorbell_index: u32,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    waiters: Vec<Arc<Waiter>>,
    /// Set by the thread when it ends: a closed bridge takes no more futures.
    closed: bool,
}

/// The longest a doorbell thread sleeps without looking at its futures again: its safety net
/// if another process scribbled over the doorbell (a ring is what normally wakes it).
const RESCAN: Duration = Duration::from_millis(100);

shim::lazy_static! {
    static ref BRIDGES: Mutex<Vec<Arc<Bridge>>> = Mutex::new(Vec::new());
}

fn key_of(buffer: &SharedBuffer) -> usize {
    // SAFETY: offset 0 is within every region.
    unsafe { buffer.region().ptr_at(0) }.address()
}

/// Queues a future's waiter on `element` of a process-shared buffer if it holds `expected`:
/// `Ok(None)` if it does not (`NotEqual`). The waiter's outcome is then set, and its task
/// woken, when a notify from any process takes it.
pub(crate) fn enqueue<T: Waitable>(
    buffer: &SharedBuffer,
    header: &Header,
    element: ElementRef<'_, T>,
    expected: T,
) -> Result<Option<Arc<Waiter>>, Error> {
    let offset = offset_in(buffer, &element);
    let (claimed, waiter) = {
        let mut bridges = lock(&BRIDGES);
        let key = key_of(buffer);
        let generation = fork_generation();
        loop {
            let open = bridges
                .iter()
                .find(|bridge| {
                    bridge.key == key
                        && bridge.generation == generation
                        && !lock(&bridge.pending).closed
                })
                .cloned();
            let (bridge, started) = match open {
                Some(bridge) => (bridge, false),
                None => (Bridge::new(buffer, header, key)?, true),
            };
            let claimed = match Claimed::new(buffer, header, offset, bridge.doorbell_index) {
                Ok(claimed) => claimed,
                Err(error) => {
                    if started {
                        bridge.doorbell.release();
                    }
                    return Err(error);
                }
            };
            let slot = claimed.slot_ref().clone();
            let doorbell: Box<dyn Doorbell> = Box::new(Arc::clone(&bridge));
            let waiter =
                Arc::new(Waiter::for_task(element.address()).in_process_slot(slot, Some(doorbell)));
            {
                let mut pending = lock(&bridge.pending);
                if pending.closed {
                    // Its thread ended since the look above (its last future left): it serves
                    // no more futures, and a waiter pushed now would never be woken. It stays
                    // in `BRIDGES`, closed, until we let go of it: look again for another.
                    drop(pending);
                    drop(claimed);
                    continue;
                }
                pending.waiters.push(Arc::clone(&waiter));
            }
            if started {
                let serving = Arc::clone(&bridge);
                let spawned = thread::Builder::new()
                    .name("sharedbuf-doorbell".into())
                    .spawn(move || Bridge::serve(serving));
                if let Err(error) = spawned {
                    lock(&bridge.pending).waiters.clear();
                    drop(claimed);
                    bridge.doorbell.release();
                    return Err(Error::SpawnFailed {
                        reason: format!("could not start the wait_async doorbell thread: {error}"),
                    });
                }
                bridges.push(bridge);
            }
            break (claimed, waiter);
        }
    };
    // From here on the waiter's slot is freed by whoever takes it off the doorbell's list.
    drop(claimed.publish().into_slot_ref());
    if element.load(Ordering::SeqCst) != expected {
        let outcome = cancel(&waiter, Outcome::Cancelled, false);
        if outcome != Some(Outcome::Notified) {
            return Ok(None);
        }
        // A notify took it before it could withdraw: it was queued then, and resolves `Ok`.
    }
    Ok(Some(waiter))
}

impl Bridge {
    /// A bridge for `buffer` with a doorbell slot of its own (its thread not started yet).
    fn new(buffer: &SharedBuffer, header: &Header, key: usize) -> Result<Arc<Bridge>, Error> {
        let claimed = Claimed::new(buffer, header, 0, 0)?;
        let doorbell_index = claimed.index() as u32;
        Ok(Arc::new(Bridge {
            key,
            generation: fork_generation(),
            doorbell: claimed.into_doorbell(),
            doorbell_index,
            pending: Mutex::new(Pending::default()),
        }))
    }

    fn header(&self) -> &Header {
        self.doorbell.header()
    }

    /// Rings this bridge's own doorbell, whatever its slot holds now.
    fn poke(&self) {
        if let Some(doorbell) = self.header().slot(self.doorbell_index as usize) {
            doorbell.link().fetch_add(1, Ordering::Release);
            doorbell.link().futex_wake(1);
        }
    }

    /// The doorbell thread: wakes the tasks whose slots left the queue, each time the doorbell
    /// rings, until no future is left.
    fn serve(this: Arc<Bridge>) {
        let header = this.header();
        let doorbell = header
            .slot(this.doorbell_index as usize)
            .expect("the doorbell's index was checked when it was claimed")
            .link();
        loop {
            let rung = doorbell.load(Ordering::Acquire);
            let mut finished = Vec::new();
            let end = {
                let mut pending = lock(&this.pending);
                pending.waiters.retain(|waiter| {
                    let slot = waiter.process_slot().expect("a process-shared waiter");
                    let outcome = match slot.seen() {
                        Seen::Queued { .. } => return true,
                        Seen::Resolved(outcome) => outcome,
                        // Another process overwrote the slot: the future resolves `TimedOut`.
                        Seen::Lost => Outcome::Cancelled,
                    };
                    waiter.finish(outcome);
                    slot.release();
                    finished.push(Arc::clone(waiter));
                    false
                });
                pending.closed = pending.waiters.is_empty();
                pending.closed
            };
            for waiter in finished {
                // A panicking waker is the task's problem; the other futures are still served.
                let _ = wake_catching(waiter, false);
            }
            if end {
                break;
            }
            doorbell.futex_wait(rung, Some(Instant::now() + RESCAN));
        }
        lock(&BRIDGES).retain(|bridge| !Arc::ptr_eq(bridge, &this));
        this.doorbell.release();
    }
}

/// The seam through which a future's waiter reaches its bridge (`cancel.rs`).
impl Doorbell for Arc<Bridge> {
    fn finish(
        &self,
        waiter: &Arc<Waiter>,
        slot: &SlotRef,
        outcome: Outcome,
        wake: bool,
    ) -> Outcome {
        let (removed, emptied) = {
            let mut pending = lock(&self.pending);
            match pending.waiters.iter().position(|w| Arc::ptr_eq(w, waiter)) {
                Some(position) => {
                    let removed = pending.waiters.swap_remove(position);
                    removed.finish(outcome);
                    slot.release();
                    (Some(removed), pending.waiters.is_empty())
                }
                None => (None, false),
            }
        };
        let outcome = if removed.is_some() {
            outcome
        } else {
            waiter.outcome().unwrap_or(outcome)
        };
        drop(removed); // not the last reference (the caller holds one), and unlocked
        if emptied {
            self.poke(); // let the thread notice and end
        }
        if wake {
            waiter.wake(false);
        }
        outcome
    }
}
