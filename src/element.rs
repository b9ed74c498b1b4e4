//! The element types views are made of, and which of them the atomics accept.
//!
//! JavaScript rejects `Atomics.add` on a `Float64Array` and `Atomics.wait` on an `Int16Array`
//! with a `TypeError` at run time; here the traits make those calls fail to compile:
//!
//! - [`Element`]: every view element (docs/semantics.md V1): `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64`.
//! - [`AtomicElement`]: the eight integer types, the only ones `atomics::add` & co. take (A1).
//! - [`Waitable`]: `i32` and `i64` as in JavaScript, plus `u32` and `u64` as an extension (A6).
//!
//! All three are sealed: the crate relies on their exact set of implementors.

use std::fmt::Debug;

use static_assertions::const_assert_eq;

use crate::region::Bits;

mod sealed {
    pub trait Sealed {}
}

/// A view element type (docs/semantics.md V1). Sealed.
pub trait Element:
    sealed::Sealed + Copy + PartialEq + Debug + Default + Send + Sync + 'static
{
    /// The raw width this type is stored as.
    #[doc(hidden)]
    type Bits: Bits;
    /// The JavaScript name of a view of this type, e.g. `"Int32Array"`.
    const JS_VIEW_NAME: &'static str;
    /// Reinterprets the value as raw bits.
    #[doc(hidden)]
    fn to_bits(self) -> Self::Bits;
    /// Reinterprets raw bits as a value.
    #[doc(hidden)]
    fn from_bits(bits: Self::Bits) -> Self;
}

/// An element type the read-modify-write atomics accept: the eight integer types (docs/semantics.md A1).
///
/// Floats are rejected at compile time, where JavaScript throws a `TypeError`:
///
/// ```compile_fail
/// use sharedbuf::{atomics, Float64Array, SharedBuffer};
/// let buf = SharedBuffer::new(8).unwrap();
/// let view = Float64Array::new(&buf).unwrap();
/// atomics::add(&view, 0, 1.0).unwrap(); // f64 is not an AtomicElement
/// ```
#[diagnostic::on_unimplemented(
    message = "the atomics do not take a view of `{Self}` (JavaScript throws a TypeError here)",
    label = "a view of `{Self}`",
    note = "the atomics take views of the eight integer types: Int8Array ... BigUint64Array (docs/semantics.md A1)"
)]
pub trait AtomicElement: Element {}

/// An element type `atomics::wait` and `notify` accept: `i32` and `i64` as in JavaScript, and
/// `u32`/`u64` as an extension (docs/semantics.md A6).
///
/// ```compile_fail
/// use sharedbuf::{atomics, Int16Array, SharedBuffer};
/// let buf = SharedBuffer::new(8).unwrap();
/// let view = Int16Array::new(&buf).unwrap();
/// atomics::notify(&view, 0, None).unwrap(); // i16 is not Waitable
/// ```
#[diagnostic::on_unimplemented(
    message = "`wait`, `wait_async` and `notify` do not take a view of `{Self}` (JavaScript throws a TypeError here)",
    label = "a view of `{Self}`",
    note = "use an Int32Array or BigInt64Array (or Uint32Array / BigUint64Array) over the same bytes (docs/semantics.md A6)"
)]
pub trait Waitable: AtomicElement {}

macro_rules! integer_element {
    ($t:ty, $bits:ty, $js:literal) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            type Bits = $bits;
            const JS_VIEW_NAME: &'static str = $js;
            #[inline(always)]
            fn to_bits(self) -> $bits {
                self as $bits
            }
            #[inline(always)]
            fn from_bits(bits: $bits) -> Self {
                bits as $t
            }
        }
        impl AtomicElement for $t {}
        const_assert_eq!(std::mem::size_of::<$t>(), std::mem::size_of::<$bits>());
    };
}

macro_rules! float_element {
    ($t:ty, $bits:ty, $js:literal) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            type Bits = $bits;
            const JS_VIEW_NAME: &'static str = $js;
            #[inline(always)]
            fn to_bits(self) -> $bits {
                <$t>::to_bits(self)
            }
            #[inline(always)]
            fn from_bits(bits: $bits) -> Self {
                <$t>::from_bits(bits)
            }
        }
        const_assert_eq!(std::mem::size_of::<$t>(), std::mem::size_of::<$bits>());
    };
}

integer_element!(i8, u8, "Int8Array");
integer_element!(u8, u8, "Uint8Array");
integer_element!(i16, u16, "Int16Array");
integer_element!(u16, u16, "Uint16Array");
integer_element!(i32, u32, "Int32Array");
integer_element!(u32, u32, "Uint32Array");
integer_element!(i64, u64, "BigInt64Array");
integer_element!(u64, u64, "BigUint64Array");
float_element!(f32, u32, "Float32Array");
float_element!(f64, u64, "Float64Array");

impl Waitable for i32 {}
impl Waitable for i64 {}
impl Waitable for u32 {}
impl Waitable for u64 {}
