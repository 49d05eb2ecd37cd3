//! A crash between any two steps of a sync loses nothing and duplicates nothing: for every
//! point in a sync, the process "dies" there (the write in flight reaches the vendor but its
//! answer is lost, later writes never happen), a fresh process syncs again, and the vendor ends
//! in exactly the desired state with no user created twice and none deleted.

use std::sync::atomic::{AtomicUsize, Ordering};

use flexgate::api::vendor_connection::BrivoMobilePassTarget;
use flexgate::http::HttpError;
use flexgate::sandbox;
use flexgate::sync::{self, DesiredGroup, Mode, Person, SnapshotHealth, SyncRequest};
use flexgate::vendors::{
    brivo, kisi, salto_ks, AccountInfo, DoorVendor, GrantContext, GrantNotices, NewUser,
    VendorError, VendorGroup, VendorUser,
};

/// Lets `budget` writes through; the next one is performed but its answer is lost; every later
/// write fails without reaching the vendor, as if the process had died.
struct Crashing<'a, V> {
    inner: &'a V,
    budget: usize,
    writes: AtomicUsize,
}

fn lost() -> VendorError {
    VendorError::Http(HttpError::InvalidRequest("the process died here".into()))
}

impl<V: DoorVendor> Crashing<'_, V> {
    /// Whether this write happens at all, and whether its answer survives.
    fn next_write(&self) -> (bool, bool) {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        (n <= self.budget, n < self.budget)
    }
}

impl<V: DoorVendor> DoorVendor for Crashing<'_, V> {
    async fn check(&self) -> Result<AccountInfo, VendorError> {
        self.inner.check().await
    }
    async fn list_groups(&self) -> Result<Vec<VendorGroup>, VendorError> {
        self.inner.list_groups().await
    }
    async fn list_users(&self) -> Result<Vec<VendorUser>, VendorError> {
        self.inner.list_users().await
    }
    async fn list_group_members(&self, group: &VendorGroup) -> Result<Vec<String>, VendorError> {
        self.inner.list_group_members(group).await
    }
    fn grant_notices(&self) -> GrantNotices {
        self.inner.grant_notices()
    }
    async fn holds_access(&self, user_id: &str) -> Result<bool, VendorError> {
        self.inner.holds_access(user_id).await
    }
    async fn create_user(&self, user: &NewUser) -> Result<VendorUser, VendorError> {
        match self.next_write() {
            (false, _) => Err(lost()),
            (true, survives) => {
                let created = self.inner.create_user(user).await;
                if survives {
                    created
                } else {
                    Err(lost())
                }
            }
        }
    }
    async fn add_to_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
        context: GrantContext,
    ) -> Result<(), VendorError> {
        match self.next_write() {
            (false, _) => Err(lost()),
            (true, survives) => {
                let added = self.inner.add_to_group(user_id, group, context).await;
                if survives {
                    added
                } else {
                    Err(lost())
                }
            }
        }
    }
    async fn remove_from_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
    ) -> Result<(), VendorError> {
        match self.next_write() {
            (false, _) => Err(lost()),
            (true, survives) => {
                let removed = self.inner.remove_from_group(user_id, group).await;
                if survives {
                    removed
                } else {
                    Err(lost())
                }
            }
        }
    }
}

fn people() -> Vec<Person> {
    (0..4)
        .map(|i| Person {
            officernd_id: format!("{:024x}", 0xc4a5_0000_u64 + i),
            first_name: format!("Crash{i}"),
            last_name: "Test".into(),
            email: format!("crash{i}@example.com"),
            phone: Some(format!("+44 20 7946 01{i:02}")),
        })
        .collect()
}

fn request(group: &VendorGroup) -> SyncRequest {
    SyncRequest {
        groups: vec![DesiredGroup {
            group: group.clone(),
            people: people(),
        }],
        mode: Mode::Apply,
        snapshot: SnapshotHealth::Complete { members: 4 },
        max_revocation_percent: 100,
        acknowledged_plan: None,
    }
}

/// What the vendor holds after a sweep step.
struct VendorState {
    /// The group's members' emails.
    members: Vec<String>,
    /// Every user's email.
    users: Vec<String>,
    /// The addresses the vendor emailed about their access, repeats kept; `None` for a vendor
    /// that sends no such email.
    notified: Option<Vec<String>>,
}

