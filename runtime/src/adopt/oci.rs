//! Wasm components in OCI registries, in the layout of the Wasm OCI artifact
//! spec that `wkg`, Wassette and the `oci-wasm` crate use: an OCI image
//! manifest with one `application/wasm` layer (the component) and a config
//! blob of type `application/vnd.wasm.config.v0+json`.
//!
//! Design decisions:
//! - **`oci-client`, not `oci-wasm`.** `oci-wasm` 0.6 (the newest) is built
//!   on `oci-client` 0.17, whose only TLS choices are aws-lc (a C library
//!   build) or OpenSSL, and it pulls a second copy of the wasm-tools crates
//!   just to list the component's imports and exports. The layout is small
//!   and mirrored here field by field ([`WasmConfig`]); `ward`'s own
//!   component reader fills the imports and exports.
//! - **HTTPS, except on loopback.** Plain HTTP is used for a registry on
//!   127.0.0.0/8, `::1` or `localhost`, and elsewhere only with
//!   `--plain-http`. TLS is the system's OpenSSL (native-tls) and its root
//!   certificates.
//! - **Bounded and verified.** The component layer is refused above
//!   [`MAX_COMPONENT_BYTES`] before it is downloaded and while it streams;
//!   every blob is checked against its digest (by `oci-client`), the manifest
//!   against the digest it was asked for, and the manifest's digest is
//!   computed here from its bytes, never taken from a header.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use anyhow::{bail, Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Media type of the component layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Media type of the config blob.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The largest component ward pulls: a componentize-py plugin is ~18 MB.
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;
/// The largest config or signature blob ward pulls.
pub const MAX_SMALL_BLOB_BYTES: u64 = 1 << 20;
/// Environment variables for HTTP Basic authentication to a registry.
pub const USER_ENV: &str = "WARD_REGISTRY_USER";
/// See [`USER_ENV`].
pub const PASSWORD_ENV: &str = "WARD_REGISTRY_PASSWORD";

