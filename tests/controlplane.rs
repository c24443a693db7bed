//! Proves the test harness against the real server: versions, namespaces, identities, RBAC.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use support::{TestEnv, test_env};

/// Lists the Secrets of `namespace` as `client`: `Ok(true)` allowed, `Ok(false)` forbidden.
async fn can_list_secrets(client: &Client, namespace: &str) -> Result<bool, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match secrets.list(&ListParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_forbidden() => Ok(false),
        Err(e) => Err(e),
    }
}

/// RBAC changes reach the authorizer through an informer; poll until `client` may list.
async fn wait_until_allowed(client: &Client, namespace: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !can_list_secrets(client, namespace)
        .await
        .expect("listing secrets")
    {
        assert!(
            Instant::now() < deadline,
            "still forbidden 30 s after the RoleBinding"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Grants `subject` get/list on Secrets in the test namespace.
async fn grant_secret_reading(env: &TestEnv, name: &str, subject: Subject) {
    let role = Role {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".to_owned()]),
            verbs: vec!["get".to_owned(), "list".to_owned()],
            ..PolicyRule::default()
        }]),
    };
    env.api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .expect("creating the Role");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(vec![subject]),
    };
    env.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .expect("creating the RoleBinding");
}

/// Who the server thinks `client` is: (user name, groups).
async fn whoami(client: &Client) -> (String, Vec<String>) {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("creating a SelfSubjectReview");
    let user = review
        .status
        .and_then(|s| s.user_info)
        .expect("SelfSubjectReview without userInfo");
    (
        user.username.unwrap_or_default(),
        user.groups.unwrap_or_default(),
    )
}

#[tokio::test]
async fn admin_lists_namespaces() {
    let env = test_env("admin-list").await;
    let names: Vec<String> = Api::<Namespace>::all(env.client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect();
    for expected in ["default", "kube-system", env.namespace.as_str()] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing in {names:?}"
        );
    }
    let (user, groups) = whoami(&env.client).await;
    assert_eq!(user, "patchwave-admin");
    assert!(groups.contains(&"system:masters".to_owned()), "{groups:?}");
}

#[tokio::test]
async fn server_reports_the_built_version() {
    let env = test_env("version").await;
    let info = env.client.apiserver_version().await.unwrap();
    assert_eq!(info.git_version, "v1.37.2");
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "37"));

    // The built kubectl talks to it through the written kubeconfig.
    let out = support::run(
        env.kubectl()
            .args(["get", "namespace", &env.namespace, "-o", "name"]),
    );
    assert_eq!(out.trim(), format!("namespace/{}", env.namespace));
}

#[tokio::test]
async fn each_test_env_gets_its_own_namespace() {
    let (a, b) = tokio::join!(test_env("distinct"), test_env("distinct"));
    assert_ne!(a.namespace, b.namespace);
    let namespaces = Api::<Namespace>::all(a.client.clone());
    for name in [&a.namespace, &b.namespace] {
        let ns = namespaces.get(name).await.unwrap();
        assert_eq!(ns.metadata.name.as_deref(), Some(name.as_str()));
    }
}

#[tokio::test]
async fn service_account_needs_a_role_binding() {
    let env = test_env("sa-rbac").await;
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("reader".to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    env.api::<ServiceAccount>()
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();

    let client = env
        .control_plane
        .service_account_client(&env.namespace, "reader")
        .await
        .unwrap();
    let (user, groups) = whoami(&client).await;
    assert_eq!(
        user,
        format!("system:serviceaccount:{}:reader", env.namespace)
    );
    assert!(
        groups.contains(&format!("system:serviceaccounts:{}", env.namespace)),
        "{groups:?}"
    );
    assert!(
        !can_list_secrets(&client, &env.namespace).await.unwrap(),
        "RBAC must forbid an unbound service account"
    );

    grant_secret_reading(
        &env,
        "secret-reader",
        Subject {
            kind: "ServiceAccount".to_owned(),
            name: "reader".to_owned(),
            namespace: Some(env.namespace.clone()),
            ..Subject::default()
        },
    )
    .await;
    wait_until_allowed(&client, &env.namespace).await;
    // Only in its own namespace.
    assert!(!can_list_secrets(&client, "default").await.unwrap());
}

#[tokio::test]
async fn certificate_user_without_bindings_is_forbidden() {
    let env = test_env("cert-user").await;
    let user = format!("{}-nobody", env.namespace);
    let client = env
        .control_plane
        .certificate_client(&user, &["team-a", "team-b"])
        .await
        .unwrap();
    // Real client-certificate credentials: CN is the user, each O a group.
    let (name, groups) = whoami(&client).await;
    assert_eq!(name, user);
    for group in ["team-a", "team-b", "system:authenticated"] {
        assert!(
            groups.contains(&group.to_owned()),
            "{group} missing in {groups:?}"
        );
    }
    assert!(!can_list_secrets(&client, &env.namespace).await.unwrap());
    assert!(!can_list_secrets(&client, "default").await.unwrap());

    // A binding for one of its certificate groups lets it in.
    grant_secret_reading(
        &env,
        "team-b-reads-secrets",
        Subject {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Group".to_owned(),
            name: "team-b".to_owned(),
            ..Subject::default()
        },
    )
    .await;
    wait_until_allowed(&client, &env.namespace).await;
}

#[tokio::test]
async fn impersonated_user_gets_the_given_groups() {
    let env = test_env("impersonate").await;
    let client = env
        .control_plane
        .client_as("carol", &["ops", "auditors", "on-call"])
        .await
        .unwrap();
    let (name, groups) = whoami(&client).await;
    assert_eq!(name, "carol");
    for group in ["ops", "auditors", "on-call"] {
        assert!(
            groups.contains(&group.to_owned()),
            "{group} missing in {groups:?}"
        );
    }
    assert!(!can_list_secrets(&client, &env.namespace).await.unwrap());
}
