//! The development upstream's disabled test people, kept in the database so that the upstream
//! served by every replica and the `techpass dev-upstream` command agree.

use std::sync::Arc;

use async_trait::async_trait;
use techpass_domain::Clock;
use techpass_store::{Store, StoreError};
use techpass_upstream::dev::{self, DevPerson, DisabledPeople};

/// [`DisabledPeople`] in the database.
#[derive(Debug, Clone)]
pub struct StoredDisabledPeople {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl DisabledPeople for StoredDisabledPeople {
    async fn disabled(&self) -> Result<Vec<String>, String> {
        self.store
            .dev_people_disabled()
            .await
            .map_err(|e| e.to_string())
    }

    async fn set_disabled(&self, key: &str, disabled: bool) -> Result<(), String> {
        self.store
            .set_dev_person_disabled(key, disabled, self.clock.now().as_secs())
            .await
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevPeopleError {
    #[error("the development upstream has no test person {0:?} (known: {1})")]
    Unknown(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Disables (`true`) or enables the test person `key` at the development upstream.
pub async fn set_disabled(
    people: &StoredDisabledPeople,
    key: &str,
    disabled: bool,
) -> Result<&'static DevPerson, DevPeopleError> {
    let person = dev::person(key).ok_or_else(|| {
        let known: Vec<&str> = dev::people().iter().map(|p| p.key).collect();
        DevPeopleError::Unknown(key.to_string(), known.join(", "))
    })?;
    people
        .store
        .set_dev_person_disabled(person.key, disabled, people.clock.now().as_secs())
        .await?;
    Ok(person)
}
