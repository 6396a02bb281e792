//! cosign-compatible signatures of OCI artifacts, with keys the operator
//! trusts.
//!
//! The format is cosign's "simple signing" (what `cosign sign --key` writes
//! and `cosign verify --key` reads): for an artifact whose manifest digest is
//! `sha256:H`, the repository holds a tag `sha256-H.sig` whose manifest has
//! one layer per signature, of type
//! `application/vnd.dev.cosign.simplesigning.v1+json`. The layer is a JSON
//! payload naming the digest, and its annotation
//! `dev.cosignproject.cosign/signature` is the base64 of an ASN.1 DER ECDSA
//! P-256 / SHA-256 signature over the payload's exact bytes.
//!
//! Design decisions:
//! - **RustCrypto's `p256`, not the `sigstore` crate.** `sigstore` 0.15
//!   refuses to compile without OpenSSL (`native-tls`) or aws-lc
//!   (`rustls-tls`) as its crypto backend, and its `cosign` feature pulls
//!   Fulcio, Rekor and OAuth (openidconnect, a web browser launcher): network
//!   machinery for keyless signing that key-based verification does not use.
//!   Its own P-256 code is RustCrypto's `p256`/`ecdsa`, used here directly;
//!   no cryptography is written here, only the envelope.
//! - **A signature counts only for the digest it names.** The payload's
//!   `docker-manifest-digest` must equal the manifest ward pulled, so a valid
//!   signature of another artifact (or of an older version) copied under the
//!   `.sig` tag does not verify this one.
//! - **Keyless (Fulcio certificate + Rekor) is not supported yet.** It needs
//!   the internet at verification time. [`Verifier`] is the seam: a keyless
//!   verifier would check the certificate chain and identity where
//!   [`TrustedKey`] checks a key. Layers carrying a certificate are reported
//!   as such rather than silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use oci_client::manifest::{OciDescriptor, IMAGE_CONFIG_MEDIA_TYPE};
use oci_client::Reference;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::oci::{hex, sha256_digest, Registry, MAX_SMALL_BLOB_BYTES};

/// Media type of a simple-signing signature layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Annotation of a keyless signature's certificate.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The payload's `critical.type`.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Signature layers examined per artifact; more are ignored.
pub const MAX_SIGNATURES: usize = 64;

/// The simple-signing payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// What is signed.
    pub critical: Critical,
    /// Optional claims (unused by ward).
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The signed claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Critical {
    /// The repository.
    pub identity: Identity,
    /// The manifest digest.
    pub image: Image,
    /// Always [`SIGNATURE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// `registry/repository`, without tag or digest.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:…` of the signed manifest.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// Something that can vouch for a signature layer: today a public key;
/// keyless (certificate) verification would be another implementation.
pub trait Verifier {
    /// Whether `signature` (DER) over `payload` is valid for this verifier,
    /// given the layer's annotations.
    fn verifies(
        &self,
        payload: &[u8],
        signature: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> bool;
    /// How it is named in messages and in `[source] signed-by`.
    fn id(&self) -> &str;
}

/// A public key the operator trusts.
#[derive(Clone)]
pub struct TrustedKey {
    key: VerifyingKey,
    fingerprint: String,
    /// Where it was read from.
    pub path: PathBuf,
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.fingerprint, self.path.display())
    }
}

impl TrustedKey {
    /// Reads an EC P-256 public key in SubjectPublicKeyInfo PEM (`openssl ec
    /// -pubout`, `cosign.pub`).
    pub fn read(path: &Path) -> Result<Self> {
        let pem = read_small(path)?;
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
            anyhow::anyhow!(
                "{}: not an EC P-256 public key in PEM (\"BEGIN PUBLIC KEY\", as `openssl ec -pubout` writes it): {e}",
                path.display()
            )
        })?;
        Ok(Self::new(key, path))
    }

    fn new(key: VerifyingKey, path: &Path) -> Self {
        Self {
            fingerprint: fingerprint(&key),
            key,
            path: path.to_path_buf(),
        }
    }

    /// `sha256:` and the hex sha256 of the key's DER SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl Verifier for TrustedKey {
    fn verifies(&self, payload: &[u8], signature: &[u8], _: &BTreeMap<String, String>) -> bool {
        Signature::from_der(signature).is_ok_and(|sig| self.key.verify(payload, &sig).is_ok())
    }

    fn id(&self) -> &str {
        &self.fingerprint
    }
}

