// Attention for one generation step with a key-value cache laid out (L, B, T, 3C): each step's
// q, k, v are written there by the qkv product (with a row stride of T·3C), then each row's query at
// `pos` attends over cached positions 0..pos. One thread per (b, h).

struct P { b: u32, t: u32, c: u32, nh: u32, kv_off: u32, pos: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> kv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_ROWS)
fn attention_decode(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.x;
    if (idx >= p.b * p.nh) { return; }
    let bi = idx / p.nh;
    let h = idx % p.nh;
    let hs = p.c / p.nh;
    let scale = 1.0 / sqrt(f32(hs));
    let c3 = 3u * p.c;
    let row0 = p.kv_off + bi * p.t * c3;
    let q0 = row0 + p.pos * c3 + h * hs;
    var o: array<f32, MAX_HEAD_SIZE>;
    var m = NEG_INF;
    var l = 0.0;
    for (var t2 = 0u; t2 <= p.pos; t2++) {
        let k0 = row0 + t2 * c3 + p.c + h * hs;
        var s = 0.0;
        for (var i = 0u; i < hs; i++) { s += kv[q0 + i] * kv[k0 + i]; }
        s = s * scale;
        let m_new = max(m, s);
        let corr = exp(m - m_new);
        let e = exp(s - m_new);
        l = l * corr + e;
        for (var i = 0u; i < hs; i++) { o[i] = o[i] * corr + e * kv[k0 + p.c + i]; }
        m = m_new;
    }
    let o0 = bi * p.c + h * hs;
    for (var i = 0u; i < hs; i++) { out[o0 + i] = o[i] / l; }
}
