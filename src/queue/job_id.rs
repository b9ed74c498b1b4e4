//! [`JobId`]: the number that names a job in its queue. Its own file because both a
//! [`Job`](super::Job) and what adding one reports ([`Added`](super::Added)) carry it.

use std::fmt;

/// A job's id: unique in its queue, given out in the order jobs are added (from the queue's `seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
