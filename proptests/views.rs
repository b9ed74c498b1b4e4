//! Model-based property tests: random sequences of buffer creation, grow, slice, clone, typed
//! views of every element type and DataViews, run against a plain `Vec<u8>` model.
//!
//! Every operation is applied to both; the real call must succeed exactly when the model says
//! it should (docs/semantics.md B1–B6, V1–V5), and afterwards every buffer's length and bytes must
//! equal the model's. Offsets, lengths and indices are drawn edge-biased (0, 1, len − 1, len,
//! len + 1, values near `usize::MAX`) and resolved against the state at the time they run, so
//! most draws land on a boundary.
#![cfg(not(loom))]

use proptest::prelude::*;
use sharedbuf::{DataView, Element, Endian, Error, SharedBuffer, TypedArray, Uint8Array};

// ---- the model ---------------------------------------------------------------------------

/// One block of memory as the model sees it. Clones of a buffer point at the same `Store`.
#[derive(Debug, Clone)]
struct Store {
    bytes: Vec<u8>,
    /// `Some(max)` for a growable buffer.
    max: Option<usize>,
}

/// Lengths the platform cannot provide: the model expects `Err` for these.
fn impossible(len: usize) -> bool {
    len > (1 << 48)
}

// ---- edge-biased choices, resolved against the state when the operation runs --------------

/// A position or length relative to some bound `n` known only when the operation runs.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Zero,
    One,
    /// `n - k` (saturating).
    Below(u8),
    /// `n + k`.
    Above(u8),
    /// Anywhere in `0..=n`, as a fraction of `n`.
    Within(u16),
    /// `usize::MAX - k`.
    Huge(u8),
    /// A small absolute value.
    Small(u8),
}

impl Pick {
    fn resolve(self, n: usize) -> usize {
        match self {
            Pick::Zero => 0,
            Pick::One => 1,
            Pick::Below(k) => n.saturating_sub(k as usize),
            Pick::Above(k) => n.saturating_add(k as usize),
            Pick::Within(f) => (n as u128 * f as u128 / u16::MAX as u128) as usize,
            Pick::Huge(k) => usize::MAX - k as usize,
            Pick::Small(v) => v as usize,
        }
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        2 => Just(Pick::Zero),
        1 => Just(Pick::One),
        3 => (0u8..=2).prop_map(Pick::Below),
        2 => (0u8..=2).prop_map(Pick::Above),
        5 => any::<u16>().prop_map(Pick::Within),
        1 => (0u8..=8).prop_map(Pick::Huge),
        2 => any::<u8>().prop_map(Pick::Small),
    ]
}

/// A buffer length: mostly small (so whole contents are compared cheaply), sometimes absurd.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..=40,
        3 => 0usize..=300,
        1 => prop_oneof![
            Just(usize::MAX),
            Just(usize::MAX - 7),
            Just(isize::MAX as usize),
            Just(isize::MAX as usize + 1),
            Just(1usize << 62),
        ],
    ]
}

