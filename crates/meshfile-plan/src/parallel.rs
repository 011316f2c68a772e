//! Per-service work of a large mesh (compiling here; reading, packaging and writing at the
//! edge) spread over the cores. Results keep the items' order: output stays deterministic.

/// Below this many items a second thread costs more than it saves.
const MIN_PER_THREAD: usize = 32;

/// `f` applied to every item on a few threads (one per core); results in the items' order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    map_on(cores.clamp(1, 8), MIN_PER_THREAD, Deal::InRuns, items, f)
}

/// [`map`] for work that mostly waits on the network (one request per item): more threads
/// than cores, and one per item for short lists.
pub fn map_waiting<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_on(16, 1, Deal::InTurn, items, f)
}

/// How items are shared out among threads.
#[derive(Clone, Copy)]
enum Deal {
    /// Consecutive runs: neighbouring items (files of one directory) stay on one thread.
    InRuns,
    /// One at a time in turn: slow items (one server's answers) spread over all threads.
    InTurn,
}

fn map_on<T: Sync, R: Send>(
    most: usize,
    min_per_thread: usize,
    deal: Deal,
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = most.min(items.len().div_ceil(min_per_thread)).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let run = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                scope.spawn(move || {
                    let indices: Box<dyn Iterator<Item = usize>> = match deal {
                        Deal::InRuns => {
                            Box::new(worker * run..((worker + 1) * run).min(items.len()))
                        }
                        Deal::InTurn => Box::new((worker..items.len()).step_by(threads)),
                    };
                    indices.map(|i| f(&items[i])).collect::<Vec<R>>()
                })
            })
            .collect();
        let mut done: Vec<std::vec::IntoIter<R>> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
                    .into_iter()
            })
            .collect();
        match deal {
            // Runs in worker order are the items' order.
            Deal::InRuns => done.into_iter().flatten().collect(),
            // Item i was worker i % threads's (i / threads)-th.
            Deal::InTurn => (0..items.len())
                .filter_map(|i| done[i % threads].next())
                .collect(),
        }
    })
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
    }
}
