//! The documentation runs. A fenced block right after `<!-- run: NAME -->` in README.md or a
//! guide page is executed, command by command, in a sandbox of its own per NAME (blocks of one
//! NAME run in order, in one shell, as a reader types them), with the real binary and the real
//! tools on PATH. Below a command, `#> TEXT` lines are what its output (standard output and
//! error together) shows, in order, each within one line, `…` standing for anything;
//! `#> [exit N]` is its exit status (0 unless said). Any other `#` line is a comment.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Test, workspace};

/// How long one command may take.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

struct Step {
    /// The command as bash reads it.
    command: String,
    expected: Vec<String>,
    exit: i32,
    /// Where it is written: `file:line`.
    at: String,
}

#[derive(Default)]
struct Scenario {
    blocks: usize,
    steps: Vec<Step>,
    /// What the sandbox holds besides the examples (`<!-- run: NAME; with: registry -->`):
    /// `registry`, a real registry on 127.0.0.1 holding the flask-redis example's two images
    /// under `src/`, its address in `$REGISTRY`, as a reader's registry holds their images.
    registry: bool,
}

/// The pages whose blocks may be marked to run.
fn pages() -> Vec<PathBuf> {
    let root = workspace();
    let mut pages = vec![root.join("README.md")];
    let guide = root.join("docs/src/guide");
    let mut guides: Vec<PathBuf> = std::fs::read_dir(&guide)
        .expect("guide")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    pages.extend(guides);
    pages
}

/// Every marked block of every page, by scenario name, and the blocks marked `<!-- not run:
/// REASON -->` (`file:line: reason`). A shell block marked neither is an error: every command
/// the docs show either runs or says why not.
fn scenarios() -> (BTreeMap<String, Scenario>, Vec<String>) {
    let mut all: BTreeMap<String, Scenario> = BTreeMap::new();
    let mut not_run = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("page");
        let name = page
            .strip_prefix(workspace())
            .unwrap_or(&page)
            .display()
            .to_string();
        let lines: Vec<&str> = text.lines().collect();
        for (j, line) in lines.iter().enumerate() {
            if !line.starts_with("```bash") {
                continue;
            }
            let marker = j.checked_sub(1).map_or("", |k| lines[k].trim());
            if let Some(reason) = marker
                .strip_prefix("<!-- not run: ")
                .and_then(|r| r.strip_suffix(" -->"))
            {
                not_run.push(format!("{name}:{}: {reason}", j + 1));
            } else {
                assert!(
                    marker.starts_with("<!-- run: "),
                    "{name}:{}: a shell block marked neither `<!-- run: NAME -->` nor `<!-- not run: REASON -->`",
                    j + 1
                );
            }
        }
        let mut i = 0;
        while i < lines.len() {
            let Some(scenario) = lines[i]
                .trim()
                .strip_prefix("<!-- run: ")
                .and_then(|rest| rest.strip_suffix(" -->"))
            else {
                i += 1;
                continue;
            };
            assert!(
                lines.get(i + 1).is_some_and(|l| l.starts_with("```")),
                "{name}:{}: a run marker must be followed by a fenced block",
                i + 1
            );
            let start = i + 2;
            let end = (start..lines.len())
                .find(|&j| lines[j].starts_with("```"))
                .unwrap_or_else(|| panic!("{name}:{}: the block does not end", i + 2));
            let (scenario, with) = scenario.split_once("; with: ").unwrap_or((scenario, ""));
            assert!(
                matches!(with, "" | "registry"),
                "{name}:{}: `with: {with}`: the harness provides `registry` only",
                i + 1
            );
            let entry = all.entry(scenario.to_owned()).or_default();
            entry.blocks += 1;
            entry.registry |= with == "registry";
            parse_block(&lines[start..end], &name, start + 1, &mut entry.steps);
            i = end + 1;
        }
    }
    (all, not_run)
}

