"""Run one scenario against a cluster, on either engine, and say how it went.

The runner owns one trio nursery for the run: the steps in order, each background request, each
fault that ends `for` a duration, and a sampler that reads every node's ground truth over the control
channel (`GET /_sim/nodes?tasks=true`, never faulted) for the `always` checks. REST calls go through
one async client (`coordinator.client.AsyncSimClient`) whatever the engine: on `real` urllib in
worker threads against a `tasksim up` child process (so a hung call never blocks the loop and a
Ctrl-C abandons it); on `sim` the cluster is built in the simulated world's own trio run and its
ASGI application answers in-process — no thread, socket or process. Time is `trio.current_time()`:
the machine's on `real`, virtual on `sim` (so `took`, step durations and `at:` are virtual there).

Heal is guaranteed: whatever happens — the steps pass, an expectation fails, a step errors, the
scenario times out, Ctrl-C — the `finally` heals the cluster (every rule removed, paused nodes
resumed, dead ones restarted), shielded from cancellation; then, only after a clean run, the
`eventually` checks poll until they hold or their deadline passes; then the cluster the runner
started is stopped and no node process may outlive it.

Outcome: `passed`, `failed` (an expectation or a check did not hold), `error` (the scenario
could not be carried out: a step's request was refused, the cluster did not start, a timeout), or
`skipped` (the scenario says it needs the other engine, or `hosts: netns` where namespaces cannot
be made: not root, no `nft`, or the sim engine).
"""

from __future__ import annotations

import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from coordinator.client import AsyncSend, AsyncSimClient, SimClientError
from coordinator.history.recording import run_header
from coordinator.limits import Limits
from coordinator.scenario import checks
from coordinator.scenario.expect import (
    Answer,
    Context,
    all_tasks,
    capture,
    check,
    failed_nodes,
    render,
)
from coordinator.scenario.process import ClusterProcess, ClusterStartError
from coordinator.scenario.schema import (
    PROCESS_KINDS,
    RequestSpec,
    Scenario,
    Step,
)
from coordinator.scenario.trace import Recorder
from simnode.history import Recorder as HistoryRecorder
from simnode.history import write as write_history

if TYPE_CHECKING:
    from coordinator.engine.sim import SimEngine

SAMPLE_INTERVAL = 0.25
START_RUNNING_TIMEOUT = 15.0
EVENTUALLY_INTERVAL = 0.2


class StepError(Exception):
    """The scenario could not be carried out (not an expectation that failed)."""


