//! Keys and certificates of the local control plane, generated in memory with rcgen (no openssl).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::DevClusterError;

/// OID of the X.509 `organizationName` attribute (2.5.4.10). Kubernetes maps every O of a client
/// certificate to a group.
const OID_ORGANIZATION: [u64; 4] = [2, 5, 4, 10];

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub(crate) struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The cluster CA: signs the serving certificate and every client certificate.
pub(crate) struct ClusterCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

impl ClusterCa {
    pub fn generate() -> Result<Self, DevClusterError> {
        let key = KeyPair::generate().map_err(|e| DevClusterError::cert("the CA key", e))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "patchwave-devcluster-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, key)
            .map_err(|e| DevClusterError::cert("the CA certificate", e))?;
        Ok(Self { issuer })
    }

    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A TLS serving certificate for the given IP addresses and DNS names.
    pub fn serving_cert(&self, names: &[&str]) -> Result<CertAndKey, DevClusterError> {
        let key = KeyPair::generate().map_err(|e| DevClusterError::cert("the serving key", e))?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)
            .map_err(|e| DevClusterError::cert("the serving certificate names", e))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| DevClusterError::cert("the serving certificate", e))?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate: Kubernetes authenticates it as user `CN` in groups `O`.
    ///
    /// rcgen keeps one value per attribute type, so a certificate carries at most two
    /// organizations (one as `O`, one as a custom attribute with the same OID).
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<CertAndKey, DevClusterError> {
        if user.is_empty() {
            return Err(DevClusterError::Invalid(
                "a client certificate needs a non-empty user name".into(),
            ));
        }
        if groups.len() > 2 {
            return Err(DevClusterError::Invalid(format!(
                "a client certificate can carry at most 2 groups, got {groups:?}; bind the \
                 user itself, or use client_as() (impersonation) for more groups"
            )));
        }
        let what = format!("the client certificate of {user}");
        let key = KeyPair::generate().map_err(|e| DevClusterError::cert(&what, e))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, user);
        if let Some(first) = groups.first() {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *first);
        }
        if let Some(second) = groups.get(1) {
            params.distinguished_name.push(
                DnType::CustomDnType(OID_ORGANIZATION.to_vec()),
                rcgen::DnValue::Utf8String((*second).to_owned()),
            );
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| DevClusterError::cert(&what, e))?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The service-account token signing key pair (ECDSA P-256): (private PEM, public PEM).
pub(crate) fn service_account_key() -> Result<(String, String), DevClusterError> {
    let key = KeyPair::generate()
        .map_err(|e| DevClusterError::cert("the service-account signing key", e))?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

/// Standard base64 with padding, as kubeconfig `*-data` fields expect.
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = ((n >> (18 - 6 * i)) & 0x3f) as usize;
                out.push(char::from(ALPHABET[index]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn certificates_are_generated() {
        let ca = ClusterCa::generate().unwrap();
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let serving = ca.serving_cert(&["127.0.0.1", "localhost"]).unwrap();
        assert!(serving.key_pem.contains("PRIVATE KEY"));
        ca.client_cert("alice", &["team-a", "team-b"]).unwrap();
        assert!(ca.client_cert("alice", &["a", "b", "c"]).is_err());
        assert!(ca.client_cert("", &[]).is_err());
    }
}
