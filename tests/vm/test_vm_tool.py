"""hack/vm itself, without booting a guest: the image cache follows the recipe, builds are
atomic and one at a time, usage errors are one line; and the lane reads pytest's JUnit XML
back into node ids."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lane

REAL_VM = lane.HACK_VM


def vm(*args: str, tool: Path = REAL_VM, cache: Path | None = None, env: dict | None = None,
       **kw) -> subprocess.CompletedProcess:
    env = dict(env or os.environ)
    if cache is not None:
        env["OCIRT_VM_CACHE"] = str(cache)
    return subprocess.run([str(tool), *args], capture_output=True, text=True, env=env,
                          timeout=120, **kw)


@pytest.fixture
def tool(tmp_path) -> Path:
    """A copy of hack/vm with the real recipe: hack/vm finds its recipe next to itself."""
    hack = tmp_path / "hack"
    hack.mkdir()
    shutil.copy2(REAL_VM, hack / "vm")
    shutil.copytree(REAL_VM.parent / "vm.d", hack / "vm.d")
    return hack / "vm"


def fake_build(tool: Path, script: str) -> None:
    """Replace the copy's image build with a quick script (the real one runs debootstrap)."""
    build = tool.parent / "vm.d" / "image" / "build"
    build.write_text("#!/bin/bash\nset -e\n" + textwrap.dedent(script))
    build.chmod(0o755)


def test_the_image_directory_is_named_by_the_recipe_not_by_where_it_lives(tool, tmp_path):
    here = vm("image", "--print-dir", cache=tmp_path / "cache")
    there = vm("image", "--print-dir", tool=tool, cache=tmp_path / "cache")
    assert here.returncode == there.returncode == 0
    assert here.stdout == there.stdout


def test_changing_a_recipe_file_changes_the_image_directory(tool, tmp_path):
    before = vm("image", "--print-dir", tool=tool, cache=tmp_path).stdout
    with open(tool.parent / "vm.d" / "image" / "packages", "a") as f:
        f.write("strace\n")
    after = vm("image", "--print-dir", tool=tool, cache=tmp_path).stdout
    assert before.startswith(str(tmp_path)) and after.startswith(str(tmp_path))
    assert before != after


def test_an_image_is_built_once_and_then_reused(tool, tmp_path):
    count = tmp_path / "builds"
    fake_build(tool, f"""
        echo x >> {count}
        touch "$1/disk.raw" "$1/vmlinuz" "$1/initrd"
    """)
    cache = tmp_path / "cache"
    first = vm("image", tool=tool, cache=cache)
    second = vm("image", tool=tool, cache=cache)
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert Path(first.stdout.strip()).parent == cache
    assert count.read_text() == "x\n"


