//! Who is told about a grant: the connection's [`GrantNotices`] turned into one
//! [`GrantContext::notify`] per grant, decided here and not in the clients, from facts that
//! survive a restart.
//!
//! Under [`GrantNotices::FirstAccess`] (Kisi's default: "notified only the first time they are
//! granted access") a person is told once, about their first access ever. The sync knows two
//! facts for that: it created the person's vendor user in this very run (a restarted operator
//! finds the user and so never tells them again), and the vendor, read fresh just before, shows
//! the user holding no access at all (another sync that found the same person, or a user the
//! vendor handed back as already existing, may have granted them meanwhile). The email rides on
//! one grant; when that grant fails it moves to the person's next grant of the run, so a new
//! member mapped to three groups hears exactly once. A crash between creating the user and their
//! first grant loses the email rather than risking a second one: the next run does not know the
//! user was new.

use crate::vendors::{DoorVendor, GrantContext, GrantNotices, VendorError, VendorGroup};

/// One grant the sync is about to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingGrant {
    /// The managed group.
    pub group: VendorGroup,
    /// The vendor user.
    pub user_id: String,
    /// The person's email, for reports.
    pub email: String,
    /// Whether this sync run created the vendor user.
    pub created_now: bool,
}

/// One unit of grant work, run concurrently with the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantJob {
    /// One grant with its decided flag.
    One(PendingGrant, GrantContext),
    /// Every grant of a person whose first-access email is due, in order, one at a time: the
    /// email rides on the first grant that succeeds, provided the vendor still shows the person
    /// no access when the job starts.
    FirstAccess(Vec<PendingGrant>),
}

/// Splits the grants into jobs under the connection's policy.
pub fn jobs(notices: GrantNotices, grants: Vec<PendingGrant>) -> Vec<GrantJob> {
    let one = |grant, notify| GrantJob::One(grant, GrantContext { notify });
    match notices {
        GrantNotices::Never => grants.into_iter().map(|g| one(g, false)).collect(),
        GrantNotices::Every => grants.into_iter().map(|g| one(g, true)).collect(),
        GrantNotices::FirstAccess => {
            let mut jobs = Vec::new();
            let mut chains: Vec<Vec<PendingGrant>> = Vec::new();
            for grant in grants {
                if !grant.created_now {
                    jobs.push(one(grant, false));
                } else if let Some(chain) = chains
                    .iter_mut()
                    .find(|chain| chain[0].user_id == grant.user_id)
                {
                    chain.push(grant);
                } else {
                    chains.push(vec![grant]);
                }
            }
            jobs.extend(chains.into_iter().map(GrantJob::FirstAccess));
            jobs
        }
    }
}