/// The config blob of the Wasm OCI artifact layout (`oci-wasm`'s
/// `WasmConfig`, camelCase JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// RFC 3339 time of publication.
    pub created: String,
    /// Who published it.
    pub author: Option<String>,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip2` for a component.
    pub os: String,
    /// The digests of the manifest's layers, in order.
    pub layer_digests: Vec<String>,
    /// The component's imports and exports.
    pub component: Option<ComponentInfo>,
}

/// The `component` field of [`WasmConfig`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ComponentInfo {
    /// Exported names.
    pub exports: Vec<String>,
    /// Imported names.
    pub imports: Vec<String>,
    /// The WIT world it targets, if known.
    pub target: Option<String>,
}

/// A component fetched from a registry.
#[derive(Debug)]
pub struct Pulled {
    /// The manifest's digest (`sha256:…`), computed from its bytes.
    pub digest: String,
    /// The component.
    pub wasm: Vec<u8>,
}

/// A connection to one registry.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
}

/// Parses an OCI reference (`host:port/repo:tag`, `…@sha256:…`).
pub fn parse_reference(text: &str) -> Result<Reference> {
    text.parse::<Reference>().map_err(|e| {
        anyhow::anyhow!(
            "{text:?} is not an OCI reference such as 127.0.0.1:5000/team/hello:1.0 ({e})"
        )
    })
}

/// Whether `registry` (`host`, `host:port`, `[v6]:port`) is this machine.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => registry,
        },
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `sha256:` and the hex sha256 of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Registry {
    /// A client for the registry of `reference`. Plain HTTP for loopback, or
    /// for any registry when `plain_http`; HTTPS otherwise.
    pub fn new(reference: &Reference, plain_http: bool) -> Result<Self> {
        let registry = reference.resolve_registry().to_string();
        let protocol = if plain_http {
            ClientProtocol::Http
        } else if is_loopback(&registry) {
            ClientProtocol::HttpsExcept(vec![registry])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: concat!("ward/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = Client::try_from(config).context("setting up the registry client")?;
        let auth = match (std::env::var(USER_ENV), std::env::var(PASSWORD_ENV)) {
            (Ok(user), Ok(password)) if !user.is_empty() => RegistryAuth::Basic(user, password),
            _ => RegistryAuth::Anonymous,
        };
        Ok(Self { client, auth })
    }

    /// Pushes `wasm` as a Wasm OCI artifact to `reference`; returns the
    /// manifest's digest.
    pub async fn push_component(
        &self,
        reference: &Reference,
        wasm: Vec<u8>,
        component: ComponentInfo,
        author: Option<String>,
        annotations: BTreeMap<String, String>,
    ) -> Result<String> {
        let layer_digest = sha256_digest(&wasm);
        let config = WasmConfig {
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            author,
            architecture: "wasm".into(),
            os: "wasip2".into(),
            layer_digests: vec![layer_digest.clone()],
            component: Some(component),
        };
        let config = serde_json::to_vec(&config)?;
        let layer = OciDescriptor {
            media_type: WASM_LAYER_MEDIA_TYPE.into(),
            digest: layer_digest,
            size: wasm.len() as i64,
            ..Default::default()
        };
        self.push_blob(reference, wasm, &layer.digest).await?;
        let manifest = self
            .push_manifest(
                reference,
                WASM_CONFIG_MEDIA_TYPE,
                config,
                vec![layer],
                annotations,
            )
            .await?;
        Ok(manifest)
    }

    /// Pushes an OCI image manifest with `config` (pushed here) and `layers`
    /// (already pushed); returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        config_media_type: &str,
        config: Vec<u8>,
        layers: Vec<OciDescriptor>,
        annotations: BTreeMap<String, String>,
    ) -> Result<String> {
        let config_descriptor = OciDescriptor {
            media_type: config_media_type.into(),
            digest: sha256_digest(&config),
            size: config.len() as i64,
            ..Default::default()
        };
        self.push_blob(reference, config, &config_descriptor.digest)
            .await?;
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
            config: config_descriptor,
            layers,
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        };
        let body = serde_json::to_vec(&manifest)?;
        let digest = sha256_digest(&body);
        self.client
            .push_manifest_raw(
                reference,
                body,
                http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
            )
            .await
            .with_context(|| format!("pushing the manifest to {reference}"))?;
        Ok(digest)
    }

    /// Uploads a blob unless the registry has it.
    pub async fn push_blob(
        &self,
        reference: &Reference,
        data: Vec<u8>,
        digest: &str,
    ) -> Result<()> {
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &self.auth)
            .await;
        if self
            .client
            .blob_exists(reference, digest)
            .await
            .unwrap_or(false)
        {
            return Ok(());
        }
        self.client
            .push_blob(reference, data, digest)
            .await
            .with_context(|| format!("uploading {digest} to {reference}"))?;
        Ok(())
    }

    /// The image manifest at `reference` and its digest (computed from its
    /// bytes, and checked against the reference's digest if it has one).
    /// `Ok(None)` when the registry has no such manifest.
    pub async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<Option<(OciImageManifest, String)>> {
        let accepted = [
            OCI_IMAGE_MEDIA_TYPE,
            oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
        ];
        let (body, _) = match self
            .client
            .pull_manifest_raw(reference, &self.auth, &accepted)
            .await
        {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("fetching the manifest of {reference}"))
                )
            }
        };
        let digest = sha256_digest(&body);
        if let Some(wanted) = reference.digest() {
            if wanted != digest {
                bail!("the registry sent a manifest with digest {digest} for {reference}");
            }
        }
        let manifest: OciImageManifest = serde_json::from_slice(&body)
            .with_context(|| format!("{reference} is not an OCI image manifest"))?;
        Ok(Some((manifest, digest)))
    }

    /// Pulls the component at `reference`.
    pub async fn pull_component(&self, reference: &Reference) -> Result<Pulled> {
        let (manifest, digest) = self.manifest(reference).await?.with_context(|| {
            format!("{reference} was not found in the registry (check the repository and tag)")
        })?;
        let wasm_layers: Vec<&OciDescriptor> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)
            .collect();
        let [layer] = wasm_layers.as_slice() else {
            bail!(
                "{reference} is not a Wasm component artifact: expected exactly one `{WASM_LAYER_MEDIA_TYPE}` layer, found {}",
                wasm_layers.len()
            );
        };
        let wasm = self
            .pull_blob(reference, layer, MAX_COMPONENT_BYTES)
            .await
            .context("downloading the component")?;
        Ok(Pulled { digest, wasm })
    }

    /// Downloads a blob of at most `max` bytes, verified against its digest.
    pub async fn pull_blob(
        &self,
        reference: &Reference,
        descriptor: &OciDescriptor,
        max: u64,
    ) -> Result<Vec<u8>> {
        if descriptor.size < 0 || descriptor.size as u64 > max {
            bail!(
                "the blob {} is {} bytes, above the limit of {max}",
                descriptor.digest,
                descriptor.size
            );
        }
        let mut out = Bounded {
            data: Vec::with_capacity(descriptor.size as usize),
            max: descriptor.size as usize,
        };
        self.client
            .pull_blob(reference, descriptor, &mut out)
            .await
            .with_context(|| format!("downloading {}", descriptor.digest))?;
        Ok(out.data)
    }

    /// The tags of `reference`'s repository.
    pub async fn tags(&self, reference: &Reference) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut last: Option<String> = None;
        // Pages of 1000; 20 pages is more tags than any plugin has.
        for _ in 0..20 {
            let page = self
                .client
                .list_tags(reference, &self.auth, Some(1000), last.as_deref())
                .await
                .with_context(|| format!("listing the tags of {}", reference.repository()))?;
            let done = page.tags.len() < 1000;
            last = page.tags.last().cloned();
            tags.extend(page.tags);
            if done || last.is_none() {
                break;
            }
        }
        Ok(tags)
    }
}

fn is_not_found(e: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::OciDistributionError as E;
    match e {
        E::ImageManifestNotFoundError(_) => true,
        E::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, oci_client::errors::OciErrorCode::ManifestUnknown)),
        E::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// An in-memory sink that refuses more than `max` bytes, so a registry that
/// sends more than the manifest announced cannot exhaust memory.
struct Bounded {
    data: Vec<u8>,
    max: usize,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.data.len() + buf.len() > self.max {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the registry sent more than the {} bytes the manifest announced",
                self.max
            ))));
        }
        self.data.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries() {
        for r in [
            "127.0.0.1:5000",
            "localhost",
            "LOCALHOST:80",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "registry.example:5000",
            "10.0.0.1:5000",
            "[2001:db8::1]:443",
            "docker.io",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
