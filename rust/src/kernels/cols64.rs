//! The column kernels (16 rows per vector pass, see [`super::cols32`]) in f64 lanes.
//!
//! [`tile_shifted`] takes float64 data without a temperature, with the numerics of
//! [`super::rows64`]. [`tile`] takes data with a temperature (float32 or float64), with those
//! of the generic row passes: TwoSum shift and exact division by the temperature, `2^k(1 + t)`
//! summed with per-lane compensation, `log1p` near 1, one rounding per output.

// Kernels index several per-lane arrays with one lane index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::cols32::{finish_far_lanes, finish_special_lanes, save_special_lanes, ColOp};
use super::rows::{shifted, spill, two_sum, ExpSum, Scaling};
use super::rows64::{
    accumulate, exp_terms_of_lines, fast_lane, lse_term, shift_lo, sum_to_max, to_max, LaneShift,
    Shift, SOFTMAX_SEED,
};
use crate::math::exp::MAGIC;
use crate::math::exp::{exp_parts, Degree};
use crate::simd::{Element, Simd, VLANES};

#[inline(always)]
fn nv<S: Simd>() -> usize {
    VLANES / S::LANES
}

/// Process one `n × 16` tile of `E` in place (`tile[i·16 + b]`), as [`super::cols32::tile`].
///
/// # Safety
/// `tile` must hold `n · 16` elements.
#[inline(always)]
pub(crate) unsafe fn tile<S: Simd, E: Element>(
    s: S,
    tile: *mut E,
    n: usize,
    op: ColOp,
    sc: Scaling,
    lse: &mut [f64; VLANES],
    stash: &mut Vec<f64>,
) {
    let degree = if E::IS_F64 {
        Degree::Full
    } else {
        Degree::Short
    };
    let at = |i: usize, j: usize| i * VLANES + j * S::LANES;
    // SAFETY: forwarded contract.
    let (mut ms, special) = unsafe { lane_max::<S, E>(s, tile, n) };
    for b in 0..VLANES {
        if special[b] {
            ms[b] = 0.0; // a finite stand-in; the lane's results are rewritten at the end
        }
    }
    let mut m = [s.splat(0.0); VLANES];
    for j in 0..nv::<S>() {
        // SAFETY: ms holds VLANES doubles.
        m[j] = unsafe { s.load_f64(ms.as_ptr().add(j * S::LANES)) };
    }
    // SAFETY: forwarded contract.
    let saved = unsafe { super::cols32::save_special_lanes(tile, n, &special) };

    // Pass 2: compensated per-lane sums; softmax keeps t and 2^k.
    let keep = op == ColOp::Softmax;
    if keep {
        stash.resize(2 * n * VLANES, 0.0);
    }
    let sp = stash.as_mut_ptr();
    let one = s.splat(1.0);
    let mut hi = [s.splat(0.0); VLANES];
    let mut lo = [s.splat(0.0); VLANES];
    for i in 0..n {
        for j in 0..nv::<S>() {
            // SAFETY: as in pass 1; the stash holds 2·n·16 doubles.
            unsafe {
                let v = E::load(s, tile.add(at(i, j)));
                let (d_hi, d_lo) = shifted::<S, E>(s, v, m[j], sc);
                let p = exp_parts(s, d_hi, d_lo, degree);
                if keep {
                    s.store_f64(sp.add(2 * at(i, j)), p.t);
                    s.store_f64(sp.add(2 * at(i, j) + S::LANES), s.mul(p.pow_a, p.pow_b));
                }
                let h = s.add(one, p.t);
                let l = s.sub(p.t, s.sub(h, one));
                let (eh, el) = (p.scale(s, h), p.scale(s, l));
                let sum = s.add(hi[j], eh);
                let bb = s.sub(sum, hi[j]);
                let err = s.add(s.sub(hi[j], s.sub(sum, bb)), s.sub(eh, bb));
                hi[j] = sum;
                lo[j] = s.add(lo[j], s.add(err, el));
            }
        }
    }
    let (mut his, mut los) = ([0.0f64; VLANES], [0.0f64; VLANES]);
    for j in 0..nv::<S>() {
        // SAFETY: both arrays hold VLANES doubles.
        unsafe {
            s.store_f64(his.as_mut_ptr().add(j * S::LANES), hi[j]);
            s.store_f64(los.as_mut_ptr().add(j * S::LANES), lo[j]);
        }
    }
    let sums: [ExpSum; VLANES] = std::array::from_fn(|b| {
        let (h, l) = two_sum(his[b], los[b]);
        ExpSum {
            hi: h,
            lo: l,
            below_single_max: None,
        }
    });

    // Pass 3.
    match op {
        ColOp::Lse => {
            for b in 0..VLANES {
                lse[b] = ms[b] + sums[b].ln();
            }
        }
        ColOp::Softmax => {
            let (mut ih, mut il) = ([0.0f64; VLANES], [0.0f64; VLANES]);
            for b in 0..VLANES {
                let (h, l) = (sums[b].hi, sums[b].lo);
                ih[b] = 1.0 / h;
                il[b] = ih[b] * (ih[b].mul_add(-h, 1.0) - l * ih[b]);
            }
            let (mut ihv, mut ilv) = ([s.splat(0.0); VLANES], [s.splat(0.0); VLANES]);
            for j in 0..nv::<S>() {
                // SAFETY: both arrays hold VLANES doubles.
                unsafe {
                    ihv[j] = s.load_f64(ih.as_ptr().add(j * S::LANES));
                    ilv[j] = s.load_f64(il.as_ptr().add(j * S::LANES));
                }
            }
            for i in 0..n {
                for j in 0..nv::<S>() {
                    // SAFETY: as in pass 2.
                    unsafe {
                        let t = s.load_f64(sp.add(2 * at(i, j)));
                        let p = s.load_f64(sp.add(2 * at(i, j) + S::LANES));
                        let low = s.fma(ilv[j], t, ilv[j]);
                        let y = s.mul(s.add(ihv[j], s.fma(ihv[j], t, low)), p);
                        E::store(s, tile.add(at(i, j)), y);
                    }
                }
            }
        }
        ColOp::LogSoftmax => {
            let logs: [f64; VLANES] = std::array::from_fn(|b| sums[b].ln());
            let mut lv = [s.splat(0.0); VLANES];
            for j in 0..nv::<S>() {
                // SAFETY: logs holds VLANES doubles.
                lv[j] = unsafe { s.load_f64(logs.as_ptr().add(j * S::LANES)) };
            }
            for i in 0..n {
                for j in 0..nv::<S>() {
                    // SAFETY: as in pass 1.
                    unsafe {
                        let p = tile.add(at(i, j));
                        let (d_hi, d_lo) = shifted::<S, E>(s, E::load(s, p), m[j], sc);
                        E::store(s, p, s.add(s.sub(d_hi, lv[j]), d_lo));
                    }
                }
            }
        }
    }

    // Rows with a NaN or no finite maximum: the row kernels' rules, from the originals.
    // SAFETY: forwarded contract.
    unsafe { super::cols32::finish_special_lanes(tile, n, op, saved, lse) };
}

