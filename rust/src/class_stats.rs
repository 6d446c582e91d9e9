//! Per-class sufficient statistics of a labelled sample, in one pass: weighted counts, means
//! and the centred scatter `Σ w (x − μ_y)(x − μ_y)ᵀ`, pooled over the classes or kept per class.
//!
//! These are what a shared-covariance Gaussian model (LDA, the closed-form logistic regression
//! of `seed-math.md` §2) needs, and they are *mergeable*: [`ClassStats::merge`] combines the
//! statistics of two samples into those of their union (Chan, Golub & LeVeque's pairwise
//! update), so threads, `partial_fit` calls and distributed workers all reuse one code path.
//!
//! # Accuracy
//! Accumulators are f64 for float32 and float64 data alike. Rows are read in blocks; each block
//! is centred on its own per-class means before its scatter is formed, and blocks are merged
//! with the pairwise update, so there is no `E[xxᵀ] − μμᵀ` cancellation. Rows are shifted by
//! their class's running mean before a block's mean is taken, so the only error that grows with
//! the size of the means is the rounding of the stored mean itself: the scatter's relative error
//! is about `ε·(1 + |μ|/σ)` (ε = 2⁻⁵³; tested to 10⁻¹³ against a two-pass reference, and to
//! 10⁻⁸ with means 10⁸ times the spread, where the moment difference would keep no digit).
//!
//! # Cost
//! One read of `x` (any strides; never copied), `2·n·d²·5/8`-ish flops in blocked `XᵀX`
//! products (only the lower block triangle is formed), and memory `O(K·d + S·d²)` beyond `x`
//! (`S` = 1 pooled, `K` per class) plus a block buffer per thread.

use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, ArrayView1, ArrayView2, ArrayViewMut2};

use crate::error::KernelError;
use crate::simd::Element;
use crate::threads;

/// Weighted per-class statistics of a sample with `n_features` features and `n_classes` classes.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassStats {
    n_classes: usize,
    n_features: usize,
    per_class: bool,
    /// `Σ w` per class, length `K`.
    pub weight: Vec<f64>,
    /// Weighted mean per class, row-major `K × d` (zero for a class of zero weight).
    pub mean: Vec<f64>,
    /// `Σ w (x − μ_y)(x − μ_y)ᵀ`, row-major and symmetric: one `d × d` matrix pooled over the
    /// classes, or `K` of them (one per class) when built with `per_class`.
    pub scatter: Vec<f64>,
}

impl ClassStats {
    /// The statistics of an empty sample.
    pub fn new(n_classes: usize, n_features: usize, per_class: bool) -> Self {
        let slots = if per_class { n_classes } else { 1 };
        ClassStats {
            n_classes,
            n_features,
            per_class,
            weight: vec![0.0; n_classes],
            mean: vec![0.0; n_classes * n_features],
            scatter: vec![0.0; slots * n_features * n_features],
        }
    }

