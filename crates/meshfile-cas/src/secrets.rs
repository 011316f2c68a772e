//! Secrets of a session: generated when the session is written, migrated across updates as
//! the session language says, and rendered in the `$$SCONE::name:format$$` formats.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use meshfile_yaml::Node;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use serde::{Deserialize, Serialize};

use meshfile_session::limits;

use crate::Error;
use crate::session::{get, list, text};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretValue {
    pub kind: String,
    /// ascii: the text; binary: hex; private-key: PKCS#8 PEM; x509, x509-ca: certificate PEM.
    pub value: String,
    /// Certificates: their private key (PKCS#8 PEM), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// Certificates: the issuers' certificates, the direct issuer first, the root last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    #[serde(default)]
    pub size: Option<usize>,
    #[serde(default)]
    pub key_type: Option<String>,
    #[serde(default)]
    pub migrate: bool,
    #[serde(default)]
    pub explicit: bool,
}

/// What a session's secret definition asks for.
struct Definition<'n> {
    name: &'n str,
    kind: &'n str,
    node: &'n Node,
}

fn random_bytes(n: usize) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(buf)
}

/// `size` printable ASCII characters (`!` to `~`: no spaces, no line breaks).
fn random_ascii(size: usize) -> Result<String, Error> {
    // Rejection sampling keeps the 94 characters equally likely.
    let mut out = String::with_capacity(size);
    while out.len() < size {
        for b in random_bytes(size * 2)? {
            if b < 188 && out.len() < size {
                out.push((b'!' + b % 94) as char);
            }
        }
    }
    Ok(out)
}

fn flag(node: &Node, key: &str) -> bool {
    text(node, key).is_some_and(|v| v == "true")
}

fn key_algorithm(key_type: &str) -> Result<KeyPair, Error> {
    let generated = match key_type {
        "P-256" => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        "P-384" => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        "Ed25519" => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        "RSA-2048" => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
        "RSA-3072" => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072),
        other => {
            return Err(Error::Invalid(format!(
                "unknown key_type `{other}` (P-256, P-384, Ed25519, RSA-2048, RSA-3072)"
            )));
        }
    };
    generated.map_err(|e| Error::Internal(format!("key generation failed: {e}")))
}

/// A session may ask for at most this many bytes of secret material to be generated or
/// stored: a small request (20,000 secrets of the largest size fit in a megabyte) must not
/// make the store allocate gigabytes before any quota is looked at.
pub const MAX_SECRET_BYTES: u64 = 16 * 1024 * 1024;

/// A session may ask for at most this many keys to be generated (certificates included), and
/// at most [`MAX_RSA_KEYS`] RSA keys, which take a tenth of a second or more each.
pub const MAX_KEYS: usize = 1024;
pub const MAX_RSA_KEYS: usize = 16;

/// What generating a session's secrets would cost, reckoned from the definitions alone, before
/// anything is generated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Bytes of secret material stored (values, keys and certificates as PEM, estimated
    /// generously for generated keys and certificates).
    pub bytes: u64,
    pub keys: usize,
    pub rsa_keys: usize,
}

/// The cost of a session's secrets; see [`Cost`].
pub fn cost(session: &Node) -> Cost {
    // PEM of an RSA-3072 key in PKCS#8 is about 2.5 KB; a certificate with its key and a
    // short chain stays under 8 KiB.
    const KEY_BYTES: u64 = 4 * 1024;
    const CERTIFICATE_BYTES: u64 = 8 * 1024;
    let mut cost = Cost::default();
    for item in list(get(session, "secrets")) {
        if get(item, "import").is_some() {
            continue;
        }
        let kind = text(item, "kind").unwrap_or_default();
        let explicit = text(item, "value").map_or(0, |v| v.len() as u64);
        let size = text(item, "size")
            .and_then(|s| limits::secret_size(s).ok())
            .map_or(0, |n| n as u64);
        let rsa = text(item, "key_type").is_some_and(|t| t.starts_with("RSA"));
        let bytes = match kind {
            "ascii" => explicit.max(size),
            "binary" => explicit.max(2 * size),
            "private-key" | "x509" | "x509-ca" => {
                cost.keys += 1;
                cost.rsa_keys += usize::from(rsa);
                if kind == "private-key" {
                    KEY_BYTES.max(explicit)
                } else {
                    CERTIFICATE_BYTES.max(explicit)
                }
            }
            _ => explicit,
        };
        cost.bytes = cost.bytes.saturating_add(bytes);
    }
    cost
}