fn fingerprint(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    format!("sha256:{}", hex(&Sha256::digest(der)))
}

/// A private key to sign with.
pub struct SignKey {
    key: SigningKey,
}

impl SignKey {
    /// Reads an unencrypted PKCS#8 EC P-256 private key in PEM (`openssl
    /// pkcs8 -topk8 -nocrypt`).
    pub fn read(path: &Path) -> Result<Self> {
        let pem = read_small(path)?;
        if pem.contains("ENCRYPTED PRIVATE KEY") {
            bail!(
                "{}: an encrypted private key; ward reads unencrypted PKCS#8 (`openssl pkcs8 -topk8 -nocrypt -in KEY`)",
                path.display()
            );
        }
        let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
            anyhow::anyhow!(
                "{}: not an EC P-256 private key in PKCS#8 PEM (\"BEGIN PRIVATE KEY\"; convert with `openssl pkcs8 -topk8 -nocrypt -in KEY`): {e}",
                path.display()
            )
        })?;
        Ok(Self { key })
    }

    /// The fingerprint of its public key.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.key.verifying_key())
    }
}

/// A verified signature.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The verifier's id (a key fingerprint).
    pub signed_by: String,
}

/// The reference of the signature tag of `digest` in `reference`'s repository.
pub fn signature_reference(reference: &Reference, digest: &str) -> Reference {
    Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        format!("{}.sig", digest.replace(':', "-")),
    )
}

/// Verifies that the artifact with manifest `digest` at `reference` carries a
/// valid signature by one of `verifiers`. The error says what was found:
/// no signature, signatures by other keys, or signatures of another digest.
pub async fn verify(
    registry: &Registry,
    reference: &Reference,
    digest: &str,
    verifiers: &[&dyn Verifier],
) -> Result<Verified> {
    let sig_ref = signature_reference(reference, digest);
    let Some((manifest, _)) = registry.manifest(&sig_ref).await? else {
        bail!("{reference} ({digest}) is not signed: the registry has no {sig_ref}");
    };
    let mut seen = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
        .take(MAX_SIGNATURES)
    {
        let annotations = layer.annotations.clone().unwrap_or_default();
        let Some(signature) = annotations.get(SIGNATURE_ANNOTATION).and_then(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .ok()
        }) else {
            seen.push("a layer without a readable signature annotation".to_string());
            continue;
        };
        let keyless = annotations.contains_key(CERTIFICATE_ANNOTATION);
        let payload = match registry
            .pull_blob(&sig_ref, layer, MAX_SMALL_BLOB_BYTES)
            .await
        {
            Ok(payload) => payload,
            Err(e) => {
                seen.push(format!("an unreadable signature payload ({e:#})"));
                continue;
            }
        };
        let Some(verifier) = verifiers
            .iter()
            .find(|v| v.verifies(&payload, &signature, &annotations))
        else {
            seen.push(if keyless {
                "a keyless (certificate) signature, which ward does not verify yet".to_string()
            } else {
                "a signature by a key not trusted here".to_string()
            });
            continue;
        };
        match serde_json::from_slice::<Payload>(&payload) {
            Ok(p)
                if p.critical.image.docker_manifest_digest == digest
                    && p.critical.kind == SIGNATURE_TYPE =>
            {
                return Ok(Verified {
                    signed_by: verifier.id().to_string(),
                })
            }
            Ok(p) => seen.push(format!(
                "a signature by {} of another artifact ({})",
                verifier.id(),
                p.critical.image.docker_manifest_digest
            )),
            Err(_) => seen.push(format!(
                "a signature by {} over a payload that is not a cosign simple-signing payload",
                verifier.id()
            )),
        }
    }
    if seen.is_empty() {
        bail!("{reference} ({digest}) is not signed: {sig_ref} holds no signature");
    }
    let keys: Vec<&str> = verifiers.iter().map(|v| v.id()).collect();
    bail!(
        "{reference} ({digest}) has no valid signature by a trusted key ({}); found: {}",
        keys.join(", "),
        seen.join("; ")
    )
}

