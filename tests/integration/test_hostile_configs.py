"""A campaign of generated hostile configs against create.

Every generated config goes through create's own checks in this process (lifecycle.create's
check: load and validate config.json, plan the rootfs, prepare the process security, check the
cgroup resources — exactly what `ocirt create` runs before its first side effect). An invalid
one must raise a ConfigError naming a JSON path related to what was broken; nothing else may
escape. A fixed sample then goes through the real `ocirt create`, which must exit 1 with the
same one line, and leave nothing behind: no state dir, cgroup, mount or process, and the host's
cgroups, mounts, hostname and sysctls as they were. Generated valid configs run for real and
must either run or fail with one clean line.

Hypothesis runs derandomized without a database, so every run tries the same examples.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest

# Hypothesis keeps caches (not examples: the database is off) in a directory of its own, not in
# the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", "/tmp/ocirt-tests-hypothesis")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from ocirt.config.semantic import format_path  # noqa: E402
from ocirt.errors import ConfigError, OcirtError  # noqa: E402
from ocirt.lifecycle import create as create_mod  # noqa: E402
from ocirt.log import logger  # noqa: E402
from ocirt.state.store import Store  # noqa: E402
from ocirt_testlib import cgroup_dirs_named, host_mounts, pids_with_cmdline, unique_id  # noqa: E402

CAMPAIGN = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))

Parts = tuple  # a JSON path as keys and indexes


def base_config(template_cfg: dict, rootfs: Path) -> dict[str, Any]:
    """A config that passes every check here and uses most fields, so a mutation anywhere
    lands on something create really reads."""
    d = copy.deepcopy(template_cfg)
    d["root"] = {"path": str(rootfs), "readonly": False}
    d["process"]["args"] = ["true"]
    d["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [1, 2], "umask": 18}
    d["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]
    d["process"]["oomScoreAdj"] = 10
    d["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    d["process"]["scheduler"] = {"policy": "SCHED_OTHER", "nice": 1}
    d["process"]["consoleSize"] = {"height": 25, "width": 80}
    d["hostname"] = "hostile"
    d["domainname"] = "example"
    d["annotations"] = {"org.example/key": "value"}
    d["hooks"] = {"createRuntime": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"],
                                     "timeout": 5}]}
    lx = d["linux"]
    names = {n["type"] for n in lx["namespaces"]}
    for t in ("ipc", "uts", "network", "mount", "pid", "time"):
        if t not in names:
            lx["namespaces"].append({"type": t})
    lx["sysctl"] = {"net.ipv4.ip_forward": "0", "kernel.shmmni": "4096",
                    "kernel.domainname": "example"}
    lx["devices"] = [{"path": "/dev/hostile0", "type": "c", "major": 1, "minor": 3,
                      "fileMode": 0o666, "uid": 0, "gid": 0}]
    lx["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                     "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO",
                                   "errnoRet": 1}]}
    lx["seccomp"]["syscalls"].append({"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]})
    lx["personality"] = {"domain": "LINUX"}
    lx["timeOffsets"] = {"monotonic": {"secs": 3600, "nanosecs": 0}}
    return d


def with_user_namespace(base: dict) -> dict:
    """The base in a new user namespace with id maps: checked here, never run (the rootfs is
    not owned by the mapped root)."""
    d = copy.deepcopy(base)
    lx = d["linux"]
    lx["namespaces"].append({"type": "user"})
    lx["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    lx["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return d


class Campaign:
    """Runs configs through create's checks in-process and keeps a sample for the CLI."""

    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "log"  # create's warnings (unknown capabilities...) go there
        self.store = Store(str(tmp / "state"))
        self.bundle = tmp / "bundle"
        self.bundle.mkdir()
        self.counts: Counter[str] = Counter()
        self.samples: list[tuple[bytes, str]] = []  # (config.json, expected message)

    def check(self, text: bytes) -> OcirtError | None:
        """create's checks on this config.json; the error they raise, or None."""
        (self.bundle / "config.json").write_bytes(text)
        self.checked = None
        try:
            self.checked = create_mod.check(self.store, "hostile",
                                             create_mod.Options(bundle=str(self.bundle)))
        except OcirtError as e:
            assert "\n" not in str(e), f"not one line: {str(e)!r}"
            assert "internal error" not in str(e)
            return e
        return None  # any other exception fails the test: that is the point

    def invalid(self, text: bytes, kind: str, sample_every: int = 20) -> ConfigError:
        err = self.check(text)
        assert isinstance(err, ConfigError), f"{kind}: accepted or not a config error: {err!r}"
        self.refused(kind, text, err, sample_every)
        return err

    def refused(self, kind: str, text: bytes, err: OcirtError, sample_every: int = 20) -> None:
        """Count a refusal; every sample_every-th goes to the CLI sample."""
        self.counts[kind] += 1
        if (self.counts[kind] - 1) % sample_every == 0:
            self.samples.append((text, str(err)))


    def cli_agrees(self, ocirt, tmp: Path, host: HostWatch, minimum: int = 10) -> None:
        """The sampled configs through the real `ocirt create`: the same one line, exit 1,
        nothing left behind and nothing of the host changed."""
        assert len(self.samples) >= minimum
        # The in-process checks' own bundle directory: a relative root.path or mount source
        # is named in the message as it resolves there.
        bundle = self.bundle
        for text, expected in self.samples:
            cid = unique_id("hostile")
            (bundle / "config.json").write_bytes(text)
            p = ocirt("create", "--bundle", str(bundle), cid,
                      global_args=("--log", str(tmp / "log.json"), "--log-format", "json"))
            # runc's words around create's own message
            assert (p.returncode, p.stderr.decode()) == (1, f"ocirt create failed: {expected}\n")
            assert ocirt.ids() == [] and pids_with_cmdline(cid) == []
            assert cgroup_dirs_named(cid) == []
        host.assert_unchanged()
        print(f"CLI sample: {len(self.samples)} configs")
        self.samples.clear()


