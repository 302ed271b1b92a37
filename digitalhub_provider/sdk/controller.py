"""The run controller: the one writer of a run's status.

Every state change goes through :meth:`RunController.transition`, which checks
it against :data:`TRANSITIONS` (an illegal one raises, nothing is stored) and
writes it only if the store still holds the state this process last saw: a
run another process stopped meanwhile stays STOPPED, and this process learns
it (:class:`StateChangedError`) instead of overwriting it.

The life of a run, whatever starts it (an Airflow operator, ``function.run()``,
a KFP step) and wherever it runs (a :mod:`launcher <digitalhub_provider.launchers.base>`):

- ``create``: check the call, create the task and the run (CREATED);
- ``submit``: ready the environment (BUILT), write the RunSpec (READY), start the
  runner (RUNNING); the build action ends at BUILT -> COMPLETED;
- ``follow``: wait for the runner, record what it reports meanwhile, and finish:
  read the RunResult, register the outputs and set COMPLETED, ERROR or STOPPED
  in one transaction. An interrupt of the waiting caller (a timeout, Airflow's
  task timeout or kill) kills the runner and ends the run with the reason;
- ``stop``: STOPPED, the runner killed, the runs it started (KFP steps) stopped;
- ``unfinished`` / ``reattach``: a later attempt finds a run an earlier one left,
  and fails it or follows it again;
- ``reconcile``: a run nobody follows any more (its caller killed, a worker lost) is
  finished from the evidence: the RunResult its runner wrote, or the runner gone.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from digitalhub_provider.entities import Run, State
from digitalhub_provider.entities.base import Relationship, now_iso
from digitalhub_provider.entities.executable import Executable
from digitalhub_provider.errors import DigitalHubError, IllegalTransitionError, StateChangedError
from digitalhub_provider.launchers import processes
from digitalhub_provider.launchers.base import Handle, Launcher, RunnerLost
from digitalhub_provider.runtimes.registry import BUILD_ACTION, BUILD_CONTEXT_FOLDER, RUNNERS, SERVE_ACTION
from digitalhub_provider.sdk.cache import find_hit
from digitalhub_provider.sdk.context import Context
from digitalhub_provider.sdk.outcomes import (
    delete_journaled,
    delete_written,
    read_result,
    registrations,
    store_large_results,
    store_logs,
    write_result,
)
from digitalhub_provider.sdk.runspecs import build_runspec, new_run, store_runspec
from digitalhub_provider.states import UNFINISHED_STATES
from digitalhub_provider.stores.crud import next_version
from digitalhub_provider.stores.deletion import remove_files

if TYPE_CHECKING:
    from digitalhub_provider.runtimes.contract import RunResult

log = logging.getLogger(__name__)

# The states a run may move to from each state. BUILT -> COMPLETED: the build action ends when its
# environment is ready. A service run (serve) stays RUNNING until it is stopped.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.BUILT, State.ERROR, State.STOPPED}),
    State.BUILT: frozenset({State.READY, State.COMPLETED, State.ERROR, State.STOPPED}),
    State.READY: frozenset({State.RUNNING, State.ERROR, State.STOPPED}),
    State.RUNNING: frozenset({State.COMPLETED, State.ERROR, State.STOPPED}),
    State.COMPLETED: frozenset(),
    State.ERROR: frozenset(),
    State.STOPPED: frozenset(),
}

# The runners this process follows, by run id: what ``stop`` kills.
_active: dict[str, Handle] = {}
_active_lock = threading.Lock()


def check_transition(run: Run, state: State) -> None:
    current = State(run.state)
    if state not in TRANSITIONS[current]:
        allowed = ", ".join(s.value for s in TRANSITIONS[current]) or "none: it is final"
        raise IllegalTransitionError(
            f"run {run.id} cannot go from {current.value} to {state.value} (allowed: {allowed})"
        )


class Started:
    """A runner the controller started: its handle, and the RunSpec's upload when that overlaps the start."""

    def __init__(self, handle: Handle, launcher: Launcher, upload: _Background | None = None) -> None:
        self.handle = handle
        self.launcher = launcher
        self.upload = upload


