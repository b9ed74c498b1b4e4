//! A hostile peer against `channel::ByteRing` (docs/semantics.md X5): random operations on one
//! thread, with random bytes written over the ring's range between them (anywhere, and
//! edge-biased values in the position words and the next record).
//!
//! Checked after every step:
//! - nothing panics, every call returns `Ok` or `Err`, and no received message is longer than
//!   the ring allows;
//! - nothing outside the ring's range is ever written (guard bytes on both sides stay zero);
//! - while nothing the protocol reads has been changed — the position words and the bytes
//!   between head and tail; the capacity and roles words are read only at attach, the rest of
//!   the data area is free — every result is exactly what an independent model of the ring
//!   says (FIFO, full, empty, closed). Garbage in free bytes must not matter at all.

#![cfg(not(loom))]

use std::collections::VecDeque;
use std::time::Instant;

use proptest::prelude::*;
use sharedbuf::channel::ByteRing;
use sharedbuf::{BigUint64Array, Error, SharedBuffer, Uint32Array, Uint8Array};

const CAPACITY: usize = 128;
/// Zero bytes before and after the ring, which must stay zero.
const GUARD: usize = 64;
const RING_BYTES: usize = ByteRing::HEADER_BYTES + CAPACITY;
/// Byte offsets (from the ring's start) of the position words, per the module docs.
const TAIL_AT: usize = 64;
const HEAD_AT: usize = 128;
const MESSAGE: u64 = 0x5342_4d31;
const PADDING: u64 = 0x5342_5031;

#[derive(Debug, Clone)]
enum Op {
    TrySend(usize),
    /// `send` with a deadline already passed.
    SendExpired(usize),
    /// `try_send_with`: reserve `reserve` bytes, write `write` of them (clamped).
    SendWith {
        reserve: usize,
        write: usize,
    },
    TryRecv,
    RecvExpired,
    TryRecvWith,
    Close,
    /// Random bytes at a random offset of the ring's range.
    Scribble {
        at: usize,
        bytes: Vec<u8>,
    },
    /// An edge-biased value in the tail (false) or head (true) word.
    Position {
        head: bool,
        value: u32,
    },
    /// An edge-biased header for the record at the receiver's position.
    NextRecord {
        kind: u64,
        len: u32,
    },
}

fn len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(CAPACITY - 8),
        Just(CAPACITY - 9),
        0..CAPACITY / 3
    ]
}

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![
            0u32,
            1,
            2,
            3,
            4,
            8,
            16,
            CAPACITY as u32 - 8,
            CAPACITY as u32,
            CAPACITY as u32 + 8,
            2 * CAPACITY as u32,
            0x7fff_fff8,
            0x8000_0000,
            u32::MAX - 7,
            u32::MAX,
        ]),
        any::<u32>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => len().prop_map(Op::TrySend),
        2 => len().prop_map(Op::SendExpired),
        2 => (len(), len()).prop_map(|(reserve, write)| Op::SendWith { reserve, write }),
        6 => Just(Op::TryRecv),
        2 => Just(Op::RecvExpired),
        2 => Just(Op::TryRecvWith),
        1 => Just(Op::Close),
        2 => (0..RING_BYTES, prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(at, bytes)| Op::Scribble { at, bytes }),
        1 => (any::<bool>(), edge_u32()).prop_map(|(head, value)| Op::Position { head, value }),
        1 => (
            prop::sample::select(vec![0u64, MESSAGE, PADDING, 0xdead_beef]),
            edge_u32()
        )
            .prop_map(|(kind, len)| Op::NextRecord { kind, len }),
    ]
}

/// The ring as the protocol defines it: positions, the wrap's padding, the queued records
/// (`None` for padding), and the close.
struct Model {
    tail: usize,
    head: usize,
    records: VecDeque<(Option<Vec<u8>>, usize)>,
    closed: bool,
}

fn record(len: usize) -> usize {
    8 + len.next_multiple_of(8)
}

impl Model {
    fn free(&self) -> usize {
        CAPACITY - (self.tail - self.head)
    }

    /// A send reserving room for `reserve` bytes and sending `bytes`.
    fn send(&mut self, reserve: usize, bytes: &[u8]) -> Result<(), Error> {
        if reserve > CAPACITY - 8 {
            return Err(Error::ExceedsMax {
                requested: reserve,
                max: CAPACITY - 8,
            });
        }
        if self.closed {
            return Err(Error::Closed);
        }
        let size = record(reserve);
        let to_end = CAPACITY - self.tail % CAPACITY;
        if size > to_end {
            if self.free() < to_end {
                return Err(Error::Full);
            }
            self.tail += to_end;
            self.records.push_back((None, to_end));
        }
        if self.free() < size {
            return Err(Error::Full);
        }
        self.tail += record(bytes.len());
        self.records
            .push_back((Some(bytes.to_vec()), record(bytes.len())));
        Ok(())
    }

