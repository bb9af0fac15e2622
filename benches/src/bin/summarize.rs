//! `summarize`: turns benchmark results, JSON lines, into markdown tables of medians with ratios
//! against reference servers, and SVG bar charts.
//!
//! ```text
//! summarize [--ref NAME[,NAME...]] [--out FILE] [--svg-dir DIR] RESULTS.jsonl...
//! ```
//!
//! Two kinds of results, told apart by their fields (one kind per call):
//! - **echo**, the lines `loadgen --json` writes (collected by `run-echo.sh`; they have `mode`):
//!   tables of round trips/s and idle KiB per connection, server CPU per round trip (client's in
//!   brackets), the server's system calls and context switches per round trip beside its CPU time
//!   (when loadgen recorded them), and latency percentiles; charts `echo-throughput.svg`,
//!   `echo-p99.svg`, `echo-cpu.svg`, `echo-idle-rss.svg`.
//! - **HTTP**, the lines `run-http.sh` writes (`server`, `config`, `rps`, `cpu_us_per_req`,
//!   `p99_us`, and the `*_per_op` counters from `srvcount` when recorded): tables of server CPU
//!   per request, requests/s, p99, and the counters per request; charts `http-rps.svg`,
//!   `http-cpu.svg`, `http-p99.svg`. A p99 of 0 (wrk prints one now and then with pipelining) is
//!   left out of the medians, with a note.
//!
//! Lines that do not start with `{` are ignored, so a log with human lines mixed in works too.
//! Results are grouped by server and configuration (`100 conns x 64 B`, ..., `10000 idle conns`;
//! `100 conns`, ...), in order of first appearance; every figure is the median over the rounds
//! of that group (the mean of the middle two for an even count). Ratios are `server / reference`:
//! above 1 is better for round trips or requests per second, below 1 for CPU, latency and memory.
//! With one reference the ratio follows each value in parentheses; with several
//! (`--ref mio,tokio`) each value column is followed by one `vs NAME` column per reference.
//! `--ref` names without results are left out with a note; the default is `callback` (echo) or
//! `corio` (HTTP) when present, else the first server seen. The tables go to stdout and, with
//! `--out`, to FILE as well; `--svg-dir` writes the charts there.

use std::collections::HashMap;
use std::fmt::Write as _;

/// A flat JSON value, as loadgen writes them.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Num(f64),
    Null,
    Bool(bool),
}

type Obj = HashMap<String, Val>;

/// Parses one flat JSON object (string, number, bool and null values only).
fn parse_obj(s: &str) -> Result<Obj, String> {
    let mut p = Parser { b: s.as_bytes(), i: 0 };
    p.ws();
    p.eat(b'{')?;
    let mut obj = Obj::new();
    p.ws();
    if p.peek() == Some(b'}') {
        return Ok(obj);
    }
    loop {
        p.ws();
        let k = p.string()?;
        p.ws();
        p.eat(b':')?;
        p.ws();
        let v = p.value()?;
        obj.insert(k, v);
        p.ws();
        match p.next() {
            Some(b',') => continue,
            Some(b'}') => return Ok(obj),
            _ => return Err(format!("expected ',' or '}}' at byte {}", p.i)),
        }
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.i += 1;
        c
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i - 1))
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.i;
            while !matches!(self.peek(), Some(b'"' | b'\\') | None) {
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?);
            match self.next() {
                Some(b'"') => return Ok(out),
                Some(b'\\') => match self.next() {
                    Some(b'"') => out.push('"'),
                    Some(b'\\') => out.push('\\'),
                    Some(b'/') => out.push('/'),
                    Some(b'n') => out.push('\n'),
                    Some(b't') => out.push('\t'),
                    Some(b'r') => out.push('\r'),
                    Some(b'u') => {
                        let hex = self
                            .b
                            .get(self.i..self.i + 4)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .ok_or("bad \\u escape")?;
                        self.i += 4;
                        out.push(char::from_u32(hex).unwrap_or('\u{fffd}'));
                    }
                    _ => return Err(format!("bad escape at byte {}", self.i)),
                },
                _ => return Err("unterminated string".into()),
            }
        }
    }
    fn value(&mut self) -> Result<Val, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Val::Str),
            Some(b'n') => self.word("null", Val::Null),
            Some(b't') => self.word("true", Val::Bool(true)),
            Some(b'f') => self.word("false", Val::Bool(false)),
            _ => {
                let start = self.i;
                while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
                t.parse().map(Val::Num).map_err(|_| format!("bad value at byte {start}"))
            }
        }
    }
    fn word(&mut self, w: &str, v: Val) -> Result<Val, String> {
        if self.b[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(format!("bad literal at byte {}", self.i))
        }
    }
}