#[derive(Debug, Clone, Copy)]
enum Ty {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

fn ty() -> impl Strategy<Value = Ty> {
    prop_oneof![
        Just(Ty::I8),
        Just(Ty::U8),
        Just(Ty::I16),
        Just(Ty::U16),
        Just(Ty::I32),
        Just(Ty::U32),
        Just(Ty::I64),
        Just(Ty::U64),
        Just(Ty::F32),
        Just(Ty::F64),
    ]
}

impl Ty {
    fn size(self) -> usize {
        match self {
            Ty::I8 | Ty::U8 => 1,
            Ty::I16 | Ty::U16 => 2,
            Ty::I32 | Ty::U32 | Ty::F32 => 4,
            Ty::I64 | Ty::U64 | Ty::F64 => 8,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    New(usize),
    Growable(usize, usize),
    Grow(usize, Pick),
    Slice(usize, Pick, Pick),
    Clone(usize),
    /// A typed view: buffer, type, byte offset, explicit length (in elements) or tracking.
    View(usize, Ty, Pick, Option<Pick>),
    ViewSet(usize, Pick, u64),
    ViewGet(usize, Pick),
    ViewCopyIn(usize, Pick, Vec<u8>),
    ViewCopyOut(usize, Pick, Pick),
    ViewFill(usize, u64),
    /// A DataView: buffer, byte offset, explicit byte length or tracking.
    Dv(usize, Pick, Option<Pick>),
    DvSet(usize, Ty, Pick, u64, bool),
    DvGet(usize, Ty, Pick, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => size().prop_map(Op::New),
        2 => (size(), size()).prop_map(|(a, b)| Op::Growable(a, b)),
        3 => (any::<usize>(), pick()).prop_map(|(b, p)| Op::Grow(b, p)),
        2 => (any::<usize>(), pick(), pick()).prop_map(|(b, s, e)| Op::Slice(b, s, e)),
        1 => any::<usize>().prop_map(Op::Clone),
        4 => (any::<usize>(), ty(), pick(), prop::option::of(pick()))
            .prop_map(|(b, t, o, l)| Op::View(b, t, o, l)),
        6 => (any::<usize>(), pick(), any::<u64>()).prop_map(|(v, i, x)| Op::ViewSet(v, i, x)),
        4 => (any::<usize>(), pick()).prop_map(|(v, i)| Op::ViewGet(v, i)),
        2 => (any::<usize>(), pick(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(v, s, d)| Op::ViewCopyIn(v, s, d)),
        2 => (any::<usize>(), pick(), pick()).prop_map(|(v, s, n)| Op::ViewCopyOut(v, s, n)),
        1 => (any::<usize>(), any::<u64>()).prop_map(|(v, x)| Op::ViewFill(v, x)),
        2 => (any::<usize>(), pick(), prop::option::of(pick()))
            .prop_map(|(b, o, l)| Op::Dv(b, o, l)),
        5 => (any::<usize>(), ty(), pick(), any::<u64>(), any::<bool>())
            .prop_map(|(d, t, a, x, le)| Op::DvSet(d, t, a, x, le)),
        4 => (any::<usize>(), ty(), pick(), any::<bool>())
            .prop_map(|(d, t, a, le)| Op::DvGet(d, t, a, le)),
    ]
}

// ---- typed views behind one object-safe interface -----------------------------------------

/// Element types with byte conversions, for building values from random bits and comparing
/// them as bytes (so NaN payloads and -0.0 compare exactly).
trait Num: Element {
    fn from_ne(bytes: &[u8]) -> Self;
    fn ne(self) -> Vec<u8>;
    fn le(self) -> Vec<u8>;
    fn be(self) -> Vec<u8>;
}

macro_rules! num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn from_ne(bytes: &[u8]) -> Self { <$t>::from_ne_bytes(bytes.try_into().unwrap()) }
            fn ne(self) -> Vec<u8> { self.to_ne_bytes().to_vec() }
            fn le(self) -> Vec<u8> { self.to_le_bytes().to_vec() }
            fn be(self) -> Vec<u8> { self.to_be_bytes().to_vec() }
        }
    )*};
}
num!(i8, u8, i16, u16, i32, u32, i64, u64, f32, f64);

/// A value of `T` made from the low bytes of `bits`.
fn value_of<T: Num>(bits: u64) -> T {
    T::from_ne(&bits.to_ne_bytes()[..std::mem::size_of::<T>()])
}

/// A `TypedArray<T>` with the type erased; values travel as native-endian bytes.
trait AnyView {
    fn len(&self) -> usize;
    fn set(&self, index: usize, bits: u64) -> Result<Vec<u8>, Error>;
    fn get(&self, index: usize) -> Option<Vec<u8>>;
    fn copy_in(&self, start: usize, bytes: &[u8]) -> Result<(), Error>;
    fn copy_out(&self, start: usize, count: usize) -> Result<Vec<u8>, Error>;
    fn fill(&self, bits: u64) -> Vec<u8>;
}