def dump(doc: object) -> bytes:
    return json.dumps(doc).encode()


def paths_of(v: object, at: Parts = ()) -> list[Parts]:
    """Every JSON path in a document, containers included."""
    out = [at]
    if isinstance(v, dict):
        for k, x in v.items():
            out += paths_of(x, at + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += paths_of(x, at + (i,))
    return out


def set_at(doc: dict, at: Parts, value: object) -> dict:
    d = copy.deepcopy(doc)
    cur: Any = d
    for p in at[:-1]:
        cur = cur[p]
    cur[at[-1]] = value
    return d


def related(err_path: str, at: Parts) -> bool:
    """The error names the broken field, something inside it, the object holding it or another
    field of that object, or a field that the broken one depends on (namespaces decide what
    other fields may do)."""
    mut = format_path(at)
    if err_path.startswith(mut) or mut.startswith(err_path):
        return True
    parent = format_path(at[:-1])
    if len(at) > 1 and err_path.startswith(parent):
        return True  # a rule on two fields of one object (a mount's type and destination)
    return mut.startswith("linux.namespaces") or "linux.namespaces".startswith(mut)


# Values that no field of the base takes as they are: wrong types, out-of-range numbers,
# hostile strings, huge and deep values.
def deep(n: int) -> list:
    v: list = []
    for _ in range(n):
        v = [v]
    return v


HOSTILE_VALUES = st.sampled_from([
    None, True, False, 0, -1, 1.5, 2**31, 2**32, 2**63, 2**64, -2**63 - 1, 10**30,
    "", "\0", "a\0b", "/\0", "..", "../../../etc/passwd", "/proc/1/root", "x" * 100_000,
    [], [None], [""], ["\0"], [2**64], {}, {"": ""}, {"\0": 1}, deep(200), list(range(20_000)),
])
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
                                                                           allow_infinity=False),
                         st.text(max_size=20))
RANDOM_JSON = st.recursive(JSON_SCALARS, lambda c: st.lists(c, max_size=4)
                           | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)


