//! `promtool` (Debian's `prometheus` package ships it), with which
//! `tests/integration/metrics.rs` checks what `ward serve --metrics`
//! serves. Installed with apt-get when missing; when that fails the run goes
//! on and the test skips that one step with a note.

use crate::util;

/// Installs `promtool` if it is missing; never fails the run.
pub fn ensure() {
    if on_path("promtool") {
        return;
    }
    util::step("installing prometheus (promtool, for the metrics test)");
    match util::apt_install(&["prometheus"]) {
        Ok(()) if on_path("promtool") => {}
        Ok(()) => util::step(
            "promtool is still missing after installing prometheus; \
             the metrics test will skip its promtool check",
        ),
        Err(error) => util::step(format!(
            "cannot install prometheus ({error:#}); the metrics test will skip its promtool check"
        )),
    }
}

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
}
