"""The replay journal says clearly when it cannot be trusted, and its writes are atomic and durable."""

from __future__ import annotations

import json
import os
import threading

import pytest

from airflow_agentic.agents.journal import INDEX_KEY, Journal, JournalError


@pytest.mark.parametrize("content", ["[]", '"steps"', "3", '{"steps": []}', '{"steps": {"1": 3}}',
                                     '{"steps": {}, "finished": 5}', '{"steps": '])
def test_wrong_shape_or_broken_json_raises_journal_error_naming_the_file(tmp_path, content):
    path = tmp_path / "counter.json"
    path.write_text(content)
    with pytest.raises(JournalError, match=r"counter\.json is unreadable") as info:
        Journal(path)
    assert "delete it to start the agent afresh" in str(info.value)
    assert path.read_text() == content  # nothing lost: the evidence stays for whoever inspects it


class DictStore(dict):
    """The accessor's interface (get/set/delete of JSON values) over a dict."""

    def set(self, key, value):
        self[key] = json.loads(json.dumps(value))

    def delete(self, key):
        self.pop(key, None)


@pytest.mark.parametrize("index", [[], "x", {"steps": "1"}, {"steps": [1]}])
def test_wrong_shape_in_a_key_value_store_raises_journal_error(index):
    with pytest.raises(JournalError, match="agentic.journal"):
        Journal(store=DictStore({INDEX_KEY: index}))


def test_key_value_journal_round_trips_and_clears():
    store = DictStore()
    journal = Journal(store=store)
    journal.record(1, decision={"tool": "wipe"})
    journal.record(1, approval={"approved": True})
    journal.record(2, result={"n": 3})
    journal.mark_finished(try_number=1, max_tries=1)
    again = Journal(store=store)
    assert again.get(1) == {"decision": {"tool": "wipe"}, "approval": {"approved": True}}
    assert again.finished == {"try_number": 1, "max_tries": 1} and again.get(2) == {"result": {"n": 3}}
    again.clear()
    assert store == {} and Journal(store=store).entries == {}


def test_write_syncs_before_the_rename_and_uses_a_unique_temporary_name(tmp_path, monkeypatch):
    import airflow_agentic.agents.journal as module

    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(module.os, "fsync", lambda fd: (calls.append(("fsync", str(fd))), real_fsync(fd))[1])
    monkeypatch.setattr(module.os, "replace", lambda a, b: (calls.append(("replace", a)), real_replace(a, b))[1])
    journal = Journal(tmp_path / "counter.json")
    journal.record(1, decision={"tool": "wipe"})
    journal.record(2, decision={"tool": "finish"})
    kinds = [k for k, _ in calls]
    assert kinds[:2] == ["fsync", "replace"]  # the data is on disk before the rename makes it visible
    temps = [name for kind, name in calls if kind == "replace"]
    assert len(set(temps)) == 2 and not any(t.endswith("counter.json.tmp") for t in temps)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter.json"]


def test_a_failed_write_keeps_the_previous_journal_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import airflow_agentic.agents.journal as module

    path = tmp_path / "counter.json"
    Journal(path).record(1, decision={"tool": "wipe"})

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module.os, "replace", disk_full)
    with pytest.raises(OSError):
        Journal(path).record(2, decision={"tool": "finish"})
    monkeypatch.undo()
    assert Journal(path).entries == {"1": {"decision": {"tool": "wipe"}}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter.json"]


def test_concurrent_writers_never_collide_on_a_temporary_file(tmp_path):
    """Two attempts of a task can overlap (a zombie and its retry): each write stays whole."""
    path = tmp_path / "counter.json"
    errors: list[BaseException] = []

    def writer(n):
        try:
            journal = Journal(path)
            for i in range(100):
                journal.record(i, decision={"writer": n})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(Journal(path).entries) == 100  # whole JSON, one writer's last state
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter.json"]
