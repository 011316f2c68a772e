//! Image references as a Meshfile names them: their parts, and what makes one valid (the
//! OCI distribution grammar).

/// The last path element of an image reference, without tag or digest.
pub fn image_base_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

/// Splits `registry:5000/repo/name:tag@sha256:...` into repository, tag and digest.
pub fn split_image(image: &str) -> (String, Option<String>, Option<String>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d.to_owned())),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(colon) => (
            rest[..slash + colon].to_owned(),
            Some(rest[slash + colon + 1..].to_owned()),
            digest,
        ),
        None => (rest.to_owned(), None, digest),
    }
}

/// Why `image` is not an OCI image reference (`[host[:port]/]path[:tag][@algorithm:hex]`, the
/// grammar of the distribution project's `reference` package), or `None` when it is one.
pub fn image_reference_error(image: &str) -> Option<String> {
    if image.len() > 512 {
        return Some("it is longer than 512 characters".into());
    }
    if let Some(bad) = image.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "it contains {bad:?}, which no image reference holds"
        ));
    }
    let (name, tag, digest) = split_image(image);
    let components: Vec<&str> = name.split('/').collect();
    let has_host = components.len() > 1
        && (components[0].contains(['.', ':']) || components[0] == "localhost");
    let path = if has_host {
        if !is_registry_host(components[0]) {
            return Some(format!("`{}` is not a registry host[:port]", components[0]));
        }
        &components[1..]
    } else {
        &components[..]
    };
    if let Some(part) = path.iter().find(|p| !is_path_component(p)) {
        return Some(format!(
            "`{part}` is not a repository path component (lowercase letters and digits, \
             separated by `.`, `_`, `__` or dashes)"
        ));
    }
    if name.len() > 255 {
        return Some("the repository name is longer than 255 characters".into());
    }
    if let Some(tag) = tag {
        let mut bytes = tag.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !first_ok
            || tag.len() > 128
            || !bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return Some(format!(
                "`{tag}` is not a tag (up to 128 letters, digits, `_`, `.`, `-`; not starting with `.` or `-`)"
            ));
        }
    }
    if let Some(digest) = digest {
        let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
            !algorithm.is_empty()
                && algorithm.split(['+', '.', '_', '-']).all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
                && hex.len() >= 32
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !valid {
            return Some(format!(
                "`{digest}` is not a digest such as `sha256:` and 64 hex digits"
            ));
        }
    }
    None
}

fn is_path_component(part: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = part.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Separators between alphanumeric runs: `.`, `_`, `__` or any number of `-`.
    let mut run = String::new();
    for &b in bytes {
        if alnum(b) {
            if !(run.is_empty()
                || run == "."
                || run == "_"
                || run == "__"
                || run.bytes().all(|c| c == b'-'))
            {
                return false;
            }
            run.clear();
        } else if b"._-".contains(&b) {
            run.push(b as char);
        } else {
            return false;
        }
    }
    true
}

fn is_registry_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => ("", p.strip_prefix(':').unwrap_or("x")),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, port),
            None => (host, "1"),
        }
    };
    let port_ok = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    port_ok && (name.is_empty() && host.starts_with('[') || name.split('.').all(label_ok))
}

/// A manifest digest as registries name them: `sha256:` and 64 hex digits.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
