//! A short-lived cache of one door account's groups and user directory, used by the binding
//! pipeline in both hosts: a sync triggered by a webhook or a booking boundary then reads only
//! the group it changes before writing, which matters at Kisi's five serial requests per second
//! (and a folder pass reads an account's directory once for all its bindings).
//!
//! Group *membership* is never cached: it is the state every sync diffs against. The group list
//! and the user directory change rarely and mostly through flexgate itself (created users are
//! added to the cache); what someone changes by hand at the vendor is seen within [`TTL`], and
//! any failed write drops the cache, so a stale id costs one retried sync, never a wrong grant
//! (people are matched by their OfficeRnD id first, see `sync::plan`). A user creation the
//! vendor refuses is checked against a fresh directory read: the person may have been created
//! since the cached directory was read (by hand, or by another operator process), and is then
//! used, not reported as a failure.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::sync::plan::{Lookup, UserIndex};
use crate::vendors::{
    AccountInfo, DoorVendor, GrantContext, GrantNotices, NewUser, VendorError, VendorGroup,
    VendorUser,
};

/// How long a group list or user directory is reused.
pub const TTL: Duration = Duration::from_secs(60);

/// The cached reads of one vendor account.
#[derive(Default)]
pub struct DirectoryCache {
    groups: Mutex<Option<(Instant, Vec<VendorGroup>)>>,
    users: Mutex<Option<(Instant, Vec<VendorUser>)>>,
}

impl DirectoryCache {
    /// Drops everything (after a failed write: an id may be stale).
    pub fn invalidate(&self) {
        *lock(&self.groups) = None;
        *lock(&self.users) = None;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fresh<T: Clone>(slot: &Mutex<Option<(Instant, T)>>) -> Option<T> {
    lock(slot)
        .as_ref()
        .filter(|(read, _)| read.elapsed() < TTL)
        .map(|(_, value)| value.clone())
}

/// `vendor` read through `cache`.
pub struct CachedDoor<'a, V> {
    vendor: &'a V,
    cache: &'a DirectoryCache,
}

impl<'a, V> CachedDoor<'a, V> {
    pub fn new(vendor: &'a V, cache: &'a DirectoryCache) -> Self {
        Self { vendor, cache }
    }

    fn failed<T>(&self, result: Result<T, VendorError>) -> Result<T, VendorError> {
        if result.is_err() {
            self.cache.invalidate();
        }
        result
    }
}

impl<V: DoorVendor + Sync> DoorVendor for CachedDoor<'_, V> {
    async fn check(&self) -> Result<AccountInfo, VendorError> {
        self.vendor.check().await
    }

    async fn list_groups(&self) -> Result<Vec<VendorGroup>, VendorError> {
        if let Some(groups) = fresh(&self.cache.groups) {
            return Ok(groups);
        }
        let groups = self.vendor.list_groups().await?;
        *lock(&self.cache.groups) = Some((Instant::now(), groups.clone()));
        Ok(groups)
    }

    async fn list_users(&self) -> Result<Vec<VendorUser>, VendorError> {
        if let Some(users) = fresh(&self.cache.users) {
            return Ok(users);
        }
        let users = self.vendor.list_users().await?;
        *lock(&self.cache.users) = Some((Instant::now(), users.clone()));
        Ok(users)
    }

    async fn list_group_members(&self, group: &VendorGroup) -> Result<Vec<String>, VendorError> {
        self.vendor.list_group_members(group).await
    }

    async fn create_user(&self, user: &NewUser) -> Result<VendorUser, VendorError> {
        let error = match self.vendor.create_user(user).await {
            Ok(created) => {
                if let Some((_, users)) = lock(&self.cache.users).as_mut() {
                    users.push(created.clone());
                }
                return Ok(created);
            }
            Err(error) => error,
        };
        // The directory may be up to a TTL old: the person may exist by now (Kisi then answers
        // "email has already been taken"). A fresh read tells; the user found is matched as
        // `sync::plan` matches, by the stored OfficeRnD id, then by email.
        self.cache.invalidate();
        let Ok(users) = self.vendor.list_users().await else {
            return Err(error);
        };
        let existing = match UserIndex::new(&users).find(user) {
            Lookup::Found(existing) => Some(existing.clone()),
            Lookup::Missing | Lookup::Ambiguous(_) => None,
        };
        *lock(&self.cache.users) = Some((Instant::now(), users));
        existing.ok_or(error)
    }