/// Signs the artifact with manifest `digest` at `reference` with `key`,
/// adding the signature to those already under its `.sig` tag (as cosign
/// does). Returns the signature tag's reference.
pub async fn sign(
    registry: &Registry,
    reference: &Reference,
    digest: &str,
    key: &SignKey,
) -> Result<Reference> {
    let payload = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: format!("{}/{}", reference.registry(), reference.repository()),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: SIGNATURE_TYPE.to_string(),
        },
        optional: None,
    };
    let payload = serde_json::to_vec(&payload)?;
    let signature: DerSignature = {
        let sig: Signature = key.key.sign(&payload);
        sig.to_der()
    };
    let sig_ref = signature_reference(reference, digest);
    let mut layers: Vec<OciDescriptor> = match registry.manifest(&sig_ref).await? {
        Some((manifest, _)) => manifest.layers,
        None => Vec::new(),
    };
    let layer = OciDescriptor {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
        digest: sha256_digest(&payload),
        size: payload.len() as i64,
        annotations: Some(BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_string(),
            base64::engine::general_purpose::STANDARD.encode(signature.as_bytes()),
        )])),
        ..Default::default()
    };
    if layers
        .iter()
        .any(|l| l.digest == layer.digest && l.annotations == layer.annotations)
    {
        return Ok(sig_ref);
    }
    registry.push_blob(&sig_ref, payload, &layer.digest).await?;
    layers.push(layer);
    registry
        .push_manifest(
            &sig_ref,
            IMAGE_CONFIG_MEDIA_TYPE,
            b"{}".to_vec(),
            layers,
            BTreeMap::new(),
        )
        .await
        .context("pushing the signature")?;
    Ok(sig_ref)
}

/// Reads a key file, refusing anything that is not a small regular file.
fn read_small(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() || meta.len() > 64 << 10 {
        bail!(
            "{}: not a key file (expected a small PEM file)",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with `openssl ecparam -name prime256v1 -genkey | openssl pkcs8 -topk8 -nocrypt`.
    const PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8IWztFl+68/K9kGd
S60HEdQd9htV+a2O79l+CflFLyShRANCAASVDiHVxjeYix3JALK0ic97lYzkVkiU
81k/iykjrnNFF+1g37cDss7i3T5v0hGcKzydS+qbPpUFLvwVJ5JWyrYr
-----END PRIVATE KEY-----
";

    #[test]
    fn signs_and_verifies_der_over_the_payload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, PRIVATE).unwrap();
        let sign = SignKey::read(&path).unwrap();
        let trusted = TrustedKey::new(*sign.key.verifying_key(), &path);
        let sig: Signature = sign.key.sign(b"payload");
        let der = sig.to_der();
        assert!(trusted.verifies(b"payload", der.as_bytes(), &BTreeMap::new()));
        assert!(!trusted.verifies(b"payloaD", der.as_bytes(), &BTreeMap::new()));
        assert_eq!(trusted.fingerprint(), sign.fingerprint());
    }

    #[test]
    fn signature_tag_is_cosign_style() {
        let r: Reference = "127.0.0.1:5000/team/hello:1.0".parse().unwrap();
        let s = signature_reference(&r, "sha256:abc");
        assert_eq!(s.whole(), "127.0.0.1:5000/team/hello:sha256-abc.sig");
    }
}
