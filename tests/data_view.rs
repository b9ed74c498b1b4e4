//! Conformance tests for `DataView`: docs/semantics.md V5 (every numeric type at every byte offset, in
//! both byte orders, bounds checked), checked against the standard library's `to_le_bytes` /
//! `to_be_bytes`.

use sharedbuf::{DataView, Endian, Error, SharedBuffer, Uint8Array};

const LEN: usize = 24;

/// A value of every byte distinct and non-zero, so a misplaced or dropped byte shows.
fn pattern(size: usize, salt: u8) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate().take(size) {
        *b = 0x11u8.wrapping_mul(i as u8 + 1).wrapping_add(salt) | 0x80;
    }
    bytes
}

/// For one type: write at every offset in both byte orders through the DataView and compare
/// the bytes with `to_le_bytes`/`to_be_bytes`; write bytes through a Uint8Array and read them
/// back through the DataView; check the neighbours are untouched; check the first offset past
/// the end is refused.
macro_rules! every_offset_both_orders {
    ($t:ty, $get:ident, $set:ident) => {{
        const SIZE: usize = std::mem::size_of::<$t>();
        let buf = SharedBuffer::new(LEN).unwrap();
        let dv = DataView::new(&buf).unwrap();
        let bytes = Uint8Array::new(&buf).unwrap();
        for offset in 0..=LEN - SIZE {
            for (salt, endian) in [(0u8, Endian::Little), (5u8, Endian::Big)] {
                let raw = pattern(SIZE, salt.wrapping_add(offset as u8));
                let value = <$t>::from_le_bytes(raw[..SIZE].try_into().unwrap());
                let expected = match endian {
                    Endian::Little => value.to_le_bytes(),
                    Endian::Big => value.to_be_bytes(),
                };

                // DataView write -> bytes.
                bytes.fill(0);
                dv.set::<$t>(offset, value, endian).unwrap();
                let all = bytes.to_vec();
                assert_eq!(
                    all[offset..offset + SIZE],
                    expected[..],
                    "set {} at {offset} {endian:?}",
                    stringify!($t)
                );
                assert!(all[..offset].iter().all(|&b| b == 0), "bytes before touched");
                assert!(all[offset + SIZE..].iter().all(|&b| b == 0), "bytes after touched");

                // Bytes -> DataView read (bit-exact, also for floats).
                bytes.fill(0xFF);
                bytes.copy_from_slice(offset, &expected).unwrap();
                let got: $t = dv.get(offset, endian).unwrap();
                assert_eq!(got.to_bits_for_test(), value.to_bits_for_test());

                // The JavaScript-named accessors agree (little_endian: bool).
                let little = endian == Endian::Little;
                assert_eq!(
                    dv.$get(offset, little).unwrap().to_bits_for_test(),
                    value.to_bits_for_test()
                );
                bytes.fill(0);
                dv.$set(offset, value, little).unwrap();
                assert_eq!(bytes.to_vec()[offset..offset + SIZE], expected[..]);
            }
        }
        // Bounds: the first offset that does not fit, and offsets near usize::MAX.
        for offset in [LEN - SIZE + 1, LEN, LEN + 1, usize::MAX - SIZE + 1, usize::MAX] {
            let err = dv.get::<$t>(offset, Endian::Big).unwrap_err();
            assert!(matches!(err, Error::RangeOutOfBounds { start, len: LEN, .. } if start == offset));
            assert!(dv.set::<$t>(offset, Default::default(), Endian::Little).is_err());
        }
    }};
}

/// Bit patterns for comparing floats exactly (NaN payloads, -0.0) and integers alike.
trait ToBitsForTest {
    fn to_bits_for_test(self) -> u64;
}
macro_rules! bits_int {
    ($($t:ty),*) => {$(impl ToBitsForTest for $t { fn to_bits_for_test(self) -> u64 { self as u64 } })*};
}
bits_int!(i8, u8, i16, u16, i32, u32, i64, u64);
impl ToBitsForTest for f32 {
    fn to_bits_for_test(self) -> u64 {
        self.to_bits() as u64
    }
}
impl ToBitsForTest for f64 {
    fn to_bits_for_test(self) -> u64 {
        self.to_bits()
    }
}

/// JavaScript's 8-bit accessors take no byte order; wrap them so the macro can call them.
trait EightBit {
    fn get_i8_js(&self, offset: usize, little: bool) -> Result<i8, Error>;
    fn set_i8_js(&self, offset: usize, value: i8, little: bool) -> Result<(), Error>;
    fn get_u8_js(&self, offset: usize, little: bool) -> Result<u8, Error>;
    fn set_u8_js(&self, offset: usize, value: u8, little: bool) -> Result<(), Error>;
}
impl EightBit for DataView {
    fn get_i8_js(&self, offset: usize, _: bool) -> Result<i8, Error> {
        self.get_int8(offset)
    }
    fn set_i8_js(&self, offset: usize, value: i8, _: bool) -> Result<(), Error> {
        self.set_int8(offset, value)
    }
    fn get_u8_js(&self, offset: usize, _: bool) -> Result<u8, Error> {
        self.get_uint8(offset)
    }
    fn set_u8_js(&self, offset: usize, value: u8, _: bool) -> Result<(), Error> {
        self.set_uint8(offset, value)
    }
}

