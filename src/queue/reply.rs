//! Reading Redis replies: the few shapes the queue's commands and scripts return, taken apart
//! with checks instead of `unwrap`s (a reply of an unexpected shape is a [`ReplyError`], never a
//! panic).

use std::fmt;

use redis::Value;

/// A reply that did not have the shape the queue expected (another program wrote the keys, or a
/// server that does not speak Redis 6.2+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReplyError(pub(super) String);

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected reply from Redis: {}", self.0)
    }
}

pub(super) type Reply<T> = Result<T, ReplyError>;

fn unexpected<T>(what: &str, value: &Value) -> Reply<T> {
    let mut shown = format!("{value:?}");
    if shown.len() > 120 {
        let mut cut = 120;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push('…');
    }
    Err(ReplyError(format!("expected {what}, got {shown}")))
}

/// The elements of an array reply (`Nil` counts as empty: Redis answers "nothing" with it).
pub(super) fn array(value: Value) -> Reply<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => unexpected("an array", &other),
    }
}

/// The bytes of a string reply.
pub(super) fn bytes(value: Value) -> Reply<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) => Ok(text.into_bytes()),
        Value::Okay => Ok(b"OK".to_vec()),
        Value::Int(n) => Ok(n.to_string().into_bytes()),
        other => unexpected("a string", &other),
    }
}

/// A string reply as UTF-8 text.
pub(super) fn text(value: Value) -> Reply<String> {
    String::from_utf8(bytes(value)?).map_err(|_| ReplyError("a string that is not UTF-8".into()))
}

/// Whether a script's error field (`''` if none) names an error: a count, a dead-letter
/// move or a level that failed inside the script while the rest went on (Q11).
pub(super) fn names_an_error(field: Value) -> bool {
    text(field).is_ok_and(|error| !error.is_empty())
}

/// An integer reply (Redis also sends numbers as strings, and Lua numbers as integers).
pub(super) fn int(value: Value) -> Reply<i64> {
    match value {
        Value::Int(n) => Ok(n),
        Value::BulkString(ref bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or_else(|| unexpected("an integer", &value), Ok),
        Value::SimpleString(ref s) => s
            .parse()
            .map_or_else(|_| unexpected("an integer", &value), Ok),
        Value::Nil => Ok(0),
        other => unexpected("an integer", &other),
    }
}

/// The message of a server error reply, if `value` is one.
pub(super) fn server_error(value: &Value) -> Option<String> {
    match value {
        Value::ServerError(error) => Some(match error.details() {
            Some(details) => format!("{} {details}", error.code()),
            None => error.code().to_string(),
        }),
        _ => None,
    }
}

/// The error code of a server error reply (`NOSCRIPT`, `LOADING`, `NOGROUP`, ...).
pub(super) fn error_code(value: &Value) -> Option<&str> {
    match value {
        Value::ServerError(error) => Some(error.code()),
        _ => None,
    }
}

/// A flat `[name, value, name, value, ...]` array as pairs.
pub(super) fn pairs(value: Value) -> Reply<Vec<(Vec<u8>, Vec<u8>)>> {
    let items = match value {
        Value::Map(entries) => {
            return entries
                .into_iter()
                .map(|(k, v)| Ok((bytes(k)?, bytes(v)?)))
                .collect()
        }
        other => array(other)?,
    };
    if items.len() % 2 != 0 {
        return Err(ReplyError("a field list of odd length".into()));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        out.push((bytes(name)?, bytes(value)?));
    }
    Ok(out)
}

/// Takes the next element of a reply array, or says which one was missing.
pub(super) fn next(items: &mut std::vec::IntoIter<Value>, what: &str) -> Reply<Value> {
    items
        .next()
        .ok_or_else(|| ReplyError(format!("a reply without its {what}")))
}
