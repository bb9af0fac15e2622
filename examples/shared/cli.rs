//! What every example server does before serving: parse `[ADDR] [--addr ADDR] [--workers N]`
//! (default 127.0.0.1:7000) and raise the soft open-file limit to the hard one, so tens of
//! thousands of connections fit. Shared by the echo and key-value examples of both models.

#![allow(dead_code)]

/// The parsed command line.
pub struct Args {
    pub addr: String,
    pub workers: Option<usize>,
}

/// Parses the command line of example `prog`; prints usage and exits on `--help` or an error.
pub fn parse_args(prog: &str) -> Args {
    parse_args_with(prog, "127.0.0.1:7000", &[]).0
}

/// [`parse_args`] with another default address and extra `--flag VALUE` options of the example's
/// own (such as `--static DIR`), returned as (flag, value) pairs in command-line order.
pub fn parse_args_with(prog: &str, default_addr: &str, options: &[&str]) -> (Args, Vec<(String, String)>) {
    let extra: String = options.iter().map(|o| format!(" [{o} VALUE]")).collect();
    let usage = format!("usage: {prog} [ADDR] [--workers N]{extra}   (default {default_addr})");
    let mut parsed = Args { addr: default_addr.to_string(), workers: None };
    let mut values = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => match args.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0) {
                Some(n) => parsed.workers = Some(n),
                None => fail(prog, &usage, "--workers needs a positive number"),
            },
            "--addr" => match args.next() {
                Some(addr) => parsed.addr = addr,
                None => fail(prog, &usage, "--addr needs a value"),
            },
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            other if options.contains(&other) => match args.next() {
                Some(value) => values.push((arg, value)),
                None => fail(prog, &usage, &format!("{other} needs a value")),
            },
            other if !other.starts_with('-') => parsed.addr = other.to_string(),
            other => fail(prog, &usage, &format!("unknown flag {other}")),
        }
    }
    (parsed, values)
}

fn fail(prog: &str, usage: &str, why: &str) -> ! {
    eprintln!("{prog}: {why}\n{usage}");
    std::process::exit(2);
}

/// Raises the soft RLIMIT_NOFILE to the hard limit.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