/// Refuses a session whose secrets cost more than one session may ask for.
pub fn check_cost(name: &str, cost: Cost) -> Result<(), Error> {
    let too_much = |what: String| {
        Err(Error::Invalid(format!(
            "session `{name}` asks for {what}; nothing was generated"
        )))
    };
    if cost.bytes > MAX_SECRET_BYTES {
        return too_much(format!(
            "{} bytes of secrets, more than the {} MiB one session may hold",
            cost.bytes,
            MAX_SECRET_BYTES >> 20
        ));
    }
    if cost.keys > MAX_KEYS {
        return too_much(format!(
            "{} generated keys and certificates, more than the {MAX_KEYS} one session may have",
            cost.keys
        ));
    }
    if cost.rsa_keys > MAX_RSA_KEYS {
        return too_much(format!(
            "{} RSA keys, more than the {MAX_RSA_KEYS} one session may have generated",
            cost.rsa_keys
        ));
    }
    Ok(())
}

/// Values for every secret a session defines (imports are resolved when read). `previous`
/// holds the values of the version being replaced; `imported` finds a secret of another
/// session (an imported issuer, say).
pub fn generate(
    session: &Node,
    previous: Option<&BTreeMap<String, SecretValue>>,
    imported: &dyn Fn(&str) -> Option<SecretValue>,
) -> Result<BTreeMap<String, SecretValue>, Error> {
    let mut defs = Vec::new();
    for item in list(get(session, "secrets")) {
        let Some(name) = text(item, "name") else {
            return Err(Error::Invalid("a secret without `name`".into()));
        };
        if get(item, "import").is_some() {
            continue;
        }
        let kind = text(item, "kind")
            .ok_or_else(|| Error::Invalid(format!("secret `{name}` has no `kind`")))?;
        defs.push(Definition {
            name,
            kind,
            node: item,
        });
    }
    let mut out: BTreeMap<String, SecretValue> = BTreeMap::new();
    // Keys, then CAs (in issuer order), then end-entity certificates.
    let rank = |d: &Definition<'_>| match d.kind {
        "x509-ca" => 1,
        "x509" => 2,
        _ => 0,
    };
    defs.sort_by_key(rank);
    let mut pending: Vec<Definition<'_>> = defs;
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for def in pending {
            let issuer_ready = text(def.node, "issuer")
                .is_none_or(|i| out.contains_key(i) || imported(i).is_some() || i == def.name);
            if issuer_ready {
                let value =
                    generate_one(&def, previous.and_then(|p| p.get(def.name)), &out, imported)?;
                out.insert(def.name.to_owned(), value);
            } else {
                rest.push(def);
            }
        }
        if rest.len() == before {
            let names: Vec<&str> = rest.iter().map(|d| d.name).collect();
            return Err(Error::Invalid(format!(
                "certificates {} name issuers that are neither defined nor imported",
                names.join(", ")
            )));
        }
        pending = rest;
    }
    Ok(out)
}

