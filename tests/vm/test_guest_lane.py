"""Each test of the guest selection, run in the VM guest, as a test of its own here: it passes,
fails or skips as it did in the guest, with the guest's message."""

from __future__ import annotations

import pytest

import lane

_collected: list[str] = []
_collect_output = ""


def pytest_generate_tests(metafunc):
    global _collect_output
    if "guest_test" not in metafunc.fixturenames:
        return
    reason = lane.disabled_reason()
    if reason is not None:
        metafunc.parametrize("guest_test", [pytest.param(None, id="lane",
                                                         marks=pytest.mark.skip(reason=reason))])
        return
    if not _collected:
        ids, _collect_output = lane.collect_guest_node_ids()
        _collected.extend(ids)
    metafunc.parametrize("guest_test", _collected or [None], ids=_collected or ["none"])


@pytest.fixture(scope="session")
def guest_run(request, tmp_path_factory) -> lane.GuestRun:
    """One guest boot for the session: the whole guest selection, or only the guest tests
    whose host tests were selected (-k, node ids)."""
    wanted = [item.callspec.params["guest_test"] for item in request.session.items
              if item.originalname == "test_in_the_guest"
              and item.callspec.params["guest_test"] is not None]
    tests = wanted if wanted and set(wanted) < set(_collected) else lane.GUEST_SELECTION
    return lane.run_in_guest(tmp_path_factory.mktemp("vm"), tests)


def test_in_the_guest(guest_test, guest_run):
    if guest_test is None:
        pytest.fail(f"the guest selection collected nothing here:\n{_collect_output}",
                    pytrace=False)
    if guest_run.results is None:
        pytest.fail(f"the guest run gave no report (hack/vm status {guest_run.status}); its "
                    f"last lines:\n{guest_run.tail()}", pytrace=False)
    outcome = guest_run.results.get(lane.junit_key(guest_test))
    if outcome is None:
        pytest.fail("collected here but not run in the guest; the guest's last lines:\n"
                    + guest_run.tail(), pytrace=False)
    if outcome.kind == "failed":
        pytest.fail(f"in the guest: {outcome.message}", pytrace=False)
    if outcome.kind == "skipped":
        pytest.skip(f"in the guest: {outcome.message}")
    if outcome.kind == "xfailed":
        pytest.xfail(f"in the guest: {outcome.message}")


def test_the_guest_selection_collects_here():
    """Every module of the selection imports on the host too (with OCIRT_GUEST=1), or its tests
    would be run in the guest but reported nowhere."""
    reason = lane.disabled_reason()
    if reason is not None:
        pytest.skip(reason)
    errors = [line for line in _collect_output.splitlines() if line.startswith("ERROR")]
    assert not errors, _collect_output


def test_every_guest_test_is_reported_here(request):
    reason = lane.disabled_reason()
    if reason is not None:
        pytest.skip(reason)
    guest_run = request.getfixturevalue("guest_run")
    if guest_run.results is None:
        pytest.skip("the guest run gave no report (see test_in_the_guest)")
    here = {lane.junit_key(node_id) for node_id in _collected}
    unreported = sorted("::".join(k) for k in guest_run.results if k not in here)
    assert not unreported, f"run in the guest but not collected here: {unreported}"
