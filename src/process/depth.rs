//! A nesting limit for decoding messages from another process.
//!
//! postcard has none: decoding into a recursive type (a tree, an AST, a `Value`-like enum)
//! recurses once per level, and a message of a million one-byte levels — written by a hostile
//! peer, or by a bug, or made of corrupted bytes — overflows the decoding thread's stack, which
//! aborts the whole process. Every compound value (sequence, map, struct, tuple, enum, option,
//! newtype) the wrapper below decodes takes one level; past the limit the decode fails with
//! an error instead, and the caller reports [`Error::Codec`](crate::Error::Codec).
//!
//! The wrapper passes every call through unchanged otherwise: serde hands each nested value's
//! decoder to a seed or a visitor, so the wrapper wraps those too, carrying the levels left.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// How deep a message's compound values may nest: serde_json's limit.
pub(super) const MAX_DEPTH: usize = 128;

/// `T` decoded from `inner`, its compound values nested at most `max_depth` deep. Past that
/// the decode stops with the format's custom error and sets `too_deep` (a format's error type
/// may not keep a custom message: postcard's does not).
#[inline]
pub(super) fn deserialize<'de, T, D>(
    inner: D,
    max_depth: usize,
    too_deep: &Cell<bool>,
) -> Result<T, D::Error>
where
    T: de::Deserialize<'de>,
    D: Deserializer<'de>,
{
    let levels = Levels {
        left: max_depth,
        too_deep,
    };
    T::deserialize(levels.same(inner))
}

/// The levels left at one point of the decode, and where to say the limit was hit.
#[derive(Clone, Copy)]
struct Levels<'a> {
    left: usize,
    too_deep: &'a Cell<bool>,
}

impl<'a> Levels<'a> {
    /// `inner` (a deserializer, visitor, access or seed) at these levels.
    #[inline]
    fn same<X>(self, inner: X) -> Wrapped<'a, X> {
        Wrapped {
            inner,
            levels: self,
        }
    }

    /// `inner` one level down (it decodes a compound value), or the error that ends the
    /// decode when no level is left.
    #[inline]
    fn down<X, E: de::Error>(self, inner: X) -> Result<Wrapped<'a, X>, E> {
        match self.left.checked_sub(1) {
            Some(left) => Ok(Wrapped {
                inner,
                levels: Levels { left, ..self },
            }),
            None => {
                self.too_deep.set(true);
                Err(E::custom("values nest too deep"))
            }
        }
    }
}

/// A deserializer, visitor, seq/map/enum/variant access or seed whose nested values are
/// decoded with `levels`.
struct Wrapped<'a, X> {
    inner: X,
    levels: Levels<'a>,
}

/// Forwards scalar `deserialize_*` calls with the visitor wrapped (a self-describing format
/// may still hand it a compound value).
macro_rules! forward_scalars {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method(self.levels.same(visitor))
        }
    )*};
}

