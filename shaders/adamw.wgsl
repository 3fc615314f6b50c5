// Global gradient-norm clip and AdamW. The norm stays on the GPU: two reduction passes write
// [norm, scale] to a small buffer that the update reads. A non-finite norm skips the update.

struct P {
    n: u32, off: u32, max_norm: f32, lr: f32,
    beta1: f32, beta2: f32, eps: f32, weight_decay: f32,
    b1_corr: f32, b2_corr: f32, _p0: u32, _p1: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<storage, read> partial_r: array<f32>;
@group(0) @binding(4) var<storage, read_write> norm: array<f32>;
@group(0) @binding(5) var<storage, read_write> params: array<f32>;
@group(0) @binding(6) var<storage, read_write> m: array<f32>;
@group(0) @binding(7) var<storage, read_write> v: array<f32>;
@group(0) @binding(8) var<storage, read> norm_r: array<f32>;

const NUM_PARTIALS: u32 = 64u;
var<workgroup> scratch: array<f32, 256>;

// Pass 1: NUM_PARTIALS workgroups each sum the squares of a strided share of the gradients.
@compute @workgroup_size(256)
fn sumsq_partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var acc = 0.0;
    for (var i = wid.x * 256u + lid.x; i < p.n; i += NUM_PARTIALS * 256u) {
        let g = grads[i];
        acc += g * g;
    }
    scratch[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s / 2u) {
        if (lid.x < s) { scratch[lid.x] += scratch[lid.x + s]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { partial[wid.x] = scratch[0]; }
}

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// Pass 2: one thread adds the partials and writes [norm, clip scale].
@compute @workgroup_size(1)
fn clip_scale() {
    var acc = 0.0;
    for (var i = 0u; i < NUM_PARTIALS; i++) { acc += partial_r[i]; }
    let nrm = sqrt(acc);
    norm[0] = nrm;
    norm[1] = select(1.0, p.max_norm / nrm, p.max_norm > 0.0 && nrm > p.max_norm);
}

// Pass 3: AdamW on one tensor [off, off+n) of the flat buffers.
@compute @workgroup_size(256)
fn adamw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 256u;
    if (j >= p.n) { return; }
    if (!is_finite(norm_r[0])) { return; }
    let i = p.off + j;
    let g = grads[i] * norm_r[1];
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let mhat = mi / p.b1_corr;
    let vhat = vi / p.b2_corr;
    params[i] -= p.lr * (mhat / (sqrt(vhat) + p.eps) + p.weight_decay * params[i]);
}
