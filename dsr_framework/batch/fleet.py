"""The backlog's steps as Celery tasks on Redis: the same step as the embedded runner, on many workers.

Needs the ``celery`` extra; nothing else in :mod:`dsr_framework.batch` imports this module.

**Who does what.** The coordinator (``mparticle-dsr batch --fleet``) keeps the embedded store: it is the
one record of every request, and its due times are the schedule. When a request is due it writes a *job*
to Redis (the request, its state and a fresh token) and sends a task naming only the job (no personal data
in the broker's messages). A worker claims the job, takes a *lease* on the request id, runs the step through
the connector (whose throttle is shared through the same Redis) and pushes each result to the batch's
results list; the coordinator records them in the store. A pending request goes back to the store with its
``next_check_at``, and the coordinator dispatches it again when that time comes: no worker sleeps, and no
task carries an ETA (with the Redis broker, a task whose ETA is beyond the ``visibility_timeout`` is
delivered again, and erasures wait weeks).

**Never twice at once, never lost.** Every step of Redis's side is one Lua script, so it cannot interleave:

- *dispatch* (coordinator) writes the job with a new token, unless a lease shows a worker still on it;
- *claim* (worker) takes the lease (``SET NX PX``) only if its token is the job's: a task from an earlier
  dispatch, delivered late or twice, finds another token and does nothing;
- the lease is renewed while the call runs; *report* pushes a result only under the job's token and the
  worker's own lease, and keeps the job's state current, so a step cut short resumes from its last result;
- *end* pushes the end of the step and deletes the job and the lease together.

Tasks are ``acks_late`` with ``reject_on_worker_lost``: a worker process killed mid-call gives its task
back to the queue; the next worker waits for the dead one's lease to expire (a retry with a countdown of a
few seconds), then resumes from the job's state; the connector's submissions are idempotent, so nothing is
created twice. A task lost with its whole worker node comes back after the broker's ``visibility_timeout``,
or sooner: the coordinator dispatches again a step that has shown no sign of life (no lease, no result) for
``redispatch_seconds``, with a new token that retires the old task.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from dsr_framework.batch.progress import CallRate, Meter
from dsr_framework.batch.runner import ExecutorStopped
from dsr_framework.batch.step import Job, Sink, run_step
from dsr_framework.host import ConnectorHandle
from dsr_framework.models import DsrRequest, Result

__all__ = ["TASK", "FleetExecutor", "FleetRefused", "WorkerContext", "make_app", "queue_for", "work"]

TASK = "dsr_framework.batch.step"
LEASE_SECONDS = 30.0  #: a dead worker's lease lapses this long after its last renewal
RENEW_SECONDS = 10.0
VISIBILITY_TIMEOUT = 300.0  #: longer than any step (a hook call is bounded: the manifest's timing.call_seconds)
JOB_TTL_SECONDS = 30 * 86400  #: a job nobody finishes (a backlog abandoned mid-step) is forgotten after this
DRAIN = 500  #: results read per round trip

_DISPATCH = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'connector', ARGV[2], 'config_id', ARGV[3], 'request', ARGV[4],
           'state', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return 1
"""
_CLAIM = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return {'stale'} end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return {'busy', tostring(redis.call('PTTL', KEYS[2]))}
end
return {'ok', redis.call('HGET', KEYS[1], 'connector'), redis.call('HGET', KEYS[1], 'config_id'),
        redis.call('HGET', KEYS[1], 'request'), redis.call('HGET', KEYS[1], 'state')}
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_REPORT = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[2] then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[3])
if ARGV[4] == 'end' then
  redis.call('DEL', KEYS[1])
  if owner then redis.call('DEL', KEYS[2]) end
