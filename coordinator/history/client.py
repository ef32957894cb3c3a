"""Client operations in the history: what the REST front sees of every request, Jepsen-style.

`recorded` wraps the front's dispatch (coordinator/http.py `build_app`), the one place every engine
serves its clients through, so every operation is an `invoke` followed by exactly one of:
- `ok`: the answer was 2xx (or 3xx);
- `fail`: a 4xx answer (the request was refused: nothing happened);
- `info`: the outcome is unknown — a 5xx answer (a cancel whose wait timed out may have cancelled
  part of a tree) or no answer at all (the client went away, the server stopped).

Completions carry the status and a `digest` of the answer (the first 16 hex digits of its SHA-256),
and, for `_tasks` answers, what the checkers need: the node ids in `nodes` and in `node_failures`
and the task ids the answer lists (`summary`). Reads of the simulator's own ground truth
(`GET /_sim/...`, which the scenario runner polls) are not client operations and are not recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from simnode.history import Recorder

# At most this many task ids are kept in an answer's summary.
MAX_SUMMARY_TASKS = 500


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def _task_ids(body: Any) -> list[str]:
    out: list[str] = []

    def walk(tasks: Any) -> None:
        items = tasks.items() if isinstance(tasks, dict) else enumerate(tasks or [])
        for key, task in items:
            if len(out) >= MAX_SUMMARY_TASKS or not isinstance(task, dict):
                continue
            if "node" in task and "id" in task:
                out.append(f"{task['node']}:{task['id']}")
            elif isinstance(key, str):
                out.append(key)
            walk(task.get("children"))

    for node in (body.get("nodes") or {}).values():
        if isinstance(node, dict):
            walk(node.get("tasks"))
    walk(body.get("tasks"))
    return out


def summarize(path: str, status: int, body: bytes, document: Any = None) -> dict[str, Any] | None:
    """What a `_tasks` answer says about nodes and tasks (None for other answers). `document`:
    the answer before it was encoded, when the caller has it."""
    route = path.split("?", 1)[0]
    if "/_tasks" not in route or not body.startswith(b"{"):
        return None
    doc = document
    if doc is None:
        try:
            doc = json.loads(body)
        except ValueError:
            return None
    if not isinstance(doc, dict):
        return None
    summary: dict[str, Any] = {}
    if isinstance(doc.get("nodes"), dict):
        summary["nodes"] = sorted(doc["nodes"])
    failures = doc.get("node_failures")
    if isinstance(failures, list):
        summary["node_failures"] = sorted(
            str(f.get("node_id")) for f in failures if isinstance(f, dict)
        )
    if status < 300:
        summary["tasks"] = _task_ids(doc)
        if isinstance(doc.get("task"), dict):  # GET _tasks/<id>
            task = doc["task"]
            summary["tasks"] = [f"{task.get('node')}:{task.get('id')}"]
            summary["completed"] = bool(doc.get("completed"))
    elif isinstance(doc.get("error"), dict):
        summary["error"] = doc["error"].get("type")
    return summary


def _error_type(body: bytes) -> str:
    try:
        doc = json.loads(body)
        return str(doc["error"]["type"])
    except (ValueError, KeyError, TypeError):
        return "unknown"


async def recorded(
    recorder: Recorder, request: Request, serve: Callable[[], Awaitable[Response]]
) -> Response:
    """Serve `request` with `serve`, recording the operation around it."""
    method = request.method.upper()
    path = request.url.path
    if method == "GET" and path.startswith("/_sim/"):
        return await serve()
    query = request.url.query
    uri = path + (f"?{query}" if query else "")
    op = recorder.next_op()
    opaque = request.headers.get("x-opaque-id")
    extra = {"opaque_id": opaque} if opaque is not None else {}
    recorder.record("invoke", op=op, method=method, path=uri, **extra)
    try:
        response = await serve()
    except BaseException as e:
        recorder.record("info", op=op, method=method, path=uri, error=type(e).__name__)
        raise
    body = bytes(response.body)
    status = response.status_code
    fields: dict[str, Any] = {"status": status, "digest": digest(body)}
    summary = summarize(uri, status, body, getattr(response, "document", None))
    if summary is not None:
        fields["summary"] = summary
    if status >= 500:
        recorder.record("info", op=op, method=method, path=uri, error=_error_type(body), **fields)
    else:
        kind = "ok" if status < 400 else "fail"
        recorder.record(kind, op=op, method=method, path=uri, **fields)
    return response