    /// Statistics from their parts (e.g. a previous result handed back from Python).
    ///
    /// Errors: lengths must agree with `n_classes`, `n_features` and `per_class`; weights must
    /// be finite and ≥ 0.
    pub fn from_parts(
        n_classes: usize,
        n_features: usize,
        per_class: bool,
        weight: Vec<f64>,
        mean: Vec<f64>,
        scatter: Vec<f64>,
    ) -> Result<Self, KernelError> {
        let slots = if per_class { n_classes } else { 1 };
        let want = |arg, got: usize, expected: usize| {
            if got == expected {
                Ok(())
            } else {
                Err(KernelError::ShapeMismatch {
                    arg,
                    got: vec![got],
                    expected: vec![expected],
                })
            }
        };
        want("weight", weight.len(), n_classes)?;
        want("mean", mean.len(), n_classes * n_features)?;
        want("scatter", scatter.len(), slots * n_features * n_features)?;
        if weight.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(KernelError::InvalidValue {
                arg: "weight",
                message: "class weights must be finite and >= 0".into(),
            });
        }
        Ok(ClassStats {
            n_classes,
            n_features,
            per_class,
            weight,
            mean,
            scatter,
        })
    }

    /// Number of classes `K`.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of features `d`.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Whether the scatter is kept per class (`K × d × d`) rather than pooled (`d × d`).
    pub fn per_class(&self) -> bool {
        self.per_class
    }

    fn slot_of(&self, class: usize) -> usize {
        if self.per_class {
            class
        } else {
            0
        }
    }

    fn scatter_slot_mut(&mut self, slot: usize) -> ArrayViewMut2<'_, f64> {
        let d = self.n_features;
        ArrayViewMut2::from_shape((d, d), &mut self.scatter[slot * d * d..(slot + 1) * d * d])
            .expect("scatter slot is d × d")
    }

    /// Combine with the statistics of another sample: `self` becomes the statistics of the
    /// union. Exact up to rounding (Chan et al.): for each class,
    /// `M = M_a + M_b + (w_a w_b / (w_a + w_b)) δ δᵀ` with `δ = μ_b − μ_a`.
    ///
    /// Errors: both must have the same classes, features and scatter layout.
    pub fn merge(&mut self, other: &ClassStats) -> Result<(), KernelError> {
        if (self.n_classes, self.n_features, self.per_class)
            != (other.n_classes, other.n_features, other.per_class)
        {
            return Err(KernelError::ShapeMismatch {
                arg: "other",
                got: vec![other.n_classes, other.n_features, other.per_class as usize],
                expected: vec![self.n_classes, self.n_features, self.per_class as usize],
            });
        }
        for (a, b) in self.scatter.iter_mut().zip(&other.scatter) {
            *a += b;
        }
        let d = self.n_features;
        let mut correction = vec![0.0; d];
        for k in 0..self.n_classes {
            let (mean_a, mean_b) = (
                &self.mean[k * d..(k + 1) * d],
                &other.mean[k * d..(k + 1) * d],
            );
            for ((c, &a), &b) in correction.iter_mut().zip(mean_a).zip(mean_b) {
                *c = b - a;
            }
            if let Some(coef) = self.fold_class(k, other.weight[k], &correction) {
                let slot = self.slot_of(k);
                let row = ArrayView2::from_shape((1, d), &correction).expect("1 × d");
                general_mat_mul(coef, &row.t(), &row, 1.0, &mut self.scatter_slot_mut(slot));
            }
        }
        Ok(())
    }

    /// Fold a class's partial weight into the running one, given `delta` = its mean minus the
    /// running mean; return the coefficient `w_a w_b / (w_a + w_b)` of the `δ δᵀ` correction
    /// when both parts have weight.
    fn fold_class(&mut self, k: usize, weight_b: f64, delta: &[f64]) -> Option<f64> {
        let d = self.n_features;
        if weight_b <= 0.0 {
            return None;
        }
        let weight_a = self.weight[k];
        let total = weight_a + weight_b;
        let share = if weight_a > 0.0 {
            weight_b / total
        } else {
            1.0
        };
        for (ma, &dj) in self.mean[k * d..(k + 1) * d].iter_mut().zip(delta) {
            *ma += dj * share;
        }
        self.weight[k] = total;
        (weight_a > 0.0).then_some(weight_a * share)
    }

    /// Make each scatter slot symmetric from its lower triangle.
    fn mirror_lower(&mut self) {
        let d = self.n_features;
        for slot in self.scatter.chunks_exact_mut(d * d) {
            for i in 0..d {
                for j in 0..i {
                    slot[j * d + i] = slot[i * d + j];
                }
            }
        }
    }
}

/// Rows per block: the block buffer stays near 128 KiB (L2-resident) and the `XᵀX` products
/// are long enough to run near the GEMM kernel's peak.
fn block_rows(d: usize) -> usize {
    (65536 / d.max(1)).clamp(64, 1024)
}

/// Column panel width of the lower-triangle `XᵀX` product.
const PANEL: usize = 32;

