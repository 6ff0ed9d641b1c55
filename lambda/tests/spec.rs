//! Validation of `ResourceProperties`: every rejection names its field, and the scalar
//! forms CloudFormation produces (everything as strings) are accepted.

use ce_efs_tree::spec::{SpecError, TreeSpec};
use serde_json::{json, Value};

fn reason(props: Value) -> String {
    match TreeSpec::from_properties(&props) {
        Ok(spec) => panic!("accepted {props}: {spec:?}"),
        Err(err @ SpecError::Invalid { .. }) => err.to_string(),
    }
}

fn dir(path: &str) -> Value {
    json!({ "Path": path })
}

fn file(path: &str) -> Value {
    json!({ "Path": path, "Content": "x" })
}

#[test]
fn accepts_the_documented_example_with_string_scalars() {
    let spec = TreeSpec::from_properties(&json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:tree",
        "ServiceTimeout": "300",
        "Directories": [{ "Path": "data/mongo-data", "Owner": "1001", "Group": "1001", "Mode": "0750" }],
        "Files": [{ "Path": "data/rabbitmq/custom.conf", "Content": "consumer_timeout = 86400000\n",
                    "Owner": "1001", "Group": "1001", "Mode": "0640", "Overwrite": "false" }],
    }))
    .expect("valid");
    let d = &spec.directories[0];
    assert_eq!(
        (d.path.as_str(), d.owner, d.group, d.mode),
        ("data/mongo-data", 1001, 1001, 0o750)
    );
    let f = &spec.files[0];
    assert_eq!(
        (f.path.as_str(), f.owner, f.group, f.mode, f.overwrite),
        ("data/rabbitmq/custom.conf", 1001, 1001, 0o640, false)
    );
    assert_eq!(f.content, "consumer_timeout = 86400000\n");
    assert_eq!(
        d.path.components().collect::<Vec<_>>(),
        ["data", "mongo-data"]
    );
}

#[test]
fn accepts_native_json_scalars_and_applies_defaults() {
    let spec = TreeSpec::from_properties(&json!({
        "Directories": [{ "Path": "a", "Owner": 4294967294u32, "Group": 0, "Mode": "7777" }, dir("b")],
        "Files": [{ "Path": "a/f", "Content": "", "Overwrite": true }, file("g")],
    }))
    .expect("valid");
    let [a, b] = &spec.directories[..] else {
        panic!("two directories")
    };
    assert_eq!((a.owner, a.group, a.mode), (4294967294, 0, 0o7777));
    assert_eq!((b.owner, b.group, b.mode), (0, 0, 0o755));
    let [f, g] = &spec.files[..] else {
        panic!("two files")
    };
    assert_eq!((f.content.as_str(), f.overwrite), ("", true));
    assert_eq!(
        (g.owner, g.group, g.mode, g.overwrite),
        (0, 0, 0o644, false)
    );
}

#[test]
fn accepts_overwrite_and_mode_string_forms() {
    for (raw, expected) in [(json!("true"), true), (json!(false), false)] {
        let spec = TreeSpec::from_properties(
            &json!({ "Files": [{ "Path": "f", "Content": "", "Overwrite": raw }] }),
        )
        .expect("valid");
        assert_eq!(spec.files[0].overwrite, expected);
    }
    for (raw, expected) in [
        ("750", 0o750),
        ("0750", 0o750),
        ("00750", 0o750),
        ("0", 0),
        ("2775", 0o2775),
    ] {
        let spec =
            TreeSpec::from_properties(&json!({ "Directories": [{ "Path": "d", "Mode": raw }] }))
                .expect("valid");
        assert_eq!(spec.directories[0].mode, expected, "{raw}");
    }
}

#[test]
fn properties_without_a_tree_are_an_empty_spec() {
    let spec = TreeSpec::from_properties(&json!({ "ServiceToken": "arn" })).expect("valid");
    assert_eq!(spec, TreeSpec::default());
}

#[test]
fn accepts_limits_exactly() {
    let component = "c".repeat(255);
    let deep = vec!["d"; 64].join("/");
    let long = vec![component.as_str(); 16].join("/"); // 16 * 256 - 1 = 4095 bytes
    TreeSpec::from_properties(&json!({ "Directories": [dir(&component), dir(&deep), dir(&long)] }))
        .expect("valid");
    let content = "x".repeat(1024 * 1024);
    TreeSpec::from_properties(&json!({ "Files": [{ "Path": "f", "Content": content }] }))
        .expect("valid");
}

