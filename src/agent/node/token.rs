//! Renewing the agent's own ServiceAccount token before it expires.
//!
//! `kubectl patchwave enroll` prints a kubeconfig with a bound token that expires (a year by
//! default). The agent keeps its current token in its state directory (`token`, mode 0600)
//! and points its client at that file (kube's client re-reads it every minute). A third of the
//! token's lifetime before it expires (or `--token-renew-before`), it asks the TokenRequest API
//! for a new one with the same lifetime (its Role allows exactly that, for its own
//! ServiceAccount) and replaces the file. A revoked identity cannot renew: deleting the
//! ServiceAccount invalidates every token it ever had.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::agent::enrollment::{token_request, write_secret_file};

/// The file in the state directory that holds the current token.
pub const TOKEN_FILE: &str = "token";
/// How long to wait before asking again after a failed renewal, and the shortest time between
/// two renewals (a `--token-renew-before` as long as the lifetime would otherwise renew
/// without pause).
const RETRY: Duration = Duration::from_secs(60);

/// Why a token cannot be renewed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT with the claims of a ServiceAccount token.
    #[error("the kubeconfig's token is not a ServiceAccount token: {0}")]
    NotServiceAccountToken(String),
    /// The token file could not be read or written.
    #[error("token file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// What renewal needs from a ServiceAccount token (its JWT claims; the signature is the API
/// server's business).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundToken {
    /// Namespace of the ServiceAccount.
    pub namespace: String,
    /// Name of the ServiceAccount.
    pub service_account: String,
    /// `iat`.
    pub issued_at: Timestamp,
    /// `exp`.
    pub expires_at: Timestamp,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
}

impl BoundToken {
    /// Reads the claims of `token`.
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        let bad = |reason: &str| TokenError::NotServiceAccountToken(reason.to_owned());
        let payload = token
            .trim()
            .split('.')
            .nth(1)
            .ok_or_else(|| bad("not a JWT (no payload part)"))?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|e| bad(&format!("payload is not base64url: {e}")))?;
        let claims: Claims = serde_json::from_slice(&json)
            .map_err(|e| bad(&format!("payload lacks sub, iat or exp: {e}")))?;
        let subject = claims
            .sub
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'))
            .ok_or_else(|| bad(&format!("subject {:?} is not a ServiceAccount", claims.sub)))?;
        let time = |seconds: i64| {
            Timestamp::from_second(seconds).map_err(|e| bad(&format!("bad time {seconds}: {e}")))
        };
        Ok(BoundToken {
            namespace: subject.0.to_owned(),
            service_account: subject.1.to_owned(),
            issued_at: time(claims.iat)?,
            expires_at: time(claims.exp)?,
        })
    }

    /// How long the token was issued for.
    pub fn lifetime(&self) -> SignedDuration {
        self.expires_at.duration_since(self.issued_at)
    }

    /// When to ask for the next token: `renew_before` its expiry, by default a third of its
    /// lifetime before (four months early for a one-year token; room for a long outage).
    pub fn renew_at(&self, renew_before: Option<SignedDuration>) -> Timestamp {
        let before = renew_before.unwrap_or(self.lifetime() / 3);
        self.expires_at
            .checked_sub(before)
            .unwrap_or(self.issued_at)
            .max(self.issued_at)
    }
}

/// Makes `token` (the kubeconfig's) the agent's renewable token in `state_dir`, unless the file
/// there already holds a token of the same ServiceAccount that lasts longer (one renewed
/// earlier). Returns the file and the token now in it.
pub fn adopt(token: &str, state_dir: &Path) -> Result<(PathBuf, BoundToken), TokenError> {
    let given = BoundToken::parse(token)?;
    let path = state_dir.join(TOKEN_FILE);
    let kept = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| BoundToken::parse(&text).ok())
        .filter(|kept| {
            kept.namespace == given.namespace
                && kept.service_account == given.service_account
                && kept.expires_at > given.expires_at
        });
    match kept {
        Some(kept) => Ok((path, kept)),
        None => {
            write_private(&path, token.trim())?;
            Ok((path, given))
        }
    }
}