class HostWatch:
    """What a container must never change on the host: the cgroups of PID 1 and of a canary
    process, the mount table, the hostname and domainname, and host-wide sysctls."""

    # Where other test runs on this machine make and remove their own mounts at any time.
    SCRATCH = ("/tmp/", "/var/tmp/", "/run/", "/var/lib/")

    def __init__(self, ours: Path) -> None:
        self.ours = str(ours) + "/"
        self.canary = subprocess.Popen(["sleep", "600"])
        self.before = self.view()

    def mounts(self) -> list[str]:
        return sorted(m for m in host_mounts()
                      if m.startswith(self.ours) or not m.startswith(self.SCRATCH))

    def view(self) -> dict[str, object]:
        def read(p: str) -> str:
            return Path(p).read_text()
        return {"pid1 cgroup": read("/proc/1/cgroup"),
                "canary cgroup": read(f"/proc/{self.canary.pid}/cgroup"),
                "mounts": self.mounts(), "hostname": socket.gethostname(),
                "domainname": read("/proc/sys/kernel/domainname"),
                "core_pattern": read("/proc/sys/kernel/core_pattern"),
                "ip_forward": read("/proc/sys/net/ipv4/ip_forward"),
                "shmmni": read("/proc/sys/kernel/shmmni")}

    def assert_unchanged(self) -> None:
        now = self.view()
        gone = sorted(set(self.before["mounts"]) - set(now["mounts"]))
        new = sorted(set(now["mounts"]) - set(self.before["mounts"]))
        assert now == self.before, f"mounts gone {gone}, new {new}"


@pytest.fixture
def host(tmp_path_factory):
    w = HostWatch(tmp_path_factory.getbasetemp())
    yield w
    w.canary.kill()
    w.canary.wait()


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, template) -> tuple[Campaign, dict]:
    rootfs, cfg = template
    c = Campaign(tmp_path_factory.mktemp("hostile"))
    logger.configure(str(c.log), "text", False)
    base = base_config(cfg, rootfs)
    err = c.check(dump(base))
    if err is not None:
        pytest.skip(f"the base config does not pass on this host: {err}")
    yield c, base
    logger.configure("", "text", False)


def test_a_hostile_value_anywhere_fails_at_a_related_field(campaign, ocirt, tmp_path, host) -> None:
    c, base = campaign
    c.samples.clear()
    userns = with_user_namespace(base)
    assert c.check(dump(userns)) is None
    targets = [(base, p) for p in paths_of(base) if p]
    targets += [(userns, p) for p in paths_of(userns) if p[:2] in (("linux", "uidMappings"),
                                                                   ("linux", "gidMappings"))]

    @settings(CAMPAIGN, max_examples=800)
    @given(st.sampled_from(targets), st.one_of(HOSTILE_VALUES, RANDOM_JSON))
    def prop(target: tuple[dict, Parts], value: object) -> None:
        doc, at = target
        doc = set_at(doc, at, value)
        err = c.check(dump(doc))
        if err is None:
            c.counts["accepted"] += 1
            return
        if at == ("process", "terminal") and value is True:
            return  # runc's own words, which managers know: no console socket for the tty
        assert isinstance(err, ConfigError), f"{format_path(at)} = {value!r:.80}: {err}"
        assert err.path and related(err.path, at), f"{format_path(at)} = {value!r:.80}: {err}"
        c.refused("value", dump(doc), err)

    prop()
    print(f"\nhostile values: {c.counts['value']} refused, {c.counts['accepted']} accepted")
    assert c.counts["value"] >= 600
    c.cli_agrees(ocirt, tmp_path, host)


