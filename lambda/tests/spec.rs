//! Validation of `ResourceProperties`: every rejection names its field, and the scalar
//! forms CloudFormation produces (everything as strings) are accepted.

use ce_efs_tree::spec::{
    AuthoritySpec, CertsSpec, ExtendedKeyUsage, FileAt, Issuer, LeafSpec, SpecError, TreeSpec,
};
use serde_json::{json, Value};
use std::net::IpAddr;

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

/// One authority and one leaf, as the template declares them (every scalar a string).
fn certificates() -> Value {
    json!({
        "RenewBeforeDays": "30",
        "Authorities": [{
            "Name": "InternalCa", "CommonName": "Cloud Exchange internal CA", "ValidityDays": "7300",
            "Certificate": { "Path": "tls/ca.crt", "Owner": "1001", "Group": "1001", "Mode": "0644" },
            "Key": { "Path": "ca/ca.key", "Owner": "0", "Group": "0", "Mode": "0600" }
        }],
        "Leaves": [{
            "Name": "InternalTls", "Issuer": "InternalCa", "CommonName": "localhost",
            "DnsNames": ["localhost", "mongodb-primary", "*.svc.local"],
            "IpAddresses": ["127.0.0.1", "::1"],
            "ExtendedKeyUsage": ["ServerAuth", "ClientAuth"],
            "ValidityDays": "3650",
            "Certificate": { "Path": "tls/tls.crt", "Owner": "1001", "Group": "1001", "Mode": "0644" },
            "Key": { "Path": "tls/tls.key", "Owner": "1001", "Group": "1001", "Mode": "0600" },
            "CombinedPem": { "Path": "tls/tls.pem", "Owner": "1001", "Group": "1001", "Mode": "0400" }
        }]
    })
}

fn with_certificates(edit: impl FnOnce(&mut Value)) -> Value {
    let mut certs = certificates();
    edit(&mut certs);
    json!({ "Certificates": certs })
}

fn at(path: &str, owner: u32, mode: u32) -> FileAt {
    let spec = TreeSpec::from_properties(&json!({ "Files": [{ "Path": path, "Content": "" }] }))
        .expect("valid");
    FileAt {
        path: spec.files[0].path.clone(),
        owner,
        group: owner,
        mode,
    }
}

#[test]
fn accepts_the_documented_certificates_with_string_scalars() {
    let spec =
        TreeSpec::from_properties(&json!({ "Certificates": certificates() })).expect("valid");
    assert_eq!(
        spec.certificates,
        CertsSpec {
            renew_before_days: 30,
            authorities: vec![AuthoritySpec {
                name: "InternalCa".into(),
                common_name: "Cloud Exchange internal CA".into(),
                validity_days: 7300,
                certificate: at("tls/ca.crt", 1001, 0o644),
                key: at("ca/ca.key", 0, 0o600),
            }],
            leaves: vec![LeafSpec {
                name: "InternalTls".into(),
                issuer: Issuer::Authority("InternalCa".into()),
                common_name: "localhost".into(),
                dns_names: vec![
                    "localhost".into(),
                    "mongodb-primary".into(),
                    "*.svc.local".into()
                ],
                ip_addresses: vec![
                    "127.0.0.1".parse::<IpAddr>().expect("ip"),
                    "::1".parse::<IpAddr>().expect("ip"),
                ],
                extended_key_usage: vec![
                    ExtendedKeyUsage::ServerAuth,
                    ExtendedKeyUsage::ClientAuth
                ],
                validity_days: 3650,
                certificate: at("tls/tls.crt", 1001, 0o644),
                key: at("tls/tls.key", 1001, 0o600),
                combined_pem: Some(at("tls/tls.pem", 1001, 0o400)),
            }],
        }
    );
}

