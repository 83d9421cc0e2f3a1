//! The web till and dashboard in a real browser: `tests-web/web.test.mjs` drives Debian's
//! chromium with playwright-core against this build's `caja serve`, which it starts, kills
//! and restarts itself. `.ci/run` installs chromium and the npm package; without them this
//! test fails, it never skips.

use std::path::Path;
use std::process::Command;

#[test]
fn the_web_till_holds_up_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests-web");
    assert!(
        root.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci --prefix tests-web` (.ci/run does)"
    );
    let chromium = std::env::var("CAJA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no chromium at {chromium}: apt-get install chromium (.ci/run does)"
    );
    let out = Command::new("node")
        .arg(root.join("web.test.mjs"))
        .arg(env!("CARGO_BIN_EXE_caja"))
        .arg(root.join("screenshots"))
        .output()
        .expect("run node (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The measured figures (live latency between two tills) are reported, not asserted.
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
