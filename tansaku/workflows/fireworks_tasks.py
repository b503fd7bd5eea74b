"""The FireTask that runs tansaku tasks inside a FireWorks rocket (``rlaunch`` / ``qlaunch``).

A Firework made by ``tansaku fireworks add`` holds in ``spec["tansaku"]`` only ids and paths, never
structures (a MongoDB document is limited to 16 MB): the campaign file, the campaign store, the task ids
and the name of its shard. The rocket reads its tasks from the campaign's saved plan (it never plans),
runs them with the same ``run_task`` as every executor (through ``run_worker``) and writes their records
to the shard ``<output stem>.shards/<shard>``, which ``tansaku collect`` / ``tansaku fireworks collect``
merge into the store. So the campaign folder must be on a file system the rockets see (as for batch jobs).

- A task that fails is stored as a failed record in the shard, and the Firework then FIZZLES with the
  error (FireWorks users find it with ``lpad get_fws -s FIZZLED``); ``lpad rerun_fws`` runs it again:
  tasks already ok in its shard are skipped and the failed ones retried.
- SIGTERM (a batch job reaching its wall time): finished records are flushed to the shard, then the
  rocket dies as FireWorks expects, leaving a lost run (``lpad detect_lostruns --rerun`` resumes it).

This module imports FireWorks (the rocket's process has it); the rest of tansaku imports it lazily.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fireworks.core.firework import FiretaskBase, FWAction
from fireworks.utilities.fw_utilities import explicit_serialize

SPEC_KEY = "tansaku"  # spec[SPEC_KEY] = {"campaign", "store", "task_ids", "shard"}
SHOWN_FAILURES = 3


class FireworkTasksFailed(RuntimeError):
    """Some of a Firework's tasks failed; their failed records (with the error) are in its shard."""


def run_firework(spec: Mapping[str, Any], workers: int = 0) -> dict[str, Any]:
    """Run the tasks of a Firework's ``spec`` into its shard; returns what the Firework stores.

    Raises ``FireworkTasksFailed`` when a task failed (after its record is stored), and CampaignError /
    PlanError when the campaign file or its saved plan no longer holds the Firework's tasks.
    """
    from tansaku.workflows.campaign import load_campaign
    from tansaku.workflows.collect import shards_dir
    from tansaku.workflows.worker import run_worker

    info = spec[SPEC_KEY]
    campaign = load_campaign(info["campaign"])
    # the store named when the Firework was added: the campaign's output may be relative to a working
    # directory that the rocket does not share
    campaign = dataclasses.replace(campaign, output=Path(info["store"]))
    shard = shards_dir(campaign.output) / info["shard"]
    summary = run_worker(campaign, info["task_ids"], shard, workers=workers, rerun_failed=True)
    if summary.terminated:  # SIGTERM: records are flushed; now die as the signal meant (a lost run)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    if summary.failed:
        shown = "; ".join(summary.failures[:SHOWN_FAILURES])
        more = f"; and {summary.failed - SHOWN_FAILURES} more" if summary.failed > SHOWN_FAILURES else ""
        raise FireworkTasksFailed(f"{summary.failed} of {summary.tasks} tasks failed (records in {shard}): "
                                  f"{shown}{more}")
    return {"shard": str(shard), "tasks": summary.tasks, "ran": summary.ran, "ok": summary.ok,
            "already_in_shard": summary.already_stored, "wall_seconds": round(summary.wall_seconds, 3)}


@explicit_serialize
class RunTansakuTasks(FiretaskBase):
    """Run the tansaku tasks named in ``spec["tansaku"]`` (optional parameter ``workers``: a local process
    pool of that size instead of running the tasks one after another in the rocket)."""

    optional_params = ["workers"]

    def run_task(self, fw_spec: dict) -> FWAction:
        return FWAction(stored_data=run_firework(fw_spec, workers=int(self.get("workers", 0))))