/// (properties, expected reason). Each reason names the field it is about.
fn rejections() -> Vec<(Value, String)> {
    let long_component = "c".repeat(256);
    let long_path = vec!["c".repeat(255); 17].join("/");
    let too_deep = vec!["d"; 65].join("/");
    let too_big = "x".repeat(1024 * 1024 + 1);
    vec![
        (json!(null), "ResourceProperties: must be an object, got null".into()),
        (json!([]), "ResourceProperties: must be an object, got a list".into()),
        (
            json!({ "Directorys": [] }),
            "Directorys: unknown property; expected Directories or Files".into(),
        ),
        (json!({ "Directories": "a" }), "Directories: must be a list, got a string".into()),
        (json!({ "Files": { "Path": "a" } }), "Files: must be a list, got an object".into()),
        (json!({ "Directories": null }), "Directories: must be a list, got null".into()),
        (
            json!({ "Directories": ["a"] }),
            "Directories[0]: must be an object with a Path, got a string".into(),
        ),
        (json!({ "Directories": [{}] }), "Directories[0].Path: is required".into()),
        (
            json!({ "Directories": [{ "Path": 7 }] }),
            "Directories[0].Path: must be a string, got a number".into(),
        ),
        (json!({ "Directories": [dir("")] }), "Directories[0].Path: must not be empty".into()),
        (
            json!({ "Directories": [dir("ok"), dir("/etc")] }),
            r#"Directories[1].Path: "/etc" is absolute; paths are relative to the mount"#.into(),
        ),
        (
            json!({ "Files": [file("../etc/passwd")] }),
            r#"Files[0].Path: ".." component is not allowed"#.into(),
        ),
        (
            json!({ "Files": [file("a/../../b")] }),
            r#"Files[0].Path: ".." component is not allowed"#.into(),
        ),
        (
            json!({ "Directories": [dir("a/./b")] }),
            r#"Directories[0].Path: "." component is not allowed"#.into(),
        ),
        (
            json!({ "Directories": [dir(".")] }),
            r#"Directories[0].Path: "." component is not allowed"#.into(),
        ),
        (
            json!({ "Directories": [dir("a//b")] }),
            r#"Directories[0].Path: "a//b" has an empty component"#.into(),
        ),
        (
            json!({ "Directories": [dir("a/")] }),
            r#"Directories[0].Path: "a/" has an empty component"#.into(),
        ),
        (
            json!({ "Directories": [dir("a\u{0}b")] }),
            "Directories[0].Path: contains a NUL byte".into(),
        ),
        (
            json!({ "Directories": [dir(&long_component)] }),
            format!(
                "Directories[0].Path: component \"{}\"… is 256 bytes long; the limit is 255",
                "c".repeat(64)
            ),
        ),
        (
            json!({ "Directories": [dir(&long_path)] }),
            "Directories[0].Path: is 4351 bytes long; the limit is 4096".into(),
        ),
        (
            json!({ "Directories": [dir(&too_deep)] }),
            "Directories[0].Path: has 65 components; the limit is 64".into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Mode": "0999" }] }),
            r#"Directories[0].Mode: "0999" is not an octal mode"#.into(),
        ),
        (
            json!({ "Directories": [dir("a"), dir("b"), dir("c"), { "Path": "d", "Mode": "0999" }] }),
            r#"Directories[3].Mode: "0999" is not an octal mode"#.into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Mode": "" }] }),
            r#"Directories[0].Mode: "" is not an octal mode"#.into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Mode": "u+rwx" }] }),
            r#"Directories[0].Mode: "u+rwx" is not an octal mode"#.into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Mode": "-755" }] }),
            r#"Directories[0].Mode: "-755" is not an octal mode"#.into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Mode": "10000" }] }),
            r#"Files[0].Mode: "10000" is above 07777"#.into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Mode": "77777777777777777777" }] }),
            r#"Files[0].Mode: "77777777777777777777" is above 07777"#.into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Mode": 750 }] }),
            "Directories[0].Mode: must be a string of octal digits such as \"0750\", got the \
             number 750; quote it (an unquoted YAML 0750 can arrive as the decimal 488)"
                .into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Mode": true }] }),
            "Directories[0].Mode: must be a string of octal digits such as \"0750\", got a boolean"
                .into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Owner": 4294967295u64 }] }),
            "Directories[0].Owner: 4294967295 is not an id in 0..=4294967294".into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Group": "4294967295" }] }),
            r#"Directories[0].Group: "4294967295" is not an id in 0..=4294967294"#.into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Owner": "99999999999999999999" }] }),
            r#"Directories[0].Owner: "99999999999999999999" is not an id in 0..=4294967294"#.into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Owner": -1 }] }),
            "Directories[0].Owner: -1 is not an id in 0..=4294967294".into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Owner": "-1" }] }),
            r#"Files[0].Owner: "-1" is not an id in 0..=4294967294"#.into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Group": 1001.5 }] }),
            "Files[0].Group: 1001.5 is not an id in 0..=4294967294".into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Group": " 1001" }] }),
            r#"Files[0].Group: " 1001" is not an id in 0..=4294967294"#.into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Owner": "" }] }),
            r#"Files[0].Owner: "" is not an id in 0..=4294967294"#.into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Owner": null }] }),
            "Files[0].Owner: must be a number or a string of digits, got null".into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Ownr": 1001 }] }),
            "Directories[0].Ownr: unknown key; expected one of Path, Owner, Group, Mode".into(),
        ),
        (
            json!({ "Directories": [{ "Path": "d", "Content": "" }] }),
            "Directories[0].Content: unknown key; expected one of Path, Owner, Group, Mode".into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "overwrite": true }] }),
            "Files[0].overwrite: unknown key; expected one of Path, Owner, Group, Mode, Content, \
             Overwrite"
                .into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "": 1 }] }),
            r#"Files[0]."": unknown key; expected one of Path, Owner, Group, Mode, Content, Overwrite"#
                .into(),
        ),
        (json!({ "Files": [{ "Path": "f" }] }), "Files[0].Content: is required (it may be empty)".into()),
        (
            json!({ "Files": [{ "Path": "f", "Content": 5 }] }),
            "Files[0].Content: must be a string, got a number".into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": too_big }] }),
            "Files[0].Content: is 1048577 bytes; the limit is 1048576".into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Overwrite": "yes" }] }),
            r#"Files[0].Overwrite: must be true or false, got "yes""#.into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Overwrite": "True" }] }),
            r#"Files[0].Overwrite: must be true or false, got "True""#.into(),
        ),
        (
            json!({ "Files": [{ "Path": "f", "Content": "", "Overwrite": 1 }] }),
            "Files[0].Overwrite: must be true or false, got a number".into(),
        ),
        (
            json!({ "Directories": [dir("a"), dir("b"), dir("a")] }),
            r#"Directories[2].Path: "a" is already declared by Directories[0]"#.into(),
        ),
        (
            json!({ "Directories": [dir("a/b")], "Files": [file("x"), file("a/b")] }),
            r#"Files[1].Path: "a/b" is already declared by Directories[0]"#.into(),
        ),
        (
            json!({ "Directories": [dir("a/b/c")], "Files": [file("a/b")] }),
            r#"Directories[0].Path: "a/b/c" is inside "a/b", which Files[0] declares as a file"#
                .into(),
        ),
        (
            json!({ "Files": [file("conf"), file("conf/x")] }),
            r#"Files[1].Path: "conf/x" is inside "conf", which Files[0] declares as a file"#.into(),
        ),
    ]
}