def test_a_missing_required_field_is_named(campaign, ocirt, tmp_path, host) -> None:
    c, base = campaign
    c.samples.clear()
    required = [("ociVersion",), ("root", "path"), ("process", "cwd"),
                ("process", "rlimits", 0, "soft"), ("process", "ioPriority", "class"),
                ("mounts", 0, "destination"), ("linux", "namespaces", 0, "type"),
                ("linux", "devices", 0, "type"), ("linux", "seccomp", "defaultAction"),
                ("linux", "seccomp", "syscalls", 0, "names"), ("hooks", "createRuntime", 0, "path"),
                ("linux", "personality", "domain"), ("process", "scheduler", "policy")]
    for at in required:
        doc = copy.deepcopy(base)
        cur: Any = doc
        for p in at[:-1]:
            cur = cur[p]
        del cur[at[-1]]
        err = c.invalid(dump(doc), "missing", sample_every=1)
        assert err.path == format_path(at) and str(err).endswith("is a required property")
    c.cli_agrees(ocirt, tmp_path, host)


def exec_checks(path: Path) -> None:
    """What `ocirt exec --process FILE` checks before it touches the container (cli.exec's
    load_process, then lifecycle.exec.execute's security checks)."""
    from ocirt.config.load import load_process
    from ocirt.process import security
    process = load_process(str(path))
    security.prepare(process, {}, source="process")


def test_a_hostile_exec_process_fails_at_a_related_field(campaign, tmp_path) -> None:
    c, base = campaign
    proc = base["process"]
    paths = [p for p in paths_of(proc) if p]
    where = tmp_path / "process.json"
    where.write_text(json.dumps(proc))
    exec_checks(where)

    @settings(CAMPAIGN, max_examples=300)
    @given(st.sampled_from(paths), st.one_of(HOSTILE_VALUES, RANDOM_JSON))
    def prop(at: Parts, value: object) -> None:
        where.write_text(json.dumps(set_at(proc, at, value)))
        try:
            exec_checks(where)
        except ConfigError as err:
            assert "\n" not in str(err) and err.path and related(err.path, at), err
            c.counts["exec"] += 1
        except OcirtError as err:
            assert "\n" not in str(err) and "internal error" not in str(err)

    prop()
    print(f"\nhostile exec processes: {c.counts['exec']} refused")
    assert c.counts["exec"] >= 200


# JSON text Go's decoder refuses or that no syscall can take, spliced in where a value was.
RAW_TOKENS = st.sampled_from([
    b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400", b"9" * 5000, b"-" + b"9" * 4400,
    b'"\\ud800"', b'"x\\udfff"', b'"\\udc00\\ud800"', b'"\xff"', b'"a\xc0\x80"', b'"\xed\xa0\x80"',
    b'{"k": "\xfe"}', b'["\\ud834"]',
])


def test_json_go_refuses_is_refused_at_its_field(campaign, ocirt, tmp_path, host) -> None:
    c, base = campaign
    c.samples.clear()
    paths = [p for p in paths_of(base) if p]

    @settings(CAMPAIGN, max_examples=300)
    @given(st.sampled_from(paths), RAW_TOKENS)
    def prop(at: Parts, token: bytes) -> None:
        text = dump(set_at(base, at, "@@HOSTILE@@")).replace(b'"@@HOSTILE@@"', token)
        err = c.invalid(text, "json")
        assert err.path.startswith(format_path(at)), f"{format_path(at)} = {token[:20]!r}: {err}"

    prop()
    print(f"\nrefused JSON values: {c.counts['json']}")
    assert c.counts["json"] >= 250
    c.cli_agrees(ocirt, tmp_path, host)


@pytest.mark.parametrize("name,text,message", [
    ("bom", lambda t: b"\xef\xbb\xbf" + t, "invalid JSON: starts with a UTF-8 byte order mark"),
    ("deep", lambda t: t[:-1] + b', "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
     "invalid JSON: nested too deeply"),
    ("huge", lambda t: t[:-1] + b', "x": "' + b"a" * (17 << 20) + b'"}', "is larger than 16 MiB"),
    ("truncated", lambda t: t[:-1], "invalid JSON at line 1 column"),
    ("empty", lambda t: b"", "invalid JSON at line 1 column 1: Expecting value"),
    ("trailing", lambda t: t + b"{}", "invalid JSON at line 1 column"),
])
def test_a_broken_document_is_refused_as_a_whole(campaign, ocirt, tmp_path, host, name, text,
                                                message) -> None:
    c, base = campaign
    c.samples.clear()
    err = c.invalid(text(dump(base)), "document", sample_every=1)
    assert str(err).startswith("config.json: " + message)
    c.cli_agrees(ocirt, tmp_path, host, minimum=1)


