//! A worker's timers: a binary min-heap of deadlines, one entry per
//! coroutine at most, disarmed lazily.
//!
//! Each worker owns one `TimerHeap`, touched only by its own thread (the worker
//! loop and the coroutines it runs), so there is no lock; a started coroutine
//! never changes worker, so its timer is always in the same heap. A coroutine
//! that parks with a deadline *arms* its timer; when the deadline passes the
//! worker fires it, which unparks the coroutine; when the coroutine wakes for
//! another reason first it *disarms* it.
//!
//! I/O deadlines are armed and disarmed around nearly every wait of a server
//! with read timeouts (tens of thousands a second), almost always disarmed
//! long before they are due, and re-armed a little later each time. So, as Go
//! does for a timer modified to a later time, a disarmed timer's entry stays
//! in the heap, and re-arming it for a later deadline only records the wanted
//! deadline in its slot: both are O(1), with no sift and no reference count
//! touched. The entry is settled when it comes due: dropped if disarmed, moved
//! to the wanted deadline if that is later, fired otherwise. Re-arming for an
//! earlier deadline moves the entry up at once.
//!
//! # Slot states
//! ```text
//!   FREE --arm--> ARMED(wanted) --disarm--> DISARMED --arm--> ARMED(wanted)
//!                  |  ^  (entry due, wanted later: entry moves to wanted)
//!                  |  '--'
//!                  '--entry due at wanted: fires--> FREE
//!   DISARMED --entry due, or its coroutine ends (`forget`)--> FREE
//!   ARMED or DISARMED --shutdown (`clear`)--> FREE
//! ```
//! (A coroutine unwound by the shutdown while parked never disarms or forgets:
//! its entry stays armed until `clear`, and no timer fires during shutdown.)
//!
//! Invariants:
//! - `slots[heap[i].slot].position == i` for every heap index `i`; a slot is
//!   either in the heap (exactly one entry) or on the free list.
//! - `task.timer_slot == Some(s)` exactly while slot `s` is in the heap
//!   holding `task` (the slot holds an `Arc` of it).
//! - An armed slot's entry is due no later than its wanted deadline:
//!   `(entry.deadline, entry.sequence) <= wanted`. So nothing fires late, and
//!   among equal deadlines timers fire in arming order (the sequence numbers).
//! - A coroutine that ends forgets its entry, so a heap entry never keeps a
//!   finished task's memory alive until a far deadline.

use crate::task::Task;
use std::sync::Arc;
use std::time::Instant;

/// When a timer is due: a deadline, and its arming order among equal ones.
type Due = (Instant, u64);

struct HeapEntry {
    deadline: Instant,
    /// Arming order: equal deadlines fire first-in, first-out.
    sequence: u64,
    slot: usize,
}

impl HeapEntry {
    fn due(&self) -> Due {
        (self.deadline, self.sequence)
    }
}

struct Slot {
    /// Index in `heap` while in the heap.
    position: usize,
    task: Option<Arc<Task>>,
    /// When to fire: `None` while disarmed.
    wanted: Option<Due>,
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

