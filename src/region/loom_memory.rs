//! A region's memory under `--cfg loom`, in place of `native_memory.rs`: an array of loom
//! `AtomicU64` cells, one per 8 bytes, in little-endian byte order (as on x86). Narrower
//! accesses work on their containing cell — loads shift and mask, writes use a compare-exchange
//! loop — so mixed-size views stay consistent and loom sees every access. Only tiny buffers
//! belong in a loom model.

use std::ptr::NonNull;
use std::time::Instant;

use super::bits::{failure_ordering, Bits, RmwOp};
use crate::error::Error;
use crate::shim::{lock, thread, Arc, AtomicBool, AtomicU64, Mutex, Ordering, Parked};

/// The largest block a loom model may use.
const LOOM_MAX: usize = 1 << 20;

/// The cells; dropping them frees the memory.
pub(super) struct Memory {
    _cells: Box<[AtomicU64]>,
}

impl Memory {
    /// `reserved` zeroed bytes (rounded up to whole cells), all accessible, and a pointer to
    /// the first.
    pub(super) fn new(reserved: usize, _accessible: usize) -> Result<(Memory, RegionPtr), Error> {
        if reserved > LOOM_MAX {
            return Err(Error::AllocationFailed {
                bytes: reserved,
                reason: "loom models only use small buffers".into(),
            });
        }
        let cells: Box<[AtomicU64]> = (0..reserved.div_ceil(8).max(1))
            .map(|_| AtomicU64::new(0))
            .collect();
        let base = RegionPtr {
            cells: NonNull::from(&cells[0]),
            cell_count: cells.len(),
            offset: 0,
        };
        Ok((Memory { _cells: cells }, base))
    }

    /// As `new`: zeroed cells are as good as unspecified contents.
    pub(super) fn uninit(len: usize) -> Result<(Memory, RegionPtr), Error> {
        Self::new(len, len)
    }

    /// Every cell is accessible from the start: nothing to commit.
    pub(super) fn commit(&self, _len: usize) -> Result<(), Error> {
        Ok(())
    }
}

/// The loom stand-in for the raw pointer: the cells (a boxed slice, which never moves while
/// its region lives) and a byte offset into them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RegionPtr {
    cells: NonNull<AtomicU64>,
    cell_count: usize,
    offset: usize,
}

// SAFETY: only used to reach loom atomics, which are `Send + Sync`.
unsafe impl Send for RegionPtr {}
// SAFETY: as for `Send`.
unsafe impl Sync for RegionPtr {}

impl RegionPtr {
    /// # Safety
    /// The result stays within the region.
    pub(crate) unsafe fn add(self, bytes: usize) -> RegionPtr {
        RegionPtr {
            offset: self.offset + bytes,
            ..self
        }
    }

    /// The cell holding byte `offset` past this pointer, the shift of the access within it, and
    /// the mask of the `B::SIZE` bytes accessed.
    ///
    /// # Safety
    /// The region is alive.
    unsafe fn cell<B: Bits>(&self, offset: usize) -> (&AtomicU64, u32, u64) {
        let at = self.offset + offset;
        // SAFETY: the cells are alive per the caller and hold `cell_count` initialized cells;
        // indexing below checks the bound.
        let cells = unsafe { std::slice::from_raw_parts(self.cells.as_ptr(), self.cell_count) };
        let shift = ((at % 8) * 8) as u32;
        let mask = if B::SIZE == 8 {
            u64::MAX
        } else {
            ((1u64 << (B::SIZE * 8)) - 1) << shift
        };
        (&cells[at / 8], shift, mask)
    }

    /// # Safety
    /// The region is alive; `offset` past the pointer is aligned and in bounds.
    pub(crate) unsafe fn load<B: Bits>(self, offset: usize, order: Ordering) -> B {
        // SAFETY: alive per the caller.
        let (cell, shift, mask) = unsafe { self.cell::<B>(offset) };
        B::from_u64((cell.load(order) & mask) >> shift)
    }

    /// # Safety
    /// As for `load` at offset `index * B::SIZE`.
    pub(crate) unsafe fn load_element<B: Bits>(self, index: usize, order: Ordering) -> B {
        // SAFETY: as per the caller.
        unsafe { self.load::<B>(index * B::SIZE, order) }
    }

    /// # Safety
    /// As for `load` at offset `index * B::SIZE`.
    pub(crate) unsafe fn store_element<B: Bits>(self, index: usize, value: B, order: Ordering) {
        // SAFETY: as per the caller.
        unsafe { self.store::<B>(index * B::SIZE, value, order) }
    }

