// The pool of shard Workers the engine's Worker splits the CPU engine's batches across (see
// src/shard.rs): each holds copies of the lab's engines and runs the rows it is given. Messages to a
// Worker are handled in order and its replies come back in order, so each Worker keeps one queue of
// replies: receive(i) is the next one.
export class ShardPool {
  constructor(n) {
    this.workers = [];
    this.queues = [];
    this.engines = 0;
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL("./shard-worker.js", import.meta.url), { type: "module" });
      const q = { ready: [], waiting: [] };
      w.onmessage = (ev) => (q.waiting.length ? q.waiting.shift()(ev.data) : q.ready.push(ev.data));
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

// How many Workers share the CPU engine's work: every core the browser reports, up to 8 (beyond
// that a batch of a few rows has nothing left to split), the engine's own Worker included.
export function shardCount() {
  return Math.max(1, Math.min(8, self.navigator.hardwareConcurrency || 1));
}