/// Runs the crash sweep for one vendor: `setup` starts a fresh simulator with the group (and
/// one stale member to revoke) and returns a client factory, the group, and a state reader.
async fn sweep<V, S, Fut>(vendor: &str, setup: S)
where
    V: DoorVendor,
    S: Fn() -> Fut,
    Fut: std::future::Future<
        Output = (
            Box<dyn Fn() -> V>,
            VendorGroup,
            Box<dyn Fn() -> VendorState>,
        ),
    >,
{
    let expected: Vec<String> = people().iter().map(|p| p.email.clone()).collect();
    let mut total_writes = None;
    let mut budget = 0;
    while total_writes.is_none_or(|total| budget <= total) {
        let (client, group, state) = setup().await;
        let first = client();
        let crashing = Crashing {
            inner: &first,
            budget,
            writes: AtomicUsize::new(0),
        };
        let report = sync::run(&crashing, &request(&group))
            .await
            .expect("listing works");
        if total_writes.is_none() {
            // The first run's budget is 0; count how many writes a full sync needs.
            let full = report.groups[0].plan.grants.len()
                + report.groups[0]
                    .plan
                    .grants
                    .iter()
                    .filter(|g| g.user_id.is_none())
                    .count()
                + report.groups[0].plan.revokes.len();
            total_writes = Some(full);
        }
        // A new process, a new client: sync again until it settles.
        for _ in 0..3 {
            let report = sync::run(&client(), &request(&group))
                .await
                .expect("restart sync");
            if report.failures.is_empty() && report.pending() == 0 {
                break;
            }
        }
        let VendorState {
            mut members,
            users,
            notified,
        } = state();
        members.sort();
        assert_eq!(
            members, expected,
            "{vendor}: crash after {budget} writes left the group wrong"
        );
        let mut lowered: Vec<String> = users.iter().map(|e| e.to_ascii_lowercase()).collect();
        let before = lowered.len();
        lowered.sort();
        lowered.dedup();
        assert_eq!(
            lowered.len(),
            before,
            "{vendor}: crash after {budget} writes created a user twice: {users:?}"
        );
        assert!(
            lowered.contains(&"stale@example.com".to_owned()),
            "{vendor}: an account was deleted"
        );
        if let Some(notified) = notified {
            let mut once = notified.clone();
            once.sort();
            once.dedup();
            assert_eq!(
                once.len(),
                notified.len(),
                "{vendor}: crash after {budget} writes emailed someone twice: {notified:?}"
            );
            if total_writes.is_some_and(|total| budget >= total) {
                assert_eq!(
                    once, expected,
                    "{vendor}: without a crash everyone is told once"
                );
            }
        }
        budget += 1;
    }
    assert!(
        total_writes.unwrap_or_default() >= 9,
        "{vendor}: the sweep covered {total_writes:?} writes"
    );
}

#[tokio::test]
async fn kisi_survives_a_crash_between_any_two_writes() {
    sweep("Kisi", || async {
        let sim = sandbox::kisi::Simulator::start(Default::default())
            .await
            .unwrap();
        let group = VendorGroup {
            id: sim.add_group("OFFICERND_Crash"),
            name: "OFFICERND_Crash".into(),
        };
        let stale = sim.add_user("Stale Person", "stale@example.com").unwrap();
        sim.dashboard_add_to_group(&stale, &group.id).unwrap();
        let config = sim.client_config().unwrap();
        let group_id = group.id.clone();
        let sim = std::sync::Arc::new(sim);
        let reader = sim.clone();
        let client: Box<dyn Fn() -> kisi::KisiClient> = Box::new(move || {
            let mut config = config.clone();
            config.requests_per_second = 10_000.0;
            kisi::KisiClient::new(config).unwrap()
        });
        let state: Box<dyn Fn() -> VendorState> = Box::new(move || VendorState {
            members: reader.group_member_emails(&group_id),
            users: reader.users().iter().map(|u| u.email.clone()).collect(),
            notified: Some(reader.notified_emails()),
        });
        (client, group, state)
    })
    .await;
}