impl<T: Num> AnyView for TypedArray<T> {
    fn len(&self) -> usize {
        TypedArray::len(self)
    }
    fn set(&self, index: usize, bits: u64) -> Result<Vec<u8>, Error> {
        let v = value_of::<T>(bits);
        TypedArray::set(self, index, v).map(|()| v.ne())
    }
    fn get(&self, index: usize) -> Option<Vec<u8>> {
        TypedArray::get(self, index).map(Num::ne)
    }
    fn copy_in(&self, start: usize, bytes: &[u8]) -> Result<(), Error> {
        let values: Vec<T> = bytes
            .chunks_exact(std::mem::size_of::<T>())
            .map(T::from_ne)
            .collect();
        self.copy_from_slice(start, &values)
    }
    fn copy_out(&self, start: usize, count: usize) -> Result<Vec<u8>, Error> {
        let mut values = vec![T::default(); count];
        self.copy_to_slice(start, &mut values)?;
        Ok(values.into_iter().flat_map(Num::ne).collect())
    }
    fn fill(&self, bits: u64) -> Vec<u8> {
        let v = value_of::<T>(bits);
        TypedArray::fill(self, v);
        v.ne()
    }
}

fn make_view(
    buf: &SharedBuffer,
    ty: Ty,
    offset: usize,
    len: Option<usize>,
) -> Result<Box<dyn AnyView>, Error> {
    fn boxed<T: Num>(
        buf: &SharedBuffer,
        offset: usize,
        len: Option<usize>,
    ) -> Result<Box<dyn AnyView>, Error> {
        Ok(Box::new(TypedArray::<T>::with_range(buf, offset, len)?))
    }
    match ty {
        Ty::I8 => boxed::<i8>(buf, offset, len),
        Ty::U8 => boxed::<u8>(buf, offset, len),
        Ty::I16 => boxed::<i16>(buf, offset, len),
        Ty::U16 => boxed::<u16>(buf, offset, len),
        Ty::I32 => boxed::<i32>(buf, offset, len),
        Ty::U32 => boxed::<u32>(buf, offset, len),
        Ty::I64 => boxed::<i64>(buf, offset, len),
        Ty::U64 => boxed::<u64>(buf, offset, len),
        Ty::F32 => boxed::<f32>(buf, offset, len),
        Ty::F64 => boxed::<f64>(buf, offset, len),
    }
}

/// DataView get/set of `ty` with the value as `endian`-order bytes.
fn dv_set(dv: &DataView, ty: Ty, at: usize, bits: u64, little: bool) -> Result<Vec<u8>, Error> {
    fn go<T: Num>(dv: &DataView, at: usize, bits: u64, little: bool) -> Result<Vec<u8>, Error> {
        let v = value_of::<T>(bits);
        dv.set::<T>(at, v, Endian::from_little(little))
            .map(|()| if little { v.le() } else { v.be() })
    }
    match ty {
        Ty::I8 => go::<i8>(dv, at, bits, little),
        Ty::U8 => go::<u8>(dv, at, bits, little),
        Ty::I16 => go::<i16>(dv, at, bits, little),
        Ty::U16 => go::<u16>(dv, at, bits, little),
        Ty::I32 => go::<i32>(dv, at, bits, little),
        Ty::U32 => go::<u32>(dv, at, bits, little),
        Ty::I64 => go::<i64>(dv, at, bits, little),
        Ty::U64 => go::<u64>(dv, at, bits, little),
        Ty::F32 => go::<f32>(dv, at, bits, little),
        Ty::F64 => go::<f64>(dv, at, bits, little),
    }
}

fn dv_get(dv: &DataView, ty: Ty, at: usize, little: bool) -> Result<Vec<u8>, Error> {
    fn go<T: Num>(dv: &DataView, at: usize, little: bool) -> Result<Vec<u8>, Error> {
        dv.get::<T>(at, Endian::from_little(little))
            .map(|v| if little { v.le() } else { v.be() })
    }
    match ty {
        Ty::I8 => go::<i8>(dv, at, little),
        Ty::U8 => go::<u8>(dv, at, little),
        Ty::I16 => go::<i16>(dv, at, little),
        Ty::U16 => go::<u16>(dv, at, little),
        Ty::I32 => go::<i32>(dv, at, little),
        Ty::U32 => go::<u32>(dv, at, little),
        Ty::I64 => go::<i64>(dv, at, little),
        Ty::U64 => go::<u64>(dv, at, little),
        Ty::F32 => go::<f32>(dv, at, little),
        Ty::F64 => go::<f64>(dv, at, little),
    }
}

// ---- the system under test beside its model ----------------------------------------------

