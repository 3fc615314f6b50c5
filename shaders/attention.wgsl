// Causal multi-head attention on a fused qkv (B,T,3C), FlashAttention-style: the (T,T) attention
// matrix is never stored. The forward pass keeps one number per row, the logsumexp of its scores,
// from which the backward passes recompute each weight. One thread per (b, h, t) row. The backward
// pass is split so that no two threads write the same gradient: the row pass writes dq (and each
// row's D = dout·out), the column pass (one thread per key position) writes dk and dv. Each writes
// its part of dqkv whole (=), so dqkv needs no clearing first.

struct P { b: u32, t: u32, c: u32, nh: u32, qkv_off: u32, out_off: u32, lse_off: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
// backward
@group(0) @binding(4) var<storage, read> out_r: array<f32>;
@group(0) @binding(5) var<storage, read> lse_r: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(8) var<storage, read_write> dsum: array<f32>;
@group(0) @binding(9) var<storage, read> dsum_r: array<f32>;

struct Row { bi: u32, h: u32, ti: u32, ok: bool }

fn row_of(gid: vec3<u32>, nwg: vec3<u32>) -> Row {
    let idx = gid.x + gid.y * nwg.x * WG_ROWS;
    let ti = idx % p.t;
    let bh = idx / p.t;
    return Row(bh / p.nh, bh % p.nh, ti, idx < p.b * p.nh * p.t);
}

fn q_at(bi: u32, t: u32, h: u32) -> u32 { return p.qkv_off + (bi * p.t + t) * 3u * p.c + h * (p.c / p.nh); }
fn score(q0: u32, k0: u32, hs: u32) -> f32 {
    var s = 0.0;
    for (var i = 0u; i < hs; i++) { s += qkv[q0 + i] * qkv[k0 + i]; }
    return s / sqrt(f32(hs));
}

// out = softmax(q·kᵀ/√hs)·v in one pass with a running maximum; lse = log Σ exp(scores).
@compute @workgroup_size(WG_ROWS)
fn attention_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (!r.ok) { return; }
    let hs = p.c / p.nh;
    let q0 = q_at(r.bi, r.ti, r.h);
    var o: array<f32, MAX_HEAD_SIZE>;
    var m = NEG_INF;
    var l = 0.0;
    for (var t2 = 0u; t2 <= r.ti; t2++) {
        let k0 = q_at(r.bi, t2, r.h) + p.c;
        let s = score(q0, k0, hs);
        let m_new = max(m, s);
        let corr = exp(m - m_new);
        let e = exp(s - m_new);
        l = l * corr + e;
        for (var i = 0u; i < hs; i++) { o[i] = o[i] * corr + e * qkv[k0 + p.c + i]; }
        m = m_new;
    }
    let o0 = p.out_off + (r.bi * p.t + r.ti) * p.c + r.h * hs;
    for (var i = 0u; i < hs; i++) { out[o0 + i] = o[i] / l; }
    lse[p.lse_off + (r.bi * p.nh + r.h) * p.t + r.ti] = m + log(l);
}

// Row pass: D = dout·out; for each key, att = exp(score − lse), datt = dout·v, dpre = att·(datt − D),
// and dq = Σ dpre·k/√hs.
@compute @workgroup_size(WG_ROWS)
fn attention_backward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (!r.ok) { return; }
    let hs = p.c / p.nh;
    let q0 = q_at(r.bi, r.ti, r.h);
    let d0 = p.out_off + (r.bi * p.t + r.ti) * p.c + r.h * hs;
    var dsm = 0.0;
    for (var i = 0u; i < hs; i++) { dsm += dout[d0 + i] * out_r[d0 + i]; }
    let row = (r.bi * p.nh + r.h) * p.t + r.ti;
    dsum[row] = dsm;
    let l = lse_r[p.lse_off + row];
    var dq: array<f32, MAX_HEAD_SIZE>;
    for (var t2 = 0u; t2 <= r.ti; t2++) {
        let k0 = q_at(r.bi, t2, r.h) + p.c;
        let att = exp(score(q0, k0, hs) - l);
        var da = 0.0;
        for (var i = 0u; i < hs; i++) { da += dout[d0 + i] * qkv[k0 + p.c + i]; }
        let g = att * (da - dsm) / sqrt(f32(hs));
        for (var i = 0u; i < hs; i++) { dq[i] += g * qkv[k0 + i]; }
    }
    for (var i = 0u; i < hs; i++) { dqkv[q0 + i] = dq[i]; }
}

// Column pass, one thread per key position t2: dk = Σ_t dpre[t,t2]·q[t]/√hs, dv = Σ_t att[t,t2]·dout[t].
@compute @workgroup_size(WG_ROWS)
fn attention_backward_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (!r.ok) { return; }
    let t2 = r.ti;
    let hs = p.c / p.nh;
    let k0 = q_at(r.bi, t2, r.h) + p.c;
    var dk: array<f32, MAX_HEAD_SIZE>;
    var dv: array<f32, MAX_HEAD_SIZE>;
    for (var ti = t2; ti < p.t; ti++) {
        let q0 = q_at(r.bi, ti, r.h);
        let row = (r.bi * p.nh + r.h) * p.t + ti;
        let att = exp(score(q0, k0, hs) - lse_r[p.lse_off + row]);
        let d0 = p.out_off + (r.bi * p.t + ti) * p.c + r.h * hs;
        var da = 0.0;
        for (var i = 0u; i < hs; i++) { da += dout[d0 + i] * qkv[k0 + p.c + i]; }
        let g = att * (da - dsum_r[row]) / sqrt(f32(hs));
        for (var i = 0u; i < hs; i++) {
            dk[i] += g * qkv[q0 + i];
            dv[i] += att * dout[d0 + i];
        }
    }
    for (var i = 0u; i < hs; i++) {
        dqkv[k0 + i] = dk[i];
        dqkv[k0 + p.c + i] = dv[i];
    }
}
