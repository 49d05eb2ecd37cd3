//! The Helm chart on the real server: `helm template` applied into the test's namespace, the
//! operator run in this process with a token of the chart's ServiceAccount and the arguments the
//! chart's Deployment gives `flexgate run`, every kind reconciled. Every API call the operator
//! makes goes through a recording layer on its client: the server may refuse none of them, and
//! every permission the chart grants the ServiceAccount must be one of them (least privilege).
//!
//! Both RBAC modes are rendered. In the cluster-wide one the operator still watches the test's
//! namespace only, because other tests share the cluster and run operators of their own on
//! theirs; that each of its lists and watches is also allowed across all namespaces (what
//! `flexgate run` without `--namespace` does) is asked of the server with
//! SelfSubjectAccessReviews under the same token.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use flexgate::api::{AccessGroupBinding, SiteMapping, Vendor, FINALIZER, RECONCILE_REQUESTED_AT};
use flexgate::cli::{Cli, Command};
use flexgate::vendors::kisi::wire::GROUP_ACCESS_ROLE;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use kube::client::ClientBuilder;
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::calls::{Access, Call, Calls};
use crate::support::{
    binding_reason, connection_ready, kubeconfig, mapping_ready, service_account_token,
    token_config, tool, wait_until, Cluster, Operator, World,
};

/// Example bindings with a Kisi group each: two bindings syncing one group at the same moment can
/// race at the vendor on start-up (a PartialFailure Warning, then a successful retry), which is
/// not what this test is about.
const BINDINGS: [&str; 2] = ["hot-desk-lobby", "office-101"];

