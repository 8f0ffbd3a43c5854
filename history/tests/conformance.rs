//! Every history in shared/conformance/porcupine parses and pairs.

use history::{pair, read_file, EventType, Format, Process};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/porcupine")
}

fn files(sub: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir().join(sub))
        .unwrap_or_else(|e| panic!("{}: {e}", dir().join(sub).display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn all_etcd_logs_parse_and_pair() {
    let logs = files("jepsen", "log");
    assert_eq!(logs.len(), 102);
    let (mut fails, mut infos) = (0, 0);
    for path in &logs {
        let loaded = read_file(path, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.format, Format::PorcupineLog, "{}", path.display());
        let h = &loaded.history;
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        // Every line of these logs is an op line.
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(h.events.len(), text.lines().count(), "{}", path.display());
        assert_eq!(h.lines.last(), Some(&h.events.len()));
        let p = pair(h).unwrap_or_else(|e| panic!("{e}"));
        assert!(!p.ops.is_empty());
        assert!(p.nemesis.is_empty());
        for e in &h.events {
            assert!(matches!(e.process, Process::Client(_)));
            assert!(["read", "write", "cas"].contains(&e.f.as_str()), "{}", e.f);
            if e.kind == EventType::Fail && e.f == "cas" && e.error == Some("precondition".into()) {
                fails += 1;
                assert!(e.value.as_array().is_some_and(|a| a.len() == 2));
            }
            if matches!(e.kind, EventType::Info | EventType::Fail)
                && e.error == Some("timed-out".into())
            {
                infos += 1;
                assert!(e.value.is_null());
            }
        }
    }
    assert!(fails > 1000, "{fails}");
    assert!(infos > 1000, "{infos}");
}

#[test]
fn all_kv_histories_parse_and_pair() {
    let kvs = files("kv", "txt");
    assert_eq!(kvs.len(), 6);
    for path in &kvs {
        let loaded = read_file(path, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.format, Format::PorcupineKv, "{}", path.display());
        let h = &loaded.history;
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        let p = pair(h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.ops.len() * 2, h.events.len(), "no failures, no crashes");
        for op in &p.ops {
            assert_eq!(op.kind, EventType::Ok);
            assert!(["get", "put", "append"].contains(&op.f.as_str()));
            let k: u32 = op
                .key
                .as_deref()
                .expect("every kv op has a key")
                .parse()
                .unwrap();
            assert!(k <= 9);
        }
        // Read as plain EDN, the same history comes out.
        let as_edn = read_file(path, Some(Format::Edn)).unwrap();
        assert_eq!(as_edn.history.events, h.events);
    }
}
