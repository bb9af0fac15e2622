//! `coroutine_local!`: one value per coroutine, as `thread_local!` gives one
//! per thread. A `thread_local!` is still sound in corio (a started coroutine
//! never changes thread) but is shared by every coroutine of a worker; a
//! `coroutine_local!` is not: two coroutines interleaving on one worker never
//! see each other's.
//!
//! Storage: a small list in the task, keyed by the key's address, filled on
//! first use, and dropped when the coroutine ends (its worker clears it as
//! the coroutine returns; at shutdown its unwind does). On a plain thread the
//! value lives in a thread-local list instead, dropped when the thread ends.
//! Each value is boxed once; `with` hands out a reference to the box, which
//! never moves, so a `with` inside another `with` (of another key) is fine.

use crate::sched::context;
use std::any::Any;
use std::cell::RefCell;

/// A coroutine-local value's key (made by [`coroutine_local!`](crate::coroutine_local)).
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
}

thread_local! {
    /// The values of plain threads (outside any coroutine).
    static THREAD_VALUES: RefCell<Vec<(usize, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey { init }
    }

    /// Runs `f` with this coroutine's value (made by the initialiser on
    /// first use in this coroutine).
    ///
    /// # Panics
    /// If the initialiser itself uses this key.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const LocalKey<T> as usize;
        let value: *const T = match context::current_task() {
            Some(task) => self.value_in(&task.locals, key),
            None => THREAD_VALUES.with(|values| self.value_in(values, key)),
        };
        // SAFETY: the value is boxed in a list that only grows while its
        // coroutine (or thread) lives, which outlives this call; the box never
        // moves when the list does; nothing hands out `&mut` to it.
        f(unsafe { &*value })
    }

    fn value_in(&'static self, values: &RefCell<Vec<(usize, Box<dyn Any>)>>, key: usize) -> *const T {
        if let Some((_, value)) = values.borrow().iter().find(|(k, _)| *k == key) {
            return value.downcast_ref::<T>().expect("a key's value has the key's type");
        }
        // Not borrowed while the initialiser runs (it may use other keys).
        let made: Box<dyn Any> = Box::new((self.init)());
        let mut values = values.borrow_mut();
        assert!(!values.iter().any(|(k, _)| *k == key), "coroutine_local: the initialiser used its own key");
        let ptr = made.downcast_ref::<T>().expect("just made") as *const T;
        values.push((key, made));
        ptr
    }
}

/// Declares coroutine-local values, with `thread_local!`'s shape:
///
/// ```
/// use std::cell::Cell;
/// corio::coroutine_local! {
///     static REQUESTS: Cell<u32> = Cell::new(0);
/// }
/// corio::run(|| {
///     REQUESTS.with(|n| n.set(n.get() + 1));
///     let other = corio::spawn(|| REQUESTS.with(|n| n.get())).join().unwrap();
///     assert_eq!((REQUESTS.with(|n| n.get()), other), (1, 0));
/// });
/// ```
#[macro_export]
macro_rules! coroutine_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;)+) => {$(
        $(#[$attr])*
        $vis static $name: $crate::coroutine::LocalKey<$t> = $crate::coroutine::LocalKey::new({
            fn __corio_init() -> $t {
                $init
            }
            __corio_init
        });
    )+};
}
