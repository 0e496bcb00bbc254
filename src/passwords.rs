//! Password hashing with Argon2id at the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Hashing is deliberately slow and memory-hungry (19 MiB each), so it runs on a few threads of
//! its own: a storm of sign-ins queues here instead of starving the threads that serve pages,
//! and the same few threads reuse their memory instead of every blocking-pool thread keeping
//! a 19 MiB arena of its own (measured: 78 against 214 MiB after 300 sign-ins, BENCHMARKS.md).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, Params};
use tokio::sync::{OnceCell, oneshot};

type Job = Box<dyn FnOnce() + Send>;

/// What checking a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password matches; `needs_rehash` when the stored hash used weaker parameters.
    Yes {
        needs_rehash: bool,
    },
    No,
}

/// Hashes and verifies passwords on a fixed number of threads.
#[derive(Clone)]
pub struct Passwords {
    jobs: Sender<Job>,
    /// A hash of a random password, verified when an email has no account so that the answer
    /// takes as long as for a wrong password.
    dummy_hash: Arc<OnceCell<String>>,
}

impl Passwords {
    /// `concurrency` threads hash; more requests wait their turn. The threads end when the
    /// last clone of this value is dropped.
    pub fn new(concurrency: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..concurrency.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || work(&queue))
                .expect("starting a password hashing thread");
        }
        Self {
            jobs,
            dummy_hash: Arc::default(),
        }
    }

    /// Hashes a new password with a fresh salt.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
        self.run(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await
    }

    /// Checks `password` against `stored`. With no stored hash (no such account, or no
    /// password set yet) it still does the same work and answers [`Verified::No`].
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<Verified> {
        let stored = stored.map(str::to_owned);
        let dummy = self
            .dummy_hash
            .get_or_try_init(|| async { self.hash(&crate::crypto::random_token(16)).await })
            .await?
            .clone();
        let password = password.to_owned();
        self.run(move || {
            let (hash_text, real) = match &stored {
                Some(hash) => (hash.as_str(), true),
                None => (dummy.as_str(), false),
            };
            let Ok(hash) = PasswordHash::new(hash_text) else {
                tracing::error!("a stored password hash cannot be parsed");
                return Ok(Verified::No);
            };
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok();
            Ok(if matches && real {
                Verified::Yes {
                    needs_rehash: is_weaker_than_default(&hash),
                }
            } else {
                Verified::No
            })
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(job());
            }))
            .map_err(|_| anyhow::anyhow!("the password hashing threads have stopped"))?;
        result.await.context("password hashing failed")?
    }
}

/// A hashing thread: takes the next job until every sender is gone.
fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// True when a hash was made with another algorithm or weaker parameters than today's.
fn is_weaker_than_default(hash: &PasswordHash) -> bool {
    let current = Params::default();
    match Params::try_from(hash) {
        Ok(params) => {
            hash.algorithm.as_str() != "argon2id"
                || params.m_cost() < current.m_cost()
                || params.t_cost() < current.t_cost()
                || params.p_cost() < current.p_cost()
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use argon2::{Algorithm, Version};

    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_owasp_parameters_and_verify() {
        let passwords = Passwords::new(1);
        let hash = passwords.hash("correct horse battery").await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            passwords
                .verify("correct horse battery", Some(&hash))
                .await
                .expect("verify"),
            Verified::Yes {
                needs_rehash: false
            }
        );
        assert_eq!(
            passwords
                .verify("wrong horse battery", Some(&hash))
                .await
                .expect("verify"),
            Verified::No
        );
    }

    #[tokio::test]
    async fn no_stored_hash_never_verifies() {
        let passwords = Passwords::new(1);
        assert_eq!(
            passwords
                .verify("anything at all", None)
                .await
                .expect("verify"),
            Verified::No
        );
    }

    #[tokio::test]
    async fn a_hash_with_weaker_parameters_asks_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).expect("params"),
        )
        .hash_password(b"correct horse battery")
        .expect("hash")
        .to_string();
        let passwords = Passwords::new(1);
        assert_eq!(
            passwords
                .verify("correct horse battery", Some(&weak))
                .await
                .expect("verify"),
            Verified::Yes { needs_rehash: true }
        );
    }
}
