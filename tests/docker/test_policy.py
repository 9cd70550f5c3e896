"""The docker_run policy: what a message may ask of the Docker Engine (no engine needed)."""

from __future__ import annotations

import os
import shutil

import pytest

from girder_worker.docker._policy import DockerRunNotAllowed, check, container_options, policy_from_env, run_scope
from girder_worker.docker.tasks import DockerTask
from girder_worker.docker.transforms import NamedOutputPipe, TemporaryVolume, VolumePath
from girder_worker.docker.transforms.girder import GirderFileIdToVolume, GirderFolderIdToVolume, GirderItemIdToVolume

NOTHING = policy_from_env({})

# (option, value) a message may not set on a default worker, and a word of the line's reason.
REFUSED = [
    ("privileged", True, "every device and capability"),
    ("cap_add", ["SYS_ADMIN"], "capabilities"),
    ("devices", ["/dev/sda:/dev/sda:rwm"], "device of the host"),
    ("device_requests", [{"Driver": "nvidia", "Count": -1}], "devices of the host"),
    ("device_cgroup_rules", ["b 8:* rmw"], "devices of the host"),
    ("network_mode", "host", "network"),
    ("network_mode", "container:girder", "network"),
    ("network_mode", "dsa_internal", "network"),
    ("network", "host", "network"),
    ("pid_mode", "host", "processes"),
    ("ipc_mode", "host", "memory"),
    ("ipc_mode", "container:db", "memory"),
    ("userns_mode", "host", "remapping"),
    ("uts_mode", "host", "rename the host"),
    ("security_opt", ["seccomp=unconfined"], "seccomp"),
    ("volumes_from", ["girder"], "another container's volumes"),
    ("sysctls", {"kernel.core_pattern": "|/tmp/x"}, "kernel settings"),
    ("mounts", [{"Type": "bind", "Source": "/", "Target": "/host"}], "mounts host paths"),
    ("ports", {"22/tcp": 2222}, "publishes"),
    ("log_config", {"type": "syslog", "config": {"syslog-address": "tcp://evil:514"}}, "logging driver"),
    ("cgroup_parent", "/", "cgroup"),
    ("oom_score_adj", -1000, "killed"),
    ("runtime", "runsc-unconfined", "runtime"),
    ("init_path", "/bin/sh", "host binary"),
    ("auto_remove", True, "not an option this worker lets a message set"),
    ("some_future_option", 1, "not an option this worker lets a message set"),
]


@pytest.mark.parametrize(("option", "value", "why"), REFUSED)
def test_an_option_that_reaches_the_host_is_refused_in_one_line_with_the_fix(option, value, why):
    with pytest.raises(DockerRunNotAllowed) as info:
        check("busybox", {option: value}, {}, {}, "t-1", NOTHING)

    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"docker_run t-1: the message asks for {option}=")
    assert why in line
    assert f"set it in GIRDER_WORKER_DOCKER_RUN_OPTIONS or add {option} to GIRDER_WORKER_DOCKER_ALLOW_OPTIONS" in line


@pytest.mark.parametrize(("option", "value", "why"), REFUSED)
def test_the_site_may_allow_each_of_them(option, value, why):
    policy = policy_from_env({"GIRDER_WORKER_DOCKER_ALLOW_OPTIONS": f"shm_size, {option}"})

    assert check("busybox", {option: value}, {}, {}, "t-1", policy) == {}


# What slicer_cli_web's docker-params, large_image and the original's callers pass.
ORDINARY = {
    "environment": {"GIRDER_API_URL": "http://girder"},
    "working_dir": "/work",
    "user": "1000:1000",
    "entrypoint": ["/bin/sh"],
    "shm_size": "2G",
    "mem_limit": "8g",
    "nano_cpus": 2_000_000_000,
    "cpu_shares": 512,
    "pids_limit": 256,
    "labels": {"a": "b"},
    "name": "my-cli",
    "network_mode": "none",
    "network_disabled": True,
    "ipc_mode": "private",
    "runtime": "nvidia",
    "read_only": True,
    "tmpfs": {"/run": "size=64m"},
    "ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
    "cap_drop": ["ALL"],
    "extra_hosts": {"girder": "10.0.0.2"},
}


