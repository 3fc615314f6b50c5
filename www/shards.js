// The pool of shard Workers the engine's Worker splits the CPU engine's batches across (see
// src/shard.rs): each holds copies of the lab's engines and runs the rows it is given. Messages to a
// Worker are handled in order and its replies come back in order, so each Worker keeps one queue of
// replies: receive(i) is the next one. The weights and gradients cross as transferred buffers of
// 4 bytes per parameter every step, and filling a fresh buffer of that size costs several times
// the copy into one that was used before (its pages are touched for the first time; the demo's
// 8 MB: 15 ms against 2.5): a buffer that has crossed comes back to be filled again ({recycle}
// from a Worker, recycle() to one).
export class ShardPool {
  constructor(n) {
    this.workers = [];
    this.queues = [];
    this.engines = 0;
    this.spare = [];
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL("./shard-worker.js", import.meta.url), { type: "module" });
      const q = { ready: [], waiting: [] };
      w.onmessage = (ev) => {
        if (ev.data.recycle) this.spare.push(ev.data.recycle);
        else if (q.waiting.length) q.waiting.shift()(ev.data);
        else q.ready.push(ev.data);
      };
      w.onerror = (e) => {
        const failed = { error: { message: e.message || "the shard Worker stopped" } };
        while (q.waiting.length) q.waiting.shift()(failed);
        q.dead = failed;
      };
      this.workers.push(w);
      this.queues.push(q);
    }
  }

  get size() {
    return this.workers.length;
  }

  nextEngine() {
    return ++this.engines;
  }

  send(i, msg, transfer) {
    this.workers[i].postMessage(msg, transfer);
  }

  // A Float32Array of n values to fill and transfer: one that came back, or a new one.
  buffer(n) {
    return takeSpare(this.spare, n);
  }

  // Hands Worker i a buffer it sent (gradients), to fill again.
  recycle(i, buffer) {
    this.workers[i].postMessage({ op: "recycle", buffer }, [buffer.buffer]);
  }

  receive(i) {
    const q = this.queues[i];
    if (q.ready.length) return Promise.resolve(q.ready.shift());
    if (q.dead) return Promise.resolve(q.dead);
    return new Promise((resolve) => q.waiting.push(resolve));
  }

  // Instantiates the engine Worker's compiled wasm module in every Worker and gives it the model's
  // config; resolves when all are ready.
  async start(config, module) {
    this.workers.forEach((_, i) => this.send(i, { op: "init", config, module }, []));
    const replies = await Promise.all(this.workers.map((_, i) => this.receive(i)));
    const failed = replies.find((r) => r.error);
    if (failed) throw new Error(`a shard Worker could not start: ${failed.error.message}`);
  }

  stop() {
    for (const w of this.workers) w.terminate();
  }
}

// A buffer of n values from `spare` (buffers that crossed and came back), or a new one: the
// engine's Worker and the shard Workers each keep their own.
export function takeSpare(spare, n) {
  const i = spare.findIndex((b) => b.length === n);
  return i < 0 ? new Float32Array(n) : spare.splice(i, 1)[0];
}

// How many Workers share the CPU engine's work: every core the browser reports, up to 8 (beyond
// that a batch of a few rows has nothing left to split), the engine's own Worker included.
export function shardCount() {
  return Math.max(1, Math.min(8, self.navigator.hardwareConcurrency || 1));
}
