//! Tests of the dump's text and JSON on synthetic dumps.

use super::*;
use crate::debug::info::SpawnLocation;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

fn frame(function: &str, file: Option<&str>, line: Option<u32>) -> Frame {
    Frame { function: function.to_string(), file: file.map(str::to_string), line }
}

fn coroutine(id: u64, name: Option<&str>, state: CoroutineState) -> CoroutineInfo {
    CoroutineInfo {
        id,
        name: name.map(str::to_string),
        state,
        reason: WaitReason::None,
        object: WaitObject::None,
        waited: None,
        worker: Some(0),
        parent: None,
        spawned_at: None,
        frames: Vec::new(),
        frames_note: None,
    }
}

fn parked(id: u64, reason: WaitReason, object: WaitObject, waited: Duration) -> CoroutineInfo {
    CoroutineInfo { reason, object, waited: Some(waited), ..coroutine(id, None, CoroutineState::Parked) }
}

fn peer() -> SocketAddr {
    "10.0.0.7:5531".parse().unwrap()
}

/// 2026-11-30T10:41:07Z
fn taken_at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_035_267)
}

fn sample() -> Dump {
    let conn = CoroutineInfo {
        name: Some("conn 10.0.0.7:5531".to_string()),
        worker: Some(1),
        parent: Some(7),
        spawned_at: Some(SpawnLocation { file: "src/main.rs", line: 31, column: 9 }),
        frames: vec![
            frame("myserver::handle", Some("src/main.rs"), Some(44)),
            frame("myserver::serve", Some("src/main.rs"), Some(60)),
        ],
        ..parked(
            42,
            WaitReason::Io,
            WaitObject::Socket { fd: 17, direction: IoDirection::Read, peer: Some(peer()) },
            Duration::from_secs(200),
        )
    };
    let acceptor = CoroutineInfo {
        name: Some("acceptor".to_string()),
        spawned_at: Some(SpawnLocation { file: "src/main.rs", line: 12, column: 5 }),
        frames: vec![frame("myserver::accept_loop", Some("src/main.rs"), None), frame("??", None, None)],
        ..parked(
            7,
            WaitReason::Sync,
            WaitObject::Sync { kind: SyncKind::ChanReceive, addr: 0x7f12_a4c0 },
            Duration::from_millis(2100),
        )
    };
    let running = CoroutineInfo {
        worker: Some(1),
        parent: Some(7),
        frames_note: Some("running: stack not sampled".to_string()),
        ..coroutine(43, Some("busy"), CoroutineState::Running)
    };
    let runnable = coroutine(44, None, CoroutineState::Runnable);
    let sleeper = parked(
        45,
        WaitReason::Sleep,
        WaitObject::Sleep { until: Instant::now() + Duration::from_secs(90 * 60 + 30) },
        Duration::from_millis(350),
    );
    Dump {
        taken_at: taken_at(),
        workers: vec![
            WorkerInfo { index: 0, running: None, running_for: None, answered: true, not_started: 4 },
            WorkerInfo {
                index: 1,
                running: Some(43),
                running_for: Some(Duration::from_millis(1200)),
                answered: false,
                not_started: 0,
            },
        ],
        coroutines: vec![conn, acceptor, running, runnable, sleeper],
        not_started_global: 8,
    }
}