@pytest.mark.parametrize(("option", "value"), ORDINARY.items())
def test_ordinary_options_pass(option, value):
    assert check("busybox", {option: value}, {}, {}, "t-1", NOTHING) == {}


@pytest.mark.parametrize("value", ["bridge", "default"])
def test_the_engines_default_network_passes_unless_the_site_set_one(value):
    assert check("busybox", {"network_mode": value}, {}, {}, "t", NOTHING) == {}

    with pytest.raises(DockerRunNotAllowed, match=f"network_mode='{value}'"):
        check("busybox", {"network_mode": value}, {}, {"network_mode": "none"}, "t", NOTHING)


ALLOW = "GIRDER_WORKER_DOCKER_ALLOW_OPTIONS"

# A site that limits and confines its containers in GIRDER_WORKER_DOCKER_RUN_OPTIONS.
SITE = {"mem_limit": "2g", "pids_limit": 256, "user": "1000:1000", "cap_drop": ["ALL"], "read_only": True}

# (option the site sets, what a message asks for instead)
LOOSER = [("mem_limit", "1t"), ("pids_limit", -1), ("user", "0"), ("cap_drop", []), ("read_only", False)]


@pytest.mark.parametrize(("option", "value"), LOOSER)
def test_a_message_may_not_change_what_the_site_sets(option, value):
    with pytest.raises(DockerRunNotAllowed) as info:
        check("busybox", {option: value}, {}, SITE, "t-1", NOTHING)

    assert str(info.value) == (
        f"docker_run t-1: the message asks for {option}={value!r}, but the site sets {option}={SITE[option]!r} in "
        "GIRDER_WORKER_DOCKER_RUN_OPTIONS, which a message may not change; to let messages change it, add "
        f"{option} to GIRDER_WORKER_DOCKER_ALLOW_OPTIONS in the worker's environment"
    )


@pytest.mark.parametrize("option", SITE)
def test_a_message_may_repeat_the_sites_value(option):
    message = {option: SITE[option]}

    assert check("busybox", message, {}, SITE, "t-1", NOTHING) == {}
    assert container_options(message, SITE, NOTHING, "t-1") == SITE


@pytest.mark.parametrize(("option", "value"), LOOSER)
def test_a_site_may_let_messages_change_an_option_it_sets(option, value):
    policy = policy_from_env({ALLOW: f"shm_size,{option}"})

    assert check("busybox", {option: value}, {}, SITE, "t-1", policy) == {}
    assert container_options({option: value}, SITE, policy, "t-1") == {**SITE, option: value}


def test_an_option_the_site_sets_is_fixed_even_when_a_message_could_set_it_otherwise():
    # network_mode="none" is harmless from a message, but the site chose the default network.
    with pytest.raises(DockerRunNotAllowed, match="but the site sets network_mode='bridge' in"):
        check("busybox", {"network_mode": "none"}, {}, {"network_mode": "bridge"}, "t-1", NOTHING)
    # privileged is refused from a message, but repeating the site's value changes nothing.
    assert check("busybox", {"privileged": True}, {}, {"privileged": True}, "t-1", NOTHING) == {}
    # A value that reaches the host keeps the line that says why.
    with pytest.raises(DockerRunNotAllowed, match=r"network_mode='host', which a message may not set \(it joins"):
        check("busybox", {"network_mode": "host"}, {}, {"network_mode": "none"}, "t-1", NOTHING)


def test_a_message_entrypoint_is_held_against_the_sites():
    site = {"entrypoint": ["/site/wrapper"]}

    assert check("busybox", {"entrypoint": ["/site/wrapper"]}, {}, site, "t-1", NOTHING) == {}
    with pytest.raises(DockerRunNotAllowed, match=r"asks for entrypoint=\['/bin/sh'\], but the site sets entrypoint="):
        check("busybox", {"entrypoint": ["/bin/sh"]}, {}, site, "t-1", NOTHING)