class PodEvidence(Protocol):
    """What a cluster says about the pods of runs (:mod:`digitalhub_provider.launchers.pod_evidence`)."""

    def runner_gone(self, run: Run, follower_gone: bool) -> str | None:
        """Why the pod of ``run`` is known to be gone or ended, or None (it runs, or it cannot be told);
        with no pod at all, gone only when ``follower_gone`` (nobody will start one)."""

    def remove_ended(self, run: Run) -> None:
        """Delete the ended pods of ``run``, as its follower would have (KubernetesPodOperator's delete_pod)."""

    def remove_service(self, run: Run) -> None:
        """Delete the Deployment and the Service of a service's run (the serve action on Kubernetes)."""

    def build_result(self, run: Run) -> RunResult | None:
        """The outcome an image build's ended pod tells (its digest, or its log tail), or None while it
        runs or when it cannot be told: what its follower would have written."""


class RunController:
    """``caller`` names who waits, in the message of a run its interrupt ended ("the Airflow task").
    ``pods`` lets :meth:`reconcile` ask the cluster about runs in pods (else those are left)."""

    def __init__(self, ctx: Context, caller: str = "the caller", pods: PodEvidence | None = None) -> None:
        self.ctx = ctx
        self.caller = caller
        self.pods = pods

    # -- the status: the one writer --------------------------------------------------------
    def transition(
        self, run: Run, state: State, message: str | None = None, *, persist: bool = True, **fields: Any
    ) -> Run:
        """Move ``run`` to ``state`` (its timing and transition recorded) and save it; with
        ``persist=False`` the change is only in memory, saved with the next one."""
        check_transition(run, state)
        stamp = now_iso()
        status = run.status
        status.state = state.value
        if message is not None:
            status.message = message
        timings = dict(status.get("timings") or {})
        timings[state.value.lower()] = stamp
        transitions = list(status.get("transitions") or [])
        transitions.append({"status": state.value, "time": stamp, **({"message": message} if message else {})})
        for name, value in {"timings": timings, "transitions": transitions, **fields}.items():
            setattr(status, name, value)
        run.metadata.updated = stamp
        if persist:
            self._save(run)
        return run

    def record(self, run: Run, **fields: Any) -> Run:
        """Status fields learnt on the way (a KFP run's id), without a change of state."""
        for name, value in fields.items():
            setattr(run.status, name, value)
        try:
            self._save(run)
        except StateChangedError:
            self._reload(run)
        return run

    def _save(self, run: Run, creates: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        expect = {run.id: run.saved_state} if run.saved_state else None
        self.ctx.metadata.write(create=creates or (), update=[("run", run.to_dict())], expect=expect)
        run.saved_state = run.status.state

    def _reload(self, run: Run) -> Run:
        stored = Run.from_dict(self.ctx.metadata.get(run.project, "run", run.id), self.ctx)
        run.status = stored.status
        run.metadata = stored.metadata
        run.saved_state = stored.status.state
        return run

    def _end(self, run: Run, state: State, message: str, result: RunResult | None = None, **fields: Any) -> Run:
        """A final state; when another process ended the run first, its outcome stands (and what this
        attempt wrote is removed, unless that process completed the run from the same RunResult)."""
        if State(run.state).final:  # ended by another thread of this process (a stop from on_kill)
            return self._lost_race(run, result)
        try:
            return self.transition(run, state, message, **fields)
        except StateChangedError:
            return self._lost_race(run, result)

    def _lost_race(self, run: Run, result: RunResult | None, stored: list[str] | None = None) -> Run:
        """Another process ended ``run`` first: its outcome stands. The files of ``result`` (and the
        large results stored from it) are those of the run's one RunResult: a process that completed
        the run registered them, and they stay."""
        self._reload(run)
        if run.state != State.COMPLETED.value:
            delete_written(self.ctx, result)
            remove_files(self.ctx, stored or [])
        return run

    # -- create and start ----------------------------------------------------------------
    def create(self, fn: Executable, **call: Any) -> Run:
        """Check the call and create the task and the run (CREATED); nothing starts. The run records
        this process as its follower: the reconciler ends a run whose follower is gone."""
        run = new_run(fn, ctx=self.ctx, **call)
        run.status.follower = processes.identity()  # type: ignore[attr-defined]
        self.ctx.insert("run", run.to_dict())
        return run

    def submit(self, fn: Executable, run: Run, launcher: Launcher) -> Started | None:
        """From the run's state on: BUILT, READY, RUNNING. None when the run ended before any runner
        started (the build action, an error, a stop meanwhile)."""
        kind = run.run_kind
        if kind.action != BUILD_ACTION and (fn.kind, kind.action) not in RUNNERS:
            self._end(run, State.ERROR, f"action {kind.action!r} of {fn.kind} is not available in this version")
            return None
        try:
            if run.state == State.CREATED.value and run.spec.get("cache") and self._from_cache(fn, run):
                return None
            if run.state == State.CREATED.value:
                environment = launcher.prepare(fn, run, self.ctx)
                if kind.action == BUILD_ACTION and not launcher.runs_build:
                    self.transition(run, State.BUILT)
                    self._built(fn, run, launcher.image, environment)
                    return None
                self.transition(run, State.BUILT, environment, persist=not launcher.quick)
            if run.state == State.RUNNING.value:
                handle = launcher.reattach(fn, run, self.ctx)
                if handle is None:
                    return None
                self.record(run, follower=processes.identity())
                return self._register(run, Started(handle, launcher))
            if run.state != State.BUILT.value and run.state != State.READY.value:
                return None
            spec = build_runspec(run, fn, self.ctx)
            spec_json = spec.to_json()
            inline = launcher.inline_runspec(spec_json)
            if not inline:
                store_runspec(spec, self.ctx, spec_json)
            if run.state == State.BUILT.value:
                self.transition(run, State.READY, persist=not launcher.quick)
        except StateChangedError:  # stopped meanwhile
            self._reload(run)
            return None
        except DigitalHubError as exc:
            self._end(run, State.ERROR, str(exc))
            return None
        try:
            handle = launcher.start(spec, run, self.ctx)
        except Exception as exc:  # the launcher refused what it was given
            self._end(run, State.ERROR, f"cannot start the runner: {exc}")
            return None
        # A runner that has its RunSpec inline does not wait for the file: storing it (on S3 the first
        # call of this process, ~0.4 s of client set-up) overlaps the runner's run. It starts after
        # launcher.start, whose imports (KubernetesPodOperator's) it would otherwise slow down.
        upload = _Background(store_runspec, spec, self.ctx, spec_json) if inline else None
        started = self._register(run, Started(handle, launcher, upload))
        try:
            self.transition(run, State.RUNNING, **handle.status, follower=processes.identity())
        except StateChangedError:  # stopped while it started
            handle.kill()
            self._unregister(run)
            self._reload(run)
            return None
        return started

    def _built(self, fn: Executable, run: Run, image: str | None, environment: str | None) -> Run:
        """COMPLETED, and the function's next version runs on what the build made (``spec.image``),
        saved in the same write: a build stopped meanwhile adds no version."""
        if image is None:
            return self._end(run, State.COMPLETED, f"environment ready: {environment}")
        if fn.spec.get("image") == image:  # built before: this version runs on it already
            return self._end(run, State.COMPLETED, f"built {image}: function version {fn.key}", results={
                "image": image, "function": fn.key})  # fmt: skip
        built = next_version(fn, image=image)
        self.transition(
            run, State.COMPLETED, f"built {image}: function version {built.key}", persist=False,
            results={"image": image, "function": built.key},
        )  # fmt: skip
        try:
            self._save(run, creates=[(built.ENTITY_TYPE, built.to_dict())])
        except StateChangedError:
            return self._lost_race(run, None)
        return run

    def _from_cache(self, fn: Executable, run: Run) -> bool:
        """COMPLETED with an identical earlier run's outputs and results, when one may be reused
        (:mod:`.cache`); else the reason is recorded and the run goes on to execute."""
        earlier, why = find_hit(fn, run, self.ctx)
        if earlier is None:
            self.record(run, cache={"hit": False, "reason": why})
            return False
        done = earlier.get("status") or {}
        relationships = list(run.metadata.relationships or [])
        run.metadata.relationships = [*relationships, Relationship("cached_from", earlier["key"])]
        self.transition(run, State.BUILT, "from the cache", persist=False)
        self._end(
            run,
            State.COMPLETED,
            f"reused the outputs and results of run {earlier['key']} (cache)",
            outputs=done.get("outputs") or {},
            results=done.get("results") or {},
            cache={"hit": True, "from": earlier["key"]},
        )
        return True

    def release(self, run: Run) -> None:
        """This process follows ``run`` no more (a service left serving when its starter ends)."""
        self._unregister(run)

    def _register(self, run: Run, started: Started) -> Started:
        with _active_lock:
            _active[run.id] = started.handle
        return started

    def _unregister(self, run: Run) -> None:
        with _active_lock:
            _active.pop(run.id, None)

    # -- follow and finish -------------------------------------------------------------------
    def execute(self, fn: Executable, run: Run, launcher: Launcher, timeout: float | None = None) -> Run:
        """``submit`` then ``follow``."""
        started = self.submit(fn, run, launcher)
        return run if started is None else self.follow(run, started, timeout=timeout)

    def follow(self, run: Run, started: Started, timeout: float | None = None) -> Run:
        """Wait for the runner and finish the run. A deferral (the launcher's) leaves it RUNNING."""
        handle = started.handle
        try:
            try:
                code = self._wait(run, handle, started.launcher.progress_interval, timeout)
            finally:
                if started.upload is not None and (error := started.upload.wait()) is not None:
                    log.warning("the RunSpec was not stored on the data store (the runner had it inline): %s", error)
        except subprocess.TimeoutExpired:
            handle.kill()
            return self.finish(run, message=f"the run timed out after {timeout:g} s and was killed")
        except RunnerLost as lost:
            return self.finish(run, lost=str(lost))
        except BaseException as exc:
            if started.launcher.is_deferral(exc):
                self._unregister(run)
                raise
            handle.kill()
            if isinstance(exc, KeyboardInterrupt):  # Ctrl-C: the user stopped it, as MLflow marks a run KILLED
                self.finish(run, message=f"stopped: {self.caller} was interrupted (Ctrl-C)", state=State.STOPPED)
            else:
                self.finish(run, message=f"{self.caller} was interrupted: {type(exc).__name__}: {exc}")
            raise
        if fields := handle.progress():
            self.record(run, **fields)
        return self.finish(run, exit_code=code)

    def _wait(self, run: Run, handle: Handle, interval: float | None, timeout: float | None) -> int:
        if interval is None:
            return handle.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
            try:
                return handle.wait(step)
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            if fields := handle.progress():
                self.record(run, **fields)

    def finish(
        self,
        run: Run,
        exit_code: int | None = None,
        message: str | None = None,
        lost: str | None = None,
        state: State = State.ERROR,
    ) -> Run:
        """The outcome, from the RunResult (one transaction: outputs, lineage, state). ``message``: the
        run was interrupted and ends in ``state`` (what it wrote is removed); ``lost``: why there is
        no exit code. A run that does not complete leaves none of the files its runner was writing."""
        self._outcome(run, exit_code, message, lost, state)
        if run.state != State.COMPLETED.value:
            delete_journaled(self.ctx, run)
        self._drop_build_context(run)
        return run

    def _drop_build_context(self, run: Run) -> None:
        """An ended image build's context (what Kaniko read, or never will) leaves the data store."""
        if run.run_kind.action == BUILD_ACTION and run.spec.get("local_execution") is False:
            remove_files(self.ctx, [self.ctx.run_url(run.id, BUILD_CONTEXT_FOLDER)])

    def _outcome(self, run: Run, exit_code: int | None, message: str | None, lost: str | None, state: State) -> Run:
        self._unregister(run)
        try:
            store_logs(self.ctx, run)
        except DigitalHubError as exc:  # the log stays where the runner wrote it; the outcome matters more
            log.warning("the log of run %s was not stored on the data store: %s", run.id, exc)
        try:
            result = read_result(self.ctx, run)
        except DigitalHubError as exc:  # e.g. the data store does not answer: the run cannot be completed
            result = None
            lost = f"the run's result could not be read from the data store: {exc}"
        if State(self._reload_state(run)).final:  # stopped (or ended) by another process meanwhile
            if run.state != State.COMPLETED.value:
                delete_written(self.ctx, result)
            return run
        if message is not None:
            delete_written(self.ctx, result)
            return self._end(run, state, message)
        if result is None:
            if lost is None:
                how = (
                    f"was killed by signal {-exit_code}"
                    if exit_code is not None and exit_code < 0
                    else f"exited with code {exit_code}"
                )
                lost = f"the runner {how} before writing a result"
            return self._end(run, State.ERROR, lost)
        if result.state == State.STOPPED.value:  # e.g. a KFP run canceled on its server
            return self._end(run, State.STOPPED, result.message or "the run was stopped", result)
        if result.state != State.COMPLETED.value:
            return self._end(run, State.ERROR, result.message or "the run failed", result, traceback=result.traceback)
        return self._complete(run, result)

    def _function_of(self, run: Run) -> Executable:
        from digitalhub_provider.entities import Function
        from digitalhub_provider.stores import crud

        return crud.get_entity(Function, str(run.spec["function"]), ctx=self.ctx)

    def _reload_state(self, run: Run) -> str:
        """The stored state; the stored status replaces this object's when the run ended elsewhere."""
        stored = self.ctx.metadata.get(run.project, "run", run.id)
        state = str((stored.get("status") or {}).get("state") or State.CREATED.value)
        if State(state).final:
            self._reload(run)
        return state

    def _complete(self, run: Run, result: RunResult) -> Run:
        try:
            creates, output_keys = registrations(run, result)
            results, stored = store_large_results(self.ctx, run, result.results)
            if run.run_kind.action == BUILD_ACTION and result.results.get("image"):
                # an image build's runner (Kaniko's pod): the function's next version runs on its image
                built = next_version(self._function_of(run), image=str(result.results["image"]))
                creates.append((built.ENTITY_TYPE, built.to_dict()))
                results["function"] = built.key
        except DigitalHubError as exc:
            delete_written(self.ctx, result)
            return self._end(run, State.ERROR, f"cannot register the run's outputs: {exc}")
        run.status.message = None
        self.transition(run, State.COMPLETED, persist=False, outputs=output_keys, results=results)
        timings = run.status.timings  # type: ignore[attr-defined]
        timings.update(handler_started=result.timings.get("started"), handler_finished=result.timings.get("finished"))
        try:
            self._save(run, creates)
        except StateChangedError:
            return self._lost_race(run, result, stored)
        except DigitalHubError as exc:
            if State(self._reload(run).state).final:  # ended meanwhile: e.g. completed with these same entities
                return self._lost_race(run, result, stored)
            delete_written(self.ctx, result)
            remove_files(self.ctx, stored)
            return self._end(run, State.ERROR, f"cannot register the run's outputs: {exc}")
        return run

    # -- runs a client executes itself ----------------------------------------------------------
    def admit(self, entity: dict[str, Any]) -> None:
        """Store a run a REST client created (DigitalHub Core's ``POST /runs``): CREATED as the SDK
        makes them, or in any state of the table (a run imported, or recorded by another platform)."""
        state = (entity.get("status") or {}).get("state") or State.CREATED.value
        if state not in State._value2member_map_:
            allowed = ", ".join(s.value for s in State)
            raise IllegalTransitionError(f"run {entity.get('id')}: unknown state {state!r} (a run is {allowed})")
        self.ctx.insert("run", entity)

    def accept(self, stored: Run, sent: dict[str, Any]) -> None:
        """Store a run as a client that executes it itself sends it (the official SDK's local
        execution PUTs BUILT, READY, RUNNING, then COMPLETED with its outputs): whole, as sent, when
        its state follows the stored one by :data:`TRANSITIONS` (or stays the same), and only if the
        store still holds ``stored``'s state."""
        state = (sent.get("status") or {}).get("state") or stored.state
        try:
            target = State(state)
        except ValueError:
            allowed = ", ".join(s.value for s in State)
            raise IllegalTransitionError(f"run {stored.id}: unknown state {state!r} (a run is {allowed})") from None
        if target.value != stored.state:
            check_transition(stored, target)
        self.ctx.metadata.write(update=[("run", sent)], expect={stored.id: stored.state})

    # -- stop, and runs left by an earlier attempt -------------------------------------------
    def stop(self, run: Run, message: str = "stopped by request") -> Run:
        """STOPPED, then its runner killed (when this process follows it, or it is a process on this
        machine) and the unfinished runs it started (``step_of`` it) stopped too."""
        self._reload(run)
        if State(run.state).final:
            return run
        try:
            self.transition(run, State.STOPPED, message)
        except StateChangedError:
            return self.stop(run, message)
        self._kill(run)
        self._drop_build_context(run)
        for child in self._children(run):
            self.stop(child, f"{message} (its workflow run {run.id} was stopped)")
        return run

    def fail_stale(self, run: Run, message: str) -> Run:
        """ERROR for a run whose follower is gone (a worker that died), its runner killed when it is
        a process on this machine."""
        self._end(run, State.ERROR, message)
        self._kill(run)
        delete_journaled(self.ctx, run)
        self._drop_build_context(run)
        return run

    def reconcile(self, run: Run, follower_gone: str | None = None) -> Run:
        """Finish ``run`` from the evidence when nobody follows it any more; else leave it as it is.
        ``follower_gone``: why the caller knows its follower is gone though it cannot see the process
        (its Airflow task instance is no longer running, as Airflow says).

        - followed by this process, or by a process still alive: left to its follower;
        - a RunResult on the data store: finished as the RunResult says;
        - its runner gone without one (a local runner's process, or the process that ran it
          in-process): ERROR "runner lost: ...", and what is left of the runner's group killed;
        - its pod ended, or gone while nobody follows it (asked through ``pods``): ERROR "runner lost: ...";
          the ended pod deleted;
        - a local runner whose Airflow task instance is gone (``follower_gone``): ERROR "runner lost: ...",
          the runner killed when it is on this host (an orphan, as a retry would judge it), else because
          no process there can be checked from here;
        - a runner that still runs, or whose liveness cannot be told (a pod without ``pods``, another
          host without ``follower_gone``): left as it is.
        """
        if State(run.state).final:
            return run
        with _active_lock:
            if run.id in _active:
                return run
        status = run.status
        follower = status.get("follower") or {}
        follower_alive = False if follower_gone else processes.alive(follower)
        if follower_alive:
            return run
        if run.state != State.RUNNING.value:
            if follower_alive is False:
                why = (
                    follower_gone
                    or f"the process that started it ({follower.get('pid')} on {follower.get('host')}) ended"
                )
                self._end(run, State.ERROR, f"runner lost: {why}")
                if run.run_kind.action == SERVE_ACTION:
                    self._kill(run)  # a service's objects on Kubernetes, created before its starter died, serve on
                return run
            return run
        if read_result(self.ctx, run) is not None:
            self._kill(run, ended_pods=True)  # what the runner started and left behind
            return self.finish(run, lost="runner lost: its follower ended before reading the result")
        if run.run_kind.action == BUILD_ACTION and self.pods is not None:
            # Kaniko writes no RunResult: its follower writes it from the ended pod, and so does this.
            built = self.pods.build_result(run)
            if built is not None:
                write_result(self.ctx, run, built)
                self._kill(run, ended_pods=True)
                return self.finish(run, lost="runner lost: its follower ended before the build did")
        lost = self._runner_gone(run, follower_alive, follower_gone)
        if lost is None:
            return run
        if read_result(self.ctx, run) is not None:  # the result came meanwhile: it stands
            return self.finish(run, lost=lost)
        self._kill(run, ended_pods=True)
        return self.finish(run, message=lost)  # what a killed orphan writes as it dies does not decide

    def _runner_gone(self, run: Run, follower_alive: bool | None, follower_gone: str | None) -> str | None:
        """Why the runner of a RUNNING run is known to be gone, or None (alive, or not knowable here)."""
        status = run.status
        launcher = status.get("launcher")
        if launcher == "local" and status.get("pid"):
            runner = {"host": status.get("host"), "pid": status.get("pid"), "started": status.get("started")}
            alive = processes.alive(runner)
            if alive is False:
                return f"runner lost: the runner process {runner['pid']} on {runner['host']} ended without a result"
            if alive and follower_gone and run.run_kind.action != SERVE_ACTION:  # a service outlives its starter
                # an orphan: nobody will read its result, as a retry would judge it
                return f"runner lost: {follower_gone}; its runner process {runner['pid']}, left running, was killed"
            if alive is None and follower_gone:  # another host: its task instance is the evidence there is
                return (
                    f"runner lost: {follower_gone}, and its runner process {runner['pid']} on {runner['host']} "
                    "cannot be checked from here"
                )
        elif launcher == "kubernetes" and self.pods is not None:
            return self.pods.runner_gone(run, follower_gone=follower_alive is False)
        elif launcher == "in-process" and follower_alive is False:  # it ran in its follower's process
            if follower_gone:
                return f"runner lost: {follower_gone}, and it ran in that task's process without writing a result"
            follower = status.get("follower") or {}
            return (
                f"runner lost: the process that ran it in-process ({follower.get('pid')} on "
                f"{follower.get('host')}) ended without a result"
            )
        return None

    def reconcile_unfinished(
        self, project: str | None = None, limit: int = 1000, follower_gone: Callable[[Run], str | None] | None = None
    ) -> dict[str, int]:
        """:meth:`reconcile` every unfinished run (of ``project``, or of all projects): how many were
        seen, and how many ended in each state. ``follower_gone`` tells, for a run, why its follower is
        known to be gone (None: not known), e.g. from Airflow's task instances."""
        unfinished = [s.value for s in UNFINISHED_STATES]
        rows = self.ctx.metadata.list(project, "run", state=unfinished, limit=limit)
        counts = {"unfinished": len(rows)}
        for row in rows:
            run = Run.from_dict(row, self.ctx)
            try:
                self.reconcile(run, follower_gone(run) if follower_gone is not None else None)
            except DigitalHubError as exc:  # one run's store or data trouble does not stop the others
                log.warning("run %s was not reconciled: %s", run.id, exc)
                continue
            if State(run.state).final:
                counts[run.state] = counts.get(run.state, 0) + 1
        return counts

    def _kill(self, run: Run, ended_pods: bool = False) -> None:
        """The runner of ``run`` killed: the one this process follows, or a process on this host;
        ``ended_pods``: its pods that ended deleted too (a running pod is its follower's to delete)."""
        with _active_lock:
            handle = _active.get(run.id)
        if handle is not None:
            handle.kill()
            return
        status = run.status
        from digitalhub_provider.launchers.pod_evidence import cluster_of, is_service

        if is_service(run):
            # A service on Kubernetes outlives whoever started it: its Deployment and Service are
            # deleted through this controller's cluster, else the one the run recorded.
            cluster = self.pods or cluster_of(run)
            if cluster is not None:
                cluster.remove_service(run)
            return
        if ended_pods and status.get("launcher") == "kubernetes" and self.pods is not None:
            self.pods.remove_ended(run)
            return
        pid = status.get("pid")
        if not isinstance(pid, int) or status.get("host") != socket.gethostname():
            return
        runner = {"host": status.get("host"), "pid": pid, "started": status.get("started")}
        # The runner itself, or what is left of its group once it ended (the kernel gives no new process
        # a pid still in use as a group id, so that group is the runner's).
        leftovers = processes.alive({**runner, "started": None}) is False and processes.group_alive(pid)
        if processes.alive(runner) or leftovers:
            from digitalhub_provider.launchers.local import kill_group

            kill_group(pid)

    def _children(self, run: Run) -> list[Run]:
        rows = self.ctx.metadata.list(run.project, "run", state=[s.value for s in UNFINISHED_STATES], limit=500)
        children = [Run.from_dict(d, self.ctx) for d in rows]
        return [
            c
            for c in children
            if any(r.type == "step_of" and r.dest == run.key for r in c.metadata.relationships or [])
        ]

    def unfinished(self, fn: Executable, labels: set[str]) -> list[Run]:
        """Runs of ``fn`` not yet COMPLETED, ERROR or STOPPED that carry all of ``labels``, newest first."""
        return self.labelled(fn, labels, [s.value for s in UNFINISHED_STATES])

    def labelled(self, fn: Executable, labels: set[str], states: list[str] | None = None) -> list[Run]:
        """Runs of ``fn`` (in one of ``states``, or any) that carry all of ``labels``, newest first."""
        rows = self.ctx.metadata.list(
            fn.project, "run", function_name=fn.name, state=states, labels=sorted(labels), limit=200
        )
        # Checked here too: a remote Core that does not know the filter answers with every run.
        mine = [d for d in rows if labels <= set((d.get("metadata") or {}).get("labels") or [])]
        return [Run.from_dict(d, self.ctx) for d in mine]


class _Background:
    """One call in a helper thread; ``wait()`` joins it and gives its exception, if any (never raises)."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.error: BaseException | None = None

        def target() -> None:
            try:
                fn(*args)
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=target, name="digitalhub-background", daemon=True)
        self._thread.start()

    def wait(self, timeout: float = 300) -> BaseException | None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            return TimeoutError(f"still running after {timeout:g} s")
        return self.error
