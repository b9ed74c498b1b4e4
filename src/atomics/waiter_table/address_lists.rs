//! The waiters of one bucket: one FIFO list per address, in which any waiter can be found and
//! unlinked in O(1).
//!
//! The lists are doubly linked through a slab (`slots`): a waiter's entry holds the slots of
//! its older and newer neighbours on the same address, and `ends` maps each address that has
//! waiters to the slots of its oldest and newest one. A queued waiter remembers its own slot
//! ([`Waiter::slot`]), so cancelling it unlinks it without searching, and notifying an address
//! takes its oldest waiters without looking at anyone else's. Vacant slots form a free list
//! threaded through the slab itself, so neither taking a waiter out nor putting one back in a
//! vacated slot allocates. A slot is three words (the waiter and two links), so neighbours
//! that sit close in the slab share cache lines.
//!
//! Invariants (this is plain data: the bucket's lock guards it, and every method keeps them):
//! - L1: `ends` has an entry exactly for the addresses with at least one waiter here.
//! - L2: for such an address, following `newer` from `ends.oldest` visits its waiters in the
//!   order they were pushed and ends at `ends.newest` (whose `newer` is `None`); `older` is the
//!   same path backwards (`ends.oldest`'s `older` is `None`).
//! - L3: every occupied slot is on exactly one such path; every vacant slot is on the free list.
//! - L4: a waiter held here has `slot()` equal to the index of the slot holding it.
//!
//! Unlinking a waiter joins its two neighbours (or moves its address's `ends`) and changes no
//! other link, so the remaining waiters of every address keep their order (FIFO, docs/semantics.md A9).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::atomics::waiter::Waiter;
use crate::shim::Arc;

/// The FIFO lists of every address whose waiters share one bucket.
#[derive(Default)]
pub(super) struct AddressLists {
    slots: Vec<Slot>,
    /// The first vacant slot; the others follow through their `newer` links.
    free: Option<usize>,
    /// Oldest and newest waiter of each address that has waiters here (L1).
    ends: HashMap<usize, Ends, BuildHasherDefault<AddressHasher>>,
}

/// A link that names no slot: the end of a list (or of the free list).
const NO_SLOT: usize = usize::MAX;

/// One slot of the slab: a queued waiter and its neighbours on the same address, or a vacant
/// slot. Three words (an enum of `Option<usize>` links took five): unlinking a waiter touches
/// its own slot and one link of each neighbour, and the smaller the slots, the more often
/// those neighbours share a cache line with it. A link is a slot index, or [`NO_SLOT`]
/// (never an index: a `Vec` of 24-byte slots cannot have `usize::MAX` of them).
struct Slot {
    /// The queued waiter; `None` while the slot is vacant.
    waiter: Option<Arc<Waiter>>,
    /// The older neighbour's slot (`NO_SLOT`: the oldest). Meaningless while vacant.
    older: usize,
    /// The newer neighbour's slot (`NO_SLOT`: the newest); while vacant, the next vacant slot.
    newer: usize,
}

/// Slots of the oldest and newest waiter of one address.
struct Ends {
    oldest: usize,
    newest: usize,
}

fn link(slot: Option<usize>) -> usize {
    slot.unwrap_or(NO_SLOT)
}

fn slot_of(link: usize) -> Option<usize> {
    (link != NO_SLOT).then_some(link)
}

impl AddressLists {
    /// The size of one slot of the slab ([`AddressLists::slab_address`]).
    pub(super) const SLOT_SIZE: usize = std::mem::size_of::<Slot>();

    /// The address of the slab: slot `i` is at `SLOT_SIZE * i` past it (until the slab grows).
    pub(super) fn slab_address(&self) -> usize {
        self.slots.as_ptr() as usize
    }

