//! The `select!` macro (exported at the crate root).

/// Waits on several channel operations at once and runs the branch of the one
/// that completes; crossbeam-channel's syntax.
///
/// ```
/// use corio::chan::unbounded;
/// use corio::select;
/// use std::time::Duration;
///
/// let (tx1, rx1) = unbounded::<i32>();
/// let (tx2, rx2) = unbounded::<&str>();
/// tx1.send(7).unwrap();
/// select! {
///     recv(rx1) -> msg => assert_eq!(msg, Ok(7)),
///     recv(rx2) -> msg => panic!("unexpected {:?}", msg),
///     send(tx2, "hi") -> res => res.unwrap(),
///     default(Duration::from_millis(100)) => println!("timed out"),
/// }
/// ```
///
/// Cases:
///
/// * `recv(rx) -> msg => body`: `rx` is a `Receiver<T>` (or a reference to
///   one); `msg` is a pattern bound to a `Result<T, RecvError>`.
/// * `send(tx, value) -> res => body`: `tx` is a `Sender<T>` (or a
///   reference); `res` is bound to a `Result<(), SendError<T>>`. `value` is
///   evaluated before the select waits, as in Go, and dropped if another case
///   is chosen.
/// * `default => body`: run if no operation can complete right now.
/// * `default(timeout) => body`: run if none completes within `timeout` (a
///   `Duration`).
///
/// At most one `default`, at most 32 operations. A body is an expression
/// followed by a comma or a block (comma optional). An operation on a
/// disconnected channel completes at once (with an error), like Go's receive
/// from a closed channel. Without `default`, the select parks until some
/// operation completes; `select! {}` parks for ever.
///
/// When several operations are ready, one is chosen uniformly at random. When
/// the select is parked on several channels, exactly one operation completes:
/// the others are withdrawn without consuming or losing any message (see
/// `corio::chan` for the protocol).
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__corio_select!(
            @parse () ()
            (
                (0usize __c0) (1usize __c1) (2usize __c2) (3usize __c3)
                (4usize __c4) (5usize __c5) (6usize __c6) (7usize __c7)
                (8usize __c8) (9usize __c9) (10usize __c10) (11usize __c11)
                (12usize __c12) (13usize __c13) (14usize __c14) (15usize __c15)
                (16usize __c16) (17usize __c17) (18usize __c18) (19usize __c19)
                (20usize __c20) (21usize __c21) (22usize __c22) (23usize __c23)
                (24usize __c24) (25usize __c25) (26usize __c26) (27usize __c27)
                (28usize __c28) (29usize __c29) (30usize __c30) (31usize __c31)
            )
            $($tokens)*
        )
    };
}