#[test]
fn rejects_each_bad_entry_naming_its_field() {
    let mut failures = Vec::new();
    for (props, expected) in rejections() {
        let shown = props.to_string();
        let shown: String = shown.chars().take(120).collect();
        let got = match TreeSpec::from_properties(&props) {
            Ok(_) => "accepted".to_owned(),
            Err(err) => err.to_string(),
        };
        if got != expected {
            failures.push(format!(
                "{shown}\n  expected: {expected}\n  got:      {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_exposes_field_and_problem() {
    let err = TreeSpec::from_properties(&json!({ "Directories": [{ "Path": "d", "Mode": "8" }] }))
        .expect_err("invalid");
    assert_eq!(
        err,
        SpecError::Invalid {
            field: "Directories[0].Mode".into(),
            problem: r#""8" is not an octal mode"#.into(),
        }
    );
}

#[test]
fn unknown_key_is_reported_even_after_service_keys() {
    // Object keys are iterated in sorted order; "ServiceToken" sorts before "Tree".
    assert_eq!(
        reason(json!({ "ServiceToken": "arn", "Tree": [] })),
        "Tree: unknown property; expected Directories or Files"
    );
}

#[test]
fn rejection_never_echoes_file_content() {
    let secret = "password=hunter2";
    for props in [
        json!({ "Files": [{ "Path": "f", "Content": [secret] }] }),
        json!({ "Files": [{ "Path": "f", "Content": secret, "Mode": "9" }] }),
        json!({ "Files": [{ "Path": "f", "Content": { "x": secret } }] }),
    ] {
        let reason = reason(props);
        assert!(!reason.contains("hunter2"), "{reason}");
    }
}

#[test]
fn long_values_are_shortened_in_reasons() {
    let path = format!("/{}", "é".repeat(2000));
    let reason = reason(json!({ "Directories": [dir(&path)] }));
    assert!(reason.len() < 200, "{} bytes: {reason}", reason.len());
    assert!(reason.starts_with("Directories[0].Path: \"/é"), "{reason}");
}
