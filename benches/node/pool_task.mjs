// The task Piscina's workers run in the "pool" section of protocols.mjs: gives back its
// argument, as the sharedbuf side's `pool.run(move |_| i)` does.
export default (n) => n;
