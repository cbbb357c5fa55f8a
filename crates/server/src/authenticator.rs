//! Who may log in: the [`Authenticator`] trait and the local user store's
//! implementation of it ([`LocalAuthenticator`]); RADIUS implements it in
//! `radius_auth.rs`. The pipeline picks one at start-up and asks it in two
//! steps, with the policy's before-auth stage between them:
//!
//! 1. [`Authenticator::look_up`]: what the back end knows of the claimed
//!    user before any credential is checked (the local store: its groups
//!    and secret, or a refusal; RADIUS: nothing);
//! 2. [`Authenticator::check`]: the credentials (the local store hands the
//!    PPP link the secret to check them against; RADIUS asks its server).

use std::sync::Arc;

use ppp::auth::{AuthRequest, Rejection, Secret};
use tunnel::login_log::{self, method_name};
use tunnel::AuthAnswer;

use crate::pool::BoxFuture;
use crate::radius_auth::{Granted, TunnelKind};
use crate::users::UserStore;
use crate::SessionId;

/// The session asking.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub session: SessionId,
    /// The peer's transport address ("ip:port") or line.
    pub peer: String,
    pub tunnel: TunnelKind,
}

/// A user the back end knows before checking credentials.
pub struct KnownUser {
    pub groups: Vec<String>,
    /// What the credentials are checked against.
    pub secret: Secret,
}

/// What the back end knows of the claimed user before any credential is
/// checked.
pub enum Claim {
    /// A user of the store, enabled.
    Known(KnownUser),
    /// Nothing is known until the credentials are checked (RADIUS: groups
    /// and Class come with the Access-Accept).
    Opaque,
    /// Refused before any policy is asked (a disabled account, an unknown
    /// user, a store that fails), with the answer for the peer. Logged.
    Refused(AuthAnswer),
}

/// The outcome of a credential check, and what the session learnt.
#[derive(Debug)]
pub struct Verdict {
    pub answer: AuthAnswer,
    /// What an Access-Accept granted (RADIUS).
    pub granted: Option<Granted>,
    /// The State of an Access-Challenge, for the next EAP round (RFC 2865
    /// §5.24).
    pub eap_state: Option<Vec<u8>>,
}

impl Verdict {
    /// An answer and nothing learnt.
    pub fn answer(answer: AuthAnswer) -> Verdict {
        Verdict {
            answer,
            granted: None,
            eap_state: None,
        }
    }
}

/// A source of credentials: the local user store or RADIUS.
pub trait Authenticator: Send + Sync {
    /// What is known of `request`'s user before its credentials are
    /// checked.
    fn look_up<'a>(
        &'a self,
        attempt: &'a Attempt,
        request: &'a AuthRequest,
    ) -> BoxFuture<'a, Claim>;

    /// Checks `request`'s credentials. `known` is what [`look_up`] found,
    /// `eap_state` the State of the previous EAP round.
    ///
    /// [`look_up`]: Authenticator::look_up
    fn check<'a>(
        &'a self,
        attempt: &'a Attempt,
        request: AuthRequest,
        known: Option<KnownUser>,
        eap_state: Option<Vec<u8>>,
    ) -> BoxFuture<'a, Verdict>;

    /// What the user store says of `user`, who proved itself another way
    /// (an IKEv2 client certificate, RFC 7296 §2.15): its groups for the
    /// policies, or that the account is disabled. RADIUS cannot be asked
    /// without credentials: [`StoreAccount::Unknown`].
    fn account<'a>(&'a self, user: &'a str) -> BoxFuture<'a, StoreAccount> {
        let _ = user;
        Box::pin(std::future::ready(StoreAccount::Unknown))
    }
}

/// A certificate user in the user store (see [`Authenticator::account`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAccount {
    /// No such user (or no store to ask): no groups.
    Unknown,
    /// An enabled account and its groups.
    Enabled { groups: Vec<String> },
    /// A disabled account: a certificate does not bring it back.
    Disabled,
}

/// The local user store: the PPP link itself checks the credentials
/// against the stored secret (issue 11: every refusal is checked against a
/// secret first, so that the peer sees 647/649 only if it knows the
/// password, and an unknown user costs the same work and gets the same
/// bytes as a wrong password).
pub struct LocalAuthenticator {
    users: Arc<UserStore>,
}

impl LocalAuthenticator {
    pub fn new(users: Arc<UserStore>) -> LocalAuthenticator {
        LocalAuthenticator { users }
    }
}

