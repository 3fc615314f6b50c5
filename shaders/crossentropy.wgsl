// Softmax cross-entropy over the vocabulary. A negative target means: no loss at this position.

struct P { n: u32, v: u32, dloss: f32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read> lse_r: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;

// One thread per row: losses = logsumexp - logit[target]; keeps logsumexp for the backward pass.
@compute @workgroup_size(64)
fn crossentropy_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= p.n) { return; }
    let base = r * p.v;
    var m = -3.4e38;
    for (var j = 0u; j < p.v; j++) { m = max(m, logits[base + j]); }
    var s = 0.0;
    for (var j = 0u; j < p.v; j++) { s += exp(logits[base + j] - m); }
    let l = m + log(s);
    lse[r] = l;
    let tg = targets[r];
    if (tg >= 0) {
        losses[r] = l - logits[base + u32(tg)];
    } else {
        losses[r] = 0.0;
    }
}

// One thread per logit: dlogits += (softmax - onehot)·dloss.
@compute @workgroup_size(256)
fn crossentropy_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n * p.v) { return; }
    let r = i / p.v;
    let j = i % p.v;
    let tg = targets[r];
    if (tg < 0) { return; }
    let prob = exp(logits[i] - lse_r[r]);
    let onehot = select(0.0, 1.0, u32(tg) == j);
    dlogits[i] += (prob - onehot) * p.dloss;
}
