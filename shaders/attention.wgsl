// Causal multi-head attention on a fused qkv (B,T,3C). One thread per (b, h, t) row of the attention matrix.
// The backward pass is split so that no two threads write the same gradient: the row pass writes dq,
// the column pass (one thread per key position) writes dk and dv.

struct P { b: u32, t: u32, c: u32, nh: u32, qkv_off: u32, out_off: u32, att_off: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> preatt: array<f32>;
@group(0) @binding(4) var<storage, read_write> att: array<f32>;
// backward
@group(0) @binding(5) var<storage, read> att_r: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read_write> dpreatt: array<f32>;
@group(0) @binding(8) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(9) var<storage, read> dpreatt_r: array<f32>;

struct Row { bi: u32, h: u32, ti: u32, ok: bool }

fn row_of(gid: vec3<u32>, nwg: vec3<u32>) -> Row {
    let idx = gid.x + gid.y * nwg.x * 64u;
    let ti = idx % p.t;
    let bh = idx / p.t;
    return Row(bh / p.nh, bh % p.nh, ti, idx < p.b * p.nh * p.t);
}

@compute @workgroup_size(64)
fn attention_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (!r.ok) { return; }
    let hs = p.c / p.nh;
    let scale = 1.0 / sqrt(f32(hs));
    let c3 = 3u * p.c;
    let q0 = p.qkv_off + (r.bi * p.t + r.ti) * c3 + r.h * hs;
    let row = p.att_off + ((r.bi * p.nh + r.h) * p.t + r.ti) * p.t;
    var maxval = -3.4e38;
    for (var t2 = 0u; t2 <= r.ti; t2++) {
        let k0 = p.qkv_off + (r.bi * p.t + t2) * c3 + p.c + r.h * hs;
        var s = 0.0;
        for (var i = 0u; i < hs; i++) { s += qkv[q0 + i] * qkv[k0 + i]; }
        s = s * scale;
        preatt[row + t2] = s;
        maxval = max(maxval, s);
    }
    var sum = 0.0;
    for (var t2 = 0u; t2 <= r.ti; t2++) {
        let e = exp(preatt[row + t2] - maxval);
        att[row + t2] = e;
        sum += e;
    }
    for (var t2 = 0u; t2 < p.t; t2++) {
        if (t2 <= r.ti) {
            att[row + t2] = att[row + t2] / sum;
        } else {
            att[row + t2] = 0.0;
            preatt[row + t2] = 0.0;
        }
    }
    let o0 = p.out_off + (r.bi * p.t + r.ti) * p.c + r.h * hs;
    for (var i = 0u; i < hs; i++) {
        var acc = 0.0;
        for (var t2 = 0u; t2 <= r.ti; t2++) {
            acc += att[row + t2] * qkv[p.qkv_off + (r.bi * p.t + t2) * c3 + 2u * p.c + r.h * hs + i];
        }
        out[o0 + i] = acc;
    }
}

// Row pass: datt = dout·v, dpreatt = att·(datt − Σ att·datt), dq += scale·Σ dpreatt·k.
@compute @workgroup_size(64)
fn attention_backward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (!r.ok) { return; }
    let hs = p.c / p.nh;
    let scale = 1.0 / sqrt(f32(hs));
    let c3 = 3u * p.c;
    let row = p.att_off + ((r.bi * p.nh + r.h) * p.t + r.ti) * p.t;
    let d0 = p.out_off + (r.bi * p.t + r.ti) * p.c + r.h * hs;
    var dot = 0.0;
    for (var t2 = 0u; t2 <= r.ti; t2++) {
        let v0 = p.qkv_off + (r.bi * p.t + t2) * c3 + 2u * p.c + r.h * hs;
        var da = 0.0;
        for (var i = 0u; i < hs; i++) { da += qkv[v0 + i] * dout[d0 + i]; }
        dpreatt[row + t2] = da;
        dot += att_r[row + t2] * da;
    }
    for (var t2 = 0u; t2 < p.t; t2++) {
        if (t2 <= r.ti) {
            dpreatt[row + t2] = att_r[row + t2] * (dpreatt[row + t2] - dot);
        } else {
            dpreatt[row + t2] = 0.0;
        }
    }
    let q0 = p.qkv_off + (r.bi * p.t + r.ti) * c3 + r.h * hs;
    for (var i = 0u; i < hs; i++) {
        var acc = 0.0;
        for (var t2 = 0u; t2 <= r.ti; t2++) {
            acc += dpreatt[row + t2] * qkv[p.qkv_off + (r.bi * p.t + t2) * c3 + p.c + r.h * hs + i];
        }
        dqkv[q0 + i] += acc * scale;
    }
}

// Column pass, one thread per key position t2: dk += scale·Σ_t dpreatt[t,t2]·q[t], dv += Σ_t att[t,t2]·dout[t].
@compute @workgroup_size(64)
fn attention_backward_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (!r.ok) { return; }
    let t2 = r.ti;
    let hs = p.c / p.nh;
    let scale = 1.0 / sqrt(f32(hs));
    let c3 = 3u * p.c;
    let base = p.att_off + (r.bi * p.nh + r.h) * p.t * p.t;
    let k0 = p.qkv_off + (r.bi * p.t + t2) * c3 + p.c + r.h * hs;
    let v0 = k0 + p.c;
    for (var i = 0u; i < hs; i++) {
        var dk = 0.0;
        var dv = 0.0;
        for (var ti = t2; ti < p.t; ti++) {
            dk += dpreatt_r[base + ti * p.t + t2] * qkv[p.qkv_off + (r.bi * p.t + ti) * c3 + r.h * hs + i];
            dv += att_r[base + ti * p.t + t2] * dout[p.out_off + (r.bi * p.t + ti) * p.c + r.h * hs + i];
        }
        dqkv[k0 + i] += dk * scale;
        dqkv[v0 + i] += dv;
    }
}
