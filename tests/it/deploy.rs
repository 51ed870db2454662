//! deploy/: the Kubernetes manifests against Kubernetes' own schemas (strict,
//! offline, with the schemas PyPI's kubernetes-validate bundles) and against
//! the server's real flags; the image's settings against the same flags, and
//! its HEALTHCHECK run as a real probe.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use learning_messenger::proto::health::health_check_response::ServingStatus;
use serde_json::Value;

use crate::support::{run_bounded, venv_program, TestServer, SERVER_BIN};

/// The oldest Kubernetes the manifests are written for (gRPC probes are GA
/// since 1.27), and the newest whose schemas kubernetes-validate bundles.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30", "1.37"];

fn deploy_dir() -> PathBuf {
    crate::support::project_root().join("deploy")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("k8s"))
        .expect("deploy/k8s exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "deploy/k8s holds the manifests: {files:?}"
    );
    files
}

/// kubernetes-validate in strict mode: unknown fields are errors.
fn validate(files: &[PathBuf], version: &str) -> crate::support::BoundedOutput {
    let mut command = Command::new(venv_program("kubernetes-validate"));
    command
        .args(["--strict", "--kubernetes-version", version])
        .args(files);
    run_bounded(command, Duration::from_secs(120))
}

#[test]
fn manifests_pass_kubernetes_schemas_in_strict_mode() {
    let files = manifests();
    for version in KUBERNETES_VERSIONS {
        let output = validate(&files, version);
        let said = format!("{}{}", output.stdout, output.stderr);
        assert!(
            output.status.is_some_and(|status| status.success()),
            "kubernetes-validate {version} failed:\n{said}"
        );
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy();
            assert!(
                said.lines().any(|line| line.contains(&*name)
                    && line.contains("passed for resource")
                    && line.contains(&format!("against version {version}"))),
                "{name} was not reported as passing {version}:\n{said}"
            );
        }
    }
}

/// The check above can fail: a misspelt field is caught.
#[test]
fn strict_validation_rejects_an_unknown_field() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = std::fs::read_to_string(deploy_dir().join("k8s/deployment.yaml")).unwrap();
    let misspelt = deployment.replacen("  replicas: 3", "  replica: 3", 1);
    assert_ne!(misspelt, deployment, "the Deployment sets replicas: 3");
    let path = dir.path().join("deployment.yaml");
    std::fs::write(&path, misspelt).unwrap();
    let output = validate(&[path], KUBERNETES_VERSIONS[1]);
    assert!(
        output.status.is_some_and(|status| !status.success()),
        "a misspelt field passed: {}{}",
        output.stdout,
        output.stderr
    );
    assert!(
        output.stderr.contains("'replica' was unexpected")
            || output.stdout.contains("'replica' was unexpected"),
        "{}{}",
        output.stdout,
        output.stderr
    );
}

/// Every document of a YAML file, as JSON (PyYAML, from the venv).
fn documents(path: &Path) -> Vec<Value> {
    let mut command = Command::new(venv_program("python3"));
    command
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(path);
    let output = run_bounded(command, Duration::from_secs(30));
    assert!(
        output.status.is_some_and(|status| status.success()),
        "cannot read {}: {}",
        path.display(),
        output.stderr
    );
    match serde_json::from_str(&output.stdout).expect("PyYAML's JSON") {
        Value::Array(documents) => documents,
        other => panic!("not a list of documents: {other}"),
    }
}

/// Every resource of deploy/k8s, by kind.
fn resources(kind: &str) -> Vec<Value> {
    manifests()
        .iter()
        .flat_map(|path| documents(path))
        .filter(|resource| resource["kind"] == kind)
        .collect()
}

/// The resources of `kind` that belong to app `app` (its name label).
fn of_app(kind: &str, app: &str) -> Vec<Value> {
    resources(kind)
        .into_iter()
        .filter(|resource| resource["metadata"]["labels"]["app.kubernetes.io/name"] == app)
        .collect()
}

/// The server's app; the development Redis (redis.yaml) is another.
const APP: &str = "learning-messenger";
const REDIS_APP: &str = "learning-messenger-redis";

fn one(kind: &str) -> Value {
    one_of(kind, APP)
}

fn one_of(kind: &str, app: &str) -> Value {
    let mut found = of_app(kind, app);
    assert_eq!(found.len(), 1, "one {kind} of {app} in deploy/k8s");
    found.remove(0)
}

