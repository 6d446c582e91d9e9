//! float32 kernels across 16 rows at once ("columns"): for reductions along a non-contiguous
//! axis (axis 0 of a C array, say) and for many short or medium rows (see the driver's
//! `SHORT_ROW` and `MEDIUM_ROW`), where a per-row kernel pays its horizontal reductions and
//! fixed costs for every few elements.
//!
//! A tile of up to 16 rows of length `n` is laid out as `n × 16` (element `i` of row `b` at
//! `i·16 + b`, padded rows hold `−inf`), so each vector holds the same element of 16 rows and
//! every pass is elementwise. The numerics are those of [`super::rows32`] with one shift per
//! lane (`K_m·ln 2`, exact reduction, `y` summed in f64 with its exact low part in f32 for
//! logsumexp / log_softmax, max entries counted apart); each row's sum runs over `i` in
//! order, the same on every ISA. Rows whose maximum exceeds the f32-lane range go through the
//! row kernels.

// Kernels index several per-lane arrays with one lane index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::rows::{two_sum_v, NextRow, Scaling};
use super::rows32::{
    f32_pairs, log_sums, lse_term, minus_pair, nf, paired_log_softmax, pass_terms, ratio, run_lse,
    tie_value, times_pair, widened_sums, LaneShift, LineSums, Shift, M_LIMIT, PAIR_MIN_LEN,
    RUN_MIN_LEN,
};
use crate::simd::{Element, Simd, VLANES};

/// What to compute for a tile.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColOp {
    /// logsumexp of each row into `lse[b]`.
    Lse,
    /// softmax in place.
    Softmax,
    /// log_softmax in place.
    LogSoftmax,
}

