//! float64 logsumexp along a non-last axis whose lines are adjacent in memory: the strips of
//! [`super::strips32`] with the numerics of the float64 column tiles
//! ([`super::cols64::tile_shifted`]): one shift per column, `y + y_lo` summed by TwoSum with
//! the max entries counted apart, each column's sum taken over `i` in order, two rows at a
//! time. Strips with a NaN, an infinite maximum or a maximum beyond
//! [`super::rows64::M_LIMIT`] are left to the column tiles.
//!
//! Only logsumexp: float64 softmax and log_softmax measured faster through the gathered tiles
//! (15 against 22 ms on (1000, 4096); their strips would stream 32 MB arrays three times,
//! while a tile's passes run from L2), logsumexp faster here (11 against 12.5 ms).

// Kernels index several per-column arrays with one index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::rows::two_sum;
use super::rows64::{
    accumulate, exp_terms_of_lines, fast_lane, lse_term, magic16, shift_lo, sum_to_max, to_max,
    LaneShift, Shift,
};
use super::strips32::StripView;
use crate::math::exp::MAGIC;
use crate::simd::{Simd, VLANES};

/// Columns per strip (a multiple of 16), as for float32.
pub(crate) const STRIP: usize = super::strips32::STRIP;

/// logsumexp of `w` columns of `n ≥ 1` rows into `lse[c]`; `false`, with nothing written,
/// when a column has a NaN, no finite maximum, or `|max| > M_LIMIT`.
///
/// # Safety
/// `w` is a multiple of 16 and at most [`STRIP`]; `x` is readable at `(i, c)` for `i < n`,
/// `c < w`; `lse` holds `w` values.
#[inline(always)]
pub(crate) unsafe fn lse_strip<S: Simd>(
    s: S,
    x: StripView<f64>,
    n: usize,
    w: usize,
    lse: &mut [f64],
) -> bool {
    debug_assert!(w.is_multiple_of(VLANES) && w <= STRIP && n >= 1);
    let l64 = S::LANES;

    // Pass 1: per-column max (NaN ignored by max), two rows at a time.
    let mut m = vec![f64::NEG_INFINITY; w];
    let mut nan = s.none();
    let mut i = 0;
    while i < n {
        let (a, b) = (x.row(i), x.row((i + 1).min(n - 1)));
        for c in (0..w).step_by(l64) {
            // SAFETY: rows i and min(i + 1, n − 1), columns c .. c + LANES are inside the
            // strip; m holds w doubles.
            unsafe {
                let (va, vb) = (s.load_f64(a.add(c)), s.load_f64(b.add(c)));
                let pm = m.as_mut_ptr().add(c);
                s.store_f64(pm, s.max(va, s.max(vb, s.load_f64(pm))));
                nan = s.or(nan, s.or(s.is_nan(va), s.is_nan(vb)));
            }
        }
        i += 2;
    }
    if s.any(nan) {
        return false;
    }
    let mut k_m = vec![0.0f64; w];
    let (mut low, mut k_mm, mut k_shift) = (vec![0.0; w], vec![0.0; w], vec![0.0; w]);
    for c in 0..w {
        let Some(shift) = Shift::of(m[c]) else {
            return false;
        };
        k_m[c] = shift.k_m;
        (low[c], k_mm[c], k_shift[c]) = (shift.low, MAGIC + shift.k_m, shift.k_m - 64.0);
    }

    // Pass 2: two rows at a time, 16 columns per step; the sums live in per-column arrays.
    let mut hi = vec![0.0f64; w];
    let mut lo = vec![0.0f64; w];
    let mut ties = vec![0.0f64; w];
    let (m_ties, keep_lo): (Vec<f64>, Vec<f64>) = m.iter().map(|&m| fast_lane(m, n, true)).unzip();
    let mut i = 0;
    while i < n {
        let rows = (n - i).min(2);
        for c in (0..w).step_by(VLANES) {
            // SAFETY: rows i .. i + rows and columns c .. c + 16 are inside the strip; the
            // state arrays hold w ≥ c + 16 values.
            unsafe {
                let lanes = load_lanes(
                    s,
                    low.as_ptr().add(c),
                    k_mm.as_ptr().add(c),
                    k_shift.as_ptr().add(c),
                );
                let state = StepState {
                    m: m_ties.as_ptr().add(c),
                    keep_lo: keep_lo.as_ptr().add(c),
                    hi: hi.as_mut_ptr().add(c),
                    lo: lo.as_mut_ptr().add(c),
                    ties: ties.as_mut_ptr().add(c),
                };
                // A literal row count at each call, so that the step's arrays stay in
                // registers once inlined.
                if rows == 2 {
                    step(s, x, i, 2, c, &lanes, state);
                } else {
                    step(s, x, i, 1, c, &lanes, state);
                }
            }
        }
        i += rows;
    }

    // The sums relative to each column's shift, converted to its max, and their logarithm.
    let mut f_hi = vec![0.0f64; w];
    let mut f_lo = vec![0.0f64; w];
    for c in (0..w).step_by(l64) {
        // SAFETY: the arrays hold w doubles.
        unsafe {
            let mv = s.load_f64(m.as_ptr().add(c));
            let kv = s.load_f64(k_m.as_ptr().add(c));
            let keep = s.load_f64(keep_lo.as_ptr().add(c));
            let (fh, fl) = to_max(s, mv, kv, shift_lo(s, kv, keep));
            s.store_f64(f_hi.as_mut_ptr().add(c), fh);
            s.store_f64(f_lo.as_mut_ptr().add(c), fl);
        }
    }
    for c in 0..w {
        let others = two_sum(hi[c], lo[c]);
        lse[c] = m[c] + sum_to_max(ties[c], others, (f_hi[c], f_lo[c])).ln();
    }
    true
}