/// Implementation detail of [`select!`]: a token muncher that turns each case
/// into `(index label [constructor] [pattern] {body})` and then emits the code.
#[doc(hidden)]
#[macro_export]
macro_rules! __corio_select {
    // ---- end of input: emit ----
    (@parse $cases:tt $default:tt $labels:tt) => {
        $crate::__corio_select!(@emit $cases $default)
    };

    // ---- recv(rx) -> pat => body ----
    (@parse ($($cases:tt)*) $default:tt (($i:tt $l:ident) $($labels:tt)*)
        recv($r:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__corio_select!(@parse
            ($($cases)* ($i $l [$crate::chan::__private::recv_case(&$r)] [$p] $body))
            $default ($($labels)*) $($rest)*)
    };
    (@parse ($($cases:tt)*) $default:tt (($i:tt $l:ident) $($labels:tt)*)
        recv($r:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__corio_select!(@parse
            ($($cases)* ($i $l [$crate::chan::__private::recv_case(&$r)] [$p] $body))
            $default ($($labels)*) $($rest)*)
    };
    (@parse ($($cases:tt)*) $default:tt (($i:tt $l:ident) $($labels:tt)*)
        recv($r:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__corio_select!(@parse
            ($($cases)* ($i $l [$crate::chan::__private::recv_case(&$r)] [$p] { $body }))
            $default ($($labels)*) $($rest)*)
    };
    (@parse ($($cases:tt)*) $default:tt (($i:tt $l:ident) $($labels:tt)*)
        recv($r:expr) -> $p:pat => $body:expr) => {
        $crate::__corio_select!(@parse
            ($($cases)* ($i $l [$crate::chan::__private::recv_case(&$r)] [$p] { $body }))
            $default ($($labels)*))
    };

    // ---- send(tx, value) -> pat => body ----
    (@parse ($($cases:tt)*) $default:tt (($i:tt $l:ident) $($labels:tt)*)
        send($s:expr, $v:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__corio_select!(@parse
            ($($cases)* ($i $l [$crate::chan::__private::send_case(&$s, $v)] [$p] $body))
            $default ($($labels)*) $($rest)*)
    };
    (@parse ($($cases:tt)*) $default:tt (($i:tt $l:ident) $($labels:tt)*)
        send($s:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__corio_select!(@parse
            ($($cases)* ($i $l [$crate::chan::__private::send_case(&$s, $v)] [$p] $body))
            $default ($($labels)*) $($rest)*)
    };
    (@parse ($($cases:tt)*) $default:tt (($i:tt $l:ident) $($labels:tt)*)
        send($s:expr, $v:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__corio_select!(@parse
            ($($cases)* ($i $l [$crate::chan::__private::send_case(&$s, $v)] [$p] { $body }))
            $default ($($labels)*) $($rest)*)
    };
    (@parse ($($cases:tt)*) $default:tt (($i:tt $l:ident) $($labels:tt)*)
        send($s:expr, $v:expr) -> $p:pat => $body:expr) => {
        $crate::__corio_select!(@parse
            ($($cases)* ($i $l [$crate::chan::__private::send_case(&$s, $v)] [$p] { $body }))
            $default ($($labels)*))
    };

    // ---- default / default(timeout) ----
    (@parse $cases:tt ($($default:tt)+) $labels:tt default $($rest:tt)*) => {
        ::core::compile_error!("select!: more than one `default` case")
    };
    (@parse $cases:tt () $labels:tt default => $body:block, $($rest:tt)*) => {
        $crate::__corio_select!(@parse $cases
            (($crate::chan::__private::Mode::NonBlocking) $body) $labels $($rest)*)
    };
    (@parse $cases:tt () $labels:tt default => $body:block $($rest:tt)*) => {
        $crate::__corio_select!(@parse $cases
            (($crate::chan::__private::Mode::NonBlocking) $body) $labels $($rest)*)
    };
    (@parse $cases:tt () $labels:tt default => $body:expr, $($rest:tt)*) => {
        $crate::__corio_select!(@parse $cases
            (($crate::chan::__private::Mode::NonBlocking) { $body }) $labels $($rest)*)
    };
    (@parse $cases:tt () $labels:tt default => $body:expr) => {
        $crate::__corio_select!(@parse $cases
            (($crate::chan::__private::Mode::NonBlocking) { $body }) $labels)
    };
    (@parse $cases:tt () $labels:tt default($t:expr) => $body:block, $($rest:tt)*) => {
        $crate::__corio_select!(@parse $cases
            (($crate::chan::__private::Mode::timeout($t)) $body) $labels $($rest)*)
    };
    (@parse $cases:tt () $labels:tt default($t:expr) => $body:block $($rest:tt)*) => {
        $crate::__corio_select!(@parse $cases
            (($crate::chan::__private::Mode::timeout($t)) $body) $labels $($rest)*)
    };
    (@parse $cases:tt () $labels:tt default($t:expr) => $body:expr, $($rest:tt)*) => {
        $crate::__corio_select!(@parse $cases
            (($crate::chan::__private::Mode::timeout($t)) { $body }) $labels $($rest)*)
    };
    (@parse $cases:tt () $labels:tt default($t:expr) => $body:expr) => {
        $crate::__corio_select!(@parse $cases
            (($crate::chan::__private::Mode::timeout($t)) { $body }) $labels)
    };

    // ---- errors ----
    (@parse $cases:tt $default:tt () $($rest:tt)+) => {
        ::core::compile_error!("select!: too many cases (at most 32)")
    };
    (@parse $cases:tt $default:tt $labels:tt $($rest:tt)+) => {
        ::core::compile_error!(
            "select!: expected `recv(rx) -> pat => body`, `send(tx, value) -> pat => body`, \
             `default => body` or `default(timeout) => body`"
        )
    };

    // ---- code generation ----
    (@emit ($(($i:tt $l:ident [$($ctor:tt)*] [$p:pat] $body:tt))*) ()) => {
        $crate::__corio_select!(@gen ($(($i $l [$($ctor)*] [$p] $body))*)
            ($crate::chan::__private::Mode::Block)
            { ::core::unreachable!("select!: returned without a case") })
    };
    (@emit $cases:tt (($mode:expr) $dbody:tt)) => {
        $crate::__corio_select!(@gen $cases ($mode) $dbody)
    };
    (@gen ($(($i:tt $l:ident [$($ctor:tt)*] [$p:pat] $body:tt))*) ($mode:expr) $dbody:tt) => {{
        $( #[allow(unused_mut)] let mut $l = $($ctor)*; )*
        let __corio_selected = $crate::chan::__private::run(
            &mut [$(&mut $l as &mut dyn $crate::chan::__private::SelectCase),*],
            $mode,
        );
        #[allow(unreachable_patterns, unused_variables, clippy::match_single_binding)]
        match __corio_selected {
            $( ::core::option::Option::Some($i) => {
                let $p = $l.into_result();
                $body
            } )*
            _ => $dbody,
        }
    }};
}
