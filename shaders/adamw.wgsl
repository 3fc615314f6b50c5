// Global gradient-norm clip and AdamW over the whole flat parameter buffer. The norm stays on the
// GPU: two reduction passes write [norm, clip scale] to a small buffer that the update reads. A
// non-finite norm skips the update. Weight decay applies to the tensor kinds whose bit is set in
// decay_mask; kind i spans [kind_start[i], kind_start[i+1]).

struct P {
    n: u32, max_norm: f32, lr: f32, beta1: f32,
    beta2: f32, eps: f32, weight_decay: f32, b1_corr: f32,
    b2_corr: f32, decay_mask: u32, kinds: u32, _p0: u32,
    kind_start: array<vec4<u32>, MAX_KINDS_VEC4>,
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

var<workgroup> scratch: array<f32, WG>;

// Pass 1: NUM_PARTIALS workgroups each sum the squares of a strided share of the gradients.
@compute @workgroup_size(WG)
fn sumsq_partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var acc = 0.0;
    for (var i = wid.x * WG + lid.x; i < p.n; i += NUM_PARTIALS * WG) {
        let g = grads[i];
        acc += g * g;
    }
    scratch[lid.x] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
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

fn kind_start(i: u32) -> u32 {
    return p.kind_start[i / 4u][i % 4u];
}

// Pass 3: AdamW on every parameter.
@compute @workgroup_size(WG)
fn adamw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) { return; }
    if (!is_finite(norm_r[0])) { return; }
    var kind = 0u;
    for (var k = 1u; k < p.kinds; k++) {
        if (i >= kind_start(k)) { kind = k; }
    }
    let wd = select(0.0, p.weight_decay, ((p.decay_mask >> kind) & 1u) != 0u);
    let g = grads[i] * norm_r[1];
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let mhat = mi / p.b1_corr;
    let vhat = vi / p.b2_corr;
    params[i] -= p.lr * (mhat / (sqrt(vhat) + p.eps) + wd * params[i]);
}
