// Softmax cross-entropy over the vocabulary at a sampling temperature. A negative target means:
// no loss at this position. The backward pass takes one weight per row, so one kernel serves the
// mean LM loss, SFT's masked loss and PPO's per-token policy gradient. `mean_loss` reduces the
// losses of the rows that carry one to their mean, so a training step reads back one number.

struct P { n: u32, v: u32, inv_t: f32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read> lse_r: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(7) var<storage, read_write> entropy: array<f32>;
@group(0) @binding(8) var<storage, read> weights: array<f32>;
@group(0) @binding(9) var<storage, read> losses_r: array<f32>;
@group(0) @binding(10) var<storage, read_write> mean_out: array<f32>;

var<workgroup> sums: array<f32, WG>;
var<workgroup> counts: array<f32, WG>;

// One workgroup: mean_out[p.v] = mean of losses over rows with a target (p.v is an offset here).
@compute @workgroup_size(WG)
fn mean_loss(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = 0.0;
    var c = 0.0;
    for (var r = lid.x; r < p.n; r += WG) {
        if (targets[r] >= 0) {
            s += losses_r[r];
            c += 1.0;
        }
    }
    sums[lid.x] = s;
    counts[lid.x] = c;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k / 2u) {
        if (lid.x < k) {
            sums[lid.x] += sums[lid.x + k];
            counts[lid.x] += counts[lid.x + k];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) { mean_out[p.v] = select(0.0, sums[0] / counts[0], counts[0] > 0.0); }
}

// One thread per row: losses = logsumexp(x/T) - x[target]/T, the logsumexp, and the entropy.
@compute @workgroup_size(WG_ROWS)
fn crossentropy_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * WG_ROWS;
    if (r >= p.n) { return; }
    let base = r * p.v;
    var m = NEG_INF;
    for (var j = 0u; j < p.v; j++) { m = max(m, logits[base + j] * p.inv_t); }
    var s = 0.0;
    var sx = 0.0;
    for (var j = 0u; j < p.v; j++) {
        let x = logits[base + j] * p.inv_t;
        let e = exp(x - m);
        s += e;
        sx += e * x;
    }
    let l = m + log(s);
    lse[r] = l;
    entropy[r] = l - sx / s;
    let tg = targets[r];
    if (tg >= 0) {
        losses[r] = l - logits[base + u32(tg)] * p.inv_t;
    } else {
        losses[r] = 0.0;
    }
}

// One thread per logit: dlogits = w[row]·(softmax(x/T) - onehot)/T (0 where the row has no loss).
@compute @workgroup_size(WG)
fn crossentropy_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.v) { return; }
    let r = i / p.v;
    let j = i % p.v;
    let tg = targets[r];
    let w = weights[r];
    if (tg < 0 || w == 0.0) {
        dlogits[i] = 0.0;
        return;
    }
    let prob = exp(logits[i] * p.inv_t - lse_r[r]);
    let onehot = select(0.0, 1.0, u32(tg) == j);
    dlogits[i] = w * (prob - onehot) * p.inv_t;
}
