//! The queue's protocols, each one Lua script that Redis runs atomically (no other client's
//! command runs in the middle of one, and the append-only file records each as one
//! transaction).
//!
//! # Where a job is
//!
//! At any moment a job is in exactly one of these places (**invariant J1**), and every move
//! between them is one script:
//!
//! ```text
//!   add ──► delayed set ──(due: FETCH promotes)──► level stream, waiting
//!    └──────────────────────────────────────────►        │ FETCH / RECLAIM / RECOVER
//!                                                         ▼
//!              ┌────────────── FINISH release ──── pending, leased to one consumer
//!              ▼                                   │      │        │
//!   level stream, waiting    FINISH ok: gone ◄─────┘      │        └──► FINISH dead: dead stream
//!                                       FINISH retry: delayed set or level stream (attempt + 1)
//! ```
//!
//! # Ownership and fencing
//!
//! A pending entry belongs to the consumer the group's pending list names. **Invariant J2**:
//! only that consumer may move it on — FINISH checks ownership with `XPENDING … <consumer>`
//! before it does anything and answers `lost` otherwise. So an entry is acknowledged at most
//! once, its effects committed at most once, and sending a FINISH again after a lost reply is
//! harmless (the second run finds the entry no longer pending and does nothing).
//!
//! Ownership is by consumer *name*, so two live consumers must never share one. A consumer
//! holds `live:<name>` with a random token (set when it starts, refreshed with every lease
//! renewal); every script of a consumer first checks that the key holds its token or is absent,
//! and answers `fenced` if another consumer took the name over.
//!
//! # Leases
//!
//! A consumer renews the lease of every job it holds every third of the lease (RENEW: `XCLAIM
//! … JUSTID`, which resets the entry's idle time without counting a delivery), from a thread of
//! its own — never the job's. RENEW only renews entries still owned by the renewer (it reports
//! the others as lost), so renewing cannot steal a job back. **Invariant J3**: an entry whose
//! owner is alive and reaches Redis is idle for less than a third of the lease plus a round
//! trip, so RECLAIM (`XAUTOCLAIM` with the lease as minimum idle time) only takes entries of a
//! consumer that stopped renewing: it died, hung, or lost Redis for longer than the lease.
//!
//! # Retention
//!
//! A completed entry is acknowledged, not deleted one by one (`XDEL` of one entry costs ~5 µs
//! under Redis 7.0: it walks its stream node from the start). `retire` acknowledges a call's
//! completed entries with one `XACK` and adds their number to the stream's `acked` count; once
//! that count reaches 100 it trims the stream with `XTRIM … MINID ~ <bound>`, which drops whole
//! nodes only, and takes what it dropped off the count. The bound is the newest entry just
//! acknowledged, or the group's oldest pending entry if that is older: every entry below it
//! was delivered (the group delivers in id order, and every `XADD` appends) and is not pending,
//! so it is acknowledged — trimming never removes a waiting or held job (J1). Since every
//! acknowledged entry still in the stream is counted, `waiting` = length − pending − `acked`
//! stays exact. Someone else's `XTRIM`, or the group deleted and made again (its acknowledged
//! entries delivered and counted again), leaves the count wrong; a FETCH that finds every
//! level drained sets each count to length − pending, exact then (docs/semantics.md Q11). The
//! count is a counter like `stats` (Q11): with `acked` of another type the entries are
//! acknowledged and trimmed all the same (judged by length − pending, which counts them all),
//! the count is skipped and the script's answer reports it. A job held for very long stops the
//! trimming at its entry; once 10,000 acknowledged entries wait behind it, `retire` deletes the
//! entries it acknowledges instead.
//! Entries that a failure, a release or a reclaim moves on are still deleted at once.
//!
//! # Time
//!
//! Due times are milliseconds of the Redis server's clock (`TIME`), so machines with different
//! clocks agree. A job is due at `ceil(now) + delay` and promoted once `floor(now) >= due`: it
//! never runs before its delay has passed (docs/semantics.md Q3).

use std::sync::OnceLock;

use redis::{Cmd, ToRedisArgs};

/// A script and its SHA-1 (what `EVALSHA` names it by).
pub(super) struct Script {
    pub(super) source: &'static str,
    sha: String,
}

impl Script {
    fn new(source: &'static str) -> Script {
        Script {
            source,
            sha: redis::Script::new(source).get_hash().to_string(),
        }
    }

    /// `EVALSHA` of this script with `keys` and `args`.
    pub(super) fn call<A: ToRedisArgs>(&self, keys: &[&str], args: A) -> Cmd {
        let mut cmd = self.command(keys);
        cmd.arg(args);
        cmd
    }

    /// `EVALSHA` of this script with `keys`, for the caller to append the arguments.
    pub(super) fn command(&self, keys: &[&str]) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(keys.len()).arg(keys);
        cmd
    }
}

struct Scripts {
    add: Script,
    fetch: Script,
    finish: Script,
    finish_oks: Script,
    renew: Script,
    reclaim: Script,
    recover: Script,
    release_name: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        add: Script::new(ADD),
        fetch: Script::new(FETCH),
        finish: Script::new(FINISH),
        finish_oks: Script::new(FINISH_OKS),
        renew: Script::new(RENEW),
        reclaim: Script::new(RECLAIM),
        recover: Script::new(RECOVER),
        release_name: Script::new(RELEASE_NAME),
    })
}