/// Process one `n × 16` tile in place (`tile[i·16 + b]`). For [`ColOp::Lse`] the 16 results go
/// to `lse`.
///
/// # Safety
/// `tile` must hold `n · 16` floats.
#[inline(always)]
pub(crate) unsafe fn tile<S: Simd>(
    s: S,
    tile: *mut f32,
    n: usize,
    op: ColOp,
    lse: &mut [f64; VLANES],
) {
    // Pass 1: per-lane max and NaN flags.
    let mut m = [s.fsplat(f32::NEG_INFINITY); VLANES];
    let mut nan = [s.fmnone(); VLANES];
    for i in 0..n {
        for j in 0..nf::<S>() {
            // SAFETY: i·16 + j·LANES32 + LANES32 <= n·16.
            let v = unsafe { s.fload(tile.add(i * VLANES + j * S::LANES32)) };
            m[j] = s.fmax(v, m[j]);
            nan[j] = s.fmor(nan[j], s.fis_nan(v));
        }
    }
    let mut ms = [0.0f32; VLANES];
    // Whether every lane's row is free of NaN and has a finite maximum within the f32-lane
    // range (the common case: its constants are computed in vector lanes).
    let mut regular = true;
    for j in 0..nf::<S>() {
        // SAFETY: ms holds VLANES floats.
        unsafe { s.fstore(ms.as_mut_ptr().add(j * S::LANES32), m[j]) };
        let outside = s.fmor(
            s.flt(s.fsplat(M_LIMIT), m[j]),
            s.flt(m[j], s.fsplat(-M_LIMIT)),
        );
        regular &= !s.fmany(s.fmor(outside, nan[j]));
    }
    let (lane_shift, k_m, saved, saved_far) = if regular {
        let (lane_shift, k_m) = LaneShift::of_maxima(s, &m);
        (lane_shift, k_m, Vec::new(), Vec::new())
    } else {
        // SAFETY: forwarded contract.
        unsafe { irregular_lanes(s, tile, n, &nan, &mut ms) }
    };
    // log_softmax rows that sum in pairs (`paired_log_softmax`, rows of at least
    // `PAIR_MIN_LEN`, which reach a tile only along a non-last axis or beside a NaN column)
    // take the row kernel on a copy at the end, so that every layout returns the 1-D call's
    // result.
    // SAFETY: forwarded contract.
    let saved_paired = unsafe { paired_lanes(tile, n, op, &ms) };
    // The maxima the entries are compared with to count ties apart: NaN (no entry matches) in
    // the rows whose logsumexp sums rounded terms, as the row kernel does (`fast_lse`).
    let mut m_ties = ms;
    if op == ColOp::Lse {
        let ln_n = (n as f64).ln();
        for b in 0..VLANES {
            m_ties[b] = tie_value(ms[b], ln_n, true);
        }
    }
    for j in 0..nf::<S>() {
        // SAFETY: m_ties holds VLANES floats.
        m[j] = unsafe { s.fload(m_ties.as_ptr().add(j * S::LANES32)) };
    }

    // Pass 2, two elements of every row at a time (their exponentials interleaved): softmax
    // writes y = 2^(K−K_m+64)(1 + t) over the tile and sums it in f64; logsumexp and
    // log_softmax sum y + y_lo exactly, max entries counted apart. Each row's sum runs over i
    // in order, the same on every ISA.
    let softmax = op == ColOp::Softmax;
    let mut sums = ColSums::<S> {
        acc: [s.splat(0.0); VLANES],
        lo: [s.fsplat(0.0); VLANES],
        ties: [s.fsplat(0.0); VLANES],
    };
    let lanes = (&m, &lane_shift);
    let mut i = 0;
    while i + 1 < n {
        // SAFETY: elements i and i + 1 of every row exist.
        unsafe { sums.step(s, tile.add(i * VLANES), 2, softmax, lanes) };
        i += 2;
    }
    if i < n {
        // SAFETY: element i of every row exists.
        unsafe { sums.step(s, tile.add(i * VLANES), 1, softmax, lanes) };
    }
    let mut lane_sums = LineSums {
        acc: [0.0; VLANES],
        lo: [0.0; VLANES],
        ties: [0.0; VLANES],
        tie: m_ties,
        m: ms,
        k_m,
    };
    lane_sums.acc = widened_sums(s, &sums.acc);
    for j in 0..nf::<S>() {
        // SAFETY: the arrays hold VLANES floats.
        unsafe {
            s.fstore(lane_sums.lo.as_mut_ptr().add(j * S::LANES32), sums.lo[j]);
            s.fstore(
                lane_sums.ties.as_mut_ptr().add(j * S::LANES32),
                sums.ties[j],
            );
        }
    }

    // Pass 3.
    match line_results(s, &lane_sums, op) {
        LineResults::Lse(values) => {
            *lse = values;
            // SAFETY: forwarded contract.
            unsafe { run_lanes_by_rows(s, tile, n, &ms, lse) };
        }
        LineResults::Pair(hi, lo) => {
            // SAFETY: the arrays hold VLANES floats; the tile holds n·16.
            unsafe { rewrite_lanes(s, tile, n, (&hi, &lo), op == ColOp::LogSoftmax) };
        }
    }

    // SAFETY (all): forwarded contract.
    unsafe { finish_far_lanes(s, tile, n, op, saved_paired, lse) };
    if !regular {
        unsafe { finish_far_lanes(s, tile, n, op, saved_far, lse) };
        unsafe { finish_special_lanes(tile, n, op, saved, lse) };
    }
}

/// The original values of a log_softmax tile's lanes that sum in pairs (see `tile`); `ms`
/// holds the lanes' maxima (0 for the special and far lanes, which never pair).
///
/// # Safety
/// `tile` must hold `n · 16` floats.
#[inline(always)]
unsafe fn paired_lanes(
    tile: *const f32,
    n: usize,
    op: ColOp,
    ms: &[f32; VLANES],
) -> Vec<(usize, Vec<f32>)> {
    if op != ColOp::LogSoftmax || n < PAIR_MIN_LEN {
        return Vec::new();
    }
    let ln_n = (n as f64).ln();
    let paired = ms.map(|m| paired_log_softmax(m, n, ln_n));
    // SAFETY: forwarded contract.
    unsafe { save_special_lanes(tile, n, &paired) }
}