elseif ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'state', ARGV[4])
end
return 1
"""


def queue_for(connector: str) -> str:
    """The Celery queue of one connector's steps: a worker serves the connector it was started with."""
    return f"dsr-batch.{connector}"


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one request of one batch."""

    batch: str
    request_id: str

    @property
    def job(self) -> str:
        return f"dsr-batch:{self.batch}:job:{self.request_id}"

    @property
    def lease(self) -> str:
        return f"dsr-batch:{self.batch}:lease:{self.request_id}"

    @property
    def results(self) -> str:
        return f"dsr-batch:{self.batch}:results"


class FleetRefused(ExecutorStopped):
    """A worker refused a step: it runs another connector configuration than the coordinator."""


# --- the worker's side -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerContext:
    """What a worker process drives requests with: the connector's facade, and its meter (calls by API)."""

    handle: ConnectorHandle
    meter: Meter | None = None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Renewal:
    """Keeps a lease alive while a step runs (a thread renewing it every :data:`RENEW_SECONDS`)."""

    def __init__(self, redis: Any, keys: Keys, owner: str) -> None:
        self._renew = redis.register_script(_RENEW)
        self._keys, self._owner = keys, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dsr-lease", daemon=True)

    def __enter__(self) -> _Renewal:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self._renew(keys=[self._keys.lease], args=[self._owner, int(LEASE_SECONDS * 1000)])
            except Exception:  # noqa: BLE001, S112 - Redis blinked: try again at the next renewal
                continue


@dataclass
class _Reporter:
    """Pushes each result of a step (and its end) to the batch's results list, under the job's token."""

    redis: Any
    keys: Keys
    token: str
    owner: str
    meter: Meter | None
    _last: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._script = self.redis.register_script(_REPORT)
        self._last = dict(self.meter()) if self.meter is not None else {}

    def _calls(self) -> dict[str, int]:
        if self.meter is None:
            return {}
        now = dict(self.meter())
        delta = {api: n - self._last.get(api, 0) for api, n in now.items() if n - self._last.get(api, 0)}
        self._last = now
        return delta

    def push(self, message: Mapping[str, Any], state: str) -> bool:
        document = {"request_id": self.keys.request_id, "token": self.token, **message}
        done = self._script(keys=[self.keys.job, self.keys.lease, self.keys.results],
                            args=[self.token, self.owner, json.dumps(document), state])
        return bool(done)

    def result(self, result: Result) -> None:
        state = json.dumps(result.state) if result.status == "pending" and result.state is not None else ""
        self.push({"kind": "result", "result": result.to_dict(), "calls": self._calls()}, state)

    def end(self) -> None:
        self.push({"kind": "end"}, "end")


