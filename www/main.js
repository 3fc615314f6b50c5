// The first page: load the wasm and the base model with progress, sample K answers, self-test WebGPU.
import init, { Model, gpu_self_test } from "./pkg/rlhf_lab.js";

const $ = (id) => document.getElementById(id);
const base = "assets/base/";

// fetch with progress: reports bytes as they arrive
async function fetchBytes(url, onBytes) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not load ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get("content-length")) || 0;
  const reader = res.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onBytes(got, total);
  }
  const out = new Uint8Array(got);
  let off = 0;
  for (const c of chunks) { out.set(c, off); off += c.length; }
  return out;
}

function setProgress(frac, text) {
  $("load-progress").value = frac;
  $("load-text").textContent = text;
}

async function main() {
  setProgress(0.05, "Loading the engine (wasm)…");
  await init();
  setProgress(0.2, "Loading the base model…");
  const weights = await fetchBytes(base + "model.safetensors", (got, total) =>
    setProgress(0.2 + 0.7 * (total ? got / total : 0), `Loading weights: ${(got / 1e6).toFixed(1)} MB`));
  const [config, tokenizer] = await Promise.all([
    fetch(base + "config.json").then((r) => r.text()),
    fetch(base + "tokenizer.json").then((r) => r.text()),
  ]);
  const model = new Model(config, weights, tokenizer);
  setProgress(1, `Base model ready: ${(model.parameters / 1e6).toFixed(2)}M parameters (running on the CPU reference in wasm).`);
  $("ask").hidden = false;

  gpu_self_test()
    .then((report) => { $("gpu").textContent = `WebGPU: ${report}`; })
    .catch((e) => { $("gpu").textContent = `WebGPU unavailable: ${e}`; $("gpu").classList.add("error"); });
  if (navigator.gpu) {
    navigator.gpu.requestAdapter().then((a) => {
      if (a && a.info) $("gpu").dataset.adapter = `${a.info.vendor} ${a.info.architecture}`.trim();
    });
  }

  let seed = 1;
  $("prompt-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const button = ev.submitter || $("prompt-form").querySelector("button");
    button.disabled = true;
    // let the button repaint before the (synchronous, CPU) sampling starts
    setTimeout(() => {
      try {
        const k = Math.min(9, Math.max(2, Number($("k").value) || 4));
        const answers = model.generate($("prompt").value, k, 1.0, seed++);
        const list = $("responses");
        list.replaceChildren(...answers.map((a) => {
          const li = document.createElement("li");
          li.textContent = a; // model text is text, never HTML
          return li;
        }));
      } catch (e) {
        $("responses").replaceChildren(Object.assign(document.createElement("li"), { textContent: `Error: ${e}`, className: "error" }));
      } finally {
        button.disabled = false;
      }
    }, 20);
  });
}

main().catch((e) => {
  setProgress(0, `Could not start: ${e.message || e}`);
  $("load-text").classList.add("error");
});