struct ViewEntry {
    view: Box<dyn AnyView>,
    store: usize,
    size: usize,
    offset: usize,
    /// `None`: length-tracking.
    len: Option<usize>,
}

struct DvEntry {
    dv: DataView,
    store: usize,
    offset: usize,
    len: Option<usize>,
}

#[derive(Default)]
struct World {
    stores: Vec<Store>,
    /// Real buffer handles, each with the model store it shares.
    buffers: Vec<(SharedBuffer, usize)>,
    views: Vec<ViewEntry>,
    dvs: Vec<DvEntry>,
}

fn nth<T>(items: &[T], i: usize) -> Option<&T> {
    if items.is_empty() {
        None
    } else {
        items.get(i % items.len())
    }
}

impl World {
    fn add_buffer(&mut self, buf: SharedBuffer, store: Store) {
        self.stores.push(store);
        self.buffers.push((buf, self.stores.len() - 1));
    }

    fn view_len(&self, e: &ViewEntry) -> usize {
        e.len
            .unwrap_or_else(|| (self.stores[e.store].bytes.len() - e.offset) / e.size)
    }

    fn dv_len(&self, e: &DvEntry) -> usize {
        e.len
            .unwrap_or_else(|| self.stores[e.store].bytes.len() - e.offset)
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::New(len) => {
                let real = SharedBuffer::new(len);
                prop_assert_eq!(real.is_ok(), !impossible(len), "new({})", len);
                if let Ok(buf) = real {
                    self.add_buffer(
                        buf,
                        Store {
                            bytes: vec![0; len],
                            max: None,
                        },
                    );
                }
            }
            Op::Growable(len, max) => {
                let real = SharedBuffer::growable(len, max);
                let ok = len <= max && !impossible(max);
                prop_assert_eq!(real.is_ok(), ok, "growable({}, {})", len, max);
                if len > max {
                    prop_assert!(matches!(real, Err(Error::ExceedsMax { .. })), "{:?}", real);
                }
                if let Ok(buf) = real {
                    self.add_buffer(
                        buf,
                        Store {
                            bytes: vec![0; len],
                            max: Some(max),
                        },
                    );
                }
            }
            Op::Grow(b, to) => {
                let Some((buf, s)) = nth(&self.buffers, b).cloned() else {
                    return Ok(());
                };
                let store = &mut self.stores[s];
                let cur = store.bytes.len();
                let n = to.resolve(cur);
                let real = buf.grow(n);
                match store.max {
                    None => {
                        prop_assert!(matches!(real, Err(Error::NotGrowable { .. })), "{:?}", real)
                    }
                    Some(max) if n > max => {
                        prop_assert!(matches!(real, Err(Error::ExceedsMax { .. })), "{:?}", real)
                    }
                    Some(_) if n < cur => {
                        prop_assert!(matches!(real, Err(Error::Shrink { .. })), "{:?}", real)
                    }
                    Some(_) => {
                        prop_assert!(real.is_ok(), "grow({}) from {}: {:?}", n, cur, real);
                        store.bytes.resize(n, 0);
                    }
                }
            }
            Op::Slice(b, start, end) => {
                let Some((buf, s)) = nth(&self.buffers, b).cloned() else {
                    return Ok(());
                };
                let bytes = &self.stores[s].bytes;
                let (start, end) = (start.resolve(bytes.len()), end.resolve(bytes.len()));
                let real = buf.slice(start..end);
                if start <= end && end <= bytes.len() {
                    let copy = real.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(!copy.same_memory(&buf));
                    prop_assert!(!copy.is_growable());
                    let store = Store {
                        bytes: bytes[start..end].to_vec(),
                        max: None,
                    };
                    self.add_buffer(copy, store);
                } else {
                    prop_assert!(
                        real.is_err(),
                        "slice({}..{}) of {}",
                        start,
                        end,
                        bytes.len()
                    );
                }
            }
            Op::Clone(b) => {
                if let Some((buf, s)) = nth(&self.buffers, b).cloned() {
                    let clone = buf.clone();
                    prop_assert!(clone.same_memory(&buf));
                    self.buffers.push((clone, s));
                }
            }
            Op::View(b, ty, offset, len) => {
                let Some((buf, s)) = nth(&self.buffers, b).cloned() else {
                    return Ok(());
                };
                let store = &self.stores[s];
                let cur = store.bytes.len();
                let size = ty.size();
                let offset = offset.resolve(cur);
                // Explicit lengths are in elements: resolve against the elements that fit.
                let len = len.map(|p| p.resolve(cur.saturating_sub(offset) / size));
                let expect_ok = offset % size == 0
                    && offset <= cur
                    && match len {
                        Some(n) => n
                            .checked_mul(size)
                            .and_then(|b| b.checked_add(offset))
                            .is_some_and(|end| end <= cur),
                        None => store.max.is_some() || (cur - offset) % size == 0,
                    };
                let real = make_view(&buf, ty, offset, len);
                prop_assert_eq!(
                    real.is_ok(),
                    expect_ok,
                    "{:?} view at {} len {:?} of {}",
                    ty,
                    offset,
                    len,
                    cur
                );
                if offset % size != 0 {
                    prop_assert!(
                        matches!(real, Err(Error::Misaligned { .. })),
                        "{:?}",
                        real.as_ref().err()
                    );
                }
                if let Ok(view) = real {
                    let fixed_len = match len {
                        Some(n) => Some(n),
                        None if store.max.is_none() => Some((cur - offset) / size),
                        None => None,
                    };
                    let entry = ViewEntry {
                        view,
                        store: s,
                        size,
                        offset,
                        len: fixed_len,
                    };
                    prop_assert_eq!(entry.view.len(), self.view_len(&entry));
                    self.views.push(entry);
                }
            }
            Op::ViewSet(v, index, bits) => {
                let Some(e) = nth(&self.views, v) else {
                    return Ok(());
                };
                let len = self.view_len(e);
                prop_assert_eq!(e.view.len(), len, "view length (V3)");
                let index = index.resolve(len);
                let real = e.view.set(index, bits);
                if index < len {
                    let bytes = real.map_err(|err| TestCaseError::fail(err.to_string()))?;
                    let at = e.offset + index * e.size;
                    let (store, size) = (e.store, e.size);
                    self.stores[store].bytes[at..at + size].copy_from_slice(&bytes);
                } else {
                    prop_assert!(
                        matches!(real, Err(Error::IndexOutOfRange { .. })),
                        "{:?}",
                        real
                    );
                }
            }
            Op::ViewGet(v, index) => {
                let Some(e) = nth(&self.views, v) else {
                    return Ok(());
                };
                let len = self.view_len(e);
                let index = index.resolve(len);
                let real = e.view.get(index);
                if index < len {
                    let at = e.offset + index * e.size;
                    let expected = &self.stores[e.store].bytes[at..at + e.size];
                    prop_assert_eq!(real.as_deref(), Some(expected), "get({})", index);
                } else {
                    prop_assert_eq!(real, None);
                }
            }
            Op::ViewCopyIn(v, start, ref data) => {
                let Some(e) = nth(&self.views, v) else {
                    return Ok(());
                };
                let len = self.view_len(e);
                let start = start.resolve(len);
                let data = &data[..data.len() / e.size * e.size];
                let count = data.len() / e.size;
                let real = e.view.copy_in(start, data);
                if start <= len && count <= len - start {
                    prop_assert!(real.is_ok(), "copy_in at {} of {}: {:?}", start, len, real);
                    let at = e.offset + start * e.size;
                    let store = e.store;
                    self.stores[store].bytes[at..at + data.len()].copy_from_slice(data);
                } else {
                    prop_assert!(real.is_err());
                }
            }
            Op::ViewCopyOut(v, start, count) => {
                let Some(e) = nth(&self.views, v) else {
                    return Ok(());
                };
                let len = self.view_len(e);
                let start = start.resolve(len);
                // Capped so the destination can be allocated; still past the end when large.
                let count = count.resolve(len.saturating_sub(start)).min(len + 2);
                let real = e.view.copy_out(start, count);
                if start <= len && count <= len - start {
                    let at = e.offset + start * e.size;
                    let expected = &self.stores[e.store].bytes[at..at + count * e.size];
                    prop_assert_eq!(real.as_deref().ok(), Some(expected));
                } else {
                    prop_assert!(real.is_err());
                }
            }
            Op::ViewFill(v, bits) => {
                let Some(e) = nth(&self.views, v) else {
                    return Ok(());
                };
                let len = self.view_len(e);
                let value = e.view.fill(bits);
                let (store, offset) = (e.store, e.offset);
                for i in 0..len {
                    let at = offset + i * value.len();
                    self.stores[store].bytes[at..at + value.len()].copy_from_slice(&value);
                }
            }
            Op::Dv(b, offset, len) => {
                let Some((buf, s)) = nth(&self.buffers, b).cloned() else {
                    return Ok(());
                };
                let store = &self.stores[s];
                let cur = store.bytes.len();
                let offset = offset.resolve(cur);
                let len = len.map(|p| p.resolve(cur.saturating_sub(offset)));
                let end = offset.checked_add(len.unwrap_or(0));
                let expect_ok = offset <= cur && end.is_some_and(|end| end <= cur);
                let real = DataView::with_range(&buf, offset, len);
                prop_assert_eq!(
                    real.is_ok(),
                    expect_ok,
                    "DataView at {} len {:?}",
                    offset,
                    len
                );
                if let Ok(dv) = real {
                    let len = match len {
                        None if store.max.is_none() => Some(cur - offset),
                        other => other,
                    };
                    let entry = DvEntry {
                        dv,
                        store: s,
                        offset,
                        len,
                    };
                    prop_assert_eq!(entry.dv.byte_length(), self.dv_len(&entry));
                    self.dvs.push(entry);
                }
            }
            Op::DvSet(d, ty, at, bits, little) => {
                let Some(e) = nth(&self.dvs, d) else {
                    return Ok(());
                };
                let len = self.dv_len(e);
                prop_assert_eq!(e.dv.byte_length(), len);
                let at = at.resolve(len);
                let real = dv_set(&e.dv, ty, at, bits, little);
                if at.checked_add(ty.size()).is_some_and(|end| end <= len) {
                    let bytes = real.map_err(|err| TestCaseError::fail(err.to_string()))?;
                    let abs = e.offset + at;
                    let store = e.store;
                    self.stores[store].bytes[abs..abs + bytes.len()].copy_from_slice(&bytes);
                } else {
                    prop_assert!(
                        matches!(real, Err(Error::RangeOutOfBounds { .. })),
                        "{:?}",
                        real
                    );
                }
            }
            Op::DvGet(d, ty, at, little) => {
                let Some(e) = nth(&self.dvs, d) else {
                    return Ok(());
                };
                let len = self.dv_len(e);
                let at = at.resolve(len);
                let real = dv_get(&e.dv, ty, at, little);
                if at.checked_add(ty.size()).is_some_and(|end| end <= len) {
                    let abs = e.offset + at;
                    let expected = &self.stores[e.store].bytes[abs..abs + ty.size()];
                    prop_assert_eq!(real.as_deref().ok(), Some(expected));
                } else {
                    prop_assert!(real.is_err());
                }
            }
        }
        Ok(())
    }

    /// Every buffer handle agrees with its model store: length, maximum, growability, bytes.
    fn check(&self) -> Result<(), TestCaseError> {
        for (buf, s) in &self.buffers {
            let store = &self.stores[*s];
            prop_assert_eq!(buf.byte_length(), store.bytes.len());
            prop_assert_eq!(buf.is_growable(), store.max.is_some());
            prop_assert_eq!(
                buf.max_byte_length(),
                store.max.unwrap_or(store.bytes.len())
            );
            let bytes = Uint8Array::new(buf)
                .map_err(|e| TestCaseError::fail(e.to_string()))?
                .to_vec();
            prop_assert_eq!(&bytes, &store.bytes);
        }
        Ok(())
    }
}

fn run(first: (usize, usize), ops: &[Op]) -> Result<(), TestCaseError> {
    let mut world = World::default();
    // Start with one growable buffer so early operations have something to act on.
    let (len, extra) = first;
    world.apply(&Op::Growable(len, len + extra))?;
    for op in ops {
        world.apply(op)?;
        world.check()?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// docs/semantics.md B1–B6 and V1–V5 against a `Vec<u8>` model.
    #[test]
    fn views_match_vec_model(
        first in (0usize..64, 0usize..64),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(first, &ops)?;
    }
}
