"""A DVC remote on S3 (moto's real server on 127.0.0.1): push, wipe cache and data, pull back the
identical bytes. This is the set-up the README section "Using a DVC remote on S3" describes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3

from pipeline.config import SampleConfig
from pipeline.sources import sample

CREDS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_push_then_pull_restores_identical_bytes(tmp_path, moto_endpoint, monkeypatch):
    for key, value in CREDS.items():
        monkeypatch.setenv(key, value)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_PROFILE", "AWS_ENDPOINT_URL"))}
    env |= CREDS | {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket="medpipe-dvc")

    def run(*args: str) -> str:
        proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    dvc = (sys.executable, "-m", "dvc")
    run("git", "init", "-q")
    run(*dvc, "init", "-q")
    run(*dvc, "remote", "add", "-d", "s3remote", "s3://medpipe-dvc/dvcstore")
    run(*dvc, "remote", "modify", "s3remote", "endpointurl", moto_endpoint)
    raw = tmp_path / "data" / "raw"
    sample.write(SampleConfig(patients=2, patches_per_patient=10, seed=4), raw)
    expected = digests(raw)
    run(*dvc, "add", "data/raw")
    run(*dvc, "push")

    listed = boto3.client("s3", endpoint_url=moto_endpoint).list_objects_v2(Bucket="medpipe-dvc")
    assert all(obj["Key"].startswith("dvcstore/files/md5/") for obj in listed["Contents"])
    assert len(listed["Contents"]) == len(expected) + 1  # every file + the directory listing

    shutil.rmtree(tmp_path / ".dvc" / "cache")
    shutil.rmtree(raw)
    run(*dvc, "pull")
    assert digests(raw) == expected
