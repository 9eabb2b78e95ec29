"""Pipeline steps of schema ``ephys``: EphysIngest (spec §13 ingest_ephys, §14.3-§14.7).

The key of EphysIngest is a ``SortedOutput``: one version of the files of a session folder
found under an ephys data root by the "ephys folders" discovery (each sweep; ``manage.py
ingest_ephys``). All probes of the session are written in one transaction. A folder whose
behavior session is not ingested yet waits; the step depends on BehaviorIngest, so ingesting
that session queues it again (``outputs_of_behavior_file``).

Steps downstream of EphysIngest receive, through ``keys_after(EPHYS_INGEST, output_id)``, the
SortedOutput just ingested; ``insertions_of_output`` / ``units_of_output`` map it to their
keys. When a re-sort replaces a clustering, their jobs for the replaced units are forgotten
(``runner.invalidate``) and the results hanging off those units go with them (cascade):
results of such steps must hang off Unit (or ProbeInsertion rows they replace themselves).
"""

from collections.abc import Iterable

from django.db.models import QuerySet

from experiment.models import BehaviorFile
from experiment.steps import BEHAVIOR_INGEST
from mapsite.pipeline.steps import pipeline_step, register_discovery

from .ingest import db_discovery, service
from .models import ProbeInsertion, SortedOutput, Unit

EPHYS_INGEST = "EphysIngest"


def current_outputs() -> QuerySet[SortedOutput]:
    """The latest version of every session folder found (older versions are superseded)."""
    return SortedOutput.objects.filter(superseded_at__isnull=True).select_related("recording")


@register_discovery("ephys folders")
def scan_ephys_roots() -> db_discovery.ScanReport:
    return db_discovery.scan_ephys_roots()


def outputs_of_behavior_file(upstream: str, behavior_file_id: int) -> Iterable[int]:
    """Sorted outputs of the subject of a just-ingested behavior file (they may be waiting)."""
    h2o = (
        BehaviorFile.objects.filter(pk=behavior_file_id)
        .values_list("session__subject__water_restriction__water_restriction_number", flat=True)
        .first()
    )
    if not h2o:
        return []
    return current_outputs().filter(recording__h2o=h2o).values_list("pk", flat=True)


@pipeline_step(
    EPHYS_INGEST,
    key_model=SortedOutput,
    key_source=current_outputs,
    depends_on=(BEHAVIOR_INGEST,),
    keys_after=outputs_of_behavior_file,
    queue="ingest",
    soft_time_limit=60 * 60,
)
def ingest_sorted_output(output: SortedOutput) -> None:
    """Sorted ephys session → probe insertions, units, spike arrays, metrics, trial alignment."""
    service.ingest_sorted_output(output)


def insertions_of_output(output_id: int) -> QuerySet[ProbeInsertion]:
    """The probe insertions of the session a SortedOutput was ingested into."""
    return ProbeInsertion.objects.filter(session__ephys_recordings__outputs=output_id)


def units_of_output(output_id: int) -> QuerySet[Unit]:
    """The (current) units of the session a SortedOutput was ingested into."""
    return Unit.objects.filter(insertion__in=insertions_of_output(output_id))
