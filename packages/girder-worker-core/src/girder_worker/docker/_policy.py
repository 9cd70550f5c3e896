"""What a ``docker_run`` message may ask of the Docker Engine.

The Docker Engine runs as root: a container started with ``privileged=True``, the
host's network or process namespace, a device, or a bind mount of ``/`` owns the
worker's host. Whoever can publish to the broker chooses a message's arguments, so
before anything is pulled or created, :func:`check` holds the run's options
against the site's configuration:

* **Options.** A message may set the ordinary options of :data:`MESSAGE_OPTIONS`
  (``environment``, ``working_dir``, ``user``, ``shm_size``, ``mem_limit``, CPU
  shares, ...) and the checked ones of :data:`CHECKED_OPTIONS` with a harmless value
  (``network_mode="none"``, ``ipc_mode="private"``, ``runtime="nvidia"``). Anything
  else (``privileged``, ``cap_add``, ``devices``, ``device_requests``,
  ``network_mode="host"``, ``pid_mode``, ``security_opt``, ``volumes_from``,
  ``sysctls``, ``mounts``, ``ports``, ``log_config``, an option Docker adds
  tomorrow) is refused, unless ``GIRDER_WORKER_DOCKER_ALLOW_OPTIONS`` names it.
* **The site's options.** What ``GIRDER_WORKER_DOCKER_RUN_OPTIONS`` sets is the
  site's own: it is never checked, and a message may not change it. A message may
  repeat the site's value; another value is refused, unless
  ``GIRDER_WORKER_DOCKER_ALLOW_OPTIONS`` names the option (then the message's value
  wins). ``environment`` and ``labels`` are merged instead: the message adds its
  own keys, a key the site sets keeps the site's value, and a message giving it
  another value is refused. A few options loosen a site's option from beside it
  (the table ``_NEIGHBOURS``): ``group_add`` when the site sets ``user``,
  ``memswap_limit`` when it sets ``mem_limit``, ``cpu_period`` when it sets
  ``cpu_quota``; a message may set them only when the site allows them, or the
  option they loosen.
* **Host paths.** A bind mount from the message (a ``BindMountVolume`` or a
  ``volumes`` entry) must be one of the run's own temporary volumes, or lie under
  a directory of ``GIRDER_WORKER_DOCKER_HOST_PATHS`` (``/data:/assetstore=ro``;
  ``=ro`` allows read-only binds only), after symbolic links and ``..`` are
  resolved; the container gets the resolved path. Named Docker volumes are refused.
* **Images.** ``GIRDER_WORKER_DOCKER_IMAGES`` (comma-separated glob patterns, every
  image when unset) restricts the images that may run.

A refusal is one line naming the task, the option and the variable that would
allow it, and nothing is pulled or started::

    docker_run 6f1c…: the message asks for privileged=True, which a message may not set (it
    gives the container every device and capability of the host); to allow it, set it in
    GIRDER_WORKER_DOCKER_RUN_OPTIONS or add privileged to GIRDER_WORKER_DOCKER_ALLOW_OPTIONS
    in the worker's environment

    docker_run 6f1c…: the message asks for mem_limit='1t', but the site sets mem_limit='2g' in
    GIRDER_WORKER_DOCKER_RUN_OPTIONS, which a message may not change; to let messages change it,
    add mem_limit to GIRDER_WORKER_DOCKER_ALLOW_OPTIONS in the worker's environment
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from .._paths import is_under
from ..monitoring._log_filter import safe_text

__all__ = [
    "CHECKED_OPTIONS",
    "MESSAGE_OPTIONS",
    "DockerRunNotAllowed",
    "Policy",
    "check",
    "check_temporary_dir",
    "container_options",
    "environment_dict",
    "host_path",
    "inside",
    "own_volume",
    "own_volumes",
    "policy_from_env",
    "run_scope",
]

ALLOW_OPTIONS = "GIRDER_WORKER_DOCKER_ALLOW_OPTIONS"
HOST_PATHS = "GIRDER_WORKER_DOCKER_HOST_PATHS"
IMAGES = "GIRDER_WORKER_DOCKER_IMAGES"
RUN_OPTIONS = "GIRDER_WORKER_DOCKER_RUN_OPTIONS"

#: Options a message may set to any value: they shape the container, not its access to the host.
MESSAGE_OPTIONS = frozenset(
    {
        # what runs, as whom, where
        "command",
        "entrypoint",
        "environment",
        "working_dir",
        "user",
        "group_add",
        "hostname",
        "domainname",
        "name",
        "labels",
        "platform",
        "stop_signal",
        "init",
        "healthcheck",
        "read_only",
        "tmpfs",
        "cap_drop",
        # resources: limits on the container
        "shm_size",
        "mem_limit",
        "mem_reservation",
        "memswap_limit",
        "mem_swappiness",
        "nano_cpus",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_shares",
        "cpuset_cpus",
        "cpuset_mems",
        "blkio_weight",
        "pids_limit",
        "ulimits",
        # names inside the container's own network namespace
        "dns",
        "dns_opt",
        "dns_search",
        "extra_hosts",
        "mac_address",
        "network_disabled",
    }
)

#: Options a message may set to some values only: a value outside the set is refused.
CHECKED_OPTIONS: Mapping[str, frozenset[Any]] = {
    "network_mode": frozenset({"none"}),  # plus the engine's default when the site sets none
    "network": frozenset({"none"}),
    "ipc_mode": frozenset({"", "private", "shareable", "none"}),
    "runtime": frozenset({"nvidia", "runc"}),  # nvidia becomes the GPU request the worker makes
}

#: network_mode values that only name the engine's default network.
_DEFAULT_NETWORKS = frozenset({"bridge", "default"})

#: Why the common dangerous options are refused, for the refusal's line.
_WHY = {
    "privileged": "it gives the container every device and capability of the host",
    "cap_add": "capabilities let the container act on the host's kernel",
    "devices": "it gives the container a device of the host",
    "device_requests": "it gives the container devices of the host",
    "device_cgroup_rules": "it gives the container devices of the host",
    "network_mode": "it joins the container to a network other than its own or none",
    "network": "it joins the container to a network other than its own or none",
    "pid_mode": "it shows the container the host's or another container's processes",
    "ipc_mode": "it shares the host's or another container's memory with the container",
    "userns_mode": "it turns off user namespace remapping",
    "uts_mode": "it lets the container rename the host",
    "security_opt": "it can turn off the container's seccomp and AppArmor confinement",
    "volumes_from": "it mounts another container's volumes",
    "sysctls": "it changes kernel settings",
    "mounts": "it mounts host paths and volumes",
    "ports": "it publishes the container's ports on the host",
    "publish_all_ports": "it publishes the container's ports on the host",
    "log_config": "a logging driver sends data from the host's daemon",
    "cgroup_parent": "it moves the container out of the engine's cgroup",
    "cgroupns": "it shares the host's cgroup namespace",
    "oom_kill_disable": "the host's processes would be killed before the container's",
    "oom_score_adj": "the host's processes could be killed before the container's",
    "runtime": "another runtime may not isolate the container",
    "links": "it reaches another container",
    "init_path": "it runs a host binary in the container",
    "volume_driver": "a volume driver reaches outside the container",
}

#: Message options that loosen a site's option from beside it: when the site sets the key (and
#: ALLOW_OPTIONS does not name it), a message may set these only if ALLOW_OPTIONS names them.
#: Each with why, for the refusal's line. Options that would only conflict with the site's (Docker
#: refuses nano_cpus with cpu_quota, mem_reservation above mem_limit) need no entry.
_NEIGHBOURS: Mapping[str, Mapping[str, str]] = {
    "user": {"group_add": "a supplementary group such as 0 reaches the root-owned files of the mounts"},
    "mem_limit": {"memswap_limit": "it lets the container swap beyond the memory limit"},
    "cpu_quota": {"cpu_period": "a shorter period gives the same quota more CPU time"},
}

#: Options that are merged key by key with the site's instead of replacing them.
_MERGED = frozenset({"environment", "labels"})


class DockerRunNotAllowed(RuntimeError):
    """A ``docker_run`` message asked for what this worker does not let a message do.

    The message is one line: the task, what was refused and the setting that allows it.
    """


_own: ContextVar[set[str] | None] = ContextVar("girder_worker_docker_own_volumes", default=None)


@contextlib.contextmanager
def run_scope() -> Iterator[set[str]]:
    """The scope of one run: temporary volumes made inside it may be mounted in its container."""
    paths: set[str] = set()
    token = _own.set(paths)
    try:
        yield paths
    finally:
        _own.reset(token)


def own_volume(host_path: str) -> None:
    """Record a temporary volume the worker made for the run in progress."""
    paths = _own.get()
    if paths is not None:
        paths.add(os.path.realpath(host_path))


def own_volumes() -> frozenset[str]:
    """The temporary volumes made in the run in progress (real paths)."""
    return frozenset(_own.get() or ())


def check_temporary_dir(host_dir: str, task_id: str | None) -> None:
    """Refuse a ``TemporaryVolume(host_dir=...)`` outside the system's temporary directory and the
    directories of ``GIRDER_WORKER_DOCKER_HOST_PATHS``: the worker would make it, and the container write there.
    """
    import tempfile

    policy = policy_from_env()
    real = os.path.realpath(host_dir)
    tops = [os.path.realpath(tempfile.gettempdir()), *(top for top, ro in policy.host_paths if not ro)]
    if "volumes" in policy.allow_options or any(is_under(real, top) for top in tops):
        return
    raise DockerRunNotAllowed(
        f"docker_run {task_id}: the message makes a temporary volume in {safe_text(repr(host_dir), 200)}, which "
        f"is neither in {tempfile.gettempdir()} nor under {HOST_PATHS}; add the directory to {HOST_PATHS} "
        "in the worker's environment to allow it"
    )


def host_path(path: str, mode: str = "rw", verb: str = "uses") -> str:
    """The real path of a host path a transform reads, writes or mounts for the run in progress.

    A transform's attributes come from the message (the wire format restores them
    without running a constructor), so a volume's, a pipe's or a file's host path
    is held against the run's own temporary volumes and ``GIRDER_WORKER_DOCKER_HOST_PATHS``
    before the worker touches it, as the container's mounts are.
    """
    from celery import current_task

    task_id = getattr(getattr(current_task, "request", None), "id", None)
    return policy_from_env(own_paths=own_volumes()).checked_bind(path, mode, task_id, verb)


def inside(root: str, relative: str, what: str) -> str:
    """``root/relative`` resolved, when it stays inside ``root`` (resolved); else :class:`DockerRunNotAllowed`.

    A container can leave a link in its volume (``out.txt -> /etc/shadow``) for a
    result hook to follow on the host; the resolved path shows where it goes.
    """
    top = os.path.realpath(root)
    real = os.path.realpath(os.path.join(top, str(relative)))
    if not is_under(real, top):
        raise DockerRunNotAllowed(
            f"docker_run: {what} {safe_text(repr(relative), 200)} leads out of its volume (to "
            f"{safe_text(repr(real), 200)}); the worker does not follow it"
        )
    return real


def _shown(value: Any) -> str:
    return safe_text(repr(value), 80)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def environment_dict(environment: Mapping[str, Any] | list[Any] | tuple[Any, ...]) -> dict[str, str | None]:
    """A container's ``environment`` as a dict, from either of the SDK's forms: a dict, or a list of
    ``"NAME=value"``. A ``"NAME"`` without ``=`` is ``NAME: None`` (Docker then removes NAME from the
    image's environment, as for a None in the dict); values become the strings Docker gets.
    """
    if isinstance(environment, Mapping):
        return {_text(name): None if value is None else _text(value) for name, value in environment.items()}
    variables: dict[str, str | None] = {}
    for entry in environment:
        name, equals, value = _text(entry).partition("=")
        variables[name] = value if equals else None
    return variables


def _entries(key: str, value: Any, whose: str, task_id: str | None) -> dict[str, Any]:
    """``environment`` or ``labels`` as a dict (a list of labels names labels with empty values)."""
    if key == "environment" and isinstance(value, (Mapping, list, tuple)):
        return environment_dict(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return {_text(name): "" for name in value}
    raise DockerRunNotAllowed(
        f"docker_run {task_id}: {whose} is a {type(value).__name__}, which is neither a mapping nor a list; "
        "give a dict of names and values"
    )


@dataclass(frozen=True)
class Policy:
    """The site's docker_run policy; :func:`policy_from_env` reads it from the environment.

    Args:
        allow_options: option names a message may set to any value.
        host_paths: ``(real directory, read-only only)`` pairs binds may come from.
        images: glob patterns of the images that may run; empty: any.
    """

    allow_options: frozenset[str] = frozenset()
    host_paths: tuple[tuple[str, bool], ...] = ()
    images: tuple[str, ...] = ()
    own_paths: frozenset[str] = field(default_factory=frozenset)

    def check_image(self, image: str, task_id: str | None) -> None:
        if not self.images:
            return
        names = {image}
        for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"):
            if image.startswith(prefix):
                names.add(image[len(prefix) :])
        if any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in self.images):
            return
        raise DockerRunNotAllowed(
            f"docker_run {task_id}: image {safe_text(repr(image), 200)} is not one this worker runs "
            f"({IMAGES}={','.join(self.images)}); add a pattern for it to {IMAGES}"
        )

    def check_option(self, key: str, value: Any, site: Mapping[str, Any], task_id: str | None) -> None:
        if key in site:
            self.check_site_option(key, value, site, task_id)
            return
        for fixed, guarded in _NEIGHBOURS.items():
            if key in guarded and fixed in site and not {key, fixed} & self.allow_options:
                raise DockerRunNotAllowed(
                    f"docker_run {task_id}: the message asks for {key}={_shown(value)}, but the site sets "
                    f"{fixed}={_shown(site[fixed])} in {RUN_OPTIONS}, which {key} would loosen ({guarded[key]}); "
                    f"to let messages set it, add {key} to {ALLOW_OPTIONS} in the worker's environment"
                )
        self.check_reach(key, value, site, task_id)

    def check_reach(self, key: str, value: Any, site: Mapping[str, Any], task_id: str | None) -> None:
        """Refuse an option that reaches the host, whatever the site sets."""
        if key in MESSAGE_OPTIONS or key in self.allow_options:
            return
        allowed = CHECKED_OPTIONS.get(key)
        if allowed is not None:
            if isinstance(value, str) and value in allowed:
                return
            if key in ("network_mode", "network") and value in _DEFAULT_NETWORKS and key not in site:
                return  # what the container gets anyway
        why = _WHY.get(key, "it is not an option this worker lets a message set")
        raise DockerRunNotAllowed(
            f"docker_run {task_id}: the message asks for {safe_text(key, 60)}={_shown(value)}, which a message "
            f"may not set ({why}); to allow it, set it in {RUN_OPTIONS} or add {safe_text(key, 60)} to "
            f"{ALLOW_OPTIONS} in the worker's environment"
        )

    def check_site_option(self, key: str, value: Any, site: Mapping[str, Any], task_id: str | None) -> None:
        """Refuse a message's value of an option the site sets, unless it is the same or the site allows it.

        A value that reaches the host gets that line (it says why), any other this one.
        """
        if key in _MERGED:
            self.merged(key, value, site[key], task_id)
        elif value != site[key] and key not in self.allow_options:
            self.check_reach(key, value, site, task_id)
            name = safe_text(key, 60)
            raise DockerRunNotAllowed(
                f"docker_run {task_id}: the message asks for {name}={_shown(value)}, but the site sets "
                f"{name}={_shown(site[key])} in {RUN_OPTIONS}, which a message may not change; to let messages "
                f"change it, add {name} to {ALLOW_OPTIONS} in the worker's environment"
            )

    def merged(self, key: str, value: Any, site_value: Any, task_id: str | None) -> dict[str, Any]:
        """The message's ``environment`` or ``labels`` with the site's: the site's keys keep their values
        (the message's win where ``GIRDER_WORKER_DOCKER_ALLOW_OPTIONS`` names the option).

        The site's values are not shown in a refusal: an environment may hold the site's secrets.
        """
        site_entries = _entries(key, site_value, f"the site's {key} in {RUN_OPTIONS}", task_id)
        entries = _entries(key, value, f"the message's {key}", task_id)
        if key in self.allow_options:
            return {**site_entries, **entries}
        for name, entry in entries.items():
            if name in site_entries and entry != site_entries[name]:
                shown = safe_text(name, 60)
                raise DockerRunNotAllowed(
                    f"docker_run {task_id}: the message asks for {shown}={_shown(entry)} in the container's {key}, "
                    f"but the site sets {shown} to another value in {RUN_OPTIONS}, which a message may not change; "
                    f"to let messages change it, add {key} to {ALLOW_OPTIONS} in the worker's environment"
                )
        return {**entries, **site_entries}

    def checked_bind(self, host: str, mode: str, task_id: str | None, verb: str = "mounts") -> str:
        """The real path to bind for the message's ``host`` path, or :class:`DockerRunNotAllowed`."""
        shown = safe_text(repr(host), 200)
        if "volumes" in self.allow_options:
            return host
        if not isinstance(host, str) or not os.path.isabs(host) or "\0" in host:
            raise DockerRunNotAllowed(
                f"docker_run {task_id}: the message {verb} {shown}, which is not a host directory (named "
                f"Docker volumes hold other containers' data); to mount it, set it in {RUN_OPTIONS}"
            )
        real = os.path.realpath(host)
        if any(is_under(real, own) for own in self.own_paths):
            return real
        read_only = "ro" in str(mode).split(",")
        for top, ro_only in self.host_paths:
            if is_under(real, top) and (read_only or not ro_only):
                return real
        if any(is_under(real, top) for top, _ in self.host_paths):
            raise DockerRunNotAllowed(
                f"docker_run {task_id}: the message {verb} {shown} with mode {_shown(mode)}, but "
                f"{HOST_PATHS} allows it read-only only; mount it with mode 'ro'"
            )
        listed = ":".join(top + ("=ro" if ro else "") for top, ro in self.host_paths) or "unset"
        resolved = f" (really {safe_text(repr(real), 200)})" if real != host else ""
        raise DockerRunNotAllowed(
            f"docker_run {task_id}: the message {verb} the host path {shown}{resolved}, which is neither a "
            f"temporary volume of the run nor under {HOST_PATHS} ({listed}); add its directory to "
            f"{HOST_PATHS} in the worker's environment to allow it"
        )


def _parse_host_paths(text: str) -> tuple[tuple[str, bool], ...]:
    paths = []
    for entry in (e.strip() for e in text.split(os.pathsep)):
        if not entry:
            continue
        given, ro = (entry[: -len("=ro")], True) if entry.endswith("=ro") else (entry, False)
        if not os.path.isabs(given) or ".." in given.split(os.sep):
            raise DockerRunNotAllowed(
                f"{HOST_PATHS}: {given!r} is not an absolute path without '..'; list absolute directories "
                "separated by ':', each optionally followed by =ro, e.g. /srv/scratch:/assetstore=ro"
            )
        real = os.path.realpath(given)
        if real == os.sep:
            raise DockerRunNotAllowed(
                f"{HOST_PATHS}: {given!r} is the root directory, which would let any message mount any host "
                "file into a container; list the directories containers need, e.g. /srv/scratch"
            )
        paths.append((real, ro))
    return tuple(paths)


def policy_from_env(env: Mapping[str, str] | None = None, own_paths: frozenset[str] = frozenset()) -> Policy:
    """The policy the environment's ``GIRDER_WORKER_DOCKER_*`` variables say (read at each run)."""
    env = os.environ if env is None else env
    allow = frozenset(o.strip() for o in env.get("GIRDER_WORKER_DOCKER_ALLOW_OPTIONS", "").split(",") if o.strip())
    images_text = env.get("GIRDER_WORKER_DOCKER_IMAGES", "").strip()
    images = () if images_text in ("", "*") else tuple(p.strip() for p in images_text.split(",") if p.strip())
    host_paths = _parse_host_paths(env.get("GIRDER_WORKER_DOCKER_HOST_PATHS", ""))
    return Policy(allow_options=allow, host_paths=host_paths, images=images, own_paths=own_paths)


def _mode(spec: Any) -> str:
    if not isinstance(spec, Mapping):
        return "rw"  # {host: "/container/path"}
    return str(spec.get("mode") or ("ro" if spec.get("ro") else "rw"))


def _binds(volumes: Any) -> Iterator[tuple[Any, Any, str]]:
    """``(host, the mount's value, mode)`` of each mount, in either of the SDK's ``volumes`` forms."""
    if isinstance(volumes, Mapping):
        for host, spec in volumes.items():
            yield host, spec, _mode(spec)
    elif isinstance(volumes, (list, tuple)):
        for spec in volumes:  # "host:container[:mode]"
            host, bind, mode = [*str(spec).split(":", 2), "", "rw"][:3]
            yield host, {"bind": bind, "mode": mode}, mode
    elif volumes:
        raise DockerRunNotAllowed(f"docker_run: volumes {_shown(volumes)} is neither a list nor a mapping of mounts")


def check(
    image: str,
    message: Mapping[str, Any],
    volumes: Any,
    site: Mapping[str, Any],
    task_id: str | None,
    policy: Policy,
) -> dict[str, Any]:
    """Refuse what the message may not ask for; return its binds with their real host paths.

    Args:
        image: the image the message names.
        message: the container options that came from the message (not the site's), ``entrypoint`` too.
        volumes: the message's mounts, as the SDK takes them (a dict or a list).
        site: ``GIRDER_WORKER_DOCKER_RUN_OPTIONS``, parsed.
        task_id: the task's id, for the refusal's line.
        policy: the site's policy.

    Raises:
        DockerRunNotAllowed: one line naming what was refused and how to allow it.
    """
    policy.check_image(image, task_id)
    for key, value in message.items():
        policy.check_option(key, value, site, task_id)
    binds: dict[str, Any] = {}
    for host, spec, mode in _binds(volumes):
        binds[policy.checked_bind(host, mode, task_id)] = spec
    return binds


def container_options(
    message: Mapping[str, Any], site: Mapping[str, Any], policy: Policy, task_id: str | None
) -> dict[str, Any]:
    """The container's options, once :func:`check` let the message's through: the site's, with the
    message's over them (each is new, the same, or allowed), ``environment`` and ``labels`` merged.
    """
    options = dict(site)
    for key, value in message.items():
        options[key] = policy.merged(key, value, site[key], task_id) if key in _MERGED and key in site else value
    return options
