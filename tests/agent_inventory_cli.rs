//! `patchwave-agent inventory --backend apt` on this Debian machine: the command a person
//! runs before enrolling a machine to see what its agent will report. Its output must parse
//! as the Asset's status.reported and list exactly the upgrades apt itself simulates.

use std::collections::BTreeSet;
use std::process::Command;

use patchwave::api::asset::ReportedState;

/// Runs `patchwave-agent inventory --backend apt -o <format>` and returns its stdout.
fn inventory(format: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_patchwave-agent"))
        .args(["inventory", "--backend", "apt", "-o", format])
        .output()
        .expect("starting patchwave-agent inventory");
    assert!(
        output.status.success(),
        "patchwave-agent inventory -o {format} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("inventory output is UTF-8")
}

/// The package names of the `Inst ` lines of `apt-get -s dist-upgrade`.
fn apt_simulated_upgrades() -> Vec<String> {
    let output = Command::new("apt-get")
        .args(["-s", "dist-upgrade"])
        .env("LC_ALL", "C")
        .output()
        .expect("running apt-get -s dist-upgrade");
    assert!(
        output.status.success(),
        "apt-get -s dist-upgrade failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("Inst "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn inventory_lists_what_apt_would_upgrade() {
    let json: ReportedState =
        serde_json::from_str(&inventory("json")).expect("-o json parses as status.reported");
    let expected = apt_simulated_upgrades();

    assert_eq!(json.backend.as_deref(), Some("apt"));
    let os = json.os.as_ref().expect("the inventory carries OS facts");
    assert!(
        os.name.as_deref().is_some_and(|n| !n.is_empty()),
        "OS name missing: {os:?}"
    );
    assert_eq!(
        json.reboot_pending,
        std::path::Path::new("/var/run/reboot-required").exists(),
        "rebootPending must follow /var/run/reboot-required"
    );
    assert_eq!(
        json.available_updates.len(),
        expected
            .len()
            .min(patchwave::api::asset::MAX_AVAILABLE_UPDATES),
        "one available update per `Inst ` line of apt-get -s dist-upgrade"
    );
    let reported: BTreeSet<&str> = json
        .available_updates
        .iter()
        .map(|u| u.id.as_str())
        .collect();
    let simulated: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    if expected.len() <= patchwave::api::asset::MAX_AVAILABLE_UPDATES {
        assert_eq!(reported, simulated, "the same packages as apt's simulation");
    }
    for update in &json.available_updates {
        assert!(
            update.version.is_some() && update.installed_version.is_some(),
            "{} lacks the new or the installed version: {update:?}",
            update.id
        );
    }

    let yaml: ReportedState =
        serde_yaml::from_str(&inventory("yaml")).expect("-o yaml parses as status.reported");
    assert_eq!(
        yaml.available_updates, json.available_updates,
        "YAML and JSON describe the same updates"
    );
    assert_eq!(yaml.os, json.os);
}
