"""Where a campaign stands against its saved plan: done / failed / pending task ids.

A task is *done* when an "ok" record of it is in the store or in a shard not yet collected, *failed*
when its only records are failed ones, *pending* otherwise (never run, or lost with a killed job).
``pending_task_ids`` is what ``submit --resume`` submits: neither stored nor in a shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tansaku.results import StoreError, read_columns
from tansaku.results.record import STATUS_OK
from tansaku.workflows.campaign import Campaign
from tansaku.workflows.collect import shard_files, shards_dir
from tansaku.workflows.planfile import check_plan, plan_path, read_task_ids


@dataclass
class PlanStatus:
    """Counts of the plan's tasks; ``in_shards`` = done or failed only in shards (not collected yet)."""

    total: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    stored: int = 0  # plan tasks with a record in the store
    in_shards: int = 0
    unreadable_shards: list[str] = field(default_factory=list)
    pending_ids: list[str] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)


def _statuses(path: Path) -> dict[str, str]:
    cols = read_columns(path, ["task_id", "status"])
    return dict(zip(cols["task_id"].tolist(), cols["status"].tolist()))


def _merge(into: dict[str, str], more: dict[str, str]) -> None:
    for tid, status in more.items():
        if into.get(tid) != STATUS_OK:
            into[tid] = status


def plan_status(plan_file: Path, output: Path, shards: Path | None = None) -> PlanStatus:
    """Status of every task of the plan ``plan_file`` from the store ``output`` and its shard folder."""
    ids = read_task_ids(plan_file)
    stored = _statuses(output) if output.exists() else {}
    sharded: dict[str, str] = {}
    result = PlanStatus(total=len(ids))
    for shard in shard_files(shards_dir(output) if shards is None else shards):
        try:
            _merge(sharded, _statuses(shard))
        except (StoreError, OSError, KeyError, RuntimeError) as exc:  # h5py: RuntimeError for garbage
            result.unreadable_shards.append(f"{shard}: {exc}")
    for tid in ids:
        status = stored.get(tid)
        if status != STATUS_OK and tid in sharded:
            result.in_shards += 1
            status = sharded[tid] if status is None or sharded[tid] == STATUS_OK else status
        if tid in stored:
            result.stored += 1
        if status is None:
            result.pending_ids.append(tid)
        elif status == STATUS_OK:
            result.done += 1
        else:
            result.failed_ids.append(tid)
    result.pending, result.failed = len(result.pending_ids), len(result.failed_ids)
    return result


def campaign_status(campaign: Campaign, shards: Path | None = None) -> PlanStatus:
    """``plan_status`` of a campaign (its saved plan must match it: PlanError otherwise)."""
    return plan_status(check_plan(campaign), campaign.output, shards)


def pending_task_ids(campaign: Campaign, shards: Path | None = None, include_failed: bool = False) -> list[str]:
    """Plan task ids neither stored nor in a shard, in plan order (with ``include_failed``: also those
    whose only records are failed ones)."""
    status = campaign_status(campaign, shards)
    if not include_failed:
        return status.pending_ids
    retry = set(status.pending_ids) | set(status.failed_ids)
    return [tid for tid in read_task_ids(plan_path(campaign)) if tid in retry]
