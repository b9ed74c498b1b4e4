//! An entry's fields as FETCH sends them: one string, the field list packed with Redis Lua's
//! `cmsgpack.pack` (a MessagePack array of strings). A reply of one string instead of a
//! dozen is cheaper on both sides: the script converts one value back to the protocol instead
//! of each field, and the client parses one bulk string instead of a nested array (the
//! `redis` crate's parser costs a few hundred instructions a value).

use rmp::decode::{read_array_len, read_bin_len, read_str_len};
use rmp::Marker;

use super::reply::{Reply, ReplyError};

/// Unpacks a packed field list into `(name, value)` pairs. Anything but an array of strings
/// of even length, read to its last byte, is an error (never a panic).
pub(super) fn fields(packed: &[u8]) -> Reply<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut rest = packed;
    let count = array_len(&mut rest)?;
    if count % 2 != 0 {
        return Err(error("a field list of odd length"));
    }
    // Each string takes a byte at least: a header claiming more than are left reserves no
    // more than could be there.
    let mut out = Vec::with_capacity((count / 2).min(rest.len() / 2));
    for _ in 0..count / 2 {
        let name = string(&mut rest)?.to_vec();
        let value = string(&mut rest)?.to_vec();
        out.push((name, value));
    }
    if !rest.is_empty() {
        return Err(error("bytes after the field list"));
    }
    Ok(out)
}

fn error(what: &str) -> ReplyError {
    ReplyError(format!("a packed entry: {what}"))
}

/// An array header at the front of `rest` (an empty map too: how an empty Lua table may be
/// packed).
fn array_len(rest: &mut &[u8]) -> Reply<usize> {
    if rest.first() == Some(&0x80) {
        *rest = &rest[1..];
        return Ok(0);
    }
    let len = read_array_len(rest).map_err(|e| error(&format!("the array header: {e}")))?;
    usize::try_from(len).map_err(|_| error("a length too long"))
}

/// A string (`str` or `bin`) at the front of `rest`.
fn string<'a>(rest: &mut &'a [u8]) -> Reply<&'a [u8]> {
    let len = match rest.first().copied().map(Marker::from_u8) {
        Some(Marker::Bin8 | Marker::Bin16 | Marker::Bin32) => read_bin_len(rest),
        _ => read_str_len(rest),
    }
    .map_err(|e| error(&format!("a string header: {e}")))?;
    let len = usize::try_from(len).map_err(|_| error("a length too long"))?;
    if rest.len() < len {
        return Err(error("cut short"));
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::fields;

    /// What `cmsgpack.pack` gives for `{'a', 'x' * 40, 'payload', 'y' * 300}`.
    fn packed_sample() -> Vec<u8> {
        let mut packed = vec![0x94, 0xa1, b'a', 0xd9, 40];
        packed.extend([b'x'; 40]);
        packed.extend([0xa7]);
        packed.extend(b"payload");
        packed.extend([0xda, 0x01, 0x2c]);
        packed.extend([b'y'; 300]);
        packed
    }

    #[test]
    fn unpacks_every_string_width() {
        let pairs = fields(&packed_sample()).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0], (b"a".to_vec(), vec![b'x'; 40]));
        assert_eq!(pairs[1], (b"payload".to_vec(), vec![b'y'; 300]));
    }

    #[test]
    fn unpacks_a_long_array_and_an_empty_one() {
        let mut packed = vec![0xdc, 0x00, 0x14];
        for _ in 0..20 {
            packed.extend([0xa1, b'k']);
        }
        assert_eq!(fields(&packed).unwrap().len(), 10);
        assert_eq!(fields(&[0x90]).unwrap(), Vec::new());
        assert_eq!(fields(&[0x80]).unwrap(), Vec::new());
    }

    #[test]
    fn refuses_malformed_input_without_panicking() {
        let sample = packed_sample();
        for cut in 0..sample.len() {
            assert!(fields(&sample[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = sample.clone();
        trailing.push(0xa0);
        assert!(fields(&trailing).is_err());
        assert!(fields(&[0x93, 0xa1, b'a', 0xa1, b'b', 0xa1, b'c']).is_err()); // odd
        assert!(fields(&[0x92, 0x01, 0x02]).is_err()); // numbers, not strings
        assert!(fields(&[0xdd, 0xff, 0xff, 0xff, 0xfe]).is_err()); // a length past the end
        assert!(fields(b"").is_err());
    }
}
