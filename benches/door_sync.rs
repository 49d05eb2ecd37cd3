//! Door sync benchmark: a 5,000-person group converging from empty, then a steady-state sync
//! with nothing changed, against each vendor's simulator through the real client. Prints the
//! write calls (which must equal the diff), the read calls, the wall time measured here with the
//! client's rate limit lifted, and the wall time the same calls need under the vendor's rate
//! limit (calls ÷ requests per second: the sync is rate-limit bound, so that is the floor).
//!
//! `cargo bench --bench door_sync`; `FLEXGATE_BENCH_QUICK=1` uses 200 people.

use std::time::Instant;

use axum::http::Method;
use flexgate::api::vendor_connection::BrivoMobilePassTarget;
use flexgate::sandbox;
use flexgate::sandbox::faults::{Faults, Route};
use flexgate::sync::{self, DesiredGroup, Mode, Person, SnapshotHealth, SyncRequest};
use flexgate::vendors::{brivo, kisi, salto_ks, DoorVendor, VendorGroup};

fn people(count: usize) -> Vec<Person> {
    (0..count)
        .map(|i| Person {
            officernd_id: format!("{:024x}", 0xbe9c_0000_u64 + i as u64),
            first_name: format!("Member{i}"),
            last_name: "Bench".to_owned(),
            email: format!("member{i}@bench.example"),
            phone: None,
        })
        .collect()
}

fn request(group: VendorGroup, people: Vec<Person>) -> SyncRequest {
    SyncRequest {
        groups: vec![DesiredGroup { group, people }],
        mode: Mode::Apply,
        snapshot: SnapshotHealth::Complete { members: 50_000 },
        max_revocation_percent: 20,
        acknowledged_plan: None,
    }
}

fn count(faults: &Faults, write: bool) -> u64 {
    faults
        .request_counts()
        .iter()
        .filter(|(key, _)| {
            let method = key.split(' ').next().unwrap_or_default();
            (method != Method::GET.as_str()) == write
        })
        .map(|(_, n)| n)
        .sum()
}

async fn measure<V: DoorVendor>(
    vendor: &str,
    client: &V,
    faults: &Faults,
    group: VendorGroup,
    size: usize,
    rps: f64,
) {
    let desired = people(size);
    for (phase, expected_writes) in [
        ("converge from empty", 2 * size as u64),
        ("steady state", 0),
    ] {
        faults.reset_counts();
        let started = Instant::now();
        let report = sync::run(client, &request(group.clone(), desired.clone()))
            .await
            .expect("sync");
        let wall = started.elapsed();
        let writes = count(faults, true);
        let reads = count(faults, false);
        let token_calls = faults.requests_matching(&Route::path_suffix("/token"))
            + faults.requests_matching(&Route::path_suffix("/oauth/token"));
        let diff = u64::from(report.created_users)
            + u64::from(report.applied_grants)
            + u64::from(report.applied_revokes);
        println!(
            "{vendor:<9} {phase:<20} people {size:>5}  writes {writes:>6} (diff {diff:>6}, expected {expected_writes:>6})  reads {reads:>5}  token calls {token_calls:>2}  wall {:>7.2} s  under {rps} req/s: {:>8.1} s",
            wall.as_secs_f64(),
            (writes + reads) as f64 / rps
        );
        assert_eq!(report.failures.len(), 0, "{:?}", report.failures.first());
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size = if std::env::var("FLEXGATE_BENCH_QUICK").is_ok() {
        200
    } else {
        5_000
    };
    println!("door sync benchmark: one managed group, {size} people, simulators on 127.0.0.1");

    let sim = sandbox::kisi::Simulator::start(Default::default())
        .await
        .expect("kisi");
    let group = VendorGroup {
        id: sim.add_group("OFFICERND_Bench"),
        name: "OFFICERND_Bench".into(),
    };
    let mut config = sim.client_config().expect("config");
    config.requests_per_second = 100_000.0;
    let client = kisi::KisiClient::new(config).expect("client");
    measure("Kisi", &client, sim.faults(), group, size, 5.0).await;

    let sim = sandbox::salto_ks::start(Default::default())
        .await
        .expect("salto");
    let group = VendorGroup {
        id: sim.add_group("OFFICERND_Bench"),
        name: "OFFICERND_Bench".into(),
    };
    let mut config = sim.client_config().expect("config");
    config.requests_per_second = 100_000.0;
    let client = salto_ks::SaltoKsClient::new(config).expect("client");
    measure("Salto KS", &client, sim.faults(), group, size, 10.0).await;

    let sim = sandbox::brivo::Simulator::start(Default::default())
        .await
        .expect("brivo");
    let group = VendorGroup {
        id: sim.add_group("OFFICERND_Bench"),
        name: "OFFICERND_Bench".into(),
    };
    let mut config = sim
        .client_config(BrivoMobilePassTarget::BrandedApp)
        .expect("config");
    config.requests_per_second = 100_000.0;
    let client = brivo::BrivoClient::new(config).expect("client");
    measure("Brivo", &client, sim.faults(), group, size, 20.0).await;
}
