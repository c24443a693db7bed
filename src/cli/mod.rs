//! scratch
#[cfg(test)]
mod scratch {
    use kube::CustomResourceExt;
    use kube::core::cel::{Validator, compile_schema};
    #[test]
    fn cel_experiment() {
        let crd = crate::api::Ring::crd();
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let compiled = compile_schema(&schema);
        let v = Validator::new();
        let obj: serde_json::Value = serde_yaml::from_str(
            r#"
apiVersion: patchwave.dev/v1alpha1
kind: Ring
metadata: {name: x}
spec:
  selector: {}
  maxConcurrent: "150%"
  failureThreshold: -1
  bakeTime: 3d
"#,
        )
        .unwrap();
        let r = v.validate_compiled(&compiled, &obj, None);
        println!("{r:#?}");
        let crd = crate::api::MaintenanceWindow::crd();
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let compiled = compile_schema(&schema);
        let obj: serde_json::Value = serde_yaml::from_str(
            r#"
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: x}
spec:
  schedule: "* * * *"
  cutoff: 5h
  duration: 1h
"#,
        )
        .unwrap();
        let r = v.validate_compiled(&compiled, &obj, None);
        println!("{r:#?}");
        let crd = crate::api::PatchRollout::crd();
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let compiled = compile_schema(&schema);
        let obj: serde_json::Value = serde_yaml::from_str(
            r#"
apiVersion: patchwave.dev/v1alpha1
kind: PatchRollout
metadata: {name: x}
spec:
  policy: p
  revision: r
  updates: [{id: a}]
  rings: [a]
"#,
        )
        .unwrap();
        let r = v.validate_compiled(&compiled, &obj, None);
        println!("{r:#?}");
        let t = std::time::Instant::now();
        let text = std::fs::read_to_string("examples/assets/laptops.yaml").unwrap();
        let crd = crate::api::Asset::crd();
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let compiled = compile_schema(&schema);
        println!("compile {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let mut n = 0;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            use serde::Deserialize;
            let val = serde_json::Value::deserialize(doc).unwrap();
            if val.is_null() {
                continue;
            }
            n += 1;
            let r = v.validate_compiled(&compiled, &val, None);
            assert!(r.is_ok(), "{r:?}");
        }
        println!("{n} assets in {:?}", t.elapsed());
    }
}
