//! `config check` on the annotated example and on a broken config.

use lotsense::config::Config;
use std::process::Command;

#[test]
fn the_annotated_example_is_valid() {
    let c = Config::load("docker/lotsense.example.toml".as_ref()).expect("example config is valid");
    assert_eq!(c.site.name, "central");
    assert_eq!(c.cameras.len(), 3);
    assert_eq!(c.bays.len(), 2);
    assert_eq!(c.lpr.format.len(), 4);
}

#[test]
fn the_demo_config_is_valid() {
    Config::load("testdata/demo/lotsense.toml".as_ref()).expect("demo config is valid");
}

#[test]
fn a_broken_config_lists_every_problem_with_its_line() {
    let err = Config::load("testdata/config/broken.toml".as_ref()).unwrap_err();
    let problems: Vec<String> = err.problems().iter().map(|p| p.to_string()).collect();
    let expect = [
        ("line 3: site.name", "bad site"),
        ("line 4: site.time_zone", "Mars/Olympus"),
        (
            "line 7: gates[0].id",
            "gate `north` has no entry or exit camera",
        ),
        (
            "line 13: cameras[0].gate",
            "gate `south`, which is not defined",
        ),
        ("line 14: cameras[0].colour", "unknown key `colour`"),
        ("line 19: cameras[1].url", "camera `ceiling`: url"),
        (
            "line 29: bays[0].camera",
            "camera `ceiling-2`, which is not defined",
        ),
        ("line 30: bays[0].polygon", "cross"),
    ];
    for (prefix, needle) in expect {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(prefix) && p.contains(needle)),
            "missing problem `{prefix} … {needle}` in:\n{}",
            problems.join("\n")
        );
    }
    assert_eq!(
        problems.len(),
        expect.len(),
        "unexpected extra problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_type_error_is_reported_with_its_line_next_to_unknown_keys() {
    // Written by hand, not with SiteBuilder: an unknown key and a value of the
    // wrong type cannot be built with typed methods, and the lines matter.
    let text = "[site]\nname = \"x\"\nnmae = 1\n[[cameras]]\nid = \"c\"\nrole = \"entry\"\nurl = \"rtsp://h/x\"\nfps = \"fast\"\n";
    let err = Config::from_toml(text, "inline.toml").unwrap_err();
    let s = err.to_string();
    assert!(s.contains("line 3: site.nmae: unknown key"), "{s}");
    assert!(s.contains("line 8"), "{s}");
}

#[test]
fn config_check_command_exits_nonzero_and_prints_all_problems() {
    let bin = env!("CARGO_BIN_EXE_lotsense");
    let ok = Command::new(bin)
        .args(["config", "check", "docker/lotsense.example.toml"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok (3 cameras"));
    let bad = Command::new(bin)
        .args(["config", "check", "testdata/config/broken.toml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("8 problem(s)"), "{err}");
    assert!(err.contains("line 30: bays[0].polygon"), "{err}");
}