fn num(o: &Obj, k: &str) -> Option<f64> {
    match o.get(k) {
        Some(Val::Num(n)) => Some(*n),
        _ => None,
    }
}

fn text(o: &Obj, k: &str) -> Option<String> {
    match o.get(k) {
        Some(Val::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 { s[m] } else { (s[m - 1] + s[m]) / 2.0 })
}

/// Which harness wrote the results: `loadgen` (echo, via run-echo.sh) or run-http.sh (wrk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Echo,
    Http,
}

/// Every measured value of one (server, configuration) group, by field name.
#[derive(Default)]
struct Group {
    vals: HashMap<String, Vec<f64>>,
    /// Results (rounds) in the group.
    n: usize,
}

impl Group {
    fn med(&self, k: &str) -> Option<f64> {
        self.vals.get(k).and_then(|v| median(v))
    }
}

struct Data {
    kind: Kind,
    servers: Vec<String>,
    configs: Vec<(String, bool)>, // (name, idle)
    groups: HashMap<(String, String), Group>,
    /// HTTP runs whose p99 wrk reported as 0 (left out of the medians).
    zero_p99: usize,
    /// HTTP runs with non-2xx responses.
    non2xx: usize,
}

impl Data {
    fn med(&self, server: &str, config: &str, k: &str) -> Option<f64> {
        self.groups.get(&(server.to_string(), config.to_string())).and_then(|g| g.med(k))
    }
}

/// run-http.sh's configuration keys, as the tables name them.
fn http_config_name(c: &str) -> String {
    match c {
        "c100" => "100 conns".into(),
        "c1000" => "1,000 conns".into(),
        "p256" => "256 conns, 16 pipelined".into(),
        c => c.into(),
    }
}

fn load(files: &[String]) -> Result<Data, String> {
    let mut d = Data {
        kind: Kind::Echo,
        servers: vec![],
        configs: vec![],
        groups: HashMap::new(),
        zero_p99: 0,
        non2xx: 0,
    };
    let mut kinds = vec![];
    for f in files {
        let text_in = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        for (ln, line) in text_in.lines().enumerate() {
            let line = line.trim();
            if !line.starts_with('{') {
                continue;
            }
            let mut o = parse_obj(line).map_err(|e| format!("{f}:{}: {e}", ln + 1))?;
            let kind = if o.contains_key("mode") { Kind::Echo } else { Kind::Http };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
            let (server, config, idle) = match kind {
                Kind::Echo => {
                    let server =
                        text(&o, "label").filter(|s| !s.is_empty()).unwrap_or_else(|| "unnamed".into());
                    let conns = num(&o, "conns").unwrap_or(0.0);
                    let idle = text(&o, "mode").as_deref() == Some("idle");
                    let config = if idle {
                        format!("{conns} idle conns")
                    } else {
                        let size = num(&o, "size").unwrap_or(0.0);
                        if size >= 1024.0 && size % 1024.0 == 0.0 {
                            format!("{conns} conns x {} KiB", size / 1024.0)
                        } else {
                            format!("{conns} conns x {size} B")
                        }
                    };
                    (server, config, idle)
                }
                Kind::Http => {
                    let server = text(&o, "server").ok_or(format!("{f}:{}: no \"server\" field", ln + 1))?;
                    let config = text(&o, "config").ok_or(format!("{f}:{}: no \"config\" field", ln + 1))?;
                    // wrk sometimes prints a p99 of 0 (pipelined runs): not a measurement.
                    if num(&o, "p99_us") == Some(0.0) {
                        o.remove("p99_us");
                        d.zero_p99 += 1;
                    }
                    if num(&o, "non2xx").is_some_and(|n| n > 0.0) {
                        d.non2xx += 1;
                    }
                    (server, http_config_name(&config), false)
                }
            };
            if !d.servers.contains(&server) {
                d.servers.push(server.clone());
            }
            if !d.configs.iter().any(|(c, _)| *c == config) {
                d.configs.push((config.clone(), idle));
            }
            let g = d.groups.entry((server, config)).or_default();
            g.n += 1;
            for (k, v) in &o {
                if let Val::Num(v) = v {
                    g.vals.entry(k.clone()).or_default().push(*v);
                }
            }
        }
    }
    match kinds[..] {
        [] => {}
        [k] => d.kind = k,
        _ => return Err("the files mix echo (loadgen) and HTTP (run-http.sh) results".into()),
    }
    Ok(d)
}

