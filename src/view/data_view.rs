//! [`DataView`]: any numeric type at any byte offset, in either byte order (docs/semantics.md V5).
//!
//! An access at an offset aligned to the type's size is one atomic access (it never tears);
//! an unaligned one is a sequence of relaxed atomic byte accesses (each byte is whole, the
//! value as a whole may mix two writers' bytes, exactly as in JavaScript).

use std::fmt;

use crate::buffer::SharedBuffer;
use crate::element::Element;
use crate::error::Error;
use crate::range;
use crate::region::Bits;
use crate::shim::Ordering;

/// Byte order for [`DataView`] accesses. JavaScript's default is big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Endian {
    /// Most significant byte first (JavaScript's default, network order).
    #[default]
    Big,
    /// Least significant byte first (x86 and most ARM systems' native order).
    Little,
}

impl Endian {
    /// `Little` when `little_endian`, as JavaScript's `littleEndian` argument.
    pub fn from_little(little_endian: bool) -> Endian {
        if little_endian {
            Endian::Little
        } else {
            Endian::Big
        }
    }
}

/// A byte-addressed view over a [`SharedBuffer`], as JavaScript's `DataView`.
///
/// ```
/// use sharedbuf::{DataView, Endian, SharedBuffer};
///
/// let buf = SharedBuffer::new(8)?;
/// let dv = DataView::new(&buf)?;
/// dv.set_uint16(1, 0x0102, false)?;          // big-endian at an odd offset
/// assert_eq!(dv.get_uint8(1)?, 0x01);
/// assert_eq!(dv.get::<u16>(1, Endian::Little)?, 0x0201);
/// assert!(dv.get_float64(1, true).is_err()); // 1 + 8 > 8: out of bounds
/// # Ok::<(), sharedbuf::Error>(())
/// ```
#[derive(Clone)]
pub struct DataView {
    buffer: SharedBuffer,
    byte_offset: usize,
    /// `None`: length-tracking on a growable buffer.
    byte_length: Option<usize>,
}

impl DataView {
    /// A view of the whole buffer (length-tracking on a growable buffer). Always `Ok`: the
    /// whole buffer always fits (the `Result` matches [`with_range`](DataView::with_range)).
    pub fn new(buffer: &SharedBuffer) -> Result<DataView, Error> {
        Self::with_range(buffer, 0, None)
    }

    /// A view of `byte_length` bytes from `byte_offset` (`None`: to the end, tracking a
    /// growable buffer). `Err(Error::RangeOutOfBounds)` if the range does not fit in the buffer
    /// now (V5).
    pub fn with_range(
        buffer: &SharedBuffer,
        byte_offset: usize,
        byte_length: Option<usize>,
    ) -> Result<DataView, Error> {
        let len = buffer.byte_length();
        range::fit(byte_offset, byte_length.unwrap_or(0), len)?;
        let byte_length = match byte_length {
            None if !buffer.is_growable() => Some(len - byte_offset),
            other => other,
        };
        Ok(DataView {
            buffer: buffer.clone(),
            byte_offset,
            byte_length,
        })
    }

    /// The view's length in bytes now.
    pub fn byte_length(&self) -> usize {
        match self.byte_length {
            Some(n) => n,
            None => self.buffer.byte_length() - self.byte_offset,
        }
    }

    /// The view's offset in its buffer, in bytes.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// The buffer the view looks at.
    pub fn buffer(&self) -> &SharedBuffer {
        &self.buffer
    }

    /// The absolute offset of `size` bytes at `byte_offset`, checked against the view.
    fn span(&self, byte_offset: usize, size: usize) -> Result<usize, Error> {
        range::fit(byte_offset, size, self.byte_length())?;
        Ok(self.byte_offset + byte_offset)
    }

    /// Reads a `T` at `byte_offset` in the given byte order, at any offset (aligned or not).
    /// `Err(Error::RangeOutOfBounds)` if its bytes do not all lie inside the view (V5).
    pub fn get<T: Element>(&self, byte_offset: usize, endian: Endian) -> Result<T, Error> {
        let size = <T::Bits as Bits>::SIZE;
        let at = self.span(byte_offset, size)?;
        let region = self.buffer.region();
        let native = if at % size == 0 {
            // SAFETY: `span` checked `at + size` is within the view (so the region), and `at`
            // is aligned to the access size; the view's buffer keeps the region alive.
            unsafe { region.ptr_at(at).load::<T::Bits>(0, Ordering::Relaxed) }
        } else {
            let mut bytes = [0u8; 8];
            // SAFETY: `span` checked that all `size` bytes are within the region; `bytes` is
            // private memory of at least `size` bytes.
            unsafe { region.copy_out(at, bytes.as_mut_ptr(), size) };
            T::Bits::from_u64(u64::from_ne_bytes(bytes) >> native_shift(size))
        };
        Ok(T::from_bits(to_order(native, endian)))
    }

