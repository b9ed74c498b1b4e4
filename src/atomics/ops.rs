//! The read-modify-write, load and store operations (docs/semantics.md A1–A5, A13).

use crate::element::AtomicElement;
use crate::error::Error;
use crate::region::RmwOp;
use crate::shim::Ordering::SeqCst;
use crate::view::TypedArray;

/// `Atomics.load`: the element at `index`, sequentially consistent. `Err(Error::IndexOutOfRange)`
/// if `index` is not below the view's length (docs/semantics.md A4).
#[inline]
pub fn load<T: AtomicElement>(view: &TypedArray<T>, index: usize) -> Result<T, Error> {
    Ok(view.element(index)?.load(SeqCst))
}

/// `Atomics.store`: writes `value` at `index`; returns the value stored (docs/semantics.md A2).
/// `Err(Error::IndexOutOfRange)` if `index` is not below the view's length (A4).
#[inline]
pub fn store<T: AtomicElement>(view: &TypedArray<T>, index: usize, value: T) -> Result<T, Error> {
    view.element(index)?.store(value, SeqCst);
    Ok(value)
}

macro_rules! rmw_fn {
    ($(#[$doc:meta])* $name:ident, $op:expr) => {
        $(#[$doc])*
        ///
        /// `Err(Error::IndexOutOfRange)` if `index` is not below the view's length, and then
        /// nothing was written (docs/semantics.md A4).
        #[inline]
        pub fn $name<T: AtomicElement>(view: &TypedArray<T>, index: usize, value: T) -> Result<T, Error> {
            Ok(view.element(index)?.rmw($op, value, SeqCst))
        }
    };
}

rmw_fn!(
    /// `Atomics.add`: adds `value` (wrapping) and returns the OLD value (docs/semantics.md A2).
    ///
    /// ```
    /// use sharedbuf::{atomics, Int32Array, SharedBuffer};
    /// let view = Int32Array::new(&SharedBuffer::new(4)?)?;
    /// assert_eq!(atomics::add(&view, 0, 10)?, 0);
    /// assert_eq!(atomics::add(&view, 0, -5)?, 10);
    /// assert_eq!(atomics::load(&view, 0)?, 5);
    /// # Ok::<(), sharedbuf::Error>(())
    /// ```
    add, RmwOp::Add
);
rmw_fn!(
    /// `Atomics.sub`: subtracts `value` (wrapping) and returns the OLD value (docs/semantics.md A2).
    sub, RmwOp::Sub
);
rmw_fn!(
    /// `Atomics.and`: bitwise AND; returns the OLD value.
    and, RmwOp::And
);
rmw_fn!(
    /// `Atomics.or`: bitwise OR; returns the OLD value.
    or, RmwOp::Or
);
rmw_fn!(
    /// `Atomics.xor`: bitwise XOR; returns the OLD value.
    xor, RmwOp::Xor
);
rmw_fn!(
    /// `Atomics.exchange`: writes `value`; returns the OLD value.
    exchange, RmwOp::Exchange
);

/// `Atomics.compareExchange`: writes `replacement` only if the element equals `expected`;
/// always returns the OLD value (docs/semantics.md A3).
///
/// ```
/// use sharedbuf::{atomics, Int32Array, SharedBuffer};
/// let view = Int32Array::new(&SharedBuffer::new(4)?)?;
/// assert_eq!(atomics::compare_exchange(&view, 0, 1, 9)?, 0); // 0 != 1: not written
/// assert_eq!(atomics::compare_exchange(&view, 0, 0, 9)?, 0); // written
/// assert_eq!(atomics::load(&view, 0)?, 9);
/// # Ok::<(), sharedbuf::Error>(())
/// ```
#[inline]
pub fn compare_exchange<T: AtomicElement>(
    view: &TypedArray<T>,
    index: usize,
    expected: T,
    replacement: T,
) -> Result<T, Error> {
    Ok(view
        .element(index)?
        .compare_exchange(expected, replacement, SeqCst))
}

/// `Atomics.isLockFree(size)`: whether atomic operations on `size`-byte elements are
/// lock-free on this platform (docs/semantics.md A5). 4 is always true; any size other than 1, 2, 4
/// or 8 is false.
pub fn is_lock_free(size: usize) -> bool {
    // `Atomics.isLockFree(4)` is true on every platform JavaScript supports; the crate's own
    // 32-bit atomics rely on it too.
    size == 4
        || (size == 1 && cfg!(target_has_atomic = "8"))
        || (size == 2 && cfg!(target_has_atomic = "16"))
        || (size == 8 && cfg!(target_has_atomic = "64"))
}

/// `Atomics.pause()`: a spin-loop hint to the processor and nothing else (docs/semantics.md A13).
#[inline]
pub fn pause() {
    std::hint::spin_loop();
}