/// `out += aᵀa` on the lower block triangle (row-major `out`, `d × d`).
fn add_gram_lower(a: ArrayView2<f64>, out: &mut ArrayViewMut2<f64>) {
    let d = a.ncols();
    if d <= 2 * PANEL {
        general_mat_mul(1.0, &a.t(), &a, 1.0, out);
        return;
    }
    for start in (0..d).step_by(PANEL) {
        let end = (start + PANEL).min(d);
        let left = a.slice(s![.., start..]);
        let right = a.slice(s![.., start..end]);
        let mut target = out.slice_mut(s![start.., start..end]);
        general_mat_mul(1.0, &left.t(), &right, 1.0, &mut target);
    }
}

/// What one row block needs besides the data: reusable buffers.
struct BlockScratch {
    rows: Vec<f64>,
    centred: Vec<f64>,
    weight: Vec<f64>,
    sum: Vec<f64>,
    mean: Vec<f64>,
    order: Vec<usize>,
    offsets: Vec<usize>,
}

impl BlockScratch {
    fn new(n_classes: usize, d: usize, block: usize) -> Self {
        BlockScratch {
            rows: vec![0.0; block * d],
            centred: vec![0.0; (block + n_classes) * d],
            weight: vec![0.0; n_classes],
            sum: vec![0.0; n_classes * d],
            mean: vec![0.0; n_classes * d],
            order: Vec::with_capacity(block),
            offsets: vec![0; n_classes + 1],
        }
    }
}

/// The labelled sample one call reads.
struct Sample<'a, E> {
    x: ArrayView2<'a, E>,
    classes: ArrayView1<'a, i64>,
    weights: Option<ArrayView1<'a, f64>>,
}

impl<E: Element> Sample<'_, E> {
    /// Copy rows `range` into `buf` (row-major, f64). Reads along whichever axis is contiguous.
    /// Returns `false` if a value is NaN or infinite.
    fn load_rows(&self, range: Range<usize>, buf: &mut [f64]) -> bool {
        let d = self.x.ncols();
        let block = self.x.slice(s![range, ..]);
        let mut finite = true;
        let (rs, cs) = (
            block.strides()[0].unsigned_abs(),
            block.strides()[1].unsigned_abs(),
        );
        if cs <= rs || block.nrows() <= 1 {
            for (row, out) in block.rows().into_iter().zip(buf.chunks_exact_mut(d)) {
                for (o, v) in out.iter_mut().zip(row.iter()) {
                    *o = v.to_f64();
                    finite &= o.is_finite();
                }
            }
        } else {
            for (j, col) in block.columns().into_iter().enumerate() {
                for (i, v) in col.iter().enumerate() {
                    let o = v.to_f64();
                    buf[i * d + j] = o;
                    finite &= o.is_finite();
                }
            }
        }
        finite
    }

    fn weight(&self, i: usize) -> f64 {
        self.weights.as_ref().map_or(1.0, |w| w[i])
    }
}

fn invalid(arg: &'static str, message: impl Into<String>) -> KernelError {
    KernelError::InvalidValue {
        arg,
        message: message.into(),
    }
}

