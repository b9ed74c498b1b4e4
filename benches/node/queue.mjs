// BullMQ's side of `benches/node/queue-run`: the protocol benches/queue.rs times for sharedbuf's
// queue, with BullMQ. A producer adds QUEUE_PEER_JOBS jobs (default 20,000) with `addBulk` in
// chunks of 100, one Worker with an empty async processor at concurrency 1, then 8, counts its
// 'completed' events; the clock runs from the first add to the last completion. A warm-up of a
// tenth as many jobs goes first. Jobs are removed on completion (sharedbuf's queue deletes
// finished entries too). Prints one JSON object of jobs/s.
//
// Run from a folder where `bullmq` is installed (queue-run copies it there):
//   QUEUE_PEER_URL=redis://127.0.0.1:6379 node queue.mjs
import { Queue, Worker } from 'bullmq';

const url = new URL(process.env.QUEUE_PEER_URL ?? 'redis://127.0.0.1:6379');
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const jobs = Number(process.env.QUEUE_PEER_JOBS ?? 20000);
const CHUNK = 100;
const payload = { p: '0123456789abcdef' };

async function measure(concurrency) {
  const name = `bullmq-peer-${process.pid}-${concurrency}`;
  const queue = new Queue(name, { connection });
  let completed = 0;
  let target = 0;
  let done = null;
  const worker = new Worker(name, async () => {}, { connection, concurrency });
  worker.on('completed', () => {
    completed += 1;
    if (completed === target && done) done();
  });
  worker.on('error', (e) => { console.error(e); process.exit(1); });
  await worker.waitUntilReady();

  const run = async (n) => {
    target = completed + n;
    const finished = new Promise((resolve) => { done = resolve; });
    const start = process.hrtime.bigint();
    for (let left = n; left > 0; left -= CHUNK) {
      const k = Math.min(CHUNK, left);
      await queue.addBulk(Array.from({ length: k }, () => ({
        name: 'j', data: payload, opts: { removeOnComplete: true },
      })));
    }
    await finished;
    return Number(process.hrtime.bigint() - start) / 1e9;
  };
  await run(Math.floor(jobs / 10));
  const seconds = await run(jobs);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return jobs / seconds;
}

const out = { jobs };
for (const concurrency of [1, 8]) out[`bullmq_c${concurrency}`] = Math.round(await measure(concurrency));
console.log(JSON.stringify(out));
