//! The clock offset file: round trip, atomic replacement, and what a missing file means.

use nemesis::clock::ClockFile;

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ClockFile::new(dir.path().join("clock-offset"));
    assert_eq!(clock.current(), 0, "no file means no offset");
    clock.set(1500).expect("set");
    assert_eq!(clock.current(), 1500);
    assert_eq!(
        std::fs::read_to_string(clock.path()).expect("read"),
        "1500\n"
    );
    clock.set(-86_400_000).expect("set negative");
    assert_eq!(clock.current(), -86_400_000);
    clock.reset().expect("reset");
    assert_eq!(clock.current(), 0);
    // Only the offset file is left: the temporary file was renamed over it.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("clock-offset")]);
}

#[test]
fn a_reader_never_sees_a_partial_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("offset");
    let clock = ClockFile::new(&path);
    clock.set(0).expect("set");
    let reader_path = path.clone();
    let reader = std::thread::spawn(move || {
        let mut seen = 0;
        for _ in 0..500 {
            let text = std::fs::read_to_string(&reader_path).expect("the file always exists");
            let v: i64 = text.trim().parse().expect("always a whole number");
            assert!(v == 0 || v == -123_456_789 || v == 987_654_321, "{v}");
            seen += 1;
        }
        seen
    });
    for i in 0..500 {
        clock
            .set(if i % 2 == 0 {
                -123_456_789
            } else {
                987_654_321
            })
            .expect("set");
    }
    assert_eq!(reader.join().expect("reader"), 500);
}

#[test]
fn unwritable_directory_is_an_error() {
    let clock = ClockFile::new("/nonexistent-dir/offset");
    assert!(clock.set(5).is_err());
    assert_eq!(clock.current(), 0);
}
