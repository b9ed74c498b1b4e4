//! The process workers' message format (`sharedbuf::process::Payload`, docs/semantics.md X4):
//! values written in place into a byte ring come back equal, and whatever bytes a peer puts in
//! a message decode to a value or `Err(Codec)` — never a panic or an allocation beyond the
//! message.

#![cfg(all(not(loom), target_os = "linux"))]

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sharedbuf::channel::{ByteReceiver, ByteRing, ByteSender};
use sharedbuf::process::{Bytes, Payload};
use sharedbuf::{Error, SharedBuffer};

const CAPACITY: usize = 1 << 14;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Point { x: i64, y: f64 },
    Named(String, Vec<u16>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    shapes: Vec<Shape>,
    index: BTreeMap<u8, Option<i32>>,
    flag: bool,
    big: Vec<u8>,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        (
            any::<i64>(),
            any::<f64>().prop_filter("NaN is not equal to itself", |y| !y.is_nan())
        )
            .prop_map(|(x, y)| Shape::Point { x, y }),
        (".{0,20}", prop::collection::vec(any::<u16>(), 0..20))
            .prop_map(|(s, v)| Shape::Named(s, v)),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        ".{0,40}",
        prop::collection::vec(shape(), 0..8),
        prop::collection::btree_map(any::<u8>(), any::<Option<i32>>(), 0..8),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(id, name, shapes, index, flag, big)| Record {
            id,
            name,
            shapes,
            index,
            flag,
            big,
        })
}

fn ring() -> (ByteSender, ByteReceiver) {
    let buffer = SharedBuffer::new(ByteRing::bytes_for(CAPACITY).unwrap()).unwrap();
    let ring = ByteRing::at(&buffer, 0, CAPACITY).unwrap();
    (ring.sender().unwrap(), ring.receiver().unwrap())
}

/// Writes `value` in place as one message (as a process worker posts it).
fn send<T: Payload>(tx: &mut ByteSender, value: &T) -> Result<usize, Error> {
    let len = value.encoded_len()?;
    tx.try_send_with(len, |w| -> Result<usize, Error> {
        value.encode(w)?;
        Ok(w.len())
    })
}

/// Reads one message as a `T` (as a process worker receives it).
fn recv<T: Payload>(rx: &mut ByteReceiver) -> Result<T, Error> {
    rx.try_recv_with(|m| T::decode(m, 0))?
        .expect("a message was sent")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn values_round_trip_through_the_ring(value in record()) {
        let (mut tx, mut rx) = ring();
        let written = send(&mut tx, &value).unwrap();
        prop_assert_eq!(written, value.encoded_len().unwrap());
        prop_assert_eq!(recv::<Record>(&mut rx).unwrap(), value);
    }

    #[test]
    fn raw_bytes_round_trip_through_the_ring(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let (mut tx, mut rx) = ring();
        send(&mut tx, &Bytes(bytes.clone())).unwrap();
        prop_assert_eq!(recv::<Bytes>(&mut rx).unwrap(), Bytes(bytes));
    }

    #[test]
    fn garbage_decodes_to_a_value_or_a_codec_error(
        garbage in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let (mut tx, mut rx) = ring();
        tx.try_send(&garbage).unwrap();
        match recv::<Record>(&mut rx) {
            Ok(_) => {}
            Err(Error::Codec { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
        // The same bytes read as another type: the same two outcomes.
        tx.try_send(&garbage).unwrap();
        match recv::<(u64, String, Vec<u32>)>(&mut rx) {
            Ok(_) | Err(Error::Codec { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
    }
}

#[test]
fn a_value_followed_by_extra_bytes_is_refused() {
    let (mut tx, mut rx) = ring();
    let mut bytes = postcard_of_seven();
    bytes.push(0);
    tx.try_send(&bytes).unwrap();
    assert!(matches!(recv::<u32>(&mut rx), Err(Error::Codec { .. })));
}

/// A recursive message: a tree of sequences.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Tree(Vec<Tree>);

// docs/semantics.md X4: a message that nests a recursive type a million levels deep (a
// sequence of one, a million times: one byte a level) is `Err(Codec)`, not a stack overflow
// that aborts the receiving process; one within the limit still decodes.
#[test]
fn a_message_nested_a_million_deep_is_refused_not_a_stack_overflow() {
    let capacity = 1 << 21;
    let buffer = SharedBuffer::new(ByteRing::bytes_for(capacity).unwrap()).unwrap();
    let ring = ByteRing::at(&buffer, 0, capacity).unwrap();
    let (mut tx, mut rx) = (ring.sender().unwrap(), ring.receiver().unwrap());
    let mut bytes = vec![1u8; 1_000_000];
    bytes.push(0);
    tx.try_send(&bytes).unwrap();
    match recv::<Tree>(&mut rx) {
        Err(Error::Codec { reason }) => assert!(reason.contains("nest"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let shallow = (0..40).fold(Tree(Vec::new()), |inner, _| Tree(vec![inner]));
    send(&mut tx, &shallow).unwrap();
    assert_eq!(recv::<Tree>(&mut rx).unwrap(), shallow);
}

/// postcard's encoding of `7u32`: one varint byte.
fn postcard_of_seven() -> Vec<u8> {
    let (mut tx, mut rx) = ring();
    send(&mut tx, &7u32).unwrap();
    rx.try_recv().unwrap().unwrap()
}