    /// Entries in the heap, armed or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Arms `task`'s timer to unpark it at `deadline` (replacing whatever
    /// deadline it was armed for).
    pub(crate) fn arm(&mut self, task: &Arc<Task>, deadline: Instant) {
        let wanted = (deadline, self.next_sequence);
        self.next_sequence += 1;
        if let Some(slot) = task.timer_slot.get() {
            debug_assert!(self.slots[slot].task.as_ref().is_some_and(|t| Arc::ptr_eq(t, task)));
            self.slots[slot].wanted = Some(wanted);
            let position = self.slots[slot].position;
            if wanted < self.heap[position].due() {
                // Earlier than its entry: move the entry now (a later wanted
                // deadline waits until the entry comes due).
                (self.heap[position].deadline, self.heap[position].sequence) = wanted;
                self.sift_up(position);
            }
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot { position: 0, task: None, wanted: None });
                self.slots.len() - 1
            }
        };
        let position = self.heap.len();
        self.slots[slot] = Slot { position, task: Some(task.clone()), wanted: Some(wanted) };
        task.timer_slot.set(Some(slot));
        self.heap.push(HeapEntry { deadline, sequence: wanted.1, slot });
        self.sift_up(position);
    }

    /// Disarms `task`'s timer (its entry stays until due); does nothing if it
    /// has none armed.
    pub(crate) fn disarm(&mut self, task: &Task) {
        if let Some(slot) = task.timer_slot.get() {
            self.slots[slot].wanted = None;
        }
    }

    /// Removes `task`'s entry, armed or not: its coroutine has ended.
    pub(crate) fn forget(&mut self, task: &Task) {
        if let Some(slot) = task.timer_slot.get() {
            let position = self.slots[slot].position;
            drop(self.remove_at(position));
        }
    }

    /// The earliest entry's deadline (possibly a disarmed one's: waking for
    /// it only settles the entry).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|entry| entry.deadline)
    }

    /// Settles every entry due at `now`: hands each armed timer's task to
    /// `fire`, drops disarmed entries, moves re-armed ones to their wanted
    /// deadline. Returns how many fired.
    pub(crate) fn fire_expired(&mut self, now: Instant, mut fire: impl FnMut(Arc<Task>)) -> usize {
        let mut fired = 0;
        while let Some(first) = self.heap.first() {
            if first.deadline > now {
                break;
            }
            match self.slots[first.slot].wanted {
                Some(wanted) if wanted > first.due() => {
                    (self.heap[0].deadline, self.heap[0].sequence) = wanted;
                    self.sift_down(0);
                }
                Some(_) => {
                    fire(self.remove_at(0));
                    fired += 1;
                }
                // Its task is started and unfinished (one that ends forgets
                // its entry), so the owner's registry still holds it, and
                // this never runs during shutdown: not the last reference.
                None => drop(self.remove_at(0)),
            }
        }
        fired
    }

    /// Drops every entry (shutdown).
    pub(crate) fn clear(&mut self) {
        while !self.heap.is_empty() {
            drop(self.remove_at(self.heap.len() - 1));
        }
    }

    /// Takes the entry at `position` out of the heap and frees its slot.
    fn remove_at(&mut self, position: usize) -> Arc<Task> {
        let last = self.heap.len() - 1;
        self.heap.swap(position, last);
        let removed = self.heap.pop().expect("heap is non-empty");
        if position < self.heap.len() {
            self.slots[self.heap[position].slot].position = position;
            self.sift_down(position);
            self.sift_up(position);
        }
        let slot = &mut self.slots[removed.slot];
        slot.wanted = None;
        let task = slot.task.take().expect("a slot in the heap holds its task");
        task.timer_slot.set(None);
        self.free.push(removed.slot);
        task
    }

    fn less(&self, a: usize, b: usize) -> bool {
        self.heap[a].due() < self.heap[b].due()
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
            let slot = &self.slots[entry.slot];
            assert_eq!(slot.position, i);
            let task = slot.task.as_ref().expect("a slot in the heap holds its task");
            assert_eq!(task.timer_slot.get(), Some(entry.slot));
            if let Some(wanted) = slot.wanted {
                assert!(entry.due() <= wanted, "an armed entry is due no later than wanted");
            }
            if i > 0 {
                assert!(!self.less(i, (i - 1) / 2), "heap order");
            }
        }
        assert_eq!(self.heap.len() + self.free.len(), self.slots.len());
    }
}

#[cfg(test)]
mod tests {
    //! The heap is tested against a model: each task's wanted deadline (or
    //! none), with tasks of a throwaway runtime (a real `Task` is needed).
    use super::*;
    use crate::task::test_task;
    use proptest::prelude::*;
    use std::time::Duration;

