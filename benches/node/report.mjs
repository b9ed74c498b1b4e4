// Turns the JSON of several rounds of node_peer (sharedbuf) and protocols.mjs (Node) into one
// Markdown table: the median of the rounds per figure, and Node's time ÷ sharedbuf's.
//
//   node report.mjs --sharedbuf a.json b.json ... --node x.json y.json ...
//
// Refuses figures whose plans (warmup, samples, batch) differ between the two sides or between
// rounds: a ratio of differently measured numbers means nothing.

import { readFileSync } from 'node:fs';

// Row labels, in table order. A key with no label here still gets a row (named by its key).
const LABELS = {
  'threads.atomics_round_trip': '`Atomics.wait`/`notify` ping-pong, round trip',
  'threads.post_message_round_trip': '`postMessage` round trip (main → worker → main)',
  'threads.post_message_one_way': '`postMessage` one-way, per message (1000, then one ack)',
  'threads.spawn_to_exit': '`new Worker` (empty) → `exit`',
  'pool.round_trip': 'pool: `run` one task, then its result (WorkerPool vs Piscina)',
  'pool.bulk': 'pool: per task, 100,000 `run`, then all results',
  'process.send_round_trip': '`cluster` worker `send` round trip (main → child process → main)',
  'process.fork_to_exit': '`cluster.fork()` (exits at once) → `exit`',
};

function parseArgs(argv) {
  const files = { sharedbuf: [], node: [] };
  let side = null;
  for (const arg of argv) {
    if (arg === '--sharedbuf' || arg === '--node') side = arg.slice(2);
    else if (side) files[side].push(arg);
    else throw new Error(`usage: report.mjs --sharedbuf FILE... --node FILE...`);
  }
  if (!files.sharedbuf.length || !files.node.length) {
    throw new Error('report.mjs needs at least one file for --sharedbuf and for --node');
  }
  return files;
}

// One side's rounds → { runtime, figures: Map("section.key" → { ns: [per round], plan }) }.
function collect(paths) {
  const figures = new Map();
  let runtime = null;
  for (const path of paths) {
    const report = JSON.parse(readFileSync(path, 'utf8'));
    if (report.mode !== 'bench') throw new Error(`${path}: mode "${report.mode}", not "bench"`);
    runtime = report.runtime;
    for (const [section, protocols] of Object.entries(report.sections)) {
      for (const [key, { median_ns, ...plan }] of Object.entries(protocols)) {
        const id = `${section}.${key}`;
        const figure = figures.get(id) ?? { ns: [], plan };
        if (JSON.stringify(figure.plan) !== JSON.stringify(plan)) {
          throw new Error(`${path}: ${id} measured with ${JSON.stringify(plan)}, earlier rounds with ${JSON.stringify(figure.plan)}`);
        }
        figure.ns.push(median_ns);
        figures.set(id, figure);
      }
    }
  }
  return { runtime, figures };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function formatTime(ns) {
  const [value, unit] = ns < 1e3 ? [ns, 'ns'] : ns < 1e6 ? [ns / 1e3, 'µs'] : [ns / 1e6, 'ms'];
  return `${value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0)} ${unit}`;
}

function formatRatio(ratio) {
  const x = (r) => (r < 10 ? r.toFixed(1) : r.toFixed(0));
  return ratio >= 1 ? `${x(ratio)}x faster` : `${x(1 / ratio)}x slower`;
}

const files = parseArgs(process.argv.slice(2));
const ours = collect(files.sharedbuf);
const node = collect(files.node);
const ids = [...new Set([...Object.keys(LABELS), ...ours.figures.keys(), ...node.figures.keys()])];

const rows = [];
for (const id of ids) {
  const a = ours.figures.get(id);
  const b = node.figures.get(id);
  if (!a && !b) continue;
  if (a && b && JSON.stringify(a.plan) !== JSON.stringify(b.plan)) {
    throw new Error(`${id}: sharedbuf measured with ${JSON.stringify(a.plan)}, Node with ${JSON.stringify(b.plan)}`);
  }
  // The spread across rounds, on stderr: how far to trust the table.
  const spread = (f) => (f ? f.ns.map(formatTime).join(', ') : '—');
  process.stderr.write(`${id}: sharedbuf ${spread(a)}; Node ${spread(b)}\n`);
  const ns = (f) => (f ? median(f.ns) : null);
  const [sharedbuf, nodejs] = [ns(a), ns(b)];
  rows.push([
    LABELS[id] ?? `\`${id}\``,
    sharedbuf === null ? '—' : formatTime(sharedbuf),
    nodejs === null ? '—' : formatTime(nodejs),
    sharedbuf === null || nodejs === null ? '—' : formatRatio(nodejs / sharedbuf),
  ]);
}

const lines = [
  '| protocol | sharedbuf | Node.js | ratio (Node ÷ sharedbuf) |',
  '| --- | --- | --- | --- |',
  ...rows.map((cells) => `| ${cells.join(' | ')} |`),
  '',
  `${ours.runtime} vs ${node.runtime}; median of ${files.sharedbuf.length} / ${files.node.length} ` +
    'alternating runs, each figure the median of its samples.',
];
process.stdout.write(lines.join('\n') + '\n');
