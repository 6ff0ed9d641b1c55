//! Applies a tree to a folder with the function's own logic, without the Lambda runtime:
//! `apply_tree PROPERTIES.json ROOT` prints the report as JSON. The benchmark's operation
//! budget (bench/) runs it on the EFS latency model to count what reaches the file system.

use ce_efs_tree::spec::TreeSpec;
use ce_efs_tree::tree;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [properties, root] = args.as_slice() else {
        eprintln!("usage: apply_tree PROPERTIES.json ROOT");
        return ExitCode::from(2);
    };
    let result = std::fs::read_to_string(properties)
        .map_err(|e| format!("{properties}: {e}"))
        .and_then(|text| serde_json::from_str(&text).map_err(|e| format!("{properties}: {e}")))
        .and_then(|props| TreeSpec::from_properties(&props).map_err(|e| e.to_string()))
        .and_then(|spec| tree::apply(&PathBuf::from(root), &spec).map_err(|e| e.to_string()));
    match result {
        Ok(report) => {
            println!("{}", serde_json::json!(report));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("apply_tree: {message}");
            ExitCode::FAILURE
        }
    }
}
