"""S3 source (s3://bucket/prefix): paginated listing, parallel downloads of new/changed objects.

Credentials come from the standard AWS chain (env, profile, instance role); the endpoint from
data.s3_endpoint_url or AWS_ENDPOINT_URL (MinIO, moto, ...). An object is downloaded again only
when its ETag or size changed. Each download is pinned to the listed ETag (IfMatch) and checked
by size, and by MD5 when the ETag is a plain MD5 (single-part upload).
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from tqdm import tqdm

from pipeline.core.errors import DataError
from pipeline.core.redact import redact
from pipeline.sources.files import check_tree, is_data_file, safe_relpath
from pipeline.sources.mirror import Mirror, Prepare, SyncSummary

log = logging.getLogger(__name__)
_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
_THROTTLED = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
}
DEFAULT_MAX_ATTEMPTS = 8  # tries per request (AWS_MAX_ATTEMPTS overrides): rides out ~1 min of throttling


@dataclass(frozen=True)
class S3Object:
    key: str
    rel: str
    size: int
    etag: str  # without quotes
    mtime_ns: int


def parse_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix/")."""
    parsed = urlparse(url)
    if not parsed.netloc:
        raise DataError(f"data.source {redact(url)!r} has no bucket; use s3://bucket/prefix")
    prefix = parsed.path.lstrip("/")
    return parsed.netloc, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def make_client(endpoint_url: str | None, workers: int):
    """boto3 S3 client with standard retries (AWS_MAX_ATTEMPTS total tries, default DEFAULT_MAX_ATTEMPTS).

    Standard mode retries throttling (503 SlowDown, 429), 5xx and connection errors with
    exponential backoff and jitter (at most 20 s a wait). Not adaptive mode: its client-side rate
    limiter restarts slowly after a throttle on a fresh client, so a throttled sync takes several
    times longer (figures in benchmarks/results/figures.md).
    The endpoint is data.s3_endpoint_url, else AWS_ENDPOINT_URL(_S3), else AWS itself.
    """
    attempts = int(os.environ.get("AWS_MAX_ATTEMPTS", str(DEFAULT_MAX_ATTEMPTS)))
    retry = BotoConfig(
        retries={"total_max_attempts": max(1, attempts), "mode": "standard"},
        connect_timeout=10,
        max_pool_connections=max(10, workers),
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=retry)


def _error(exc: Exception, url: str) -> DataError:
    """One-line DataError for a failed S3 call (URLs in it redacted)."""
    return DataError(redact(str(_describe(exc, url))))


def _describe(exc: Exception, url: str) -> DataError:
    if isinstance(exc, NoCredentialsError):
        return DataError(
            f"no AWS credentials for {url}; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, EndpointConnectionError):
        return DataError(
            f"cannot reach the S3 endpoint for {url}; check data.s3_endpoint_url / AWS_ENDPOINT_URL"
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "?"))
        if code == "NoSuchBucket":
            return DataError(f"S3 bucket of {url} does not exist; check data.source and the endpoint")
        if code in _DENIED:
            return DataError(f"access denied to {url} ({code}); check the AWS credentials and bucket policy")
        if code in _THROTTLED or code in ("503", "429"):
            tries = int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1
            return DataError(
                f"S3 throttled requests for {url} ({code}; still refused after {tries} attempts); "
                "run ingest again later or lower data.s3_workers"
            )
        if code in ("PreconditionFailed", "412"):
            return DataError(f"an object under {url} changed during the sync; run ingest again")
        return DataError(
            f"S3 request for {url} failed: {code} {exc.response.get('Error', {}).get('Message', '')}"
        )
    return DataError(f"S3 request for {url} failed: {exc}")


def list_objects(client, bucket: str, prefix: str, url: str) -> list[S3Object]:
    """Data objects under the prefix (paginated); DataError when there are none."""
    objects, skipped = [], 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                try:
                    rel = safe_relpath(key[len(prefix) :])
                except ValueError as exc:
                    raise DataError(
                        f"S3 key {key!r} under {redact(url)} is unsafe ({exc}); rename it"
                    ) from None
                if not is_data_file(rel):
                    skipped += 1
                    continue
                mtime_ns = int(obj["LastModified"].timestamp() * 1e9)
                objects.append(S3Object(key, rel, int(obj["Size"]), obj["ETag"].strip('"'), mtime_ns))
    except (ClientError, BotoCoreError) as exc:
        raise _error(exc, url) from exc
    if not objects:
        what = f"{skipped} objects but no image files" if skipped else "no objects"
        raise DataError(f"{redact(url)} holds {what}; check the bucket/prefix in data.source")
    if skipped:
        log.info("ignoring %d hidden or non-image objects under %s", skipped, redact(url))
    check_tree((o.rel for o in objects), redact(url))
    return sorted(objects, key=lambda o: o.rel)


def download(client, bucket: str, obj: S3Object, dest: Path) -> str:
    """Fetch one object pinned to its listed ETag; verify size (and MD5); returns sha256."""
    resp = client.get_object(Bucket=bucket, Key=obj.key, IfMatch=f'"{obj.etag}"')
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(dest, "wb") as f:
        for chunk in resp["Body"].iter_chunks(1 << 20):
            f.write(chunk)
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    if size != obj.size or ("-" not in obj.etag and md5.hexdigest() != obj.etag):
        raise DataError(f"s3://{bucket}/{obj.key} arrived corrupted (size/ETag mismatch); run ingest again")
    os.utime(dest, ns=(obj.mtime_ns, obj.mtime_ns))
    return sha.hexdigest()


def sync_s3(
    url: str, raw_dir: Path, endpoint_url: str | None, workers: int, prepare: Prepare | None = None
) -> SyncSummary:
    """Mirror s3://bucket/prefix into raw_dir, downloading only new or changed objects."""
    bucket, prefix = parse_url(url)
    client = make_client(endpoint_url, workers)
    objects = list_objects(client, bucket, prefix, url)
    with Mirror(raw_dir, kind="s3", source=url, prepare=prepare) as mirror:
        todo = [o for o in objects if not mirror.keep_if_unchanged(o.rel, f"etag:{o.etag}:{o.size}")]
        targets = {o.rel: mirror.staged_path(o.rel) for o in todo}
        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="s3-ingest")
        try:
            futures = {pool.submit(download, client, bucket, o, targets[o.rel]): o for o in todo}
            bar = tqdm(as_completed(futures), total=len(futures), desc="ingest: s3", unit="obj", disable=None)
            for future in bar:
                obj = futures[future]
                try:
                    sha = future.result()
                except (ClientError, BotoCoreError) as exc:
                    raise _error(exc, f"s3://{bucket}/{obj.key}") from exc
                mirror.add(obj.rel, f"etag:{obj.etag}:{obj.size}", sha)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return mirror.commit()