    /// Writes a `T` at `byte_offset` in the given byte order, at any offset (aligned or not).
    /// `Err(Error::RangeOutOfBounds)` if its bytes do not all lie inside the view, and then
    /// nothing was written (V5).
    pub fn set<T: Element>(
        &self,
        byte_offset: usize,
        value: T,
        endian: Endian,
    ) -> Result<(), Error> {
        let size = <T::Bits as Bits>::SIZE;
        let at = self.span(byte_offset, size)?;
        let region = self.buffer.region();
        let native = to_order(value.to_bits(), endian);
        if at % size == 0 {
            // SAFETY: `span` checked `at + size` is within the view (so the region), and `at`
            // is aligned to the access size; the view's buffer keeps the region alive.
            unsafe {
                region
                    .ptr_at(at)
                    .store::<T::Bits>(0, native, Ordering::Relaxed)
            };
        } else {
            let bytes = (native.to_u64() << native_shift(size)).to_ne_bytes();
            // SAFETY: `span` checked that all `size` bytes are within the region; `bytes` is
            // private memory of at least `size` bytes.
            unsafe { region.copy_in(at, bytes.as_ptr(), size) };
        }
        Ok(())
    }
}

/// Where a `size`-byte value sits inside a native-endian `u64`'s bytes `[0, size)`.
fn native_shift(size: usize) -> u32 {
    if cfg!(target_endian = "big") {
        ((8 - size) * 8) as u32
    } else {
        0
    }
}

/// Converts between native-order bits and `endian`-order bits (the same swap both ways).
fn to_order<B: Bits>(bits: B, endian: Endian) -> B {
    let native = if cfg!(target_endian = "little") {
        Endian::Little
    } else {
        Endian::Big
    };
    if endian == native {
        bits
    } else {
        bits.swap_bytes()
    }
}

macro_rules! js_accessors {
    ($($get:ident $set:ident $t:ty;)*) => {
        impl DataView {
            $(
                #[doc = concat!("JavaScript's `DataView` getter for `", stringify!($t), "`; `little_endian` as in JavaScript (false: big-endian). `Err(Error::RangeOutOfBounds)` as [`get`](DataView::get).")]
                pub fn $get(&self, byte_offset: usize, little_endian: bool) -> Result<$t, Error> {
                    self.get::<$t>(byte_offset, Endian::from_little(little_endian))
                }
                #[doc = concat!("JavaScript's `DataView` setter for `", stringify!($t), "`; `little_endian` as in JavaScript (false: big-endian). `Err(Error::RangeOutOfBounds)` as [`set`](DataView::set).")]
                pub fn $set(&self, byte_offset: usize, value: $t, little_endian: bool) -> Result<(), Error> {
                    self.set::<$t>(byte_offset, value, Endian::from_little(little_endian))
                }
            )*
        }
    };
}

js_accessors! {
    get_int16 set_int16 i16;
    get_uint16 set_uint16 u16;
    get_int32 set_int32 i32;
    get_uint32 set_uint32 u32;
    get_big_int64 set_big_int64 i64;
    get_big_uint64 set_big_uint64 u64;
    get_float32 set_float32 f32;
    get_float64 set_float64 f64;
}

impl DataView {
    /// JavaScript's `getInt8`. `Err(Error::RangeOutOfBounds)` as [`get`](DataView::get).
    pub fn get_int8(&self, byte_offset: usize) -> Result<i8, Error> {
        self.get::<i8>(byte_offset, Endian::Little)
    }
    /// JavaScript's `setInt8`. `Err(Error::RangeOutOfBounds)` as [`set`](DataView::set).
    pub fn set_int8(&self, byte_offset: usize, value: i8) -> Result<(), Error> {
        self.set::<i8>(byte_offset, value, Endian::Little)
    }
    /// JavaScript's `getUint8`. `Err(Error::RangeOutOfBounds)` as [`get`](DataView::get).
    pub fn get_uint8(&self, byte_offset: usize) -> Result<u8, Error> {
        self.get::<u8>(byte_offset, Endian::Little)
    }
    /// JavaScript's `setUint8`. `Err(Error::RangeOutOfBounds)` as [`set`](DataView::set).
    pub fn set_uint8(&self, byte_offset: usize, value: u8) -> Result<(), Error> {
        self.set::<u8>(byte_offset, value, Endian::Little)
    }
}

impl fmt::Debug for DataView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataView")
            .field("byte_offset", &self.byte_offset)
            .field("byte_length", &self.byte_length())
            .finish()
    }
}
