"""Admin routes (admin API key): reload the published generation now, and rebuild the index
in the background.

A rebuild re-reads the sources recorded in the published manifest (or the server-side files
named in the body), reusing the embedding cache, and publishes a new generation; the service
keeps answering from the old generation meanwhile and switches to the new one as soon as it
is published (the job asks the reloader, which opens and warms it up first). One rebuild at a
time: a second gets 409 while the first is queued or running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Path, Query

from app.api.deps import AdminDep, Services, ServicesDep
from app.api.schemas import (
    ApiError,
    JobList,
    JobResponse,
    RebuildBody,
    ReloadResponse,
    error_responses,
)
from app.serving import Job, JobConflict

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def job_response(job: Job) -> JobResponse:
    return JobResponse(
        job_id=job.job_id,
        kind=job.kind,
        state=job.state,
        stage=job.stage,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        params=job.params,
        result=job.result,
        error=job.error,
    )


@router.post(
    "/reload",
    response_model=ReloadResponse,
    summary="Reload the published generation",
    responses=error_responses(401, 403, 422, 429),
)
async def reload(
    admin: AdminDep,
    services: ServicesDep,
    force: Annotated[
        bool, Query(description="Reopen even if the published generation is the served one")
    ] = False,
) -> ReloadResponse:
    """Serve the generation the index's ``current`` symlink names, if it is not the one
    served (the service also polls for it, and reloads on SIGHUP)."""
    outcome = await anyio.to_thread.run_sync(lambda: services.reloader.reload(force=force))
    services.metrics.reloads.labels(
        outcome="changed" if outcome.changed else ("failed" if outcome.error else "unchanged")
    ).inc()
    return ReloadResponse(
        reloaded=outcome.changed,
        generation=outcome.generation,
        previous_generation=outcome.previous,
        took_ms=round(outcome.seconds * 1000, 2),
        error=outcome.error,
    )


def _rebuild_work(services: Services, sources: list[FilePath]) -> Callable[..., dict[str, Any]]:
    """The job: ``wikirag rebuild`` as a child process (:mod:`app.accounts.jobs`), then a
    switch to what it published."""
    from app.accounts.jobs import run_rebuild

    settings = services.settings

    def work(set_stage: Callable[[str], None]) -> dict[str, Any]:
        set_stage("building")
        started = time.perf_counter()
        result = run_rebuild(settings, sources)
        set_stage("loading")
        outcome = services.reloader.reload()
        services.metrics.reloads.labels(outcome="changed" if outcome.changed else "failed").inc()
        result["served_generation"] = outcome.generation
        result["reload_error"] = outcome.error
        result["seconds"] = round(time.perf_counter() - started, 2)
        return result

    return work


@router.post(
    "/rebuild",
    response_model=JobResponse,
    status_code=202,
    summary="Rebuild the index in the background",
    responses=error_responses(401, 403, 409, 413, 422, 429),
)
def rebuild(
    admin: AdminDep,
    services: ServicesDep,
    body: Annotated[RebuildBody | None, Body()] = None,
) -> JobResponse:
    """Start a rebuild job (202 with its id; poll ``GET /v1/admin/jobs/{job_id}``)."""
    sources = [FilePath(s) for s in (body.sources if body and body.sources else [])]
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise ApiError(
            422,
            "source-not-found",
            f"source file(s) not found on the server: {', '.join(missing)}",
            missing=missing,
        )
    try:
        job = services.jobs.submit(
            "rebuild",
            _rebuild_work(services, sources),
            params={"sources": [str(s) for s in sources] or "recorded", "by": admin.key_id},
        )
    except JobConflict as exc:
        raise ApiError(
            409,
            "rebuild-running",
            f"a rebuild is already {exc.job.state.value} (job {exc.job.job_id}); wait for it",
            job_id=exc.job.job_id,
        ) from None
    return job_response(job)


@router.get(
    "/jobs",
    response_model=JobList,
    summary="List background jobs",
    responses=error_responses(401, 403, 429),
)
def list_jobs(admin: AdminDep, services: ServicesDep) -> JobList:
    """The recent jobs, newest first."""
    return JobList(jobs=[job_response(j) for j in services.jobs.list()])


@router.get(
    "/jobs/{job_id}",
    response_model=JobResponse,
    summary="A background job's state",
    responses=error_responses(401, 403, 404, 422, 429),
)
def get_job(
    job_id: Annotated[str, Path(max_length=64)], admin: AdminDep, services: ServicesDep
) -> JobResponse:
    """State (queued, running, succeeded, failed), stage, and the build report or error."""
    job = services.jobs.get(job_id)
    if job is None:
        raise ApiError(404, "job-not-found", f"no job {job_id!r}", job_id=job_id)
    return job_response(job)
