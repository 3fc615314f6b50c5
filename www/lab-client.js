// The page's side of the engine's Worker: requests with replies (call) and events (on). Replies
// that fail reject with an Error carrying the lab's error kind (bad_input, busy, device, bad_state...).

export class LabClient {
  constructor(onCrash) {
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = {};
    this.onCrash = onCrash;
  }

  start() {
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    this.worker.onmessage = (ev) => {
      const msg = ev.data;
      if (msg.id && this.pending.has(msg.id)) {
        const { resolve, reject } = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        msg.ok ? resolve(msg.result) : reject(Object.assign(new Error(msg.error.message), { kind: msg.error.kind }));
      } else if (msg.type && this.listeners[msg.type]) {
        this.listeners[msg.type](msg);
      }
    };
    this.worker.onerror = (e) => this.onCrash(`the engine stopped (${e.message || "worker error"})`);
  }

  // Ends the Worker and fails every call in flight.
  stop() {
    for (const { reject } of this.pending.values()) reject(Object.assign(new Error("the engine restarted"), { kind: "device" }));
    this.pending.clear();
    this.worker.terminate();
  }

  call(type, args = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, type, ...args });
    });
  }

  on(type, fn) {
    this.listeners[type] = fn;
  }
}