fn generate_one(
    def: &Definition<'_>,
    previous: Option<&SecretValue>,
    done: &BTreeMap<String, SecretValue>,
    imported: &dyn Fn(&str) -> Option<SecretValue>,
) -> Result<SecretValue, Error> {
    let node = def.node;
    let explicit = text(node, "value");
    let size = text(node, "size")
        .map(|s| {
            limits::secret_size(s).map_err(|_| {
                Error::Invalid(format!(
                    "secret `{}`: size `{s}` is not a number from 1 to {}",
                    def.name,
                    limits::MAX_SECRET_SIZE
                ))
            })
        })
        .transpose()?;
    let base = SecretValue {
        kind: def.kind.to_owned(),
        value: String::new(),
        private_key: None,
        chain: Vec::new(),
        size,
        key_type: text(node, "key_type").map(str::to_owned),
        migrate: flag(node, "migrate"),
        explicit: explicit.is_some(),
    };
    // Migration: generated ascii and binary values live on while name, kind and size stay;
    // private keys only when both versions say `migrate: true`; certificates are re-issued.
    if let (Some(prev), None) = (previous, explicit)
        && !prev.explicit
        && prev.kind == def.kind
    {
        let keep = match def.kind {
            "ascii" | "binary" => prev.size == size,
            "private-key" => prev.migrate && base.migrate && prev.key_type == base.key_type,
            _ => false,
        };
        if keep {
            return Ok(SecretValue {
                value: prev.value.clone(),
                ..base
            });
        }
    }
    match def.kind {
        "ascii" => {
            let value = match explicit {
                Some(v) => v.to_owned(),
                None => random_ascii(size.unwrap_or(20))?,
            };
            Ok(SecretValue { value, ..base })
        }
        "binary" => {
            let value = match explicit {
                Some(v) => {
                    let v = v.trim();
                    hex::decode(v).map_err(|_| {
                        Error::Invalid(format!(
                            "secret `{}`: a binary value is hexadecimal",
                            def.name
                        ))
                    })?;
                    v.to_ascii_lowercase()
                }
                None => hex::encode(random_bytes(size.unwrap_or(20))?),
            };
            Ok(SecretValue { value, ..base })
        }
        "private-key" => {
            let value = match explicit {
                Some(v) => {
                    KeyPair::from_pem(v).map_err(|e| {
                        Error::Invalid(format!(
                            "secret `{}`: not a PKCS#8 PEM private key: {e}",
                            def.name
                        ))
                    })?;
                    v.to_owned()
                }
                None => key_algorithm(base.key_type.as_deref().unwrap_or("P-256"))?.serialize_pem(),
            };
            Ok(SecretValue { value, ..base })
        }
        "x509" | "x509-ca" => certificate(def, base, explicit, done, imported),
        other => match explicit {
            Some(v) => Ok(SecretValue {
                value: v.to_owned(),
                ..base
            }),
            None => Err(Error::Invalid(format!(
                "secret `{}`: the development store cannot generate `{other}` secrets; give a `value`",
                def.name
            ))),
        },
    }
}