# The site's environment and the message's, in either of the SDK's forms: a dict or "NAME=value" strings.
SITE_ENVIRONMENTS = [
    {"HTTP_PROXY": "http://proxy:3128", "LANG": "C.UTF-8"},
    ["HTTP_PROXY=http://proxy:3128", "LANG=C.UTF-8"],
]
MESSAGE_ENVIRONMENTS = [
    {"GIRDER_API_URL": "http://girder", "LANG": "C.UTF-8"},
    ["GIRDER_API_URL=http://girder", "LANG=C.UTF-8"],
]


@pytest.mark.parametrize("site_environment", SITE_ENVIRONMENTS)
@pytest.mark.parametrize("message_environment", MESSAGE_ENVIRONMENTS)
def test_the_environments_merge_the_site_keeps_its_variables(site_environment, message_environment):
    site, message = {"environment": site_environment}, {"environment": message_environment}

    assert check("busybox", message, {}, site, "t-1", NOTHING) == {}
    assert container_options(message, site, NOTHING, "t-1")["environment"] == {
        "HTTP_PROXY": "http://proxy:3128",
        "LANG": "C.UTF-8",
        "GIRDER_API_URL": "http://girder",
    }


@pytest.mark.parametrize("site_environment", SITE_ENVIRONMENTS)
@pytest.mark.parametrize(
    ("message_environment", "shown"),
    [
        ({"HTTP_PROXY": "http://evil:8080"}, "'http://evil:8080'"),
        (["A=1", "HTTP_PROXY=http://evil:8080"], "'http://evil:8080'"),
        (["HTTP_PROXY"], "None"),  # Docker removes the variable
        ({"HTTP_PROXY": None}, "None"),
    ],
)
def test_a_message_may_not_change_a_variable_the_site_sets(site_environment, message_environment, shown):
    with pytest.raises(DockerRunNotAllowed) as info:
        check("busybox", {"environment": message_environment}, {}, {"environment": site_environment}, "t-1", NOTHING)

    assert str(info.value) == (
        f"docker_run t-1: the message asks for HTTP_PROXY={shown} in the container's environment, but the site sets "
        "HTTP_PROXY to another value in GIRDER_WORKER_DOCKER_RUN_OPTIONS, which a message may not change; to let "
        "messages change it, add environment to GIRDER_WORKER_DOCKER_ALLOW_OPTIONS in the worker's environment"
    )
    assert "proxy:3128" not in str(info.value)  # the site's value may be a secret


def test_a_site_may_let_messages_change_its_variables():
    site = {"environment": ["HTTP_PROXY=http://proxy:3128", "LANG=C.UTF-8"]}
    message = {"environment": {"HTTP_PROXY": "http://other:8080"}}
    policy = policy_from_env({ALLOW: "environment"})

    assert check("busybox", message, {}, site, "t-1", policy) == {}
    assert container_options(message, site, policy, "t-1")["environment"] == {
        "HTTP_PROXY": "http://other:8080",
        "LANG": "C.UTF-8",
    }


def test_the_labels_merge_the_same_way():
    site = {"labels": {"org.site.project": "histology"}}

    assert container_options({"labels": {"mine": "1"}}, site, NOTHING, "t-1")["labels"] == {
        "org.site.project": "histology",
        "mine": "1",
    }
    with pytest.raises(DockerRunNotAllowed, match=r"asks for org\.site\.project='other' in the container's labels"):
        check("busybox", {"labels": {"org.site.project": "other"}}, {}, site, "t-1", NOTHING)


@pytest.mark.parametrize("value", ["HTTP_PROXY=x", 7])
def test_an_environment_in_neither_form_is_refused_when_it_must_be_merged(value):
    with pytest.raises(DockerRunNotAllowed) as info:
        check("busybox", {"environment": value}, {}, {"environment": {"HTTP_PROXY": "p"}}, "t-1", NOTHING)

    assert str(info.value) == (
        f"docker_run t-1: the message's environment is a {type(value).__name__}, which is neither a mapping nor "
        "a list; give a dict of names and values"
    )