def test_duplicate_keys_take_the_last_value_as_go_does(campaign, ocirt, tmp_path, host) -> None:
    c, base = campaign
    c.samples.clear()
    text = dump(base)[:-1] + b', "hostname": "first", "hostname": 7}'
    err = c.invalid(text, "duplicate", sample_every=1)
    assert str(err) == "config.json: hostname: 7 is not of type 'string'"
    assert c.check(dump(base)[:-1] + b', "hostname": 7, "hostname": "last"}') is None
    c.cli_agrees(ocirt, tmp_path, host, minimum=1)


# -- sysctl keys aimed at the host ---------------------------------------------------------------

SYSCTL_PARTS = ["kernel", "net", "ipv4", "ip_forward", "core_pattern", "..", ".", "", "fs",
                "mqueue", "msg_max", "vm", "user", "max_user_namespaces", "conf", "all",
                "forwarding", "shmmax", "domainname", "hostname", "modprobe", "a/b", "a.b"]
NS_TYPES = ["ipc", "network", "uts", "user"]

# What each namespace makes private under /proc/sys (an oracle kept apart from semantic.py).
_IPC_FILES = {"kernel/msgmax", "kernel/msgmnb", "kernel/msgmni", "kernel/sem", "kernel/shmall",
              "kernel/shmmax", "kernel/shmmni", "kernel/shm_rmid_forced"}


def _namespaced(rel: str, ns: set[str]) -> bool:
    if rel in _IPC_FILES or rel.startswith("fs/mqueue/"):
        return "ipc" in ns
    if rel.startswith("net/"):
        return "network" in ns
    if rel == "kernel/domainname":
        return "uts" in ns
    if rel.startswith("user/"):
        return "user" in ns
    return False


