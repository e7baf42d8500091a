//! Projects: create, read, list, rename, archive.

use serde_json::json;

use crate::domain::audit::{self, EventType};
use crate::domain::ids::{Id, Kind};
use crate::domain::limits;
use crate::domain::model::Project;
use crate::domain::names;
use crate::domain::page::{Page, PageRequest};
use crate::store::{Change, StoreError};

use super::audit::{Author, Subject};
use super::permissions::Action;
use super::{Principal, Service, ServiceError, ServiceResult};

const MAX_EXTERNAL_KEY_ID_CHARS: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: String,
    pub external_key_id: Option<String>,
    pub allowed_ips: Option<Vec<String>>,
}

/// `None` leaves a field as it is; for `external_key_id`, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub external_key_id: Option<Option<String>>,
    /// `Some(None)` allows any address again.
    pub allowed_ips: Option<Option<Vec<String>>>,
}

fn external_key_id(raw: &str) -> Result<String, names::FieldError> {
    names::text("external_key_id", raw, 1, MAX_EXTERNAL_KEY_ID_CHARS)
}

impl Service {
    pub async fn create_project(
        &self,
        who: &Principal,
        input: NewProject,
    ) -> ServiceResult<Project> {
        who.require(Action::Write)?;
        let project = Project {
            id: Id::generate()?,
            organization_id: who.organization_id.clone(),
            name: names::name("name", &input.name)?,
            external_key_id: input
                .external_key_id
                .as_deref()
                .map(external_key_id)
                .transpose()?,
            is_default: false,
            created_at: self.clock.now(),
            archived_at: None,
            allowed_ips: limits::allowlist("allowed_ips", input.allowed_ips)?,
        };
        let event = self.audit_event(
            &Author::of(who),
            EventType::ProjectCreated,
            Subject::Project(&project),
            audit::data(json!({
                "name": project.name,
                "external_key_id": project.external_key_id,
            })),
            project.created_at,
        )?;
        self.store.insert_project(&project, &[event]).await?;
        Ok(project)
    }

    pub async fn project(&self, who: &Principal, id: &Id) -> ServiceResult<Project> {
        self.store
            .project(&who.organization_id, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Kind::Project, id))
    }

    /// The project, if it exists and is active: what every change inside a project needs.
    pub(super) async fn active_project(&self, who: &Principal, id: &Id) -> ServiceResult<Project> {
        let project = self.project(who, id).await?;
        if project.is_archived() {
            return Err(ServiceError::ProjectArchived(project.id));
        }
        Ok(project)
    }

    /// Turns a failed store guard into the reason a client can act on: the project went away
    /// or was archived between our check and the write.
    pub(super) async fn explain_conflict(
        &self,
        who: &Principal,
        project: &Id,
        err: StoreError,
    ) -> ServiceError {
        if !matches!(err, StoreError::Conflict(_)) {
            return err.into();
        }
        match self.active_project(who, project).await {
            Err(reason) => reason,
            Ok(_) => ServiceError::Internal(err.into()),
        }
    }

    pub async fn list_projects(
        &self,
        who: &Principal,
        include_archived: bool,
        page: &PageRequest,
    ) -> ServiceResult<Page<Project>> {
        Ok(self
            .store
            .list_projects(&who.organization_id, include_archived, page)
            .await?)
    }

    pub async fn update_project(
        &self,
        who: &Principal,
        id: &Id,
        changes: ProjectChanges,
    ) -> ServiceResult<Project> {
        who.require(Action::Write)?;
        let mut project = self.active_project(who, id).await?;
        let mut requested = serde_json::Map::new();
        if let Some(name) = changes.name {
            project.name = names::name("name", &name)?;
            requested.insert("name".into(), json!(project.name));
        }
        if let Some(ext) = changes.external_key_id {
            project.external_key_id = ext.as_deref().map(external_key_id).transpose()?;
            requested.insert("external_key_id".into(), json!(project.external_key_id));
        }
        if let Some(ips) = changes.allowed_ips {
            project.allowed_ips = limits::allowlist("allowed_ips", ips)?;
            requested.insert(
                "allowed_ips".into(),
                json!(project.allowed_ips.as_deref().map(limits::render_allowlist)),
            );
        }
        let event = self.audit_event(
            &Author::of(who),
            EventType::ProjectUpdated,
            Subject::Project(&project),
            audit::changes(requested.into()),
            self.clock.now(),
        )?;
        if let Err(err) = self.store.update_project(&project, &[event]).await {
            return Err(self.explain_conflict(who, id, err).await);
        }
        self.keys_changed(Change::Project(project.id.clone())).await;
        Ok(project)
    }

    /// Archiving is idempotent: an archived project is returned as it is.
    pub async fn archive_project(&self, who: &Principal, id: &Id) -> ServiceResult<Project> {
        who.require(Action::Write)?;
        let mut project = self.project(who, id).await?;
        if project.is_default {
            return Err(ServiceError::DefaultProjectArchive(project.id));
        }
        if project.is_archived() {
            return Ok(project);
        }
        let at = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::ProjectArchived,
            Subject::Project(&project),
            json!({}),
            at,
        )?;
        match self
            .store
            .archive_project(&who.organization_id, id, at, &[event])
            .await
        {
            Ok(()) => {
                project.archived_at = Some(at);
                self.keys_changed(Change::Project(project.id.clone())).await;
                Ok(project)
            }
            // Someone else archived it meanwhile: report what is stored now.
            Err(StoreError::Conflict(_)) => self.project(who, id).await,
            Err(err) => Err(err.into()),
        }
    }
}
