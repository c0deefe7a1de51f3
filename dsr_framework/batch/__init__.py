"""Run a backlog of privacy requests: planned against the connector's limits, resumable, with a report.

Connector-agnostic: every call goes through the host facade (``ConnectorHandle.handle``), one step at a
time (:mod:`.step`, which is :func:`dsr_framework.drive.drive` without waiting). Modules:

============  =====================================================================================
:mod:`.inputs`    requests from a CSV or JSON Lines file, every problem at once
:mod:`.store`     the embedded store (SQLite, WAL): one row per request, claims, results, timings
:mod:`.plan`      calls per API from the manifest's ``request_costs``, limits, the binding one, the ETA
:mod:`.schedule`  where a request stands after a result (pending until when; retry_later retried)
:mod:`.runner`    the loop: claim what is due (nearest due date first), run, record; stop and resume
:mod:`.local`     steps on threads of this process
:mod:`.progress`  the progress bar (done, pending, failed, share of the limit, ETA)
:mod:`.report`    the report, CSV and JSON, one line per request
:mod:`.backlog`   a backlog's private folder (through :mod:`dsr_framework.files`), its lock and the calls above
:mod:`.fleet`     the same steps as Celery tasks on Redis (``pip install 'connector-mparticle[celery]'``;
                  imported only by those who use it)
============  =====================================================================================
"""

from dsr_framework.batch.backlog import Backlog, BacklogBusy, ModeMismatch
from dsr_framework.batch.inputs import Defaults, InputError, read_requests
from dsr_framework.batch.plan import Budget, Plan, plan_backlog
from dsr_framework.batch.runner import Outcome, StopFlag
from dsr_framework.batch.store import StoreConflict
from dsr_framework.files import FileError, UnsafePathError

__all__ = ["Backlog", "BacklogBusy", "Budget", "Defaults", "FileError", "InputError", "ModeMismatch", "Outcome", "Plan",
           "StopFlag", "StoreConflict", "UnsafePathError", "plan_backlog", "read_requests"]
