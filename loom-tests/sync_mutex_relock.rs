//! Loom model (docs/semantics.md S2): relocking a held `Mutex` on the same thread is `Err(WouldDeadlock)`
//! in every interleaving with another thread taking the lock after it — the owner word never
//! holds a stale token that would hide a relock (or report a false one).
//!
//! Proven by a planted bug: `unlock` no longer clears the owner word (assertion: after unlocking, `try_lock` said `WouldDeadlock`).
#![cfg(loom)]

use sharedbuf::sync::{Mutex, TryLockError};
use sharedbuf::{loom_hooks, Error, SharedBuffer};

#[test]
fn a_relock_is_refused_for_the_holder_only() {
    loom::model(|| {
        let buffer = SharedBuffer::new(Mutex::BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let guard = mutex.lock().unwrap();

        let other_mutex = mutex.clone();
        let other = loom::thread::spawn(move || {
            let guard = other_mutex.lock().unwrap();
            // The previous holder's token is gone: this thread's relock is its own.
            assert_eq!(other_mutex.lock().unwrap_err(), Error::WouldDeadlock);
            assert_eq!(other_mutex.try_lock().unwrap_err(), Error::WouldDeadlock);
            drop(guard);
        });

        assert_eq!(mutex.try_lock().unwrap_err(), Error::WouldDeadlock);
        drop(guard);
        // Either free again or held by the other thread: never "held by me".
        match mutex.try_lock() {
            Ok(guard) => drop(guard),
            Err(TryLockError::WouldBlock) => {}
            Err(error) => panic!("after unlocking, try_lock said {error:?}"),
        }
        other.join().unwrap();
        assert!(!mutex.is_locked());
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
