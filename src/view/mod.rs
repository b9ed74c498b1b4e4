//! Typed views over a [`crate::SharedBuffer`]: [`TypedArray`] (JavaScript's `Int8Array` …
//! `Float64Array`) and [`DataView`], and [`ElementRef`], the checked location the layers above
//! work through.

mod data_view;
mod element_ref;
mod typed;

pub use data_view::{DataView, Endian};
pub(crate) use element_ref::ElementRef;
pub use typed::{
    BigInt64Array, BigUint64Array, Float32Array, Float64Array, Int16Array, Int32Array, Int8Array,
    Iter, TypedArray, Uint16Array, Uint32Array, Uint8Array,
};
