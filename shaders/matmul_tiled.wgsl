// The same products as matmul_blocked.wgsl, tiled through workgroup memory for real GPUs:
// an MM_TILE² tile of C per workgroup of MM_TILE_WG² threads, each thread MM_PER_THREAD² outputs,
// K in steps of MM_TILE_K.

var<workgroup> As: array<f32, MM_TILE_K * MM_TILE>; // [k][m]
var<workgroup> Bs: array<f32, MM_TILE_K * MM_TILE>; // [k][n]

@compute @workgroup_size(MM_TILE_WG, MM_TILE_WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tile = tile_of(wid, nwg);
    let pi = tile.x;
    let mm = problem(pi);
    let ncols = cols(mm);
    let tid = lid.y * MM_TILE_WG + lid.x;
    let m0 = tile.y * MM_TILE;
    let n0 = tile.z * MM_TILE;
    var acc: array<f32, MM_PER_THREAD * MM_PER_THREAD>;
    for (var k0 = 0u; k0 < mm.k; k0 += MM_TILE_K) {
        for (var i = 0u; i < MM_TILE_LOADS; i++) {
            let e = tid + i * MM_TILE_THREADS;
            let ka = e % MM_TILE_K;
            let ma = e / MM_TILE_K;
            let gka = k0 + ka;
            let va = load_a(mm, m0 + ma, min(gka, mm.k - 1u));
            As[ka * MM_TILE + ma] = select(0.0, va, m0 + ma < mm.m && gka < mm.k);
            let nb = e % MM_TILE;
            let kb = e / MM_TILE;
            let gkb = k0 + kb;
            let vb = load_b(pi, mm, min(gkb, mm.k - 1u), n0 + nb);
            Bs[kb * MM_TILE + nb] = select(0.0, vb, gkb < mm.k);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < MM_TILE_K; kk++) {
            var av: array<f32, MM_PER_THREAD>;
            var bv: array<f32, MM_PER_THREAD>;
            for (var i = 0u; i < MM_PER_THREAD; i++) {
                av[i] = As[kk * MM_TILE + lid.y * MM_PER_THREAD + i];
                bv[i] = Bs[kk * MM_TILE + lid.x * MM_PER_THREAD + i];
            }
            for (var i = 0u; i < MM_PER_THREAD; i++) {
                for (var j = 0u; j < MM_PER_THREAD; j++) {
                    acc[i * MM_PER_THREAD + j] += av[i] * bv[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < MM_PER_THREAD; i++) {
        for (var j = 0u; j < MM_PER_THREAD; j++) {
            let col = n0 + lid.x * MM_PER_THREAD + j;
            if (col < ncols) { store(pi, mm, m0 + lid.y * MM_PER_THREAD + i, col, acc[i * MM_PER_THREAD + j]); }
        }
    }
}