/// `1234567.8` -> `1,234,568`.
fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

fn latency(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} us")
    }
}

/// How ratios against the reference servers are laid out: with one reference, in parentheses
/// after the value (`7.10 (0.93)`); with several, one column per reference after each value
/// column (`| 7.10 | 0.93 | 1.02 |`).
struct Ratios<'a> {
    refs: &'a [String],
}

impl Ratios<'_> {
    /// Header cells for one value column named `name`.
    fn head(&self, name: &str) -> String {
        let mut h = format!(" {name} |");
        if self.refs.len() > 1 {
            for r in self.refs {
                h += &format!(" vs {r} |");
            }
        }
        h
    }

    /// Rule cells matching [`Ratios::head`].
    fn rule(&self) -> String {
        let n = if self.refs.len() > 1 { 1 + self.refs.len() } else { 1 };
        "---|".repeat(n)
    }

    /// Value cell(s) for metric `k` of (`server`, `config`), formatted by `f`, with `extra`
    /// appended to the value.
    fn cells(
        &self,
        d: &Data,
        server: &str,
        config: &str,
        k: &str,
        f: &dyn Fn(f64) -> String,
        extra: &str,
    ) -> String {
        let v = d.med(server, config, k);
        let ratio = |r: &String| match (v, d.med(r, config, k)) {
            (Some(v), Some(r)) if r != 0.0 => Some(v / r),
            _ => None,
        };
        let value = v.map_or_else(|| "-".to_string(), |x| format!("{}{extra}", f(x)));
        if self.refs.len() == 1 {
            match ratio(&self.refs[0]) {
                Some(q) if v.is_some() => {
                    // "value (ratio) [extra]": the ratio belongs to the value, not to the extra.
                    format!(" {} ({q:.2}){extra} |", v.map(f).unwrap_or_default())
                }
                _ => format!(" {value} |"),
            }
        } else {
            let mut c = format!(" {value} |");
            for r in self.refs {
                c += &ratio(r).map_or_else(|| " - |".to_string(), |q| format!(" {q:.2} |"));
            }
            c
        }
    }
}

/// The counters loadgen and srvcount record, per round trip / request: (field, column title).
const COUNTERS: [(&str, &str); 7] = [
    ("syscalls_per_op", "syscalls"),
    ("epoll_waits_per_op", "epoll_wait"),
    ("reads_per_op", "reads"),
    ("writes_per_op", "writes"),
    ("futex_per_op", "futex"),
    ("ctx_switches_per_op", "ctx switches"),
    ("vol_ctx_switches_per_op", "voluntary"),
];

/// The table of server CPU and counters per operation for one configuration, if any counter was
/// recorded for it. `cpu_key` is the measured window's CPU per operation, `perf_cpu_key` the
/// counting window's.
fn counters_table(d: &Data, config: &str, cpu_key: &str, perf_cpu_key: &str, op: &str) -> Option<String> {
    let any = d.servers.iter().any(|s| COUNTERS.iter().any(|(k, _)| d.med(s, config, k).is_some()));
    if !any {
        return None;
    }
    let mut out = format!(
        "\n### Server system calls and context switches per {op}, {config} (medians; lower is better)\n\n\
| server | CPU us |"
    );
    for (_, title) in COUNTERS {
        out += &format!(" {title} |");
    }
    out += &format!(" CPU us, counting |\n|---|---|{}\n", "---|".repeat(COUNTERS.len() + 1));
    for s in &d.servers {
        let cpu = d.med(s, config, cpu_key).map_or("-".to_string(), |v| format!("{v:.2}"));
        let mut row = format!("| {s} | {cpu} |");
        for (k, _) in COUNTERS {
            // Three decimals below 1: 0.13 and 0.134 context switches per round trip differ.
            row += &d.med(s, config, k).map_or(" - |".to_string(), |v| {
                if v < 0.9995 {
                    format!(" {v:.3} |")
                } else {
                    format!(" {v:.2} |")
                }
            });
        }
        row += &d.med(s, config, perf_cpu_key).map_or(" - |".to_string(), |v| format!(" {v:.2} |"));
        out += &row;
        out.push('\n');
    }
    Some(out)
}