# (option the site sets, its value, an option beside it a message asks for, its value, a word of the reason)
NEIGHBOURS = [
    ("user", "1000:1000", "group_add", ["0"], "supplementary group"),
    ("mem_limit", "2g", "memswap_limit", -1, "swap beyond the memory limit"),
    ("cpu_quota", 50_000, "cpu_period", 1_000, "more CPU time"),
]


@pytest.mark.parametrize(("fixed", "site_value", "option", "value", "why"), NEIGHBOURS)
def test_an_option_that_loosens_the_sites_from_beside_it_is_refused(fixed, site_value, option, value, why):
    site = {fixed: site_value}

    with pytest.raises(DockerRunNotAllowed) as info:
        check("busybox", {option: value}, {}, site, "t-1", NOTHING)

    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(
        f"docker_run t-1: the message asks for {option}={value!r}, but the site sets {fixed}={site_value!r} in "
        f"GIRDER_WORKER_DOCKER_RUN_OPTIONS, which {option} would loosen ("
    )
    assert why in line
    assert line.endswith(f"add {option} to GIRDER_WORKER_DOCKER_ALLOW_OPTIONS in the worker's environment")


@pytest.mark.parametrize(("fixed", "site_value", "option", "value", "why"), NEIGHBOURS)
def test_the_neighbour_passes_when_the_site_does_not_set_the_option_or_allows_either(
    fixed, site_value, option, value, why
):
    site = {fixed: site_value}

    assert check("busybox", {option: value}, {}, {}, "t-1", NOTHING) == {}
    assert check("busybox", {option: value}, {}, site, "t-1", policy_from_env({ALLOW: option})) == {}
    assert check("busybox", {option: value}, {}, site, "t-1", policy_from_env({ALLOW: fixed})) == {}


HOSTILE_VALUE = "1t\n\x1b[2J\x1b[31mCRITICAL forged line\x1b[0m\r" * 50


@pytest.mark.parametrize(
    ("message", "site"),
    [
        ({"mem_limit": HOSTILE_VALUE}, {"mem_limit": "2g"}),
        ({"group_add": [HOSTILE_VALUE]}, {"user": "1000"}),
        ({"environment": {"HTTP_PROXY": HOSTILE_VALUE}}, {"environment": {"HTTP_PROXY": "p"}}),
        ({"environment": [f"HTTP_PROXY={HOSTILE_VALUE}"]}, {"environment": {"HTTP_PROXY": "p"}}),
    ],
)
def test_a_hostile_value_against_the_sites_is_one_line(message, site):
    with pytest.raises(DockerRunNotAllowed) as info:
        check("busybox", message, {}, site, "t-1", NOTHING)

    line = str(info.value)
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
    assert len(line) < 500


# (volumes as the message gives them, why it is refused)
HOST_MOUNTS = [
    ({"/": {"bind": "/host", "mode": "rw"}}, "the host path '/'"),
    ({"/etc": {"bind": "/etc2", "mode": "ro"}}, "the host path '/etc'"),
    (["/var/run/docker.sock:/var/run/docker.sock"], "the host path '/var/run/docker.sock'"),
    ({"/proc/self/root": "/x"}, "really '/'"),
    ({"girder_db_data": {"bind": "/data"}}, "named Docker volumes"),
]


@pytest.mark.parametrize(("volumes", "why"), HOST_MOUNTS)
def test_a_host_path_the_site_did_not_list_is_refused(volumes, why):
    with pytest.raises(DockerRunNotAllowed) as info:
        check("busybox", {}, volumes, {}, "t-2", NOTHING)

    assert "\n" not in str(info.value)
    assert str(info.value).startswith("docker_run t-2: the message mounts ")
    assert why in str(info.value)