    /// Appends `waiter` to the list of its address (`waiter.key()`); returns its slot.
    pub(super) fn push_back(&mut self, waiter: Arc<Waiter>) -> usize {
        let key = waiter.key();
        let older = self.ends.get(&key).map(|ends| ends.newest);
        let slot = self.occupy(waiter, older);
        match older {
            Some(older) => {
                self.occupied_mut(older).newer = slot;
                self.ends_mut(key).newest = slot;
            }
            None => {
                self.ends.insert(
                    key,
                    Ends {
                        oldest: slot,
                        newest: slot,
                    },
                );
            }
        }
        slot
    }

    /// Takes the oldest waiter of address `key`, if it has any.
    pub(super) fn pop_front(&mut self, key: usize) -> Option<Arc<Waiter>> {
        let oldest = self.ends.get(&key)?.oldest;
        Some(self.unlink(oldest))
    }

    /// The oldest waiter of address `key`, left in place.
    pub(super) fn front(&self, key: usize) -> Option<&Arc<Waiter>> {
        let oldest = self.ends.get(&key)?.oldest;
        match &self.slots[oldest].waiter {
            Some(waiter) => Some(waiter),
            None => unreachable!("L2: ends name occupied slots"),
        }
    }

    /// Takes `waiter` out of its address's list; `None` if it is not held here.
    pub(super) fn remove(&mut self, waiter: &Waiter) -> Option<Arc<Waiter>> {
        self.remove_from(waiter.slot(), waiter)
    }

    /// Takes `waiter` out of its address's list if it is held in `slot`; `None` (and nothing
    /// changes) if `slot` holds another waiter or none. Any `slot` is safe to try, so a caller
    /// may pass where it remembers the waiter was put, without reading the waiter's own record
    /// first: an answer is only ever about the waiter found there, compared by address.
    pub(super) fn remove_from(&mut self, slot: usize, waiter: &Waiter) -> Option<Arc<Waiter>> {
        match self.slots.get(slot).and_then(|slot| slot.waiter.as_ref()) {
            Some(held) if std::ptr::eq(Arc::as_ptr(held), waiter) => Some(self.unlink(slot)),
            _ => None,
        }
    }

    /// Every waiter held here, in no particular order.
    #[allow(dead_code)] // used by the loom hooks only
    pub(super) fn iter(&self) -> impl Iterator<Item = &Arc<Waiter>> {
        self.slots.iter().filter_map(|slot| slot.waiter.as_ref())
    }

    /// Puts `waiter` in a vacant slot (the free list's first, else a new one at the end), after
    /// `older`, and tells it where it is (L4). The neighbours' links are the caller's business.
    fn occupy(&mut self, waiter: Arc<Waiter>, older: Option<usize>) -> usize {
        let slot = match self.free {
            Some(slot) => {
                let vacant = &self.slots[slot];
                if vacant.waiter.is_some() {
                    unreachable!("L3: the free list holds vacant slots");
                }
                self.free = slot_of(vacant.newer);
                slot
            }
            None => {
                self.slots.push(Slot {
                    waiter: None,
                    older: NO_SLOT,
                    newer: NO_SLOT,
                });
                self.slots.len() - 1
            }
        };
        waiter.set_slot(slot);
        self.slots[slot] = Slot {
            waiter: Some(waiter),
            older: link(older),
            newer: NO_SLOT,
        };
        slot
    }

    /// Empties occupied `slot` onto the free list and joins its neighbours (or moves its
    /// address's ends); returns its waiter.
    fn unlink(&mut self, slot: usize) -> Arc<Waiter> {
        let vacated = &mut self.slots[slot];
        let Some(waiter) = vacated.waiter.take() else {
            unreachable!("L2: links and ends name occupied slots");
        };
        let (older, newer) = (slot_of(vacated.older), slot_of(vacated.newer));
        vacated.newer = link(self.free);
        self.free = Some(slot);
        // The key (in the waiter's memory) is read only when the ends move: unlinking from
        // the middle of a list touches the slab alone.
        match older {
            Some(older) => self.occupied_mut(older).newer = link(newer),
            None => match newer {
                Some(newer) => self.ends_mut(waiter.key()).oldest = newer,
                None => {
                    self.ends.remove(&waiter.key()); // its last waiter: L1
                }
            },
        }
        match newer {
            Some(newer) => self.occupied_mut(newer).older = link(older),
            None => {
                if let Some(older) = older {
                    self.ends_mut(waiter.key()).newest = older;
                }
            }
        }
        waiter
    }