#[test]
fn certificates_take_defaults_and_native_scalars() {
    let spec = TreeSpec::from_properties(&json!({ "Certificates": {
        "Leaves": [{
            "Name": "Ui", "Issuer": "Self", "CommonName": "localhost", "ValidityDays": 365,
            "ExtendedKeyUsage": ["ServerAuth"],
            "Certificate": { "Path": "ui.crt" }, "Key": { "Path": "ui.key" }
        }]
    }}))
    .expect("valid");
    let certs = spec.certificates;
    assert_eq!(certs.renew_before_days, 30);
    let leaf = &certs.leaves[0];
    assert_eq!(leaf.issuer, Issuer::SelfSigned);
    assert_eq!(leaf.validity_days, 365);
    assert_eq!((leaf.dns_names.len(), leaf.ip_addresses.len()), (0, 0));
    assert_eq!(leaf.certificate, at("ui.crt", 0, 0o644));
    assert_eq!(leaf.key, at("ui.key", 0, 0o600));
    assert_eq!(leaf.combined_pem, None);
    assert_eq!(
        TreeSpec::from_properties(&json!({ "Certificates": {} }))
            .expect("valid")
            .certificates,
        CertsSpec::default()
    );
}

#[test]
fn accepts_certificate_limits_exactly() {
    let leaf = |i: usize| {
        json!({
            "Name": format!("L{i}{}", "x".repeat(61)), "Issuer": "Self", "CommonName": "c".repeat(64),
            "ValidityDays": "36500", "ExtendedKeyUsage": ["ServerAuth"],
            "Certificate": { "Path": format!("c{i}") }, "Key": { "Path": format!("k{i}"), "Mode": "0700" }
        })
    };
    let leaves: Vec<Value> = (0..12).map(leaf).collect();
    TreeSpec::from_properties(
        &json!({ "Certificates": { "RenewBeforeDays": 0, "Leaves": leaves } }),
    )
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
            "Directorys: unknown property; expected Directories, Files or Certificates".into(),
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
        // Certificates
        (json!({ "Certificates": [] }), "Certificates: must be an object with Authorities and Leaves, got a list".into()),
        (
            with_certificates(|c| c["Leafs"] = json!([])),
            "Certificates.Leafs: unknown key; expected one of RenewBeforeDays, Authorities, Leaves".into(),
        ),
        (with_certificates(|c| c["Leaves"] = json!({})), "Certificates.Leaves: must be a list, got an object".into()),
        (
            with_certificates(|c| c["Authorities"][0] = json!("InternalCa")),
            "Certificates.Authorities[0]: must be an object with a Name, got a string".into(),
        ),
        (
            with_certificates(|c| c["RenewBeforeDays"] = json!("-1")),
            r#"Certificates.RenewBeforeDays: "-1" is not a number of days in 0..=36500"#.into(),
        ),
        (
            with_certificates(|c| c["RenewBeforeDays"] = json!(true)),
            "Certificates.RenewBeforeDays: must be a number or a string of digits, got a boolean".into(),
        ),
        (
            with_certificates(|c| c["Authorities"][0]["ValidityDays"] = json!("0")),
            "Certificates.Authorities[0].ValidityDays: 0 is not a number of days in 1..=36500".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["ValidityDays"] = json!("36501")),
            "Certificates.Leaves[0].ValidityDays: 36501 is not a number of days in 1..=36500".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["ValidityDays"] = json!(1.5)),
            "Certificates.Leaves[0].ValidityDays: 1.5 is not a number of days in 1..=36500".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["ValidityDays"] = json!("30")),
            "Certificates.Leaves[0].ValidityDays: 30 must be more than RenewBeforeDays (30), or every \
             Update would re-issue it"
                .into(),
        ),
        (
            with_certificates(|c| { c["Leaves"][0].as_object_mut().map(|o| o.remove("ValidityDays")); }),
            "Certificates.Leaves[0].ValidityDays: is required".into(),
        ),
        (
            with_certificates(|c| c["Authorities"][0]["Name"] = json!("internalCa")),
            r#"Certificates.Authorities[0].Name: "internalCa" must be 1 to 64 letters and digits starting with a capital letter"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Name"] = json!("Internal-Tls")),
            r#"Certificates.Leaves[0].Name: "Internal-Tls" must be 1 to 64 letters and digits starting with a capital letter"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Name"] = json!(format!("A{}", "b".repeat(64)))),
            format!(
                "Certificates.Leaves[0].Name: \"A{}\"… must be 1 to 64 letters and digits starting with a capital letter",
                "b".repeat(63)
            ),
        ),
        (
            with_certificates(|c| c["Authorities"][0]["Name"] = json!("Self")),
            r#"Certificates.Authorities[0].Name: "Self" is reserved for self-signed leaves"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Name"] = json!("InternalCa")),
            r#"Certificates.Leaves[0].Name: "InternalCa" is already declared by Certificates.Authorities[0]"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Issuer"] = json!("OtherCa")),
            r#"Certificates.Leaves[0].Issuer: "OtherCa" is not a declared authority; expected Self or one of InternalCa"#.into(),
        ),
        (
            with_certificates(|c| c["Authorities"] = json!([])),
            r#"Certificates.Leaves[0].Issuer: "InternalCa" is not a declared authority; expected Self"#.into(),
        ),
        (
            with_certificates(|c| { c["Leaves"][0].as_object_mut().map(|o| o.remove("Issuer")); }),
            "Certificates.Leaves[0].Issuer: is required (Self, or the Name of an authority)".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["CommonName"] = json!("")),
            "Certificates.Leaves[0].CommonName: must be 1 to 64 characters, got 0".into(),
        ),
        (
            with_certificates(|c| c["Authorities"][0]["CommonName"] = json!("é".repeat(65))),
            "Certificates.Authorities[0].CommonName: must be 1 to 64 characters, got 65".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["CommonName"] = json!("local\nhost")),
            r#"Certificates.Leaves[0].CommonName: "local\nhost" contains a control character"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["DnsNames"] = json!("localhost")),
            "Certificates.Leaves[0].DnsNames: must be a list of strings, got a string".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["DnsNames"][2] = json!("rabbit mq")),
            r#"Certificates.Leaves[0].DnsNames[2]: "rabbit mq" is not a DNS name"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["DnsNames"][1] = json!("-bad.example")),
            r#"Certificates.Leaves[0].DnsNames[1]: "-bad.example" is not a DNS name"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["DnsNames"][0] = json!("a..b")),
            r#"Certificates.Leaves[0].DnsNames[0]: "a..b" is not a DNS name"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["DnsNames"][0] = json!(format!("{}.x", "a".repeat(64)))),
            format!("Certificates.Leaves[0].DnsNames[0]: \"{}\"… is not a DNS name", "a".repeat(64)),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["DnsNames"][0] = json!("127.0.0.1")),
            r#"Certificates.Leaves[0].DnsNames[0]: "127.0.0.1" is an IP address; list it under IpAddresses"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["DnsNames"][0] = json!(7)),
            "Certificates.Leaves[0].DnsNames[0]: must be a string, got a number".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["IpAddresses"][1] = json!("127.0.0.300")),
            r#"Certificates.Leaves[0].IpAddresses[1]: "127.0.0.300" is not an IPv4 or IPv6 address"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["IpAddresses"][0] = json!("localhost")),
            r#"Certificates.Leaves[0].IpAddresses[0]: "localhost" is not an IPv4 or IPv6 address"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["ExtendedKeyUsage"][1] = json!("CodeSigning")),
            r#"Certificates.Leaves[0].ExtendedKeyUsage[1]: "CodeSigning" is not ServerAuth or ClientAuth"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["ExtendedKeyUsage"] = json!([])),
            "Certificates.Leaves[0].ExtendedKeyUsage: is required: a list of ServerAuth and/or ClientAuth".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Key"]["Mode"] = json!("0640")),
            r#"Certificates.Leaves[0].Key.Mode: "0640" is not owner-only; a file holding a private key must stay within 0700, such as "0600""#.into(),
        ),
        (
            with_certificates(|c| c["Authorities"][0]["Key"]["Mode"] = json!("0604")),
            r#"Certificates.Authorities[0].Key.Mode: "0604" is not owner-only; a file holding a private key must stay within 0700, such as "0600""#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["CombinedPem"]["Mode"] = json!("4600")),
            r#"Certificates.Leaves[0].CombinedPem.Mode: "4600" is not owner-only; a file holding a private key must stay within 0700, such as "0600""#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Certificate"]["Mode"] = json!(644)),
            "Certificates.Leaves[0].Certificate.Mode: must be a string of octal digits such as \"0750\", \
             got the number 644; quote it (an unquoted YAML 0750 can arrive as the decimal 488)"
                .into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Key"] = json!("tls/tls.key")),
            "Certificates.Leaves[0].Key: must be an object with Path, Owner, Group and Mode, got a string".into(),
        ),
        (
            with_certificates(|c| { c["Authorities"][0].as_object_mut().map(|o| o.remove("Key")); }),
            "Certificates.Authorities[0].Key: is required: an object with Path, Owner, Group and Mode".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Key"]["Content"] = json!("-----BEGIN")),
            "Certificates.Leaves[0].Key.Content: unknown key; expected one of Path, Owner, Group, Mode".into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Certificate"]["Path"] = json!("/etc/ssl/tls.crt")),
            r#"Certificates.Leaves[0].Certificate.Path: "/etc/ssl/tls.crt" is absolute; paths are relative to the mount"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Key"]["Path"] = json!("tls/../ca/ca.key")),
            r#"Certificates.Leaves[0].Key.Path: ".." component is not allowed"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Key"]["Owner"] = json!("-1")),
            r#"Certificates.Leaves[0].Key.Owner: "-1" is not an id in 0..=4294967294"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Subject"] = json!("CN=x")),
            "Certificates.Leaves[0].Subject: unknown key; expected one of Name, Issuer, CommonName, \
             DnsNames, IpAddresses, ExtendedKeyUsage, ValidityDays, Certificate, Key, CombinedPem"
                .into(),
        ),
        (
            with_certificates(|c| c["Authorities"][0]["DnsNames"] = json!([])),
            "Certificates.Authorities[0].DnsNames: unknown key; expected one of Name, CommonName, \
             ValidityDays, Certificate, Key"
                .into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["Key"]["Path"] = json!("tls/tls.crt")),
            r#"Certificates.Leaves[0].Key.Path: "tls/tls.crt" is already declared by Certificates.Leaves[0].Certificate"#.into(),
        ),
        (
            with_certificates(|c| c["Leaves"][0]["CombinedPem"]["Path"] = json!("ca/ca.key")),
            r#"Certificates.Leaves[0].CombinedPem.Path: "ca/ca.key" is already declared by Certificates.Authorities[0].Key"#.into(),
        ),
        (
            {
                let mut props = with_certificates(|_| {});
                props["Files"] = json!([file("tls/tls.key")]);
                props
            },
            r#"Certificates.Leaves[0].Key.Path: "tls/tls.key" is already declared by Files[0]"#.into(),
        ),
        (
            {
                let mut props = with_certificates(|_| {});
                props["Directories"] = json!([dir("tls/ca.crt")]);
                props
            },
            r#"Certificates.Authorities[0].Certificate.Path: "tls/ca.crt" is already declared by Directories[0]"#.into(),
        ),
        (
            {
                let mut props = with_certificates(|_| {});
                props["Files"] = json!([file("tls")]);
                props
            },
            r#"Certificates.Authorities[0].Certificate.Path: "tls/ca.crt" is inside "tls", which Files[0] declares as a file"#.into(),
        ),
        (
            {
                let mut props = with_certificates(|_| {});
                props["Directories"] = json!([dir("ca/ca.key/sub")]);
                props
            },
            r#"Directories[0].Path: "ca/ca.key/sub" is inside "ca/ca.key", which Certificates.Authorities[0].Key declares as a file"#.into(),
        ),
        (
            with_certificates(|c| {
                let leaf = c["Leaves"][0].clone();
                let leaves: Vec<Value> = (0..12)
                    .map(|i| {
                        let mut l = leaf.clone();
                        l["Name"] = json!(format!("Leaf{i}"));
                        for (field, file) in [("Certificate", "crt"), ("Key", "key"), ("CombinedPem", "pem")] {
                            l[field]["Path"] = json!(format!("tls/{i}.{file}"));
                        }
                        l
                    })
                    .collect();
                c["Leaves"] = json!(leaves);
            }),
            "Certificates: declares 13 certificates; the limit is 12 (each adds two Data attributes to a \
             response limited to 4096 bytes)"
                .into(),
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
        "Tree: unknown property; expected Directories, Files or Certificates"
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
