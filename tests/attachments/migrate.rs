//! `helpdesk attachments migrate --to s3`: the files of the fs store copied into the bucket,
//! and a second run that finds them there.

use super::*;

// Several threads: the relay in front of moto runs while the command waits for its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_the_files_once_and_can_run_again() {
    let Some((server, settings)) = bucket("migrated").await else {
        return;
    };
    let env = Env::sqlite();
    let files = BlobStore::local(&env.dir.path().join("data").join("attachments")).expect("dir");
    let small = files.put(b"a small file").await.expect("kept");
    let large = files.put(&vec![7u8; LARGE]).await.expect("kept");
    let run = || {
        let output = env
            .command()
            .args(["attachments", "migrate", "--to", "s3"])
            .env("HELPDESK_ATTACHMENTS__S3__BUCKET", &settings.bucket)
            .env("HELPDESK_ATTACHMENTS__S3__ENDPOINT", &settings.endpoint)
            .env("HELPDESK_ATTACHMENTS__S3__PREFIX", &settings.prefix)
            .env("AWS_ACCESS_KEY_ID", &settings.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &settings.secret_access_key)
            .env("AWS_REGION", &settings.region)
            .output()
            .expect("helpdesk runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        stdout
    };
    let first = tokio::task::block_in_place(run);
    assert!(
        first.contains("2 copied, 0 already there, 0 failed"),
        "{first}"
    );
    let second = tokio::task::block_in_place(run);
    assert!(
        second.contains("0 copied, 2 already there, 0 failed"),
        "{second}"
    );

    let mut keys = server.keys("migrated").await;
    keys.sort();
    let key = |sha: &str| format!("helpdesk/{}/{}/{sha}", &sha[..2], &sha[2..4]);
    let mut expected = vec![key(&small), key(&large)];
    expected.sort();
    assert_eq!(keys, expected);
    let bucket = BlobStore::s3(&settings).expect("store");
    assert_eq!(bucket.get(&large).await.expect("copied"), vec![7u8; LARGE]);
}
