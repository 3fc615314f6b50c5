// One generation step with a key-value cache. The cache is the forward pass's own qkv activation
// buffer, laid out (L, B, T, 3C) by a prefill over T positions; each step writes the new position's
// q, k, v there (a matrix product with a row stride of T·3C) and attends over positions 0..pos.

struct P { b: u32, t: u32, c: u32, nh: u32, qkv_off: u32, pos: u32, wte_off: u32, wpe_off: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> qkv: array<f32>;

// out (B,C) = wte[tokens[b]] + wpe[pos]
@compute @workgroup_size(64)
fn encoder_decode(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= p.b * p.c) { return; }
    let bi = i / p.c;
    let ch = i % p.c;
    out[i] = params[p.wte_off + tokens[bi] * p.c + ch] + params[p.wpe_off + p.pos * p.c + ch];
}

// out (B,C): one thread per (b, h): the query at pos against cached keys and values 0..pos.
@compute @workgroup_size(64)
fn attention_decode(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.x;
    if (idx >= p.b * p.nh) { return; }
    let bi = idx / p.nh;
    let h = idx % p.nh;
    let hs = p.c / p.nh;
    let scale = 1.0 / sqrt(f32(hs));
    let c3 = 3u * p.c;
    let row0 = p.qkv_off + bi * p.t * c3;
    let q0 = row0 + p.pos * c3 + h * hs;
    var maxval = -3.4e38;
    for (var t2 = 0u; t2 <= p.pos; t2++) {
        let k0 = row0 + t2 * c3 + p.c + h * hs;
        var s = 0.0;
        for (var i = 0u; i < hs; i++) { s += qkv[q0 + i] * qkv[k0 + i]; }
        maxval = max(maxval, s * scale);
    }
    var sum = 0.0;
    for (var t2 = 0u; t2 <= p.pos; t2++) {
        let k0 = row0 + t2 * c3 + p.c + h * hs;
        var s = 0.0;
        for (var i = 0u; i < hs; i++) { s += qkv[q0 + i] * qkv[k0 + i]; }
        sum += exp(s * scale - maxval);
    }
    let o0 = bi * p.c + h * hs;
    for (var i = 0u; i < hs; i++) { out[o0 + i] = 0.0; }
    for (var t2 = 0u; t2 <= p.pos; t2++) {
        let k0 = row0 + t2 * c3 + p.c + h * hs;
        var s = 0.0;
        for (var i = 0u; i < hs; i++) { s += qkv[q0 + i] * qkv[k0 + i]; }
        let a = exp(s * scale - maxval) / sum;
        let v0 = row0 + t2 * c3 + 2u * p.c + h * hs;
        for (var i = 0u; i < hs; i++) { out[o0 + i] += a * qkv[v0 + i]; }
    }
}