def work(redis: Any, context: WorkerContext, batch: str, request_id: str, token: str) -> float | None:
    """Run one dispatched step (the task's body): None when it is done or was not ours to do, else the seconds
    to wait before trying again (another worker's lease is still alive)."""
    keys, owner = Keys(batch, request_id), worker_id()
    claimed = redis.register_script(_CLAIM)(keys=[keys.job, keys.lease],
                                            args=[token, owner, int(LEASE_SECONDS * 1000)])
    verdict = _text(claimed[0])
    if verdict == "stale":
        return None
    if verdict == "busy":
        return max(1.0, int(_text(claimed[1])) / 1000.0 + 0.5)
    connector, config_id, request, state = (_text(v) for v in claimed[1:5])
    reporter = _Reporter(redis, keys, token, owner, context.meter)
    if connector != context.handle.name or config_id != context.handle.config_id:
        reporter.push({"kind": "refused", "reason": f"a worker ({owner}) runs connector {context.handle.name!r} "
                       "with another configuration than the coordinator"}, "end")
        return None
    job = Job(DsrRequest.from_dict(json.loads(request)), json.loads(state) if state else None, token)
    with _Renewal(redis, keys, owner):
        run_step(context.handle.handle, job, reporter.result)
    reporter.end()
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _PerProcess:
    """A value made once per process (prefork children must not share connections made in their parent)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._pid = -1
        self._value: Any = None

    def __call__(self) -> Any:
        if self._pid != os.getpid():
            self._value, self._pid = self._make(), os.getpid()
        return self._value


def make_app(broker_url: str, loader: Callable[[], WorkerContext], connector: str,
             visibility_timeout: float = VISIBILITY_TIMEOUT) -> Celery:
    """The Celery app of one connector's fleet: Redis at ``broker_url`` as broker, late acknowledgement, one
    task at a time per worker process, the step task registered. ``loader`` builds the worker's context (once
    per process)."""
    import redis as redis_module

    app = Celery(f"dsr-batch-{connector}", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_ignore_result=True, task_default_queue=queue_for(connector), task_serializer="json",
        accept_content=["json"], broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        broker_transport_options={"visibility_timeout": int(visibility_timeout)})
    context = _PerProcess(loader)
    client = _PerProcess(lambda: redis_module.Redis.from_url(broker_url))

    @app.task(name=TASK, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def step(self: Any, batch: str, request_id: str, token: str) -> None:
        wait = work(client(), context(), batch, request_id, token)
        if wait is not None:
            raise self.retry(countdown=wait)

    return app


# --- the coordinator's side --------------------------------------------------------------------------------


@dataclass
class _Flight:
    token: str
    since: float
    sink: Sink


class FleetExecutor:
    """The runner's executor for the fleet: dispatches due requests as jobs and tasks, reads the results back."""

    def __init__(self, app: Celery, redis: Any, batch: str, handle: ConnectorHandle, in_flight: int,
                 rate: CallRate, redispatch_seconds: float) -> None:
        self._app, self._redis, self._batch, self._handle = app, redis, batch, handle
        self._limit, self._rate, self._redispatch = in_flight, rate, redispatch_seconds
        self._dispatch = redis.register_script(_DISPATCH)
        self._flying: dict[str, _Flight] = {}
        self._checked = time.monotonic()

    @property
    def capacity(self) -> int:
        return self._limit

    def in_flight(self) -> int:
        return len(self._flying)

    def adopt(self, jobs: list[Job], sink: Sink) -> None:
        """Steps an earlier coordinator dispatched: watched like new ones (results, or signs of life), and
        dispatched again if they show none."""
        now = time.monotonic()
        for job in jobs:
            self._flying[job.request.request_id] = _Flight(job.token, now, sink)

    def start(self, jobs: list[Job], sink: Sink) -> None:
        for job in jobs:
            self._send(job, sink)

    def _send(self, job: Job, sink: Sink) -> None:
        keys = Keys(self._batch, job.request.request_id)
        state = json.dumps(job.state) if job.state is not None else ""
        self._flying[job.request.request_id] = _Flight(job.token, time.monotonic(), sink)
        written = self._dispatch(keys=[keys.job, keys.lease],
                                 args=[job.token, self._handle.name, self._handle.config_id,
                                       json.dumps(job.request.to_dict()), state, JOB_TTL_SECONDS])
        if written:  # else a worker still holds a lease from an earlier step: watched until it ends
            self._app.send_task(TASK, args=[self._batch, job.request.request_id, job.token],
                                queue=queue_for(self._handle.name))

    def collect(self, timeout: float) -> int:
        """Record the results the workers pushed (waiting up to ``timeout`` for some); steps that ended."""
        ended = self._drain()
        deadline = time.monotonic() + timeout
        while not ended and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            ended = self._drain()
        if time.monotonic() - self._checked > min(self._redispatch / 4, 5.0):
            self._redispatch_lost()
        return ended

    def _drain(self) -> int:
        key = Keys(self._batch, "").results
        messages = self._redis.lrange(key, 0, DRAIN - 1)
        ended = sum(self._apply(json.loads(m)) for m in messages)
        if messages:
            self._redis.ltrim(key, len(messages), -1)  # only this coordinator reads the list
        return ended

    def _apply(self, message: Mapping[str, Any]) -> int:
        request_id, token = message["request_id"], message["token"]
        flight = self._flying.get(request_id)
        if flight is None or flight.token != token:
            return 0  # a step retired by a new dispatch (its results were refused by the store anyway)
        if message["kind"] == "refused":
            raise FleetRefused(message["reason"])
        if message["kind"] == "result":
            flight.sink.accept(request_id, token, Result.from_dict(message["result"]), message.get("calls"))
            flight.since = time.monotonic()
            return 0
        flight.sink.finished(request_id, token)
        del self._flying[request_id]
        return 1

    def _redispatch_lost(self) -> None:
        """Dispatch again each step silent for ``redispatch_seconds`` with no lease alive (its task was lost)."""
        self._checked = now = time.monotonic()
        for request_id, flight in list(self._flying.items()):
            if now - flight.since < self._redispatch or self._redis.exists(Keys(self._batch, request_id).lease):
                continue
            job = flight.sink.reclaim(request_id, flight.token)
            if job is None:
                del self._flying[request_id]
            else:
                self._send(job, flight.sink)

    def close(self) -> None:
        """Nothing to stop: dispatched steps finish on the workers, and their results wait in Redis."""
