//! The raw widths memory is accessed in: `u8`, `u16`, `u32`, `u64`.
//!
//! Every element type maps onto one of these (`i32` and `f32` onto `u32`, …), so the region only
//! knows four atomic widths and the read-modify-write operations on them.

use std::fmt::Debug;

/// A read-modify-write operation on raw bits. Wrapping arithmetic on the unsigned bits gives the
/// two's-complement result for signed elements too (docs/semantics.md A2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmwOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
    Exchange,
}

impl RmwOp {
    /// The new value the operation computes from `old` and `operand`, on the low `width` bytes.
    #[allow(dead_code)] // used by the loom backing and by tests
    pub(crate) fn apply(self, old: u64, operand: u64) -> u64 {
        match self {
            RmwOp::Add => old.wrapping_add(operand),
            RmwOp::Sub => old.wrapping_sub(operand),
            RmwOp::And => old & operand,
            RmwOp::Or => old | operand,
            RmwOp::Xor => old ^ operand,
            RmwOp::Exchange => operand,
        }
    }
}

/// One raw access width. Sealed: implemented for `u8`, `u16`, `u32` and `u64` only.
pub trait Bits: Copy + Eq + Debug + Send + Sync + 'static {
    /// Size in bytes (also the required alignment).
    const SIZE: usize;
    /// Zero-extends to `u64`.
    fn to_u64(self) -> u64;
    /// Truncates a `u64` to this width.
    fn from_u64(value: u64) -> Self;
    /// Reverses the byte order.
    fn swap_bytes(self) -> Self;

    /// Atomic load at `ptr`.
    ///
    /// # Safety
    /// `ptr` is aligned to `SIZE`, valid for `SIZE` bytes and only ever accessed atomically
    /// while the caller uses it.
    unsafe fn load(ptr: *mut u8, order: std::sync::atomic::Ordering) -> Self;
    /// Atomic store at `ptr`.
    ///
    /// # Safety
    /// As for [`Bits::load`].
    unsafe fn store(ptr: *mut u8, value: Self, order: std::sync::atomic::Ordering);
    /// Atomic read-modify-write at `ptr`, returning the old value.
    ///
    /// # Safety
    /// As for [`Bits::load`].
    unsafe fn rmw(
        ptr: *mut u8,
        op: RmwOp,
        operand: Self,
        order: std::sync::atomic::Ordering,
    ) -> Self;
    /// Atomic compare-exchange at `ptr`, returning the old value whether or not it wrote.
    ///
    /// # Safety
    /// As for [`Bits::load`].
    unsafe fn compare_exchange(
        ptr: *mut u8,
        expected: Self,
        replacement: Self,
        order: std::sync::atomic::Ordering,
    ) -> Self;
}

/// The strongest failure ordering a compare-exchange with success ordering `order` may use.
pub(crate) fn failure_ordering(order: std::sync::atomic::Ordering) -> std::sync::atomic::Ordering {
    use std::sync::atomic::Ordering::*;
    match order {
        Release | Relaxed => Relaxed,
        Acquire | AcqRel => Acquire,
        _ => SeqCst,
    }
}

macro_rules! impl_bits {
    ($t:ty, $atomic:ty) => {
        impl Bits for $t {
            const SIZE: usize = std::mem::size_of::<$t>();

            #[inline(always)]
            fn to_u64(self) -> u64 {
                self as u64
            }

            #[inline(always)]
            fn from_u64(value: u64) -> Self {
                value as $t
            }

            #[inline(always)]
            fn swap_bytes(self) -> Self {
                <$t>::swap_bytes(self)
            }

            #[inline(always)]
            unsafe fn load(ptr: *mut u8, order: std::sync::atomic::Ordering) -> Self {
                // SAFETY: the caller guarantees alignment, validity and atomic-only access.
                unsafe { <$atomic>::from_ptr(ptr.cast()) }.load(order)
            }

            #[inline(always)]
            unsafe fn store(ptr: *mut u8, value: Self, order: std::sync::atomic::Ordering) {
                // SAFETY: the caller guarantees alignment, validity and atomic-only access.
                unsafe { <$atomic>::from_ptr(ptr.cast()) }.store(value, order)
            }

            #[inline(always)]
            unsafe fn rmw(
                ptr: *mut u8,
                op: RmwOp,
                operand: Self,
                order: std::sync::atomic::Ordering,
            ) -> Self {
                // SAFETY: the caller guarantees alignment, validity and atomic-only access.
                let atomic = unsafe { <$atomic>::from_ptr(ptr.cast()) };
                match op {
                    RmwOp::Add => atomic.fetch_add(operand, order),
                    RmwOp::Sub => atomic.fetch_sub(operand, order),
                    RmwOp::And => atomic.fetch_and(operand, order),
                    RmwOp::Or => atomic.fetch_or(operand, order),
                    RmwOp::Xor => atomic.fetch_xor(operand, order),
                    RmwOp::Exchange => atomic.swap(operand, order),
                }
            }

            #[inline(always)]
            unsafe fn compare_exchange(
                ptr: *mut u8,
                expected: Self,
                replacement: Self,
                order: std::sync::atomic::Ordering,
            ) -> Self {
                // SAFETY: the caller guarantees alignment, validity and atomic-only access.
                let atomic = unsafe { <$atomic>::from_ptr(ptr.cast()) };
                match atomic.compare_exchange(expected, replacement, order, failure_ordering(order))
                {
                    Ok(old) | Err(old) => old,
                }
            }
        }
    };
}

impl_bits!(u8, std::sync::atomic::AtomicU8);
impl_bits!(u16, std::sync::atomic::AtomicU16);
impl_bits!(u32, std::sync::atomic::AtomicU32);
impl_bits!(u64, std::sync::atomic::AtomicU64);