def test_two_callers_at_once_build_one_image(tool, tmp_path):
    count = tmp_path / "builds"
    fake_build(tool, f"""
        echo x >> {count}
        sleep 1
        touch "$1/disk.raw" "$1/vmlinuz" "$1/initrd"
    """)
    env = {**os.environ, "OCIRT_VM_CACHE": str(tmp_path / "cache")}
    callers = [subprocess.Popen([str(tool), "image"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [c.communicate(timeout=60) for c in callers]
    assert [c.returncode for c in callers] == [0, 0], outs
    assert outs[0][0] == outs[1][0]
    assert count.read_text() == "x\n"


def test_a_failed_build_leaves_no_image_behind(tool, tmp_path):
    fake_build(tool, """
        touch "$1/disk.raw" "$1/vmlinuz"
        echo "no initrd today" >&2
        exit 3
    """)
    cache = tmp_path / "cache"
    p = vm("image", tool=tool, cache=cache)
    assert p.returncode == 125
    assert "building the guest image failed (status 3)" in p.stderr
    assert "no initrd today" in p.stderr
    assert sorted(f.name for f in cache.iterdir() if f.is_dir()) == []


def test_a_killed_build_is_cleaned_up_by_the_next_one(tool, tmp_path):
    cache = tmp_path / "cache"
    stale = cache / ".build-0123456789abcdef-x"
    (stale / "rootfs").mkdir(parents=True)
    fake_build(tool, 'touch "$1/disk.raw" "$1/vmlinuz" "$1/initrd"\n')
    assert vm("image", tool=tool, cache=cache).returncode == 0
    assert not stale.exists()


@pytest.mark.parametrize("args, message", [
    ([], "no command"),
    (["frob"], "unknown command 'frob'"),
    (["run"], "run: no command"),
    (["run", "--", ], "run: no command"),
    (["run", "--smp", "two", "--", "true"], "--smp two: a positive whole number is needed"),
    (["run", "--mem"], "--mem needs a value"),
    (["run", "--checkout", "/nonexistent/dir", "--", "true"], "--checkout /nonexistent/dir: "
                                                               "not a directory"),
    (["run", "--accel", "hvf", "--", "true"], "--accel hvf: tcg or kvm"),
    (["run", "--verbose", "true"], "unknown option --verbose"),
    (["image", "--rebuild"], "image: unexpected argument --rebuild"),
])
def test_a_usage_error_is_one_line_and_status_2(args, message):
    p = vm(*args)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1 and message in p.stderr, p.stderr


def test_a_guest_test_is_found_in_junit_xml_by_its_node_id(tmp_path):
    """The lane's mapping from node ids to JUnit test cases, checked against a real pytest run
    of a module with a class, parameters (with dots, slashes and colons) and each outcome."""
    mod = tmp_path / "tests" / "sub" / "test_sample.py"
    mod.parent.mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("")
    mod.write_text(textwrap.dedent("""
        import pytest

        def test_passes():
            pass

        def test_fails():
            assert 1 == 2, "one is not two"

        def test_skips():
            pytest.skip("not today")

        @pytest.mark.xfail(reason="known")
        def test_xfails():
            assert False

        class TestGroup:
            @pytest.mark.parametrize("v", ["a.b", "c/d", "e::f"])
            def test_param(self, v):
                pass
    """))
    collected = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                                "--collect-only", "-q", "tests"], cwd=tmp_path,
                               capture_output=True, text=True).stdout
    ids = [line for line in collected.splitlines() if "::" in line]
    assert len(ids) == 7
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests",
                    f"--junitxml={junit}"], cwd=tmp_path, capture_output=True)
    results = lane.read_junit(junit)
    by_id = {i: results[lane.junit_key(i)] for i in ids}
    kinds = {i.partition(".py::")[2]: o.kind for i, o in by_id.items()}
    assert kinds == {"test_passes": "passed", "test_fails": "failed", "test_skips": "skipped",
                     "test_xfails": "xfailed", "TestGroup::test_param[a.b]": "passed",
                     "TestGroup::test_param[c/d]": "passed",
                     "TestGroup::test_param[e::f]": "passed"}
    assert "one is not two" in by_id["tests/sub/test_sample.py::test_fails"].message
    assert "not today" in by_id["tests/sub/test_sample.py::test_skips"].message


def test_a_guest_that_does_not_finish_in_time_is_stopped_and_reported(tmp_path):
    """Starts qemu for three seconds (no guest boots that fast under TCG): status 124, a message
    saying where the guest was, and neither qemu nor the job directory left behind."""
    reason = lane.disabled_reason()
    if reason is not None:
        pytest.skip(reason)
    image = Path(vm("image", "--print-dir").stdout.strip())
    if not all((image / f).exists() for f in ("disk.raw", "vmlinuz", "initrd")):
        pytest.skip("the guest image is not built yet (hack/vm image)")
    p = vm("run", "--timeout", "3", "--", "true", env={**os.environ, "TMPDIR": str(tmp_path)})
    assert p.returncode == 124, p.stderr
    assert p.stderr.startswith("hack/vm: the guest did not finish within 3 s (before the job "
                               "started)\n")
    assert list(tmp_path.iterdir()) == []
    qemus = [c for c in Path("/proc").glob("[0-9]*/cmdline")
             if str(tmp_path).encode() in _read(c)]
    assert qemus == []


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended meanwhile
        return b""


def test_a_new_image_replaces_all_but_the_last_used_other_one(tool, tmp_path):
    fake_build(tool, 'touch "$1/disk.raw" "$1/vmlinuz" "$1/initrd"\n')
    cache = tmp_path / "cache"
    packages = tool.parent / "vm.d" / "image" / "packages"
    built = []
    for extra in ("a", "b", "c"):
        packages.write_text(packages.read_text() + extra + "\n")
        p = vm("image", tool=tool, cache=cache)
        assert p.returncode == 0, p.stderr
        built.append(p.stdout.strip())
    assert sorted(str(d) for d in cache.iterdir() if d.is_dir()) == sorted(built[1:])
