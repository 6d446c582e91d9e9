//! The thread pool kernels run on, its size, and how work is split.
//!
//! Rows are independent and each row is computed the same way whatever the split, so results
//! are bit-identical for every thread count.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::KernelError;
use crate::simd::VLANES;

/// Environment variable read once for the initial thread count.
pub const THREADS_ENV: &str = "SMOOTHMAX_NUM_THREADS";

/// Work below which a call runs on the calling thread, in float32 elements of the row passes
/// (a float64 element counts [`crate::simd::Element::WORK`] = 3, a float32 one 1). Measured
/// with `benches/threads.py` on the 2-vCPU development VM: at 2¹⁶ float32 elements 2 threads
/// were slower (×0.92–0.98), from 2¹⁸ usually faster (×1.4); waking an idle vCPU is what
/// costs, and it costs the same time whatever the dtype, so float64 calls of a third of the
/// elements (the same ~150 µs of work) start two threads too.
pub const PARALLEL_MIN_WORK: usize = 1 << 18;

/// The smallest range of work (float32 elements) handed to one thread at a time.
const MIN_RANGE_WORK: usize = 1 << 14;

struct PoolState {
    threads: usize,
    pool: Option<Arc<ThreadPool>>,
}

fn state() -> &'static Mutex<PoolState> {
    static STATE: OnceLock<Mutex<PoolState>> = OnceLock::new();
    STATE.get_or_init(|| {
        let default = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = std::env::var(THREADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n >= 1)
            .unwrap_or(default);
        Mutex::new(PoolState {
            threads,
            pool: None,
        })
    })
}

/// Set the number of threads kernels use (≥ 1).
pub fn set_num_threads(n: usize) -> Result<(), KernelError> {
    if n == 0 {
        return Err(KernelError::InvalidValue {
            arg: "n",
            message: "the number of threads must be at least 1".into(),
        });
    }
    let mut st = state().lock().unwrap_or_else(|e| e.into_inner());
    if st.threads != n {
        st.threads = n;
        st.pool = None;
    }
    Ok(())
}

/// The number of threads kernels use.
pub fn get_num_threads() -> usize {
    state().lock().unwrap_or_else(|e| e.into_inner()).threads
}

/// The pool for `threads > 1`, built on first use.
fn pool() -> Option<Arc<ThreadPool>> {
    let mut st = state().lock().unwrap_or_else(|e| e.into_inner());
    if st.threads <= 1 {
        return None;
    }
    if st.pool.is_none() {
        // The calling thread works too (see `for_row_ranges`): the pool holds the others.
        let n = st.threads - 1;
        st.pool = ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("smoothmax-{i}"))
            .build()
            .ok()
            .map(Arc::new);
    }
    st.pool.clone()
}

