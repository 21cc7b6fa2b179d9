"""Several processes sharing one sandbox: no definition and no record is lost, both files load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from workers_helpers import add_test_worker

from nslang.workers import AIWorkerManager
from nslang.workers.perflog import PERFORMANCE_FILE
from nslang.workers.store import DEFINITIONS_FILE

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 4
TASKS = 200

CHILD = r"""
import json, sys
from nslang.workers import AIWorkerManager

sandbox, n, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = AIWorkerManager(sandbox)
own = [m.add_definition({"name": f"proc{n}-{k}", "provider": "test",
                         "interaction_models": ["stateless_task"]}).definition_id for k in range(2)]
done = []
for i in range(tasks):
    target = "shared" if i % 3 == 0 else own[i % 2]
    done.append((target, m.execute_stateless_task(target, f"process {n} task {i}").record.task_id))
    if i == tasks // 2:
        m.update_definition(own[0], {"capabilities": [f"updated-by-{n}"]})
print(json.dumps({"own": own, "done": done}))
"""


def test_four_processes_share_one_sandbox(sandbox: Path) -> None:
    parent = AIWorkerManager(sandbox)
    shared_id = add_test_worker(parent, "shared", interaction_models=["stateless_task"])
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(sandbox), str(n), str(TASKS)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for n in range(PROCESSES)]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outputs.append(json.loads(out))

    # both files are plain JSON arrays
    defs_on_disk = json.loads((sandbox / DEFINITIONS_FILE).read_text())
    log_on_disk = json.loads((sandbox / PERFORMANCE_FILE).read_text())
    assert len(defs_on_disk) == 1 + 2 * PROCESSES
    assert len(log_on_disk) == PROCESSES * TASKS

    fresh = AIWorkerManager(sandbox)
    names = {d.name for d in fresh.list_definitions()}
    assert names == {"shared"} | {f"proc{n}-{k}" for n in range(PROCESSES) for k in range(2)}
    for n, out in enumerate(outputs):
        assert fresh.get_definition(out["own"][0]).capabilities == [f"updated-by-{n}"]
    expected: dict[str, set[str]] = {}
    for out in outputs:
        for target, task_id in out["done"]:
            expected.setdefault("shared" if target == "shared" else target, set()).add(task_id)
    for target, task_ids in expected.items():
        ref = shared_id if target == "shared" else target
        got = {r.task_id for r in fresh.get_performance_records(ref)}
        assert got == task_ids, target
        assert fresh.get_summary(ref).total_tasks_attempted == len(task_ids)
    # the parent, which saw none of it happen, catches up from the files
    assert parent.get_summary("shared").total_tasks_attempted == len(expected["shared"])
    assert len(parent.list_definitions()) == 1 + 2 * PROCESSES