class ExpectationFailed(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class StepResult:
    index: int
    label: str
    status: str = "pending"  # ok | failed | error | skipped | pending
    started: float = 0.0  # seconds since the scenario started
    duration: float = 0.0
    detail: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    name: str
    file: str
    seed: int
    # passed | failed | vacuous (a `sometimes` never held) | error | skipped (needs the other engine)
    status: str = "error"
    duration: float = 0.0  # seconds on the run's clock (virtual on the sim engine)
    steps: list[StepResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    error: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    heal: dict[str, Any] | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    repro: str = ""
    url: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # cluster start/stop
    pids: list[int] = field(default_factory=list)  # the processes of the cluster the run started
    addresses: dict[str, str] = field(default_factory=dict)  # its transport addresses, by name
    history: str = ""  # the history the cluster recorded (history.jsonl)
    timeline: str = ""  # its timeline (timeline.html)
    engine: str = "real"  # real | sim
    reason: str | None = None  # why it was skipped


@dataclass
class _Background:
    step: int
    done: trio.Event = field(default_factory=trio.Event)


Progress = Callable[[str, Any], None]


class ScenarioRun:
    """One scenario on one engine. On `real`, `run()` inside any trio run; on `sim`,
    `run(engine)` inside `run_sim` (or `run_on_sim`, which makes the simulated world)."""

    def __init__(
        self,
        scenario: Scenario,
        file: Path,
        *,
        seed: int | None = None,
        url: str | None = None,
        log_dir: Path | None = None,
        progress: Progress | None = None,
        history_dir: Path | None = None,
        engine: str = "real",
        recorder: Recorder | None = None,
        record_history: bool = True,
    ) -> None:
        self.scenario = scenario
        self.file = file
        self.engine = engine
        self.seed = seed if seed is not None else scenario.default_seed()
        self.external_url = url
        self.log_dir = log_dir or Path("tasksim-reports") / "logs"
        # `<report dir>/<scenario name>/`: history.jsonl, timeline.html, logs/ (the report dir is
        # the parent of a log dir named `logs`, as `tasksim run` has it; else the log dir itself)
        base = self.log_dir.parent if self.log_dir.name == "logs" else self.log_dir
        self.history_dir = history_dir or base / scenario.name
        self.progress = progress or (lambda _event, _data: None)
        self.recorder = recorder
        # The cluster's history (history.jsonl, checked, drawn as a timeline) — always on the real
        # engine (the `tasksim up --record` child writes it); on the sim engine when asked for
        # (`tasksim run --engine sim` does; a sweep's thousand seeds do not, only its failures).
        self.record_history = record_history
        self.result = ScenarioResult(scenario.name, str(file), self.seed, engine=engine)
        self.result.repro = repro(file, self.seed, engine)
        self.result.steps = [StepResult(i, s.label(i)) for i, s in enumerate(scenario.steps)]
        self.client: AsyncSimClient | None = None
        self.ctx = Context({}, {})
        self.history = checks.TaskHistory()
        self.violations: list[str] = []
        self.accounted: list[str] = []
        self.list_checks = 0
        self.samples = 0
        self.t0 = 0.0
        self._background: dict[str, _Background] = {}
        self._ends: dict[str, list[str]] = {}  # step id → fault ids to remove when it completes
        self._failed = False

    @property
    def sim(self) -> AsyncSimClient:
        assert self.client is not None
        return self.client

    def now(self) -> float:
        """Seconds since the steps started, on the run's clock (virtual on the sim engine)."""
        return trio.current_time() - self.t0

    def skip_reason(self) -> str | None:
        """Why this scenario does not run on this engine or this machine (None: it does)."""
        needs = self.scenario.engine
        if needs is not None and needs != self.engine:
            why = self.scenario.description.strip().splitlines()
            return f"needs the {needs} engine" + (f": {why[0]}" if why else "")
        if self.scenario.cluster.hosts == "netns":
            if self.engine == "sim":
                return (
                    "needs hosts: netns (node processes in network namespaces), not the sim engine"
                )
            if self.external_url is None:
                return netns_unavailable()
        return None

    def skipped(self) -> ScenarioResult | None:
        """The result of a scenario that needs the other engine (None: it runs here)."""
        reason = self.skip_reason()
        if reason is None:
            return None
        self.result.status = "skipped"
        self.result.reason = reason
        for step in self.result.steps:
            step.status = "skipped"
        return self.result

    # -- the run ----------------------------------------------------------------------------------

    async def run(self, engine: SimEngine | None = None) -> ScenarioResult:
        started = trio.current_time()
        if self.skipped() is not None:
            return self.result
        if self.engine == "sim":
            assert engine is not None, "the sim engine runs inside run_sim (see run_on_sim)"
            try:
                await self._run_simulated(engine)
            finally:
                self.result.duration = trio.current_time() - started
            return self.result
        cluster: ClusterProcess | None = None
        try:
            if self.external_url is None:
                log = self.log_dir / f"{self.scenario.name}.log"
                self.progress("cluster", {"seed": self.seed})
                t = trio.current_time()
                record = self.history_dir / "history.jsonl"
                record.unlink(missing_ok=True)
                node_logs = self.history_dir / "logs"
                for old in node_logs.glob("*.log"):
                    old.unlink()
                cluster = await ClusterProcess.start(
                    self.file, self.seed, log, record=record, node_logs=node_logs
                )
                self.result.timings["cluster_start"] = round(trio.current_time() - t, 3)
                self.result.url = cluster.url
                self.result.addresses = dict(cluster.addresses)
            else:
                self.result.url = self.external_url
            self.client = AsyncSimClient.over_http(self.result.url)
            await self._run_on_cluster()
        except ClusterStartError as e:
            self.result.status = "error"
            self.result.error = str(e)
        except KeyboardInterrupt:
            self.result.status = "error"
            self.result.error = "interrupted (Ctrl-C): healed and stopped"
            raise
        finally:
            with trio.CancelScope(shield=True):
                if cluster is not None:
                    t = trio.current_time()
                    leftovers = await cluster.stop()
                    self.result.pids = sorted({cluster.process.pid, *cluster.node_pids})
                    self.result.timings["cluster_stop"] = round(trio.current_time() - t, 3)
                    if leftovers:
                        self.result.status = "error"
                        self.result.error = "; ".join(leftovers)
                    self._check_history()
            self.result.duration = trio.current_time() - started
        return self.result

    async def _run_simulated(self, engine: SimEngine) -> None:
        """The scenario's cluster built in this trio run (as `tasksim up --config` builds it),
        its REST API served in-process; no thread, socket or process."""
        config = replace(
            self.scenario.cluster.to_config(self.seed), max_live_tasks=Limits().max_live_tasks
        )
        if self.recorder is not None:
            engine.network.on_message = self.recorder.message
        self.progress("cluster", {"seed": self.seed})
        t = trio.current_time()
        history = HistoryRecorder(lambda: trio.current_time() - t) if self.record_history else None
        async with engine.cluster(config, recorder=history) as (_cluster, asgi):
            self.result.timings["cluster_start"] = round(trio.current_time() - t, 6)
            self.result.url = asgi.url
            send: AsyncSend = asgi.request
            if self.recorder is not None:
                send = self.recorder.sender(send)
            self.client = AsyncSimClient(send, url=asgi.url)
            await self._run_on_cluster()
            stopping = trio.current_time()
        self.result.timings["cluster_stop"] = round(trio.current_time() - stopping, 6)
        if history is not None:
            write_history(
                self.history_dir / "history.jsonl",
                run_header(config, engine="sim", scenario=self.scenario.name),
                history.events,
            )
            self._check_history()

    async def _run_on_cluster(self) -> None:
        nodes = await self.sim.nodes()
        self.ctx = Context({name: n["id"] for name, n in nodes.items()}, {})
        missing = [n for n in self.scenario.cluster.names() if n not in nodes]
        if missing:  # --url: a running cluster that is not the scenario's
            self.result.status = "error"
            self.result.error = f"the cluster has no node named {', '.join(missing)}"
            return
        self.t0 = trio.current_time()
        outcome = "passed"
        try:
            with trio.fail_after(self.scenario.timeout):
                try:
                    async with trio.open_nursery() as nursery:
                        sampler = trio.CancelScope()
                        nursery.start_soon(self._sampler, sampler)
                        try:
                            await self._steps(nursery)
                            await self._settle()
                        finally:
                            sampler.cancel()
                except BaseExceptionGroup as group:
                    raise _first(group) from None
        except ExpectationFailed:
            outcome = "failed"
        except StepError as e:
            outcome = "error"
            self.result.error = str(e)
        except trio.TooSlowError:
            outcome = "error"
            running = [s.label for s in self.result.steps if s.status == "pending" and s.started]
            where = f" in step {running[0]}" if running else ""
            self.result.error = (
                f"the scenario did not finish within {self.scenario.timeout:g}s{where}"
            )
        except (SimClientError, OSError, TimeoutError) as e:
            outcome = "error"
            self.result.error = f"the cluster's REST API failed: {e}"
        finally:
            with trio.CancelScope(shield=True):
                await self._final_heal()
        heal = self.result.heal or {}
        if not heal.get("acknowledged"):
            outcome = "error"
            problems = heal.get("errors") or [heal.get("error", "no answer")]
            self.result.error = "the final heal was not acknowledged: " + "; ".join(problems)
        if self.violations:
            outcome = "failed" if outcome == "passed" else outcome
        if outcome == "passed" and not await self._eventually():
            outcome = "failed"
        with trio.CancelScope(shield=True):
            await self._collect_faults()
        self.result.checks["always"] = {
            "nodes_accounted": {
                "enabled": "nodes_accounted" in self.scenario.checks.always,
                "list_responses": self.list_checks,
                "violations": self.accounted,
            },
            "no_child_under_ban": {
                "enabled": "no_child_under_ban" in self.scenario.checks.always,
                "samples": self.samples,
                "violations": [v for v in self.violations if v not in self.accounted],
            },
        }
        self.result.failures.extend(self.violations)
        if outcome == "failed" and not self.result.failures:
            self.result.failures.append("a check failed")
        self.result.status = outcome

    async def _final_heal(self) -> None:
        try:
            self.result.heal = await self.sim.heal()
        except (SimClientError, OSError, TimeoutError) as e:
            self.result.heal = {"acknowledged": False, "error": str(e)}
        self.progress("healed", self.result.heal)

    async def _collect_faults(self) -> None:
        try:
            nodes = await self.sim.nodes()
            faults = await self.sim.faults()
        except (SimClientError, OSError, TimeoutError):
            return
        hits: dict[str, int] = {}
        for node in nodes.values():
            for rule_id, count in node.get("hits", {}).items():
                hits[rule_id] = hits.get(rule_id, 0) + count
        self.result.faults = {
            "version": faults["version"],
            "applied": {n: v["applied_version"] for n, v in faults["nodes"].items()},
            "active": faults["faults"],
            "hits": hits,
        }

    def _check_history(self) -> None:
        """Run the checkers over the history the cluster wrote; draw its timeline."""
        from coordinator.history.checkers import check_all
        from coordinator.history.logs import write_node_logs
        from coordinator.history.timeline import write_timeline
        from simnode.history import HistoryError, read

        path = self.history_dir / "history.jsonl"
        try:
            history = read(path)
        except (OSError, HistoryError) as e:
            self.result.checks["history"] = {"error": f"no history: {e}"}
            return
        results = check_all(history)
        self.result.history = str(path)
        try:
            write_node_logs(history, self.history_dir / "logs")
        except OSError as e:
            self.result.checks["node_logs_error"] = str(e)
        self.result.checks["history"] = {n: r.to_json() for n, r in results.items()}
        failed = [v for r in results.values() for v in r.violations]
        for v in failed:
            self.result.failures.append(f"history check {v.checker} at {v.t:.3f}s: {v.message}")
        if failed and self.result.status == "passed":
            self.result.status = "failed"
        never = self._sometimes(history)
        if never and self.result.status == "passed":
            self.result.status = "vacuous"
            self.result.failures.extend(f"sometimes {label}: never happened" for label in never)
        timeline = self.history_dir / "timeline.html"
        try:
            write_timeline(history, results, timeline, title=self.scenario.name)
            self.result.timeline = str(timeline)
        except OSError as e:
            self.result.checks["history"]["timeline_error"] = str(e)
        self.progress("history", results)

    def _sometimes(self, history: Any) -> list[str]:
        """The `sometimes` conditions that never held in the history (their labels)."""
        report = []
        never = []
        for spec in self.scenario.checks.sometimes:
            try:
                where = render(spec.where, self.ctx)
            except KeyError:
                where = spec.where
            count = sum(
                1
                for e in history.events
                if e["type"] == spec.event
                and all(str(e.get(k)) == str(v) for k, v in where.items())
            )
            report.append({"event": spec.event, "where": where, "held": count > 0, "count": count})
            if not count:
                never.append(spec.label())
        if report:
            self.result.checks["sometimes"] = report
        return never

    # -- steps ------------------------------------------------------------------------------------

    async def _steps(self, nursery: trio.Nursery) -> None:
        for i, step in enumerate(self.scenario.steps):
            record = self.result.steps[i]
            if step.at is not None:
                await trio.sleep_until(trio.current_time() + max(0.0, step.at - self.now()))
            record.started = self.now()
            self.progress("step", record)
            try:
                await self._step(i, step, nursery)
            except ExpectationFailed as e:
                self._fail_step(record, "failed", e.problems)
                raise
            except StepError as e:
                self._fail_step(record, "error", [str(e)])
                raise
            except (SimClientError, OSError, TimeoutError) as e:
                self._fail_step(record, "error", [str(e)])
                raise StepError(f"step {record.label}: {e}") from e
            if record.status == "pending":
                record.status = "ok"
                record.duration = self.now() - record.started
                self.progress("step_done", record)
            if step.id is not None and step.id in self._ends and not step.background:
                await self._end_faults(step.id)

    def _fail_step(self, record: StepResult, status: str, problems: list[str]) -> None:
        record.status = status
        record.duration = self.now() - record.started
        record.problems = problems
        self.result.failures.extend(f"step {record.label}: {p}" for p in problems)
        self.progress("step_done", record)
        for other in self.result.steps[record.index + 1 :]:
            if other.status == "pending" and not other.started:
                other.status = "skipped"

    async def _settle(self) -> None:
        """After the last step: background requests and timed faults finish (bounded)."""
        for background in self._background.values():
            await background.done.wait()
        if self._failed:
            raise ExpectationFailed([])

    async def _step(self, i: int, step: Step, nursery: trio.Nursery) -> None:
        kind = step.kind
        record = self.result.steps[i]
        if kind == "start":
            spec = step.start
            assert spec is not None
            ids = await self.sim.start_task(render(spec.body(), self.ctx))
            if step.id is not None:
                self.ctx.started[step.id] = ids
            size = spec.size()
            if spec.running:
                await self._until_running(ids, len(ids) * size if size is not None else len(ids))
            record.detail = f"{len(ids)} task(s) on {spec.node}: {', '.join(ids[:3])}" + (
                " ..." if len(ids) > 3 else ""
            )
        elif kind == "request":
            assert step.request is not None
            if step.background:
                key = step.id or f"#{i}"
                self._background[key] = _Background(i)
                nursery.start_soon(self._background_request, i, step, key)
                record.status = "ok"
                record.detail = "running in the background"
                self.progress("step_done", record)
            else:
                self._capture(step, await self._request_step(i, step), record)
        elif step.fault is not None:
            body = self._fault_body(kind, step.fault, step.id)
            answer = await self.sim.add_faults(body)
            fault_id = answer["ids"][0]
            record.detail = f"fault {fault_id}, rules version {answer['version']}"
            if step.for_ is not None:
                nursery.start_soon(self._remove_after, fault_id, step.for_)
            if step.until is not None:
                self._ends.setdefault(step.until, []).append(fault_id)
        elif kind in PROCESS_KINDS:
            name = step.value_of(kind)
            state = await getattr(self.sim, kind)(name)
            record.detail = f"pid {state.get('pid')}, in cluster: {state.get('in_cluster')}"
        elif kind == "heal":
            if step.heal is True or step.heal == "all":
                report = await self.sim.heal()
                record.detail = f"rules version {report['version']}"
            else:
                await self._remove(str(step.heal))
        elif kind == "wait":
            assert step.wait is not None
            await trio.sleep(step.wait)
        elif kind == "await":
            background = self._background[step.await_ or ""]
            await background.done.wait()
            target = self.result.steps[background.step]
            record.detail = target.detail
            if target.status == "failed":
                raise ExpectationFailed([f"the background request {target.label} failed"])
        elif kind == "wait_until":
            self._capture(step, await self._wait_until(step), record)

    async def _until_running(self, roots: list[str], expected: int) -> None:
        """Wait until the trees rooted at `roots` have `expected` live tasks in all."""
        deadline = trio.current_time() + START_RUNNING_TIMEOUT
        count = 0
        while trio.current_time() < deadline:
            sample = await self._sample()
            parents = {
                f"{n['id']}:{t['id']}": t.get("parent_task_id")
                for n in sample.values()
                for t in n.get("tasks", [])
            }
            inside = set(roots) & set(parents)
            grew = True
            while grew:
                more = {k for k, parent in parents.items() if parent in inside} - inside
                inside |= more
                grew = bool(more)
            count = len(inside)
            if count >= expected:
                return
            await trio.sleep(0.05)
        raise StepError(
            f"only {count} of the {expected} tasks started within {START_RUNNING_TIMEOUT:g}s "
            "(set `running: false` if some end at once or a fault holds them)"
        )

    def _fault_body(self, kind: str, fault: Any, fault_id: str | None) -> dict[str, Any]:
        spec = fault.model_dump(mode="json", by_alias=True, exclude_none=True)
        spec = {k: v for k, v in spec.items() if v not in ((), [])}
        if fault_id is not None:
            spec["id"] = fault_id
        return {kind: spec}

    async def _remove_after(self, fault_id: str, seconds: float) -> None:
        await trio.sleep(seconds)
        await self._remove(fault_id)

    async def _remove(self, fault_id: str) -> None:
        try:
            await self.sim.remove(fault_id)
        except SimClientError as e:
            if e.status != 404:  # healed already
                raise

    async def _end_faults(self, step_id: str) -> None:
        for fault_id in self._ends.pop(step_id, []):
            await self._remove(fault_id)

    # -- requests ---------------------------------------------------------------------------------

    def _prepare(self, req: RequestSpec) -> tuple[str, Any, dict[str, str]]:
        try:
            path = render(req.path, self.ctx)
            body = render(req.body, self.ctx)
            headers = render(dict(req.headers), self.ctx)
        except KeyError as e:
            raise StepError(str(e.args[0])) from None
        return path, body, headers

    async def _send(self, req: RequestSpec) -> Answer:
        path, body, headers = self._prepare(req)
        watch = req.method == "GET" and _is_list(path)
        before = await self._members() if watch else set()
        try:
            resp = await self.sim.request(
                req.method, path, body, headers=headers, timeout=req.timeout
            )
        except TimeoutError:
            return Answer(None, None, req.timeout, timed_out=True)
        answer = Answer(resp.status, resp.body, resp.elapsed)
        if watch and resp.status == 200 and not _is_filtered(path):
            after = await self._members()
            self.list_checks += 1
            if "nodes_accounted" in self.scenario.checks.always:
                names = {v: k for k, v in self.ctx.node_ids.items()}
                for problem in checks.nodes_accounted(resp.body, before, after, names):
                    message = f"nodes_accounted: {req.method} {path}: {problem}"
                    self.accounted.append(message)
                    self.violations.append(message)
        if req.method == "POST" and "_cancel" in path and resp.status == 200:
            self.history.observe_cancelled(
                [f"{t['node']}:{t['id']}" for t in all_tasks(resp.body) if "node" in t]
            )
        return answer

    async def _members(self) -> set[str]:
        nodes = await self.sim.nodes()
        return {n["id"] for n in nodes.values() if n.get("in_cluster")}

    def _describe(self, answer: Answer) -> str:
        if answer.timed_out:
            return f"no answer within {answer.elapsed:g}s"
        text = f"HTTP {answer.status} in {answer.elapsed:.3f}s"
        failed = failed_nodes(answer.body)
        if failed:
            listed = ", ".join(f"{self.ctx.name_of(n)}={t}" for n, t in sorted(failed.items()))
            text += f"; node_failures: {listed}"
        return text

    async def _request_step(self, i: int, step: Step) -> Answer:
        assert step.request is not None
        answer = await self._send(step.request)
        record = self.result.steps[i]
        record.detail = self._describe(answer)
        if step.expect is not None:
            problems = check(step.expect, answer, self.ctx, client_timeout=step.request.timeout)
            if problems:
                raise ExpectationFailed(problems)
        elif answer.timed_out:
            raise ExpectationFailed([f"no answer within {step.request.timeout:g}s"])
        return answer

    def _capture(self, step: Step, answer: Answer, record: StepResult) -> None:
        for name, path in (step.capture or {}).items():
            try:
                value = capture(answer.body, render(path, self.ctx))
            except (ValueError, KeyError) as e:
                raise StepError(f"capture {name}: {e}") from None
            self.ctx.captured[name] = value
            record.detail += ("; " if record.detail else "") + f"{name} = {value}"

    async def _background_request(self, i: int, step: Step, key: str) -> None:
        record = self.result.steps[i]
        try:
            await self._request_step(i, step)
            record.detail += " (background)"
        except ExpectationFailed as e:
            record.status = "failed"
            record.problems = e.problems
            self.result.failures.extend(f"step {record.label}: {p}" for p in e.problems)
            self._failed = True
            self.progress("step_done", record)
        finally:
            record.duration = self.now() - record.started
            if step.id is not None:
                await self._end_faults(step.id)
            self._background[key].done.set()

    async def _wait_until(self, step: Step) -> Answer:
        spec = step.wait_until
        assert spec is not None
        deadline = trio.current_time() + spec.within
        problems: list[str] = []
        while True:
            answer = await self._send(spec.request)
            problems = check(spec.expect, answer, self.ctx, client_timeout=spec.request.timeout)
            if not problems:
                return answer
            if trio.current_time() + spec.every > deadline:
                raise ExpectationFailed(
                    [f"not true within {spec.within:g}s: {'; '.join(problems)}"]
                )
            await trio.sleep(spec.every)

    # -- checks -----------------------------------------------------------------------------------

    async def _sample(self) -> checks.Sample:
        return await self.sim.nodes(tasks=True)  # type: ignore[no-any-return]

    async def _sampler(self, scope: trio.CancelScope) -> None:
        with scope:
            while True:
                try:
                    sample = await self._sample()
                except (SimClientError, OSError, TimeoutError):
                    await trio.sleep(SAMPLE_INTERVAL)
                    continue
                self.samples += 1
                self.history.observe(sample)
                if "no_child_under_ban" in self.scenario.checks.always:
                    for problem in checks.children_under_ban(sample):
                        message = f"no_child_under_ban at {self.now():.2f}s: {problem}"
                        if message not in self.violations:
                            self.violations.append(message)
                await trio.sleep(SAMPLE_INTERVAL)

    async def _eventually(self) -> bool:
        spec = self.scenario.checks.eventually
        wanted: dict[str, Callable[[checks.Sample], list[str]]] = {}
        if "no_cancelled_descendants" in spec.checks:
            wanted["no_cancelled_descendants"] = self.history.orphans
        if "no_bans" in spec.checks:
            wanted["no_bans"] = checks.bans_left
        if "no_live_work" in spec.checks:
            wanted["no_live_work"] = checks.live_work
        started = trio.current_time()
        deadline = started + spec.within
        report: dict[str, Any] = {}
        pending = dict(wanted)
        while True:
            try:
                sample = await self._sample()
            except (SimClientError, OSError, TimeoutError) as e:
                sample = {}
                for name in pending:
                    report[name] = {"held": False, "problems": [f"cannot read the nodes: {e}"]}
            for name, fn in list(pending.items()):
                problems = fn(sample) if sample else report[name]["problems"]
                if not problems:
                    report[name] = {"held": True, "after": round(trio.current_time() - started, 3)}
                    del pending[name]
                else:
                    report[name] = {"held": False, "problems": problems}
            if not pending or trio.current_time() + EVENTUALLY_INTERVAL > deadline:
                break
            await trio.sleep(EVENTUALLY_INTERVAL)
        self.result.checks["eventually"] = {"within": spec.within, **report}
        self.progress("eventually", report)
        failed = [n for n, r in report.items() if not r["held"]]
        for name in failed:
            for problem in report[name]["problems"]:
                self.result.failures.append(
                    f"eventually {name} (within {spec.within:g}s): {problem}"
                )
        return not failed


def netns_unavailable() -> str | None:
    """Why node processes cannot run in network namespaces here, in one line (None: they can)."""
    from coordinator.engine.netns import netns_problem

    problem = netns_problem()
    return None if problem is None else problem.replace("--hosts netns", "hosts: netns", 1)


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    """The exception that decides the outcome: Ctrl-C first, then ours, else the group."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for kind in (KeyboardInterrupt, StepError, ExpectationFailed, SimClientError, OSError):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return group


def _is_list(path: str) -> bool:
    route = urllib.parse.urlsplit(path).path.rstrip("/")
    return route == "/_tasks"


def _is_filtered(path: str) -> bool:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    return any(k in query for k in ("nodes", "actions", "parent_task_id", "filter_path"))


async def run_scenario(
    scenario: Scenario,
    file: Path,
    *,
    seed: int | None = None,
    url: str | None = None,
    log_dir: Path | None = None,
    progress: Progress | None = None,
) -> ScenarioResult:
    return await ScenarioRun(
        scenario, file, seed=seed, url=url, log_dir=log_dir, progress=progress
    ).run()


def repro(file: Path | str, seed: int, engine: str = "real") -> str:
    """The one command line that runs this scenario again with this seed."""
    if engine == "sim":
        return f"tasksim run --engine sim --seed {seed} {file}"
    return f"tasksim run {file} --seed {seed}"


def run_on_sim(
    scenario: Scenario,
    file: Path,
    *,
    seed: int | None = None,
    progress: Progress | None = None,
    record: bool = False,
    history_dir: Path | None = None,
) -> tuple[ScenarioResult, str | None]:
    """Run a scenario on the sim engine, in a fresh simulated world for its seed; the result and,
    with `record`, its trace (coordinator/scenario/trace.py). With `history_dir`, the run's
    history, its checks and its timeline go there, as a real run's do. Synchronous: the world is
    its own trio run."""
    from coordinator.engine.sim import run_sim
    from coordinator.scenario.trace import trace

    recorder = Recorder() if record else None
    one = ScenarioRun(
        scenario,
        file,
        seed=seed,
        progress=progress,
        engine="sim",
        recorder=recorder,
        history_dir=history_dir,
        record_history=history_dir is not None,
    )
    result = one.skipped()
    if result is None:
        try:
            result = run_sim(one.run, seed=one.seed)
        except Exception as e:  # a crash under some seed is a finding: reported, with its replay
            result = one.result
            result.status = "error"
            leaf: BaseException = e
            while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
                leaf = leaf.exceptions[0]
            result.error = f"the simulated run crashed: {leaf!r}"
            result.failures.append(traceback.format_exc(limit=-8))
    return result, (trace(result, recorder) if recorder is not None else None)