/// Run `task` over `0..rows`, split into contiguous ranges across the pool when the work
/// (`rows × row_work`, in float32 elements: see [`PARALLEL_MIN_WORK`]) is large enough.
///
/// The caller works too and never waits for a pool thread to wake: it takes ranges from a
/// shared counter until none is left, then waits only for the ranges helpers are running. A
/// helper that wakes after that finds the counter spent and returns without touching `task`
/// (on this VM a parked thread took longer to wake than a 10⁶-element call: waiting for it
/// made calls spaced by idle time slower on two threads than on one).
pub fn for_row_ranges<F>(rows: usize, row_work: usize, task: F)
where
    F: Fn(std::ops::Range<usize>) + Sync,
{
    let work = rows.saturating_mul(row_work.max(1));
    let pool = if rows > 1 && work >= PARALLEL_MIN_WORK {
        pool()
    } else {
        None
    };
    let Some(pool) = pool else {
        task(0..rows);
        return;
    };
    let threads = pool.current_num_threads() + 1;
    // Many ranges per thread keep the end of a call balanced (a late-waking worker or a slow
    // row costs one small range); each range stays ≥ 16K float32 elements of work, so taking
    // one (an atomic add) is noise next to it.
    let min_rows = (MIN_RANGE_WORK / row_work.max(1)).max(1);
    // Whole multiples of VLANES rows: kernels that take short rows or columns 16 at a time
    // (tiles, strips) would otherwise pad a partial group at every range's end (float64
    // (2000, 50) calls were 5–7% slower where the caller ran all the ranges itself).
    let per_task = rows
        .div_ceil(threads * 16)
        .max(min_rows)
        .next_multiple_of(VLANES);
    let task: &(dyn Fn(std::ops::Range<usize>) + Sync) = &task;
    // SAFETY: the pointer outlives its lifetime only inside `Ranges`, which dereferences it for
    // a claimed range alone; every claim happens before this function returns (see `drain`).
    let task = TaskPtr(unsafe {
        std::mem::transmute::<
            *const (dyn Fn(std::ops::Range<usize>) + Sync + '_),
            *const (dyn Fn(std::ops::Range<usize>) + Sync + 'static),
        >(task)
    });
    let ranges = Arc::new(Ranges {
        next: AtomicUsize::new(0),
        tasks: rows.div_ceil(per_task),
        per_task,
        rows,
        busy: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
        task,
    });
    for _ in 1..threads {
        let ranges = Arc::clone(&ranges);
        pool.spawn(move || ranges.help());
    }
    let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ranges.drain()));
    // No range is left to claim (drain returned, or the caller panicked: close the counter),
    // so only helpers that already hold one can still call `task`.
    ranges.next.fetch_max(ranges.tasks, Ordering::SeqCst);
    let mut spins = 0u32;
    while ranges.busy.load(Ordering::SeqCst) != 0 {
        // A helper finishes its range soon; yield only if it seems descheduled.
        if spins < 1 << 12 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    if let Err(payload) = mine {
        std::panic::resume_unwind(payload);
    }
    if ranges.panicked.load(Ordering::SeqCst) {
        panic!("a kernel task panicked on a pool thread");
    }
}

/// `task` with its lifetime erased (see [`for_row_ranges`]).
struct TaskPtr(*const (dyn Fn(std::ops::Range<usize>) + Sync + 'static));

// SAFETY: the pointee is `Sync`, and it is only called for ranges claimed while the caller of
// `for_row_ranges` is still waiting (see `Ranges::drain`).
unsafe impl Send for TaskPtr {}
// SAFETY: as above.
unsafe impl Sync for TaskPtr {}

/// One call's ranges, shared by the caller and the pool's helper jobs; on the heap, so that a
/// helper starting after the call has returned touches only this.
struct Ranges {
    /// The next range index to claim (past `tasks` once all are taken).
    next: AtomicUsize,
    tasks: usize,
    per_task: usize,
    rows: usize,
    /// Helpers between announcing themselves and finishing their last range.
    busy: AtomicUsize,
    panicked: AtomicBool,
    task: TaskPtr,
}

impl Ranges {
    /// Claim and run ranges until none is left.
    fn drain(&self) {
        loop {
            let k = self.next.fetch_add(1, Ordering::SeqCst);
            if k >= self.tasks {
                return;
            }
            // SAFETY: range k was claimed, so the caller of `for_row_ranges` has not passed its
            // wait: it closes the counter first and then waits while `busy` is nonzero, and a
            // helper raises `busy` before claiming (SeqCst orders the two: a helper that
            // raises it after the caller saw zero claims past `tasks`). The caller's own
            // claims happen before it returns.
            let task = unsafe { &*self.task.0 };
            task(k * self.per_task..((k + 1) * self.per_task).min(self.rows));
        }
    }

    /// A pool thread's share: announce, drain, and record a panic for the caller.
    fn help(&self) {
        self.busy.fetch_add(1, Ordering::SeqCst);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.drain()));
        if result.is_err() {
            self.panicked.store(true, Ordering::SeqCst);
        }
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Split `0..rows` into one contiguous slab per thread (a single slab when `work`, in
/// element-equivalents, is below [`PARALLEL_MIN_WORK`]), run `task` on each and return
/// the results in slab order.
///
/// For reductions whose partial results are merged afterwards: the split depends only on
/// `rows` and the thread count, so a given thread count always gives the same result.
pub fn map_row_slabs<T, F>(rows: usize, work: usize, task: F) -> Vec<T>
where
    T: Send,
    F: Fn(std::ops::Range<usize>) -> T + Sync,
{
    let pool = if rows > 1 && work >= PARALLEL_MIN_WORK {
        pool()
    } else {
        None
    };
    let Some(pool) = pool else {
        return vec![task(0..rows)];
    };
    let slabs = (pool.current_num_threads() + 1).min(rows);
    let per_slab = rows.div_ceil(slabs);
    let results: Vec<Mutex<Option<T>>> = (0..slabs).map(|_| Mutex::new(None)).collect();
    let run = |k: usize| {
        let value = task((k * per_slab).min(rows)..((k + 1) * per_slab).min(rows));
        *results[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    };
    pool.in_place_scope(|scope| {
        for k in 1..slabs {
            let run = &run;
            scope.spawn(move |_| run(k));
        }
        run(0);
    });
    results
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row is visited exactly once per call, whether the helpers arrive in time, late
    /// (after idle gaps that let them park) or after the call has returned.
    #[test]
    fn every_row_once_with_late_helpers() {
        set_num_threads(3).unwrap();
        for call in 0..200 {
            let rows = 64 + call * 7;
            let seen: Vec<AtomicUsize> = (0..rows).map(|_| AtomicUsize::new(0)).collect();
            for_row_ranges(rows, PARALLEL_MIN_WORK / 64, |range| {
                for r in range {
                    seen[r].fetch_add(1, Ordering::Relaxed);
                }
            });
            assert!(
                seen.iter().all(|c| c.load(Ordering::Relaxed) == 1),
                "call {call}"
            );
            if call % 10 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
        }
        set_num_threads(std::thread::available_parallelism().map_or(1, |n| n.get())).unwrap();
    }

    /// Ranges start at multiples of VLANES rows (whole tiles) and cover every row once.
    #[test]
    fn ranges_hold_whole_groups_of_rows() {
        set_num_threads(2).unwrap();
        for (rows, row_work) in [(2000, 150), (1000, 1000), (77, 1 << 14), (5000, 3 << 10)] {
            let ranges = Mutex::new(Vec::new());
            for_row_ranges(rows, row_work, |range| ranges.lock().unwrap().push(range));
            let mut ranges = ranges.into_inner().unwrap();
            ranges.sort_by_key(|r| r.start);
            assert!(ranges.len() > 1, "{rows} rows of {row_work}: not split");
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.start, next, "{rows} rows of {row_work}: {ranges:?}");
                assert_eq!(r.start % VLANES, 0, "{rows} rows of {row_work}: {ranges:?}");
                next = r.end;
            }
            assert_eq!(next, rows);
        }
        set_num_threads(std::thread::available_parallelism().map_or(1, |n| n.get())).unwrap();
    }

    /// A panic in a range, on the caller or on a pool thread, reaches the caller, and the
    /// pool keeps working.
    #[test]
    fn a_panicking_range_reaches_the_caller() {
        set_num_threads(2).unwrap();
        for bad in [0usize, 500, 1023] {
            let result = std::panic::catch_unwind(|| {
                for_row_ranges(1024, 1024, |range| {
                    if range.contains(&bad) {
                        panic!("row {bad}");
                    }
                })
            });
            assert!(result.is_err(), "row {bad}");
        }
        let total = AtomicUsize::new(0);
        for_row_ranges(1024, 1024, |range| {
            total.fetch_add(range.len(), Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 1024);
        set_num_threads(std::thread::available_parallelism().map_or(1, |n| n.get())).unwrap();
    }
}
