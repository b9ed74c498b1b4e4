// Node.js side of the sharedbuf-vs-Node comparison: the protocols `benches/node_peer.rs` times
// with sharedbuf, timed here with plain Node (`worker_threads` and built-ins only).
//
//   node benches/node/protocols.mjs           # full run: one JSON object on stdout
//   node benches/node/protocols.mjs --quick   # a few tiny samples, to check it works
//
// Methodology, shared with node_peer.rs (the runner refuses figures whose plans differ):
// `warmup` samples are run and thrown away, then `samples` samples are timed; a sample is
// `batch` consecutive operations timed as a whole, divided by `batch`. A figure is the median
// of the samples, in nanoseconds per operation. Partner workers are started (and `online`)
// before the warm-up and stopped after the last sample, so only the protocol is timed, except
// in `spawn_to_exit`, where the spawn is the protocol.
//
// This file is also the partner workers' script: a worker runs it with `workerData.role` set.

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import cluster from 'node:cluster';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

// Set in a cluster worker process (this script forked): which partner it plays.
const PROCESS_ROLE = process.env.SHAREDBUF_NODE_PROCESS_ROLE;
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';

// The Atomics ping-pong turn word, as in node_peer.rs: whose turn it is.
const BENCH = 0;
const PARTNER = 1;
const QUIT = 2;

// --- partner workers ------------------------------------------------------------------------

const ROLES = {
  // Waits for its turn, hands it back, until told to quit.
  atomics({ turn }) {
    for (;;) {
      const now = Atomics.load(turn, 0);
      if (now === QUIT) return;
      if (now === PARTNER) {
        Atomics.store(turn, 0, BENCH);
        Atomics.notify(turn, 0, 1);
      } else {
        Atomics.wait(turn, 0, now);
      }
    }
  },
  // Posts every number straight back.
  echo() {
    parentPort.on('message', (n) => parentPort.postMessage(n));
  },
  // Sums `batch` numbers, posts the sum once, starts over.
  sink({ batch }) {
    let count = 0;
    let sum = 0;
    parentPort.on('message', (n) => {
      sum += n;
      if (++count === batch) {
        parentPort.postMessage(sum);
        count = 0;
        sum = 0;
      }
    });
  },
};

// --- measurement ----------------------------------------------------------------------------

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// `runBatch(n)` performs n operations and returns how long they took, in ns (may be async).
async function measure(plan, runBatch) {
  for (let i = 0; i < plan.warmup; i++) await runBatch(plan.batch);
  const perOp = [];
  for (let i = 0; i < plan.samples; i++) perOp.push((await runBatch(plan.batch)) / plan.batch);
  return { median_ns: median(perOp), ...plan };
}

const now = () => process.hrtime.bigint();
const since = (start) => Number(process.hrtime.bigint() - start);

async function partner(role, data = {}) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { role, ...data } });
  await once(worker, 'online');
  return worker;
}

// --- section "threads": worker_threads protocols ----------------------------------------------

// Main thread and one worker hand a turn back and forth through Atomics.wait / notify.
async function atomicsRoundTrip(plan) {
  const turn = new Int32Array(new SharedArrayBuffer(4));
  const worker = await partner('atomics', { turn });
  const figure = await measure(plan, (n) => {
    const start = now();
    for (let i = 0; i < n; i++) {
      Atomics.store(turn, 0, PARTNER);
      Atomics.notify(turn, 0, 1);
      while (Atomics.load(turn, 0) !== BENCH) Atomics.wait(turn, 0, PARTNER);
    }
    return since(start);
  });
  Atomics.store(turn, 0, QUIT);
  Atomics.notify(turn, 0);
  await once(worker, 'exit');
  return figure;
}

// Main posts a number, the worker posts it back, main receives it; the next post is made from
// the 'message' handler (no promise per message).
async function postMessageRoundTrip(plan) {
  const worker = await partner('echo');
  let onReply = null;
  worker.on('message', (n) => onReply(n));
  const figure = await measure(
    plan,
    (n) =>
      new Promise((resolve, reject) => {
        let sent = 0;
        const start = now();
        onReply = (echoed) => {
          if (echoed !== sent) reject(new Error(`echo: sent ${sent}, got ${echoed}`));
          else if (++sent < n) worker.postMessage(sent);
          else resolve(since(start));
        };
        worker.postMessage(sent);
      }),
  );
  await worker.terminate();
  return figure;
}

// Main posts `batch` numbers without waiting; the worker acknowledges once, with their sum.
async function postMessageOneWay(plan) {
  const worker = await partner('sink', { batch: plan.batch });
  const figure = await measure(plan, async (n) => {
    const start = now();
    const ack = once(worker, 'message');
    for (let i = 0; i < n; i++) worker.postMessage(i);
    const [sum] = await ack;
    const elapsed = since(start);
    if (sum !== (n * (n - 1)) / 2) throw new Error(`one-way: sum ${sum} for ${n} messages`);
    return elapsed;
  });
  await worker.terminate();
  return figure;
}

// `new Worker` running an empty script, until its 'exit' event.
async function spawnToExit(plan) {
  return measure(plan, async (n) => {
    const start = now();
    for (let i = 0; i < n; i++) {
      const worker = new Worker('', { eval: true });
      const [code] = await once(worker, 'exit');
      if (code !== 0) throw new Error(`empty worker exited with ${code}`);
    }
    return since(start);
  });
}

// --- section "process": cluster workers (child processes, IPC channel) -------------------------

function forkPartner(role) {
  cluster.setupPrimary({ exec: fileURLToPath(import.meta.url), args: [] });
  return cluster.fork({ SHAREDBUF_NODE_PROCESS_ROLE: role });
}

