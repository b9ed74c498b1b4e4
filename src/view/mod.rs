//! Typed views over a [`crate::SharedBuffer`]: [`TypedArray`] (JavaScript's `Int8Array` …
//! `Float64Array`) and [`DataView`].

mod cell;
mod data_view;
mod typed;

pub(crate) use cell::Cell;
pub use data_view::{DataView, Endian};
pub use typed::{
    BigInt64Array, BigUint64Array, Float32Array, Float64Array, Int16Array, Int32Array, Int8Array,
    Iter, TypedArray, Uint16Array, Uint32Array, Uint8Array,
};
