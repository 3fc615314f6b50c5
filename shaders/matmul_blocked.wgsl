// C (M,N) = [C +] A·B [+ bias], register-blocked: each thread computes an MM_PER_THREAD² block of C,
// a workgroup of MM_BLOCK_WG² threads a tile of MM_BLOCK_TILE² with no shared memory. This is the
// fast path on software adapters (lavapipe, SwiftShader), where shared memory costs more than it saves.

@compute @workgroup_size(MM_BLOCK_WG, MM_BLOCK_WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tile = tile_of(wid, nwg);
    let pi = tile.x;
    let mm = problem(pi);
    let row0 = tile.y * MM_BLOCK_TILE + lid.y * MM_PER_THREAD;
    let col0 = tile.z * MM_BLOCK_TILE + lid.x * MM_PER_THREAD;
    let ncols = cols(mm);
    if (row0 >= mm.m || col0 >= ncols) { return; }
    var acc: array<f32, MM_PER_THREAD * MM_PER_THREAD>;
    for (var kk = 0u; kk < mm.k; kk++) {
        var av: array<f32, MM_PER_THREAD>;
        var bv: array<f32, MM_PER_THREAD>;
        for (var i = 0u; i < MM_PER_THREAD; i++) {
            // clamped rows stay in bounds; the extra rows and columns are never written
            av[i] = load_a(mm, row0 + i, kk);
            bv[i] = load_b(pi, mm, kk, min(col0 + i, ncols - 1u));
        }
        for (var i = 0u; i < MM_PER_THREAD; i++) {
            for (var j = 0u; j < MM_PER_THREAD; j++) {
                acc[i * MM_PER_THREAD + j] += av[i] * bv[j];
            }
        }
    }
    for (var i = 0u; i < MM_PER_THREAD; i++) {
        for (var j = 0u; j < MM_PER_THREAD; j++) {
            if (col0 + j < ncols) { store(pi, mm, row0 + i, col0 + j, acc[i * MM_PER_THREAD + j]); }
        }
    }
}