/// Accumulate rows `range` of `sample` into `stats`, one block at a time.
fn accumulate_range<E: Element>(
    sample: &Sample<'_, E>,
    range: Range<usize>,
    stats: &mut ClassStats,
) -> Result<(), KernelError> {
    let (k_classes, d) = (stats.n_classes, stats.n_features);
    let block = block_rows(d);
    let mut sc = BlockScratch::new(k_classes, d, block);
    let mut start = range.start;
    while start < range.end {
        let end = (start + block).min(range.end);
        let n = end - start;
        if !sample.load_rows(start..end, &mut sc.rows[..n * d]) {
            return Err(invalid("X", "contains NaN or infinity"));
        }
        // Per-class weights and sums of this block.
        sc.weight.fill(0.0);
        sc.sum.fill(0.0);
        sc.offsets.fill(0);
        for i in 0..n {
            let c = sample.classes[start + i];
            let w = sample.weight(start + i);
            if !(0..k_classes as i64).contains(&c) {
                return Err(invalid(
                    "y",
                    format!("class code {c} is outside [0, {k_classes})"),
                ));
            }
            if !(w.is_finite() && w >= 0.0) {
                return Err(invalid("sample_weight", "must be finite and >= 0"));
            }
            let c = c as usize;
            sc.weight[c] += w;
            sc.offsets[stats.slot_of(c) + 1] += 1;
            // Rows are shifted by their class's running mean first, so block means and the
            // merge's δ are formed from small numbers even when the means are large.
            let row = &mut sc.rows[i * d..(i + 1) * d];
            let shift = &stats.mean[c * d..(c + 1) * d];
            for ((s, x), &m) in sc.sum[c * d..(c + 1) * d].iter_mut().zip(row).zip(shift) {
                *x -= m;
                *s += w * *x;
            }
        }
        for c in 0..k_classes {
            if sc.weight[c] > 0.0 {
                let inv = 1.0 / sc.weight[c];
                for (m, &s) in sc.mean[c * d..(c + 1) * d]
                    .iter_mut()
                    .zip(&sc.sum[c * d..(c + 1) * d])
                {
                    *m = s * inv;
                }
            }
        }
        // Segments of the centred buffer, one per scatter slot, each with room for one
        // merge-correction row per class it holds.
        let slots = if stats.per_class { k_classes } else { 1 };
        if stats.per_class {
            for c in 0..k_classes {
                sc.offsets[c + 1] += 1;
            }
        } else {
            sc.offsets[1] += k_classes;
        }
        for s in 0..slots {
            sc.offsets[s + 1] += sc.offsets[s];
        }
        // Centred, √w-scaled rows, grouped by slot.
        sc.order.clear();
        sc.order.extend_from_slice(&sc.offsets[..slots]);
        for i in 0..n {
            let c = sample.classes[start + i] as usize;
            let slot = stats.slot_of(c);
            let at = sc.order[slot];
            sc.order[slot] += 1;
            let root_w = sample.weight(start + i).sqrt();
            let row = &sc.rows[i * d..(i + 1) * d];
            let mean = &sc.mean[c * d..(c + 1) * d];
            for ((o, &x), &m) in sc.centred[at * d..(at + 1) * d]
                .iter_mut()
                .zip(row)
                .zip(mean)
            {
                *o = root_w * (x - m);
            }
        }
        // Fold each class's block into its running mean (the block mean, relative to the
        // running mean, is δ itself); the between-part correction becomes one more row of its
        // slot's segment.
        for c in 0..k_classes {
            let slot = stats.slot_of(c);
            let delta = &sc.mean[c * d..(c + 1) * d];
            if let Some(coef) = stats.fold_class(c, sc.weight[c], delta) {
                let at = sc.order[slot];
                sc.order[slot] += 1;
                let root = coef.sqrt();
                for (o, &dj) in sc.centred[at * d..(at + 1) * d].iter_mut().zip(delta) {
                    *o = root * dj;
                }
            }
        }
        for slot in 0..slots {
            let (lo, hi) = (sc.offsets[slot], sc.order[slot]);
            if hi > lo {
                let seg = ArrayView2::from_shape((hi - lo, d), &sc.centred[lo * d..hi * d])
                    .expect("segment is rows × d");
                add_gram_lower(seg, &mut stats.scatter_slot_mut(slot));
            }
        }
        start = end;
    }
    Ok(())
}

fn check_sample<E>(
    x: &ArrayView2<E>,
    classes: &ArrayView1<i64>,
    weights: &Option<ArrayView1<f64>>,
) -> Result<(), KernelError> {
    let n = x.nrows();
    if classes.len() != n {
        return Err(KernelError::ShapeMismatch {
            arg: "y",
            got: vec![classes.len()],
            expected: vec![n],
        });
    }
    if let Some(w) = weights {
        if w.len() != n {
            return Err(KernelError::ShapeMismatch {
                arg: "sample_weight",
                got: vec![w.len()],
                expected: vec![n],
            });
        }
    }
    Ok(())
}