// Main sends a number to a cluster worker, which sends it back with process.send.
async function sendRoundTrip(plan) {
  const worker = forkPartner('echo');
  // 'online' comes before the worker's script has run: wait for its own "ready" (a message
  // sent before its listener exists would be dropped).
  const [ready] = await once(worker, 'message');
  if (ready !== 'ready') throw new Error(`cluster echo worker said ${ready}`);
  let onReply = null;
  worker.on('message', (n) => onReply(n));
  const figure = await measure(
    plan,
    (n) =>
      new Promise((resolve, reject) => {
        let sent = 0;
        const start = now();
        onReply = (echoed) => {
          if (echoed !== sent) reject(new Error(`echo: sent ${sent}, got ${echoed}`));
          else if (++sent < n) worker.send(sent);
          else resolve(since(start));
        };
        worker.send(sent);
      }),
  );
  worker.kill();
  await once(worker, 'exit');
  return figure;
}

// `cluster.fork()` of a worker that exits at once, until its 'exit' event.
async function forkToExit(plan) {
  return measure(plan, async (n) => {
    const start = now();
    for (let i = 0; i < n; i++) {
      const worker = forkPartner('exit');
      const [code] = await once(worker, 'exit');
      if (code !== 0) throw new Error(`empty cluster worker exited with ${code}`);
    }
    return since(start);
  });
}

// --- section "pool": Piscina -----------------------------------------------------------------

// Piscina is not a dependency of this repository: `run` installs it into a scratch folder and
// passes its package folder in SHAREDBUF_PISCINA. Without it the section is skipped.
function loadPiscina() {
  const dir = process.env.SHAREDBUF_PISCINA;
  if (!dir) return null;
  return createRequire(import.meta.url)(dir).Piscina;
}

// A pool like the sharedbuf side's: every CPU's thread started up front and kept. The warm-up
// samples also warm the workers up.
function piscinaPool(Piscina) {
  const threads = availableParallelism();
  return new Piscina({
    filename: new URL('./pool_task.mjs', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 60_000,
  });
}

// One task, its result awaited, then the next.
async function piscinaRoundTrip(plan, Piscina) {
  const pool = piscinaPool(Piscina);
  const figure = await measure(plan, async (n) => {
    const start = now();
    for (let i = 0; i < n; i++) {
      const echoed = await pool.run(i);
      if (echoed !== i) throw new Error(`pool.run(${i}) gave ${echoed}`);
    }
    return since(start);
  });
  await pool.destroy();
  return figure;
}

// `batch` tasks submitted, then all awaited; per task.
async function piscinaBulk(plan, Piscina) {
  const pool = piscinaPool(Piscina);
  const figure = await measure(plan, async (n) => {
    const start = now();
    const pending = [];
    for (let i = 0; i < n; i++) pending.push(pool.run(i));
    const results = await Promise.all(pending);
    const elapsed = since(start);
    const sum = results.reduce((a, b) => a + b, 0);
    if (sum !== (n * (n - 1)) / 2) throw new Error(`bulk: sum ${sum} for ${n} tasks`);
    return elapsed;
  });
  await pool.destroy();
  return figure;
}

// --- the plan -------------------------------------------------------------------------------

// Section → protocol key → { warmup, samples, batch, run }. node_peer.rs has the same table
// (same keys, same counts). A section with `needs` runs only if that library is available.
const SECTIONS = {
  threads: {
    atomics_round_trip: { warmup: 10, samples: 51, batch: 1000, run: atomicsRoundTrip },
    post_message_round_trip: { warmup: 10, samples: 51, batch: 1000, run: postMessageRoundTrip },
    post_message_one_way: { warmup: 10, samples: 51, batch: 1000, run: postMessageOneWay },
    spawn_to_exit: { warmup: 5, samples: 51, batch: 1, run: spawnToExit },
  },
  process: {
    send_round_trip: { warmup: 10, samples: 51, batch: 1000, run: sendRoundTrip },
    fork_to_exit: { warmup: 3, samples: 21, batch: 1, run: forkToExit },
  },
  pool: {
    needs: 'piscina',
    round_trip: { warmup: 5, samples: 51, batch: 100, run: piscinaRoundTrip },
    bulk: { warmup: 1, samples: 5, batch: 100_000, run: piscinaBulk },
  },
};

const LIBRARIES = { piscina: loadPiscina };

// --quick: enough to see every protocol work, nothing worth comparing.
const quickPlan = ({ batch }) => ({ warmup: 1, samples: 3, batch: Math.min(batch, 10) });

async function main() {
  const quick = process.argv.includes('--quick');
  const sections = {};
  for (const [section, { needs, ...protocols }] of Object.entries(SECTIONS)) {
    const library = needs ? LIBRARIES[needs]() : undefined;
    if (needs && !library) {
      process.stderr.write(`protocols.mjs: no ${needs} (benches/node/run installs it): section "${section}" skipped\n`);
      continue;
    }
    sections[section] = {};
    for (const [key, { run, ...plan }] of Object.entries(protocols)) {
      sections[section][key] = await run(quick ? quickPlan(plan) : plan, library);
    }
  }
  const report = { runtime: `node ${process.version}`, mode: quick ? 'quick' : 'bench', sections };
  process.stdout.write(JSON.stringify(report) + '\n');
}

if (PROCESS_ROLE === 'echo') {
  process.on('message', (n) => process.send(n));
  process.send('ready');
} else if (PROCESS_ROLE === 'exit') {
  process.exit(0);
} else if (isMainThread) {
  await main();
} else {
  const { role, ...data } = workerData;
  ROLES[role](data);
}
