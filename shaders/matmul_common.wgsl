// What the two matrix kernels share: the problem descriptor and the epilogue. One dispatch computes
// up to two products (a linear layer's dinp and dweight in the backward pass, say) over one grid:
// the first p0.tiles workgroups work on p0, the rest on p1. Both read A from binding `a`; p0 reads
// B from b0 and writes c0, p1 reads b1 and writes c1.
//
// Element (i, j) of A is a[a_off + i·a_rs + j·a_cs], likewise B; row r of C starts at c_off + r·c_rs.
// Flags choose the epilogue: ACCUMULATE adds to C; BIAS adds src2[bias_off + col]; GELU also writes
// gelu(v) to act[aux_off + r·c_rs + col]; GELU_GRAD multiplies by gelu'(src2[aux_off + r·c_rs + col]);
// BIAS_GRAD gives B an extra column of ones whose products (the row sums of A·1) are added to
// C's own buffer at bias_off + row: a weight gradient and its bias gradient in one product.

struct Mm {
    m: u32, n: u32, k: u32, flags: u32,
    a_off: u32, a_rs: u32, a_cs: u32, bias_off: u32,
    b_off: u32, b_rs: u32, b_cs: u32, aux_off: u32,
    c_off: u32, c_rs: u32, tiles_n: u32, tiles: u32,
}
struct P { p0: Mm, p1: Mm }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b0: array<f32>;
@group(0) @binding(3) var<storage, read> b1: array<f32>;
@group(0) @binding(4) var<storage, read> src2: array<f32>;
@group(0) @binding(5) var<storage, read_write> c0: array<f32>;
@group(0) @binding(6) var<storage, read_write> c1: array<f32>;
@group(0) @binding(7) var<storage, read_write> act: array<f32>;

fn problem(pi: u32) -> Mm {
    if (pi == 0u) { return p.p0; }
    return p.p1;
}

// Columns of C this problem computes, the ones column included.
fn cols(mm: Mm) -> u32 {
    return mm.n + select(0u, 1u, (mm.flags & MM_BIAS_GRAD) != 0u);
}

fn load_a(mm: Mm, r: u32, kk: u32) -> f32 {
    return a[mm.a_off + min(r, mm.m - 1u) * mm.a_rs + kk * mm.a_cs];
}

fn load_b(pi: u32, mm: Mm, kk: u32, col: u32) -> f32 {
    if (col >= mm.n) { return select(0.0, 1.0, col == mm.n && (mm.flags & MM_BIAS_GRAD) != 0u); }
    let i = mm.b_off + kk * mm.b_rs + col * mm.b_cs;
    if (pi == 0u) { return b0[i]; }
    return b1[i];
}

fn read_c(pi: u32, i: u32) -> f32 {
    if (pi == 0u) { return c0[i]; }
    return c1[i];
}

fn write_c(pi: u32, i: u32, v: f32) {
    if (pi == 0u) { c0[i] = v; } else { c1[i] = v; }
}

fn store(pi: u32, mm: Mm, r: u32, col: u32, acc: f32) {
    if (r >= mm.m) { return; }
    if (col == mm.n && (mm.flags & MM_BIAS_GRAD) != 0u) {
        let o = mm.bias_off + r;
        write_c(pi, o, read_c(pi, o) + acc);
        return;
    }
    if (col >= mm.n) { return; }
    var v = acc;
    if ((mm.flags & MM_BIAS) != 0u) { v += src2[mm.bias_off + col]; }
    if ((mm.flags & MM_GELU_GRAD) != 0u) { v = v * gelu_grad(src2[mm.aux_off + r * mm.c_rs + col]); }
    let o = mm.c_off + r * mm.c_rs + col;
    if ((mm.flags & MM_ACCUMULATE) != 0u) { v += read_c(pi, o); }
    write_c(pi, o, v);
    if ((mm.flags & MM_GELU) != 0u) { act[mm.aux_off + r * mm.c_rs + col] = gelu(v); }
}

// Which problem and which (row, column) tile a workgroup of the flattened grid works on.
fn tile_of(wid: vec3<u32>, nwg: vec3<u32>) -> vec3<u32> {
    let w = wid.x + wid.y * nwg.x;
    var pi = 0u;
    var t = w;
    if (w >= p.p0.tiles) {
        pi = 1u;
        t = w - p.p0.tiles;
    }
    let mm = problem(pi);
    return vec3<u32>(pi, t / max(mm.tiles_n, 1u), t % max(mm.tiles_n, 1u));
}