/// The statistics of the sample `(x, classes, weights)`: rows of `x` (any layout) labelled
/// `classes[i] ∈ [0, n_classes)` with weights `weights[i] ≥ 0` (all 1 when `None`).
///
/// dtypes: float32 or float64 `x`; accumulation in f64. Threads: rows are split into one slab
/// per thread and the slabs' statistics merged in order, so results are reproducible for a
/// given thread count and agree across thread counts to rounding (≈ 1e-15 relative).
///
/// Errors: mismatched lengths, a class code out of range, a negative or non-finite weight, or
/// NaN/infinity in `x`.
pub fn class_stats<E: Element>(
    x: ArrayView2<E>,
    classes: ArrayView1<i64>,
    weights: Option<ArrayView1<f64>>,
    n_classes: usize,
    per_class: bool,
) -> Result<ClassStats, KernelError> {
    check_sample(&x, &classes, &weights)?;
    let (n, d) = x.dim();
    let sample = Sample {
        x,
        classes,
        weights,
    };
    // One flop of the blocked product costs ~1/16 of a softmax element.
    let work = n.saturating_mul(d).saturating_mul(d.max(16)) / 16;
    let parts = threads::map_row_slabs(n, work, |range| {
        let mut part = ClassStats::new(n_classes, d, per_class);
        accumulate_range(&sample, range, &mut part).map(|()| part)
    });
    let mut total = ClassStats::new(n_classes, d, per_class);
    for part in parts {
        let mut part = part?;
        part.mirror_lower();
        total.merge(&part)?;
    }
    Ok(total)
}