/// Every script (a new connection loads them all).
pub(super) fn all() -> [&'static Script; 8] {
    let s = scripts();
    [
        &s.add,
        &s.fetch,
        &s.finish,
        &s.finish_oks,
        &s.renew,
        &s.reclaim,
        &s.recover,
        &s.release_name,
    ]
}

/// ADD: new jobs (one or a batch).
pub(super) fn add() -> &'static Script {
    &scripts().add
}

/// FETCH: promote due delayed jobs, then read new jobs, highest level first.
pub(super) fn fetch() -> &'static Script {
    &scripts().fetch
}

/// FINISH: acknowledge (`ok`), retry, dead-letter or release one pending entry.
pub(super) fn finish() -> &'static Script {
    &scripts().finish
}

/// FINISH_OKS: acknowledge several pending entries of one consumer whose handlers succeeded.
pub(super) fn finish_oks() -> &'static Script {
    &scripts().finish_oks
}

/// RENEW: extend the leases of the entries a consumer holds, and its name.
pub(super) fn renew() -> &'static Script {
    &scripts().renew
}

/// RECLAIM: take entries whose lease expired.
pub(super) fn reclaim() -> &'static Script {
    &scripts().reclaim
}

/// RECOVER: a consumer's own pending entries (after a reconnect).
pub(super) fn recover() -> &'static Script {
    &scripts().recover
}

/// RELEASE_NAME: a closing consumer gives its name back.
pub(super) fn release_name() -> &'static Script {
    &scripts().release_name
}

/// Lua shared by the scripts that hand out entries: `now_ms()`, `fenced(live key, token)`,
/// `string_at(key)` (the string at `key`; `nil` if there is none, or a value of another type
/// that someone else wrote), `wrong_type(pcall reply)` (a `WRONGTYPE` error: a level stream
/// replaced by someone else, which the scripts skip so the other levels still work),
/// `done(prefix, fields)` (1 if the entry's dedupe key is already done: the consumer then
/// acknowledges it without running its handler), `field(fields, name)`, and
/// `retire(stream, acked key, group, ids)`, which acknowledges completed entries (see
/// "Retention" above).
macro_rules! lua_common {
    () => {
        r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function due_after(delay)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000) + delay
end
local function fenced(live, token)
  local holder = redis.call('GET', live)
  return holder and holder ~= token
end
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end
local function string_at(key)
  local value = redis.pcall('GET', key)
  if type(value) == 'string' then return value end
  return nil
end
local function wrong_type(reply)
  return type(reply) == 'table' and reply.err and string.sub(reply.err, 1, 9) == 'WRONGTYPE'
end
local function missing_group(reply)
  return type(reply) == 'table' and reply.err and string.sub(reply.err, 1, 7) == 'NOGROUP'
end
local function done(prefix, fields)
  local key = field(fields, 'dedupe')
  if not key then return 0 end
  local owner = string_at(prefix .. 'dedupe:' .. key)
  if owner and string.sub(owner, 1, 5) == 'done:' then return 1 end
  return 0
end
local function deliveries(stream, group, consumer, id)
  local p = redis.call('XPENDING', stream, group, id, id, 1, consumer)
  if p[1] then return tonumber(p[1][4]) end
  return 1
end
-- Counting never fails a script (Q11): a counter key of another type only loses the count;
-- the first error is kept in `stats_error` for the script's answer.
local stats_error = nil
local function count_by(stats, consumers, consumer, name, n)
  local by_queue = redis.pcall('HINCRBY', stats, name, n)
  local by_consumer = redis.pcall('HINCRBY', consumers, consumer .. '|' .. name, n)
  for _, r in ipairs({by_queue, by_consumer}) do
    if type(r) == 'table' and r.err and not stats_error then stats_error = r.err end
  end
end
local function count(stats, consumers, consumer, name)
  count_by(stats, consumers, consumer, name, 1)
end
local function id_less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
-- A count of another type (someone else's key) is left alone: it is never overwritten, and
-- stays uncounted until its owner removes it; a string that is no number is set.
local function resync(stream, acked, group)
  local length = redis.pcall('XLEN', stream)
  local summary = redis.pcall('XPENDING', stream, group)
  local now = redis.pcall('GET', acked)
  if type(length) ~= 'number' or summary.err or (type(now) == 'table' and now.err) then return end
  local kept = length - tonumber(summary[1])
  if kept < 0 then kept = 0 end
  if tonumber(now or 0) ~= kept then redis.call('SET', acked, kept) end
end
local function retire(stream, acked, group, ids)
  local n = redis.call('XACK', stream, group, unpack(ids))
  if n == 0 then return end
  -- The count is a counter like the others (Q11): a key of another type loses it, never the
  -- acknowledgement. The trimming goes on, judged by length − pending, which counts every
  -- acknowledged entry (and the waiting ones): it only ever removes acknowledged entries.
  local kept = redis.pcall('INCRBY', acked, n)
  local counted = type(kept) == 'number'
  if not counted then
    if not stats_error then stats_error = kept.err end
    kept = redis.call('XLEN', stream) - tonumber(redis.call('XPENDING', stream, group)[1])
  end
  if kept < 100 then return end
  local bound = ids[1]
  for i = 2, #ids do
    if id_less(bound, ids[i]) then bound = ids[i] end
  end
  local first = redis.call('XPENDING', stream, group, '-', '+', 1)
  if first[1] and id_less(first[1][1], bound) then bound = first[1][1] end
  local removed = redis.call('XTRIM', stream, 'MINID', '~', bound)
  if kept - removed >= 10000 then
    removed = removed + redis.call('XDEL', stream, unpack(ids))
  end
  if removed > 0 and counted then redis.call('DECRBY', acked, removed) end
end
"#
    };
}