fn certificate(
    def: &Definition<'_>,
    base: SecretValue,
    explicit: Option<&str>,
    done: &BTreeMap<String, SecretValue>,
    imported: &dyn Fn(&str) -> Option<SecretValue>,
) -> Result<SecretValue, Error> {
    let node = def.node;
    let lookup = |name: &str| done.get(name).cloned().or_else(|| imported(name));
    let private_key = match text(node, "private_key") {
        Some(key) => Some(
            lookup(key)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "certificate `{}`: private_key `{key}` is neither defined nor imported",
                        def.name
                    ))
                })?
                .value,
        ),
        None => None,
    };
    if let Some(pem) = explicit {
        return Ok(SecretValue {
            value: pem.to_owned(),
            private_key,
            ..base
        });
    }
    let key_pem = private_key.clone().ok_or_else(|| {
        Error::Invalid(format!(
            "certificate `{}` needs a `private_key` or a `value`",
            def.name
        ))
    })?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| Error::Invalid(format!("certificate `{}`: {e}", def.name)))?;

    let dns: Vec<String> = list(get(node, "dns"))
        .iter()
        .filter_map(Node::as_scalar)
        .map(str::to_owned)
        .collect();
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| Error::Internal(e.to_string()))?;
    let common_name = text(node, "common_name")
        .map(str::to_owned)
        .or_else(|| dns.first().cloned())
        .unwrap_or_else(|| def.name.to_owned());
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    // `dns` names, and `san` (the 0.3.10 form): `dns:NAME` or `ip:ADDRESS` each.
    let san = list(get(node, "san")).iter().filter_map(Node::as_scalar);
    let entries = dns
        .iter()
        .map(|d| ("dns", d.as_str()))
        .chain(san.map(|s| s.split_once(':').unwrap_or(("", s))));
    for (kind, value) in entries {
        let bad = || {
            Error::Invalid(format!(
                "certificate `{}`: `{value}` is not a {} (san entries are `dns:NAME` or `ip:ADDRESS`)",
                def.name,
                if kind == "ip" {
                    "IP address"
                } else {
                    "DNS name"
                }
            ))
        };
        let name = match kind {
            "dns" => SanType::DnsName(value.to_owned().try_into().map_err(|_| bad())?),
            "ip" => SanType::IpAddress(value.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        params.subject_alt_names.push(name);
    }
    if def.kind == "x509-ca" {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
    }
    match text(node, "endpoint") {
        Some("server") => params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth],
        Some("client") => params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth],
        Some(other) => {
            return Err(Error::Invalid(format!(
                "certificate `{}`: endpoint `{other}` is not `server` or `client`",
                def.name
            )));
        }
        None => {}
    }
    let start = time_now();
    params.not_before = start;
    params.not_after = match text(node, "valid_for") {
        Some(v) => {
            start
                + time::Duration::seconds(limits::valid_for(v).map_err(|_| {
                    Error::Invalid(format!(
                        "certificate `{}`: valid_for `{v}` is not a duration of at most 100 years, such as `90 days`",
                        def.name
                    ))
                })?)
        }
        None => rcgen::date_time_ymd(9999, 12, 31),
    };

    let (cert_pem, chain) = match text(node, "issuer") {
        Some(issuer_name) if issuer_name != def.name => {
            let issuer = lookup(issuer_name).ok_or_else(|| {
                Error::Invalid(format!(
                    "certificate `{}`: issuer `{issuer_name}` is neither defined nor imported",
                    def.name
                ))
            })?;
            if issuer.kind != "x509-ca" {
                return Err(Error::Invalid(format!(
                    "certificate `{}`: issuer `{issuer_name}` is not an x509-ca",
                    def.name
                )));
            }
            let issuer_key_pem = issuer.private_key.clone().ok_or_else(|| {
                Error::Invalid(format!(
                    "certificate `{}`: the private key of issuer `{issuer_name}` is not available",
                    def.name
                ))
            })?;
            let issuer_key =
                KeyPair::from_pem(&issuer_key_pem).map_err(|e| Error::Internal(e.to_string()))?;
            let ca = Issuer::from_ca_cert_pem(&issuer.value, issuer_key)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let cert = params
                .signed_by(&key, &ca)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let mut chain = vec![issuer.value.clone()];
            chain.extend(issuer.chain.iter().cloned());
            (cert.pem(), chain)
        }
        _ => (
            params
                .self_signed(&key)
                .map_err(|e| Error::Internal(e.to_string()))?
                .pem(),
            Vec::new(),
        ),
    };
    Ok(SecretValue {
        value: cert_pem,
        private_key: Some(key_pem),
        chain,
        ..base
    })
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body.trim()).unwrap_or_default()
}