/// The commands of one block (`first_line`: the 1-based line of its first line).
fn parse_block(lines: &[&str], page: &str, first_line: usize, steps: &mut Vec<Step>) {
    let mut pending = String::new();
    for (n, line) in lines.iter().enumerate() {
        let at = format!("{page}:{}", first_line + n);
        let trimmed = line.trim_start();
        if let Some(expected) = trimmed.strip_prefix("#>") {
            let step = steps
                .last_mut()
                .unwrap_or_else(|| panic!("{at}: an expectation before any command"));
            let expected = expected.trim();
            match expected
                .strip_prefix("[exit ")
                .and_then(|s| s.strip_suffix(']'))
            {
                Some(code) => step.exit = code.parse().expect("an exit status"),
                None => step.expected.push(expected.to_owned()),
            }
            continue;
        }
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        pending.push_str(line);
        if let Some(open) = pending.strip_suffix('\\') {
            pending = format!("{open}\n");
            continue;
        }
        steps.push(Step {
            command: std::mem::take(&mut pending),
            expected: Vec::new(),
            exit: 0,
            at,
        });
    }
    assert!(
        pending.is_empty(),
        "{page}: a command continues past its block"
    );
}

/// Whether `line` shows `pattern`: its parts between `…` in order.
fn shows(line: &str, pattern: &str) -> bool {
    let mut rest = line;
    for part in pattern.split('…') {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// A shell that runs one scenario's commands in its sandbox, as a reader would.
struct Shell {
    child: std::process::Child,
    dir: PathBuf,
    count: usize,
}

impl Shell {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Shell {
        let binary = std::env::var_os("MESHFILE_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_meshfile")),
            PathBuf::from,
        );
        let tools = workspace().join(".tools/bin");
        assert!(
            tools.join("openssl").exists(),
            "the documentation uses the tools `bash scripts/install-test-tools` installs"
        );
        let path = std::env::join_paths(
            [
                binary.parent().expect("bin dir").to_owned(),
                tools,
                PathBuf::from("/usr/bin"),
                PathBuf::from("/bin"),
            ]
            .iter(),
        )
        .expect("PATH");
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env_clear()
            .env("PATH", path)
            .env("LANG", "C.UTF-8")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::isolate(&mut command, dir);
        std::fs::create_dir_all(dir.join(".doc")).expect("dir");
        Shell {
            child: command.spawn().expect("bash"),
            dir: dir.to_owned(),
            count: 0,
        }
    }

    /// Runs one command: its exit status and output.
    fn run(&mut self, command: &str) -> (i32, String) {
        self.count += 1;
        let n = self.count;
        let doc = self.dir.join(".doc");
        std::fs::write(doc.join(format!("{n}.sh")), command).expect("script");
        // Absolute paths: a page may `cd`.
        let d = doc.display();
        let line = format!(
            "source {d}/{n}.sh > {d}/{n}.out 2>&1 < /dev/null; echo $? > {d}/{n}.tmp; mv {d}/{n}.tmp {d}/{n}.status\n"
        );
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(line.as_bytes()).expect("to bash");
        stdin.flush().expect("to bash");
        let status_file = doc.join(format!("{n}.status"));
        let started = Instant::now();
        let status = loop {
            if let Ok(text) = std::fs::read_to_string(&status_file) {
                break text.trim().parse().expect("status");
            }
            assert!(
                started.elapsed() < COMMAND_DEADLINE,
                "still running after {COMMAND_DEADLINE:?}: {command}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = std::fs::read(doc.join(format!("{n}.out"))).expect("output");
        (status, String::from_utf8_lossy(&out).into_owned())
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // What the page left running in the background goes with the shell.
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.write_all(b"kill $(jobs -p) 2>/dev/null; wait; exit\n");
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the repository's examples into the sandbox, where the pages find them.
fn copy_examples(to: &Path) {
    let from = workspace().join("examples");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.expect("entry");
        let target = to
            .join("examples")
            .join(entry.path().strip_prefix(&from).expect("in"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("dir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn every_marked_block_of_the_docs_runs_as_written() {
    let (scenarios, not_run) = scenarios();
    assert!(!scenarios.is_empty(), "no block is marked to run");
    let (mut blocks, mut commands) = (0, 0);
    for (name, scenario) in &scenarios {
        let sandbox = Test::new();
        copy_examples(sandbox.dir());
        let registry = scenario.registry.then(|| {
            let (registry, skopeo, umoci) =
                crate::oci::registry_tools().expect("the registry tools");
            crate::oci::registry_with_images(&registry, &skopeo, &umoci)
        });
        let address = registry.as_ref().map(|(r, _, _)| r.address.clone());
        let env: Vec<(&str, &str)> = address.iter().map(|a| ("REGISTRY", a.as_str())).collect();
        let mut shell = Shell::start(sandbox.dir(), &env);
        for step in &scenario.steps {
            let (status, output) = shell.run(&step.command);
            assert_eq!(
                status, step.exit,
                "{} ({name}): `{}` exited {status}, the page says {}:\n{output}",
                step.at, step.command, step.exit
            );
            let mut lines = output.lines();
            for expected in &step.expected {
                assert!(
                    lines.any(|line| shows(line, expected)),
                    "{} ({name}): `{}` does not show `{expected}` (in order):\n{output}",
                    step.at,
                    step.command
                );
            }
            commands += 1;
        }
        blocks += scenario.blocks;
    }
    eprintln!(
        "docs: {blocks} blocks, {commands} commands run as written ({} scenarios); {} blocks not run, each saying why:",
        scenarios.len(),
        not_run.len()
    );
    for block in &not_run {
        eprintln!("docs:   {block}");
    }
}

/// The text of a Markdown page outside fenced blocks and inline code, line by line (code
/// replaced by spaces so that columns keep their place).
fn prose(text: &str) -> Vec<String> {
    let mut fenced = false;
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return String::new();
            }
            if fenced {
                return String::new();
            }
            let mut out = String::with_capacity(line.len());
            let mut in_code = false;
            for c in line.chars() {
                if c == '`' {
                    in_code = !in_code;
                    out.push(' ');
                } else {
                    out.push(if in_code { ' ' } else { c });
                }
            }
            out
        })
        .collect()
}

/// A heading's anchor as mdBook makes it: lower case, spaces as `-`, other punctuation gone.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The book's pages: no HTML tag a page does not mean (`<n>` in prose is an unclosed element
/// to a browser), and every link to another page, and to a heading of one, leads somewhere.
#[test]
fn book_pages_hold_no_stray_tags_and_their_links_resolve() {
    let src = workspace().join("docs/src");
    let pages: Vec<PathBuf> = walkdir::WalkDir::new(&src)
        .into_iter()
        .map(|e| e.expect("entry").into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    let anchors = |page: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(page).unwrap_or_default();
        prose(&text)
            .iter()
            .zip(text.lines())
            .filter(|(p, _)| p.starts_with('#'))
            .map(|(_, line)| line.trim_start_matches('#'))
            .map(|heading| anchor(&heading.replace('`', "")))
            .collect()
    };
    let mut problems = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("page");
        let name = page
            .strip_prefix(&src)
            .unwrap_or(page)
            .display()
            .to_string();
        for (n, line) in prose(&text).iter().enumerate() {
            let at = format!("{name}:{}", n + 1);
            let mut rest = line.as_str();
            while let Some(open) = rest.find('<') {
                let tag = &rest[open + 1..];
                let word: String = tag
                    .trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                let allowed = tag.starts_with("!--")
                    || ["br", "details", "summary", "kbd", "sup", "sub"]
                        .contains(&word.to_ascii_lowercase().as_str());
                if !word.is_empty() && !allowed {
                    problems.push(format!("{at}: `<{word}` outside code reads as an HTML tag"));
                }
                rest = &rest[open + 1..];
            }
            let mut rest = line.as_str();
            while let Some(start) = rest.find("](") {
                let target = &rest[start + 2..];
                let Some(end) = target.find(')') else { break };
                let link = &target[..end];
                rest = &target[end..];
                if link.contains("://") || link.starts_with("mailto:") {
                    continue;
                }
                let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
                let target = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().expect("dir").join(file)
                };
                if !target.exists() {
                    problems.push(format!("{at}: `{link}` leads to no file"));
                } else if !fragment.is_empty() && !anchors(&target).iter().any(|a| a == fragment) {
                    problems.push(format!("{at}: `{link}` names no heading of its page"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The README's main job (its first command, less the `cargo run` that builds the binary) runs
/// on the example as a new user runs it: it succeeds and prints no warning.
#[test]
fn the_readme_main_job_runs_clean() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README");
    let line = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -p meshfile -- "))
        .expect("the main job, first in the README");
    let args: Vec<&str> = line["cargo run --release -p meshfile -- ".len()..]
        .split('#')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let sandbox = Test::new();
    copy_examples(sandbox.dir());
    for run in ["first", "second"] {
        let out = crate::meshfile(sandbox.dir())
            .args(&args)
            .output()
            .expect("run meshfile");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{run} run: {stderr}");
        assert!(
            !stderr.to_lowercase().contains("warning"),
            "the {run} run of the main job warns:\n{stderr}"
        );
        if run == "second" {
            assert!(
                stderr.contains("0 created, 0 updated, 3 unchanged"),
                "the second run changes nothing:\n{stderr}"
            );
        }
    }
}