/// The logsumexp of the lanes whose rows take the row kernel's f32 runs (`run_lse`: rows of
/// at least `RUN_MIN_LEN`, which reach a tile only along a non-last axis or beside a NaN
/// column), by that kernel on a copy of the row ([`finish_far_lanes`]), so that every layout
/// returns the 1-D call's result. `ms` holds the lanes' maxima (0 for the lanes finished
/// elsewhere).
///
/// # Safety
/// `tile` must hold `n · 16` floats.
#[inline(always)]
unsafe fn run_lanes_by_rows<S: Simd>(
    s: S,
    tile: *mut f32,
    n: usize,
    ms: &[f32; VLANES],
    lse: &mut [f64; VLANES],
) {
    if n < RUN_MIN_LEN {
        return;
    }
    let ln_n = (n as f64).ln();
    let runs = ms.map(|m| run_lse(m, n, ln_n));
    // SAFETY: forwarded contract.
    unsafe {
        let saved = save_special_lanes(tile, n, &runs);
        finish_far_lanes(s, tile, n, ColOp::Lse, saved, lse);
    }
}

/// What pass 3 of 16 lines (a tile's lanes or 16 strip columns) needs, from [`line_results`].
pub(crate) enum LineResults {
    /// logsumexp: `m + log S`.
    Lse([f64; VLANES]),
    /// An f32 pair `(hi, lo)` per line: `1/S` for softmax, `m + log S` for log_softmax.
    Pair([f32; VLANES], [f32; VLANES]),
}

/// The results of 16 lines from their pass-2 sums, in vector lanes by the same operations as
/// the row kernels' scalar ones, so every line returns what its row alone would.
#[inline(always)]
pub(crate) fn line_results<S: Simd>(s: S, sums: &LineSums, op: ColOp) -> LineResults {
    if op == ColOp::Softmax {
        let mut inv = [0.0f64; VLANES];
        for a in 0..VLANES / S::LANES {
            let at = a * S::LANES;
            // SAFETY: the arrays hold VLANES doubles.
            unsafe {
                let total = s.load_f64(sums.acc.as_ptr().add(at));
                s.store_f64(inv.as_mut_ptr().add(at), s.div(s.splat(1.0), total));
            }
        }
        let (hi, lo) = f32_pairs(s, &inv, &[0.0; VLANES]);
        return LineResults::Pair(hi, lo);
    }
    let logs = log_sums(s, sums);
    let (mut c, mut err) = ([0.0f64; VLANES], [0.0f64; VLANES]);
    for a in 0..VLANES / S::LANES {
        let at = a * S::LANES;
        // SAFETY: the arrays hold VLANES values.
        unsafe {
            let m = s.load_f32(sums.m.as_ptr().add(at));
            // m + log S as an f64 pair first: log S may be far below ulp(m).
            let (sum, e) = two_sum_v(s, m, s.load_f64(logs.as_ptr().add(at)));
            s.store_f64(c.as_mut_ptr().add(at), sum);
            s.store_f64(err.as_mut_ptr().add(at), e);
        }
    }
    if op == ColOp::Lse {
        // The high part of the pair: m + log S rounded once.
        return LineResults::Lse(c);
    }
    let (hi, lo) = f32_pairs(s, &c, &err);
    LineResults::Pair(hi, lo)
}

/// The lanes saved by [`save_special_lanes`] (their rows finished by the row kernels).
type SavedLanes = Vec<(usize, Vec<f32>)>;

