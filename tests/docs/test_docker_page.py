"""The Docker page's security section: the refusal lines it shows are the ones a worker writes."""

from __future__ import annotations

import re

import pytest

from girder_worker.docker._policy import DockerRunNotAllowed, check, container_options, policy_from_env

from ..conftest import ROOT

TASK_ID = "3f0c6b6e-..."


def shown_refusals() -> list[str]:
    """The page's ``DockerRunNotAllowed: ...`` lines, each joined from its wrapped literal block."""
    page = (ROOT / "docs" / "docker.rst").read_text()
    blocks = re.findall(r"^   (DockerRunNotAllowed: .*?)(?=\n\n|\n\S)", page, re.MULTILINE | re.DOTALL)
    return [" ".join(block.split()) for block in blocks]


def refusal(message: dict[str, object], site: dict[str, object]) -> str:
    policy = policy_from_env({})
    with pytest.raises(DockerRunNotAllowed) as info:
        check("busybox", message, {}, site, TASK_ID, policy)
    return f"DockerRunNotAllowed: {info.value}"


def test_the_pages_refusal_lines_are_the_workers():
    shown = shown_refusals()

    assert shown == [
        refusal({"privileged": True}, {}),
        refusal({"mem_limit": "1t"}, {"mem_limit": "2g"}),
    ]


def test_the_sites_limits_in_the_pages_example_hold_and_its_environment_merges():
    site = {"mem_limit": "2g", "pids_limit": 256, "user": "1000:1000", "cap_drop": ["ALL"], "read_only": True}
    page = " ".join((ROOT / "docs" / "docker.rst").read_text().split())
    assert (
        '``{"mem_limit": "2g", "pids_limit": 256, "user": "1000:1000", "cap_drop": ["ALL"], "read_only": true}``'
        in page
    )
    policy = policy_from_env({})

    for option, value in [
        ("mem_limit", "1t"),
        ("pids_limit", -1),
        ("user", "0"),
        ("cap_drop", []),
        ("read_only", False),
    ]:
        with pytest.raises(DockerRunNotAllowed, match=f"but the site sets {option}="):
            check("busybox", {option: value}, {}, site, TASK_ID, policy)

    site["environment"] = {"HTTP_PROXY": "http://proxy:3128"}
    options = container_options({"environment": {"TILE_SIZE": "256"}}, site, policy, TASK_ID)
    assert options["environment"] == {"TILE_SIZE": "256", "HTTP_PROXY": "http://proxy:3128"}
    assert options["mem_limit"] == "2g"
