"""Hostile config.json documents fail at load with one line naming the JSON path (or the file,
when no field is to blame), never with Python's own error text."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from ocirt import hooks
from ocirt.config.defaults import default_spec
from ocirt.config.load import MAX_SIZE, load_bundle
from ocirt.config.validate import validate_config, validate_process
from ocirt.errors import ConfigError


def spec() -> dict[str, Any]:
    return default_spec()  # with uts and network namespaces


def load_error(tmp_path: Path, text: str | bytes) -> str:
    b = tmp_path / "bundle"
    (b / "rootfs").mkdir(parents=True)
    (b / "config.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as ei:
        load_bundle(str(b))
    return str(ei.value)


def with_field(raw: str) -> str:
    """The default spec with `raw` (JSON text) spliced in as its last members."""
    return json.dumps(spec())[:-1] + ", " + raw + "}"


def error_of(mut: Callable[[dict[str, Any]], object]) -> str:
    d = spec()
    mut(d)
    with pytest.raises(ConfigError) as ei:
        validate_config(d)
    return str(ei.value)


# -- numbers: what Go's decoder refuses -----------------------------------------------------

def test_a_5000_digit_uid_is_out_of_range_at_its_field(tmp_path: Path) -> None:
    text = json.dumps(spec()).replace('"uid": 0', '"uid": ' + "9" * 5000)
    assert load_error(tmp_path, text) == (
        "config.json: process.user.uid: number 99999999999999999999... (5000 digits) is out of range")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(tmp_path: Path, constant: str) -> None:
    assert load_error(tmp_path, with_field(f'"vendor": {{"x": [1, {constant}]}}')) == (
        f"config.json: vendor.x[1]: {constant} is not a JSON number")


def test_a_float_beyond_float64_is_out_of_range(tmp_path: Path) -> None:
    assert load_error(tmp_path, with_field('"vendor": 1e999')) == (
        "config.json: vendor: number 1e999 is out of range")


def test_duplicate_keys_take_the_last_value_as_go_does(tmp_path: Path) -> None:
    assert load_error(tmp_path, with_field('"hostname": "ok", "hostname": 5')) == (
        "config.json: hostname: 5 is not of type 'string'")


# -- text: what no syscall can take -----------------------------------------------------------

def test_a_lone_surrogate_is_refused_at_its_field(tmp_path: Path) -> None:
    assert load_error(tmp_path, with_field('"hostname": "a\\ud800"')) == (
        "config.json: hostname: is not valid UTF-8 text")


def test_invalid_utf8_in_a_key_names_the_key(tmp_path: Path) -> None:
    msg = load_error(tmp_path, with_field('"annotations": {"k\xff": "v"}').encode("latin-1"))
    assert msg == 'config.json: annotations["k\\\\udcff"]: key is not valid UTF-8 text'


def test_a_surrogate_pair_is_a_valid_character(tmp_path: Path) -> None:
    b = tmp_path / "bundle"
    (b / "rootfs").mkdir(parents=True)
    (b / "config.json").write_text(with_field('"annotations": {"e": "\\ud83d\\ude00"}'))
    assert load_bundle(str(b))[1]["annotations"]["e"] == "\U0001F600"


def test_a_byte_order_mark_is_refused_plainly(tmp_path: Path) -> None:
    assert load_error(tmp_path, "\ufeff" + json.dumps(spec())) == (
        "config.json: invalid JSON: starts with a UTF-8 byte order mark")


def test_deep_nesting_is_refused_as_such(tmp_path: Path) -> None:
    assert load_error(tmp_path, with_field('"vendor": ' + "[" * 100_000 + "]" * 100_000)) == (
        "config.json: invalid JSON: nested too deeply")


def test_a_config_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    assert load_error(tmp_path, with_field('"vendor": "' + "x" * MAX_SIZE + '"')) == (
        "config.json: is larger than 16 MiB")


def test_error_messages_stay_short_for_huge_and_deep_values() -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    msg = error_of(lambda d: d.__setitem__("mounts", {"k": deep, "s": "x" * 10**7}))
    assert msg.startswith("config.json: mounts: {'k': [[[[[[[[")
    assert msg.endswith("[[[... is not of type 'array'") and len(msg) < 150


# -- C strings and kernel-sized numbers -----------------------------------------------------------

NUL_FIELDS: dict[str, Callable[[dict[str, Any]], object]] = {
    "root.path": lambda d: d["root"].__setitem__("path", "root\0fs"),
    "hostname": lambda d: d.__setitem__("hostname", "a\0b"),
    "domainname": lambda d: d.__setitem__("domainname", "a\0b"),
    "hooks.prestart[0].path": lambda d: d.__setitem__("hooks", {"prestart": [{"path": "/bin/tr\0ue"}]}),
    "hooks.poststop[0].args[1]": lambda d: d.__setitem__(
        "hooks", {"poststop": [{"path": "/bin/true", "args": ["true", "a\0"]}]}),
    "hooks.createRuntime[0].env[0]": lambda d: d.__setitem__(
        "hooks", {"createRuntime": [{"path": "/bin/true", "env": ["A=\0"]}]}),
    "process.apparmorProfile": lambda d: d["process"].__setitem__("apparmorProfile", "p\0"),
    "process.selinuxLabel": lambda d: d["process"].__setitem__("selinuxLabel", "l\0"),
    "linux.mountLabel": lambda d: d["linux"].__setitem__("mountLabel", "l\0"),
    "linux.namespaces[0].path": lambda d: d["linux"]["namespaces"][0].__setitem__("path", "/proc/1/ns/p\0id"),
    "linux.maskedPaths[0]": lambda d: d["linux"]["maskedPaths"].__setitem__(0, "/proc/k\0core"),
    "linux.readonlyPaths[0]": lambda d: d["linux"]["readonlyPaths"].__setitem__(0, "/proc/\0bus"),
    'linux.sysctl["net.ipv4.ip_forward"]': lambda d: d["linux"].__setitem__(
        "sysctl", {"net.ipv4.ip_forward": "1\0"}),
    "linux.seccomp.listenerPath": lambda d: d["linux"].__setitem__(
        "seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/s\0"}),
    "linux.seccomp.syscalls[0].names[1]": lambda d: d["linux"].__setitem__(
        "seccomp", {"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["write", "read\0x"], "action": "SCMP_ACT_ERRNO"}]}),
}


@pytest.mark.parametrize("field", NUL_FIELDS)
def test_a_nul_byte_in_a_string_the_kernel_takes_is_refused(field: str) -> None:
    assert error_of(NUL_FIELDS[field]) == f"config.json: {field}: contains a NUL byte"


def test_a_nul_byte_in_an_annotation_is_kept_as_data() -> None:
    # Annotations reach no syscall: they are JSON in state.json and on a hook's stdin (as runc).
    d = spec()
    d["annotations"] = {"k\0": "v\0"}
    validate_config(d)


def test_more_groups_than_ngroups_max_are_refused() -> None:
    msg = error_of(lambda d: d["process"]["user"].__setitem__("additionalGids", list(range(100_000))))
    assert msg == ("config.json: process.user.additionalGids: 100000 groups are more than "
                   "the kernel's limit of 65536")


def test_exec_process_groups_are_limited_too() -> None:
    with pytest.raises(ConfigError, match="^p.json: user.additionalGids: 65537 groups"):
        validate_process({"cwd": "/", "args": ["true"],
                          "user": {"uid": 0, "gid": 0, "additionalGids": [0] * 65537}}, "p.json")


def test_a_hostname_longer_than_the_kernel_takes_is_refused() -> None:
    assert error_of(lambda d: d.__setitem__("hostname", "h" * 65)) == (
        "config.json: hostname: is longer than the kernel's 64 bytes")


@pytest.mark.parametrize("field,value,top", [("major", 4096, 4095), ("major", -1, 4095),
                                             ("minor", 1 << 20, (1 << 20) - 1)])
def test_device_numbers_must_fit_the_kernels_dev_t(field: str, value: int, top: int) -> None:
    dev = {"path": "/dev/x", "type": "c", "major": 1, "minor": 3, field: value}
    assert error_of(lambda d: d["linux"].__setitem__("devices", [dev])) == (
        f"config.json: linux.devices[0].{field}: {value} is outside the kernel's device "
        f"{field} numbers 0..{top}")


def test_console_size_must_fit_a_winsize() -> None:
    assert error_of(lambda d: d["process"].__setitem__("consoleSize", {"height": 1, "width": 65536})) == (
        "config.json: process.consoleSize.width: 65536 is more than 65535")


def test_a_hook_timeout_beyond_what_poll_takes_waits_without_limit() -> None:
    hooks.run_hook({"path": "/bin/true", "timeout": 10**30}, b"{}")


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_a_config_json_that_is_no_regular_file_is_refused_without_hanging(tmp_path: Path,
                                                                         target: str) -> None:
    b = tmp_path / "bundle"
    (b / "rootfs").mkdir(parents=True)
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")  # no writer: reading it would block forever
        (b / "config.json").symlink_to(tmp_path / "fifo")
    else:
        (b / "config.json").symlink_to(target)
    with pytest.raises(ConfigError, match=r"^config.json: .*/config.json is not a regular file$"):
        load_bundle(str(b))


def test_an_exec_process_may_come_through_a_pipe(tmp_path: Path) -> None:
    from ocirt.config.load import load_process
    r, w = os.pipe()
    os.write(w, json.dumps({"cwd": "/", "args": ["true"]}).encode())
    os.close(w)
    try:
        assert load_process(f"/proc/self/fd/{r}")["args"] == ["true"]
    finally:
        os.close(r)