#[tokio::test]
async fn salto_ks_survives_a_crash_between_any_two_writes() {
    sweep("Salto KS", || async {
        let sim = sandbox::salto_ks::start(Default::default()).await.unwrap();
        let group = VendorGroup {
            id: sim.add_group("OFFICERND_Crash"),
            name: "OFFICERND_Crash".into(),
        };
        sim.add_user("Stale", "Person", Some("stale@example.com"));
        sim.dashboard_add_to_group(&group.id, "stale@example.com")
            .unwrap();
        let config = sim.client_config().unwrap();
        let group_id = group.id.clone();
        let sim = std::sync::Arc::new(sim);
        let reader = sim.clone();
        let client: Box<dyn Fn() -> salto_ks::SaltoKsClient> = Box::new(move || {
            let mut config = config.clone();
            config.requests_per_second = 10_000.0;
            salto_ks::SaltoKsClient::new(config).unwrap()
        });
        let state: Box<dyn Fn() -> VendorState> = Box::new(move || VendorState {
            members: reader.group_member_emails(&group_id),
            users: reader
                .users()
                .iter()
                .filter_map(|u| u.email.clone())
                .filter(|e| e.contains('@') && !e.starts_with("flexgate-service"))
                .collect(),
            notified: None,
        });
        (client, group, state)
    })
    .await;
}

#[tokio::test]
async fn brivo_survives_a_crash_between_any_two_writes() {
    sweep("Brivo", || async {
        let sim = sandbox::brivo::Simulator::start(Default::default())
            .await
            .unwrap();
        let group = VendorGroup {
            id: sim.add_group("OFFICERND_Crash"),
            name: "OFFICERND_Crash".into(),
        };
        let stale = sim
            .add_user(sandbox::brivo::SeedUser::new("Stale", "Person").email("stale@example.com"));
        sim.dashboard_add_to_group(&group.id, &stale).unwrap();
        let config = sim
            .client_config(BrivoMobilePassTarget::BrandedApp)
            .unwrap();
        let group_id = group.id.clone();
        let sim = std::sync::Arc::new(sim);
        let reader = sim.clone();
        let client: Box<dyn Fn() -> brivo::BrivoClient> = Box::new(move || {
            let mut config = config.clone();
            config.requests_per_second = 10_000.0;
            brivo::BrivoClient::new(config).unwrap()
        });
        let state: Box<dyn Fn() -> VendorState> = Box::new(move || {
            let users = reader.users();
            let emails = users
                .iter()
                .filter_map(|u| u["emails"][0]["address"].as_str().map(str::to_owned))
                .collect();
            VendorState {
                members: reader.group_member_emails(&group_id),
                users: emails,
                notified: None,
            }
        });
        (client, group, state)
    })
    .await;
}

#[tokio::test]
async fn timeouts_lose_nothing_and_duplicate_nothing() {
    use flexgate::sandbox::faults::Route;
    use std::time::Duration;

    let sim = sandbox::kisi::Simulator::start(Default::default())
        .await
        .unwrap();
    let group = VendorGroup {
        id: sim.add_group("OFFICERND_Slow"),
        name: "OFFICERND_Slow".into(),
    };
    // A third of all requests are handled but answered after the client's per-attempt
    // timeout: those writes land at the vendor without the client ever hearing back.
    sim.faults().add(
        flexgate::sandbox::faults::FaultRule::new(
            Route::any(),
            flexgate::sandbox::faults::Fault::SlowAnswer(Duration::from_millis(400)),
        )
        .with_probability(0.33),
    );
    let mut config = sim.client_config().unwrap();
    config.requests_per_second = 10_000.0;
    config.attempt_timeout = Duration::from_millis(150);
    let client = kisi::KisiClient::new(config).unwrap();
    let mut settled = false;
    for _ in 0..15 {
        let report = sync::run(&client, &request(&group)).await;
        if let Ok(report) = report {
            if report.failures.is_empty() && report.pending() == 0 {
                settled = true;
                break;
            }
        }
    }
    sim.faults().clear();
    assert!(settled, "the sync never settled under timeouts");
    let mut members = sim.group_member_emails(&group.id);
    members.sort();
    let expected: Vec<String> = people().iter().map(|p| p.email.clone()).collect();
    assert_eq!(members, expected);
    let emails: Vec<String> = sim
        .users()
        .iter()
        .map(|u| u.email.to_ascii_lowercase())
        .collect();
    let mut unique = emails.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        emails.len(),
        "a user was created twice: {emails:?}"
    );
    for user in sim.users() {
        assert_eq!(
            sim.access_row_count(&user.id, &group.id),
            1,
            "{} holds duplicate role assignments",
            user.email
        );
    }
}