/// Forwards compound `deserialize_*` calls, taking a level first.
macro_rules! forward_compounds {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method(self.levels.down(visitor)?)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Wrapped<'_, D> {
    type Error = D::Error;

    forward_scalars! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier deserialize_ignored_any
    }
    forward_compounds! { deserialize_any deserialize_option deserialize_seq deserialize_map }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_unit_struct(name, self.levels.same(visitor))
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_newtype_struct(name, self.levels.down(visitor)?)
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_tuple(len, self.levels.down(visitor)?)
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_tuple_struct(name, len, self.levels.down(visitor)?)
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_struct(name, fields, self.levels.down(visitor)?)
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_enum(name, variants, self.levels.down(visitor)?)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards `visit_*` calls whose argument is a plain value.
macro_rules! forward_visits {
    ($($method:ident($ty:ty))*) => {$(
        #[inline]
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrapped<'_, V> {
    type Value = V::Value;

    #[inline]
    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(formatter)
    }

    forward_visits! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(self.levels.same(inner))
    }

    #[inline]
    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(self.levels.same(inner))
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(self.levels.same(seq))
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(self.levels.same(map))
    }

    #[inline]
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(self.levels.same(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrapped<'_, S> {
    type Value = S::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(self.levels.same(inner))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrapped<'_, A> {
    type Error = A::Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(self.levels.same(seed))
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrapped<'_, A> {
    type Error = A::Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(self.levels.same(seed))
    }

    #[inline]
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(self.levels.same(seed))
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'a, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Wrapped<'a, A> {
    type Error = A::Error;
    type Variant = Wrapped<'a, A::Variant>;

    #[inline]
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(self.levels.same(seed))?;
        Ok((value, self.levels.same(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrapped<'_, A> {
    type Error = A::Error;

    #[inline]
    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(self.levels.same(seed))
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, self.levels.down(visitor)?)
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner
            .struct_variant(fields, self.levels.down(visitor)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    /// Recursive through a sequence.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Tree(Vec<Tree>);

    /// Recursive through an enum's newtype variant, a struct variant and an option.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Expr {
        Leaf(u8),
        Neg(Box<Expr>),
        Pair {
            left: Box<Expr>,
            right: Option<Box<Expr>>,
        },
    }

    /// Nothing recursive, every kind of compound value.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Flat {
        name: String,
        bytes: Vec<u8>,
        map: BTreeMap<String, (u32, Option<i64>)>,
        unit: (),
        choice: Expr,
        tuple: (bool, char, f64),
    }

    fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, bool> {
        let too_deep = Cell::new(false);
        let mut decoder = postcard::Deserializer::from_bytes(bytes);
        deserialize(&mut decoder, MAX_DEPTH, &too_deep).map_err(|_| too_deep.get())
    }

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        let mut buffer = vec![0; 1 << 16];
        postcard::to_slice(value, &mut buffer).unwrap().to_vec()
    }

    fn tree(depth: usize) -> Tree {
        (0..depth).fold(Tree(Vec::new()), |inner, _| Tree(vec![inner]))
    }

    fn expr(depth: usize) -> Expr {
        (0..depth).fold(Expr::Leaf(7), |inner, level| match level % 2 {
            0 => Expr::Neg(Box::new(inner)),
            _ => Expr::Pair {
                left: Box::new(Expr::Leaf(1)),
                right: Some(Box::new(inner)),
            },
        })
    }

    #[test]
    fn values_within_the_limit_decode_as_postcard_alone_decodes_them() {
        let flat = Flat {
            name: "n".into(),
            bytes: vec![1, 2, 3],
            map: BTreeMap::from([("a".into(), (1, None)), ("b".into(), (2, Some(-3)))]),
            unit: (),
            choice: expr(3),
            tuple: (true, 'x', 0.5),
        };
        let bytes = encode(&flat);
        assert_eq!(decode::<Flat>(&bytes), Ok(flat));
        // `tree(n)` holds n + 1 trees of two levels each (a newtype and a sequence): 128.
        let bytes = encode(&tree(63));
        assert_eq!(decode::<Tree>(&bytes), Ok(tree(63)));
        let bytes = encode(&expr(60));
        assert_eq!(decode::<Expr>(&bytes), Ok(expr(60)));
    }

    #[test]
    fn deeper_values_are_an_error_not_a_stack_overflow() {
        let bytes = encode(&tree(64));
        assert_eq!(decode::<Tree>(&bytes), Err(true));
        // A million levels of one byte each: a sequence of one element, and so on.
        let mut bytes = vec![1u8; 1_000_000];
        bytes.push(0);
        assert_eq!(decode::<Tree>(&bytes), Err(true));
        // `Neg` (variant 1) a million times.
        let mut bytes = vec![1u8; 1_000_000];
        bytes.extend([0, 7]);
        assert_eq!(decode::<Expr>(&bytes), Err(true));
        // Other errors are not reported as too deep.
        assert_eq!(decode::<Expr>(&[9]), Err(false));
    }
}