impl Authenticator for LocalAuthenticator {
    fn account<'a>(&'a self, user: &'a str) -> BoxFuture<'a, StoreAccount> {
        let users = self.users.clone();
        let name = user.to_owned();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || users.lookup(&name)).await {
                Ok(Ok(Some(record))) if record.info.enabled => StoreAccount::Enabled {
                    groups: record.info.groups,
                },
                Ok(Ok(Some(_))) => StoreAccount::Disabled,
                Ok(Ok(None)) => StoreAccount::Unknown,
                Ok(Err(e)) => {
                    tracing::error!("user store: {e}");
                    StoreAccount::Unknown
                }
                Err(e) => {
                    tracing::error!("user store: {e}");
                    StoreAccount::Unknown
                }
            }
        })
    }

    fn look_up<'a>(
        &'a self,
        attempt: &'a Attempt,
        request: &'a AuthRequest,
    ) -> BoxFuture<'a, Claim> {
        let users = self.users.clone();
        let name = request.username.clone();
        Box::pin(async move {
            let id = attempt.session.raw();
            let words = method_name(request.method);
            let user = &request.username;
            match tokio::task::spawn_blocking(move || users.lookup(&name)).await {
                Ok(Ok(Some(record))) if record.info.enabled => Claim::Known(KnownUser {
                    groups: record.info.groups,
                    secret: record.secret,
                }),
                Ok(Ok(Some(record))) => {
                    login_log::refused(id, user, words, &"account disabled");
                    Claim::Refused(AuthAnswer::SecretThenReject(
                        record.secret,
                        Rejection::AccountDisabled,
                        "account disabled".into(),
                    ))
                }
                Ok(Ok(None)) => {
                    // The log says why; the peer hears what a wrong
                    // password gets, after the same work.
                    login_log::refused(id, user, words, &"unknown user");
                    Claim::Refused(AuthAnswer::SecretThenReject(
                        stand_in_secret(),
                        Rejection::AuthenticationFailure,
                        "no such user".into(),
                    ))
                }
                Ok(Err(e)) => {
                    tracing::error!(session_id = id, "user store: {e}");
                    login_log::refused(id, user, words, &"user store error");
                    Claim::Refused(store_failure())
                }
                Err(e) => {
                    tracing::error!(session_id = id, "user store task: {e}");
                    login_log::refused(id, user, words, &"user store error");
                    Claim::Refused(store_failure())
                }
            }
        })
    }

    fn check<'a>(
        &'a self,
        _attempt: &'a Attempt,
        request: AuthRequest,
        known: Option<KnownUser>,
        _eap_state: Option<Vec<u8>>,
    ) -> BoxFuture<'a, Verdict> {
        let answer = match known {
            Some(user) => AuthAnswer::Secret(user.secret),
            // Not reached: `look_up` knows every user it lets through.
            None => {
                tracing::error!(
                    user = %login_log::Quoted(&request.username),
                    "local store: credentials checked without a looked-up user"
                );
                store_failure()
            }
        };
        Box::pin(std::future::ready(Verdict::answer(answer)))
    }
}

fn store_failure() -> AuthAnswer {
    AuthAnswer::Reject(
        Rejection::AuthenticationFailure,
        "authentication failed".into(),
    )
}

/// The secret an unknown user is checked against (issue 11): a random
/// password, so the check fails like a wrong password does and costs the
/// same (an NT hash cannot be checked by CHAP-MD5, which would answer
/// sooner).
fn stand_in_secret() -> Secret {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::Password(zeroize::Zeroizing::new(hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;
    use crate::users::NewUser;
    use ppp::auth::Credentials;

    fn pap(user: &str) -> AuthRequest {
        AuthRequest {
            username: user.into(),
            method: ppp::auth::AuthMethod::Pap,
            credentials: Credentials::Pap {
                password: zeroize::Zeroizing::new(b"pw".to_vec()),
            },
        }
    }

    #[tokio::test]
    async fn the_local_store_knows_groups_and_refuses_after_the_password_check() {
        let tmp = tempfile::tempdir().unwrap();
        let users = UserStore::open(&StateDir::open(tmp.path()).unwrap()).unwrap();
        let staff = NewUser {
            groups: vec!["staff".into()],
            ..NewUser::default()
        };
        users.add("alice", "alice-pw", &staff).unwrap();
        let off = NewUser {
            enabled: false,
            ..NewUser::default()
        };
        users.add("dave", "dave-pw", &off).unwrap();
        let local = LocalAuthenticator::new(Arc::new(users));
        let attempt = Attempt {
            session: SessionId::from_raw(1),
            peer: "192.0.2.1:1".into(),
            tunnel: TunnelKind::Sstp,
        };

        let alice = pap("alice");
        let known = match local.look_up(&attempt, &alice).await {
            Claim::Known(k) => k,
            _ => panic!("alice is known"),
        };
        assert_eq!(known.groups, ["staff"]);
        let verdict = local.check(&attempt, alice, Some(known), None).await;
        assert!(matches!(verdict.answer, AuthAnswer::Secret(_)));
        assert!(verdict.granted.is_none() && verdict.eap_state.is_none());

        // Disabled and unknown: the password is checked first (issue 11).
        let dave = pap("dave");
        match local.look_up(&attempt, &dave).await {
            Claim::Refused(AuthAnswer::SecretThenReject(_, r, _)) => {
                assert_eq!(r, Rejection::AccountDisabled)
            }
            _ => panic!("dave is disabled"),
        }
        let nobody = pap("nobody");
        match local.look_up(&attempt, &nobody).await {
            Claim::Refused(AuthAnswer::SecretThenReject(_, r, _)) => {
                assert_eq!(r, Rejection::AuthenticationFailure)
            }
            _ => panic!("nobody is unknown"),
        }
    }
}