/// The note on what the counters are, printed once under the first counters table.
const COUNTERS_NOTE: &str =
    "\nCPU us: the measured window's (as above); syscalls to futex: counted by perf in a \
counting window right after the measured one, under the same load (perf slows every system call on the \
machine while attached, so it stays out of the measured window), per operation of that window; CPU us, \
counting: the server's CPU per operation in the counting window (the measured figure plus the cost of \
counting). syscalls: every system call of the server (`raw_syscalls:sys_enter`); \
epoll_wait: `epoll_wait` + `epoll_pwait` + `epoll_pwait2`; reads: `read` + `recvfrom` + `readv` + \
`recvmsg`; writes: `write` + `sendto` + `writev` + `sendmsg` (eventfd wake-ups included); futex: \
`futex`; ctx switches: voluntary + involuntary context switches of all the server's threads over the \
measured window (`/proc/PID/task/*/status`), voluntary: those alone (the thread blocked). `-`: not \
recorded (perf unavailable, `--no-perf` or `--no-counters`).\n";

fn rounds_line(d: &Data) -> String {
    let max_rounds = d.groups.values().map(|g| g.n).max().unwrap_or(0);
    let min_rounds = d.groups.values().map(|g| g.n).min().unwrap_or(0);
    if min_rounds == max_rounds {
        max_rounds.to_string()
    } else {
        format!("{min_rounds}-{max_rounds}")
    }
}

fn ratio_intro(refs: &[String]) -> String {
    if refs.len() == 1 {
        format!("ratios in parentheses are server / `{}`", refs[0])
    } else {
        let names: Vec<String> = refs.iter().map(|r| format!("`{r}`")).collect();
        format!("columns `vs NAME` are the ratio server / NAME, against {}", names.join(" and "))
    }
}

fn render(d: &Data, refs: &[String]) -> String {
    match d.kind {
        Kind::Echo => render_echo(d, refs),
        Kind::Http => render_http(d, refs),
    }
}

