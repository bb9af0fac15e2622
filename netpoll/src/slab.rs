//! The poller's table of live registrations, indexed by the epoll key.
//!
//! A key packs a slab index (low half of a `usize`) and the slot's generation (high half).
//! Removing an entry bumps the slot's generation, and freed indices are reused LIFO, so the
//! key of a closed registration never matches the registration that later takes its index.
//!
//! Why: `epoll_wait` may return an event for registration R into the waiting thread's buffer,
//! then another thread closes R, closes the fd, opens a new fd that gets the same number and
//! registers it (possibly in the same slab index). When the waiting thread dispatches, the old
//! key's generation no longer matches, so the event is dropped instead of waking the new owner.
//!
//! Invariants: a key is never `usize::MAX` (reserved by `polling` for its notifier): the index
//! is always below `INDEX_MASK`. Generations wrap; a stale key would have to survive 2^32 (on
//! 64-bit) reuses of the same index between fetch and dispatch to be misdelivered.

use crate::slot::IoState;
use std::io;
use std::sync::Arc;

const SHIFT: u32 = usize::BITS / 2;
pub(crate) const INDEX_MASK: usize = (1 << SHIFT) - 1;
const GEN_MASK: usize = INDEX_MASK;

struct Entry {
    generation: usize,
    state: Option<Arc<IoState>>,
}

pub(crate) struct Slab {
    entries: Vec<Entry>,
    free: Vec<usize>,
    live: usize,
}

pub(crate) fn key_of(index: usize, generation: usize) -> usize {
    debug_assert!(index < INDEX_MASK && generation <= GEN_MASK);
    (generation << SHIFT) | index
}

fn split(key: usize) -> (usize, usize) {
    (key & INDEX_MASK, key >> SHIFT)
}

impl Slab {
    pub(crate) fn new() -> Slab {
        Slab { entries: Vec::new(), free: Vec::new(), live: 0 }
    }

    /// Store `state`, returning its key.
    pub(crate) fn insert(&mut self, state: Arc<IoState>) -> io::Result<usize> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.entries.len() >= INDEX_MASK {
                    return Err(io::Error::other("netpoll: too many registrations"));
                }
                self.entries.push(Entry { generation: 0, state: None });
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[index];
        debug_assert!(e.state.is_none());
        e.state = Some(state);
        self.live += 1;
        Ok(key_of(index, e.generation))
    }

    /// The live state for `key`, or `None` if the key is stale or unknown.
    pub(crate) fn get(&self, key: usize) -> Option<&Arc<IoState>> {
        let (index, generation) = split(key);
        let e = self.entries.get(index)?;
        if e.generation == generation {
            e.state.as_ref()
        } else {
            None
        }
    }

    /// Remove the entry for `key` (no-op if stale) and retire its generation.
    pub(crate) fn remove(&mut self, key: usize) -> Option<Arc<IoState>> {
        let (index, generation) = split(key);
        let e = self.entries.get_mut(index)?;
        if e.generation != generation {
            return None;
        }
        let state = e.state.take()?;
        e.generation = (e.generation + 1) & GEN_MASK;
        self.free.push(index);
        self.live -= 1;
        Some(state)
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_index_gets_new_generation() {
        let mut s = Slab::new();
        let a = s.insert(Arc::new(IoState::new(1))).unwrap();
        let b = s.insert(Arc::new(IoState::new(2))).unwrap();
        assert_ne!(a, b);
        assert!(s.remove(a).is_some());
        assert!(s.get(a).is_none());
        assert!(s.remove(a).is_none());
        let c = s.insert(Arc::new(IoState::new(3))).unwrap();
        assert_eq!(c & INDEX_MASK, a & INDEX_MASK, "index reused LIFO");
        assert_ne!(c, a);
        assert!(s.get(a).is_none(), "stale key must not resolve to the new owner");
        assert_eq!(s.get(c).unwrap().token(), 3);
        assert_eq!(s.get(b).unwrap().token(), 2);
        assert_eq!(s.len(), 2);
        assert!(s.get(usize::MAX).is_none());
    }

    #[test]
    fn generation_wraps_without_hitting_reserved_key() {
        let k = key_of(INDEX_MASK - 1, GEN_MASK);
        assert_ne!(k, usize::MAX);
    }
}
