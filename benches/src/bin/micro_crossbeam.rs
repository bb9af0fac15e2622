//! Reference for the channel micro-benchmarks: the same measurements as
//! `micro_corio`'s `chan_*` with crossbeam-channel between plain OS threads
//! (what a Rust user would reach for without corio). Printed in the same form:
//! `crossbeam <name> <value> <unit> n=<count>`.

use std::time::Instant;

fn report(name: &str, value: f64, unit: &str, n: usize) {
    println!("crossbeam {name} {value:.3} {unit} n={n}");
}

fn handoff(n: usize) {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<u64>(0);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<u64>(0);
    let echo = std::thread::spawn(move || {
        for v in ping_rx {
            pong_tx.send(v).unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n as u64 {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i);
    }
    let ns = start.elapsed().as_nanos() as f64 / (2 * n) as f64;
    drop(ping_tx);
    echo.join().unwrap();
    report("chan_handoff", ns, "ns/one-way", n);
}

fn buffered(n: usize, producers: usize) {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(128);
    let per = n / producers;
    let start = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || (0..per as u64).for_each(|i| tx.send(i).unwrap()))
        })
        .collect();
    drop(tx);
    let received = rx.iter().count();
    let ns = start.elapsed().as_nanos() as f64 / received as f64;
    threads.into_iter().for_each(|t| t.join().unwrap());
    report(&format!("chan_buffered_{producers}p"), ns, "ns/msg", received);
}

fn main() {
    let scale: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    handoff(200_000 / scale);
    buffered(4_000_000 / scale, 1);
    buffered(4_000_000 / scale, 4);
}
