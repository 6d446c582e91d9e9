//! The thread pool kernels run on, its size, and how work is split.
//!
//! Rows are independent and each row is computed the same way whatever the split, so results
//! are bit-identical for every thread count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::KernelError;

/// Environment variable read once for the initial thread count.
pub const THREADS_ENV: &str = "SMOOTHMAX_NUM_THREADS";

/// Work (elements) below which a call runs on the calling thread. Measured with
/// `benches/threads.py` on the 2-vCPU development VM: at 2¹⁶ elements 2 threads were slower
/// (×0.92–0.98), from 2¹⁸ usually faster (×1.4); waking an idle vCPU is what costs.
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 18;

/// The smallest range of work (elements) handed to one thread at a time.
const MIN_RANGE_ELEMENTS: usize = 1 << 14;

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
/// (`rows × row_len` elements) is large enough.
pub fn for_row_ranges<F>(rows: usize, row_len: usize, task: F)
where
    F: Fn(std::ops::Range<usize>) + Sync,
{
    let work = rows.saturating_mul(row_len.max(1));
    let pool = if rows > 1 && work >= PARALLEL_MIN_ELEMENTS {
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
    // row costs one small range); each range stays ≥ 16K elements, so taking one (an atomic
    // add) is noise next to its work.
    let min_rows = (MIN_RANGE_ELEMENTS / row_len.max(1)).max(1);
    let per_task = rows.div_ceil(threads * 16).max(min_rows);
    let tasks = rows.div_ceil(per_task);
    // Workers and the caller take ranges from one counter: the caller starts at once instead
    // of waiting for parked workers to wake, and whoever is faster takes more.
    let next = AtomicUsize::new(0);
    let work = || loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= tasks {
            break;
        }
        task(k * per_task..((k + 1) * per_task).min(rows));
    };
    pool.in_place_scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|_| work());
        }
        work();
    });
}

/// Split `0..rows` into one contiguous slab per thread (a single slab when `work`, in
/// element-equivalents, is below [`PARALLEL_MIN_ELEMENTS`]), run `task` on each and return
/// the results in slab order.
///
/// For reductions whose partial results are merged afterwards: the split depends only on
/// `rows` and the thread count, so a given thread count always gives the same result.
pub fn map_row_slabs<T, F>(rows: usize, work: usize, task: F) -> Vec<T>
where
    T: Send,
    F: Fn(std::ops::Range<usize>) -> T + Sync,
{
    let pool = if rows > 1 && work >= PARALLEL_MIN_ELEMENTS {
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