/// Lua shared by FINISH_OKS and FETCH: `finish_oks(streams, acked keys, stats, consumers,
/// prefix, group, consumer, dedupe window ms, at)` finishes the `ok` entries listed in `ARGV`
/// from index `at` on (see FINISH_OKS) and answers one status per entry. The caller has
/// checked the fence.
macro_rules! lua_finish_oks {
    () => {
        r#"
local function owned_entries(stream, group, consumer, ids, owned)
  local lo, hi = ids[1], ids[1]
  for i = 2, #ids do
    if id_less(ids[i], lo) then lo = ids[i] end
    if id_less(hi, ids[i]) then hi = ids[i] end
  end
  local limit = #ids + 100
  local p = redis.call('XPENDING', stream, group, lo, hi, limit, consumer)
  if #p < limit then
    for _, e in ipairs(p) do owned[e[1]] = true end
  else
    for _, id in ipairs(ids) do
      if #redis.call('XPENDING', stream, group, id, id, 1, consumer) > 0 then owned[id] = true end
    end
  end
end
local function finish_oks(streams, acked, stats, consumers, prefix, group, consumer, ttl, at)
  local out = {}
  local completed, deduplicated = 0, 0
  local done_ids = {{}, {}, {}}
  -- Which entries the consumer owns (J2): one XPENDING per stream over the listed range.
  local listed, owned = {{}, {}, {}}, {{}, {}, {}}
  local scan = at
  while scan <= #ARGV do
    local ids = listed[tonumber(ARGV[scan])]
    ids[#ids + 1] = ARGV[scan + 1]
    scan = scan + 5
    for _ = 1, tonumber(ARGV[scan - 1]) do scan = scan + 1 + tonumber(ARGV[scan]) end
  end
  for level = 1, 3 do
    if #listed[level] > 0 then owned_entries(streams[level], group, consumer, listed[level], owned[level]) end
  end
  while at <= #ARGV do
    local level = tonumber(ARGV[at])
    local entry, id, dedupe = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
    local commands = tonumber(ARGV[at + 4])
    at = at + 5
    local first = at
    for _ = 1, commands do at = at + 1 + tonumber(ARGV[at]) end
    if not owned[level][entry] then
      out[#out + 1] = {'lost'}
    else
      -- Finished once per call: the same entry listed twice (two runs of it, after the group
      -- was deleted and made again, Q11) is `lost` the second time.
      owned[level][entry] = nil
      local dkey, duplicate, failed = nil, false, nil
      if dedupe ~= '' then
        dkey = prefix .. 'dedupe:' .. dedupe
        -- A key of another type fails this entry alone (a failing command would stop the
        -- script with the effects of the entries before it committed but none acknowledged).
        local owner = redis.pcall('GET', dkey)
        if type(owner) == 'table' and owner.err then
          failed = owner.err
        else
          duplicate = owner and string.sub(owner, 1, 5) == 'done:'
        end
      end
      if not duplicate and not failed then
        local c = first
        for _ = 1, commands do
          local n = tonumber(ARGV[c])
          local r = redis.pcall(unpack(ARGV, c + 1, c + n))
          if type(r) == 'table' and r.err then
            failed = r.err
            break
          end
          c = c + 1 + n
        end
      end
      if failed then
        out[#out + 1] = {'failed', failed}
      else
        if dkey and not duplicate then redis.call('SET', dkey, 'done:' .. id, 'PX', ttl) end
        local ids = done_ids[level]
        ids[#ids + 1] = entry
        completed = completed + 1
        if duplicate then
          deduplicated = deduplicated + 1
          out[#out + 1] = {'duplicate'}
        else
          out[#out + 1] = {'ok'}
        end
      end
    end
  end
  -- One XACK per stream (and a trim now and then), at the end.
  for level = 1, 3 do
    local ids = done_ids[level]
    if #ids > 0 then retire(streams[level], acked[level], group, ids) end
  end
  for name, n in pairs({completed = completed, deduplicated = deduplicated}) do
    if n > 0 then count_by(stats, consumers, consumer, name, n) end
  end
  return out
end
"#
    };
}

/// ADD — new jobs, one or a batch (Q2, Q3, Q5).
///
/// KEYS: the three level streams (high, normal, low), the delayed set, `seq`. ARGV: prefix,
/// dedupe window ms, then per job: its level (1–3), delay ms, dedupe key (`''`: none), the
/// number of entry arguments, and the entry's field/value pairs.
///
/// For each job in order: with a dedupe key that some job already owns (`pending:<id>` or
/// `done:<id>`, possibly an earlier job of the same call), adds nothing and answers `0, id`.
/// Otherwise takes the next id from `seq`, records the dedupe key as `pending:<id>` (for the
/// delay plus the dedupe window), and puts the job in the delayed set (`delay > 0`, due at
/// `ceil(now) + delay`) or at the end of its level stream; answers `1, id`. The answer is the
/// flat list of those pairs. One call pays the script, `TIME` and `seq` once for all its jobs
/// (a batch is a few hundred µs of server time at most: callers send at most 100 a call).
///
/// Ids are Lua numbers (doubles), exact up to 2^53: a call that could need one past it answers
/// an error naming `seq` and adds nothing. Keys and values name an id by its digits
/// (`string.format('%d')`): Lua's `..` keeps 14 significant ones (`1e+14`).
///
/// A call that cannot add all its jobs adds none (docs/semantics.md Q11): it reads every dedupe
/// key and checks the type of every key it will write before it writes, and answers an error
/// (`WRONGTYPE …`) if one belongs to someone else, or an error if a delayed job it would add
/// has the id of one in the delayed set (`seq` set back); a dedupe key holding a value the
/// queue did not write counts as owned, by job 0. A `delayed:<id>` key someone else left
/// where a delayed job goes is replaced (never merged into).
const ADD: &str = r#"
local prefix, ttl = ARGV[1], tonumber(ARGV[2])
local names = {'high', 'normal', 'low'}
-- Every read that can fail first, every write after: a failing command stops a script with
-- what it wrote before kept, so a key of another type (someone else's) must refuse the whole
-- call before any of its jobs is stored (`seq` is advanced at the end: stored jobs' ids would
-- be given out again).
local last = tonumber(redis.call('GET', KEYS[5]) or '0')
if not last or last < 0 or last >= 2^53 or last % 1 ~= 0 then
  return redis.error_reply('ERR ' .. KEYS[5] .. ' holds no job id the queue wrote')
end
local jobs, used = {}, {}
local at = 3
while at <= #ARGV do
  local job = {level = tonumber(ARGV[at]), delay = tonumber(ARGV[at + 1]), dedupe = ARGV[at + 2], first = at + 4}
  at = job.first + tonumber(ARGV[at + 3])
  job.last = at - 1
  if job.dedupe ~= '' then job.owner = redis.call('GET', prefix .. 'dedupe:' .. job.dedupe) end
  if job.delay > 0 then used[4] = 'zset' else used[job.level] = 'stream' end
  jobs[#jobs + 1] = job
end
-- Ids are exact up to 2^53: a call that could need one past it adds nothing (the sum
-- itself would round, hence the difference).
if last > 2^53 - #jobs then
  return redis.error_reply('ERR ' .. KEYS[5] .. ' is too close to 2^53: the job ids run out')
end
for i = 1, 4 do
  if used[i] then
    local kind = redis.call('TYPE', KEYS[i])['ok']
    if kind ~= used[i] and kind ~= 'none' then
      return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. kind .. ', not a ' .. used[i])
    end
  end
end
-- Which jobs are added, with which ids (a dedupe key an earlier job of the call claims is
-- owned). A delayed job's id that the delayed set holds already (`seq` set back) refuses the
-- call: writing its hash would merge two jobs into one.
local added = 0
local claimed = {}
for _, job in ipairs(jobs) do
  local owner = job.owner or claimed[job.dedupe]
  if job.dedupe ~= '' and owner then
    -- A value the queue did not write names no job: id 0.
    job.owned_by = tonumber(string.match(owner, '%d+$')) or 0
  else
    added = added + 1
    job.id = last + added
    -- Keys and values name an id by its digits: Lua's own conversion (`..`) keeps 14
    -- significant ones, so from 10^14 on ids would print alike (`1e+14`).
    job.digits = string.format('%d', job.id)
    if job.dedupe ~= '' then claimed[job.dedupe] = 'pending:' .. job.digits end
    if job.delay > 0 and redis.call('ZSCORE', KEYS[4], job.digits) then
      return redis.error_reply('ERR ' .. prefix .. 'delayed:' .. job.digits .. ' holds a delayed job already: ' .. KEYS[5] .. ' is behind the ids the queue gave out')
    end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_ceil = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
local out = {}
for _, job in ipairs(jobs) do
  if not job.id then
    out[#out + 1] = 0
    out[#out + 1] = job.owned_by
  else
    local id = job.id
    if job.dedupe ~= '' then
      redis.call('SET', prefix .. 'dedupe:' .. job.dedupe, 'pending:' .. job.digits, 'PX', ttl + job.delay)
    end
    -- The entry's fields straight from ARGV (no table copied per job).
    if job.delay > 0 then
      local hkey = prefix .. 'delayed:' .. job.digits
      -- No delayed job has this id (checked above): a key there is someone else's leftover,
      -- replaced rather than merged into (its fields would become the job's).
      redis.call('DEL', hkey)
      redis.call('HSET', hkey, 'job', id, 'added', now, 'level', names[job.level], unpack(ARGV, job.first, job.last))
      redis.call('ZADD', KEYS[4], now_ceil + job.delay, id)
    else
      redis.call('XADD', KEYS[job.level], '*', 'job', id, 'added', now, unpack(ARGV, job.first, job.last))
    end
    out[#out + 1] = 1
    out[#out + 1] = id
  end
end
if added > 0 then redis.call('INCRBY', KEYS[5], added) end
return out
"#;

/// FETCH — finish the round's successful jobs, promote, then read (Q1, Q3, Q5).
///
/// KEYS: the three level streams (high, normal, low), the delayed set, the consumer's live
/// key, `stats`, `consumers`, the three `acked` counts, the dead stream. ARGV: prefix, group,
/// consumer, token, count, promotion limit, dedupe window ms, then `ok` entries to finish
/// first, listed as FINISH_OKS lists them.
///
/// 0. `{'fenced'}` if another consumer holds the name. Finishes the listed entries as
///    FINISH_OKS does (the consumer sends its round's finishes with its read: one script,
///    one fence check a round).
/// 1. Moves up to `limit` due jobs from the delayed set to the end of their level streams
///    (oldest due first). One whose level stream is of another type stays delayed (tried
///    again a second later); one whose hash is of another type is dead-lettered by id
///    (docs/semantics.md Q11).
/// 2. Reads up to `count` new entries with `XREADGROUP … >`, all it can from the high stream
///    first, then normal, then low: a consumer with free slots always takes the highest level
///    waiting.
///    A read that came back short drained every level: each `acked` count is set to its
///    stream's length minus its pending entries (see "Retention").
/// 3. Answers `{'ok', ms until the next delayed job is due (-1: none), last id of each stream,
///    the finished entries' statuses (as FINISH_OKS answers them), the counting error ('' if
///    none: a count that fails is skipped, Q11), the dead-letter error ('' if none: the dead
///    stream refused a malformed delayed job, which stays delayed), entries…}`, each entry
///    `{level, id, fields, deliveries, done}` with its fields packed into one string by
///    `cmsgpack.pack` (`packed.rs`: one value to convert and parse instead of one a field).
///    A consumer that got fewer than `count` has emptied every level; it then blocks in
///    `XREAD` from those last ids, so any entry added after this script wakes it (none can
///    slip in between: the script is atomic). A FETCH
///    that got all it asked for skips the last ids and the next due time (`'0-0'`, -1): the
///    consumer fetches again at once, and those are only read when short.
const FETCH: &str = concat!(
    lua_common!(),
    lua_finish_oks!(),
    r#"
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
if fenced(KEYS[5], ARGV[4]) then return {'fenced'} end
local finished = {}
if #ARGV >= 8 then
  finished = finish_oks({KEYS[1], KEYS[2], KEYS[3]}, {KEYS[8], KEYS[9], KEYS[10]}, KEYS[6], KEYS[7], prefix, group, consumer, tonumber(ARGV[7]), 8)
end
local streams = {high = KEYS[1], normal = KEYS[2], low = KEYS[3]}
-- The first delayed job first: with none (the usual case) there is nothing to promote and
-- no clock to read.
local now = nil
local head = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local due = {}
if head[2] then
  now = now_ms()
  if tonumber(head[2]) <= now then
    due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))
  end
end
local dead_error = ''
for _, id in ipairs(due) do
  local hkey = prefix .. 'delayed:' .. id
  local flat = redis.pcall('HGETALL', hkey)
  if wrong_type(flat) then
    -- Someone else's key took the job's place: its fields are gone. Its id goes to the dead
    -- stream with why (the key is left alone); if that fails too, it is tried again later.
    local why = 'malformed delayed job: ' .. hkey .. ' is not a hash'
    local dead = redis.pcall('XADD', KEYS[11], '*', 'job', id, 'error', why, 'consumer', consumer, 'failed', now)
    if wrong_type(dead) then
      dead_error = dead.err
      redis.call('ZADD', KEYS[4], now + 1000, id)
    elseif dead.err then
      return dead
    else
      redis.call('ZREM', KEYS[4], id)
      count(KEYS[6], KEYS[7], consumer, 'failed')
      count(KEYS[6], KEYS[7], consumer, 'dead')
    end
  elseif flat.err then
    return flat
  else
    local fields, level = {}, 'normal'
    for i = 1, #flat, 2 do
      if flat[i] == 'level' then level = flat[i + 1]
      else
        fields[#fields + 1] = flat[i]
        fields[#fields + 1] = flat[i + 1]
      end
    end
    local added = true
    if #fields > 0 then added = redis.pcall('XADD', streams[level] or KEYS[2], '*', unpack(fields)) end
    if wrong_type(added) then
      -- Its level's key is someone else's: it stays delayed, and is tried again in a second.
      redis.call('ZADD', KEYS[4], now + 1000, id)
    elseif type(added) == 'table' and added.err then
      return added
    else
      redis.call('DEL', hkey)
      redis.call('ZREM', KEYS[4], id)
    end
  end
end
local out = {'ok', -1, '0-0', '0-0', '0-0', finished, stats_error or '', dead_error}
local want = tonumber(ARGV[5])
for level = 1, 3 do
  -- An empty level (the state of one never used, or trimmed empty) is skipped with XLEN, a
  -- tenth of an empty XREADGROUP's cost.
  -- A level whose key is someone else's (WRONGTYPE) is skipped: the others still serve.
  local length = 0
  if want > 0 then length = redis.pcall('XLEN', KEYS[level]) end
  if type(length) == 'number' and length > 0 then
    local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want, 'STREAMS', KEYS[level], '>')
    if r then
      for _, e in ipairs(r[1][2]) do
        out[#out + 1] = {level, e[1], cmsgpack.pack(e[2]), 1, done(prefix, e[2])}
        want = want - 1
      end
    end
  end
end
if want > 0 then
  -- Short: every level is drained, so each entry still in a stream is pending or
  -- acknowledged, and its `acked` count is its length minus its pending entries. Set so, it
  -- is right again after an `XTRIM` or a group made again had left it wrong (Q11).
  for level = 1, 3 do resync(KEYS[level], KEYS[7 + level], group) end
end
if want > 0 or tonumber(ARGV[5]) == 0 then
  -- Short (or a poll that asked for nothing): the consumer will wait, from these ids and
  -- until the next due job.
  for level = 1, 3 do
    local last = redis.pcall('XREVRANGE', KEYS[level], '+', '-', 'COUNT', 1)
    if last[1] then out[2 + level] = last[1][1] end
  end
  local nxt = head
  if #due > 0 then nxt = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES') end
  if nxt[2] then
    local wait = tonumber(nxt[2]) - now
    if wait < 0 then wait = 0 end
    out[2] = wait
  end
end
return out
"#
);

/// FINISH — the end of one attempt (Q1, Q2, Q4, Q5).
///
/// KEYS: the entry's level stream, the consumer's live key, the delayed set, the dead stream,
/// `stats`, `consumers`, the level's `acked` count. ARGV: prefix, group, consumer, token,
/// entry id, mode, job id, dedupe key (`''`), dedupe window ms, retry delay ms, error, level
/// name, then the effects (their count, then per command its argument count and arguments).
///
/// First `fenced` / `lost` unless the consumer still owns the entry (J2). Then by mode:
/// - `ok`: unless the dedupe key is already `done:`, runs the effects and marks the key
///   `done:<id>` for the dedupe window; acknowledges (retires) the entry; counts `completed`
///   (and `deduplicated` when the effects were skipped).
/// - `retry`: acknowledges and deletes the entry, and adds the job again with `attempt + 1`
///   and the error — to the delayed set when there is a delay (replacing a `delayed:<id>` key
///   someone else left), else, or when another delayed job has its id, to the end of its
///   stream; counts `failed` and `retried`.
/// - `dead`: acknowledges and deletes the entry, adds it with its error to the dead stream,
///   frees its dedupe key if the job still holds it as pending (a malformed entry's job id
///   and dedupe key are read from its fields); counts `failed` and `dead`.
/// - `release`: acknowledges and deletes the entry and adds it unchanged to the end of its
///   stream (a closing consumer gives back a job it did not finish: no attempt is counted);
///   counts `released`.
///
/// Answers `{status}`, or `{status, error}` when a count failed (`stats` or `consumers` of
/// another type, Q11): the counts come last and never undo or stop the move.
const FINISH: &str = concat!(
    lua_common!(),
    r#"
local prefix, group, consumer, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local mode, id = ARGV[6], ARGV[7]
if fenced(KEYS[2], ARGV[4]) then return {'fenced'} end
if #redis.call('XPENDING', KEYS[1], group, entry, entry, 1, consumer) == 0 then return {'lost'} end
local function forget()
  redis.call('XACK', KEYS[1], group, entry)
  redis.call('XDEL', KEYS[1], entry)
end
local function counted(name) count(KEYS[5], KEYS[6], consumer, name) end
local function answer(status) return {status, stats_error} end
if mode == 'ok' then
  local dkey = nil
  local duplicate = false
  if ARGV[8] ~= '' then
    dkey = prefix .. 'dedupe:' .. ARGV[8]
    local owner = redis.call('GET', dkey)
    duplicate = owner and string.sub(owner, 1, 5) == 'done:'
  end
  if not duplicate then
    local at = 14
    for _ = 1, tonumber(ARGV[13]) do
      local n = tonumber(ARGV[at])
      redis.call(unpack(ARGV, at + 1, at + n))
      at = at + 1 + n
    end
    if dkey then redis.call('SET', dkey, 'done:' .. id, 'PX', tonumber(ARGV[9])) end
  end
  retire(KEYS[1], KEYS[7], group, {entry})
  counted('completed')
  if duplicate then
    counted('deduplicated')
    return answer('duplicate')
  end
  return answer('ok')
end
local found = redis.call('XRANGE', KEYS[1], entry, entry)
if #found == 0 then
  forget()
  return {'gone'}
end
local flat = found[1][2]
-- The job's next place is written before its entry is deleted, and counted last: a command
-- that fails (a key of another type, written by someone else) stops the script, and what ran
-- before it stays, so nothing may be deleted before the job is stored again.
if mode == 'release' then
  redis.call('XADD', KEYS[1], '*', unpack(flat))
  forget()
  counted('released')
  return answer('released')
end
local fields, attempt = {}, 1
for i = 1, #flat, 2 do
  local name = flat[i]
  if name == 'attempt' then attempt = tonumber(flat[i + 1]) or 1
  elseif name ~= 'error' then
    fields[#fields + 1] = name
    fields[#fields + 1] = flat[i + 1]
  end
end
if mode == 'retry' and id ~= '' then
  fields[#fields + 1] = 'attempt'
  fields[#fields + 1] = attempt + 1
  fields[#fields + 1] = 'error'
  fields[#fields + 1] = ARGV[11]
  local delay = tonumber(ARGV[10])
  -- Another delayed job with this id (ids repeated: `seq` set back, or an entry another
  -- program wrote) keeps its place: this attempt goes to the end of its stream at once.
  if delay > 0 and not redis.call('ZSCORE', KEYS[3], id) then
    local hkey = prefix .. 'delayed:' .. id
    fields[#fields + 1] = 'level'
    fields[#fields + 1] = ARGV[12]
    -- A key there is someone else's leftover: replaced, not merged into.
    redis.call('DEL', hkey)
    redis.call('HSET', hkey, unpack(fields))
    redis.call('ZADD', KEYS[3], due_after(delay), id)
  else
    redis.call('XADD', KEYS[1], '*', unpack(fields))
  end
  forget()
  counted('failed')
  counted('retried')
  return answer('retried')
end
fields[#fields + 1] = 'attempt'
fields[#fields + 1] = attempt
fields[#fields + 1] = 'error'
fields[#fields + 1] = ARGV[11]
fields[#fields + 1] = 'consumer'
fields[#fields + 1] = consumer
fields[#fields + 1] = 'failed'
fields[#fields + 1] = now_ms()
redis.call('XADD', KEYS[4], '*', unpack(fields))
forget()
-- A malformed entry's finish carries no job (id and dedupe key ''): read them from the entry.
local dedupe, owner = ARGV[8], id
if dedupe == '' then dedupe, owner = field(flat, 'dedupe'), field(flat, 'job') end
if dedupe and owner then
  local dkey = prefix .. 'dedupe:' .. dedupe
  if string_at(dkey) == 'pending:' .. owner then redis.call('DEL', dkey) end
end
counted('failed')
counted('dead')
return answer('dead')
"#
);

/// FINISH_OKS — several `ok` FINISHes of one consumer in one call (Q1, Q5): what a busy
/// consumer sends most, so it pays the script call, the fence check and the counters once per
/// round instead of once per job.
///
/// KEYS: the three level streams (high, normal, low), the consumer's live key, `stats`,
/// `consumers`, the three `acked` counts. ARGV: prefix, group, consumer, token, dedupe window
/// ms, then per entry: its level (1–3), entry id, job id, dedupe key (`''`), and its effects
/// (as FINISH's).
///
/// `{'fenced'}` if another consumer holds the name. Otherwise, for each entry in order, what
/// FINISH `ok` does — `{'lost'}` unless the consumer still owns it (J2); unless its dedupe key
/// is done, runs its effects and marks the key done; acknowledges it — and answers `{'ok',
/// counting error ('' if none), statuses}` with one status per entry: `{'ok'}`, `{'duplicate'}`, `{'lost'}`, or `{'failed', error}` when one of its
/// effects failed (the entry stays pending and unacknowledged; effects before the failing one
/// ran, as in FINISH). The acknowledgements are made at the end, one `retire` (one `XACK`) per
/// stream, and the counters added once.
const FINISH_OKS: &str = concat!(
    lua_common!(),
    lua_finish_oks!(),
    r#"
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
if fenced(KEYS[4], ARGV[4]) then return {'fenced'} end
local out = finish_oks({KEYS[1], KEYS[2], KEYS[3]}, {KEYS[7], KEYS[8], KEYS[9]}, KEYS[5], KEYS[6], prefix, group, consumer, tonumber(ARGV[5]), 6)
return {'ok', stats_error or '', out}
"#
);

/// RENEW — leases and name (Q1).
///
/// KEYS: the three level streams, the consumer's live key. ARGV: group, consumer, token, lease
/// ms, the number of ids for each level, then the ids.
///
/// `fenced` if another consumer holds the name; else sets the name's key to the token for one
/// lease, and resets the idle time of every listed entry the consumer still owns (`XCLAIM …
/// JUSTID`: no delivery is counted). Answers `{'ok', level, id, level, id, …}` listing the
/// entries it no longer owns (they were reclaimed, J3): the consumer cancels their tasks and
/// will not finish them.
const RENEW: &str = concat!(
    lua_common!(),
    r#"
local group, consumer = ARGV[1], ARGV[2]
if fenced(KEYS[4], ARGV[3]) then return {'fenced'} end
redis.call('SET', KEYS[4], ARGV[3], 'PX', tonumber(ARGV[4]))
local out = {'ok'}
local at = 8
for level = 1, 3 do
  local n = tonumber(ARGV[4 + level])
  local claim = {KEYS[level], group, consumer, 0}
  for i = at, at + n - 1 do
    local id = ARGV[i]
    -- An error (the stream replaced by another type, or its group deleted) owns nothing.
    local p = redis.pcall('XPENDING', KEYS[level], group, id, id, 1, consumer)
    if not p.err and #p > 0 then
      claim[#claim + 1] = id
    else
      out[#out + 1] = level
      out[#out + 1] = id
    end
  end
  at = at + n
  if #claim > 4 then
    claim[#claim + 1] = 'JUSTID'
    redis.call('XCLAIM', unpack(claim))
  end
end
return out
"#
);

/// RECLAIM — jobs of consumers that stopped renewing (Q1).
///
/// KEYS: the three level streams, the consumer's live key, the dead stream, `stats`,
/// `consumers`. ARGV: prefix, group, consumer, token, lease ms, count, most deliveries, then a
/// scan cursor per level.
///
/// For each level while fewer than `count` were taken: `XAUTOCLAIM` entries idle for at least a
/// lease (J3). An entry now delivered more than `most deliveries` times (its consumers keep
/// dying on it) goes to the dead stream with the error `stalled`; the others are handed out.
/// Answers `{'ok', next cursor per level, counting error ('' if none), dead-letter error (''
/// if none), missing-group error ('' if none), entries…}` like FETCH (the fields as a flat
/// list). Counts `reclaimed`, after the entry is moved. A stalled entry the dead stream
/// refuses (a key of another type, Q11) is left pending for this consumer, which does not run
/// it: it is tried again once its lease expires, and the scan goes on with the others. A
/// level whose group is gone (`NOGROUP`) is skipped and named in the missing-group error (the
/// consumer makes the groups again); the entries claimed from the other levels are answered.
const RECLAIM: &str = concat!(
    lua_common!(),
    r#"
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
if fenced(KEYS[4], ARGV[4]) then return {'fenced'} end
local out = {'ok', ARGV[8], ARGV[9], ARGV[10], '', '', ''}
local dead_error = nil
local group_error = nil
local want = tonumber(ARGV[6])
local most = tonumber(ARGV[7])
for level = 1, 3 do
  if want > 0 then
    local r = redis.pcall('XAUTOCLAIM', KEYS[level], group, consumer, tonumber(ARGV[5]), ARGV[7 + level], 'COUNT', want)
    if wrong_type(r) then r = {ARGV[7 + level], {}}
    elseif missing_group(r) then
      -- The level's group is gone (Q11): the consumer makes it again, and its scan starts
      -- over; the entries claimed from the other levels are still handed out.
      if not group_error then group_error = r.err end
      r = {'0-0', {}}
    elseif r.err then return r end
    out[1 + level] = r[1]
    for _, e in ipairs(r[2]) do
      if type(e) == 'table' and type(e[2]) == 'table' then
        local n = deliveries(KEYS[level], group, consumer, e[1])
        if n > most then
          local fields = {}
          for i = 1, #e[2], 2 do
            if e[2][i] ~= 'error' then
              fields[#fields + 1] = e[2][i]
              fields[#fields + 1] = e[2][i + 1]
            end
          end
          fields[#fields + 1] = 'error'
          fields[#fields + 1] = 'stalled: delivered ' .. n .. ' times, and every consumer stopped renewing its lease'
          fields[#fields + 1] = 'consumer'
          fields[#fields + 1] = consumer
          fields[#fields + 1] = 'failed'
          fields[#fields + 1] = now_ms()
          local moved = redis.pcall('XADD', KEYS[5], '*', unpack(fields))
          if type(moved) == 'table' and moved.err then
            -- The dead stream is someone else's key (Q11): the job stays where it is, pending
            -- for this consumer that does not run it, and is tried again once its lease
            -- expires; the others go on.
            if not dead_error then dead_error = moved.err end
          else
            redis.call('XACK', KEYS[level], group, e[1])
            redis.call('XDEL', KEYS[level], e[1])
            local key, id = field(e[2], 'dedupe'), field(e[2], 'job')
            if key and id and string_at(prefix .. 'dedupe:' .. key) == 'pending:' .. id then
              redis.call('DEL', prefix .. 'dedupe:' .. key)
            end
            count(KEYS[6], KEYS[7], consumer, 'reclaimed')
            count(KEYS[6], KEYS[7], consumer, 'failed')
            count(KEYS[6], KEYS[7], consumer, 'dead')
          end
        else
          out[#out + 1] = {level, e[1], e[2], n, done(prefix, e[2])}
          want = want - 1
          count(KEYS[6], KEYS[7], consumer, 'reclaimed')
        end
      elseif type(e) == 'table' then
        redis.call('XACK', KEYS[level], group, e[1])
      elseif type(e) == 'string' then
        redis.call('XACK', KEYS[level], group, e)
      end
    end
  end
end
out[5] = stats_error or ''
out[6] = dead_error or ''
out[7] = group_error or ''
return out
"#
);

/// RECOVER — a consumer's own pending entries (Q6).
///
/// KEYS: the three level streams, the consumer's live key. ARGV: prefix, group, consumer,
/// token, most deliveries.
///
/// Reads the consumer's pending list (`XREADGROUP … 0`): after a reconnect, the entries a
/// lost reply delivered without the consumer knowing. Entries deleted meanwhile are
/// acknowledged. An entry delivered more than `most deliveries` times (reading the list counts
/// one more) is not handed out: it is a stalled job RECLAIM could not dead-letter (its dead
/// stream refused it, Q11), or one whose consumers kept dying on it; RECLAIM dead-letters it
/// once its lease expires. Answers `{'ok', entries…}` like FETCH (the fields as a flat list);
/// the consumer keeps those it does not already hold.
const RECOVER: &str = concat!(
    lua_common!(),
    r#"
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
if fenced(KEYS[4], ARGV[4]) then return {'fenced'} end
local most = tonumber(ARGV[5])
local out = {'ok'}
for level = 1, 3 do
  local r = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'STREAMS', KEYS[level], '0')
  if wrong_type(r) then r = false
  elseif type(r) == 'table' and r.err then return r end
  if r then
    for _, e in ipairs(r[1][2]) do
      if type(e[2]) == 'table' then
        local n = deliveries(KEYS[level], group, consumer, e[1])
        if n <= most then out[#out + 1] = {level, e[1], e[2], n, done(prefix, e[2])} end
      else
        redis.call('XACK', KEYS[level], group, e[1])
      end
    end
  end
end
return out
"#
);

/// RELEASE_NAME — KEYS: the live key; ARGV: the token. Deletes the key if it holds the token.
const RELEASE_NAME: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"#;