#[test]
fn v5_i8_u8_every_offset() {
    every_offset_both_orders!(i8, get_i8_js, set_i8_js);
    every_offset_both_orders!(u8, get_u8_js, set_u8_js);
}

#[test]
fn v5_i16_u16_every_offset_both_orders() {
    every_offset_both_orders!(i16, get_int16, set_int16);
    every_offset_both_orders!(u16, get_uint16, set_uint16);
}

#[test]
fn v5_i32_u32_every_offset_both_orders() {
    every_offset_both_orders!(i32, get_int32, set_int32);
    every_offset_both_orders!(u32, get_uint32, set_uint32);
}

#[test]
fn v5_i64_u64_every_offset_both_orders() {
    every_offset_both_orders!(i64, get_big_int64, set_big_int64);
    every_offset_both_orders!(u64, get_big_uint64, set_big_uint64);
}

#[test]
fn v5_f32_f64_every_offset_both_orders() {
    every_offset_both_orders!(f32, get_float32, set_float32);
    every_offset_both_orders!(f64, get_float64, set_float64);
}

#[test]
fn v5_javascript_default_is_big_endian() {
    assert_eq!(Endian::default(), Endian::Big);
    assert_eq!(Endian::from_little(true), Endian::Little);
    assert_eq!(Endian::from_little(false), Endian::Big);
    let buf = SharedBuffer::new(4).unwrap();
    let dv = DataView::new(&buf).unwrap();
    dv.set::<u32>(0, 0x0102_0304, Endian::default()).unwrap();
    assert_eq!(Uint8Array::new(&buf).unwrap().to_vec(), [1, 2, 3, 4]);
}

#[test]
fn v5_view_with_offset_and_length_is_bounds_checked_against_itself() {
    let buf = SharedBuffer::new(16).unwrap();
    let dv = DataView::with_range(&buf, 3, Some(6)).unwrap();
    assert_eq!((dv.byte_offset(), dv.byte_length()), (3, 6));
    dv.set_uint16(4, 0xABCD, true).unwrap(); // bytes 7 and 8 of the buffer
    assert_eq!(Uint8Array::new(&buf).unwrap().to_vec()[7..9], [0xCD, 0xAB]);
    assert!(
        dv.set_uint16(5, 0, true).is_err(),
        "would cross the view's end"
    );
    assert!(dv.get_float64(0, true).is_err(), "8 bytes do not fit in 6");
    assert_eq!(dv.get_uint32(2, false).unwrap(), 0x0000_CDAB);
    // Construction bounds.
    assert!(DataView::with_range(&buf, 17, None).is_err());
    assert!(DataView::with_range(&buf, 10, Some(7)).is_err());
    assert!(DataView::with_range(&buf, 1, Some(usize::MAX)).is_err());
    assert!(DataView::with_range(&buf, usize::MAX, Some(1)).is_err());
    let empty = DataView::with_range(&buf, 16, None).unwrap();
    assert_eq!(empty.byte_length(), 0);
    assert!(empty.get_uint8(0).is_err());
}

#[test]
fn v5_length_tracking_data_view_follows_grow() {
    let g = SharedBuffer::growable(4, 32).unwrap();
    let tracking = DataView::with_range(&g, 2, None).unwrap();
    let fixed = DataView::with_range(&g, 2, Some(2)).unwrap();
    assert_eq!(tracking.byte_length(), 2);
    assert!(tracking.get_uint32(0, true).is_err());
    g.grow(32).unwrap();
    assert_eq!(tracking.byte_length(), 30);
    assert_eq!(fixed.byte_length(), 2);
    tracking.set_float64(22, -1.5, false).unwrap();
    assert_eq!(
        Uint8Array::new(&g).unwrap().to_vec()[24..32],
        (-1.5f64).to_be_bytes()
    );
    assert!(tracking.set_float64(23, 0.0, false).is_err());
}

#[test]
fn v5_unaligned_and_aligned_accesses_see_each_other() {
    let buf = SharedBuffer::new(16).unwrap();
    let dv = DataView::new(&buf).unwrap();
    dv.set::<u64>(8, 0x1122_3344_5566_7788, Endian::Little)
        .unwrap(); // aligned
    assert_eq!(dv.get::<u32>(9, Endian::Little).unwrap(), 0x4455_6677); // unaligned
    dv.set::<u32>(10, 0xAABB_CCDD, Endian::Big).unwrap(); // unaligned
    assert_eq!(
        dv.get::<u64>(8, Endian::Little).unwrap(),
        0x1122_DDCC_BBAA_7788
    );
}

/// The other side of the element-range fault: a `DataView` works in bytes, and its range
/// errors say "byte", never "element".
// docs/semantics.md V5
#[test]
fn v5_data_view_errors_speak_of_bytes() {
    let buf = SharedBuffer::new(8).unwrap();
    let dv = DataView::new(&buf).unwrap();
    for error in [
        DataView::with_range(&buf, 4, Some(8)).unwrap_err(),
        DataView::with_range(&buf, 9, None).unwrap_err(),
        dv.get::<u32>(6, Endian::Little).unwrap_err(),
        dv.set_uint8(8, 1).unwrap_err(),
    ] {
        let message = error.to_string();
        assert!(
            message.contains("byte") && !message.contains("element"),
            "{error:?}: {message}"
        );
    }
}