/// How the chart is told to scope the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `watchNamespace` set: a Role and RoleBinding in that namespace.
    OneNamespace,
    /// The default: a ClusterRole and ClusterRoleBinding.
    AllNamespaces,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_watching_one_namespace_grants_exactly_what_the_operator_uses() {
    exercise(Mode::OneNamespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_watching_all_namespaces_grants_exactly_what_the_operator_uses() {
    exercise(Mode::AllNamespaces).await;
}

#[test]
fn chart_passes_helm_lint_in_both_modes() {
    if kubeconfig().is_none() {
        return;
    }
    for extra in [&[][..], &["--set", "watchNamespace=flexgate-objects"][..]] {
        let output = std::process::Command::new(tool("helm"))
            .args(["lint", "--strict", "charts/flexgate"])
            .args(extra)
            .output()
            .expect("helm runs (put it on PATH or set FLEXGATE_E2E_HELM)");
        assert!(
            output.status.success(),
            "helm lint {extra:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

async fn exercise(mode: Mode) {
    let test = match mode {
        Mode::OneNamespace => "helm-one-namespace",
        Mode::AllNamespaces => "helm-all-namespaces",
    };
    let Some(world) = World::with(
        test,
        &[Vendor::OfficeRnD, Vendor::Kisi, Vendor::Essensys],
        &BINDINGS,
        &["london"],
    )
    .await
    else {
        return;
    };
    let namespace = world.namespace().to_owned();
    // The namespace name is unique per run, so the release's cluster-scoped objects are too.
    let release = namespace.clone();
    let chart = Chart::render(&release, &namespace, mode);
    let _cluster_scoped = chart.cluster_scoped(&world.cluster.kubeconfig, mode);
    chart.apply(&world.cluster);

    // The operator as the chart's Deployment runs it.
    let deployment = chart.one("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let account = chart.one("ServiceAccount")["metadata"]["name"]
        .as_str()
        .expect("ServiceAccount name")
        .to_owned();
    assert_eq!(pod["serviceAccountName"].as_str(), Some(account.as_str()));
    let container = pod["containers"]
        .as_array()
        .and_then(|containers| containers.iter().find(|c| c["name"] == "flexgate"))
        .expect("a flexgate container");
    for (variable, field) in [
        ("POD_NAMESPACE", "metadata.namespace"),
        ("POD_NAME", "metadata.name"),
    ] {
        let source = container["env"]
            .as_array()
            .and_then(|env| env.iter().find(|e| e["name"] == variable))
            .map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"]);
        assert_eq!(
            source.and_then(Value::as_str),
            Some(field),
            "{variable} in {container}"
        );
    }
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("container args")
        .iter()
        .map(|a| a.as_str().expect("string argument").to_owned())
        .collect();
    let cli = Cli::try_parse_from(std::iter::once("flexgate".to_owned()).chain(args.clone()))
        .unwrap_or_else(|error| panic!("flexgate does not accept the chart's {args:?}: {error}"));
    let Command::Run(run) = cli.command else {
        panic!("the chart runs {args:?}, not flexgate run");
    };
    assert!(run.manifests.is_none(), "{args:?}");
    let mut options = world.options("helm-replica");
    options.leader_election = run.leader_election;
    assert!(
        options.leader_election,
        "the chart elects a leader: {args:?}"
    );
    // POD_NAMESPACE, from the Deployment's own namespace.
    options.lease_namespace = deployment["metadata"]["namespace"]
        .as_str()
        .expect("Deployment namespace")
        .to_owned();
    assert_eq!(options.lease_namespace, namespace);
    options.namespace = run.namespace.clone();
    match mode {
        Mode::OneNamespace => assert_eq!(options.namespace.as_deref(), Some(&*namespace)),
        Mode::AllNamespaces => {
            assert_eq!(options.namespace, None, "{args:?}");
            // See the module doc: the all-namespace lists and watches are checked below.
            options.namespace = Some(namespace.clone());
        }
    }

    let token = service_account_token(&world.cluster, &account);
    let config = token_config(&world.cluster.kubeconfig, &token).await;
    let calls = Calls::default();
    let client = ClientBuilder::try_from(config.clone())
        .expect("client")
        .with_layer(&calls)
        .build();
    let unrecorded = Client::try_from(config).expect("client");
    let lease_name = options.lease_name.clone();
    let operator = Operator::start(client, options).await;

    run_everything(&world, &operator, &lease_name, &calls).await;
    operator.stop().await;
    let leases: Api<Lease> = world.api();
    let released = leases.get(&lease_name).await.expect("lease read");
    assert_eq!(
        released.spec.and_then(|s| s.holder_identity),
        None,
        "the lease is released on stop"
    );
    let calls = calls.take();
    let refused: Vec<&Call> = calls.iter().filter(|c| c.status == 403).collect();
    assert!(
        refused.is_empty(),
        "the API server refused the chart's ServiceAccount: {refused:#?}"
    );
    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "Warning Events nobody deserved: {warnings:#?}"
    );
    let unknown: Vec<&Call> = calls.iter().filter(|c| c.access.is_none()).collect();
    assert!(
        unknown.is_empty(),
        "calls outside the resource API: {unknown:#?}"
    );
    let used: BTreeSet<Access> = calls.iter().filter_map(|c| c.access.clone()).collect();
    let grants = chart.grants(&account, &namespace);
    let ungranted: Vec<&Access> = used
        .iter()
        .filter(|access| !grants.iter().any(|grant| grant.allows(access)))
        .collect();
    assert!(
        ungranted.is_empty(),
        "the operator used what the chart does not grant (allowed by some other role?): {ungranted:#?}"
    );
    let unused: Vec<&Grant> = grants
        .iter()
        .filter(|grant| !used.iter().any(|access| grant.allows(access)))
        .collect();
    assert!(
        unused.is_empty(),
        "the chart grants what the operator never used: {unused:#?}\nused: {used:#?}"
    );

    // Whether the ServiceAccount may also list and watch across all namespaces.
    let watched: BTreeSet<(String, String, String)> = used
        .iter()
        .filter(|a| a.verb == "list" || a.verb == "watch")
        .map(|a| (a.group.clone(), a.resource.clone(), a.verb.clone()))
        .collect();
    assert!(!watched.is_empty(), "{used:#?}");
    for (group, resource, verb) in &watched {
        let allowed = can(&unrecorded, group, resource, verb).await;
        assert_eq!(
            allowed,
            mode == Mode::AllNamespaces,
            "{verb} {resource}.{group} in all namespaces with {mode:?}"
        );
    }
    world.finish().await;
}

/// Every kind reconciled with the chart's permissions: connections and bindings Ready, the
/// SiteMapping approved and synced, a binding deleted through its finalizer, the Lease held.
async fn run_everything(world: &World, operator: &Operator, lease_name: &str, calls: &Calls) {
    let leases: Api<Lease> = world.api();
    wait(calls, "the operator holds the leader lease", async || {
        leases
            .get_opt(lease_name)
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity)
            .as_deref()
            == Some("helm-replica")
    })
    .await;
    for connection in &world.objects.connections {
        let name = connection.name_any();
        wait(
            calls,
            &format!("connection {name} is Ready=True"),
            async || {
                world
                    .connection(&name)
                    .await
                    .and_then(|c| connection_ready(&c))
                    .is_some_and(|(status, _)| status == "True")
            },
        )
        .await;
    }
    for name in BINDINGS {
        wait(calls, &format!("{name} is Synced"), async || {
            world
                .binding(name)
                .await
                .and_then(|b| binding_reason(&b, 1))
                .as_deref()
                == Some("Synced")
        })
        .await;
    }

    wait(calls, "london is AwaitingApproval", async || {
        world
            .site_mapping("london")
            .await
            .and_then(|m| mapping_ready(&m, 1))
            .is_some_and(|(_, reason)| reason == "AwaitingApproval")
    })
    .await;
    world
        .merge::<SiteMapping>("london", json!({"spec": {"approved": true}}))
        .await;
    wait(calls, "london is Synced after approval", async || {
        world
            .site_mapping("london")
            .await
            .and_then(|m| mapping_ready(&m, 2))
            == Some(("True".to_owned(), "Synced".to_owned()))
    })
    .await;
    assert_eq!(operator.http_status("/readyz").await, 200);

    // Drift at the vendor is corrected on a requested reconcile, and the second Synced Event
    // of the binding is recorded as a series of the first (a patch of it).
    let office = "OFFICERND_Office 101";
    let members = world.sandbox.group_members(Vendor::Kisi, office);
    assert!(!members.is_empty());
    let group = world.sandbox.group_id(Vendor::Kisi, office);
    let row = world
        .sandbox
        .kisi
        .role_assignments()
        .into_iter()
        .find(|a| a.group_id == group && a.role_id == GROUP_ACCESS_ROLE)
        .expect("an access row in the office group");
    assert!(world.sandbox.kisi.dashboard_remove_assignment(&row.id));
    assert_ne!(world.sandbox.group_members(Vendor::Kisi, office), members);
    let requested = "2026-11-23T08:00:01Z";
    world
        .merge::<AccessGroupBinding>(
            "office-101",
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: requested}}}),
        )
        .await;
    wait(calls, "office-101 corrected the drift", async || {
        let handled = world
            .binding("office-101")
            .await
            .and_then(|b| b.status?.last_handled_reconcile_at);
        handled.as_deref() == Some(requested)
            && world.sandbox.group_members(Vendor::Kisi, office) == members
    })
    .await;
    wait(
        calls,
        "office-101 has a series of Synced Events",
        async || {
            world
                .cluster
                .events_about("office-101", "Synced")
                .await
                .iter()
                .any(|e| e.series.as_ref().is_some_and(|s| s.count >= 2))
        },
    )
    .await;

    // Deleting a binding revokes its access, then releases the finalizer.
    let binding = world.binding("office-101").await.expect("office-101");
    assert!(binding.finalizers().contains(&FINALIZER.to_owned()));
    world
        .api::<AccessGroupBinding>()
        .delete("office-101", &DeleteParams::default())
        .await
        .expect("binding deleted");
    wait(calls, "office-101 is gone", async || {
        world.binding("office-101").await.is_none()
    })
    .await;
    assert_eq!(
        world.sandbox.group_members(Vendor::Kisi, office),
        Vec::<String>::new()
    );
}