def test_listed_directories_are_resolved_before_they_are_checked(tmp_path):
    data, secret = tmp_path / "data", tmp_path / "secret"
    data.mkdir()
    secret.mkdir()
    (data / "sub").mkdir()
    (data / "link").symlink_to(secret)
    policy = policy_from_env({"GIRDER_WORKER_DOCKER_HOST_PATHS": f"{data}:/nonexistent/other"})

    assert check("b", {}, {f"{data}/sub": {"bind": "/d", "mode": "rw"}}, {}, "t", policy) == {
        f"{data}/sub": {"bind": "/d", "mode": "rw"}
    }
    for escape in (f"{data}/link", f"{data}/../secret", f"{data}/sub/../../secret"):
        with pytest.raises(DockerRunNotAllowed, match=f"really '{secret}'"):
            check("b", {}, {escape: {"bind": "/d"}}, {}, "t", policy)


def test_the_container_gets_the_resolved_path(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    policy = policy_from_env({"GIRDER_WORKER_DOCKER_HOST_PATHS": str(tmp_path)})

    binds = check("b", {}, {f"{tmp_path}/alias": {"bind": "/d", "mode": "ro"}}, {}, "t", policy)

    assert binds == {f"{tmp_path}/real": {"bind": "/d", "mode": "ro"}}


def test_a_read_only_directory_takes_read_only_binds_only(tmp_path):
    policy = policy_from_env({"GIRDER_WORKER_DOCKER_HOST_PATHS": f"{tmp_path}=ro"})

    assert check("b", {}, {str(tmp_path): {"bind": "/a", "mode": "ro"}}, {}, "t", policy)
    for mode in ("rw", "z"):
        with pytest.raises(DockerRunNotAllowed, match="allows it read-only only; mount it with mode 'ro'"):
            check("b", {}, {str(tmp_path): {"bind": "/a", "mode": mode}}, {}, "t", policy)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("relative/dir", "not an absolute path"), ("/srv/../etc", "not an absolute path"), ("/", "the root directory")],
)
def test_a_bad_host_paths_setting_is_one_line_naming_it(value, problem):
    with pytest.raises(DockerRunNotAllowed, match=f"^GIRDER_WORKER_DOCKER_HOST_PATHS: .*{problem}"):
        policy_from_env({"GIRDER_WORKER_DOCKER_HOST_PATHS": value})


def test_the_runs_own_temporary_volumes_may_be_mounted_and_only_in_that_run():
    with run_scope():
        scratch = TemporaryVolume()
        scratch.transform()
        own = policy_from_env({}, own_paths=frozenset({os.path.realpath(scratch.host_path)}))
        mounts = scratch._repr_json_()
        assert check("b", {}, mounts, {}, "t", own) == {os.path.realpath(scratch.host_path): mounts[scratch.host_path]}
    with pytest.raises(DockerRunNotAllowed, match="neither a temporary volume of the run"):
        check("b", {}, mounts, {}, "t", NOTHING)  # another run, which did not make it
    os.rmdir(scratch.host_path)


def test_a_temporary_volume_is_made_only_in_the_temporary_directory_or_a_listed_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    with run_scope():
        with pytest.raises(DockerRunNotAllowed, match=r"makes a temporary volume in '/etc/cron.d'"):
            TemporaryVolume(host_dir="/etc/cron.d").transform()
        assert TemporaryVolume(host_dir=str(tmp_path / "tmp" / "sub")).transform().startswith("/mnt/girder_worker/")


@pytest.mark.parametrize(
    ("patterns", "image", "runs"),
    [
        ("", "anything/at:all", True),
        ("*", "anything/at:all", True),
        ("dsarchive/*", "dsarchive/histomicstk:latest", True),
        ("dsarchive/*", "dsarchive/histomicstk@sha256:0123abcd", True),
        ("dsarchive/*", "docker.io/dsarchive/histomicstk", True),
        ("busybox*", "docker.io/library/busybox:1.36", True),
        ("dsarchive/*", "evil/miner", False),
        ("dsarchive/*", "evil/dsarchive/x", False),
        ("dsarchive/*, gwtest/*", "gwtest/busybox:1", True),
    ],
)
def test_images_by_pattern(patterns, image, runs):
    policy = policy_from_env({"GIRDER_WORKER_DOCKER_IMAGES": patterns})

    if runs:
        check(image, {}, {}, {}, "t", policy)
    else:
        with pytest.raises(DockerRunNotAllowed) as info:
            check(image, {}, {}, {}, "t", policy)
        assert str(info.value) == (
            f"docker_run t: image {image!r} is not one this worker runs (GIRDER_WORKER_DOCKER_IMAGES=dsarchive/*); "
            "add a pattern for it to GIRDER_WORKER_DOCKER_IMAGES"
        )


