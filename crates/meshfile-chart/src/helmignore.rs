//! `.helmignore`: which files of a user's chart directory `helm package` leaves out. Same rules
//! as Helm's loader, so the archive meshfile builds holds what Helm's own would.
//!
//! A rule is a glob (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes; no `**`) matched against the file
//! name, or against the whole relative path when it holds a `/` (a leading `/` anchors it at the
//! chart root). A trailing `/` matches directories only. A `!` rule ignores everything it does
//! *not* match (Helm's reading of negation). Hidden files under `templates/` are always ignored.

/// One parsed rule.
#[derive(Clone, Debug)]
struct Rule {
    glob: String,
    negate: bool,
    dirs_only: bool,
    /// Matched against the whole relative path, not just the file name.
    whole_path: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// The rules of a `.helmignore` text (none: `""`), plus Helm's default one. A `**` rule is
    /// refused, as Helm refuses it.
    pub fn parse(text: &str) -> Result<Rules, meshfile_plan::files::FileError> {
        let mut rules = Rules::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.contains("**") {
                return Err(meshfile_plan::files::FileError::Helmignore {
                    line: number + 1,
                    rule: line.to_owned(),
                });
            }
            rules.push(line);
        }
        rules.push("templates/.?*");
        Ok(rules)
    }

    fn push(&mut self, line: &str) {
        let (negate, rest) = match line.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (dirs_only, rest) = match rest.strip_suffix('/') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let (whole_path, glob) = match rest.strip_prefix('/') {
            Some(anchored) => (true, anchored),
            None => (rest.contains('/'), rest),
        };
        if glob.is_empty() {
            return;
        }
        self.rules.push(Rule {
            glob: glob.to_owned(),
            negate,
            dirs_only,
            whole_path,
        });
    }

    /// Whether `path` (relative to the chart root, `/`-separated) is left out.
    pub fn ignores(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." {
            return false;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        for rule in &self.rules {
            let subject = if rule.whole_path { path } else { name };
            if rule.negate {
                if rule.dirs_only && !is_dir {
                    return true;
                }
                if !glob_matches(&rule.glob, subject) {
                    return true;
                }
                continue;
            }
            if rule.dirs_only && !is_dir {
                continue;
            }
            if glob_matches(&rule.glob, subject) {
                return true;
            }
        }
        false
    }
}

/// Go's `filepath.Match` on `/`-separated paths: `*` and `?` never cross a `/`.
fn glob_matches(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    matches_from(&glob, &text)
}

fn matches_from(glob: &[char], text: &[char]) -> bool {
    let Some((&first, rest)) = glob.split_first() else {
        return text.is_empty();
    };
    match first {
        '*' => (0..=text.len())
            .take_while(|&n| n == 0 || text[n - 1] != '/')
            .any(|n| matches_from(rest, &text[n..])),
        '?' => text
            .split_first()
            .is_some_and(|(&c, tail)| c != '/' && matches_from(rest, tail)),
        '[' => {
            let Some((&c, tail)) = text.split_first() else {
                return false;
            };
            match class(rest, c) {
                Some((true, after)) if c != '/' => matches_from(after, tail),
                _ => false,
            }
        }
        '\\' => match rest.split_first() {
            Some((&escaped, after)) => {
                text.first() == Some(&escaped) && matches_from(after, &text[1..])
            }
            None => false,
        },
        literal => text.first() == Some(&literal) && matches_from(rest, &text[1..]),
    }
}

/// A `[...]` class (after its `[`) against `c`: whether it matches, and the glob after `]`.
fn class(glob: &[char], c: char) -> Option<(bool, &[char])> {
    let (negated, mut rest) = match glob.split_first() {
        Some(('^' | '!', after)) => (true, after),
        _ => (false, glob),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (&lo, after) = rest.split_first()?;
        if lo == ']' && !first {
            return Some((matched != negated, after));
        }
        first = false;
        let (lo, after) = if lo == '\\' {
            let (&escaped, after) = after.split_first()?;
            (escaped, after)
        } else {
            (lo, after)
        };
        match after {
            ['-', hi, tail @ ..] if *hi != ']' => {
                matched |= lo <= c && c <= *hi;
                rest = tail;
            }
            _ => {
                matched |= lo == c;
                rest = after;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_go_filepath_match() {
        assert!(glob_matches("*.swp", "a.swp"));
        assert!(!glob_matches("*.swp", "dir/a.swp"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "a/c"));
        assert!(glob_matches("[a-c]x", "bx"));
        assert!(!glob_matches("[^a-c]x", "bx"));
        assert!(glob_matches("[^a-c]x", "dx"));
        assert!(glob_matches("\\*", "*"));
        assert!(glob_matches("files/*.txt", "files/a.txt"));
        assert!(!glob_matches("[a-", "a"));
    }

    #[test]
    fn rules_read_like_helm() {
        assert!(Rules::parse("docs/**\n").is_err());
        let rules =
            Rules::parse("# comment\n\n.git/\n*.bak\n/secrets/*.pem\nci/\n").expect("rules");
        assert!(rules.ignores(".git", true));
        assert!(
            !rules.ignores(".git", false),
            "a file named .git is not the directory rule"
        );
        assert!(rules.ignores("templates/x.bak", false));
        assert!(rules.ignores("secrets/key.pem", false));
        assert!(!rules.ignores("other/secrets/key.pem", false));
        assert!(rules.ignores("templates/.hidden.yaml", false));
        assert!(!rules.ignores("templates/deployment.yaml", false));
        assert!(!rules.ignores("Chart.yaml", false));
        // Helm's negation: everything the rule does not match is ignored.
        let only_yaml = Rules::parse("!*.yaml\n").expect("rules");
        assert!(only_yaml.ignores("README.md", false));
        assert!(!only_yaml.ignores("values.yaml", false));
    }
}