    #[derive(Debug, Clone)]
    enum Op {
        /// Arm task `t` for `ms` after the base.
        Arm(usize, u64),
        Disarm(usize),
        Forget(usize),
        /// Fire everything due `ms` after the base (time only goes forward).
        Fire(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..6, 0u64..100).prop_map(|(t, ms)| Op::Arm(t, ms)),
            2 => (0usize..6).prop_map(Op::Disarm),
            1 => (0usize..6).prop_map(Op::Forget),
            2 => (0u64..100).prop_map(Op::Fire),
        ]
    }

    proptest! {
        /// Fired exactly the armed timers due, in (deadline, arming order);
        /// never a disarmed, forgotten or re-armed-later one; the invariants
        /// hold after every operation.
        #[test]
        fn fires_exactly_the_armed_timers_due_in_order(ops in proptest::collection::vec(op(), 1..80)) {
            let base = Instant::now();
            let tasks: Vec<Arc<Task>> = (0..6).map(|_| test_task()).collect();
            let mut heap = TimerHeap::new();
            // The model: per task, its wanted (ms, arming number).
            let mut model: Vec<Option<(u64, u64)>> = vec![None; tasks.len()];
            let (mut armed_count, mut clock) = (0u64, 0u64);
            for op in ops {
                match op {
                    Op::Arm(t, ms) => {
                        heap.arm(&tasks[t], base + Duration::from_millis(ms));
                        model[t] = Some((ms, armed_count));
                        armed_count += 1;
                    }
                    Op::Disarm(t) => {
                        heap.disarm(&tasks[t]);
                        model[t] = None;
                    }
                    Op::Forget(t) => {
                        heap.forget(&tasks[t]);
                        model[t] = None;
                    }
                    Op::Fire(ms) => {
                        clock = clock.max(ms);
                        let mut fired = Vec::new();
                        heap.fire_expired(base + Duration::from_millis(clock), |t| fired.push(t.id));
                        let mut due: Vec<(u64, u64, usize)> = model
                            .iter()
                            .enumerate()
                            .filter_map(|(t, w)| w.filter(|&(ms, _)| ms <= clock).map(|(ms, n)| (ms, n, t)))
                            .collect();
                        due.sort();
                        for &(_, _, t) in &due {
                            model[t] = None;
                        }
                        let expected: Vec<u64> = due.iter().map(|&(_, _, t)| tasks[t].id).collect();
                        prop_assert_eq!(fired, expected);
                        let now = base + Duration::from_millis(clock);
                        prop_assert!(heap.next_deadline().is_none_or(|d| d > now), "an entry due now was left");
                    }
                }
                heap.check_invariants();
            }
            heap.clear();
            prop_assert_eq!(heap.len(), 0);
            prop_assert!(tasks.iter().all(|t| t.timer_slot.get().is_none() && Arc::strong_count(t) == 1));
        }
    }

    #[test]
    fn only_expired_timers_fire() {
        let base = Instant::now();
        let mut heap = TimerHeap::new();
        let (a, b) = (test_task(), test_task());
        heap.arm(&a, base + Duration::from_millis(10));
        heap.arm(&b, base + Duration::from_millis(30));
        assert_eq!(heap.fire_expired(base + Duration::from_millis(20), |_| {}), 1);
        assert_eq!(heap.next_deadline(), Some(base + Duration::from_millis(30)));
    }

    #[test]
    fn rearming_later_keeps_one_entry_that_moves_when_due() {
        let base = Instant::now();
        let mut heap = TimerHeap::new();
        let task = test_task();
        for ms in 1..=100 {
            heap.arm(&task, base + Duration::from_millis(ms));
            heap.disarm(&task);
        }
        heap.arm(&task, base + Duration::from_millis(200));
        assert_eq!(heap.len(), 1, "one entry per task, however often re-armed");
        assert_eq!(heap.fire_expired(base + Duration::from_millis(150), |_| {}), 0, "moved, not fired");
        assert_eq!(heap.next_deadline(), Some(base + Duration::from_millis(200)));
        assert_eq!(heap.fire_expired(base + Duration::from_millis(200), |_| {}), 1);
        assert_eq!(heap.len(), 0);
    }

    #[test]
    fn rearming_earlier_moves_the_entry_up_at_once() {
        let base = Instant::now();
        let mut heap = TimerHeap::new();
        let (task, other) = (test_task(), test_task());
        heap.arm(&other, base + Duration::from_millis(50));
        heap.arm(&task, base + Duration::from_millis(100));
        heap.arm(&task, base + Duration::from_millis(10));
        assert_eq!(heap.next_deadline(), Some(base + Duration::from_millis(10)));
        let mut fired = Vec::new();
        heap.fire_expired(base + Duration::from_millis(10), |t| fired.push(t.id));
        assert_eq!(fired, [task.id]);
    }

    #[test]
    fn a_forgotten_entry_releases_its_task() {
        let mut heap = TimerHeap::new();
        let task = test_task();
        heap.arm(&task, Instant::now() + Duration::from_secs(60));
        heap.disarm(&task);
        assert_eq!(Arc::strong_count(&task), 2, "a disarmed entry still holds its task");
        heap.forget(&task);
        assert_eq!(Arc::strong_count(&task), 1);
        assert_eq!(heap.len(), 0);
    }
}
