//! The fetch step refuses a checksum mismatch and an unaccepted licence, and
//! is idempotent.

use lotsense::models::{self, ModelsError, Status};

fn manifest(dir: &std::path::Path, body: &str) {
    std::fs::write(dir.join("manifest.toml"), body).unwrap();
}

#[test]
fn a_checksum_mismatch_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    manifest(
        dir.path(),
        r#"
[[model]]
name = "cls"
package = "rapidocr"
version = "3.10.0"
file = "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
dest = "cls.onnx"
licence = "Apache-2.0"
default = true
"#,
    );
    // The shared wheel cache makes this quick after the set-up step ran.
    let e = models::fetch(dir.path(), &[], &[], ".deps/wheels".as_ref()).unwrap_err();
    assert!(matches!(e, ModelsError::Checksum { .. }), "{e}");
    assert!(e.to_string().contains("refusing"), "{e}");
    assert!(!dir.path().join("cls.onnx").exists());
}

#[test]
fn an_opt_in_licence_must_be_accepted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("models/manifest.toml", dir.path().join("manifest.toml")).unwrap();
    let e = models::fetch(
        dir.path(),
        &["platedet".into()],
        &[],
        ".deps/wheels".as_ref(),
    )
    .unwrap_err();
    assert!(matches!(e, ModelsError::LicenceNotAccepted { .. }), "{e}");
    assert!(
        e.to_string().contains("--accept-licence agpl-3.0 platedet"),
        "{e}"
    );
}

#[test]
fn fetch_is_idempotent_and_verify_sees_the_files() {
    let dir = tempfile::tempdir().unwrap();
    manifest(
        dir.path(),
        r#"
[[model]]
name = "cls"
package = "rapidocr"
version = "3.10.0"
file = "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx"
sha256 = "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"
dest = "cls/cls.onnx"
licence = "Apache-2.0"
default = true
"#,
    );
    let first = models::fetch(dir.path(), &[], &[], ".deps/wheels".as_ref()).unwrap();
    assert_eq!(first, vec![("cls".to_string(), Status::Fetched)]);
    let second = models::fetch(dir.path(), &[], &[], ".deps/wheels".as_ref()).unwrap();
    assert_eq!(second, vec![("cls".to_string(), Status::Ok)]);
    assert_eq!(
        models::verify(dir.path()).unwrap(),
        vec![("cls".to_string(), Status::Ok)]
    );
    // Tampering is detected.
    std::fs::write(dir.path().join("cls/cls.onnx"), b"not a model").unwrap();
    assert!(matches!(
        models::verify(dir.path()).unwrap()[0].1,
        Status::Mismatch { .. }
    ));
}
