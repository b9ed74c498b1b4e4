//! JavaScript's `Atomics` over typed views (SEMANTICS A1–A13).
//!
//! Every operation takes a view and an element index, checks the index before touching memory
//! (A4), and is sequentially consistent (A1). Read-modify-write operations return the OLD value
//! (A2). Only integer views compile ([`crate::AtomicElement`]); `wait`/`notify` take `i32` and
//! `i64` views (and `u32`/`u64`, [`crate::Waitable`]).

mod ops;

pub use ops::{
    add, and, compare_exchange, exchange, is_lock_free, load, or, pause, store, sub, xor,
};
