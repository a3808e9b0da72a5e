//! `--format` defaults to what the file name says, for every command that takes one: a DBN
//! file (`.dbn`, `.dbn.zst`, legacy `.dbz`) runs and imports without it.

mod common;
use chronicle_testkit::shared_data;
use common::*;

#[test]
fn dbn_files_need_no_format_flag() {
    let Some(dbn) = shared_data("dbn/test_data.mbo.v3.dbn.zst") else {
        return;
    };
    let Some(dbz) = shared_data("dbn/test_data.mbo.dbz") else {
        return;
    };
    let dir = scratch();
    let run_data = dir.path().join("run");
    let out = chronicle_ok(&[
        "run",
        "--input",
        dbn.to_str().unwrap(),
        "--no-metrics",
        "--data-dir",
        run_data.to_str().unwrap(),
    ]);
    assert!(out.contains("dbn capture"), "{out}");
    for (name, file) in [("dbn", &dbn), ("dbz", &dbz)] {
        let data = dir.path().join(name);
        chronicle_ok(&[
            "import",
            "--input",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        let verified = chronicle_ok(&["verify", data.to_str().unwrap()]);
        assert!(!verified.starts_with("0 segments"), "{name}: {verified}");
    }
}
