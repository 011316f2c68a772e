//! What a service's program is: the runtime's variables (pod, not session), the Java class
//! path genservice adds, the program a container starts.

/// Environment variables consumed when the enclave is created; they belong to the image's
/// signature, and the session language ignores them in a session.
pub(super) const ENCLAVE_CREATION_VARIABLES: &[&str] = &[
    "SCONE_HEAP",
    "SCONE_MIN_HEAP",
    "SCONE_STACK",
    "SCONE_ALLOW_DLOPEN",
];

/// Environment variables the SCONE runtime reads in the pod, not the program from its session:
/// set there, they would have no effect. SCONE's own service chart sets them in the pod
/// (`scone_log`, `scone_version`, `SCONE_EDMM_MODE`); none is confidential. `SCONE_CAS_ADDR`
/// is the pod's CAS address ([`chart::ChartService::cas_addr`]).
pub const RUNTIME_VARIABLES: &[&str] = &["SCONE_LOG", "SCONE_VERSION", "SCONE_EDMM_MODE"];

/// The runtime's CAS address: given in an environment, it is the pod's `SCONE_CAS_ADDR`.
pub(super) const CAS_ADDRESS_VARIABLE: &str = "SCONE_CAS_ADDR";

/// Whether the runtime, not the program, reads `name`: it goes to the pod, not the session.
pub(super) fn read_by_runtime(name: &str) -> bool {
    RUNTIME_VARIABLES.contains(&name) || name == CAS_ADDRESS_VARIABLE
}

/// A `java` command without a class path gets the one SCONE's genservice builds: the working
/// directory and each JAR the manifest copies (relative to it), right after `java`.
pub(super) fn with_class_path(
    command: meshfile_session::Command,
    pwd: &str,
    jars: &[&str],
) -> meshfile_session::Command {
    use meshfile_session::Command;
    let has_class_path = |words: &[&str]| {
        words.iter().any(|w| {
            matches!(*w, "-cp" | "-classpath" | "--class-path") || w.starts_with("--class-path=")
        })
    };
    let class_path = || {
        let base = pwd.trim_end_matches('/');
        let mut parts = vec![if base.is_empty() {
            "/".to_owned()
        } else {
            base.to_owned()
        }];
        parts.extend(jars.iter().map(|j| {
            if j.starts_with('/') {
                (*j).to_owned()
            } else {
                format!("{base}/{j}")
            }
        }));
        parts.join(":")
    };
    match command {
        Command::Line(line) => {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first().map(|w| program_name(w)) != Some("java".to_owned())
                || has_class_path(&words)
            {
                return Command::Line(line);
            }
            let rest = line.trim_start()[words[0].len()..].to_owned();
            Command::Line(format!("{} -cp {}{rest}", words[0], class_path()))
        }
        Command::Words(words) => {
            let refs: Vec<&str> = words.iter().map(String::as_str).collect();
            if refs.first().map(|w| program_name(w)) != Some("java".to_owned())
                || has_class_path(&refs)
            {
                return Command::Words(words);
            }
            let mut out = Vec::with_capacity(words.len() + 2);
            out.push(words[0].clone());
            out.push("-cp".to_owned());
            out.push(class_path());
            out.extend(words.into_iter().skip(1));
            Command::Words(out)
        }
    }
}

/// The program a command starts, as the container's command: its first word, when that is a
/// plain path or name (no variable, reference or quoting to resolve first).
pub(super) fn container_program(command: &str) -> Option<String> {
    let first = command.split_whitespace().next()?;
    let plain = first
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'-' | b'.' | b'+'));
    plain.then(|| first.to_owned())
}

/// The program name of a command line: `python3 x.py` and `/usr/bin/python3 x.py` give `python3`.
pub fn program_name(command: &str) -> String {
    let first = command.split_whitespace().next().unwrap_or("service");
    let base = first.rsplit('/').next().unwrap_or(first);
    let clean: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '~'))
        .collect();
    if clean.is_empty() {
        "service".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod class_path_tests {
    use super::*;
    use meshfile_session::Command;

    #[test]
    fn java_gets_genservices_class_path_unless_it_has_one() {
        let line = |s: &str| Command::Line(s.to_owned());
        assert_eq!(
            with_class_path(line("java PrintEnv"), "/java", &["lib/a.jar"]),
            line("java -cp /java:/java/lib/a.jar PrintEnv")
        );
        assert_eq!(
            with_class_path(line("java -cp x PrintEnv"), "/java", &[]),
            line("java -cp x PrintEnv")
        );
        assert_eq!(
            with_class_path(line("python3 x.py"), "/java", &[]),
            line("python3 x.py")
        );
        let words = |w: &[&str]| Command::Words(w.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            with_class_path(words(&["/usr/bin/java", "Main"]), "/app/", &[]),
            words(&["/usr/bin/java", "-cp", "/app", "Main"])
        );
    }
}
