"""Planning: campaign -> candidates (+ elemental references) -> tasks, checked before any work starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tansaku.calculators import get_spec, unsupported_elements
from tansaku.constants import KIND_CANDIDATE, KIND_COMPETING, KIND_REFERENCE
from tansaku.screening.candidate import Candidate
from tansaku.screening.generate import Generation, generate
from tansaku.screening.magnetic_configurations import magnetic_configurations
from tansaku.screening.references import elemental_reference
from tansaku.screening.substitution import SubstitutionError
from tansaku.workflows.campaign import Campaign, CampaignError
from tansaku.workflows.tasks import Task, make_task

REFERENCE_PROTOTYPE = "element"


class UnsupportedElementsError(ValueError):
    """Candidates contain elements the chosen calculator cannot handle."""


@dataclass
class Plan:
    """The tasks of a campaign and the counts of how they were made (what a saved plan keeps)."""

    tasks: list[Task]
    generated: int = 0  # candidates generated, before deduplication
    duplicates: int = 0  # candidates removed as duplicates (StructureMatcher)
    candidates: int = 0  # candidates kept
    competing: int = 0  # competing phases
    references: int = 0  # elemental references
    merged: int = 0  # tasks dropped because another task had the same id (see merge_tasks)
    campaign_hash: str = ""  # identity of the planning inputs (workflows.planfile.campaign_hash)


def generate_candidates(campaign: Campaign) -> Generation:
    """All candidates of the campaign, deduplicated; errors name the [[prototypes]] entry."""
    try:
        return generate(campaign.decorations)
    except SubstitutionError as exc:
        raise CampaignError(f"{campaign.source}: {exc}") from None


def competing_phases(campaign: Campaign) -> list[Candidate]:
    """The campaign's [[competing]] phases (relaxed for the hull, never ranked)."""
    try:
        phases = generate(campaign.competing).candidates
    except SubstitutionError as exc:
        raise CampaignError(f"{campaign.source}: {str(exc).replace('prototypes[', 'competing[', 1)}") from None
    for phase in phases:
        phase.kind = KIND_COMPETING
    return phases


def reference_candidates(campaign: Campaign, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Elemental references to relax with the same calculator (for formation energies)."""
    wanted = campaign.references.elements
    if wanted == "none":
        return []
    symbols = sorted({s for c in candidates for s in c.elements}) if wanted == "auto" else list(wanted)
    return [Candidate(elemental_reference(symbol), REFERENCE_PROTOTYPE, changes="reference",
                      kind=KIND_REFERENCE, origin=f"reference/{symbol}") for symbol in symbols]


def check_elements(calculator: str, candidates: Sequence[Candidate], shown: int = 10) -> None:
    """Refuse candidates with elements the calculator does not support, listing them."""
    offending = [(c, unsupported_elements(calculator, c.elements)) for c in candidates]
    offending = [(c, bad) for c, bad in offending if bad]
    if not offending:
        return
    bad_elements = sorted({e for _, bad in offending for e in bad})
    lines = [f"  {c.id}  {c.label}: {', '.join(bad)}" for c, bad in offending[:shown]]
    if len(offending) > shown:
        lines.append(f"  ... and {len(offending) - shown} more")
    supported = ", ".join(sorted(get_spec(calculator).elements)) if len(get_spec(calculator).elements) < 20 \
        else f"{len(get_spec(calculator).elements)} elements"
    raise UnsupportedElementsError(
        f"calculator {calculator!r} does not support {', '.join(bad_elements)} (it supports {supported}); "
        f"{len(offending)} candidate(s) affected:\n" + "\n".join(lines))


def make_plan(campaign: Campaign) -> Plan:
    """Generate, add references, check elements, and turn everything into tasks."""
    generation = generate_candidates(campaign)
    competing = competing_phases(campaign)
    references = reference_candidates(campaign, [*generation.candidates, *competing])
    everything = [*references, *competing, *generation.candidates]
    check_elements(campaign.calculator.name, everything)
    tasks = [task for c in everything for task in candidate_tasks(c, campaign)]
    merged = merge_tasks(tasks)
    return Plan(tasks=merged, generated=generation.generated, duplicates=generation.duplicates,
                candidates=len(generation.candidates), competing=len(competing), references=len(references),
                merged=len(tasks) - len(merged))


def candidate_tasks(candidate: Candidate, campaign: Campaign) -> list[Task]:
    """The tasks of one candidate: one per starting magnetic configuration ([magnetism]) for calculators
    that take initial moments (spin-polarised DFT), else the one relaxation.  References and competing
    phases start FM only (their configurations are not ranked)."""
    name, params = campaign.calculator.name, campaign.calculator.params
    spin = get_spec(name).uses_initial_magmoms and params.get("spin", True)
    if not spin:
        return [make_task(candidate, name, params, campaign.relax, stage_name=campaign.stage_name)]
    mode = campaign.magnetism.configurations if candidate.kind == KIND_CANDIDATE else "fm"
    configurations = magnetic_configurations(candidate.atoms, mode, campaign.magnetism.max_configurations,
                                             campaign.magnetism.supercell)
    tasks = [make_task(candidate, name, params, campaign.relax, stage_name=campaign.stage_name, configuration=c)
             for c in configurations]
    return tasks


# When two tasks have one id (a competing phase equal to a candidate, an element listed twice in the
# references) one relaxation serves both; the kept task takes the kind that matters most downstream:
# candidates are ranked, and every row (of any kind) enters the hull, so an elemental row stays a reference
# for the hull even when it is stored as a candidate.
KIND_PRIORITY = {"candidate": 0, "reference": 1, "competing": 2}


def merge_tasks(tasks: Sequence[Task]) -> list[Task]:
    """One task per task id, in first-seen order; of tasks sharing an id the highest-priority kind is kept."""
    kept: dict[str, Task] = {}
    for task in tasks:
        old = kept.get(task.task_id)
        if old is None or KIND_PRIORITY.get(task.kind, 9) < KIND_PRIORITY.get(old.kind, 9):
            kept[task.task_id] = task
    return list(kept.values())
