//! What can go wrong in the service layer, independent of any wire format.

use crate::domain::ids::{Id, Kind};
use crate::domain::names::FieldError;
use crate::domain::random::RandomError;
use crate::store::StoreError;

use super::AuthFailure;

pub type ServiceResult<T> = Result<T, ServiceError>;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no such {}: {id}", kind.noun())]
    NotFound { kind: Kind, id: Id },
    #[error("project {0} is archived")]
    ProjectArchived(Id),
    #[error("the default project {0} cannot be archived")]
    DefaultProjectArchive(Id),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("unknown pagination cursor")]
    UnknownCursor,
    /// A rate-limit ID naming no catalogue model.
    #[error("no such rate limit: {0}")]
    NoSuchRateLimit(String),
    /// Deleting it would leave the organization without a usable admin key.
    #[error("the organization's last usable write-capable admin key cannot be deleted")]
    LastAdminKey,
    /// A unique value is taken (a label, a supplied key).
    #[error("already exists")]
    Duplicate,
    /// Authenticated, but this caller may not do that.
    #[error("permission denied")]
    Forbidden,
    /// An admin key without the scope this needs (a read-only key asked to change something).
    #[error("missing scope {0}")]
    MissingScope(&'static str),
    /// A request combined options that exclude each other (e.g. `after` and `before`).
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("authentication failed: {0:?}")]
    Unauthenticated(AuthFailure),
    #[error("the store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl ServiceError {
    pub fn not_found(kind: Kind, id: &Id) -> Self {
        ServiceError::NotFound {
            kind,
            id: id.clone(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::UnknownCursor => ServiceError::UnknownCursor,
            StoreError::Duplicate(_) => ServiceError::Duplicate,
            StoreError::Unavailable(e) => ServiceError::Unavailable(e),
            other => ServiceError::Internal(other.into()),
        }
    }
}

impl From<RandomError> for ServiceError {
    fn from(err: RandomError) -> Self {
        ServiceError::Internal(err.into())
    }
}
