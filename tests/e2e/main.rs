//! The end-to-end suite on a real Kubernetes API server. Set `FLEXGATE_E2E_KUBECONFIG` to a
//! kubeconfig with cluster-admin rights (`.ci/run` starts `../shared/kube/up` and sets it; any
//! kind, k3d or minikube cluster works too); without it every test passes after printing why it
//! was skipped. Each test gets a namespace of its own, the sandbox simulators on 127.0.0.1 and
//! an operator running in this process on that namespace, so tests run in parallel.

mod support;

mod bindings;
mod helm;
mod horizon;
mod hosts;
mod invalid;
mod lifecycle;
mod reads;
mod site_mapping;
mod status;
mod watches;
mod webhooks;