/// The lane constants of 16 columns, for [`exp_terms`] (only the vectors it reads are set).
///
/// # Safety
/// Each pointer must be readable for 16 doubles.
#[inline(always)]
unsafe fn load_lanes<S: Simd>(
    s: S,
    low: *const f64,
    k_mm: *const f64,
    k_shift: *const f64,
) -> LaneShift<S::V> {
    let mut lanes = LaneShift {
        low: [s.splat(0.0); VLANES],
        k_mm: [s.splat(0.0); VLANES],
        k_shift: [s.splat(0.0); VLANES],
        magic16: [s.splat(0.0); VLANES],
    };
    for j in 0..VLANES / S::LANES {
        // SAFETY: the caller's contract.
        unsafe {
            lanes.low[j] = s.load_f64(low.add(j * S::LANES));
            lanes.k_mm[j] = s.load_f64(k_mm.add(j * S::LANES));
            lanes.k_shift[j] = s.load_f64(k_shift.add(j * S::LANES));
        }
        lanes.magic16[j] = magic16(s, lanes.k_shift[j]);
    }
    lanes
}

/// Pointers to the per-column state of 16 columns.
struct StepState {
    m: *const f64,
    keep_lo: *const f64,
    hi: *mut f64,
    lo: *mut f64,
    ties: *mut f64,
}

/// Pass 2 on rows `i .. i + rows` (`rows` is 1 or 2, a constant at each call site) of the 16
/// columns at `c`, as in the column tiles' step.
///
/// # Safety
/// As for [`lse_strip`], for these rows and columns; `state` points at 16 columns of each
/// array.
#[inline(always)]
unsafe fn step<S: Simd>(
    s: S,
    x: StripView<f64>,
    i: usize,
    rows: usize,
    c: usize,
    lanes: &LaneShift<S::V>,
    state: StepState,
) {
    let per = VLANES / S::LANES;
    let l64 = S::LANES;
    let count = rows * per;
    let mut v = [s.splat(0.0); 2 * VLANES];
    for k in 0..count {
        // SAFETY: forwarded contract.
        v[k] = unsafe { s.load_f64(x.row(i + k / per).add(c + (k % per) * l64)) };
    }
    let mut hi = [s.splat(0.0); VLANES];
    let mut lo = [s.splat(0.0); VLANES];
    let mut ties = [s.splat(0.0); VLANES];
    let mut m = [s.splat(0.0); VLANES];
    let mut keep_lo = [s.splat(0.0); VLANES];
    // SAFETY (loads and stores of the state): 16 columns of each array.
    unsafe {
        for j in 0..per {
            keep_lo[j] = s.load_f64(state.keep_lo.add(j * l64));
            hi[j] = s.load_f64(state.hi.add(j * l64));
            lo[j] = s.load_f64(state.lo.add(j * l64));
            ties[j] = s.load_f64(state.ties.add(j * l64));
            m[j] = s.load_f64(state.m.add(j * l64));
        }
    }
    let (t, p2) = exp_terms_of_lines::<S, { 2 * VLANES }>(s, &v, count, lanes, &keep_lo[..per]);
    let (zero, one) = (s.splat(0.0), s.splat(1.0));
    for k in 0..count {
        let j = k % per;
        let at_max = s.eq(v[k], m[j]);
        ties[j] = s.add(ties[j], s.select(at_max, one, zero));
        let (y, y_lo) = lse_term(s, t[k], p2[k], at_max);
        accumulate(s, &mut hi[j], &mut lo[j], y, s.mul(y_lo, keep_lo[j]));
    }
    // SAFETY: as above.
    unsafe {
        for j in 0..per {
            s.store_f64(state.hi.add(j * l64), hi[j]);
            s.store_f64(state.lo.add(j * l64), lo[j]);
            s.store_f64(state.ties.add(j * l64), ties[j]);
        }
    }
}