/// What `server --check-config ARGS` says it would serve: the flags parsed
/// by the real server, without listening.
fn checked_config(args: &[String]) -> Value {
    let mut command = Command::new(SERVER_BIN);
    command.arg("--check-config").args(args);
    let output = run_bounded(command, Duration::from_secs(30));
    assert!(
        output.status.is_some_and(|status| status.success()),
        "server rejects {args:?}: {}",
        output.stderr
    );
    serde_json::from_str(output.stdout.trim())
        .unwrap_or_else(|e| panic!("--check-config printed no JSON ({e}): {}", output.stdout))
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("{addr} has no port"))
}

/// `$(NAME)` in a container's args is expanded by Kubernetes from its env;
/// here with a stand-in value, as a pod would see it.
fn expand(arg: &str, env: &[Value]) -> String {
    env.iter().fold(arg.to_owned(), |arg, var| {
        let name = var["name"].as_str().expect("env name");
        arg.replace(
            &format!("$({name})"),
            &format!("{}-value", name.to_lowercase()),
        )
    })
}

#[test]
fn deployment_agrees_with_the_server_flags() {
    let deployment = one("Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 3);
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(&spec["selector"]["matchLabels"], labels);

    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let server = &containers[0];
    let env = server["env"].as_array().cloned().unwrap_or_default();
    let args: Vec<String> = server["args"]
        .as_array()
        .expect("the server's flags")
        .iter()
        .map(|arg| expand(arg.as_str().expect("a flag"), &env))
        .collect();
    let config = checked_config(&args);

    // The ports: the server listens where the container port and every
    // probe point, and serves metrics on the metrics port.
    let ports = server["ports"].as_array().expect("ports");
    let port_named = |name: &str| {
        ports
            .iter()
            .find(|port| port["name"] == name)
            .unwrap_or_else(|| panic!("no port named {name}"))["containerPort"]
            .as_u64()
            .unwrap()
    };
    let grpc_port = port_of(config["addr"].as_str().unwrap());
    assert_eq!(port_named("grpc"), grpc_port);
    assert_eq!(
        port_named("metrics"),
        port_of(config["metrics_addr"].as_str().expect("metrics on"))
    );
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        assert_eq!(
            server[probe]["grpc"]["port"].as_u64(),
            Some(grpc_port),
            "{probe} is a grpc probe on the server's port"
        );
    }
    assert_eq!(config["replica_name"], "pod_name-value");

    // SIGTERM to exit: the drain, then the grace, must fit before SIGKILL.
    let drain = config["drain_ms"].as_u64().unwrap();
    let grace = config["shutdown_grace_ms"].as_u64().unwrap();
    assert!(drain > 0, "replicas drain before they stop");
    let termination_ms = pod["terminationGracePeriodSeconds"].as_u64().unwrap() * 1000;
    assert!(
        termination_ms > drain + grace,
        "terminationGracePeriodSeconds ({termination_ms} ms) must exceed drain + grace ({} ms)",
        drain + grace
    );
    assert!(config["max_connection_age_ms"].as_u64().unwrap() > 0);

    // Resources and a locked-down security context.
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(server["resources"][bound][resource].is_string());
        }
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(server["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(server["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        pod["securityContext"]["runAsUser"]
            .as_u64()
            .map(|uid| uid.to_string()),
        Some(dockerfile().user_id()),
        "the pod runs as the image's user"
    );
}