    /// Occupied `slot`, to change its links.
    fn occupied_mut(&mut self, slot: usize) -> &mut Slot {
        let slot = &mut self.slots[slot];
        if slot.waiter.is_none() {
            unreachable!("L2: links name occupied slots");
        }
        slot
    }

    fn ends_mut(&mut self, key: usize) -> &mut Ends {
        self.ends
            .get_mut(&key)
            .expect("L1: an address with a waiter has ends")
    }
}

/// Hashes the addresses keying `ends`: the table's Fibonacci product, halves swapped. The
/// product's top bits pick the bucket, so they are the same for every address here, and the
/// map reads its hash's top bits too: after the swap those are well-mixed middle bits. Cheaper
/// than std's SipHash, and there is nothing to defend: the keys are the process's own addresses.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write_usize(&mut self, address: usize) {
        self.0 = address as u64;
    }

    /// Not used by `usize` keys; folds any other input so the hasher stays correct.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn finish(&self) -> u64 {
        (self.0 >> 2)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(32)
    }
}

#[cfg(test)]
mod tests {
    //! The lists against a plain `Vec` model, over a long reproducible random mix of pushes,
    //! pops and removals on a few addresses.

    use super::*;

    /// Which waiter a model entry stands for: its address and when it was pushed.
    fn id(waiter: &Waiter, ids: &[(usize, Arc<Waiter>)]) -> usize {
        ids.iter()
            .position(|(_, w)| std::ptr::eq(Arc::as_ptr(w), waiter))
            .expect("a waiter the test made")
    }

    #[test]
    fn behaves_like_one_fifo_per_address() {
        let mut lists = AddressLists::default();
        // Every waiter ever made, by id; the model holds the ids still queued, oldest first.
        let mut made: Vec<(usize, Arc<Waiter>)> = Vec::new();
        let mut model: Vec<usize> = Vec::new();
        let mut seed: u64 = 0x853C_49E6_748F_EA9B;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for _ in 0..if cfg!(miri) { 500 } else { 20_000 } {
            let key = 8 * next(4);
            match next(3) {
                0 => {
                    let waiter = Arc::new(Waiter::for_task(key));
                    lists.push_back(Arc::clone(&waiter));
                    model.push(made.len());
                    made.push((key, waiter));
                }
                1 => {
                    let expected = model.iter().position(|&i| made[i].0 == key);
                    let popped = lists.pop_front(key).map(|w| id(&w, &made));
                    assert_eq!(popped, expected.map(|at| model.remove(at)));
                }
                _ => {
                    if !model.is_empty() {
                        let at = next(model.len());
                        let waiter = &made[model[at]].1;
                        // Any other slot (held by another waiter, vacant or past the end)
                        // is refused and changes nothing.
                        let elsewhere = waiter.slot() + 1 + next(8);
                        assert!(lists.remove_from(elsewhere, waiter).is_none());
                        let removed = lists.remove(waiter).map(|w| id(&w, &made));
                        assert_eq!(removed, Some(model.remove(at)));
                        assert!(lists.remove(waiter).is_none(), "removed twice");
                    }
                }
            }
            assert_eq!(lists.iter().count(), model.len());
        }
        for key in (0..4).map(|k| 8 * k) {
            while let Some(waiter) = lists.pop_front(key) {
                let at = model.iter().position(|&i| made[i].0 == key).unwrap();
                assert_eq!(id(&waiter, &made), model.remove(at));
            }
        }
        assert!(model.is_empty() && lists.ends.is_empty());
    }
}