/// [`wait_until`], failing at once when the server refused one of the operator's calls (the
/// operator would retry it until the wait times out).
async fn wait(calls: &Calls, what: &str, mut check: impl AsyncFnMut() -> bool) {
    wait_until(what, async || {
        let refused = calls.refused();
        assert!(
            refused.is_empty(),
            "the API server refused the chart's ServiceAccount: {refused:#?}"
        );
        check().await
    })
    .await;
}

/// What the server says about `verb` on `resource` in all namespaces for the client's user.
async fn can(client: &Client, group: &str, resource: &str, verb: &str) -> bool {
    let (resource, subresource) = match resource.split_once('/') {
        Some((resource, subresource)) => (resource, Some(subresource.to_owned())),
        None => (resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                subresource,
                verb: Some(verb.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("access review")
        .status
        .is_some_and(|s| s.allowed)
}

/// The chart as `helm template` renders it.
struct Chart {
    text: String,
    objects: Vec<Value>,
}

impl Chart {
    fn render(release: &str, namespace: &str, mode: Mode) -> Self {
        let mut command = std::process::Command::new(tool("helm"));
        command.args([
            "template",
            release,
            "charts/flexgate",
            "--namespace",
            namespace,
        ]);
        if mode == Mode::OneNamespace {
            command.args(["--set", &format!("watchNamespace={namespace}")]);
        }
        let output = command
            .output()
            .expect("helm runs (put it on PATH or set FLEXGATE_E2E_HELM)");
        assert!(
            output.status.success(),
            "helm template: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).expect("UTF-8 output");
        let objects = serde_yaml::Deserializer::from_str(&text)
            .map(|document| Value::deserialize(document).expect("rendered YAML"))
            .filter(|object| !object.is_null())
            .collect();
        Chart { text, objects }
    }

    fn one(&self, kind: &str) -> &Value {
        let found: Vec<&Value> = self.objects.iter().filter(|o| o["kind"] == kind).collect();
        assert_eq!(found.len(), 1, "one {kind} expected in\n{}", self.text);
        found[0]
    }

    /// The objects without a namespace, deleted when the guard drops. Every namespaced object
    /// must name its namespace, or `helm template | kubectl apply` would put it elsewhere.
    fn cluster_scoped(&self, kubeconfig: &Path, mode: Mode) -> ClusterScoped {
        let objects: Vec<(String, String)> = self
            .objects
            .iter()
            .filter(|o| o["metadata"]["namespace"].is_null())
            .map(|o| {
                (
                    o["kind"].as_str().unwrap_or_default().to_owned(),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        let kinds: BTreeSet<&str> = objects.iter().map(|(kind, _)| kind.as_str()).collect();
        let expected: BTreeSet<&str> = match mode {
            Mode::OneNamespace => BTreeSet::new(),
            Mode::AllNamespaces => ["ClusterRole", "ClusterRoleBinding"].into(),
        };
        assert_eq!(kinds, expected, "objects without a namespace: {objects:?}");
        ClusterScoped {
            kubeconfig: kubeconfig.to_owned(),
            objects,
        }
    }

    /// `kubectl apply --server-side` of the rendered chart: the server validates every object.
    fn apply(&self, cluster: &Cluster) {
        let file = std::env::temp_dir().join(format!("{}-chart.yaml", cluster.namespace));
        std::fs::write(&file, &self.text).expect("rendered chart written");
        let path = file.to_string_lossy().into_owned();
        let (ok, stdout, stderr) = cluster.kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=helm",
            "-f",
            &path,
        ]);
        let _ = std::fs::remove_file(&file);
        assert!(ok, "the server refused the chart: {stderr}\n{stdout}");
    }

    /// What the chart's bindings grant `account` of `namespace`, one verb on one resource (and
    /// one name, when the rule names some) per entry.
    fn grants(&self, account: &str, namespace: &str) -> Vec<Grant> {
        let mut grants = Vec::new();
        for binding in self
            .objects
            .iter()
            .filter(|o| o["kind"] == "RoleBinding" || o["kind"] == "ClusterRoleBinding")
        {
            let subjects = binding["subjects"].as_array().cloned().unwrap_or_default();
            if !subjects.iter().any(|s| {
                s["kind"] == "ServiceAccount" && s["name"] == account && s["namespace"] == namespace
            }) {
                continue;
            }
            let scope = binding["metadata"]["namespace"].as_str().map(str::to_owned);
            let role_ref = &binding["roleRef"];
            let role = self
                .objects
                .iter()
                .find(|o| {
                    o["kind"] == role_ref["kind"]
                        && o["metadata"]["name"] == role_ref["name"]
                        && (role_ref["kind"] == "ClusterRole"
                            || o["metadata"]["namespace"] == binding["metadata"]["namespace"])
                })
                .unwrap_or_else(|| panic!("the chart binds a role it does not ship: {role_ref}"));
            for rule in role["rules"].as_array().expect("rules") {
                let list = |field: &str| -> Vec<String> {
                    rule[field]
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .map(|i| i.as_str().expect("string").to_owned())
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let names: Vec<Option<String>> = match list("resourceNames") {
                    names if names.is_empty() => vec![None],
                    names => names.into_iter().map(Some).collect(),
                };
                for group in list("apiGroups") {
                    for resource in list("resources") {
                        for verb in list("verbs") {
                            assert!(
                                ![&group, &resource, &verb].contains(&&"*".to_owned()),
                                "a wildcard grant: {rule}"
                            );
                            for name in &names {
                                grants.push(Grant {
                                    namespace: scope.clone(),
                                    group: group.clone(),
                                    resource: resource.clone(),
                                    verb: verb.clone(),
                                    name: name.clone(),
                                });
                            }
                        }
                    }
                }
            }
        }
        assert!(!grants.is_empty(), "nothing bound to {account}");
        grants
    }
}

/// The release's cluster-scoped objects, deleted however the test ends.
struct ClusterScoped {
    kubeconfig: PathBuf,
    objects: Vec<(String, String)>,
}

impl Drop for ClusterScoped {
    fn drop(&mut self) {
        for (kind, name) in &self.objects {
            let _ = std::process::Command::new(tool("kubectl"))
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(["delete", kind, name, "--ignore-not-found", "--wait=false"])
                .output();
        }
    }
}

/// One permission of a Role or ClusterRole; `namespace` is `None` for a ClusterRoleBinding.
struct Grant {
    namespace: Option<String>,
    group: String,
    resource: String,
    verb: String,
    name: Option<String>,
}

impl Grant {
    fn allows(&self, access: &Access) -> bool {
        self.group == access.group
            && self.resource == access.resource
            && self.verb == access.verb
            && (self.namespace.is_none() || self.namespace == access.namespace)
            && (self.name.is_none() || self.name == access.name)
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {}.{}", self.verb, self.resource, group)?;
        match &self.namespace {
            Some(namespace) => write!(f, " in {namespace}")?,
            None => write!(f, " in every namespace")?,
        }
        match &self.name {
            Some(name) => write!(f, " named {name}"),
            None => Ok(()),
        }
    }
}
