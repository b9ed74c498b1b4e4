//! The lease keeper: a thread of each consumer that renews the leases of every job the consumer
//! holds, and the consumer's name, every third of the lease (docs/semantics.md Q1).
//!
//! It runs beside the jobs, never on their threads: a job busy for an hour in a CPU loop still
//! has its lease renewed, so it is never mistaken for a stalled one (BullMQ renews locks from
//! the processor's own event loop, which a busy processor starves: bullmq#631, #3078). The
//! protocol (RENEW in `scripts.rs`) renews only entries the consumer still owns and reports the
//! others, whose tasks the dispatcher then cancels (invariants J2, J3).

use std::sync::mpsc::Sender;
use std::sync::Arc;

use redis::Value;

use super::clock::millis;
use super::delivery::EntryRef;
use super::event::Event;
use super::keys::{level_index, GROUP, LEVELS};
use super::link::{Link, LinkError};
use super::reply;
use super::scripts;
use super::shared::Shared;
use super::stats::bump;

/// Takes the consumer's name: `SET live:<name> <token> NX PX <lease>`. `Ok(false)` if another
/// live consumer holds it.
pub(super) fn acquire_name(link: &mut Link, shared: &Shared) -> Result<bool, LinkError> {
    let settings = &shared.settings;
    let command = redis::cmd("SET")
        .arg(shared.config.keys.live(&settings.name))
        .arg(&settings.token)
        .arg("NX")
        .arg("PX")
        .arg(millis(settings.lease))
        .clone();
    let started = std::time::Instant::now();
    let budget = shared.config.retry_for;
    let value = link.request(&[command], &|| started.elapsed() >= budget)?;
    Ok(!matches!(value.first(), Some(Value::Nil) | None))
}

/// The keeper's loop; `link` already holds the name. Gives the name back when told to stop.
pub(super) fn run(mut link: Link, shared: Arc<Shared>, events: Sender<Event>) {
    let interval = shared.settings.lease / 3;
    loop {
        {
            let (lock, bell) = &shared.keeper_bell;
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            if !shared.helpers_stopping() {
                drop(bell.wait_timeout(guard, interval));
            }
        }
        if shared.helpers_stopping() {
            break;
        }
        let held: Vec<EntryRef> = shared.held().iter().cloned().collect();
        match link.request(&[renew(&shared, &held)], &|| shared.helpers_stopping()) {
            Ok(mut values) => {
                bump(&shared.counters.renewals);
                match parse(values.pop().unwrap_or(Value::Nil)) {
                    Ok(Renewed::Fenced) => {
                        let _ = events.send(Event::Fenced);
                    }
                    Ok(Renewed::Lost(lost)) if !lost.is_empty() => {
                        let _ = events.send(Event::LeaseLost(lost));
                    }
                    Ok(Renewed::Lost(_)) | Err(_) => {}
                }
            }
            Err(LinkError::GaveUp { .. }) => break,
            Err(LinkError::Fatal(_)) => {} // tried again next time
        }
    }
    release_name(&mut link, &shared);
}

/// Gives the name back at once (one try: if it fails, the key expires after one lease): at
/// the keeper's end, or when its thread could not start (docs/semantics.md Q10: a failed
/// start must not keep the name taken for a whole lease).
pub(super) fn release_name(link: &mut Link, shared: &Shared) {
    let keys = &shared.config.keys;
    let live = keys.live(&shared.settings.name);
    let release = scripts::release_name().call(&[&live], &shared.settings.token);
    let _ = link.request(&[release], &|| true);
}

/// The RENEW call for `held`.
fn renew(shared: &Shared, held: &[EntryRef]) -> redis::Cmd {
    let settings = &shared.settings;
    let keys = &shared.config.keys;
    let live = keys.live(&settings.name);
    let mut per_level: [Vec<&str>; 3] = Default::default();
    for entry in held {
        per_level[level_index(entry.level)].push(&entry.id);
    }
    let mut args: Vec<String> = vec![
        GROUP.to_string(),
        settings.name.clone(),
        settings.token.clone(),
        millis(settings.lease).to_string(),
    ];
    args.extend(per_level.iter().map(|ids| ids.len().to_string()));
    args.extend(per_level.iter().flatten().map(|id| id.to_string()));
    let [high, normal, low] = &keys.streams;
    scripts::renew().call(&[high, normal, low, &live], args)
}

enum Renewed {
    Fenced,
    Lost(Vec<EntryRef>),
}

fn parse(value: Value) -> reply::Reply<Renewed> {
    let mut items = reply::array(value)?.into_iter();
    let status = reply::text(reply::next(&mut items, "status")?)?;
    if status == "fenced" {
        return Ok(Renewed::Fenced);
    }
    let mut lost = Vec::new();
    while let Some(level) = items.next() {
        let level = reply::int(level)?;
        let id = reply::text(reply::next(&mut items, "entry id")?)?;
        let level = usize::try_from(level - 1)
            .ok()
            .and_then(|l| LEVELS.get(l).copied())
            .ok_or_else(|| reply::ReplyError(format!("level {level}")))?;
        lost.push(EntryRef { level, id });
    }
    Ok(Renewed::Lost(lost))
}
