//! Where a batch's positions lie when its rows end in padding: row i of a (B,T) batch holds lens[i]
//! positions, and only those are computed, stored one row after another (N = Σ lens positions).
//! A group of answers is padded to its longest, about a quarter of a batch's positions in the
//! lab's loop; with causal attention no real position depends on the padding after it.
//! Keys: B rows, T positions of the padded batch, N positions kept, W values per position.

use super::matmul::GEMM_KC;

#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// T of the padded batch; its B is lens.len().
    pub t: usize,
    pub lens: Vec<usize>,
    /// First kept position of each row, in the compact order (B+1 entries, the last N).
    starts: Vec<usize>,
}

impl Rows {
    /// Every row full: the compact order is the padded one.
    pub fn full(b: usize, t: usize) -> Self {
        Self::new(t, &vec![t; b])
    }

    /// Rows of lens[i] positions each in a batch padded to T (1 ≤ lens[i] ≤ t; the caller checks).
    pub fn new(t: usize, lens: &[usize]) -> Self {
        let mut starts = Vec::with_capacity(lens.len() + 1);
        let mut n = 0;
        for &len in lens {
            starts.push(n);
            n += len;
        }
        starts.push(n);
        Rows { t, lens: lens.to_vec(), starts }
    }

    /// Rows in the batch (B).
    pub fn b(&self) -> usize {
        self.lens.len()
    }

    /// Positions kept (N).
    pub fn n(&self) -> usize {
        self.starts[self.b()]
    }

    pub fn is_full(&self) -> bool {
        self.n() == self.b() * self.t
    }

    /// Row i's kept positions in the compact order.
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.starts[i]..self.starts[i + 1]
    }

    /// Attention weights (NH,len,len) of every row, one after another: Σ nh·len².
    pub fn att_size(&self, nh: usize) -> usize {
        self.lens.iter().map(|l| nh * l * l).sum()
    }

    /// Row i's attention weights (NH,len,len) among every row's.
    pub fn att_range(&self, i: usize, nh: usize) -> std::ops::Range<usize> {
        let start: usize = self.lens[..i].iter().map(|l| nh * l * l).sum();
        start..start + nh * self.lens[i] * self.lens[i]
    }

    /// x (B,T,W) -> the kept positions (N,W).
    pub fn gather<T: Copy>(&self, x: &[T], w: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(self.n() * w);
        for (i, &len) in self.lens.iter().enumerate() {
            out.extend_from_slice(&x[i * self.t * w..][..len * w]);
        }
        out
    }

    /// The kept positions (N,W) -> (B,T,W), `fill` at the padding.
    pub fn scatter<T: Copy>(&self, x: &[T], w: usize, fill: T) -> Vec<T> {
        let mut out = vec![fill; self.b() * self.t * w];
        for i in 0..self.b() {
            let r = self.range(i);
            out[i * self.t * w..][..r.len() * w].copy_from_slice(&x[r.start * w..r.end * w]);
        }
        out
    }

    /// Whether x (B,T,W) is `zero` at every padded position.
    pub fn padding_is<T: Copy + PartialEq>(&self, x: &[T], w: usize, zero: T) -> bool {
        self.lens.iter().enumerate().all(|(i, &len)| x[(i * self.t + len) * w..(i + 1) * self.t * w].iter().all(|&v| v == zero))
    }

    /// The kept positions cut where the padded batch's positions cross a multiple of the matrix
    /// library's block over k. A product that sums over positions (a weight's gradient) run once
    /// per piece adds the same terms in the same blocks as over the padded batch, whose padding
    /// adds only zeros: the gradients are those of the padded batch bit for bit.
    pub fn kc_pieces(&self) -> Vec<std::ops::Range<usize>> {
        let kept_before = |p: usize| -> usize { self.lens.iter().enumerate().map(|(i, &len)| p.saturating_sub(i * self.t).min(len)).sum() };
        let mut cuts: Vec<usize> = (0..=self.b() * self.t).step_by(GEMM_KC).map(kept_before).collect();
        cuts.push(self.n());
        cuts.dedup();
        cuts.windows(2).map(|w| w[0]..w[1]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_scatter_round_trip() {
        let r = Rows::new(4, &[2, 4, 1]);
        let x: Vec<u32> = (0..12).collect();
        let g = r.gather(&x, 1);
        assert_eq!(g, vec![0, 1, 4, 5, 6, 7, 8]);
        assert_eq!(r.scatter(&g, 1, 99), vec![0, 1, 99, 99, 4, 5, 6, 7, 8, 99, 99, 99]);
        assert_eq!((r.n(), r.range(1), r.att_size(2), r.att_range(2, 2)), (7, 2..6, 2 * (4 + 16 + 1), 2 * 20..2 * 21));
        assert!(r.padding_is(&r.scatter(&g, 1, 0), 1, 0) && !r.padding_is(&x, 1, 0));
    }

    #[test]
    fn kc_pieces_follow_the_padded_blocks() {
        let k = GEMM_KC;
        let t = k / 2 + 8;
        // padded row 1 spans t..2t and keeps t..k+12: the block boundary k falls inside it
        let r = Rows::new(t, &[t - 8, t - 4, 5]);
        let cut = r.range(1).start + (k - t);
        assert_eq!(r.kc_pieces(), vec![0..cut, cut..r.n()]);
        // the boundary in a row's padding: the next row starts the next piece
        let r = Rows::new(t, &[t - 8, 4, 5]);
        assert_eq!(r.kc_pieces(), vec![0..t - 4, t - 4..r.n()]);
        // at a row's first position
        let r = Rows::new(k, &[3, 5]);
        assert_eq!(r.kc_pieces(), vec![0..3, 3..8]);
        assert_eq!(Rows::full(2, 8).kc_pieces(), vec![0..16]);
    }
}
