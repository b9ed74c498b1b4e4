//! [`Finish`]: how one attempt ends, and the FINISH script call that records it.

use std::time::Duration;

use redis::Cmd;

use super::delivery::EntryRef;
use super::effects::Effects;
use super::job::JobMeta;
use super::keys::{self, GROUP};
use super::scripts;
use super::shared::Shared;

/// What FINISH does with the entry (see `scripts.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Acknowledge, committing the effects.
    Ok,
    /// Schedule the next attempt after `delay`.
    Retry,
    /// Move to the dead-letter stream.
    Dead,
    /// Give back unchanged (closing).
    Release,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Ok => "ok",
            Mode::Retry => "retry",
            Mode::Dead => "dead",
            Mode::Release => "release",
        }
    }
}

/// One FINISH_OKS call for `finishes`, all of mode [`Mode::Ok`] with their job's meta (see
/// `scripts.rs`).
pub(super) fn oks_command(finishes: &[Finish], shared: &Shared) -> Cmd {
    let keys = &shared.config.keys;
    let live = keys.live(&shared.settings.name);
    let ttl = super::clock::millis(shared.config.dedupe_ttl);
    let mut args: Vec<Vec<u8>> = vec![
        keys.prefix.clone().into_bytes(),
        GROUP.as_bytes().to_vec(),
        shared.settings.name.clone().into_bytes(),
        shared.settings.token.clone().into_bytes(),
        ttl.to_string().into_bytes(),
    ];
    push_oks(finishes, &mut args);
    let [high, normal, low] = &keys.streams;
    let [acked_high, acked_normal, acked_low] = &keys.acked;
    scripts::finish_oks().call(
        &[
            high,
            normal,
            low,
            &live,
            &keys.stats,
            &keys.consumers,
            acked_high,
            acked_normal,
            acked_low,
        ],
        args,
    )
}

/// Appends `finishes` (all of mode [`Mode::Ok`]) to `args` as FINISH_OKS and FETCH list
/// them: per entry its level (1–3), entry id, job id, dedupe key (`''`), and its effects.
pub(super) fn push_oks(finishes: &[Finish], args: &mut Vec<Vec<u8>>) {
    for finish in finishes {
        debug_assert_eq!(finish.mode, Mode::Ok);
        let (id, dedupe) = match &finish.meta {
            Some(meta) => (meta.id.to_string(), meta.dedupe.clone().unwrap_or_default()),
            None => (String::new(), String::new()),
        };
        args.push(
            (keys::level_index(finish.entry.level) + 1)
                .to_string()
                .into_bytes(),
        );
        args.push(finish.entry.id.clone().into_bytes());
        args.push(id.into_bytes());
        args.push(dedupe.into_bytes());
        args.extend(finish.effects.script_args());
    }
}

/// The end of one attempt, waiting to be sent.
#[derive(Debug)]
pub(super) struct Finish {
    pub(super) entry: EntryRef,
    pub(super) mode: Mode,
    /// `None` for an entry that is not a job (malformed).
    pub(super) meta: Option<JobMeta>,
    pub(super) error: String,
    pub(super) delay: Duration,
    pub(super) effects: Effects,
}

impl Finish {
    /// The job succeeded: acknowledge it with `effects`.
    pub(super) fn ok(entry: EntryRef, meta: JobMeta, effects: Effects) -> Finish {
        Finish {
            entry,
            mode: Mode::Ok,
            meta: Some(meta),
            error: String::new(),
            delay: Duration::ZERO,
            effects,
        }
    }

    /// The attempt failed with `error`: retry after the job's backoff while attempts remain
    /// and the error is not permanent, else dead-letter (docs/semantics.md Q2, Q4).
    pub(super) fn failed(entry: EntryRef, meta: JobMeta, error: String, permanent: bool) -> Finish {
        let last = permanent || meta.attempt >= meta.attempts;
        let delay = if last {
            Duration::ZERO
        } else {
            meta.backoff.delay_after(meta.attempt)
        };
        Finish {
            entry,
            mode: if last { Mode::Dead } else { Mode::Retry },
            meta: Some(meta),
            error,
            delay,
            effects: Effects::new(),
        }
    }

    /// An entry that is not a job: dead-letter it with `error`.
    pub(super) fn malformed(entry: EntryRef, error: String) -> Finish {
        Finish {
            entry,
            mode: Mode::Dead,
            meta: None,
            error,
            delay: Duration::ZERO,
            effects: Effects::new(),
        }
    }

    /// Give the entry back unchanged.
    pub(super) fn release(entry: EntryRef, meta: Option<JobMeta>) -> Finish {
        Finish {
            entry,
            mode: Mode::Release,
            meta,
            error: String::new(),
            delay: Duration::ZERO,
            effects: Effects::new(),
        }
    }

    /// The FINISH call for this attempt.
    pub(super) fn command(&self, shared: &Shared) -> Cmd {
        let keys = &shared.config.keys;
        let live = keys.live(&shared.settings.name);
        let ms = |d: Duration| super::clock::millis(d).to_string();
        let (id, dedupe) = match &self.meta {
            Some(meta) => (meta.id.to_string(), meta.dedupe.clone().unwrap_or_default()),
            None => (String::new(), String::new()),
        };
        let mut args: Vec<Vec<u8>> = vec![
            keys.prefix.clone().into_bytes(),
            GROUP.as_bytes().to_vec(),
            shared.settings.name.clone().into_bytes(),
            shared.settings.token.clone().into_bytes(),
            self.entry.id.clone().into_bytes(),
            self.mode.name().as_bytes().to_vec(),
            id.into_bytes(),
            dedupe.into_bytes(),
            ms(shared.config.dedupe_ttl).into_bytes(),
            ms(self.delay).into_bytes(),
            self.error.clone().into_bytes(),
            keys::level_name(self.entry.level).as_bytes().to_vec(),
        ];
        args.extend(self.effects.script_args());
        scripts::finish().call(
            &[
                keys.stream(self.entry.level),
                &live,
                &keys.delayed,
                &keys.dead,
                &keys.stats,
                &keys.consumers,
                keys.acked(self.entry.level),
            ],
            args,
        )
    }
}