/// The shift constants of a tile with a lane that has a NaN, no finite maximum or a maximum
/// beyond the f32-lane range (see [`tile`]), lane by lane: such lanes get a stand-in maximum of
/// 0 in `ms` (so the vector passes stay well defined) and their original rows are saved, the
/// special ones first and the far ones second, for the row kernels to finish.
///
/// # Safety
/// `tile` must hold `n · 16` floats.
#[inline(always)]
unsafe fn irregular_lanes<S: Simd>(
    s: S,
    tile: *const f32,
    n: usize,
    nan: &[S::FM; VLANES],
    ms: &mut [f32; VLANES],
) -> (LaneShift<S::F>, [f32; VLANES], SavedLanes, SavedLanes) {
    let mut special = [false; VLANES];
    for j in 0..nf::<S>() {
        if s.fmany(nan[j]) {
            let mut flags = [0.0f32; VLANES];
            // SAFETY: flags holds VLANES floats; a NaN lane stores a NaN there.
            unsafe { s.fstore(flags.as_mut_ptr(), s.fkeep(nan[j], s.fsplat(f32::NAN))) };
            for l in 0..S::LANES32 {
                special[j * S::LANES32 + l] |= flags[l].is_nan();
            }
        }
    }
    // Rows whose finite maximum is beyond the f32-lane range go through the row kernels
    // (f64 lanes) at the end, like the special rows.
    let mut far = [false; VLANES];
    let mut shifts = [Shift::of(0.0).expect("0 is in range"); VLANES];
    for b in 0..VLANES {
        special[b] |= !ms[b].is_finite();
        let shift = if special[b] { None } else { Shift::of(ms[b]) };
        far[b] = !special[b] && shift.is_none();
        if special[b] || far[b] {
            ms[b] = 0.0;
        }
        if let Some(shift) = shift {
            shifts[b] = shift;
        }
    }
    // Rows with a NaN or no finite maximum follow the row kernels' rules at the end, from
    // their original values (rare: a copy is fine).
    // SAFETY: forwarded contract.
    let saved = unsafe { save_special_lanes(tile, n, &special) };
    let saved_far = unsafe { save_special_lanes(tile, n, &far) };
    let k_m = shifts.map(|shift| shift.k_m as f32);
    (LaneShift::of_lanes(s, &shifts), k_m, saved, saved_far)
}

/// Pass 2 accumulators of a tile (see [`tile`]).
struct ColSums<S: Simd> {
    acc: [S::V; VLANES],
    lo: [S::F; VLANES],
    ties: [S::F; VLANES],
}

/// The per-lane max and shift constants.
type LaneConsts<'a, S> = (&'a [<S as Simd>::F; VLANES], &'a LaneShift<<S as Simd>::F>);

impl<S: Simd> ColSums<S> {
    /// Accumulate `elems` (1 or 2, a constant at each call site so the arrays stay in
    /// registers) consecutive elements of every row starting at `p`; softmax overwrites them
    /// with `y`.
    ///
    /// # Safety
    /// `p` must be valid for `elems · 16` floats.
    #[inline(always)]
    unsafe fn step(
        &mut self,
        s: S,
        p: *mut f32,
        elems: usize,
        softmax: bool,
        lanes: LaneConsts<S>,
    ) {
        let (m, shift) = lanes;
        let per = nf::<S>();
        let count = elems * per;
        let mut v = [s.fsplat(0.0); 2 * VLANES];
        for j in 0..count {
            // SAFETY: j·LANES32 + LANES32 <= elems·16.
            v[j] = unsafe { s.fload(p.add(j * S::LANES32)) };
        }
        let (t, p2) = pass_terms::<S, { 2 * VLANES }>(s, &v, count, shift, softmax);
        let one = s.fsplat(1.0);
        for j in 0..count {
            let a = j % per;
            let y = if softmax {
                let y = s.ffma(t[j], p2[j], p2[j]);
                // SAFETY: as above.
                unsafe { s.fstore(p.add(j * S::LANES32), y) };
                y
            } else {
                let (y, y_lo, at_max) = lse_term(s, t[j], p2[j], v[j], m[a]);
                self.ties[a] = s.fadd_keep(at_max, self.ties[a], one);
                self.lo[a] = s.fadd(self.lo[a], y_lo);
                y
            };
            for r in 0..ratio::<S>() {
                let k = a * ratio::<S>() + r;
                self.acc[k] = s.add(self.acc[k], s.widen_scaled(y, r));
            }
        }
    }
}

/// Pass 3 over a tile from a per-lane f32 pair `(hi[b], lo[b])`: softmax's
/// `y · (hi + lo)` (the pair is `1/S`) or, with `log`, log_softmax's `(x − hi) − lo` (the pair
/// is `m + log S`).
///
/// # Safety
/// `tile` must hold `n · 16` floats.
#[inline(always)]
unsafe fn rewrite_lanes<S: Simd>(
    s: S,
    tile: *mut f32,
    n: usize,
    (pair_hi, pair_lo): (&[f32; VLANES], &[f32; VLANES]),
    log: bool,
) {
    let (mut hi, mut lo) = ([s.fsplat(0.0); VLANES], [s.fsplat(0.0); VLANES]);
    for j in 0..nf::<S>() {
        // SAFETY: the arrays hold VLANES floats.
        unsafe {
            hi[j] = s.fload(pair_hi.as_ptr().add(j * S::LANES32));
            lo[j] = s.fload(pair_lo.as_ptr().add(j * S::LANES32));
        }
    }
    for i in 0..n {
        for j in 0..nf::<S>() {
            // SAFETY: the tile holds n·16 floats.
            unsafe {
                let p = tile.add(i * VLANES + j * S::LANES32);
                let v = s.fload(p);
                let y = if log {
                    minus_pair(s, v, hi[j], lo[j])
                } else {
                    times_pair(s, v, hi[j], lo[j])
                };
                s.fstore(p, y);
            }
        }
    }
}

