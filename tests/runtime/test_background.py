"""The background compile thread (runtime/background.py), started with `_thread` so its caller
does not wait for the OS to run it: it names itself, runs jobs in order, and a job that ends
the thread (a BaseException, re-raised after the job's `failed`) leaves the next submit to
start another. Nothing here compiles: the jobs' builds are plain functions."""

from __future__ import annotations

import threading

from runtime import background


def _job(name, build, events):
    return background.Job(
        name,
        build,
        (),
        lambda fn: events.append((name, "ready", threading.current_thread().name)),
        lambda err: events.append((name, "failed", type(err).__name__)),
    )


def test_jobs_run_in_order_on_the_named_thread():
    events: list = []
    for name in ("a", "b", "c"):
        background.submit(_job(name, lambda sample: lambda *a: None, events))
    assert background.wait_idle(60)
    assert events == [(n, "ready", "gradc-compile") for n in ("a", "b", "c")]


def test_a_job_that_ends_the_thread_leaves_the_next_submit_a_new_one():
    events: list = []

    def stop(sample):
        raise SystemExit("stop the compile thread")

    background.submit(_job("stop", stop, events))
    assert background.wait_idle(60)
    assert events == [("stop", "failed", "SystemExit")]
    background.submit(_job("after", lambda sample: lambda *a: None, events))
    assert background.wait_idle(60)
    assert events[-1] == ("after", "ready", "gradc-compile")
