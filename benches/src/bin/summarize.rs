//! `summarize`: turns the JSON lines that `loadgen --json` writes (collected by `run-echo.sh`)
//! into markdown tables of medians, with ratios against a reference server.
//!
//! ```text
//! summarize [--ref NAME] [--out FILE] RESULTS.jsonl...
//! ```
//!
//! Lines that do not start with `{` are ignored, so a log with human lines mixed in works too.
//! Results are grouped by server (`label`) and configuration (`100 conns x 64 B`, ...,
//! `10000 idle conns`), in order of first appearance; every figure is the median over the rounds
//! of that group (the mean of the middle two for an even count). Ratios are `server / reference`
//! for every metric: above 1 is better for round trips/s, below 1 is better for CPU per round
//! trip, latency and KiB per idle connection. `--ref` defaults to `callback` when present, else
//! the first server seen. The tables go to stdout and, with `--out`, to FILE as well.

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

/// Every measured value of one (server, configuration) group, by metric name.
#[derive(Default)]
struct Group {
    vals: HashMap<&'static str, Vec<f64>>,
}

const METRICS: [&str; 7] = [
    "rt_per_s",
    "p50_us",
    "p99_us",
    "p999_us",
    "server_cpu_us_per_rt",
    "client_cpu_us_per_rt",
    "kib_per_conn",
];

impl Group {
    fn med(&self, k: &str) -> Option<f64> {
        self.vals.get(k).and_then(|v| median(v))
    }
    fn rounds(&self) -> usize {
        METRICS.iter().filter_map(|k| self.vals.get(k).map(Vec::len)).max().unwrap_or(0)
    }
}

struct Data {
    servers: Vec<String>,
    configs: Vec<(String, bool)>, // (name, idle)
    groups: HashMap<(String, String), Group>,
}

