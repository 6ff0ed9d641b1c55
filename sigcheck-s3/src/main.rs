//! `sigcheck-s3 serve` runs the local S3 server for shell tests; `sigcheck-s3 presign` prints a
//! pre-signed PUT URL for it. See `sigcheck-s3 --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

const USAGE: &str = "\
usage:
  sigcheck-s3 serve --root DIR [--port N]
      Serve DIR as a signature-checking S3 endpoint on 127.0.0.1 (port 0 = any free
      port; the default). Prints the endpoint URL on the first line of stdout, then
      serves until killed. Objects of bucket BUCKET are stored as DIR/BUCKET/KEY.
  sigcheck-s3 presign (--v2|--v4) --endpoint URL --key KEY [--ttl SECONDS]
      Print a pre-signed PUT URL for KEY in the test bucket (default ttl 900 s).
  sigcheck-s3 key REQUEST_ID
      Print a CloudFormation-shaped object key for REQUEST_ID.
  sigcheck-s3 bucket
      Print the test bucket's name.";

#[derive(Debug)]
enum Command {
    Serve {
        root: PathBuf,
        port: u16,
    },
    Presign {
        v4: bool,
        endpoint: String,
        key: String,
        ttl: Duration,
    },
    Key(String),
    Bucket,
    Help,
}

fn parse(args: &[String]) -> Result<Command, String> {
    let (cmd, rest) = args.split_first().ok_or("missing command")?;
    let mut root = None;
    let mut port = 0;
    let mut version = None;
    let mut endpoint = None;
    let mut key = None;
    let mut ttl = Duration::from_secs(900);
    let mut it = rest.iter();
    let mut positional = Vec::new();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--root" => root = Some(PathBuf::from(value()?)),
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--v2" => version = Some(false),
            "--v4" => version = Some(true),
            "--endpoint" => endpoint = Some(value()?),
            "--key" => key = Some(value()?),
            "--ttl" => {
                ttl = Duration::from_secs(value()?.parse().map_err(|e| format!("--ttl: {e}"))?)
            }
            other if !other.starts_with('-') => positional.push(other.to_owned()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    match cmd.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "serve" => Ok(Command::Serve {
            root: root.ok_or("serve needs --root")?,
            port,
        }),
        "presign" => Ok(Command::Presign {
            v4: version.ok_or("presign needs --v2 or --v4")?,
            endpoint: endpoint.ok_or("presign needs --endpoint")?,
            key: key.ok_or("presign needs --key")?,
            ttl,
        }),
        "key" => match positional.as_slice() {
            [request_id] => Ok(Command::Key(request_id.clone())),
            _ => Err("key needs one REQUEST_ID".into()),
        },
        "bucket" => Ok(Command::Bucket),
        other => Err(format!("unknown command {other}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(command) => command,
        Err(problem) => {
            eprintln!("sigcheck-s3: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => println!("{USAGE}"),
        Command::Presign {
            v4,
            endpoint,
            key,
            ttl,
        } => {
            let now = SystemTime::now();
            let url = if v4 {
                sigcheck_s3::presign_v4(&endpoint, sigcheck_s3::BUCKET, &key, now, ttl)
            } else {
                sigcheck_s3::presign_v2(&endpoint, sigcheck_s3::BUCKET, &key, now + ttl)
            };
            println!("{url}");
        }
        Command::Key(request_id) => println!("{}", sigcheck_s3::cfn_key(&request_id)),
        Command::Bucket => println!("{}", sigcheck_s3::BUCKET),
        Command::Serve { root, port } => {
            if let Err(e) = serve(root, port) {
                eprintln!("sigcheck-s3: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

#[tokio::main]
async fn serve(root: PathBuf, port: u16) -> Result<(), sigcheck_s3::SigcheckError> {
    let server = sigcheck_s3::S3Server::start(&root, port).await?;
    println!("{}", server.endpoint());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
