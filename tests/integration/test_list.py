"""GET /jobs in local mode, over real HTTP: newest first, pagination, per-caller isolation.

Each test lists the jobs of a caller of its own (a fresh access key), so the other tests'
jobs never show up."""

from __future__ import annotations

import pytest
import requests

from segjob import SegjobError
from segjob_core.models import JobStatus
from tests.support.local_mode import caller_client, caller_headers, new_caller_key

pytestmark = pytest.mark.integration

JOBS = 5


@pytest.fixture(scope="module")
def owner_key() -> str:
    return new_caller_key()


@pytest.fixture(scope="module")
def created(runtime, owner_key) -> list[str]:
    """Ids of JOBS jobs of one caller, in creation order."""
    client = caller_client(runtime, owner_key)
    return [client.create_job(filename=f"list-{i}.jpg").job_id for i in range(JOBS)]


def test_list_is_newest_first(runtime, owner_key, created) -> None:
    page = caller_client(runtime, owner_key).list_jobs(limit=20)

    assert [job.job_id for job in page.jobs] == created[::-1]
    assert [job.filename for job in page.jobs] == [f"list-{i}.jpg" for i in reversed(range(JOBS))]
    stamps = [job.created_at for job in page.jobs]
    assert stamps == sorted(stamps, reverse=True)
    assert all(job.status is JobStatus.AWAITING_UPLOAD for job in page.jobs)
    assert page.next_token is None


def test_pages_follow_next_token_without_gaps_or_repeats(runtime, owner_key, created) -> None:
    client = caller_client(runtime, owner_key)
    pages, token = [], None
    for _ in range(JOBS + 1):  # bounded: never more pages than jobs
        page = client.list_jobs(limit=2, next_token=token)
        pages.append([job.job_id for job in page.jobs])
        token = page.next_token
        if not token:
            break

    assert [len(p) for p in pages] == [2, 2, 1]
    assert [job_id for p in pages for job_id in p] == created[::-1]
    assert [job.job_id for job in client.iter_jobs(page_size=2)] == created[::-1]


def test_another_caller_sees_none_of_them(runtime, created) -> None:
    stranger = caller_client(runtime)

    assert stranger.list_jobs(limit=100).jobs == []
    with pytest.raises(SegjobError) as missing:
        stranger.get_job(created[0])
    assert missing.value.status == 404


def test_another_callers_next_token_is_400(runtime, owner_key, created) -> None:
    token = caller_client(runtime, owner_key).list_jobs(limit=2).next_token
    assert token

    response = requests.get(
        f"{runtime.api_url}/jobs",
        params={"limit": "2", "nextToken": token},
        headers=caller_headers(new_caller_key()),
        timeout=30,
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequest"
    assert "nextToken" in response.json()["error"]["message"]


@pytest.mark.parametrize("token", ["not-a-token", "e30", "eyJqb2JJZCI6IDF9"])  # junk, {}, {"jobId": 1}
def test_a_token_this_api_did_not_issue_is_400(runtime, owner_key, token) -> None:
    with pytest.raises(SegjobError) as refused:
        caller_client(runtime, owner_key).list_jobs(limit=2, next_token=token)
    assert refused.value.status == 400 and refused.value.code == "InvalidRequest"


@pytest.mark.parametrize("limit", ["0", "101", "many"])
def test_limit_out_of_range_is_400(runtime, owner_key, limit) -> None:
    response = requests.get(
        f"{runtime.api_url}/jobs", params={"limit": limit}, headers=caller_headers(owner_key), timeout=30
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequest"
