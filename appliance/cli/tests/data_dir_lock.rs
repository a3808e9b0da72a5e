//! One writer per data directory: `chronicle run`, `import` and `engine run` take its lock
//! and refuse, naming the holder, while another process holds it.

mod common;
use common::*;

#[test]
fn a_second_writer_is_refused_while_the_data_dir_is_held() {
    let dir = scratch();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let held = chronicle_storage::fsutil::lock_dir(&data, "the test").unwrap();
    for args in [
        vec!["engine", "run", "--data-dir", data_arg],
        vec!["run", "--seconds", "1", "--data-dir", data_arg],
    ] {
        let out = chronicle(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran beside the holder");
        assert!(
            err.contains("in use by another process")
                && err.contains(&format!("pid {}: the test", std::process::id())),
            "{args:?}: {err}"
        );
    }
    drop(held);
    let lock_file = data.join(chronicle_storage::fsutil::LOCK_FILE);
    assert_eq!(
        std::fs::read_to_string(&lock_file).unwrap(),
        "",
        "a released lock names no holder"
    );
    chronicle_ok(&["engine", "run", "--data-dir", data_arg]);
    chronicle_ok(&["import", "--input", "/dev/null", "--data-dir", data_arg]);
    assert_eq!(
        std::fs::read_to_string(&lock_file).unwrap(),
        "",
        "the commands that held it left no pid behind"
    );
}
