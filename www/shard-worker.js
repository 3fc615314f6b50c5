// A shard Worker: copies of the lab's CPU engines (src/wasm_shards.rs's ShardEngine), each running
// the rows of a batch, or the groups of answers, the engine's Worker gives it. Requests are handled
// in order; those that return something (token_losses, hidden, logits, grads, generate) reply in
// order, and a failure replies {error} in place of the next reply.
import init, { ShardEngine } from "./pkg/rlhf_lab.js";
import { takeSpare } from "./shards.js";

// loaded by the first message, "init", from the module the engine's Worker compiled
let ready = null;
let config = null;
const engines = new Map();

// buffers that crossed to the engine's Worker and came back, to fill again (see shards.js)
const spare = [];
const reply = (data, transfer = []) => postMessage(data, transfer);
const floats = (data) => reply({ data }, [data.buffer]);

const ops = {
  init(m) {
    config = m.config;
    reply({ ok: true });
  },
  create(m) {
    engines.set(m.engine, ShardEngine.create(config, m.params, m.b, m.t));
  },
  forward(m, e) {
    e.forward(m.tokens, m.b, m.t, m.lens);
  },
  token_losses(m, e) {
    const r = e.token_losses(m.targets, m.temperature);
    reply(r, [r.losses.buffer, r.entropy.buffer]);
  },
  hidden(m, e) {
    floats(e.hidden());
  },
  logits(m, e) {
    floats(e.logits());
  },
  backward(m, e) {
    e.backward(m.weights, m.dhidden);
  },
  zero_grad(m, e) {
    e.zero_grad();
  },
  grads(m, e) {
    const g = takeSpare(spare, e.n_params());
    e.grads_into(g);
    floats(g);
  },
  set_params(m, e) {
    e.set_params(m.params);
    postMessage({ recycle: m.params }, [m.params.buffer]);
  },
  freeze(m, e) {
    e.freeze();
  },
  generate(m, e) {
    const r = e.generate(m.prompts, m.prompt_lens, m.sample, m.seeds);
    reply(r, [r.lens.buffer, r.tokens.buffer]);
  },
};

onmessage = async (ev) => {
  const m = ev.data;
  if (m.op === "init") ready = init({ module_or_path: m.module });
  try {
    await ready;
  } catch (err) {
    reply({ error: { message: `the engine could not load here (${err && err.message ? err.message : err})` } });
    return;
  }
  if (m.op === "recycle") {
    spare.push(m.buffer);
    return;
  }
  if (m.op === "drop") {
    engines.get(m.engine)?.free();
    engines.delete(m.engine);
    return;
  }
  try {
    const e = engines.get(m.engine);
    if (!["init", "create"].includes(m.op) && !e) throw new Error(`no engine ${m.engine}`);
    ops[m.op](m, e);
  } catch (err) {
    reply({ error: { message: String(err && err.message ? err.message : err) } });
  }
};