def test_a_hostile_option_name_or_value_cannot_forge_a_log_line():
    with pytest.raises(DockerRunNotAllowed) as info:
        check("b", {"x\nCRITICAL forged": "v\n" * 1000}, {}, {}, "t", NOTHING)

    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 400


def test_a_refusal_is_an_expected_failure_of_docker_tasks():
    assert DockerRunNotAllowed in DockerTask.throws


# A transform's attributes come from the message: the wire format restores them without a constructor.
def _as_decoded(cls, **state):
    obj = object.__new__(cls)
    obj.__dict__.update(state)
    return obj


def test_a_named_pipe_on_a_host_path_is_refused_and_never_removed(tmp_path):
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    pipe = NamedOutputPipe("passwd", host_path=str(tmp_path), container_path="/x")

    with run_scope(), pytest.raises(DockerRunNotAllowed, match=r"the message uses the host path"):
        pipe.transform()
    with run_scope():
        pipe.cleanup()
    assert victim.read_text() == "root:x:0:0\n"


def test_a_forged_temporary_volume_is_refused_before_the_worker_touches_it(tmp_path):
    volume = _as_decoded(
        TemporaryVolume, _host_path=str(tmp_path), _container_path="/x", mode="rw", _transformed=True, host_dir=None
    )

    with run_scope(), pytest.raises(DockerRunNotAllowed, match="neither a temporary volume of the run"):
        VolumePath("f.txt", volume).transform()


def test_a_link_the_container_left_in_its_volume_is_not_followed_by_a_result_hook(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    with run_scope():
        scratch = TemporaryVolume()
        scratch.transform()
        os.symlink(secret, os.path.join(scratch.host_path, "out.txt"))
        os.mkdir(os.path.join(scratch.host_path, "sub"))

        assert VolumePath("sub", scratch).transform(None) == os.path.realpath(os.path.join(scratch.host_path, "sub"))
        for name in ("out.txt", "../../etc/shadow"):
            with pytest.raises(DockerRunNotAllowed, match="leads out of its volume"):
                VolumePath(name, scratch).transform(None)  # a result hook: the host's side
        assert VolumePath("out.txt", scratch).transform().startswith("/mnt/girder_worker/")  # the container's side
    shutil.rmtree(scratch.host_path)


@pytest.mark.parametrize("cls", [GirderFileIdToVolume, GirderFolderIdToVolume, GirderItemIdToVolume])
def test_a_girder_download_cleans_up_only_inside_the_runs_volumes(tmp_path, cls):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "f").write_text("x")
    attribute = {GirderFileIdToVolume: "_file_path", GirderFolderIdToVolume: "_folder_path"}.get(cls, "_item_path")
    transform = _as_decoded(cls, **{attribute: str(keep / "f" if cls is GirderFileIdToVolume else keep)})

    with run_scope():
        transform.cleanup()

    assert (keep / "f").read_text() == "x"


def test_a_girder_file_name_cannot_lead_out_of_the_volume():
    with run_scope():
        scratch = TemporaryVolume()
        scratch.transform()
        download = GirderFileIdToVolume("0" * 24, volume=scratch, filename="../../etc/cron.d/evil", gc=object())
        with pytest.raises(
            DockerRunNotAllowed, match=r"the file name '\.\./\.\./etc/cron\.d/evil' leads out of its volume"
        ):
            download.transform()
    shutil.rmtree(scratch.host_path)
