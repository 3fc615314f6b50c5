//! Linear layer, out = inp · weightᵀ + bias, with weights stored (OC, C) as in llm.c.
//! The products go through `matrixmultiply` so the reference is fast enough to pretrain on.

/// The block over k in which `matrixmultiply` sums a product (its sgemm KC): a product split at
/// multiples of it sums in the same order as whole (see `Rows::kc_pieces`).
pub const GEMM_KC: usize = 256;

/// C (m,n) = beta·C + A·B with explicit row/column strides (a thin wrapper over sgemm).
#[allow(clippy::too_many_arguments)]
pub fn gemm(m: usize, k: usize, n: usize, a: &[f32], a_rs: usize, a_cs: usize, b: &[f32], b_rs: usize, b_cs: usize, beta: f32, c: &mut [f32]) {
    gemm_scaled(m, k, n, 1.0, (a, a_rs, a_cs), (b, b_rs, b_cs), beta, (c, n));
}

/// C (m,n) = beta·C + A·B where C's rows are c.1 apart; A and B are (slice, row stride, column stride).
pub fn gemm_strided(m: usize, k: usize, n: usize, a: (&[f32], usize, usize), b: (&[f32], usize, usize), beta: f32, c: (&mut [f32], usize)) {
    gemm_scaled(m, k, n, 1.0, a, b, beta, c)
}

/// C (m,n) = beta·C + alpha·A·B, strided as in `gemm_strided`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_scaled(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    beta: f32,
    c: (&mut [f32], usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let ((a, a_rs, a_cs), (b, b_rs, b_cs), (c, c_rs)) = (a, b, c);
    // Bounds the unsafe call: the last element each operand addresses must be in its slice.
    assert!(k == 0 || (m - 1) * a_rs + (k - 1) * a_cs < a.len(), "gemm: A too short");
    assert!(k == 0 || (k - 1) * b_rs + (n - 1) * b_cs < b.len(), "gemm: B too short");
    assert!((m - 1) * c_rs + n - 1 < c.len(), "gemm: C too short");
    // SAFETY: the asserts above keep every access inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            a_rs as isize,
            a_cs as isize,
            b.as_ptr(),
            b_rs as isize,
            b_cs as isize,
            beta,
            c.as_mut_ptr(),
            c_rs as isize,
            1,
        );
    }
}

/// out (N,OC) = inp (N,C) · weight (OC,C)ᵀ + bias (OC)
pub fn matmul_forward(out: &mut [f32], inp: &[f32], weight: &[f32], bias: Option<&[f32]>, n: usize, c: usize, oc: usize) {
    gemm(n, c, oc, inp, c, 1, weight, 1, c, 0.0, out);
    if let Some(bias) = bias {
        for row in out[..n * oc].chunks_mut(oc) {
            for (o, b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
}

/// Accumulates dinp (N,C) += dout·weight, dweight (OC,C) += doutᵀ·inp, dbias (OC) += Σ_n dout.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    dinp: &mut [f32],
    dweight: &mut [f32],
    dbias: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    n: usize,
    c: usize,
    oc: usize,
) {
    gemm(n, oc, c, dout, oc, 1, weight, c, 1, 1.0, dinp);
    gemm(oc, n, c, dout, 1, oc, inp, c, 1, 1.0, dweight);
    if let Some(dbias) = dbias {
        for row in dout[..n * oc].chunks(oc) {
            for (db, d) in dbias.iter_mut().zip(row) {
                *db += d;
            }
        }
    }
}

/// The same product as plain loops: the definition the tests hold both GEMMs to.
#[allow(clippy::too_many_arguments)]
pub fn gemm_naive(m: usize, k: usize, n: usize, a: &[f32], a_rs: usize, a_cs: usize, b: &[f32], b_rs: usize, b_cs: usize, beta: f32, c: &mut [f32]) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += a[i * a_rs + p * a_cs] as f64 * b[p * b_rs + j * b_cs] as f64;
            }
            let prev = if beta == 0.0 { 0.0 } else { beta * c[i * n + j] };
            c[i * n + j] = prev + acc as f32;
        }
    }
}
