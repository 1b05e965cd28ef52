"""Building the fleet's image here, offline: a Debian 12 base from debootstrap, a wheelhouse, podman.

* The base: ``debootstrap --variant=minbase`` of Debian 12 with python3, venv and redis-server,
  from the Debian mirror this machine's apt already uses, stripped and kept as a tarball in the
  cache (keyed by suite, packages, mirror and debootstrap's version). ``podman import`` makes it
  an image.
* The wheelhouse: every wheel the image installs, resolved for the base's own Python and glibc.
  ``pip download --python-version`` picks wheels for the target but evaluates environment
  markers against the host's interpreter, so a host on 3.11.7 leaves out ``async-timeout``, which
  redis needs below 3.11.3 (the base has 3.11.2). The wheelhouse is therefore closed under the
  target's markers: every requirement of every wheel, evaluated for the base, must be there.
* podman with a configuration and storage of the test's own (runc, cgroupfs, ulimits), so
  nothing of the machine's podman setup is used or changed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.deploy.host import CACHE_DIR, REPO_ROOT, apt_install, cache_key, cached, say

SUITE = "bookworm"
# What building and running containers here needs ({command or file: Debian package}).
HOST_PACKAGES = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap", "ip": "iproute2",
                 "/usr/lib/podman/netavark": "netavark", "/usr/lib/podman/aardvark-dns": "aardvark-dns",
                 # netavark sets up the pod network's NAT with iptables (ENOENT from netavark without it)
                 "iptables": "iptables"}
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "redis-server")
STRIP = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale",
         "usr/share/info")

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
pids_limit = 4096

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
image_default_transport = "containers-storage:"
"""
# Nothing is pulled: every image the test runs is built or tagged locally.
REGISTRIES_CONF = """\
unqualified-search-registries = []
short-name-mode = "permissive"
"""


def debian_mirror(suite: str = SUITE) -> str | None:
    """The Debian archive this machine's apt uses for ``suite`` (deb822 or one-line sources)."""
    sources = Path("/etc/apt")
    for path in sorted([sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.M))
                if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
                    return fields.get("URIs", "").split()[0]
        else:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == suite:
                    return next(p for p in parts[1:] if not p.startswith("["))
    return None


def _debootstrap_version() -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "debootstrap"], capture_output=True, text=True)
    return done.stdout.strip()


@dataclass(frozen=True)
class BaseRootfs:
    tarball: Path
    python_version: str  # e.g. 3.11.2
    glibc: str           # e.g. 2.36

    @property
    def key(self) -> str:
        return self.tarball.parent.name


def debian_rootfs(mirror: str) -> BaseRootfs:
    """The Debian 12 base as a tarball (cached; about a minute to build, 130 MB)."""
    key = cache_key({"suite": SUITE, "packages": BASE_PACKAGES, "mirror": mirror, "strip": STRIP,
                     "debootstrap": _debootstrap_version(), "arch": os.uname().machine})
    folder = CACHE_DIR / f"debian-{SUITE}-{key}"

    def build(target: Path) -> None:
        say(f"debootstrap {SUITE} (minbase + {', '.join(BASE_PACKAGES)})")
        target.mkdir()
        root = target / "rootfs"
        try:
            subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE,
                            str(root), mirror], check=True, capture_output=True, timeout=900)
            for rel in STRIP:
                for child in (root / rel).glob("*"):
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            probe = ("import json, platform; "
                     "print(json.dumps({'python': platform.python_version(), 'glibc': platform.libc_ver()[1]}))")
            facts = json.loads(subprocess.run(["chroot", str(root), "/usr/bin/python3", "-c", probe],
                                              check=True, capture_output=True, text=True).stdout)
            (target / "meta.json").write_text(json.dumps(facts))
            subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(target / "rootfs.tar"), "."],
                           check=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    cached(folder, build)
    facts = json.loads((folder / "meta.json").read_text())
    return BaseRootfs(folder / "rootfs.tar", facts["python"], facts["glibc"])


# ---- the wheelhouse ------------------------------------------------------------------------------