/// Pass 1 of a tile: each lane's maximum (NaN ignored) and whether the lane is special (a NaN
/// or no finite maximum).
///
/// # Safety
/// `tile` must hold `n · 16` elements.
#[inline(always)]
unsafe fn lane_max<S: Simd, E: Element>(
    s: S,
    tile: *const E,
    n: usize,
) -> ([f64; VLANES], [bool; VLANES]) {
    let mut m = [s.splat(f64::NEG_INFINITY); VLANES];
    let mut nan = [s.none(); VLANES];
    for i in 0..n {
        for j in 0..nv::<S>() {
            // SAFETY: i·16 + j·LANES + LANES <= n·16.
            let v = unsafe { E::load(s, tile.add(i * VLANES + j * S::LANES)) };
            m[j] = s.max(v, m[j]);
            nan[j] = s.or(nan[j], s.is_nan(v));
        }
    }
    let mut ms = [0.0f64; VLANES];
    let mut special = [false; VLANES];
    for j in 0..nv::<S>() {
        let mut flags = [0.0f64; VLANES];
        // SAFETY: both arrays hold VLANES doubles.
        unsafe {
            s.store_f64(ms.as_mut_ptr().add(j * S::LANES), m[j]);
            s.store_f64(
                flags.as_mut_ptr(),
                s.select(nan[j], s.splat(f64::NAN), s.splat(0.0)),
            );
        }
        for l in 0..S::LANES {
            special[j * S::LANES + l] = flags[l].is_nan();
        }
    }
    for b in 0..VLANES {
        special[b] |= !ms[b].is_finite();
    }
    (ms, special)
}

/// Load 16 per-lane doubles as vectors.
#[inline(always)]
fn lanes_of<S: Simd>(s: S, a: &[f64; VLANES]) -> [S::V; VLANES] {
    let mut v = [s.splat(0.0); VLANES];
    for j in 0..nv::<S>() {
        // SAFETY: `a` holds VLANES doubles.
        v[j] = unsafe { s.load_f64(a.as_ptr().add(j * S::LANES)) };
    }
    v
}

