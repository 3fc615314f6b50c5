// Draws the next token of each row on the GPU: temperature, top-k and top-p, from a counter-based
// random number (a hash of seed, row and step), so only token ids ever return to the CPU.
// Top-k and top-p are thresholds found by bisection (no sort): keep x ≥ τ_k with at least k tokens,
// then x ≥ τ_p with at least top_p of the remaining mass. src/sample.rs mirrors this exactly.

struct P {
    b: u32, v: u32, logits_off: u32, logits_rs: u32,
    top_k: u32, seed_lo: u32, seed_hi: u32, step: u32,
    inv_t: f32, top_p: f32, greedy: u32, out_stride: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> next: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn uniform01(row: u32) -> f32 {
    let h = pcg(p.seed_lo ^ pcg(p.seed_hi ^ pcg(row ^ pcg(p.step))));
    return f32(h >> 8u) / 16777216.0;
}


@compute @workgroup_size(WG_ROWS)
fn sample_next(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= p.b) { return; }
    let base = p.logits_off + r * p.logits_rs;
    var m = NEG_INF;
    var best = 0u;
    var lowest = -NEG_INF;
    for (var j = 0u; j < p.v; j++) {
        let x = logits[base + j];
        if (x > m) { m = x; best = j; }
        lowest = min(lowest, x);
    }
    var tok = best;
    if (p.greedy == 0u) {
        // scaled logits x = (logit − max)/T ≤ 0; thresholds live in [lo, 0]
        let floor_x = (lowest - m) * p.inv_t;
        var tk = floor_x;
        if (p.top_k > 0u && p.top_k < p.v) {
            var lo = floor_x;
            var hi = 0.0;
            for (var it = 0u; it < SAMPLE_BISECT_ITERS; it++) {
                let mid = 0.5 * (lo + hi);
                var cnt = 0u;
                for (var j = 0u; j < p.v; j++) {
                    if ((logits[base + j] - m) * p.inv_t >= mid) { cnt++; }
                }
                if (cnt >= p.top_k) { lo = mid; } else { hi = mid; }
            }
            tk = lo;
        }
        var zk = 0.0;
        for (var j = 0u; j < p.v; j++) {
            let x = (logits[base + j] - m) * p.inv_t;
            if (x >= tk) { zk += exp(x); }
        }
        var tp = tk;
        if (p.top_p < 1.0) {
            var lo = tk;
            var hi = 0.0;
            for (var it = 0u; it < SAMPLE_BISECT_ITERS; it++) {
                let mid = 0.5 * (lo + hi);
                var mass = 0.0;
                for (var j = 0u; j < p.v; j++) {
                    let x = (logits[base + j] - m) * p.inv_t;
                    if (x >= mid) { mass += exp(x); }
                }
                if (mass >= p.top_p * zk) { lo = mid; } else { hi = mid; }
            }
            tp = lo;
        }
        var z = 0.0;
        for (var j = 0u; j < p.v; j++) {
            let x = (logits[base + j] - m) * p.inv_t;
            if (x >= tp) { z += exp(x); }
        }
        let u = uniform01(r) * z;
        var acc = 0.0;
        var last = best;
        var chosen = false;
        for (var j = 0u; j < p.v; j++) {
            let x = (logits[base + j] - m) * p.inv_t;
            if (x >= tp) {
                acc += exp(x);
                last = j;
                if (!chosen && acc > u) { tok = j; chosen = true; }
            }
        }
        if (!chosen) { tok = last; }
    }
    next[r] = tok;
    out[r * p.out_stride + p.step] = tok;
}