fn load(files: &[String]) -> Result<Data, String> {
    let mut d = Data { servers: vec![], configs: vec![], groups: HashMap::new() };
    for f in files {
        let text_in = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        for (ln, line) in text_in.lines().enumerate() {
            let line = line.trim();
            if !line.starts_with('{') {
                continue;
            }
            let o = parse_obj(line).map_err(|e| format!("{f}:{}: {e}", ln + 1))?;
            let server = text(&o, "label").filter(|s| !s.is_empty()).unwrap_or_else(|| "unnamed".into());
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
            if !d.servers.contains(&server) {
                d.servers.push(server.clone());
            }
            if !d.configs.iter().any(|(c, _)| *c == config) {
                d.configs.push((config.clone(), idle));
            }
            let g = d.groups.entry((server, config)).or_default();
            for k in METRICS {
                if let Some(v) = num(&o, k) {
                    g.vals.entry(k).or_default().push(v);
                }
            }
        }
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

fn render(d: &Data, reference: &str) -> String {
    let mut out = String::new();
    let ratio = |v: Option<f64>, r: Option<f64>| match (v, r) {
        (Some(v), Some(r)) if r != 0.0 => format!(" ({:.2})", v / r),
        _ => String::new(),
    };
    let cell = |server: &str, config: &str, k: &str, f: &dyn Fn(f64) -> String| {
        let g = d.groups.get(&(server.to_string(), config.to_string()));
        let v = g.and_then(|g| g.med(k));
        let r = d.groups.get(&(reference.to_string(), config.to_string())).and_then(|g| g.med(k));
        match v {
            Some(x) => format!("{}{}", f(x), ratio(v, r)),
            None => "-".to_string(),
        }
    };
    let max_rounds = d.groups.values().map(Group::rounds).max().unwrap_or(0);
    let min_rounds = d.groups.values().map(Group::rounds).min().unwrap_or(0);
    let _ = writeln!(
        out,
        "Medians over {} round(s) per server and configuration; ratios in parentheses are \
server / `{reference}`.\n",
        if min_rounds == max_rounds { max_rounds.to_string() } else { format!("{min_rounds}-{max_rounds}") }
    );

    let pp: Vec<&str> = d.configs.iter().filter(|c| !c.1).map(|c| c.0.as_str()).collect();
    let idle: Vec<&str> = d.configs.iter().filter(|c| c.1).map(|c| c.0.as_str()).collect();

    // Table 1: round trips/s and idle KiB per connection, one row per server.
    let _ =
        writeln!(out, "### Round trips per second (higher is better) and idle memory (lower is better)\n");
    let mut head = "| server |".to_string();
    let mut rule = "|---|".to_string();
    for c in &pp {
        head += &format!(" {c} |");
        rule += "---|";
    }
    for c in &idle {
        head += &format!(" KiB/conn, {c} |");
        rule += "---|";
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for s in &d.servers {
        let mut row = format!("| {s} |");
        for c in &pp {
            row += &format!(" {} |", cell(s, c, "rt_per_s", &|v| thousands(v)));
        }
        for c in &idle {
            row += &format!(" {} |", cell(s, c, "kib_per_conn", &|v| format!("{v:.2}")));
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
            head += &format!(" {c} |");
            rule += "---|";
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for s in &d.servers {
            let mut row = format!("| {s} |");
            for c in &pp {
                let client = d
                    .groups
                    .get(&(s.clone(), c.to_string()))
                    .and_then(|g| g.med("client_cpu_us_per_rt"))
                    .map_or(String::new(), |v| format!(" [{v:.2}]"));
                row +=
                    &format!(" {}{} |", cell(s, c, "server_cpu_us_per_rt", &|v| format!("{v:.2}")), client);
            }
            let _ = writeln!(out, "{row}");
        }
    }

    // Table 3: latency percentiles, one table per configuration.
    for c in &pp {
        let _ = writeln!(
            out,
            "\n### Latency, {c} (p50 / p99 / p99.9; lower is better)\n\n| server | p50 | p99 | p99.9 |\n|---|---|---|---|"
        );
        for s in &d.servers {
            let _ = writeln!(
                out,
                "| {s} | {} | {} | {} |",
                cell(s, c, "p50_us", &latency),
                cell(s, c, "p99_us", &latency),
                cell(s, c, "p999_us", &latency)
            );
        }
    }
    out
}

fn main() {
    let mut reference: Option<String> = None;
    let mut out_file: Option<String> = None;
    let mut svg_dir: Option<String> = None;
    let mut files = vec![];
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ref" => reference = it.next(),
            "--out" => out_file = it.next(),
            "--svg-dir" => svg_dir = it.next(),
            "-h" | "--help" => {
                println!("usage: summarize [--ref NAME] [--out FILE] [--svg-dir DIR] RESULTS.jsonl...");
                return;
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        eprintln!("usage: summarize [--ref NAME] [--out FILE] [--svg-dir DIR] RESULTS.jsonl...");
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
    let reference = match reference {
        Some(r) if d.servers.contains(&r) => r,
        Some(r) => {
            let first = d.servers[0].clone();
            eprintln!("summarize: note: reference {r:?} has no results; using {first:?}");
            first
        }
        None if d.servers.iter().any(|s| s == "callback") => "callback".into(),
        None => d.servers[0].clone(),
    };
    let md = render(&d, &reference);
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

/// Writes echo-throughput.svg, echo-p99.svg, echo-cpu.svg and echo-idle-rss.svg
/// (medians per server and configuration) into `dir`.
fn write_charts(d: &Data, dir: &str) -> std::io::Result<()> {
    use corio_benches::svg::BarChart;
    std::fs::create_dir_all(dir)?;
    let chart = |metric: &str, idle: bool| -> Vec<(String, Vec<Option<f64>>)> {
        d.configs
            .iter()
            .filter(|(_, is_idle)| *is_idle == idle)
            .map(|(config, _)| {
                let values = d
                    .servers
                    .iter()
                    .map(|s| d.groups.get(&(s.clone(), config.clone())).and_then(|g| g.med(metric)))
                    .collect();
                (config.clone(), values)
            })
            .collect()
    };
    let specs: [(&str, &str, &str, &str, &str, bool); 4] = [
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
    for (file, title, unit, note, metric, idle) in specs {
        let groups = chart(metric, idle);
        if groups.is_empty() {
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
}