/// Per-group weighted fourth moment of standardised rows:
/// `F_g = Σ_{i: g_i = g} w_i (Σ_j ((x_ij − μ_gj)·s_gj)²)²` with `μ = centre`, `s = inv_scale`
/// (`G × d` each), for the Ledoit–Wolf shrinkage of each group's covariance. `groups = None`
/// puts every row in group 0.
///
/// dtypes: float32 or float64 `x`; f64 accumulation. Errors as [`class_stats`], and `centre`,
/// `inv_scale` must be `G × d`.
pub fn standardized_fourth_moments<E: Element>(
    x: ArrayView2<E>,
    groups: Option<ArrayView1<i64>>,
    weights: Option<ArrayView1<f64>>,
    centre: ArrayView2<f64>,
    inv_scale: ArrayView2<f64>,
) -> Result<Vec<f64>, KernelError> {
    let (n, d) = x.dim();
    let n_groups = centre.nrows();
    for (arg, m) in [("centre", &centre), ("inv_scale", &inv_scale)] {
        if m.dim() != (n_groups, d) {
            return Err(KernelError::ShapeMismatch {
                arg,
                got: m.shape().to_vec(),
                expected: vec![n_groups, d],
            });
        }
    }
    let zeros = ndarray::Array1::<i64>::zeros(n);
    let classes = groups.unwrap_or_else(|| zeros.view());
    check_sample(&x, &classes, &weights)?;
    let sample = Sample {
        x,
        classes,
        weights,
    };
    let block = block_rows(d);
    let parts = threads::map_row_slabs(n, n.saturating_mul(d), |range| {
        let mut acc = vec![0.0; n_groups];
        let mut rows = vec![0.0; block * d];
        let mut start = range.start;
        while start < range.end {
            let end = (start + block).min(range.end);
            if !sample.load_rows(start..end, &mut rows[..(end - start) * d]) {
                return Err(invalid("X", "contains NaN or infinity"));
            }
            for (i, row) in rows[..(end - start) * d].chunks_exact(d).enumerate() {
                let g = sample.classes[start + i];
                if !(0..n_groups as i64).contains(&g) {
                    return Err(invalid(
                        "y",
                        format!("group {g} is outside [0, {n_groups})"),
                    ));
                }
                let g = g as usize;
                let norm2: f64 = row
                    .iter()
                    .zip(centre.row(g))
                    .zip(inv_scale.row(g))
                    .map(|((&x, &m), &s)| {
                        let z = (x - m) * s;
                        z * z
                    })
                    .sum();
                acc[g] += sample.weight(start + i) * norm2 * norm2;
            }
            start = end;
        }
        Ok(acc)
    });
    let mut total = vec![0.0; n_groups];
    for part in parts {
        for (t, p) in total.iter_mut().zip(part?) {
            *t += p;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Two-pass reference in f64: means of the rows shifted by their class's first row (exact
    /// differences, so no large sums), then the scatter around them.
    fn reference(
        x: &Array2<f64>,
        y: &[i64],
        w: &[f64],
        k: usize,
        per_class: bool,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let d = x.ncols();
        let mut weight = vec![0.0; k];
        let mut shift = vec![f64::NAN; k * d];
        let mut local = vec![0.0; k * d];
        for (i, row) in x.rows().into_iter().enumerate() {
            let c = y[i] as usize;
            if shift[c * d].is_nan() {
                for j in 0..d {
                    shift[c * d + j] = row[j];
                }
            }
            weight[c] += w[i];
            for j in 0..d {
                local[c * d + j] += w[i] * (row[j] - shift[c * d + j]);
            }
        }
        let mut mean = vec![0.0; k * d];
        for c in 0..k {
            for j in 0..d {
                if weight[c] > 0.0 {
                    local[c * d + j] /= weight[c];
                    mean[c * d + j] = shift[c * d + j] + local[c * d + j];
                }
            }
        }
        let slots = if per_class { k } else { 1 };
        let mut scatter = vec![0.0; slots * d * d];
        for (i, row) in x.rows().into_iter().enumerate() {
            let c = y[i] as usize;
            let slot = if per_class { c } else { 0 };
            for a in 0..d {
                for b in 0..d {
                    let ea = (row[a] - shift[c * d + a]) - local[c * d + a];
                    let eb = (row[b] - shift[c * d + b]) - local[c * d + b];
                    scatter[slot * d * d + a * d + b] += w[i] * ea * eb;
                }
            }
        }
        (weight, mean, scatter)
    }

    fn assert_close(got: &[f64], want: &[f64], rtol: f64, what: &str) {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= rtol * scale,
                "{what}[{i}]: got {g}, want {w} (scale {scale})"
            );
        }
    }

    fn sample(
        n: usize,
        d: usize,
        k: usize,
        offset: f64,
        seed: u64,
    ) -> (Array2<f64>, Vec<i64>, Vec<f64>) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let y: Vec<i64> = (0..n).map(|_| rng.random_range(0..k as i64)).collect();
        let x = Array2::from_shape_fn((n, d), |(i, j)| {
            offset + (y[i] as f64) * 0.5 + (j as f64) * 0.01 + rng.random::<f64>() - 0.5
        });
        let w: Vec<f64> = (0..n).map(|_| rng.random_range(0..4) as f64).collect();
        (x, y, w)
    }

    #[test]
    fn matches_two_pass_reference_pooled_and_per_class() {
        for &(n, d, k) in &[
            (0usize, 3usize, 2usize),
            (1, 1, 1),
            (5, 2, 3),
            (1000, 7, 4),
            (3000, 70, 5),
        ] {
            let (x, y, w) = sample(n, d, k, 3.0, n as u64);
            for per_class in [false, true] {
                let got = class_stats(
                    x.view(),
                    Array1::from(y.clone()).view(),
                    Some(Array1::from(w.clone()).view()),
                    k,
                    per_class,
                )
                .unwrap();
                let (weight, mean, scatter) = reference(&x, &y, &w, k, per_class);
                assert_eq!(got.weight, weight);
                assert_close(&got.mean, &mean, 1e-14, "mean");
                assert_close(&got.scatter, &scatter, 1e-13, "scatter");
            }
        }
    }

    #[test]
    fn large_offsets_do_not_cancel() {
        // Means of 1e8 with unit spread: the moment difference would lose every digit.
        let (x, y, w) = sample(5000, 5, 3, 1e8, 7);
        let got = class_stats(x.view(), Array1::from(y.clone()).view(), None, 3, false).unwrap();
        let (_, _, scatter) = reference(&x, &y, &vec![1.0; 5000], 3, false);
        // |μ|/σ ≈ 3·10⁸: the stored means' rounding (ulp(10⁸) ≈ 1.5·10⁻⁸) bounds the accuracy.
        assert_close(&got.scatter, &scatter, 1e-8, "scatter");
        let _ = w;
    }

    #[test]
    fn merge_equals_union_and_layouts_agree() {
        let (x, y, w) = sample(2500, 9, 3, -2.0, 11);
        let yv = Array1::from(y.clone());
        let wv = Array1::from(w.clone());
        let whole = class_stats(x.view(), yv.view(), Some(wv.view()), 3, false).unwrap();
        let mut a = class_stats(
            x.slice(s![..900, ..]),
            yv.slice(s![..900]),
            Some(wv.slice(s![..900])),
            3,
            false,
        )
        .unwrap();
        let b = class_stats(
            x.slice(s![900.., ..]),
            yv.slice(s![900..]),
            Some(wv.slice(s![900..])),
            3,
            false,
        )
        .unwrap();
        a.merge(&b).unwrap();
        assert_close(&a.mean, &whole.mean, 1e-14, "mean");
        assert_close(&a.scatter, &whole.scatter, 1e-13, "scatter");
        // Fortran order, reversed rows, and float32 data read the same values.
        let f = x.t().as_standard_layout().into_owned().reversed_axes();
        assert!(f.t().is_standard_layout());
        let fo = class_stats(f.view(), yv.view(), Some(wv.view()), 3, false).unwrap();
        assert_close(&fo.scatter, &whole.scatter, 1e-13, "F-order scatter");
        let rev = class_stats(
            x.slice(s![..;-1, ..]),
            yv.slice(s![..;-1]),
            Some(wv.slice(s![..;-1])),
            3,
            false,
        )
        .unwrap();
        assert_close(&rev.scatter, &whole.scatter, 1e-13, "reversed scatter");
    }

    #[test]
    fn rejects_bad_input() {
        let x = Array2::<f64>::zeros((3, 2));
        let y = Array1::from(vec![0i64, 1, 2]);
        assert!(class_stats(x.view(), y.view(), None, 2, false).is_err());
        let y = Array1::from(vec![0i64, 1, 1]);
        let w = Array1::from(vec![1.0, -1.0, 1.0]);
        assert!(class_stats(x.view(), y.view(), Some(w.view()), 2, false).is_err());
        let mut xn = x.clone();
        xn[[1, 1]] = f64::NAN;
        assert!(class_stats(xn.view(), y.view(), None, 2, false).is_err());
        assert!(class_stats(x.view(), y.slice(s![..2]), None, 2, false).is_err());
    }

    #[test]
    fn fourth_moments_match_direct_sum() {
        let (x, y, w) = sample(700, 4, 2, 1.0, 5);
        let centre = Array2::from_shape_fn((2, 4), |(g, j)| g as f64 * 0.5 + j as f64 * 0.01);
        let inv_scale = Array2::from_shape_fn((2, 4), |(g, j)| 1.0 + g as f64 + j as f64);
        let yv = Array1::from(y.clone());
        let wv = Array1::from(w.clone());
        let got = standardized_fourth_moments(
            x.view(),
            Some(yv.view()),
            Some(wv.view()),
            centre.view(),
            inv_scale.view(),
        )
        .unwrap();
        let mut want = [0.0; 2];
        for (i, row) in x.rows().into_iter().enumerate() {
            let g = y[i] as usize;
            let r: f64 = (0..4)
                .map(|j| ((row[j] - centre[[g, j]]) * inv_scale[[g, j]]).powi(2))
                .sum();
            want[g] += w[i] * r * r;
        }
        assert_close(&got, &want, 1e-13, "F");
    }
}
