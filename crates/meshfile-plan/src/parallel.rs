//! Per-service work of a large mesh (compiling here; reading, packaging and writing at the
//! edge) spread over the cores. Results keep the items' order: output stays deterministic.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Below this many items a second thread costs more than it saves.
const MIN_PER_THREAD: usize = 32;

/// Most items a thread takes at once: neighbours (files of one directory) stay together, and
/// the last runs are short enough that no thread waits long for another, even when other
/// work (a thread writing files) takes a core for a while.
const MOST_PER_RUN: usize = 64;

/// `f` applied to every item on a few threads (one per core); results in the items' order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores
        .clamp(1, 8)
        .min(items.len().div_ceil(MIN_PER_THREAD))
        .max(1);
    let run = (items.len() / (threads * 8)).clamp(1, MOST_PER_RUN);
    map_on(threads, run, items, f)
}

/// [`map`] for work that mostly waits on the network (one request per item): more threads
/// than cores, each taking one item at a time, so slow items spread over all of them.
pub fn map_waiting<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_on(16.min(items.len()), 1, items, f)
}

/// Threads take runs of `run` consecutive items, the next one free, until none is left.
fn map_on<T: Sync, R: Send>(
    threads: usize,
    run: usize,
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let mut runs: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(run, Ordering::Relaxed);
                        if start >= items.len() {
                            break done;
                        }
                        let end = (start + run).min(items.len());
                        done.push((start, items[start..end].iter().map(f).collect()));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    runs.sort_unstable_by_key(|(start, _)| *start);
    runs.into_iter().flat_map(|(_, results)| results).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            super::map(&items, |i| i * 2),
            (0..1000).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert_eq!(super::map(&[] as &[u32], |i| *i), Vec::<u32>::new());
        assert_eq!(
            super::map_waiting(&items[..5], |i| i + 1),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(
            super::map_waiting(&items, |i| i * 3),
            (0..1000).map(|i| i * 3).collect::<Vec<_>>()
        );
        // Runs of uneven cost still come back in order.
        assert_eq!(
            super::map(&items, |i| {
                if i % 97 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                i + 7
            }),
            (0..1000).map(|i| i + 7).collect::<Vec<_>>()
        );
    }
}