    /// # Safety
    /// As for `load`.
    pub(crate) unsafe fn store<B: Bits>(self, offset: usize, value: B, order: Ordering) {
        if B::SIZE == 8 {
            // SAFETY: alive per the caller.
            let (cell, _, _) = unsafe { self.cell::<B>(offset) };
            cell.store(value.to_u64(), order);
        } else {
            // SAFETY: same preconditions.
            unsafe { self.add(offset).rmw(RmwOp::Exchange, value, order) };
        }
    }

    /// # Safety
    /// As for `load`, at offset 0.
    pub(crate) unsafe fn rmw<B: Bits>(self, op: RmwOp, operand: B, order: Ordering) -> B {
        // SAFETY: alive per the caller.
        let (cell, shift, mask) = unsafe { self.cell::<B>(0) };
        let mut word = cell.load(failure_ordering(order));
        loop {
            let old = (word & mask) >> shift;
            let new = (op.apply(old, operand.to_u64()) << shift) & mask;
            match cell.compare_exchange(word, (word & !mask) | new, order, failure_ordering(order))
            {
                Ok(_) => return B::from_u64(old),
                Err(actual) => word = actual,
            }
        }
    }

    /// # Safety
    /// As for `load`, at offset 0.
    pub(crate) unsafe fn compare_exchange<B: Bits>(
        self,
        expected: B,
        replacement: B,
        order: Ordering,
    ) -> B {
        // SAFETY: alive per the caller.
        let (cell, shift, mask) = unsafe { self.cell::<B>(0) };
        let mut word = cell.load(failure_ordering(order));
        loop {
            let old = (word & mask) >> shift;
            if old != expected.to_u64() {
                return B::from_u64(old);
            }
            let new = (word & !mask) | ((replacement.to_u64() << shift) & mask);
            match cell.compare_exchange(word, new, order, failure_ordering(order)) {
                Ok(_) => return B::from_u64(old),
                Err(actual) => word = actual,
            }
        }
    }

    /// The absolute address (see the native `RegionPtr::address`): the cells' address plus the
    /// byte offset, unique while the region lives.
    pub(crate) fn address(self) -> usize {
        (self.cells.as_ptr() as usize).wrapping_add(self.offset)
    }

    /// The model's futex (see the native `RegionPtr::futex_wait`): sleeps while the `u32` here
    /// holds `expected`, until a [`RegionPtr::futex_wake`] on it. The check and the enqueue
    /// are one critical section of the sleepers' lock, as in the kernel. The deadline is
    /// ignored: under loom the model plays the clock (`loom_hooks::fire_timeouts`).
    ///
    /// # Safety
    /// As for `load` of a `u32`, at offset 0.
    pub(crate) unsafe fn futex_wait(self, expected: u32, _deadline: Option<Instant>) -> Parked {
        let woken = Arc::new(AtomicBool::new(false));
        {
            let mut sleepers = lock(&FUTEX_SLEEPERS);
            // SAFETY: as per the caller.
            if unsafe { self.load::<u32>(0, Ordering::SeqCst) } != expected {
                return Parked::Woken;
            }
            sleepers.push(Sleeper {
                address: self.address(),
                thread: thread::current(),
                woken: Arc::clone(&woken),
            });
        }
        while !woken.load(Ordering::Acquire) {
            thread::park();
        }
        Parked::Woken
    }

    /// Wakes up to `count` sleepers of [`RegionPtr::futex_wait`] on this word, oldest first;
    /// returns how many.
    ///
    /// # Safety
    /// As for `futex_wait`.
    pub(crate) unsafe fn futex_wake(self, count: u32) -> usize {
        let mut sleepers = lock(&FUTEX_SLEEPERS);
        let mut woken = 0;
        sleepers.retain(|sleeper| {
            if woken < count as usize && sleeper.address == self.address() {
                sleeper.woken.store(true, Ordering::Release);
                sleeper.thread.unpark();
                woken += 1;
                false
            } else {
                true
            }
        });
        woken
    }

    /// Loom memory is not raw: copies go word by word through the cells.
    pub(crate) fn raw(self) -> Option<*mut u8> {
        None
    }
}

/// A thread asleep in the model's futex.
struct Sleeper {
    address: usize,
    thread: thread::Thread,
    woken: Arc<AtomicBool>,
}

crate::shim::lazy_static! {
    static ref FUTEX_SLEEPERS: Mutex<Vec<Sleeper>> = Mutex::new(Vec::new());
}
