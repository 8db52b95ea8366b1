"""Job results in S3-compatible object storage (versitygw on 127.0.0.1): presigned results,
items read back from the bucket, and retention deleting the job's objects."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
from conftest import start_service
from jobs.jobs_support import numbers_in, store_template, submit, wait_final
from s3_server import S3Server, versitygw_binary

from gendoc.readiness import wait_until


def test_results_in_s3_are_presigned_and_deleted_after_retention(tmp_path: Path) -> None:
    s3 = S3Server(versitygw_binary(), tmp_path / "s3").start()
    try:
        bucket = s3.new_bucket()
        env = s3.service_env(bucket) | {"GENDOC_JOB_RETENTION": "4"}
        service = start_service(tmp_path, env=env)
        try:
            with httpx.Client(base_url=service.url, timeout=30) as c:
                name = store_template(c, "Item {{ n }}")
                job = submit(c, name, [{"n": i} for i in range(6)])
                final = wait_final(c, job["id"])
                assert final["status"] == "succeeded"
                assert final["result"]["url"].startswith(s3.endpoint)  # presigned, not ours
                got = httpx.get(final["result"]["url"])  # no credentials needed
                assert got.status_code == 200 and len(got.content) == final["result"]["size"]
                assert numbers_in(zipfile.ZipFile(io.BytesIO(got.content)), "x") == list(range(6))
                redirect = c.get(f"/v1/jobs/{job['id']}/result")
                assert redirect.status_code == 303
                item = c.get(f"/v1/jobs/{job['id']}/items/2", follow_redirects=True)
                assert item.status_code == 200 and item.content[:2] == b"PK"

                def keys() -> list[str]:
                    listed = s3.client().list_objects_v2(Bucket=bucket, Prefix="fleet/results/")
                    return [o["Key"] for o in listed.get("Contents", [])]
                assert len(keys()) == 7  # six items and the result
                wait_until(lambda: c.get(f"/v1/jobs/{job['id']}").status_code == 404, 60,
                           what="job gone after its retention")
                assert keys() == []
        finally:
            service.stop()
    finally:
        s3.stop()
