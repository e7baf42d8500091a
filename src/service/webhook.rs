//! Audit webhook: every audit event written while a webhook is configured is POSTed to it,
//! signed, and retried with exponential backoff until the receiver answers 2xx.
//!
//! The outbox is the audit table itself (`webhook_pending`, written in the same transaction as
//! the change), so an event cannot be lost between commit and delivery, a restart resumes
//! where the last node stopped, and several nodes share the work through leases
//! (`claim_webhook_deliveries`). Delivery is at least once and not ordered across retries:
//! receivers deduplicate on the event ID (also in `X-Keyplane-Event-Id`).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::audit::{self, DeliveryOutcome};
use crate::domain::time::{to_unix_seconds, Millis};

use super::{Service, ServiceResult};

#[derive(Clone)]
pub struct WebhookSettings {
    pub url: String,
    /// Key of the HMAC-SHA256 signature in `X-Keyplane-Signature`.
    pub secret: String,
    /// Wait after the first failure; doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest a receiver may take to answer one delivery.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl WebhookSettings {
    pub fn new(url: String, secret: String) -> Self {
        Self {
            url,
            secret,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }

    /// The wait before attempt `failures + 1`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.min(20));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp is signed with the
/// body so a captured delivery cannot be replayed later under a fresh timestamp.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // new_from_slice accepts any key length for HMAC; the fallback is unreachable.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let v1 = hex::encode(mac.finalize().into_bytes());
    format!("t={timestamp},v1={v1}")
}

/// Events one round claims; a lease must outlast sending them all.
const BATCH: u32 = 20;

impl Service {
    /// Queue audit events for `settings` from now on (call before serving).
    pub fn with_audit_webhook(mut self, settings: WebhookSettings) -> Self {
        self.webhook = Some(std::sync::Arc::new(settings));
        self
    }

    /// One delivery round: claims due events and sends each once. Returns how many were
    /// delivered; `Ok(0)` when nothing was due (or no webhook is configured).
    pub async fn deliver_audit_webhooks(&self, agent: &ureq::Agent) -> ServiceResult<usize> {
        let Some(settings) = self.webhook.clone() else {
            return Ok(0);
        };
        let now = self.clock.now();
        let lease = settings.timeout.as_millis() as Millis * (i64::from(BATCH) + 1);
        let claimed = self
            .store
            .claim_webhook_deliveries(now, now + lease, BATCH)
            .await?;
        let mut delivered = 0;
        for (entry, failures) in claimed {
            let body = audit::to_json(&entry).to_string();
            let outcome = match send(agent, &settings, &entry, body).await {
                Ok(()) => {
                    delivered += 1;
                    DeliveryOutcome::Delivered {
                        at: self.clock.now(),
                    }
                }
                Err(error) => {
                    let wait = settings.backoff(failures).as_millis() as Millis;
                    tracing::warn!(
                        event = %audit::render_id(&entry.event.id),
                        attempt = failures + 1,
                        retry_in_ms = wait,
                        %error,
                        "audit webhook delivery failed"
                    );
                    DeliveryOutcome::Failed {
                        next_attempt_at: self.clock.now() + wait,
                        error,
                    }
                }
            };
            self.store
                .finish_webhook_delivery(&entry.event.id, &outcome)
                .await?;
        }
        Ok(delivered)
    }
}

/// Sends one delivery. ureq is blocking (the operator CLI uses it too, so keyplane carries one
/// HTTP client); deliveries are rare and run on the blocking pool.
async fn send(
    agent: &ureq::Agent,
    settings: &WebhookSettings,
    entry: &audit::AuditEntry,
    body: String,
) -> Result<(), String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_else(|_| to_unix_seconds(entry.event.effective_at));
    let request = agent
        .post(&settings.url)
        .timeout(settings.timeout)
        .set("content-type", "application/json")
        .set("x-keyplane-event-id", &audit::render_id(&entry.event.id))
        .set("x-keyplane-event-type", entry.event.event_type.as_str())
        .set(
            "x-keyplane-signature",
            &signature(&settings.secret, now, body.as_bytes()),
        );
    let outcome = tokio::task::spawn_blocking(move || match request.send_string(&body) {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, _)) => Err(format!("receiver answered {code}")),
        // Only the kind: the URL may carry credentials in its query.
        Err(ureq::Error::Transport(t)) => Err(format!("transport error ({})", t.kind())),
    })
    .await;
    outcome.unwrap_or_else(|_| Err("delivery task failed".into()))
}

/// Runs delivery rounds until the task is dropped: at once while events keep coming, every
/// `poll` when idle or failing.
pub async fn run(service: Service, poll: Duration) {
    let agent = ureq::AgentBuilder::new().build();
    loop {
        match service.deliver_audit_webhooks(&agent).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "audit webhook round failed; will retry"),
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = WebhookSettings::new("http://x".into(), "s".repeat(16));
        assert_eq!(s.backoff(0), Duration::from_secs(1));
        assert_eq!(s.backoff(1), Duration::from_secs(2));
        assert_eq!(s.backoff(5), Duration::from_secs(32));
        assert_eq!(s.backoff(9), Duration::from_secs(300));
        assert_eq!(s.backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn signature_covers_timestamp_and_body() {
        let a = signature("secret-secret-secret", 1700000000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature("secret-secret-secret", 1700000001, b"{}"));
        assert_ne!(a, signature("secret-secret-secret", 1700000000, b"{ }"));
        assert_ne!(a, signature("another-secret-here", 1700000000, b"{}"));
        assert_eq!(a, signature("secret-secret-secret", 1700000000, b"{}"));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let s = WebhookSettings::new("http://x".into(), "very-secret-value".into());
        assert!(!format!("{s:?}").contains("very-secret-value"));
    }
}
