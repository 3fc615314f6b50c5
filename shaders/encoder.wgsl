// Token + position embedding. wte (V,C) and wpe (maxT,C) live in the flat parameter buffer.

struct P { b: u32, t: u32, c: u32, wte_off: u32, wpe_off: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> grads: array<f32>;

// out (B,T,C) = wte[tokens] + wpe[t]
@compute @workgroup_size(256)
fn encoder_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
    if (idx >= p.b * p.t * p.c) { return; }
    let bt = idx / p.c;
    let ch = idx % p.c;
    let ti = bt % p.t;
    let tok = tokens[bt];
    out[idx] = params[p.wte_off + tok * p.c + ch] + params[p.wpe_off + ti * p.c + ch];
}

// dwte += dout scattered by token: one thread per channel walks every position, so no two threads collide.
@compute @workgroup_size(64)
fn encoder_backward_wte(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ch = gid.x;
    if (ch >= p.c) { return; }
    for (var i = 0u; i < p.b * p.t; i++) {
        let tok = tokens[i];
        grads[p.wte_off + tok * p.c + ch] += dout[i * p.c + ch];
    }
}

// dwpe (t, c) += Σ_b dout (b, t, c)
@compute @workgroup_size(64)
fn encoder_backward_wpe(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.x;
    if (idx >= p.t * p.c) { return; }
    let ti = idx / p.c;
    let ch = idx % p.c;
    var acc = 0.0;
    for (var bi = 0u; bi < p.b; bi++) {
        acc += dout[(bi * p.t + ti) * p.c + ch];
    }
    grads[p.wpe_off + idx] += acc;
}