/// Rewrites a kubeconfig (`kubectl patchwave enroll`'s) so its current user reads the token
/// from the state directory's file ([`adopt`]) instead of carrying it inline. `None` when the
/// current user has no inline token (client certificates, exec plugins, a token file already):
/// then nothing is renewed.
pub fn with_token_file(
    kubeconfig: &str,
    state_dir: &Path,
) -> Result<Option<(String, PathBuf, BoundToken)>, TokenError> {
    use serde_yaml::Value;
    let bad = |reason: String| TokenError::NotServiceAccountToken(reason);
    let mut doc: Value =
        serde_yaml::from_str(kubeconfig).map_err(|e| bad(format!("unreadable kubeconfig: {e}")))?;
    let named = |list: &Value, name: &str| -> Option<usize> {
        list.as_sequence()?
            .iter()
            .position(|entry| entry.get("name").and_then(Value::as_str) == Some(name))
    };
    let Some(context) = doc.get("current-context").and_then(Value::as_str) else {
        return Ok(None);
    };
    let Some(user) = doc
        .get("contexts")
        .and_then(|contexts| Some(&contexts.as_sequence()?[named(contexts, context)?]))
        .and_then(|entry| entry.get("context")?.get("user")?.as_str())
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    let Some(index) = doc.get("users").and_then(|users| named(users, &user)) else {
        return Ok(None);
    };
    let Some(entry) = doc
        .get_mut("users")
        .and_then(Value::as_sequence_mut)
        .and_then(|users| users.get_mut(index))
        .and_then(|entry| entry.get_mut("user"))
        .and_then(Value::as_mapping_mut)
    else {
        return Ok(None);
    };
    let Some(token) = entry
        .get("token")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    std::fs::create_dir_all(state_dir).map_err(|source| TokenError::File {
        path: state_dir.to_owned(),
        source,
    })?;
    let (path, current) = adopt(&token, state_dir)?;
    // Absolute: the client resolves it later, and a relative --state-dir means the
    // working directory of now.
    let path = std::path::absolute(&path).map_err(|source| TokenError::File {
        path: path.clone(),
        source,
    })?;
    entry.remove("token");
    entry.insert(
        Value::from("tokenFile"),
        Value::from(path.display().to_string()),
    );
    let rewritten =
        serde_yaml::to_string(&doc).map_err(|e| bad(format!("cannot write kubeconfig: {e}")))?;
    Ok(Some((rewritten, path, current)))
}

/// Renews the token in `path` for as long as the agent runs (`client` reads that file).
pub async fn keep_renewed(
    client: Client,
    path: PathBuf,
    mut current: BoundToken,
    renew_before: Option<SignedDuration>,
) {
    let api: Api<ServiceAccount> = Api::namespaced(client, &current.namespace);
    let mut last_renewal: Option<tokio::time::Instant> = None;
    loop {
        let at = current.renew_at(renew_before);
        let wait = Timestamp::now().duration_until(at);
        tracing::info!(
            expires = %current.expires_at,
            renew_at = %at,
            "token renewal scheduled"
        );
        if let Ok(wait) = Duration::try_from(wait) {
            tokio::time::sleep(wait).await;
        }
        if let Some(last) = last_renewal {
            tokio::time::sleep_until(last + RETRY).await;
        }
        let lifetime = current.lifetime().as_secs();
        let renewed = api
            .create_subresource(
                "token",
                &current.service_account,
                &PostParams::default(),
                &token_request(lifetime),
            )
            .await
            .map_err(|e| e.to_string())
            .and_then(
                |issued: k8s_openapi::api::authentication::v1::TokenRequest| {
                    issued
                        .status
                        .and_then(|s| s.token)
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| "the API server returned no token".to_owned())
                },
            )
            .and_then(|token| {
                let parsed = BoundToken::parse(&token).map_err(|e| e.to_string())?;
                write_private(&path, &token).map_err(|e| e.to_string())?;
                Ok(parsed)
            });
        match renewed {
            Ok(token) => {
                tracing::info!(expires = %token.expires_at, file = %path.display(), "token renewed");
                current = token;
                last_renewal = Some(tokio::time::Instant::now());
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    expires = %current.expires_at,
                    "token renewal failed; retrying in a minute"
                );
                tokio::time::sleep(RETRY).await;
                // The next turn retries at once: renew_at is already past.
            }
        }
    }
}