#[test]
fn services_and_budget_select_the_deployment_pods() {
    let deployment = one("Deployment");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let container_ports: BTreeSet<String> = deployment["spec"]["template"]["spec"]["containers"][0]
        ["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|port| port["name"].as_str().unwrap().to_owned())
        .collect();

    let services = of_app("Service", APP);
    assert_eq!(services.len(), 2, "a headless and a ClusterIP Service");
    for service in &services {
        assert_eq!(&service["spec"]["selector"], labels);
        for port in service["spec"]["ports"].as_array().unwrap() {
            let target = port["targetPort"].as_str().expect("named target ports");
            assert!(
                container_ports.contains(target),
                "{target} is a container port"
            );
        }
    }
    let headless: Vec<_> = services
        .iter()
        .filter(|service| service["spec"]["clusterIP"] == "None")
        .collect();
    assert_eq!(
        headless.len(),
        1,
        "one headless Service, for dns:/// round_robin"
    );
    assert!(services
        .iter()
        .any(|service| service["spec"]["type"] == "ClusterIP"
            && service["spec"]["clusterIP"].is_null()));

    let budget = one("PodDisruptionBudget");
    assert_eq!(&budget["spec"]["selector"]["matchLabels"], labels);
    let replicas = deployment["spec"]["replicas"].as_u64().unwrap();
    let unavailable = budget["spec"]["maxUnavailable"]
        .as_u64()
        .expect("maxUnavailable");
    assert!(unavailable >= 1 && unavailable < replicas);
}

/// The replicas share their rooms through the development Redis: --rooms
/// names its Service and port, and that Service selects the Redis pod.
#[test]
fn the_replicas_rooms_are_on_the_redis_service() {
    let deployment = one("Deployment");
    let server = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| expand(arg.as_str().unwrap(), &[]))
        .collect();
    let config = checked_config(&args);
    let redis = one_of("Deployment", REDIS_APP);
    let service = one_of("Service", REDIS_APP);
    assert_eq!(redis["spec"]["replicas"], 1);
    let labels = &redis["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&service["spec"]["selector"], labels);
    let port = &service["spec"]["ports"][0];
    let container_port = &redis["spec"]["template"]["spec"]["containers"][0]["ports"][0];
    assert_eq!(port["targetPort"], container_port["name"]);
    let expected = format!(
        "redis://{}:{}",
        service["metadata"]["name"].as_str().unwrap(),
        port["port"]
    );
    assert_eq!(config["rooms"], expected.as_str());
}

/// The development Redis refuses writes before its container's memory limit
/// and never evicts a room's keys: its args give a real redis-server
/// `maxmemory` below the limit and `noeviction`.
#[test]
fn the_development_redis_refuses_writes_before_its_limit_and_never_evicts() {
    let redis = one_of("Deployment", REDIS_APP);
    let container = &redis["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap().to_owned())
        .collect();
    let mebibytes = |quantity: &str| -> u64 {
        let quantity = quantity.to_ascii_lowercase();
        let digits: String = quantity.chars().take_while(char::is_ascii_digit).collect();
        assert!(
            ["mi", "mb"].contains(&&quantity[digits.len()..]),
            "{quantity}: in MiB"
        );
        digits.parse().unwrap()
    };
    let limit = mebibytes(container["resources"]["limits"]["memory"].as_str().unwrap());
    let port = crate::support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = std::process::Command::new("/usr/bin/redis-server")
        .args(&args)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server starts with the manifest's args");
    let config = |name: &str| {
        let mut value = None;
        crate::support::wait_until(Duration::from_secs(30), || {
            let output = std::process::Command::new("redis-cli")
                .args(["-p", &port.to_string(), "CONFIG", "GET", name])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            value = text.lines().nth(1).map(str::to_owned);
            value.is_some()
        });
        value.unwrap_or_default()
    };
    let policy = config("maxmemory-policy");
    let maxmemory: u64 = config("maxmemory").parse().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(policy, "noeviction");
    assert!(
        maxmemory > 0 && maxmemory < limit << 20,
        "maxmemory {maxmemory} bytes, limit {limit} MiB"
    );
}

/// redis-cluster.yaml: a StatefulSet of masters behind a headless Service
/// (each node by its DNS name), joined by a Job; the startup-node URL its
/// comment gives the Deployment is one the server accepts, and names every
/// node.
#[test]
fn the_redis_cluster_manifest_names_the_startup_nodes_it_serves() {
    const CLUSTER_APP: &str = "learning-messenger-redis-cluster";
    let nodes = one_of("StatefulSet", CLUSTER_APP);
    let service = one_of("Service", CLUSTER_APP);
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(nodes["spec"]["serviceName"], service["metadata"]["name"]);
    assert_eq!(
        &service["spec"]["selector"],
        &nodes["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(
        of_app("Job", CLUSTER_APP).len(),
        1,
        "the Job that joins them"
    );
    let args = nodes["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(args.contains("--cluster-enabled yes"), "{args}");
    let name = nodes["metadata"]["name"].as_str().unwrap();
    let domain = service["metadata"]["name"].as_str().unwrap();
    let port = &service["spec"]["ports"][0]["port"];
    let count = nodes["spec"]["replicas"].as_u64().unwrap();
    let nodes_named: Vec<String> = (0..count)
        .map(|k| format!("{name}-{k}.{domain}:{port}"))
        .collect();
    let url = format!("redis+cluster://{}", nodes_named.join(","));
    let manifest = std::fs::read_to_string(deploy_dir().join("k8s/redis-cluster.yaml")).unwrap();
    assert!(manifest.contains(&url), "the manifest documents {url}");
    let config = checked_config(&["--rooms".to_owned(), url.clone()]);
    assert_eq!(config["rooms"], url.as_str());
}

/// deploy/Dockerfile's instructions, continuation lines joined.
struct Dockerfile {
    instructions: Vec<(String, String)>,
}

fn dockerfile() -> Dockerfile {
    let text = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push((keyword.to_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    Dockerfile { instructions }
}

impl Dockerfile {
    /// The last stage's instructions named `keyword` (the run stage's).
    fn last(&self, keyword: &str) -> &str {
        &self
            .instructions
            .iter()
            .rev()
            .find(|(k, _)| k == keyword)
            .unwrap_or_else(|| panic!("no {keyword} in deploy/Dockerfile"))
            .1
    }

    /// An exec-form instruction's words (`["a", "b"]`).
    fn exec_form(&self, keyword: &str) -> Vec<String> {
        let text = self.last(keyword);
        let json = match keyword {
            "HEALTHCHECK" => text.split_once("CMD").expect("HEALTHCHECK ... CMD").1,
            _ => text,
        };
        serde_json::from_str(json.trim())
            .unwrap_or_else(|e| panic!("{keyword} is not in exec form ({e}): {json}"))
    }

    fn user_id(&self) -> String {
        let user = self.last("USER");
        user.split(':').next().unwrap().to_owned()
    }
}

#[test]
fn image_defaults_agree_with_the_server_flags() {
    let docker = dockerfile();
    assert_eq!(docker.exec_form("ENTRYPOINT"), ["server"]);
    let config = checked_config(&docker.exec_form("CMD"));
    let exposed: BTreeSet<u64> = docker
        .last("EXPOSE")
        .split_whitespace()
        .map(|port| port.parse().expect("a port"))
        .collect();
    let grpc_port = port_of(config["addr"].as_str().unwrap());
    let metrics_port = port_of(config["metrics_addr"].as_str().expect("metrics on"));
    assert_eq!(exposed, BTreeSet::from([grpc_port, metrics_port]));

    let probe = docker.exec_form("HEALTHCHECK");
    assert_eq!(probe[0], "client");
    let target = probe
        .iter()
        .skip_while(|word| *word != "--target")
        .nth(1)
        .expect("the probe names its --target");
    assert_eq!(
        port_of(target),
        grpc_port,
        "the probe asks the server's port"
    );
    assert!(docker.user_id().parse::<u32>().is_ok_and(|uid| uid != 0));
}

/// The image's HEALTHCHECK command, pointed at `target`: its exit code.
fn health_check(target: &str) -> Option<i32> {
    let mut words = dockerfile().exec_form("HEALTHCHECK");
    let at = words.iter().position(|word| word == "--target").unwrap() + 1;
    words[at] = target.to_owned();
    assert_eq!(words[0], "client");
    let mut command = Command::new(env!("CARGO_BIN_EXE_client"));
    command.args(&words[1..]);
    run_bounded(command, Duration::from_secs(30))
        .status
        .and_then(|status| status.code())
}

#[test]
fn image_health_check_follows_the_server_health() {
    let server = TestServer::start();
    assert_eq!(health_check(&server.target), Some(0), "SERVING is healthy");
    server
        .running()
        .health()
        .set_status("", ServingStatus::NOT_SERVING);
    assert_eq!(health_check(&server.target), Some(4), "NOT_SERVING is not");
    drop(server);
    let gone = format!("127.0.0.1:{}", crate::support::free_port());
    assert_eq!(health_check(&gone), Some(1), "no server is not");
}

#[test]
fn check_config_refuses_what_could_not_be_served() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    for (args, said) in [
        (vec!["--addr", "nowhere"], "--addr nowhere: not HOST:PORT"),
        (
            vec!["--metrics-addr", "9090"],
            "--metrics-addr 9090: not HOST:PORT",
        ),
        (
            vec!["--tls-cert", missing, "--tls-key", missing],
            "cannot read TLS certificate",
        ),
    ] {
        let mut command = Command::new(SERVER_BIN);
        command.arg("--check-config").args(&args);
        let output = run_bounded(command, Duration::from_secs(30));
        assert_eq!(output.status.and_then(|s| s.code()), Some(1), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {}", output.stdout);
        let lines: Vec<&str> = output.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", output.stderr);
        assert!(
            lines[0].starts_with("server: ") && lines[0].contains(said),
            "{}",
            lines[0]
        );
    }
}