/// Runs one job, returning every grant with its outcome.
pub async fn run<V: DoorVendor>(
    vendor: &V,
    job: GrantJob,
) -> Vec<(PendingGrant, Result<(), VendorError>)> {
    match job {
        GrantJob::One(grant, context) => {
            let result = vendor
                .add_to_group(&grant.user_id, &grant.group, context)
                .await;
            vec![(grant, result)]
        }
        GrantJob::FirstAccess(chain) => {
            let Some(user_id) = chain.first().map(|grant| grant.user_id.clone()) else {
                return Vec::new();
            };
            // A failed read grants without the email: access matters more than the welcome.
            let mut tell = match vendor.holds_access(&user_id).await {
                Ok(holds) => !holds,
                Err(error) => {
                    tracing::warn!(
                        user = %user_id,
                        %error,
                        "could not read whether the new vendor user already has access; \
                         granting without the first-access notification"
                    );
                    false
                }
            };
            let mut outcomes = Vec::with_capacity(chain.len());
            for grant in chain {
                let result = vendor
                    .add_to_group(&grant.user_id, &grant.group, GrantContext { notify: tell })
                    .await;
                if result.is_ok() {
                    tell = false;
                }
                outcomes.push((grant, result));
            }
            outcomes
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::http::HttpError;
    use crate::vendors::{AccountInfo, NewUser, VendorUser};

    fn group(id: &str) -> VendorGroup {
        VendorGroup {
            id: id.into(),
            name: format!("OFFICERND_{id}"),
        }
    }

    fn grant(user: &str, group_id: &str, created_now: bool) -> PendingGrant {
        PendingGrant {
            group: group(group_id),
            user_id: user.into(),
            email: format!("{user}@example.com"),
            created_now,
        }
    }

    fn flags(jobs: &[GrantJob]) -> Vec<(String, String, Option<bool>)> {
        jobs.iter()
            .flat_map(|job| match job {
                GrantJob::One(g, context) => {
                    vec![(g.user_id.clone(), g.group.id.clone(), Some(context.notify))]
                }
                GrantJob::FirstAccess(chain) => chain
                    .iter()
                    .map(|g| (g.user_id.clone(), g.group.id.clone(), None))
                    .collect(),
            })
            .collect()
    }

    fn sample() -> Vec<PendingGrant> {
        vec![
            grant("new", "a", true),
            grant("old", "a", false),
            grant("new", "b", true),
            grant("new", "c", true),
            grant("old", "b", false),
        ]
    }

    #[test]
    fn never_and_every_flag_each_grant_alike() {
        assert!(flags(&jobs(GrantNotices::Never, sample()))
            .iter()
            .all(|(_, _, notify)| *notify == Some(false)));
        let every = flags(&jobs(GrantNotices::Every, sample()));
        assert_eq!(every.len(), 5);
        assert!(every.iter().all(|(_, _, notify)| *notify == Some(true)));
    }

    #[test]
    fn first_access_chains_only_the_grants_of_users_created_now() {
        let planned = jobs(GrantNotices::FirstAccess, sample());
        assert_eq!(
            planned,
            vec![
                GrantJob::One(grant("old", "a", false), GrantContext { notify: false }),
                GrantJob::One(grant("old", "b", false), GrantContext { notify: false }),
                GrantJob::FirstAccess(vec![
                    grant("new", "a", true),
                    grant("new", "b", true),
                    grant("new", "c", true),
                ]),
            ]
        );
    }

    /// Records grants; fails the first `fail` of them; answers `holds_access` as told.
    struct Recording {
        holds: Result<bool, ()>,
        fail: Mutex<usize>,
        grants: Mutex<Vec<(String, bool)>>,
    }

    impl Recording {
        fn new(holds: Result<bool, ()>, fail: usize) -> Self {
            Self {
                holds,
                fail: Mutex::new(fail),
                grants: Mutex::new(Vec::new()),
            }
        }
    }

    fn unavailable() -> VendorError {
        VendorError::Http(HttpError::InvalidRequest("unavailable".into()))
    }

    impl DoorVendor for Recording {
        async fn check(&self) -> Result<AccountInfo, VendorError> {
            Ok(AccountInfo::default())
        }
        async fn list_groups(&self) -> Result<Vec<VendorGroup>, VendorError> {
            Ok(Vec::new())
        }
        async fn list_users(&self) -> Result<Vec<VendorUser>, VendorError> {
            Ok(Vec::new())
        }
        async fn list_group_members(&self, _: &VendorGroup) -> Result<Vec<String>, VendorError> {
            Ok(Vec::new())
        }
        async fn create_user(&self, _: &NewUser) -> Result<VendorUser, VendorError> {
            Err(unavailable())
        }
        async fn add_to_group(
            &self,
            _: &str,
            group: &VendorGroup,
            context: GrantContext,
        ) -> Result<(), VendorError> {
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(unavailable());
            }
            self.grants
                .lock()
                .unwrap()
                .push((group.id.clone(), context.notify));
            Ok(())
        }
        async fn remove_from_group(&self, _: &str, _: &VendorGroup) -> Result<(), VendorError> {
            Ok(())
        }
        async fn holds_access(&self, _: &str) -> Result<bool, VendorError> {
            self.holds.map_err(|()| unavailable())
        }
    }

    fn chain() -> GrantJob {
        GrantJob::FirstAccess(vec![
            grant("new", "a", true),
            grant("new", "b", true),
            grant("new", "c", true),
        ])
    }

    #[tokio::test]
    async fn the_email_rides_on_the_first_grant_that_succeeds() {
        let vendor = Recording::new(Ok(false), 0);
        let outcomes = run(&vendor, chain()).await;
        assert!(outcomes.iter().all(|(_, result)| result.is_ok()));
        assert_eq!(
            *vendor.grants.lock().unwrap(),
            vec![("a".into(), true), ("b".into(), false), ("c".into(), false)]
        );

        let vendor = Recording::new(Ok(false), 1);
        let outcomes = run(&vendor, chain()).await;
        assert!(outcomes[0].1.is_err());
        assert_eq!(
            *vendor.grants.lock().unwrap(),
            vec![("b".into(), true), ("c".into(), false)],
            "the failed grant's email moves to the next one"
        );
    }

    #[tokio::test]
    async fn nobody_is_told_who_already_holds_access_or_when_that_cannot_be_read() {
        for holds in [Ok(true), Err(())] {
            let vendor = Recording::new(holds, 0);
            let outcomes = run(&vendor, chain()).await;
            assert_eq!(outcomes.len(), 3);
            assert!(
                vendor.grants.lock().unwrap().iter().all(|(_, n)| !n),
                "{holds:?}"
            );
        }
    }
}