fn render_echo(d: &Data, refs: &[String]) -> String {
    let mut out = String::new();
    let rt = Ratios { refs };
    let _ = writeln!(
        out,
        "Medians over {} round(s) per server and configuration; {}.\n",
        rounds_line(d),
        ratio_intro(refs)
    );

    let pp: Vec<&str> = d.configs.iter().filter(|c| !c.1).map(|c| c.0.as_str()).collect();
    let idle: Vec<&str> = d.configs.iter().filter(|c| c.1).map(|c| c.0.as_str()).collect();

    // Table 1: round trips/s and idle KiB per connection, one row per server.
    let _ =
        writeln!(out, "### Round trips per second (higher is better) and idle memory (lower is better)\n");
    let mut head = "| server |".to_string();
    let mut rule = "|---|".to_string();
    for c in &pp {
        head += &rt.head(c);
        rule += &rt.rule();
    }
    for c in &idle {
        head += &rt.head(&format!("KiB/conn, {c}"));
        rule += &rt.rule();
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for s in &d.servers {
        let mut row = format!("| {s} |");
        for c in &pp {
            row += &rt.cells(d, s, c, "rt_per_s", &thousands, "");
        }
        for c in &idle {
            row += &rt.cells(d, s, c, "kib_per_conn", &|v| format!("{v:.2}"), "");
        }
        let _ = writeln!(out, "{row}");
    }

    // Table 2: server (and client) CPU per round trip.
    if !pp.is_empty() {
        let _ = writeln!(
            out,
            "\n### Server CPU time per round trip, us (lower is better; client's in brackets)\n"
        );
        let mut head = "| server |".to_string();
        let mut rule = "|---|".to_string();
        for c in &pp {
            head += &rt.head(c);
            rule += &rt.rule();
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for s in &d.servers {
            let mut row = format!("| {s} |");
            for c in &pp {
                let client =
                    d.med(s, c, "client_cpu_us_per_rt").map_or(String::new(), |v| format!(" [{v:.2}]"));
                row += &rt.cells(d, s, c, "server_cpu_us_per_rt", &|v| format!("{v:.2}"), &client);
            }
            let _ = writeln!(out, "{row}");
        }
    }

    // Table 3: where the server's CPU goes, one table per configuration.
    let mut noted = false;
    for c in &pp {
        if let Some(t) =
            counters_table(d, c, "server_cpu_us_per_rt", "perf_window_cpu_us_per_rt", "round trip")
        {
            out += &t;
            if !noted {
                out += COUNTERS_NOTE;
                noted = true;
            }
        }
    }

    // Table 4: latency percentiles, one table per configuration.
    for c in &pp {
        let _ = writeln!(
            out,
            "\n### Latency, {c} (p50 / p99 / p99.9; lower is better)\n\n| server |{}{}{}\n|---|{}",
            rt.head("p50"),
            rt.head("p99"),
            rt.head("p99.9"),
            rt.rule().repeat(3)
        );
        for s in &d.servers {
            let _ = writeln!(
                out,
                "| {s} |{}{}{}",
                rt.cells(d, s, c, "p50_us", &latency, ""),
                rt.cells(d, s, c, "p99_us", &latency, ""),
                rt.cells(d, s, c, "p999_us", &latency, "")
            );
        }
    }
    out
}

/// How a table formats a value.
type Fmt = dyn Fn(f64) -> String;

fn render_http(d: &Data, refs: &[String]) -> String {
    let mut out = String::new();
    let rt = Ratios { refs };
    let _ = writeln!(out, "Medians over {} rounds; {}.\n", rounds_line(d), ratio_intro(refs));
    let configs: Vec<&str> = d.configs.iter().map(|c| c.0.as_str()).collect();
    let two_decimals = |v: f64| format!("{v:.2}");
    let tables: [(&str, &str, &Fmt); 3] = [
        ("cpu_us_per_req", "Server CPU time per request, us (lower is better)", &two_decimals),
        ("rps", "Requests per second (higher is better)", &thousands),
        ("p99_us", "p99 latency, us (lower is better)", &thousands),
    ];
    for (key, title, f) in tables {
        let _ = writeln!(out, "### {title}\n");
        let mut head = "| server |".to_string();
        let mut rule = "|---|".to_string();
        for c in &configs {
            head += &rt.head(c);
            rule += &rt.rule();
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for s in &d.servers {
            let mut row = format!("| {s} |");
            for c in &configs {
                row += &rt.cells(d, s, c, key, f, "");
            }
            let _ = writeln!(out, "{row}");
        }
        out.push('\n');
    }
    let mut noted = false;
    for c in &configs {
        if let Some(t) = counters_table(d, c, "cpu_us_per_req", "perf_window_cpu_us_per_req", "request") {
            if out.ends_with("\n\n") {
                out.pop(); // the table starts with its own blank line
            }
            out += &t;
            if !noted {
                out += COUNTERS_NOTE;
                noted = true;
            }
        }
    }
    if noted {
        out +=
            "\nCounters cover wrk's whole runs (connecting included), like the CPU time; the counting run \
is a second, shorter wrk run.\n\n";
    }
    if d.zero_p99 > 0 {
        let _ = writeln!(
            out,
            "wrk reported a p99 of 0 in {} run(s) (it happens with pipelining); those are left out of \
the p99 medians.\n",
            d.zero_p99
        );
    }
    if d.non2xx > 0 {
        let _ = writeln!(out, "Non-2xx responses in {} runs (see run.log).", d.non2xx);
    }
    out
}

const USAGE: &str = "usage: summarize [--ref NAME[,NAME...]] [--out FILE] [--svg-dir DIR] RESULTS.jsonl...";

fn main() {
    let mut refs_arg: Option<String> = None;
    let mut out_file: Option<String> = None;
    let mut svg_dir: Option<String> = None;
    let mut files = vec![];
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ref" => refs_arg = it.next(),
            "--out" => out_file = it.next(),
            "--svg-dir" => svg_dir = it.next(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let d = match load(&files) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("summarize: {e}");
            std::process::exit(1);
        }
    };
    if d.servers.is_empty() {
        eprintln!("summarize: no results in {}", files.join(", "));
        std::process::exit(1);
    }
    let refs = choose_refs(&d, refs_arg.as_deref());
    let md = render(&d, &refs);
    print!("{md}");
    if let Some(f) = out_file {
        if let Err(e) = std::fs::write(&f, &md) {
            eprintln!("summarize: write {f}: {e}");
            std::process::exit(1);
        }
    }
    if let Some(dir) = svg_dir {
        if let Err(e) = write_charts(&d, &dir) {
            eprintln!("summarize: charts in {dir}: {e}");
            std::process::exit(1);
        }
    }
}

/// The reference servers: those of `--ref` (comma-separated) that have results, else the
/// default (`callback` for echo, `corio` for HTTP, when present), else the first server seen.
fn choose_refs(d: &Data, arg: Option<&str>) -> Vec<String> {
    let mut refs = vec![];
    for r in arg.unwrap_or("").split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if d.servers.iter().any(|s| s == r) {
            if !refs.iter().any(|x: &String| x == r) {
                refs.push(r.to_string());
            }
        } else {
            eprintln!("summarize: note: reference {r:?} has no results; left out");
        }
    }
    if refs.is_empty() {
        let default = match d.kind {
            Kind::Echo => "callback",
            Kind::Http => "corio",
        };
        let r =
            if d.servers.iter().any(|s| s == default) { default.to_string() } else { d.servers[0].clone() };
        if arg.is_some() {
            eprintln!("summarize: note: using {r:?} as the reference");
        }
        refs.push(r);
    }
    refs
}

/// A chart to draw: (file, title, unit, note, metric, idle configurations or not).
type ChartSpec = (&'static str, &'static str, &'static str, &'static str, &'static str, bool);

const ECHO_CHARTS: [ChartSpec; 4] = [
    (
        "echo-throughput.svg",
        "Echo round trips per second (median)",
        "rt/s",
        "higher is better",
        "rt_per_s",
        false,
    ),
    ("echo-p99.svg", "Echo p99 latency (median of rounds)", "us", "lower is better", "p99_us", false),
    (
        "echo-cpu.svg",
        "Server CPU time per round trip (median)",
        "us",
        "lower is better; utime+stime of the server process / round trips",
        "server_cpu_us_per_rt",
        false,
    ),
    (
        "echo-idle-rss.svg",
        "Server RSS per idle connection (median)",
        "KiB",
        "lower is better",
        "kib_per_conn",
        true,
    ),
];

const HTTP_CHARTS: [ChartSpec; 3] = [
    (
        "http-rps.svg",
        "HTTP requests per second, wrk GET /plaintext (median)",
        "req/s",
        "higher is better",
        "rps",
        false,
    ),
    (
        "http-cpu.svg",
        "Server CPU time per request (median)",
        "us",
        "lower is better; utime+stime of the server process over wrk's run / requests",
        "cpu_us_per_req",
        false,
    ),
    (
        "http-p99.svg",
        "HTTP p99 latency, as wrk reports it (median of rounds)",
        "us",
        "lower is better; rounds where wrk printed a p99 of 0 are left out",
        "p99_us",
        false,
    ),
];

/// Writes the charts (medians per server and configuration) into `dir`: for echo results
/// echo-throughput.svg, echo-p99.svg, echo-cpu.svg and echo-idle-rss.svg; for HTTP results
/// http-rps.svg, http-cpu.svg and http-p99.svg. A chart with nothing to show is not written.
fn write_charts(d: &Data, dir: &str) -> std::io::Result<()> {
    use corio_benches::svg::BarChart;
    std::fs::create_dir_all(dir)?;
    let chart = |metric: &str, idle: bool| -> Vec<(String, Vec<Option<f64>>)> {
        d.configs
            .iter()
            .filter(|(_, is_idle)| *is_idle == idle)
            .map(|(config, _)| (config.clone(), d.servers.iter().map(|s| d.med(s, config, metric)).collect()))
            .collect()
    };
    let specs: &[ChartSpec] = match d.kind {
        Kind::Echo => &ECHO_CHARTS,
        Kind::Http => &HTTP_CHARTS,
    };
    for &(file, title, unit, note, metric, idle) in specs {
        let groups = chart(metric, idle);
        if groups.is_empty() || groups.iter().all(|(_, v)| v.iter().all(Option::is_none)) {
            continue;
        }
        let svg = BarChart { title, unit, note, series: &d.servers, groups }.render();
        std::fs::write(std::path::Path::new(dir).join(file), svg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loadgen_lines() {
        let o = parse_obj(r#"{"mode":"idle","label":"a\"b","round":null,"conns":10,"x":-1.5e3}"#).unwrap();
        assert_eq!(o["label"], Val::Str("a\"b".into()));
        assert_eq!(o["round"], Val::Null);
        assert_eq!(num(&o, "conns"), Some(10.0));
        assert_eq!(num(&o, "x"), Some(-1500.0));
        assert!(parse_obj("{\"a\":}").is_err());
    }

    #[test]
    fn medians_and_thousands() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }

    fn write_tmp(name: &str, body: &str) -> String {
        let p = std::env::temp_dir().join(format!("summarize-test-{}-{name}", std::process::id()));
        std::fs::write(&p, body).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn several_references_get_one_ratio_column_each() {
        let f = write_tmp(
            "echo.jsonl",
            concat!(
                r#"{"mode":"pingpong","label":"corio","conns":100,"size":64,"rt_per_s":90,"server_cpu_us_per_rt":9,"syscalls_per_op":2.5,"ctx_switches_per_op":0.4}"#,
                "\n",
                r#"{"mode":"pingpong","label":"mio","conns":100,"size":64,"rt_per_s":100,"server_cpu_us_per_rt":8,"syscalls_per_op":2.2,"ctx_switches_per_op":null}"#,
                "\n",
                r#"{"mode":"pingpong","label":"tokio","conns":100,"size":64,"rt_per_s":120,"server_cpu_us_per_rt":10}"#,
                "\n"
            ),
        );
        let d = load(std::slice::from_ref(&f)).unwrap();
        assert_eq!(d.kind, Kind::Echo);
        let refs = choose_refs(&d, Some("mio,tokio,nobody"));
        assert_eq!(refs, ["mio", "tokio"]);
        let md = render(&d, &refs);
        assert!(md.contains("| server | 100 conns x 64 B | vs mio | vs tokio |"), "{md}");
        assert!(md.contains("| corio | 90 | 0.90 | 0.75 |"), "{md}");
        assert!(md.contains("| corio | 9.00 | 1.12 | 0.90 |"), "{md}");
        assert!(md.contains("| corio | 9.00 | 2.50 | - | - | - | - | 0.400 | - | - |"), "{md}");
        assert!(md.contains("| tokio | 10.00 | - |"), "{md}");
        let one = render(&d, &["mio".to_string()]);
        assert!(one.contains("| corio | 90 (0.90) |"), "{one}");
        std::fs::remove_file(f).unwrap();
    }

    #[test]
    fn http_results_leave_out_zero_p99() {
        let f = write_tmp(
            "http.jsonl",
            concat!(
                r#"{"server": "corio", "config": "p256", "round": 1, "requests": 10, "rps": 500.0, "cpu_us_per_req": 2.0, "p99_us": 0.0, "non2xx": 0}"#,
                "\n",
                r#"{"server": "corio", "config": "p256", "round": 2, "requests": 10, "rps": 700.0, "cpu_us_per_req": 1.0, "p99_us": 8000.0, "non2xx": 0}"#,
                "\n",
                r#"{"server": "hyper", "config": "p256", "round": 1, "requests": 10, "rps": 600.0, "cpu_us_per_req": 3.0, "p99_us": 4000.0, "non2xx": 0}"#,
                "\n"
            ),
        );
        let d = load(std::slice::from_ref(&f)).unwrap();
        assert_eq!(d.kind, Kind::Http);
        let refs = choose_refs(&d, None);
        assert_eq!(refs, ["corio"]);
        let md = render(&d, &refs);
        assert!(md.contains("| server | 256 conns, 16 pipelined |"), "{md}");
        assert!(md.contains("| corio | 8,000 (1.00) |"), "{md}");
        assert!(md.contains("| hyper | 4,000 (0.50) |"), "{md}");
        assert!(md.contains("| hyper | 3.00 (2.00) |"), "{md}");
        assert!(md.contains("p99 of 0 in 1 run(s)"), "{md}");
        std::fs::remove_file(f).unwrap();
    }
}