/// Process one `n × 16` tile of float64 data without a temperature in place, with the
/// numerics of [`super::rows64`] and one shift per lane: exact reduction from `x`, `y` stored
/// and summed by Fast2Sum for softmax, `y + y_lo` summed by TwoSum with the max entries counted
/// apart for logsumexp / log_softmax. Each row's sum runs over `i` in order, the same on every
/// ISA. Rows whose maximum is beyond [`rows64::M_LIMIT`] go through the row kernels.
///
/// # Safety
/// `tile` must hold `n · 16` doubles.
#[inline(always)]
pub(crate) unsafe fn tile_shifted<S: Simd>(
    s: S,
    tile: *mut f64,
    n: usize,
    op: ColOp,
    lse: &mut [f64; VLANES],
) {
    // SAFETY (all blocks): forwarded contract.
    let (mut ms, special) = unsafe { lane_max::<S, f64>(s, tile, n) };
    let mut far = [false; VLANES];
    let mut low = [0.0f64; VLANES];
    let mut k_m = [0.0f64; VLANES];
    for b in 0..VLANES {
        let shift = if special[b] { None } else { Shift::of(ms[b]) };
        far[b] = !special[b] && shift.is_none();
        if special[b] || far[b] {
            // A small finite max keeps the vector passes well defined; the lane's results are
            // overwritten at the end.
            ms[b] = 0.0;
        }
        let shift = shift.or(Shift::of(0.0)).expect("0 is in range");
        (low[b], k_m[b]) = (shift.low, shift.k_m);
    }
    let saved = unsafe { save_special_lanes(tile, n, &special) };
    let saved_far = unsafe { save_special_lanes(tile, n, &far) };
    let m = lanes_of(s, &ms);
    let fast = ms.map(|m| fast_lane(m, n, op == ColOp::Lse));
    let m_ties = lanes_of(s, &fast.map(|f| f.0));
    let keep_lo = lanes_of(s, &fast.map(|f| f.1));
    let k_m_v = lanes_of(s, &k_m);
    let mut k_shift = k_m_v;
    for j in 0..nv::<S>() {
        k_shift[j] = s.sub(k_m_v[j], s.splat(64.0));
    }
    let mut k_mm = k_m_v;
    for j in 0..nv::<S>() {
        k_mm[j] = s.add(k_m_v[j], s.splat(MAGIC));
    }
    let mut magic16 = k_shift;
    for j in 0..nv::<S>() {
        magic16[j] = super::rows64::magic16(s, k_shift[j]);
    }
    let lanes = LaneShift {
        low: lanes_of(s, &low),
        k_mm,
        k_shift,
        magic16,
    };

    // Pass 2, two elements of every row at a time (their exponentials interleaved).
    let softmax = op == ColOp::Softmax;
    let seed = if softmax { SOFTMAX_SEED } else { 0.0 };
    let mut sums = ColSums::<S> {
        hi: [s.splat(seed); VLANES],
        lo: [s.splat(0.0); VLANES],
        ties: [s.splat(0.0); VLANES],
    };
    let ties_with = (&m_ties, &keep_lo);
    let mut i = 0;
    while i + 1 < n {
        // SAFETY: elements i and i + 1 of every row exist.
        unsafe { sums.step(s, tile.add(i * VLANES), 2, softmax, ties_with, &lanes) };
        i += 2;
    }
    if i < n {
        // SAFETY: element i of every row exists.
        unsafe { sums.step(s, tile.add(i * VLANES), 1, softmax, ties_with, &lanes) };
    }
    let (his, los) = (spill(s, &sums.hi), spill(s, &sums.lo));

    // Pass 3.
    if softmax {
        let (mut inv_hi, mut inv_lo) = ([0.0f64; VLANES], [0.0f64; VLANES]);
        for b in 0..VLANES {
            let (h, e) = two_sum(his[b], -seed);
            let (hi, lo) = two_sum(h, e + los[b]);
            inv_hi[b] = 1.0 / hi;
            inv_lo[b] = inv_hi[b] * (inv_hi[b].mul_add(-hi, 1.0) - lo * inv_hi[b]);
        }
        let (ih, il) = (lanes_of(s, &inv_hi), lanes_of(s, &inv_lo));
        // SAFETY: the tile holds n·16 doubles.
        unsafe { rewrite_lanes(s, tile, n, (&ih, &il), false) };
    } else {
        let mut f_hi = [s.splat(0.0); VLANES];
        let mut f_lo = [s.splat(0.0); VLANES];
        for j in 0..nv::<S>() {
            (f_hi[j], f_lo[j]) = to_max(s, m[j], k_m_v[j], shift_lo(s, k_m_v[j], keep_lo[j]));
        }
        let (f_hi, f_lo) = (spill(s, &f_hi), spill(s, &f_lo));
        let counts = spill(s, &sums.ties);
        let mut logs = [0.0f64; VLANES];
        for b in 0..VLANES {
            let others = two_sum(his[b], los[b]);
            logs[b] = sum_to_max(counts[b], others, (f_hi[b], f_lo[b])).ln();
        }
        if op == ColOp::Lse {
            for b in 0..VLANES {
                lse[b] = ms[b] + logs[b];
            }
        } else {
            let (mut c_hi, mut c_lo) = ([0.0f64; VLANES], [0.0f64; VLANES]);
            for b in 0..VLANES {
                // m + log S as a pair: log S may be far below ulp(m).
                (c_hi[b], c_lo[b]) = two_sum(ms[b], logs[b]);
            }
            let (ch, cl) = (lanes_of(s, &c_hi), lanes_of(s, &c_lo));
            // SAFETY: the tile holds n·16 doubles.
            unsafe { rewrite_lanes(s, tile, n, (&ch, &cl), true) };
        }
    }

    // SAFETY: forwarded contract.
    unsafe { finish_far_lanes(s, tile, n, op, saved_far, lse) };
    unsafe { finish_special_lanes(tile, n, op, saved, lse) };
}

