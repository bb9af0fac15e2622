//! A worker's timers: a binary min-heap of deadlines with O(log n) cancel.
//!
//! Each worker owns one `TimerHeap`, touched only by its own thread (the worker
//! loop and the coroutines it runs), so there is no lock. A coroutine that
//! parks with a deadline inserts an entry for itself; when the deadline passes
//! the worker fires it, which unparks the coroutine; when the coroutine wakes
//! for another reason first it cancels the entry. Cancelling is cheap and exact
//! (no tombstones left behind), because I/O deadlines will be armed and
//! cancelled on nearly every read with a timeout.
//!
//! # Entry states
//! ```text
//!   insert -> ARMED --deadline passes, worker fires--> FIRED (slot freed)
//!               \--cancel------------------------------> CANCELLED (slot freed)
//! ```
//! A `TimerKey` names a slot plus a generation; cancelling a key whose slot was
//! freed (fired) or reused (generation differs) does nothing, so a late cancel
//! never removes someone else's timer.
//!
//! Invariants: `slots[heap[i].slot].position == i` for every heap index `i`;
//! a slot is either in the heap or on the free list.

use crate::task::Task;
use std::sync::Arc;
use std::time::Instant;

/// Names an armed timer for `cancel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: usize,
    generation: u64,
}

struct HeapEntry {
    deadline: Instant,
    /// Insertion order: equal deadlines fire first-in, first-out.
    sequence: u64,
    slot: usize,
}

struct Slot {
    generation: u64,
    /// Index in `heap` while armed.
    position: usize,
    task: Option<Arc<Task>>,
}

#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: Vec<HeapEntry>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    next_sequence: u64,
}

impl TimerHeap {
    pub(crate) fn new() -> TimerHeap {
        TimerHeap::default()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Arms a timer that unparks `task` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, task: Arc<Task>) -> TimerKey {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot { generation: 0, position: 0, task: None });
                self.slots.len() - 1
            }
        };
        let generation = self.slots[slot].generation;
        self.slots[slot].task = Some(task);
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.heap.push(HeapEntry { deadline, sequence, slot });
        let last = self.heap.len() - 1;
        self.slots[slot].position = last;
        self.sift_up(last);
        TimerKey { slot, generation }
    }

    /// Disarms a timer; does nothing if it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, key: TimerKey) {
        let Some(slot) = self.slots.get(key.slot) else { return };
        if slot.generation != key.generation || slot.task.is_none() {
            return;
        }
        let position = slot.position;
        self.remove_at(position);
    }

    /// The earliest deadline, if any timer is armed.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|entry| entry.deadline)
    }

    /// Removes every timer due at `now` and hands its task to `fire`.
    pub(crate) fn fire_expired(&mut self, now: Instant, mut fire: impl FnMut(Arc<Task>)) -> usize {
        let mut fired = 0;
        while let Some(first) = self.heap.first() {
            if first.deadline > now {
                break;
            }
            if let Some(task) = self.remove_at(0) {
                fire(task);
                fired += 1;
            }
        }
        fired
    }

    /// Drops every armed timer (shutdown).
    pub(crate) fn clear(&mut self) {
        while !self.heap.is_empty() {
            self.remove_at(self.heap.len() - 1);
        }
    }

    fn remove_at(&mut self, position: usize) -> Option<Arc<Task>> {
        let last = self.heap.len() - 1;
        self.heap.swap(position, last);
        let removed = self.heap.pop().expect("heap is non-empty");
        if position < self.heap.len() {
            self.slots[self.heap[position].slot].position = position;
            self.sift_down(position);
            self.sift_up(position);
        }
        let slot = &mut self.slots[removed.slot];
        slot.generation += 1;
        self.free.push(removed.slot);
        slot.task.take()
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.heap[a], &self.heap[b]);
        (a.deadline, a.sequence) < (b.deadline, b.sequence)
    }

    fn swap_entries(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.slots[self.heap[a].slot].position = a;
        self.slots[self.heap[b].slot].position = b;
    }

    fn sift_up(&mut self, mut index: usize) {
        while index > 0 {
            let parent = (index - 1) / 2;
            if !self.less(index, parent) {
                break;
            }
            self.swap_entries(index, parent);
            index = parent;
        }
    }

    fn sift_down(&mut self, mut index: usize) {
        loop {
            let left = 2 * index + 1;
            let right = left + 1;
            let mut smallest = index;
            if left < self.heap.len() && self.less(left, smallest) {
                smallest = left;
            }
            if right < self.heap.len() && self.less(right, smallest) {
                smallest = right;
            }
            if smallest == index {
                break;
            }
            self.swap_entries(index, smallest);
            index = smallest;
        }
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        for (i, entry) in self.heap.iter().enumerate() {
            assert_eq!(self.slots[entry.slot].position, i);
            if i > 0 {
                assert!(!self.less(i, (i - 1) / 2), "heap order");
            }
        }
        assert_eq!(self.heap.len() + self.free.len(), self.slots.len());
    }
}

#[cfg(test)]
mod tests {
    //! The heap is tested with a stand-in task list: a real `Task` needs a
    //! runtime, so entries here carry tasks of a throwaway runtime.
    use super::*;
    use crate::task::test_task;
    use proptest::prelude::*;
    use std::time::Duration;

    proptest! {
        #[test]
        fn fires_in_deadline_order_and_cancel_is_exact(
            ops in proptest::collection::vec((0u64..50, any::<bool>()), 1..60)
        ) {
            let base = Instant::now();
            let mut heap = TimerHeap::new();
            let mut live: Vec<(TimerKey, u64, u64)> = Vec::new();
            for (delay, cancel_one) in ops {
                let task = test_task();
                let id = task.id;
                let key = heap.insert(base + Duration::from_millis(delay), task);
                live.push((key, delay, id));
                if cancel_one && live.len() > 1 {
                    let (key, _, _) = live.remove(live.len() / 2);
                    heap.cancel(key);
                    heap.cancel(key); // a second cancel is a no-op
                }
                heap.check_invariants();
            }
            let mut fired = Vec::new();
            heap.fire_expired(base + Duration::from_secs(1), |t| fired.push(t.id));
            // Deadline order, and insertion order among equal deadlines (the
            // heap's sequence numbers): a stable sort of the live timers,
            // which are in insertion order.
            live.sort_by_key(|&(_, delay, _)| delay);
            let expected: Vec<u64> = live.iter().map(|&(_, _, id)| id).collect();
            prop_assert_eq!(fired, expected);
            prop_assert_eq!(heap.len(), 0);
        }
    }

    #[test]
    fn only_expired_timers_fire() {
        let base = Instant::now();
        let mut heap = TimerHeap::new();
        heap.insert(base + Duration::from_millis(10), test_task());
        heap.insert(base + Duration::from_millis(30), test_task());
        assert_eq!(heap.fire_expired(base + Duration::from_millis(20), |_| {}), 1);
        assert_eq!(heap.next_deadline(), Some(base + Duration::from_millis(30)));
    }
}