    async fn add_to_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
        context: GrantContext,
    ) -> Result<(), VendorError> {
        let result = self.vendor.add_to_group(user_id, group, context).await;
        self.failed(result)
    }

    async fn remove_from_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
    ) -> Result<(), VendorError> {
        let result = self.vendor.remove_from_group(user_id, group).await;
        self.failed(result)
    }

    fn access_blocked(&self, user_id: &str) -> Option<String> {
        self.vendor.access_blocked(user_id)
    }

    fn grant_notices(&self) -> GrantNotices {
        self.vendor.grant_notices()
    }

    async fn holds_access(&self, user_id: &str) -> Result<bool, VendorError> {
        self.vendor.holds_access(user_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A vendor that counts reads and fails writes on demand.
    #[derive(Default)]
    struct Counting {
        group_reads: AtomicU32,
        user_reads: AtomicU32,
        fail_writes: std::sync::atomic::AtomicBool,
    }

    impl DoorVendor for Counting {
        async fn check(&self) -> Result<AccountInfo, VendorError> {
            Ok(AccountInfo::default())
        }
        async fn list_groups(&self) -> Result<Vec<VendorGroup>, VendorError> {
            self.group_reads.fetch_add(1, Ordering::SeqCst);
            Ok(vec![VendorGroup {
                id: "g1".into(),
                name: "OFFICERND_Lobby".into(),
            }])
        }
        async fn list_users(&self) -> Result<Vec<VendorUser>, VendorError> {
            self.user_reads.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
        async fn list_group_members(&self, _: &VendorGroup) -> Result<Vec<String>, VendorError> {
            Ok(Vec::new())
        }
        async fn create_user(&self, user: &NewUser) -> Result<VendorUser, VendorError> {
            Ok(VendorUser {
                id: "u1".into(),
                email: Some(user.email.clone()),
                name: String::new(),
                external_id: Some(user.officernd_id.clone()),
            })
        }
        async fn add_to_group(
            &self,
            _: &str,
            _: &VendorGroup,
            _: GrantContext,
        ) -> Result<(), VendorError> {
            if self.fail_writes.load(Ordering::SeqCst) {
                Err(VendorError::Refused("refused".into()))
            } else {
                Ok(())
            }
        }
        async fn remove_from_group(&self, _: &str, _: &VendorGroup) -> Result<(), VendorError> {
            Ok(())
        }
    }

    fn new_user() -> NewUser {
        NewUser {
            officernd_id: "m1".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            email: "ann@example.com".into(),
            phone: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_are_reused_within_the_ttl_created_users_are_added_and_a_failed_write_drops_them()
    {
        let vendor = Counting::default();
        let cache = DirectoryCache::default();
        let door = CachedDoor::new(&vendor, &cache);
        door.list_groups().await.unwrap();
        door.list_users().await.unwrap();
        door.list_groups().await.unwrap();
        door.list_users().await.unwrap();
        assert_eq!(vendor.group_reads.load(Ordering::SeqCst), 1);
        assert_eq!(vendor.user_reads.load(Ordering::SeqCst), 1);

        door.create_user(&new_user()).await.unwrap();
        let users = door.list_users().await.unwrap();
        assert_eq!(
            users.len(),
            1,
            "the created user is in the cached directory"
        );
        assert_eq!(vendor.user_reads.load(Ordering::SeqCst), 1);

        tokio::time::advance(TTL).await;
        door.list_groups().await.unwrap();
        assert_eq!(
            vendor.group_reads.load(Ordering::SeqCst),
            2,
            "read again after the TTL"
        );

        vendor.fail_writes.store(true, Ordering::SeqCst);
        let group = VendorGroup {
            id: "g1".into(),
            name: "OFFICERND_Lobby".into(),
        };
        assert!(door
            .add_to_group("u1", &group, GrantContext::default())
            .await
            .is_err());
        door.list_groups().await.unwrap();
        door.list_users().await.unwrap();
        assert_eq!(
            vendor.group_reads.load(Ordering::SeqCst),
            3,
            "a failed write drops the cache"
        );
        assert_eq!(vendor.user_reads.load(Ordering::SeqCst), 2);
    }

    /// A directory another sync writes to: the person exists by the time creating them fails.
    struct Raced {
        directory: Vec<VendorUser>,
    }

    impl DoorVendor for Raced {
        async fn check(&self) -> Result<AccountInfo, VendorError> {
            Ok(AccountInfo::default())
        }
        async fn list_groups(&self) -> Result<Vec<VendorGroup>, VendorError> {
            Ok(Vec::new())
        }
        async fn list_users(&self) -> Result<Vec<VendorUser>, VendorError> {
            Ok(self.directory.clone())
        }
        async fn list_group_members(&self, _: &VendorGroup) -> Result<Vec<String>, VendorError> {
            Ok(Vec::new())
        }
        async fn create_user(&self, _: &NewUser) -> Result<VendorUser, VendorError> {
            Err(VendorError::Refused(
                "{\"email\":[\"has already been taken\"]}".into(),
            ))
        }
        async fn add_to_group(
            &self,
            _: &str,
            _: &VendorGroup,
            _: GrantContext,
        ) -> Result<(), VendorError> {
            Ok(())
        }
        async fn remove_from_group(&self, _: &str, _: &VendorGroup) -> Result<(), VendorError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_refused_creation_uses_the_user_another_sync_created_meanwhile() {
        let created_meanwhile = VendorUser {
            id: "u7".into(),
            email: Some("ANN@example.com".into()),
            name: "Ann Lee".into(),
            external_id: None,
        };
        let vendor = Raced {
            directory: vec![created_meanwhile.clone()],
        };
        let cache = DirectoryCache::default();
        let door = CachedDoor::new(&vendor, &cache);
        assert_eq!(
            door.create_user(&new_user()).await.unwrap(),
            created_meanwhile
        );
        assert_eq!(door.list_users().await.unwrap(), [created_meanwhile]);

        // Nobody by that id or email: the refusal stands.
        let vendor = Raced {
            directory: Vec::new(),
        };
        let door = CachedDoor::new(&vendor, &cache);
        assert!(matches!(
            door.create_user(&new_user()).await,
            Err(VendorError::Refused(_))
        ));
    }
}