/// Pass 2 accumulators of [`tile_shifted`]: per-lane double-double sums and tie counts.
struct ColSums<S: Simd> {
    hi: [S::V; VLANES],
    lo: [S::V; VLANES],
    ties: [S::V; VLANES],
}

impl<S: Simd> ColSums<S> {
    /// Accumulate `elems` (1 or 2, a constant at each call site so the arrays stay in
    /// registers) consecutive elements of every row starting at `p`; softmax overwrites them
    /// with `y`.
    ///
    /// # Safety
    /// `p` must be valid for `elems · 16` doubles.
    #[inline(always)]
    unsafe fn step(
        &mut self,
        s: S,
        p: *mut f64,
        elems: usize,
        softmax: bool,
        ties_with: (&[S::V; VLANES], &[S::V; VLANES]),
        lanes: &LaneShift<S::V>,
    ) {
        // The values entries are compared with to count ties, and the factor of each term's
        // low part (NaN and 0 in the lanes that sum rounded terms; see `fast_lane`).
        let (m, keep_lo) = ties_with;
        let per = nv::<S>();
        let count = elems * per;
        let mut v = [s.splat(0.0); 2 * VLANES];
        for j in 0..count {
            // SAFETY: j·LANES + LANES <= elems·16.
            v[j] = unsafe { s.load_f64(p.add(j * S::LANES)) };
        }
        let (t, p2) = exp_terms_of_lines::<S, { 2 * VLANES }>(s, &v, count, lanes, &keep_lo[..per]);
        let (zero, one) = (s.splat(0.0), s.splat(1.0));
        for j in 0..count {
            let a = j % per;
            if softmax {
                let y = s.fma(t[j], p2[j], p2[j]);
                // SAFETY: as above.
                unsafe { s.store_f64(p.add(j * S::LANES), y) };
                // Fast2Sum: every lane starts above any term.
                let sum = s.add(self.hi[a], y);
                let err = s.sub(y, s.sub(sum, self.hi[a]));
                self.hi[a] = sum;
                self.lo[a] = s.add(self.lo[a], err);
            } else {
                let at_max = s.eq(v[j], m[a]);
                self.ties[a] = s.add(self.ties[a], s.select(at_max, one, zero));
                let (y, y_lo) = lse_term(s, t[j], p2[j], at_max);
                accumulate(
                    s,
                    &mut self.hi[a],
                    &mut self.lo[a],
                    y,
                    s.mul(y_lo, keep_lo[a]),
                );
            }
        }
    }
}

/// Pass 3 over a tile from a per-lane pair `(hi, lo)`: softmax's `y·hi + y·lo` rounded once
/// (the pair is `1/S`) or, with `log`, log_softmax's `(x − hi) − lo` (the pair is `m + log S`).
///
/// # Safety
/// `tile` must hold `n · 16` doubles.
#[inline(always)]
unsafe fn rewrite_lanes<S: Simd>(
    s: S,
    tile: *mut f64,
    n: usize,
    (hi, lo): (&[S::V; VLANES], &[S::V; VLANES]),
    log: bool,
) {
    for i in 0..n {
        for j in 0..nv::<S>() {
            // SAFETY: the tile holds n·16 doubles.
            unsafe {
                let p = tile.add(i * VLANES + j * S::LANES);
                let v = s.load_f64(p);
                let y = if log {
                    s.sub(s.sub(v, hi[j]), lo[j])
                } else {
                    s.fma(v, hi[j], s.mul(v, lo[j]))
                };
                s.store_f64(p, y);
            }
        }
    }
}
