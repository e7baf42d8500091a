//! Why a presented credential was refused: the reasons the service decides, and the names the
//! metrics count them under (`as_str`, also what the wire says where it says a reason).
//! `ALL` lists every reason in declaration order, so `reason as usize` indexes it.

/// Why a service-account key is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Unknown,
    Malformed,
    Expired,
    Revoked,
    ProjectArchived,
    /// Valid, but disabled by an operator (`exposed`, `compromised`, …).
    Disabled,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::Unknown,
        Reason::Malformed,
        Reason::Expired,
        Reason::Revoked,
        Reason::ProjectArchived,
        Reason::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unknown => "unknown",
            Reason::Malformed => "malformed",
            Reason::Expired => "expired",
            Reason::Revoked => "revoked",
            Reason::ProjectArchived => "project_archived",
            Reason::Disabled => "disabled",
        }
    }
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    Malformed,
    UnknownSigningKey,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Expired,
    CredentialDeleted,
    AccountDeleted,
    ProjectArchived,
    /// Obtained by workload identity federation, whose rule or provider has since been
    /// disabled or deleted.
    FederationRevoked,
}

impl TokenFailure {
    pub const ALL: [TokenFailure; 10] = [
        TokenFailure::Malformed,
        TokenFailure::UnknownSigningKey,
        TokenFailure::BadSignature,
        TokenFailure::WrongIssuer,
        TokenFailure::WrongAudience,
        TokenFailure::Expired,
        TokenFailure::CredentialDeleted,
        TokenFailure::AccountDeleted,
        TokenFailure::ProjectArchived,
        TokenFailure::FederationRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenFailure::Malformed => "malformed",
            TokenFailure::UnknownSigningKey => "unknown_signing_key",
            TokenFailure::BadSignature => "bad_signature",
            TokenFailure::WrongIssuer => "wrong_issuer",
            TokenFailure::WrongAudience => "wrong_audience",
            TokenFailure::Expired => "expired",
            TokenFailure::CredentialDeleted => "credential_deleted",
            TokenFailure::AccountDeleted => "account_deleted",
            TokenFailure::ProjectArchived => "project_archived",
            TokenFailure::FederationRevoked => "federation_revoked",
        }
    }
}

/// Why the token endpoint refused a client. All of them are `invalid_client` on the wire
/// (RFC 6749 §5.2); the distinction is for logs, metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFailure {
    UnknownClient,
    WrongSecret,
    AccountGone,
    /// A credential of workload identity federation: its `client_assertion` was missing or
    /// refused (or a secret was presented for it, or an assertion for a secret's credential).
    BadAssertion,
}

impl ClientFailure {
    pub const ALL: [ClientFailure; 4] = [
        ClientFailure::UnknownClient,
        ClientFailure::WrongSecret,
        ClientFailure::AccountGone,
        ClientFailure::BadAssertion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientFailure::UnknownClient => "unknown_client",
            ClientFailure::WrongSecret => "wrong_secret",
            ClientFailure::AccountGone => "account_deleted",
            ClientFailure::BadAssertion => "bad_assertion",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_discriminant_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        for (i, r) in TokenFailure::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        for (i, r) in ClientFailure::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
