//! How a child process finds the code it runs: [`Entry`] names a plain `fn`, [`init`] is given
//! the program's entries at the start of `main`, and the name crosses `exec` in an environment
//! variable.
//!
//! A child is this same executable started again. A closure or a function pointer cannot cross
//! `exec` (the new process has its own address space, laid out anew), so the parent passes a
//! *name*; the child's `main` calls [`init`] first with the same list of entries the parent
//! has, finds the name there and runs that function instead of the rest of `main`. A name is
//! plain data, so nothing unsafe depends on the two processes agreeing: a name the child does
//! not know is reported as the worker's `Error`, and the parent refuses at spawn a name its
//! own [`init`] was not given (which also catches a program that forgot to call [`init`] —
//! without it, a child would run the parent's `main` again).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::sync::OnceLock;

use super::child::{self, Start};
use super::context::ProcessContext;
use super::payload::Payload;
use crate::error::Error;
use crate::worker::IntoExitCode;

/// A process worker's entry point: a name and a function that takes the child's
/// [`ProcessContext`] and returns what a thread worker's closure may return (`()`, an `i32`
/// exit code, or a `Result` whose `Err` is the worker's `Error`).
///
/// Declare entries as `static`s and give every one to [`init`]:
///
/// ```
/// use sharedbuf::process::{Entry, ProcessContext};
/// use sharedbuf::Error;
///
/// fn double(ctx: ProcessContext<u64, u64>) -> Result<(), Error> {
///     let n = ctx.recv()?;
///     ctx.post_message(&(2 * n))
/// }
///
/// static DOUBLE: Entry<u64, u64> = Entry::new("double", double);
/// ```
pub struct Entry<In, Out, R = Result<(), Error>> {
    name: &'static str,
    run: fn(ProcessContext<In, Out>) -> R,
}

impl<In, Out, R> fmt::Debug for Entry<In, Out, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<In, Out, R> Entry<In, Out, R> {
    /// The entry `name` (unique in the program) running `run`.
    pub const fn new(name: &'static str, run: fn(ProcessContext<In, Out>) -> R) -> Self {
        Entry { name, run }
    }

    /// The entry's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// An [`Entry`] of any message types, as [`init`] takes them. Implemented by [`Entry`] only.
pub trait EntryPoint: Sync + sealed::RunInChild {
    /// The entry's name.
    fn entry_name(&self) -> &'static str;
}

mod sealed {
    /// How the child runs an entry: hidden, so that only [`Entry`](super::Entry) implements
    /// [`EntryPoint`](super::EntryPoint).
    pub trait RunInChild {
        fn run_in_child(&self, start: super::Start) -> i32;
    }
}

impl<In, Out, R> EntryPoint for Entry<In, Out, R>
where
    In: Payload,
    Out: Payload,
    R: IntoExitCode,
{
    fn entry_name(&self) -> &'static str {
        self.name
    }
}

impl<In, Out, R> sealed::RunInChild for Entry<In, Out, R>
where
    In: Payload,
    Out: Payload,
    R: IntoExitCode,
{
    fn run_in_child(&self, start: Start) -> i32 {
        child::run_entry(self.run, start)
    }
}

/// The entry names [`init`] was given in this process.
static REGISTERED: OnceLock<HashSet<&'static str>> = OnceLock::new();

/// Whether [`init`] was called in this process with an entry named `name`: `Err` explaining
/// what is missing otherwise.
pub(super) fn check_registered(name: &str) -> Result<(), Error> {
    let Some(names) = REGISTERED.get() else {
        return Err(Error::SpawnFailed {
            reason: "sharedbuf::process::init was not called at the start of main (the child \
                     would run main again)"
                .into(),
        });
    };
    if !names.contains(name) {
        return Err(Error::SpawnFailed {
            reason: format!("the entry {name:?} was not given to sharedbuf::process::init"),
        });
    }
    Ok(())
}

/// Call first thing in `main`, with every [`Entry`] the program spawns. In the program
/// started by a user this records the entries and returns. In a process worker's child it
/// runs the entry the parent named and **exits the process** when it returns: the rest of
/// `main` never runs there.
///
/// Call it before starting any thread (the child sets its signal mask here, which threads
/// started before would not share). Calling it again does nothing. Entry names must be unique:
/// a duplicate panics, as a programming error.
///
/// ```no_run
/// use sharedbuf::process::{self, Entry, ProcessContext};
///
/// fn hello(ctx: ProcessContext<(), String>) -> Result<(), sharedbuf::Error> {
///     ctx.post_message(&format!("hello from {}", std::process::id()))
/// }
/// static HELLO: Entry<(), String> = Entry::new("hello", hello);
///
/// fn main() {
///     process::init(&[&HELLO]);
///     // Only the parent gets here.
/// }
/// ```
pub fn init(entries: &[&dyn EntryPoint]) {
    let mut names = HashSet::new();
    for entry in entries {
        assert!(
            names.insert(entry.entry_name()),
            "sharedbuf::process::init: two entries are named {:?}",
            entry.entry_name()
        );
    }
    let _ = REGISTERED.set(names);
    let Some(start) = child::take_start() else {
        return; // not a process worker: the program runs as usual
    };
    let code = dispatch(entries, start);
    std::process::exit(code)
}

/// Runs the entry the parent named; a name we do not know is the worker's `Error`.
fn dispatch(entries: &[&dyn EntryPoint], start: Start) -> i32 {
    let wanted: &OsString = start.entry();
    match entries.iter().find(|e| wanted == e.entry_name()) {
        Some(entry) => entry.run_in_child(start),
        None => {
            let message = format!(
                "this program has no process entry named {wanted:?} (give it to \
                 sharedbuf::process::init)"
            );
            child::fail_before_entry(start, message)
        }
    }
}