    fn recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        while let Some((message, size)) = self.records.pop_front() {
            self.head += size;
            if message.is_some() {
                return Ok(message);
            }
        }
        if self.closed {
            Err(Error::Closed)
        } else {
            Ok(None)
        }
    }

    /// Whether byte `at` of the ring's range is one the protocol reads now.
    fn is_live(&self, at: usize) -> bool {
        if (TAIL_AT..TAIL_AT + 4).contains(&at) || (HEAD_AT..HEAD_AT + 4).contains(&at) {
            return true;
        }
        let Some(offset) = at.checked_sub(ByteRing::HEADER_BYTES) else {
            return false; // capacity, roles, padding between the words
        };
        let from_head = (offset + CAPACITY - self.head % CAPACITY) % CAPACITY;
        from_head < self.tail - self.head
    }
}

/// What an operation returned: a received message, `None` for everything else.
type Outcome = Result<Option<Vec<u8>>, Error>;

fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed * 7 + i * 13) as u8).collect()
}

fn expired() -> Option<Instant> {
    Some(Instant::now())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn garbage_gives_errors_never_panics_and_free_bytes_do_not_matter(
        ops in prop::collection::vec(op(), 1..150)
    ) {
        let buffer = SharedBuffer::new(GUARD + RING_BYTES + GUARD).unwrap();
        let ring = ByteRing::at(&buffer, GUARD, CAPACITY).unwrap();
        let (mut tx, mut rx) = (ring.sender().unwrap(), ring.receiver().unwrap());
        let bytes = Uint8Array::with_range(&buffer, GUARD, Some(RING_BYTES)).unwrap();
        let words = Uint32Array::with_range(&buffer, GUARD, Some(RING_BYTES / 4)).unwrap();
        let records =
            BigUint64Array::with_range(&buffer, GUARD + ByteRing::HEADER_BYTES, Some(CAPACITY / 8))
                .unwrap();
        let guards = [
            Uint8Array::with_range(&buffer, 0, Some(GUARD)).unwrap(),
            Uint8Array::with_range(&buffer, GUARD + RING_BYTES, Some(GUARD)).unwrap(),
        ];
        let mut model = Model { tail: 0, head: 0, records: VecDeque::new(), closed: false };
        // Once something the protocol reads was changed, only "no panic, Ok or Err" is checked.
        let mut corrupted = false;

        for (step, op) in ops.into_iter().enumerate() {
            // What the ring returned, and what the model says (`None`: not comparable).
            let (got, expected): (Outcome, Option<Outcome>) = match op {
                Op::TrySend(len) => {
                    let message = payload(step, len);
                    let expected = model.send(len, &message).map(|()| None);
                    (tx.try_send(&message).map(|()| None), Some(expected))
                }
                Op::SendExpired(len) => {
                    let message = payload(step, len);
                    let expected = match model.send(len, &message) {
                        Err(Error::Full) => Err(Error::Timeout),
                        other => other,
                    };
                    (tx.send(&message, expired()).map(|()| None), Some(expected.map(|()| None)))
                }
                Op::SendWith { reserve, write } => {
                    let message = payload(step, write.min(reserve));
                    let got = tx.try_send_with(reserve, |w| w.write(&message));
                    (got.map(|()| None), Some(model.send(reserve, &message).map(|()| None)))
                }
                Op::TryRecv => (rx.try_recv(), Some(model.recv())),
                Op::RecvExpired => {
                    let expected = match model.recv() {
                        Ok(None) => Err(Error::Timeout),
                        other => other,
                    };
                    (rx.recv(expired()).map(Some), Some(expected))
                }
                Op::TryRecvWith => (rx.try_recv_with(|m| m.to_vec()), Some(model.recv())),
                Op::Close => {
                    ring.close();
                    model.closed = true;
                    (Ok(None), Some(Ok(None)))
                }
                Op::Scribble { at, bytes: new } => {
                    let n = new.len().min(RING_BYTES - at);
                    let mut old = vec![0; n];
                    bytes.copy_to_slice(at, &mut old).unwrap();
                    bytes.copy_from_slice(at, &new[..n]).unwrap();
                    corrupted |= (0..n).any(|i| old[i] != new[i] && model.is_live(at + i));
                    (Ok(None), None)
                }
                Op::Position { head, value } => {
                    let index = if head { HEAD_AT / 4 } else { TAIL_AT / 4 };
                    corrupted |= words.get(index) != Some(value);
                    words.set(index, value).unwrap();
                    (Ok(None), None)
                }
                Op::NextRecord { kind, len } => {
                    let index = model.head % CAPACITY / 8;
                    let value = (kind << 32) | u64::from(len);
                    corrupted |= model.is_live(ByteRing::HEADER_BYTES + index * 8)
                        && records.get(index) != Some(value);
                    records.set(index, value).unwrap();
                    (Ok(None), None)
                }
            };
            if let Ok(Some(message)) = &got {
                let len = message.len();
                prop_assert!(len <= CAPACITY - 8, "step {}: {} bytes", step, len);
            }
            if !corrupted {
                if let Some(expected) = expected {
                    prop_assert_eq!(got, expected, "step {}", step);
                }
            }
            for guard in &guards {
                let untouched = guard.to_vec().iter().all(|&b| b == 0);
                prop_assert!(untouched, "step {}: a guard byte changed", step);
            }
        }
    }
}
