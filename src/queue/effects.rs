//! [`Effects`]: Redis commands a handler returns, committed in the same atomic script that
//! acknowledges its job — so they happen once per job, and once per dedupe key
//! (docs/semantics.md Q5).
//!
//! Why this exists: a handler's side effects and the job's acknowledgement are two steps, and a
//! consumer can die between them; the job is then delivered again and the effects repeat.
//! Effects kept in Redis can be committed together with the acknowledgement instead: the finish
//! script runs them only while this consumer still owns the job (its lease) and only if the job's
//! dedupe key is not already done, and Redis runs a script all or nothing with respect to other
//! clients (and its append-only file records it as one transaction). Effects outside Redis use
//! [`Job::dedupe_key`](super::Job::dedupe_key) as their own idempotency key.

use std::fmt;

use redis::{Arg, Cmd};

/// Redis commands committed with a job's acknowledgement, once (see the module docs).
///
/// ```
/// use sharedbuf::queue::{redis, Effects};
///
/// let effects = Effects::new()
///     .command(redis::cmd("HINCRBY").arg("totals").arg("eur").arg(125))
///     .command(redis::cmd("RPUSH").arg("audit").arg("invoice 7781 paid"));
/// assert_eq!(effects.len(), 2);
/// ```
///
/// A command that fails when it runs (a wrong type) makes the attempt fail; Redis does not roll
/// back the effects before it, so keep them to commands that cannot fail on your keys. Keys
/// named by effects are not declared to the script: fine on a single server, not on a cluster.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Effects {
    commands: Vec<Vec<Vec<u8>>>,
}

impl Effects {
    /// No effects.
    pub fn new() -> Effects {
        Effects::default()
    }

    /// Adds `command` (built with [`redis::cmd`](fn@redis::cmd)) to run with the acknowledgement,
    /// after the ones added before it.
    #[must_use = "`command` returns the effects with the command added; `push` adds in place"]
    pub fn command(mut self, command: &Cmd) -> Effects {
        self.push(command);
        self
    }

    /// Adds `command` in place.
    pub fn push(&mut self, command: &Cmd) {
        let args = command
            .args_iter()
            .map(|arg| match arg {
                Arg::Simple(bytes) => bytes.to_vec(),
                Arg::Cursor => b"0".to_vec(),
            })
            .collect::<Vec<_>>();
        if !args.is_empty() {
            self.commands.push(args);
        }
    }

    /// The number of commands.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The script arguments: the number of commands, then each command's argument count and
    /// arguments.
    pub(super) fn script_args(&self) -> Vec<Vec<u8>> {
        let mut out = vec![self.commands.len().to_string().into_bytes()];
        for command in &self.commands {
            out.push(command.len().to_string().into_bytes());
            out.extend(command.iter().cloned());
        }
        out
    }
}

impl From<()> for Effects {
    fn from((): ()) -> Effects {
        Effects::new()
    }
}

impl fmt::Debug for Effects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .commands
            .iter()
            .map(|c| String::from_utf8_lossy(&c[0]).into_owned())
            .collect();
        f.debug_struct("Effects").field("commands", &names).finish()
    }
}