def image_requirements(variant: str) -> list[str]:
    """What deploy/Dockerfile installs: the project's dependencies with the ``server`` and ``variant``
    extras, and its build backend."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    return [*project["project"]["dependencies"], *extras["server"], *extras[variant],
            *project["build-system"]["requires"]]


def target_environment(python_version: str) -> dict[str, str]:
    env = default_environment()
    env.update(python_full_version=python_version, python_version=".".join(python_version.split(".")[:2]),
               implementation_version=python_version, implementation_name="cpython",
               platform_python_implementation="CPython")
    return env


def _wheel_metadata(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(zf.read(name).decode("utf-8")).get_all("Requires-Dist") or []


def unmet_requirements(wheelhouse: Path, requirements: Iterable[str], python_version: str) -> list[str]:
    """Requirements (evaluated for ``python_version``) that no wheel in ``wheelhouse`` satisfies."""
    env = target_environment(python_version)
    wheels = {}
    for path in wheelhouse.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        wheels[canonicalize_name(name)] = (version, path)
    queue = [Requirement(r) for r in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    missing: list[str] = []
    while queue:
        req = queue.pop()
        if req.marker is not None and not any(req.marker.evaluate({**env, "extra": e}) for e in ("",)):
            continue
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        found = wheels.get(key[0])
        if found is None or not req.specifier.contains(found[0], prereleases=True):
            missing.append(f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}{req.specifier}")
            continue
        for line in _wheel_metadata(found[1]):
            dep = Requirement(line)
            extras = ("", *req.extras)
            if dep.marker is None or any(dep.marker.evaluate({**env, "extra": e}) for e in extras):
                dep.marker = None
                queue.append(dep)
    return sorted(set(missing))


def manylinux_platforms(glibc: str) -> list[str]:
    major, minor = (int(x) for x in glibc.split(".")[:2])
    return [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 16, -1)] + ["manylinux2014_x86_64"]


def wheelhouse(variant: str, python_version: str, glibc: str) -> Path:
    """Every wheel the image needs, for the base's Python and glibc (cached by those and the requirements)."""
    requirements = image_requirements(variant)
    platforms = manylinux_platforms(glibc)
    key = cache_key({"requirements": requirements, "python": python_version, "platforms": platforms})
    folder = CACHE_DIR / f"wheelhouse-{variant}-py{python_version}-{key}"
    abi = "cp" + "".join(python_version.split(".")[:2])

    def download(target: Path, reqs: list[str]) -> None:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(target),
               "--python-version", python_version, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
               "--abi", "none", *[f"--platform={p}" for p in platforms], *reqs]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"pip download failed:\n{done.stderr[-2000:]}")

    def build(target: Path) -> None:
        say(f"wheelhouse for Python {python_version} (glibc {glibc}): {len(requirements)} requirements")
        target.mkdir()
        download(target, requirements)
        for _ in range(5):
            missing = unmet_requirements(target, requirements, python_version)
            if not missing:
                return
            say(f"wheelhouse: adding what Python {python_version} needs and the host's pip left out: {missing}")
            download(target, missing)
        raise RuntimeError(f"the wheelhouse stays incomplete: {missing}")

    return cached(folder, build)


# ---- podman --------------------------------------------------------------------------------------

class Podman:
    """podman with a configuration of its own under ``state``, and there its storage too (removed by
    ``reset``) unless ``own_storage`` is false (then images land in the machine's podman storage)."""

    def __init__(self, state: Path, own_storage: bool = True) -> None:
        self.state, self.own_storage = state, own_storage
        for sub in ("root", "runroot", "tmp", "networks") if own_storage else ():
            (state / sub).mkdir(parents=True, exist_ok=True)
        state.mkdir(parents=True, exist_ok=True)
        (state / "containers.conf").write_text(CONTAINERS_CONF)
        (state / "registries.conf").write_text(REGISTRIES_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(state / "containers.conf"),
                    "CONTAINERS_REGISTRIES_CONF": str(state / "registries.conf")}

    def argv(self, *args: str) -> list[str]:
        s = self.state
        if not self.own_storage:
            return ["podman", *args]
        return ["podman", "--root", str(s / "root"), "--runroot", str(s / "runroot"), "--tmpdir", str(s / "tmp"),
                "--network-config-dir", str(s / "networks"), *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 120,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True, timeout=timeout,
                              input=input)
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:3])} ... failed ({done.returncode}):\n"
                               f"{done.stderr[-3000:]}")
        return done

    def works(self) -> str | None:
        """None when podman can run a container here, else why not."""
        done = self("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}", check=False)
        return None if done.returncode == 0 else f"podman info failed: {done.stderr.strip()[-500:]}"

    def reset(self) -> None:
        """Remove every container, pod, network and image, then the storage itself."""
        assert self.own_storage, "only podman storage of our own is ever reset"
        for args in (("rm", "--all", "--force", "--time", "0"), ("network", "prune", "--force"),
                     ("rmi", "--all", "--force"), ("system", "reset", "--force")):
            self(*args, check=False, timeout=180)
        subprocess.run(["umount", "--recursive", "--lazy", str(self.state / "root")], capture_output=True)
        shutil.rmtree(self.state, ignore_errors=True)


def import_base(podman: Podman, rootfs: BaseRootfs) -> str:
    name = f"localhost/fleet-test-debian12:{rootfs.key}"
    podman("import", "--change", "CMD [\"/bin/bash\"]", str(rootfs.tarball), name, timeout=300)
    return name


def build_image(podman: Podman, base: str, wheels: Path, tag: str, variant: str = "cpu") -> None:
    """deploy/Dockerfile, offline: the base above, the wheelhouse mounted, no network."""
    revision = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True).stdout.strip() or "unknown"
    podman("build", "--network=none", "--pull=never", "--layers=false", "-f", str(REPO_ROOT / "deploy/Dockerfile"),
           "-v", f"{wheels}:/wheels:ro", "--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"VARIANT={variant}",
           "--build-arg", "PIP_INSTALL_FLAGS=--no-index --find-links=/wheels", "--build-arg", f"REVISION={revision}",
           "--build-arg", f"CREATED={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
           "-t", tag, str(REPO_ROOT), timeout=900)


def main(argv: list[str] | None = None) -> None:
    """``make image-offline``: the CPU image built on a machine that reaches no container registry."""
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--tag", default=f"inference-fleet:{version}-cpu", help="image name (default: %(default)s)")
    args = parser.parse_args(argv)
    problem = apt_install(HOST_PACKAGES)
    mirror = debian_mirror()
    if problem or mirror is None:
        raise SystemExit(problem or "no Debian 12 mirror in this machine's apt sources")
    rootfs = debian_rootfs(mirror)
    wheels = wheelhouse("cpu", rootfs.python_version, rootfs.glibc)
    podman = Podman(CACHE_DIR / "podman-conf", own_storage=False)
    base = import_base(podman, rootfs)
    say(f"building {args.tag} on {base}")
    build_image(podman, base, wheels, args.tag)
    print(f"built {args.tag} in this machine's podman storage (base {base})")


if __name__ == "__main__":
    main()