#[test]
fn dump_text() {
    let text = sample().to_string();
    let expected = "\
corio dump at 2026-11-30T10:41:07Z: 2 workers, 5 coroutines (1 running, 1 runnable, 3 parked), 12 not started

worker 0 is idle, 4 not started
worker 1 is running coroutine 43 for 1.20 s (did not answer: its other coroutines are not listed)

coroutine 42 \"conn 10.0.0.7:5531\" [net read fd 17 (peer 10.0.0.7:5531), 3 minutes], worker 1, spawned by 7 at src/main.rs:31:
  myserver::handle
      at src/main.rs:44
  myserver::serve
      at src/main.rs:60

coroutine 7 \"acceptor\" [chan receive 0x7f12a4c0, 2.1 s], worker 0, spawned from a thread at src/main.rs:12:
  myserver::accept_loop
      at src/main.rs
  ??

coroutine 43 \"busy\" [running], worker 1, spawned by 7:
  (running: stack not sampled)

coroutine 44 [runnable], worker 0, spawned from a thread:
  (no stack)

coroutine 45 [sleep, 90 minutes left, 350 ms], worker 0, spawned from a thread:
  (no stack)
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn coroutine_display_is_its_block() {
    let dump = sample();
    let block = dump.coroutines()[1].to_string();
    assert!(block.starts_with("coroutine 7 \"acceptor\" [chan receive 0x7f12a4c0, 2.1 s]"), "{block}");
    assert!(block.ends_with("  ??\n"), "{block}");
    assert!(dump.to_string().contains(&block));
}

#[test]
fn names_are_escaped() {
    let c = coroutine(1, Some("a \"quoted\"\nname"), CoroutineState::Runnable);
    assert!(c.to_string().starts_with(r#"coroutine 1 "a \"quoted\"\nname" [runnable]"#));
}

#[test]
fn every_wait_object() {
    let now = Instant::now();
    let cases = [
        (WaitReason::Park, WaitObject::None, "park"),
        (WaitReason::Sleep, WaitObject::None, "sleep"),
        (WaitReason::Join, WaitObject::None, "join"),
        (WaitReason::Sync, WaitObject::None, "sync wait"),
        (WaitReason::Io, WaitObject::None, "net wait"),
        (WaitReason::None, WaitObject::None, "not waiting"),
        (
            WaitReason::Io,
            WaitObject::Socket { fd: 17, direction: IoDirection::Read, peer: Some(peer()) },
            "net read fd 17 (peer 10.0.0.7:5531)",
        ),
        (
            WaitReason::Io,
            WaitObject::Socket { fd: 3, direction: IoDirection::Write, peer: None },
            "net write fd 3",
        ),
        (
            WaitReason::Io,
            WaitObject::Socket {
                fd: 5,
                direction: IoDirection::Write,
                peer: Some("[::1]:80".parse().unwrap()),
            },
            "net write fd 5 (peer [::1]:80)",
        ),
        (
            WaitReason::Sleep,
            WaitObject::Sleep { until: now + Duration::from_millis(1500) },
            "sleep, 1.5 s left",
        ),
        (WaitReason::Sleep, WaitObject::Sleep { until: now }, "sleep, due"),
        (WaitReason::Park, WaitObject::Sleep { until: now + Duration::from_millis(20) }, "park, 20 ms left"),
        (WaitReason::Join, WaitObject::Join { id: 9 }, "join coroutine 9"),
        (WaitReason::Sync, WaitObject::Sync { kind: SyncKind::Select, addr: 0 }, "select"),
    ];
    for (reason, object, text) in cases {
        assert_eq!(describe_wait(reason, &object, now), text);
    }
    let kinds = [
        (SyncKind::ChanReceive, "chan receive"),
        (SyncKind::ChanSend, "chan send"),
        (SyncKind::Select, "select"),
        (SyncKind::Mutex, "Mutex lock"),
        (SyncKind::RwLockRead, "RwLock read"),
        (SyncKind::RwLockWrite, "RwLock write"),
        (SyncKind::Condvar, "Condvar wait"),
        (SyncKind::Semaphore, "Semaphore acquire"),
        (SyncKind::WaitGroup, "WaitGroup wait"),
        (SyncKind::Barrier, "Barrier wait"),
        (SyncKind::OnceLock, "OnceLock init"),
    ];
    for (kind, text) in kinds {
        let object = WaitObject::Sync { kind, addr: 0x1000 };
        assert_eq!(describe_wait(WaitReason::Sync, &object, now), format!("{text} 0x1000"));
        assert_eq!(object.to_string(), format!("{text} 0x1000"));
    }
    assert_eq!(WaitObject::None.to_string(), "none");
}

#[test]
fn durations() {
    let ms = Duration::from_millis;
    for (d, text) in [
        (Duration::ZERO, "0 ms"),
        (Duration::from_micros(300), "<1 ms"),
        (ms(350), "350 ms"),
        (ms(999), "999 ms"),
        (ms(1000), "1.0 s"),
        (ms(2149), "2.1 s"),
        (ms(9949), "9.9 s"),
        (ms(9950), "10 s"),
        (ms(59_400), "59 s"),
        (ms(60_000), "1 minute"),
        (ms(200_000), "3 minutes"),
        (ms(119 * 60_000), "119 minutes"),
        (ms(2 * 3_600_000), "2 hours"),
        (ms(47 * 3_600_000), "47 hours"),
        (ms(3 * 86_400_000), "3 days"),
    ] {
        assert_eq!(human_duration(d), text, "{d:?}");
    }
    assert_eq!(running_duration(ms(1200)), "1.20 s");
    assert_eq!(running_duration(ms(1534)), "1.53 s");
    assert_eq!(running_duration(ms(180_000)), "3 minutes");
}

#[test]
fn header_counts() {
    let mut dump = sample();
    assert_eq!(dump.counts(), Counts { running: 1, runnable: 1, parked: 3, not_started: 12 });
    dump.coroutines.truncate(1);
    dump.coroutines.push(coroutine(50, None, CoroutineState::NotStarted));
    dump.workers.truncate(1);
    dump.not_started_global = 0;
    let text = dump.to_string();
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        "corio dump at 2026-11-30T10:41:07Z: 1 worker, 1 coroutine (0 running, 0 runnable, 1 parked), 5 not started"
    );
    // An empty dump is one line.
    let empty =
        Dump { taken_at: taken_at(), workers: Vec::new(), coroutines: Vec::new(), not_started_global: 0 };
    assert_eq!(
        empty.to_string(),
        "corio dump at 2026-11-30T10:41:07Z: 0 workers, 0 coroutines (0 running, 0 runnable, 0 parked), 0 not started\n"
    );
}

#[test]
fn find_and_coroutines() {
    let dump = sample();
    assert_eq!(dump.coroutines().len(), 5);
    assert_eq!(dump.find("acceptor").map(|c| c.id), Some(7));
    assert_eq!(dump.find("busy").map(|c| c.id), Some(43));
    assert!(dump.find("nobody").is_none());
}

#[test]
fn json_parses_back() {
    let dump = sample();
    let text = dump.to_json();
    assert!(!text.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["taken_at"], "2026-11-30T10:41:07.000Z");
    assert_eq!(v["taken_at_unix_ms"], 1_796_035_267_000_i64);
    assert_eq!(v["not_started_global"], 8);

    let workers = v["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    assert_eq!(workers[0]["index"], 0);
    assert!(workers[0]["running"].is_null());
    assert!(workers[0]["running_for_ms"].is_null());
    assert_eq!(workers[0]["not_started"], 4);
    assert_eq!(workers[1]["running"], 43);
    assert_eq!(workers[1]["running_for_ms"], 1200);
    assert_eq!(workers[1]["answered"], false);

    let cs = v["coroutines"].as_array().unwrap();
    assert_eq!(cs.len(), 5);
    let conn = &cs[0];
    assert_eq!(conn["id"], 42);
    assert_eq!(conn["name"], "conn 10.0.0.7:5531");
    assert_eq!(conn["state"], "parked");
    assert_eq!(conn["reason"], "io");
    assert_eq!(conn["description"], "net read fd 17 (peer 10.0.0.7:5531)");
    assert_eq!(conn["wait"]["kind"], "socket");
    assert_eq!(conn["wait"]["fd"], 17);
    assert_eq!(conn["wait"]["direction"], "read");
    assert_eq!(conn["wait"]["peer"], "10.0.0.7:5531");
    assert_eq!(conn["waited_ms"], 200_000);
    assert_eq!(conn["worker"], 1);
    assert_eq!(conn["parent"], 7);
    assert_eq!(conn["spawned_at"], serde_json::json!({"file": "src/main.rs", "line": 31, "column": 9}));
    assert_eq!(
        conn["frames"][0],
        serde_json::json!({"function": "myserver::handle", "file": "src/main.rs", "line": 44})
    );
    assert_eq!(conn["frames"].as_array().unwrap().len(), 2);
    assert!(conn["frames_note"].is_null());

    let acceptor = &cs[1];
    assert_eq!(
        acceptor["wait"],
        serde_json::json!({"kind": "sync", "sync": "chan_receive", "addr": "0x7f12a4c0"})
    );
    assert!(acceptor["parent"].is_null());
    assert!(acceptor["frames"][0]["line"].is_null());
    assert_eq!(acceptor["frames"][1], serde_json::json!({"function": "??", "file": null, "line": null}));

    let running = &cs[2];
    assert_eq!(running["state"], "running");
    assert_eq!(running["reason"], "none");
    assert_eq!(running["description"], "running");
    assert!(running["wait"].is_null());
    assert!(running["waited_ms"].is_null());
    assert_eq!(running["frames_note"], "running: stack not sampled");

    let runnable = &cs[3];
    assert_eq!(runnable["state"], "runnable");
    assert!(runnable["name"].is_null());
    assert!(runnable["spawned_at"].is_null());

    let sleeper = &cs[4];
    assert_eq!(sleeper["wait"]["kind"], "sleep");
    let left = sleeper["wait"]["remaining_ms"].as_u64().unwrap();
    assert!(left > 90 * 60_000 && left <= (90 * 60 + 30) * 1000, "{left}");
    let until = sleeper["wait"]["until_ms"].as_i64().unwrap();
    let now_ms = clock::unix_millis(SystemTime::now());
    assert!((until - now_ms - left as i64).abs() < 60_000, "{until} {now_ms} {left}");
}

#[test]
fn json_join_and_not_started() {
    let mut c = parked(3, WaitReason::Join, WaitObject::Join { id: 9 }, Duration::from_millis(5));
    c.worker = None;
    let ns = coroutine(4, Some("later"), CoroutineState::NotStarted);
    let dump =
        Dump { taken_at: UNIX_EPOCH, workers: Vec::new(), coroutines: vec![c, ns], not_started_global: 0 };
    let v: serde_json::Value = serde_json::from_str(&dump.to_json()).unwrap();
    assert_eq!(v["taken_at"], "1970-01-01T00:00:00.000Z");
    assert_eq!(v["coroutines"][0]["wait"], serde_json::json!({"kind": "join", "joined": 9}));
    assert_eq!(v["coroutines"][0]["description"], "join coroutine 9");
    assert!(v["coroutines"][0]["worker"].is_null());
    assert_eq!(v["coroutines"][1]["state"], "not_started");
    assert_eq!(v["coroutines"][1]["description"], "not started");
}
