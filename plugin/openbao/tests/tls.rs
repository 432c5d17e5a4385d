#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! AutoMTLS as go-plugin does it: each side trusts exactly the other's self-signed certificate,
//! the host's being ECDSA P-521; ALPN h2 both ways.

use std::sync::Arc;

use base64::Engine as _;
use gateward_openbao::tls::{Identity, SERVER_NAME};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// A TLS session between a server and a client config over an in-memory pipe; the ALPN
/// protocol both agreed on, or the first error.
async fn handshake(
    server: rustls::ServerConfig,
    client: rustls::ClientConfig,
) -> Result<Option<Vec<u8>>, String> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let server = tokio::spawn(async move {
        let mut s = acceptor.accept(a).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        s.write_all(&buf).await.map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    });
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let client = async {
        let mut c = connector
            .connect(name, b)
            .await
            .map_err(|e| e.to_string())?;
        c.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"ping");
        Ok::<_, String>(c.get_ref().1.alpn_protocol().map(<[u8]>::to_vec))
    };
    let alpn = client.await;
    let served = server.await.unwrap();
    served?;
    alpn
}

#[tokio::test]
async fn the_plugin_and_a_p521_host_trust_exactly_each_other() {
    let host = Identity::own(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    // The plugin reads the host's certificate from PLUGIN_CLIENT_CERT (PEM).
    let plugin = Identity::generate(&pem(&host.cert)).unwrap();
    let host = host.trusting(plugin.cert.clone());

    // The host dials the plugin's server.
    let alpn = handshake(
        plugin.server_config().unwrap(),
        host.client_config().unwrap(),
    )
    .await;
    assert_eq!(alpn, Ok(Some(b"h2".to_vec())));
    // The plugin dials the host's broker listener.
    let alpn = handshake(
        host.server_config().unwrap(),
        plugin.client_config().unwrap(),
    )
    .await;
    assert_eq!(alpn, Ok(Some(b"h2".to_vec())));

    // Another certificate, even one of the same shape, is refused both ways.
    let stranger = Identity::own(&rcgen::PKCS_ECDSA_P521_SHA512)
        .unwrap()
        .trusting(plugin.cert.clone());
    let refused = handshake(
        plugin.server_config().unwrap(),
        stranger.client_config().unwrap(),
    )
    .await;
    assert!(
        refused.is_err(),
        "a stranger's client certificate: {refused:?}"
    );
    let impostor = Identity::own(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .trusting(plugin.cert.clone());
    let refused = handshake(
        impostor.server_config().unwrap(),
        plugin.client_config().unwrap(),
    )
    .await;
    assert!(
        refused.is_err(),
        "a stranger's server certificate: {refused:?}"
    );
}

#[test]
fn a_missing_host_certificate_is_an_error_and_ours_is_unpadded_base64() {
    assert!(Identity::generate("not a certificate").is_err());
    let host = Identity::own(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let plugin = Identity::generate(&pem(&host.cert)).unwrap();
    let b64 = plugin.cert_base64();
    assert!(!b64.ends_with('='));
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&b64)
        .unwrap();
    assert_eq!(der, plugin.cert.as_ref());
}