fn base32(bytes: &[u8], pad: bool) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(ALPHABET[((n >> (35 - i * 5)) & 31) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// A secret in one of the session language's formats. Binary results (`:bin`, `:der`) are
/// given base64-encoded, since a preview is text.
pub fn render(
    name: &str,
    secret: &SecretValue,
    format: Option<&str>,
    legacy: Option<&str>,
) -> Result<String, Error> {
    let unknown = |f: &str| {
        Error::Invalid(format!(
            "format `{f}` does not apply to `{name}`, a {} secret",
            secret.kind
        ))
    };
    let format = match legacy {
        Some("crt") => Some("crt"),
        Some("key") => Some("privatekey"),
        Some("hex") => Some("hex"),
        Some("chain") => {
            // The legacy `.chain`: the certificate and its issuers, root first.
            let mut all: Vec<&str> = secret.chain.iter().rev().map(String::as_str).collect();
            all.push(&secret.value);
            return Ok(all.concat());
        }
        _ => format,
    };
    match (secret.kind.as_str(), format) {
        ("ascii", None) => Ok(secret.value.clone()),
        ("binary", None | Some("bin")) => {
            Ok(STANDARD.encode(hex::decode(&secret.value).unwrap_or_default()))
        }
        ("binary", Some("hex")) => Ok(secret.value.clone()),
        ("binary", Some("base64")) => {
            Ok(STANDARD.encode(hex::decode(&secret.value).unwrap_or_default()))
        }
        ("binary", Some("base64url")) => {
            Ok(URL_SAFE_NO_PAD.encode(hex::decode(&secret.value).unwrap_or_default()))
        }
        ("binary", Some("base32")) => Ok(base32(
            &hex::decode(&secret.value).unwrap_or_default(),
            true,
        )),
        ("binary", Some("base32nopad")) => Ok(base32(
            &hex::decode(&secret.value).unwrap_or_default(),
            false,
        )),
        ("private-key", None | Some("pem") | Some("pkcs8:pem")) => Ok(secret.value.clone()),
        ("private-key", Some("der") | Some("pkcs8:der")) => {
            Ok(STANDARD.encode(pem_body(&secret.value)))
        }
        ("x509" | "x509-ca", None | Some("crt") | Some("crt:pem")) => Ok(secret.value.clone()),
        ("x509" | "x509-ca", Some("crt:der")) => Ok(STANDARD.encode(pem_body(&secret.value))),
        (
            "x509" | "x509-ca",
            Some("privatekey") | Some("privatekey:pem") | Some("privatekey:pkcs8:pem"),
        ) => secret
            .private_key
            .clone()
            .ok_or_else(|| Error::Invalid(format!("the private key of `{name}` is not available"))),
        ("x509" | "x509-ca", Some("privatekey:der") | Some("privatekey:pkcs8:der")) => secret
            .private_key
            .as_deref()
            .map(|k| STANDARD.encode(pem_body(k)))
            .ok_or_else(|| Error::Invalid(format!("the private key of `{name}` is not available"))),
        ("x509" | "x509-ca", Some("chain")) => Ok(secret.chain.concat()),
        (_, Some(f)) => Err(unknown(f)),
        (kind, None) => Ok(if kind == "binary" {
            STANDARD.encode(hex::decode(&secret.value).unwrap_or_default())
        } else {
            secret.value.clone()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate_yaml(yaml: &str) -> Result<BTreeMap<String, SecretValue>, Error> {
        let node = meshfile_yaml::parse(yaml, &meshfile_yaml::Limits::default()).expect("yaml");
        generate(&node, None, &|_| None)
    }

    #[test]
    fn sizes_and_durations_beyond_the_bounds_are_refused_not_attempted() {
        for (yaml, field) in [
            (
                "secrets: [{name: s, kind: ascii, size: 100000000000}]",
                "size",
            ),
            (
                "secrets: [{name: s, kind: binary, size: 18446744073709551615}]",
                "size",
            ),
            (
                "secrets: [{name: s, kind: ascii, size: 4294967295}]",
                "size",
            ),
            (
                "secrets: [{name: k, kind: private-key}, {name: c, kind: x509-ca, private_key: k, valid_for: 99999999999 years}]",
                "valid_for",
            ),
        ] {
            let err = generate_yaml(yaml).expect_err(yaml);
            assert!(matches!(err, Error::Invalid(_)), "{yaml}: {err:?}");
            assert!(err.to_string().contains(field), "{yaml}: {err}");
        }
        let ok = generate_yaml("secrets: [{name: s, kind: ascii, size: 65536}]").expect("bound");
        assert_eq!(ok["s"].value.len(), 65_536);
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar", true), "MZXW6YTBOI======");
        assert_eq!(base32(b"foobar", false), "MZXW6YTBOI");
    }

    #[test]
    fn ascii_is_printable_and_sized() {
        let s = random_ascii(64).expect("random");
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|b| (b'!'..=b'~').contains(&b)));
    }
}