/// Results for the saved rows whose maximum is beyond the shifted passes' range, from the row
/// kernels (which take the generic f64-lane path for them).
///
/// # Safety
/// `tile` must hold `n · 16` elements.
#[inline(always)]
pub(crate) unsafe fn finish_far_lanes<S: Simd, E: Element>(
    s: S,
    tile: *mut E,
    n: usize,
    op: ColOp,
    saved: Vec<(usize, Vec<E>)>,
    lse: &mut [f64; VLANES],
) {
    let mut stash = Vec::new();
    for (b, mut row) in saved {
        let p = row.as_mut_ptr();
        if op == ColOp::Lse {
            // SAFETY: row holds n elements.
            lse[b] = unsafe { super::rows::lse_row::<S, E>(s, p, n, NextRow::NONE) };
            continue;
        }
        let log = op == ColOp::LogSoftmax;
        // SAFETY: row holds n elements; in place is allowed.
        unsafe {
            super::rows::softmax_row::<S, E>(
                s,
                p,
                p,
                n,
                Scaling::NONE,
                log,
                &mut stash,
                NextRow::NONE,
            )
        };
        for (i, v) in row.into_iter().enumerate() {
            // SAFETY: i·16 + b < n·16.
            unsafe { *tile.add(i * VLANES + b) = v };
        }
    }
}

/// The original values of the lanes marked `special` (a NaN or no finite maximum), which
/// [`finish_special_lanes`] handles by the row kernels' rules once the vector passes are done.
///
/// # Safety
/// `tile` must hold `n · 16` elements.
pub(crate) unsafe fn save_special_lanes<E: Element>(
    tile: *const E,
    n: usize,
    special: &[bool; VLANES],
) -> Vec<(usize, Vec<E>)> {
    if !special.contains(&true) {
        return Vec::new(); // the common case, without the iterator chain's call
    }
    (0..VLANES)
        .filter(|&b| special[b])
        // SAFETY: i·16 + b < n·16.
        .map(|b| {
            (
                b,
                (0..n)
                    .map(|i| unsafe { *tile.add(i * VLANES + b) })
                    .collect(),
            )
        })
        .collect()
}

/// Overwrite the results of the saved lanes by the row kernels' rules for rows with a NaN or
/// no finite maximum (NaN; mass shared among `+inf`; zeros / `−inf`).
///
/// # Safety
/// `tile` must hold `n · 16` elements.
pub(crate) unsafe fn finish_special_lanes<E: Element>(
    tile: *mut E,
    n: usize,
    op: ColOp,
    saved: Vec<(usize, Vec<E>)>,
    lse: &mut [f64; VLANES],
) {
    for (b, mut row) in saved {
        let (mx, has_nan) = row.iter().fold((f64::NEG_INFINITY, false), |(m, nan), v| {
            let v = v.to_f64();
            (if v > m { v } else { m }, nan | v.is_nan())
        });
        match op {
            ColOp::Lse => lse[b] = if has_nan { f64::NAN } else { mx },
            ColOp::Softmax | ColOp::LogSoftmax => {
                let p = row.as_mut_ptr();
                // SAFETY: row holds n elements; in place is allowed.
                unsafe { super::rows::special_row(p, p, n, mx, has_nan, op == ColOp::LogSoftmax) };
                for (i, v) in row.into_iter().enumerate() {
                    // SAFETY: i·16 + b < n·16.
                    unsafe { *tile.add(i * VLANES + b) = v };
                }
            }
        }
    }
}
