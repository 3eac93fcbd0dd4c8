//! The deployment files agree with the workspace: the Dockerfile builds and copies every
//! function binary, the compose files and the SAM template run them, and the README names
//! them. (Images cannot be built where the tests run; this catches a renamed or forgotten
//! binary.)

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The `[[bin]]` names of the three function crates.
fn function_binaries() -> Vec<String> {
    let mut names = Vec::new();
    for function in ["api", "tick", "worker"] {
        let manifest = read(&format!("functions/{function}/Cargo.toml"));
        let bin = manifest
            .split("[[bin]]")
            .nth(1)
            .unwrap_or_else(|| panic!("functions/{function} declares no [[bin]]"));
        let name = bin
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("functions/{function}'s [[bin]] has no name"));
        names.push(name);
    }
    names
}

#[test]
fn the_dockerfile_builds_and_copies_every_binary_the_readme_names() {
    let binaries = function_binaries();
    assert_eq!(
        binaries,
        ["tickwork-api", "tickwork-tick", "tickwork-worker"],
        "the README, compose files and template name these"
    );
    let dockerfile = read("Dockerfile");
    let readme = read("README.md");
    let build = dockerfile
        .lines()
        .skip_while(|l| !l.contains("cargo build --release"))
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    for bin in &binaries {
        assert!(
            build.contains(&format!("-p {bin}")),
            "the Dockerfile's cargo build does not build {bin}"
        );
        assert!(
            build.contains(&format!("target/release/{bin}")),
            "the Dockerfile does not keep target/release/{bin}"
        );
        assert!(
            dockerfile
                .lines()
                .any(|l| l.starts_with("COPY --from=build") && l.contains(&format!("/out/{bin}"))),
            "the Dockerfile's final stage does not copy {bin}"
        );
        assert!(
            readme.contains(bin.as_str()),
            "the README does not name {bin}"
        );
    }
    assert!(
        dockerfile.lines().any(|l| l.trim() == "USER tickwork"),
        "the image runs as a non-root user"
    );
    let ignored = read(".dockerignore");
    for needed in ["shared", "functions", "migrations", "Cargo.lock"] {
        assert!(
            !ignored.lines().any(|l| l.trim() == needed),
            ".dockerignore leaves out {needed}, which the build needs"
        );
    }
}

#[test]
fn compose_files_and_the_sam_template_run_the_function_binaries() {
    let binaries = function_binaries();
    for file in ["docker-compose.yml", "docker-compose.dev.yml"] {
        let compose = read(file);
        for bin in &binaries {
            assert!(
                compose.contains(&format!("command: [\"{bin}\"]")),
                "{file} has no service running {bin}"
            );
        }
        assert!(
            compose.contains("command: [\"tickwork-api\", \"migrate\"]"),
            "{file} has no migrate service"
        );
    }
    let template = read("template.yaml");
    for bin in &binaries {
        assert!(
            template.contains(&format!("Binary: {bin}")),
            "template.yaml builds no function from {bin}"
        );
    }
}

#[test]
fn the_sample_lambda_events_are_json() {
    for file in [
        "functions/tick/events/scheduled.json",
        "functions/tick/events/migrate.json",
        "functions/worker/events/scheduled.json",
    ] {
        let event: serde_json::Value =
            serde_json::from_str(&read(file)).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        assert!(event.is_object(), "{file} is not a JSON object");
    }
}