def test_no_sysctl_key_reaches_the_hosts_proc_sys(campaign, ocirt, tmp_path, host) -> None:
    c, base = campaign
    c.samples.clear()
    keys = st.builds(lambda parts, sep: sep.join(parts),
                     st.lists(st.sampled_from(SYSCTL_PARTS), min_size=1, max_size=5),
                     st.sampled_from([".", "/"]))

    @settings(CAMPAIGN, max_examples=300)
    @given(keys, st.sets(st.sampled_from(NS_TYPES)))
    def prop(key: str, ns: set[str]) -> None:
        doc = copy.deepcopy(base)
        lx = doc["linux"]
        lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] not in NS_TYPES]
        lx["namespaces"] += [{"type": t} for t in sorted(ns)]
        if "user" in ns:
            lx["uidMappings"] = lx["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
        if "uts" not in ns:
            del doc["hostname"], doc["domainname"]
        lx["sysctl"] = {key: "1"}
        err = c.check(dump(doc))
        if err is None:
            # The file the init will write, as the plan has it.
            [(_, rel, _)] = c.checked.plan.sysctl
            assert os.path.normpath("/proc/sys/" + rel) == "/proc/sys/" + rel, key
            assert _namespaced(rel, ns), f"{key!r} accepted with namespaces {sorted(ns)}"
            c.counts["sysctl accepted"] += 1
            return
        assert isinstance(err, ConfigError) and err.path == format_path(("linux", "sysctl", key)), err
        c.refused("sysctl", dump(doc), err)

    prop()
    print(f"\nsysctl keys: {c.counts['sysctl']} refused, {c.counts['sysctl accepted']} accepted")
    assert c.counts["sysctl"] >= 150
    c.cli_agrees(ocirt, tmp_path, host)


# -- valid configs: they run or fail cleanly -------------------------------------------------------

SPECS = Path(__file__).resolve().parents[2] / "specs"


def schema_of(*at: str) -> dict:
    """The subschema of specs/config-schema.json for a config path, every $ref inlined."""
    cfg = json.loads((SPECS / "config-schema.json").read_text())
    defs = json.loads((SPECS / "defs.json").read_text())["definitions"]

    def inline(v: object, here: dict) -> object:
        """`here`: the definitions of the file v comes from, for its "#/..." refs."""
        if isinstance(v, dict):
            ref = v.get("$ref")
            if ref is not None:
                doc, _, name = ref.partition("#/definitions/")
                where = defs if doc == "defs.json" else here
                return inline(where[name], where)
            return {k: inline(x, here) for k, x in v.items()}
        if isinstance(v, list):
            return [inline(x, here) for x in v]
        return v

    node: Any = inline(cfg, cfg["definitions"])
    for key in at:
        node = node["properties"][key]
    return node


# Fields whose schema-valid values are checked in-process only: run, they would execute or
# bind whatever host path the generator picked.
CHECK_ONLY = {("hooks",), ("mounts",), ("linux", "resources"), ("linux", "namespaces")}
SCHEMA_FIELDS = [("process", "user"), ("process", "rlimits"), ("process", "scheduler"),
                 ("process", "ioPriority"), ("process", "oomScoreAdj"), ("process", "consoleSize"),
                 ("process", "capabilities"), ("process", "env"), ("hostname",), ("annotations",),
                 ("linux", "devices"), ("linux", "sysctl"), ("linux", "seccomp"),
                 ("linux", "personality"), ("linux", "maskedPaths"), ("linux", "timeOffsets"),
                 *sorted(CHECK_ONLY)]


def schema_valid(fields: list[tuple[str, ...]]) -> st.SearchStrategy:
    from hypothesis_jsonschema import from_schema
    return st.one_of([st.tuples(st.just(f), from_schema(schema_of(*f))) for f in fields])


def test_schema_valid_values_pass_or_fail_cleanly(campaign) -> None:
    c, base = campaign

    @settings(CAMPAIGN, max_examples=200)
    @given(schema_valid(SCHEMA_FIELDS))
    def prop(field_value: tuple[tuple[str, ...], object]) -> None:
        at, value = field_value
        err = c.check(dump(set_at(base, at, value)))  # any exception but OcirtError fails
        c.counts["schema-valid " + ("refused" if err else "accepted")] += 1

    prop()
    print(f"\nschema-valid values: {c.counts['schema-valid accepted']} accepted, "
          f"{c.counts['schema-valid refused']} refused cleanly")


# Paths through the rootfs's escaping symlinks (etc/up, tmp/root) and up with "..": whatever
# they name must be made inside the rootfs, never as the host's /hostile-made.
MADE = "hostile-made"
ABS_PATH = st.lists(st.sampled_from(["..", ".", "dev", "etc", "tmp", "up", "root", "x y", MADE]),
                    min_size=1, max_size=5).map(lambda p: "/" + "/".join(p + [MADE]))


def valid_variants(base: dict) -> st.SearchStrategy:
    """Configs the validator accepts, varying fields that reach the kernel."""
    sets: list[Callable[[dict], st.SearchStrategy]] = [
        lambda d: st.builds(lambda uid, gid, groups: d["process"].__setitem__(
            "user", {"uid": uid, "gid": gid, "additionalGids": groups}),
            st.integers(0, 2**32 - 2), st.integers(0, 2**32 - 2),
            st.lists(st.integers(0, 2**32 - 2), max_size=3)),
        lambda d: st.builds(lambda h: d.__setitem__("hostname", h),
                            st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF),
                                    max_size=20).filter(lambda s: len(s.encode()) <= 64)),
        lambda d: st.builds(lambda n: d["process"].__setitem__("scheduler", {"policy": "SCHED_OTHER",
                                                                             "nice": n}),
                            st.integers(-20, 19)),
        lambda d: st.builds(lambda k, v: d.__setitem__("annotations", {k: v}),
                            st.sampled_from(["../../../../tmp/hostile-annotation", "/etc/passwd",
                                             "a\0b", "kernel.core_pattern"]), st.text(max_size=10)),
        lambda d: st.builds(lambda p, major, minor: d["linux"].__setitem__(
            "devices", [{"path": "/dev" + p, "type": "c", "major": major, "minor": minor}]),
            ABS_PATH.filter(lambda p: ".." not in p.split("/")), st.integers(0, 4095),
            st.integers(0, 2**20 - 1)),
        lambda d: st.builds(lambda p: d["linux"]["maskedPaths"].append(p), ABS_PATH),
        lambda d: st.builds(lambda p: d["linux"]["readonlyPaths"].append(p), ABS_PATH),
        lambda d: st.builds(lambda dest: d["mounts"].append(
            {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
            ABS_PATH),
        lambda d: st.builds(lambda soft, hard: d["process"].__setitem__(
            "rlimits", [{"type": "RLIMIT_CORE", "soft": min(soft, hard), "hard": hard}]),
            st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
        lambda d: st.builds(lambda cls, prio: d["process"].__setitem__(
            "ioPriority", {"class": cls, "priority": prio}),
            st.sampled_from(["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"]),
            st.integers(0, 7)),
    ]

    def build(choices: list[int], data: st.DataObject) -> dict:
        d = copy.deepcopy(base)
        for i in choices:
            data.draw(sets[i](d))
        return d
    return st.builds(build, st.lists(st.integers(0, len(sets) - 1), min_size=1, max_size=3,
                                     unique=True), st.data())


def test_valid_configs_run_or_fail_cleanly(campaign, ocirt, tmp_path, rootfs_template,
                                          host) -> None:
    import shutil
    c, base = campaign
    rootfs = tmp_path / "rootfs"
    shutil.copytree(rootfs_template, rootfs, symlinks=True)
    # Symlinks that point out of the rootfs: paths through them must stay inside.
    (rootfs / "etc" / "up").symlink_to("../../../../../..")
    (rootfs / "tmp" / "root").symlink_to("/")
    base = copy.deepcopy(base)
    base["root"]["path"] = str(rootfs)
    bundle = tmp_path / "valid"
    bundle.mkdir()
    outcomes: Counter[str] = Counter()

    runnable = [f for f in SCHEMA_FIELDS if f not in CHECK_ONLY]

    @settings(CAMPAIGN, max_examples=40)
    @given(st.one_of(valid_variants(base),
                     schema_valid(runnable).map(lambda fv: set_at(base, fv[0], fv[1]))))
    def prop(doc: dict) -> None:
        cid = unique_id("hostile")
        (bundle / "config.json").write_text(json.dumps(doc))
        p = ocirt("run", "--bundle", str(bundle), cid,
                  global_args=("--log", str(tmp_path / "log.json"), "--log-format", "json"))
        err = p.stderr.decode()
        if p.returncode == 0:
            outcomes["ran"] += 1
        else:
            assert p.returncode == 1 and err.count("\n") == 1, err
            assert "internal error" not in err and "Traceback" not in err, err
            outcomes["failed cleanly"] += 1
        assert ocirt.ids() == [] and pids_with_cmdline(cid) == [] and cgroup_dirs_named(cid) == []

    prop()
    host.assert_unchanged()
    assert not Path("/tmp/hostile-annotation").exists()
    for d in ("/", "/etc", "/tmp", "/dev", "/etc/" + MADE, "/tmp/" + MADE):
        assert not Path(d, MADE).exists()
    print(f"\nvalid configs: {dict(outcomes)}")


def test_a_time_offset_the_kernel_refuses_names_the_field(ocirt, bundle, cid, host) -> None:
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("no time namespaces on this kernel")
    lx = bundle.config["linux"]
    lx["namespaces"].append({"type": "time"})
    lx["timeOffsets"] = {"monotonic": {"secs": 2**62, "nanosecs": 0}}  # valid JSON, past KTIME
    bundle.write()
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert p.stderr.decode().endswith("linux.timeOffsets: Numerical result out of range\"\n")
    assert ocirt.ids() == [] and pids_with_cmdline(cid) == [] and cgroup_dirs_named(cid) == []
    host.assert_unchanged()