/// The token file, private and replaced atomically.
fn write_private(path: &Path, text: &str) -> Result<(), TokenError> {
    write_secret_file(path, text).map_err(|source| TokenError::File {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unsigned token with the claims the API server puts in a ServiceAccount token.
    fn token(sub: &str, iat: i64, exp: i64) -> String {
        let encode = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.signature",
            encode(serde_json::json!({"alg": "RS256"})),
            encode(
                serde_json::json!({"sub": sub, "iat": iat, "exp": exp, "aud": ["https://kubernetes.default.svc"]})
            )
        )
    }

    const YEAR: i64 = 365 * 24 * 3600;

    #[test]
    fn claims_name_the_service_account_and_the_lifetime() {
        let parsed = BoundToken::parse(&token(
            "system:serviceaccount:acme:patchwave-agent-web-1",
            1_000,
            1_000 + YEAR,
        ))
        .unwrap();
        assert_eq!(parsed.namespace, "acme");
        assert_eq!(parsed.service_account, "patchwave-agent-web-1");
        assert_eq!(parsed.lifetime(), SignedDuration::from_secs(YEAR));
        // A third of a year before expiry by default; or what the flag says.
        assert_eq!(
            parsed.renew_at(None),
            Timestamp::from_second(1_000 + YEAR - YEAR / 3).unwrap()
        );
        assert_eq!(
            parsed.renew_at(Some(SignedDuration::from_hours(24))),
            Timestamp::from_second(1_000 + YEAR - 86_400).unwrap()
        );
        // Never before it was issued.
        assert_eq!(
            parsed.renew_at(Some(SignedDuration::from_secs(2 * YEAR))),
            parsed.issued_at
        );
    }

    #[test]
    fn tokens_that_are_not_service_account_tokens_are_refused_with_the_reason() {
        for (text, reason) in [
            ("not-a-jwt".to_owned(), "no payload part"),
            ("a.%%%.c".to_owned(), "not base64url"),
            (
                format!(
                    "e30.{}.sig",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(r#"{"iat": 1, "exp": 2}"#)
                ),
                "lacks sub",
            ),
            (token("admin", 1, 2), "is not a ServiceAccount"),
        ] {
            let error = BoundToken::parse(&text).unwrap_err().to_string();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn the_kubeconfig_user_reads_the_token_from_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let enrolled = token(
            "system:serviceaccount:acme:patchwave-agent-web-1",
            1_000,
            1_000 + YEAR,
        );
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: agent\n\
             clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:6443'}}}}]\n\
             contexts: [{{name: other, context: {{cluster: c, user: admin}}}}, {{name: agent, context: {{cluster: c, user: agent, namespace: acme}}}}]\n\
             users: [{{name: admin, user: {{token: admin-token}}}}, {{name: agent, user: {{token: '{enrolled}'}}}}]\n"
        );
        let (rewritten, path, current) = with_token_file(&kubeconfig, &dir.path().join("state"))
            .unwrap()
            .unwrap();
        assert_eq!(current.service_account, "patchwave-agent-web-1");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), enrolled);
        let parsed = kube::config::Kubeconfig::from_yaml(&rewritten).unwrap();
        let agent = parsed
            .auth_infos
            .iter()
            .find(|u| u.name == "agent")
            .unwrap();
        let agent = agent.auth_info.as_ref().unwrap();
        assert!(agent.token.is_none(), "{rewritten}");
        assert_eq!(agent.token_file.as_deref(), Some(path.to_str().unwrap()));
        // The other user is left alone.
        let admin = parsed
            .auth_infos
            .iter()
            .find(|u| u.name == "admin")
            .unwrap();
        assert!(admin.auth_info.as_ref().unwrap().token.is_some());

        // No inline token (here: a certificate user): nothing to renew.
        let certificate =
            kubeconfig.replace(&format!("token: '{enrolled}'"), "client-certificate: c.pem");
        assert!(with_token_file(&certificate, dir.path()).unwrap().is_none());
    }

    #[test]
    fn the_state_directory_keeps_a_renewed_token_over_an_older_kubeconfig_one() {
        let dir = tempfile::tempdir().unwrap();
        let sub = "system:serviceaccount:acme:patchwave-agent-web-1";
        let enrolled = token(sub, 1_000, 1_000 + YEAR);

        // First start: the kubeconfig's token becomes the file.
        let (path, adopted) = adopt(&enrolled, dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), enrolled);
        assert_eq!(adopted.expires_at.as_second(), 1_000 + YEAR);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // A renewed token in the file outlives the kubeconfig's: it is kept.
        let renewed = token(sub, 2_000, 2_000 + YEAR);
        std::fs::write(&path, &renewed).unwrap();
        let (_, kept) = adopt(&enrolled, dir.path()).unwrap();
        assert_eq!(kept.expires_at.as_second(), 2_000 + YEAR);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), renewed);

        // Enrolled again (a new, longer token for the same identity): the new one wins.
        let again = token(sub, 3_000, 3_000 + YEAR);
        let (_, newer) = adopt(&again, dir.path()).unwrap();
        assert_eq!(newer.expires_at.as_second(), 3_000 + YEAR);

        // Another identity's token in the file is never used.
        let other = token(
            "system:serviceaccount:acme:patchwave-agent-web-2",
            9_000,
            9_000 + YEAR,
        );
        std::fs::write(&path, &other).unwrap();
        let (_, own) = adopt(&enrolled, dir.path()).unwrap();
        assert_eq!(own.service_account, "patchwave-agent-web-1");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), enrolled);
    }
}
