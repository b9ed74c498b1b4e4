//! [`Backoff`]: how long a failed job waits before its next attempt (docs/semantics.md Q2).
//!
//! A backoff travels with its job (a short text field, so a consumer built from another version
//! of the code still reads it): `n` (none), `f<ms>` (fixed), `e<initial ms>:<max ms>`
//! (exponential), each with a `j` suffix when jittered.

use std::fmt;
use std::time::Duration;

use super::random;

/// The wait between a failed attempt and the next one: none, fixed, or exponential (doubling
/// from an initial delay up to a cap), each optionally jittered.
///
/// ```
/// use std::time::Duration;
/// use sharedbuf::queue::Backoff;
///
/// let b = Backoff::exponential(Duration::from_millis(100)).max(Duration::from_secs(1));
/// // after the 1st, 2nd, 3rd ... failed attempt:
/// assert_eq!(b.delay_after(1), Duration::from_millis(100));
/// assert_eq!(b.delay_after(2), Duration::from_millis(200));
/// assert_eq!(b.delay_after(4), Duration::from_millis(800));
/// assert_eq!(b.delay_after(5), Duration::from_secs(1)); // capped
///
/// let j = Backoff::fixed(Duration::from_millis(100)).jitter();
/// let d = j.delay_after(1);
/// assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[must_use = "a backoff does nothing until given to `JobOptions::backoff` or `JobQueueBuilder::reconnect_backoff`"]
pub struct Backoff {
    kind: Kind,
    jitter: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
enum Kind {
    /// Retry at once.
    #[default]
    None,
    /// The same wait after every failure (ms).
    Fixed(u64),
    /// `initial * 2^(failures - 1)`, at most `max` (ms).
    Exponential { initial: u64, max: u64 },
}

/// The default cap of an exponential backoff: one hour.
const DEFAULT_MAX_MS: u64 = 3_600_000;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Backoff {
    /// Retry at once (the default).
    pub fn none() -> Backoff {
        Backoff::default()
    }

    /// Wait `delay` after every failed attempt (whole milliseconds).
    pub fn fixed(delay: Duration) -> Backoff {
        Backoff {
            kind: Kind::Fixed(millis(delay)),
            jitter: false,
        }
    }

    /// Wait `initial` after the first failed attempt, twice as long after each next one, at
    /// most one hour (change it with [`max`](Backoff::max)).
    pub fn exponential(initial: Duration) -> Backoff {
        Backoff {
            kind: Kind::Exponential {
                initial: millis(initial),
                max: DEFAULT_MAX_MS.max(millis(initial)),
            },
            jitter: false,
        }
    }

    /// Caps an exponential backoff at `max` (no effect on the others).
    pub fn max(mut self, max: Duration) -> Backoff {
        if let Kind::Exponential { max: cap, .. } = &mut self.kind {
            *cap = millis(max);
        }
        self
    }

    /// Waits a random time between half the delay and the whole delay ("equal jitter"), so
    /// jobs that failed together (an outage) do not all come back at the same instant.
    pub fn jitter(mut self) -> Backoff {
        self.jitter = true;
        self
    }

    /// The wait after failed attempt number `failed` (1 for the first attempt). Jittered
    /// backoffs return a new random value on each call.
    pub fn delay_after(&self, failed: u32) -> Duration {
        let full = match self.kind {
            Kind::None => 0,
            Kind::Fixed(ms) => ms,
            Kind::Exponential { initial, max } => {
                let doublings = failed.saturating_sub(1).min(63);
                initial.saturating_mul(1u64 << doublings).min(max)
            }
        };
        let ms = if self.jitter {
            random::between(full / 2 + full % 2, full)
        } else {
            full
        };
        Duration::from_millis(ms)
    }

    /// The text form stored with a job.
    pub(super) fn encode(&self) -> String {
        let mut code = match self.kind {
            Kind::None => "n".to_string(),
            Kind::Fixed(ms) => format!("f{ms}"),
            Kind::Exponential { initial, max } => format!("e{initial}:{max}"),
        };
        if self.jitter {
            code.push('j');
        }
        code
    }

    /// Parses [`encode`](Backoff::encode)'s form.
    pub(super) fn decode(code: &str) -> Option<Backoff> {
        let (body, jitter) = match code.strip_suffix('j') {
            Some(body) => (body, true),
            None => (code, false),
        };
        let kind = if body == "n" {
            Kind::None
        } else if let Some(ms) = body.strip_prefix('f') {
            Kind::Fixed(ms.parse().ok()?)
        } else if let Some(rest) = body.strip_prefix('e') {
            let (initial, max) = rest.split_once(':')?;
            Kind::Exponential {
                initial: initial.parse().ok()?,
                max: max.parse().ok()?,
            }
        } else {
            return None;
        };
        Some(Backoff { kind, jitter })
    }
}

impl fmt::Display for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::None => f.write_str("none")?,
            Kind::Fixed(ms) => write!(f, "fixed {ms} ms")?,
            Kind::Exponential { initial, max } => {
                write!(f, "exponential from {initial} ms up to {max} ms")?
            }
        }
        if self.jitter {
            f.write_str(", jittered")?;
        }
        Ok(())
    }
}
