"""Deliberately broken connectors, each the honest example (``examples/acme``) with one defect.

Each :class:`Defect` is a set of edits to a copy of the example package, the defect class it stands for (in the
issue's words), the check that must catch it and a fragment of the message that must name it. An edit whose
text is no longer in the example fails loudly, so the example cannot drift away from its broken copies.

``python -m tests.conformance.defects DIR`` writes them all (with entry points) into DIR, to run by hand:
``PYTHONPATH=DIR pytest --dsr-conformance=deletes_nothing``.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "acme" / "acme_dsr"
HONEST = "acme"


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (which must occur in ``file``) with ``new``."""

    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Defect:
    name: str
    defect: str
    edits: tuple[Edit, ...]
    caught_by: str
    message: str
    registers_target: bool = True


def _plugin(old: str, new: str) -> Edit:
    return Edit("plugin.py", old, new)


_ERASE = 'job = api.call("POST", "/v1/erasures", who, idempotency_key=request.request_id)'
_OPT_OUT = ('answer = AcmeClient(config).call("POST", "/v1/opt-outs", {**who, "regulation": request.regulation},\n'
            '                                         idempotency_key=request.request_id)')
_CONNECTION_REFUSED = "    except AcmeError as exc:\n        return ConnectionResult("
_IMPORTS = "from .client import AcmeClient, AcmeError\n"

DEFECTS: tuple[Defect, ...] = (
    Defect("deletes_nothing", "a deletion that reports completed but deletes nothing",
           (_plugin(_ERASE, 'api.call("GET", "/v1/account")\n'
                            '            return Result(request.request_id, request.type, "completed", "erased")'),),
           "deletion_removes_subject", "reported completed, but the service still holds the subject"),
    Defect("opt_out_records_nothing", "an opt-out that reports completed but records nothing",
           (_plugin(_OPT_OUT, 'answer = {"found": AcmeClient(config).call("GET", "/v1/account") is not None}'),),
           "opt_out_recorded", "reported completed, but the service does not record the opt-out"),
    Defect("access_completes_when_refused", "an access that completes with refused credentials",
           (_plugin("    except AcmeError as exc:\n        return _failed(request, exc)\n    return Result("
                    "request.request_id, request.type, \"completed\", f\"exported",
                    "    except AcmeError:\n        return Result(request.request_id, request.type, \"completed\", "
                    "\"nothing to export\")\n    return Result(request.request_id, request.type, \"completed\", "
                    "f\"exported"),),
           "refused_credentials_fail[access]", "handle_access ended completed with credentials the service refuses"),
    Defect("access_without_file", "an access that completes with no file",
           (_plugin("files=(exported,)", "files=()"),),
           "access_exports_subject_data", "listed no file"),
    Defect("access_lists_unwritten_file", "an access listing a file it never wrote",
           (_plugin("    path.write_bytes(data)\n", ""),),
           "access_exports_subject_data", "which does not exist"),
    Defect("access_wrong_checksum", "an access whose listed SHA-256 is not the file's",
           (_plugin("hashlib.sha256(data).hexdigest()", 'hashlib.sha256(data + b"\\n").hexdigest()'),),
           "access_exports_subject_data", "SHA-256 that does not match"),
    Defect("access_writes_parent_dir", "files written to output_dir/../",
           (_plugin("    path.write_bytes(data)\n",
                    '    path.write_bytes(data)\n'
                    '    (Path(request.output_dir) / ".." / path.name).write_bytes(data)\n'),),
           "access_exports_subject_data", "wrote outside the request's output directory"),
    Defect("access_leaves_temp_file", "a file left behind in the temporary directory",
           (_plugin("    path.write_bytes(data)\n",
                    '    path.write_bytes(data)\n    import tempfile\n'
                    '    tempfile.NamedTemporaryFile(suffix=".json", delete=False).write(data)\n'),),
           "access_exports_subject_data", "wrote outside the request's output directory (wrote "),
    Defect("access_omits_data", "an export that lacks the data the service holds",
           (_plugin('records = list(job.get("records", []))', "records = []"),),
           "access_exports_subject_data", "files lack 9 of the 9 values the service holds"),
    Defect("secret_in_export", "a configured secret written into an exported file",
           (_plugin("exported = _write_export(request, records)",
                    'exported = _write_export(request, [*records, {"auth": config["api_key"]}])'),),
           "access_exports_subject_data", "wrote a configured secret (or 8 or more characters of one) into"),
    Defect("blocks_past_its_limit", "a hook that blocks far longer than its per-call limit",
           (_plugin('        job = api.call("GET", f"/v1/erasures/{state[\'job\']}")',
                    '        if not _BLOCKED:  # the first check of an erasure blocks, as on a hung socket\n'
                    '            _BLOCKED.append(None)\n            time.sleep(5)\n'
                    '        job = api.call("GET", f"/v1/erasures/{state[\'job\']}")'),
            _plugin("log = logging.getLogger(__name__)\n",
                    "log = logging.getLogger(__name__)\n_BLOCKED: list[None] = []\n"),
            Edit("conformance.py", "call_seconds=2", "call_seconds=0.5")),
           "deletion_removes_subject", "handle_deletion was still running after"),
    # The target declares a minimum well above one call's duration, so a slow call on a loaded machine cannot make
    # "check again now" look like a proper wait.
    Defect("busy_poller", "next_check_at of 'now': a host polling in a busy loop",
           (_plugin("next_check_at=datetime.now(UTC) + timedelta(seconds=wait)", "next_check_at=datetime.now(UTC)"),
            Edit("conformance.py", "min_check_interval=0.01", "min_check_interval=1.5"),
            Edit("conformance.py", '"poll_interval_seconds": 0.01', '"poll_interval_seconds": 1.5')),
           "access_exports_subject_data", "sooner than the declared minimum of 1.5s "
                                          "(ConformanceTarget.min_check_interval)"),
    Defect("never_finishes", "a request that needs more calls than any host should make",
           (_plugin('if job.get("status") != "ready":', "if True:"),),
           "access_exports_subject_data", "needed more than 10 calls for one request"),
    Defect("egress_connect_ex", "traffic to an undeclared host through socket.connect_ex",
           (_plugin(_IMPORTS, _IMPORTS + "\nimport contextlib\nimport socket\n"),
            _plugin("    found = bool(answer.get(\"found\"))\n",
                    "    with contextlib.suppress(OSError), socket.socket() as probe:\n"
                    "        probe.settimeout(0.2)\n"
                    "        probe.connect_ex((\"192.0.2.10\", 443))\n"
                    "    found = bool(answer.get(\"found\"))\n")),
           "opt_out_recorded", "contacted the undeclared host 192.0.2.10"),
    Defect("egress_subprocess", "traffic to an undeclared host through a subprocess",
           (_plugin(_IMPORTS, _IMPORTS + "\nimport contextlib\nimport subprocess\n"),
            _plugin("    found = bool(answer.get(\"found\"))\n",
                    "    with contextlib.suppress(OSError):\n"
                    "        subprocess.run([\"curl\", \"-s\", \"https://telemetry.acme-metrics.example/ping\"],"
                    " check=False, capture_output=True)\n"
                    "    found = bool(answer.get(\"found\"))\n")),
           "opt_out_recorded", "started a process (subprocess.Popen: curl)"),
    Defect("egress_at_import", "traffic to an undeclared host from code run at import time",
           (Edit("__init__.py", '"""\n', '"""\n\nimport contextlib\nimport socket\n\n'
                 'with contextlib.suppress(OSError):\n'
                 '    socket.getaddrinfo("telemetry.acme-metrics.example", 443)\n'),),
           "import_contacts_nothing", "code run at import time: the connector looked up the undeclared host "
                                      "telemetry.acme-metrics.example"),
    Defect("secret_to_stderr", "a secret printed to stderr",
           (_plugin("    started = time.monotonic()\n",
                    "    started = time.monotonic()\n    import sys\n"
                    "    print(f\"acme: connecting with {config['api_key']}\", file=sys.stderr)\n"),),
           "no_secret_or_email_in_output", "appeared in stderr"),
    Defect("secret_prefix_in_result", "a secret leaked as a prefix in a result",
           (Edit("client.py", '"Acme refused the API key"', 'f"Acme refused the API key {self._key[:10]}..."'),),
           "connection_with_refused_credentials", "a test_connection result carries a configured secret"),
    Defect("secret_prefix_in_log", "a secret leaked as a prefix in a log record",
           (_plugin(_CONNECTION_REFUSED, "    except AcmeError as exc:\n"
                    "        log.warning(\"Acme refused the key starting %s\", str(config[\"api_key\"])[:8])\n"
                    "        return ConnectionResult("),),
           "no_secret_or_email_in_output", "appeared in log records"),
    Defect("secret_encoded_in_log", "a secret logged in an encoded form (a Basic header)",
           (_plugin(_CONNECTION_REFUSED, "    except AcmeError as exc:\n        import base64\n"
                    "        log.debug(\"sent Authorization: Basic %s\", base64.b64encode(f\"acme:"
                    "{config['api_key']}\".encode()).decode())\n        return ConnectionResult("),),
           "no_secret_or_email_in_output", "appeared in log records"),
    Defect("email_in_logs", "an unmasked email in logs",
           (_plugin('log.info("asked Acme to erase %s", _shown(who))',
                    'log.info("asked Acme to erase %s", who.get("email"))'),),
           "no_secret_or_email_in_output", "an unmasked email address of a person the request involves appeared in "
                                           "log records"),
    Defect("no_target", "a connector registering no conformance target",
           (), "connection_with_good_credentials", "registers no conformance target", registers_target=False),
    Defect("no_oracle", "a conformance target without an oracle",
           (Edit("conformance.py", "oracle=SimulatorOracle(simulator), ", ""),),
           "deletion_removes_subject", "the conformance target has no oracle"),
    Defect("capability_without_hook", "a manifest capability with no hook",
           (_plugin("@hookimpl\ndef handle_opt_out(", "def handle_opt_out("),
            Edit("manifest.yaml", "hooks: [test_connection, handle_access, handle_deletion, handle_opt_out]",
                 "hooks: [test_connection, handle_access, handle_deletion]")),
           "hooks_match_manifest", "capability entries for hook(s) it does not declare and implement: "
                                   "handle_opt_out"),
    Defect("dangling_ref", "a dangling $ref in the credentials schema",
           (Edit("schemas/credentials.schema.json", '"Poll interval", "description": "The soonest to check a job '
                 'again.",\n                              "$ref": "#/$defs/seconds"',
                 '"Poll interval", "description": "The soonest to check a job again.",\n'
                 '                              "$ref": "#/$defs/interval"'),),
           "credentials_schema_usable", "$ref that resolve to nothing: #/$defs/interval"),
    Defect("unflagged_secret", "a secret setting not flagged as secret",
           (Edit("schemas/credentials.schema.json", '"minLength": 16, "writeOnly": true, "x-secret": true},',
                 '"minLength": 16},'),),
           "secret_fields_flagged", "not flagged as secret (writeOnly: true or x-secret: true): $.api_key"),
    Defect("unknown_subject_fails", "a request for an unknown subject that fails instead of completing",
           (_plugin('    found = bool(answer.get("found"))\n',
                    '    found = bool(answer.get("found"))\n    if not found:\n'
                    '        return Result.failed(request, "rejected", "no such contact")\n'),),
           "unknown_subject_completes[opt_out]", "ended failed (rejected) for a subject the service never had"),
    Defect("not_idempotent", "a repeated request that submits a second erasure",
           (_plugin(_ERASE, _ERASE.replace("idempotency_key=request.request_id", "idempotency_key=None")),),
           "repeat_is_idempotent[deletion]", "made 1 new write(s) in the service"),
    Defect("raises_when_refused", "a hook that raises instead of returning a failed result",
           (_plugin(_CONNECTION_REFUSED, "    except AcmeError as exc:\n        raise RuntimeError(exc.message)\n"
                    "        return ConnectionResult("),),
           "connection_with_refused_credentials", "test_connection raised instead of returning a failed check"),
)



# -- harm to everyone, across processes, regulations and the host's own process (issue 23) -------------------

_EXPORT_DONE = "        records = list(job.get(\"records\", []))\n"
_DELETION_FIRST = '            log.info("asked Acme to erase %s", _shown(who))\n'
_ACCESS_FIRST = '            log.info("asked Acme to export the data of %s", _shown(who))\n'
_OPT_OUT_FOUND = '    found = bool(answer.get("found"))\n'
_CONNECTION = '    started = time.monotonic()\n'
_LOG = "log = logging.getLogger(__name__)\n"
_ACCESS_START = ("    api = AcmeClient(config)\n    try:\n        if state is None:\n            who = _who(request)\n"
                 '            job = api.call("POST", "/v1/exports"')
_LOOK_ALIKES = ('[c for c in api.call("GET", "/v1/contacts")["contacts"]'
                ' if c["email"] != request.identities.get("email")'
                ' and c["email"].split("@")[0] == request.identities.get("email", "").split("@")[0]]')


def _connection(extra: str) -> Edit:
    return _plugin(_CONNECTION, _CONNECTION + extra)


def _oracle(old: str, new: str) -> Edit:
    return Edit("conformance.py", old, new)


_NO_WITNESS = _oracle("witness=StorageWitness(simulator),", "")
_EMAIL_ONLY_ORACLE = _oracle("        return self.simulator.exists(subject)\n",
                             '        return self.simulator.exists({"email": subject.get("email", "")})\n')
_IGNORES_CUSTOMER_ID = _plugin('    who = {k: v for k, v in request.identities.items()'
                               ' if k in ("email", "customer_id")}\n    if not who:\n',
                               '    who = {k: v for k, v in request.identities.items() if k == "email"}\n'
                               "    if not who:  # a customer id alone: nobody to find, so nothing to do\n"
                               '        raise AcmeError("rejected", "no contact")\n'
                               "    if not who:\n")

HARMS: tuple[Defect, ...] = (
    Defect("erases_namesake", "a deletion that also erases a look-alike contact (a namesake)",
           (_plugin(_DELETION_FIRST, _DELETION_FIRST
                    + f"            for other in {_LOOK_ALIKES}:\n"
                    + '                api.call("POST", "/v1/erasures", {"email": other["email"]})\n'),),
           "others_left_untouched[deletion]", "left bystanders[0] erased"),
    Defect("erases_everyone", "a deletion that erases every contact in the account",
           (_plugin(_DELETION_FIRST, _DELETION_FIRST
                    + '            for other in api.call("GET", "/v1/contacts")["contacts"]:\n'
                    + '                api.call("POST", "/v1/erasures", {"email": other["email"]})\n'),),
           "others_left_untouched[deletion]", "erased (the oracle's answer before and after)"),
    Defect("export_holds_namesake", "an access export that also holds a look-alike contact's records",
           (_plugin(_EXPORT_DONE, _EXPORT_DONE
                    + f"        for other in {_LOOK_ALIKES}:\n"
                    + '            extra = api.call("POST", "/v1/exports", {"email": other["email"]})\n'
                    + "            time.sleep(0.05)\n"
                    + '            records += api.call("GET", f"/v1/exports/{extra[\'id\']}").get("records", [])\n'),),
           "others_left_untouched[access]", "holds data of bystanders[0]"),
    Defect("export_cache", "a module-level cache that hands the previous subject's export to the next",
           (_plugin(_EXPORT_DONE, "        records = _LAST_EXPORT[0] if _LAST_EXPORT else"
                                  " list(job.get(\"records\", []))\n"
                                  "        _LAST_EXPORT[:] = [records]  # downloaded once: reuse it\n"),
            _plugin(_LOG, _LOG + "_LAST_EXPORT: list[Any] = []\n")),
           "exports_kept_apart", "export for bystanders[0] holds data of existing_subject"),
    Defect("ccpa_recorded_as_gdpr", "a CCPA opt-out that records only GDPR",
           (_plugin('{**who, "regulation": request.regulation}', '{**who, "regulation": "gdpr"}'),),
           "regulation_served[ccpa]", "does not record the opt-out (its oracle says the subject has not opted out "
                                      "under ccpa)"),
    Defect("egress_on_ccpa_only", "traffic to an undeclared host for CCPA requests only",
           (_plugin(_IMPORTS, _IMPORTS + "\nimport contextlib\nimport socket\n"),
            _plugin(_OPT_OUT_FOUND, _OPT_OUT_FOUND
                    + '    if request.regulation == "ccpa":\n'
                    + "        with contextlib.suppress(OSError), socket.socket() as probe:\n"
                    + '            probe.connect_ex(("192.0.2.20", 443))\n')),
           "regulation_served[ccpa]", "contacted the undeclared host 192.0.2.20"),
    Defect("writes_absolute_path", "an export copied to a hard-coded absolute path",
           (_plugin("    path.write_bytes(data)\n", "    path.write_bytes(data)\n"
                    '    Path("/tmp/acme-exports").mkdir(exist_ok=True)\n'
                    '    (Path("/tmp/acme-exports") / path.name).write_bytes(data)\n'),),
           "access_exports_subject_data", "wrote outside the request's output directory (created /tmp/acme-exports"),
    Defect("writes_home_cache", "an export cached under ~/.cache",
           (_plugin("    path.write_bytes(data)\n", "    path.write_bytes(data)\n"
                    '    cache = Path.home() / ".cache" / "acme-dsr-exports"\n'
                    "    cache.mkdir(parents=True, exist_ok=True)\n"
                    "    (cache / path.name).write_bytes(data)\n"),),
           "access_exports_subject_data", "/.cache/acme-dsr-exports"),
    Defect("staging_copy_deleted", "a plaintext staging copy in the temporary folder, deleted a moment later",
           (_plugin("    path.write_bytes(data)\n", "    import tempfile\n"
                    '    staging = Path(tempfile.gettempdir()) / f"acme-staging-{stem}.json"\n'
                    "    staging.write_bytes(data)\n    path.write_bytes(staging.read_bytes())\n"
                    "    staging.unlink()\n"),),
           "access_exports_subject_data", "acme-staging-"),
    Defect("secret_in_file_name", "a file named after part of the API key",
           (_plugin("def _write_export(request: DsrRequest, records: list[Any]) -> OutputFile:",
                    'def _write_export(request: DsrRequest, records: list[Any], tag: str = "") -> OutputFile:'),
            # A side file the result does not list: only the scan of the names of files written can see it.
            _plugin("    path.write_bytes(data)\n",
                    '    path.write_bytes(data)\n    (path.parent / f"acme-cache-{tag}.json").write_bytes(b"{}")\n'),
            _plugin("exported = _write_export(request, records)",
                    'exported = _write_export(request, records, str(config["api_key"])[:12])')),
           "access_exports_subject_data", "named a file it wrote after a configured secret"),
    Defect("secret_hex_in_log", "a secret logged hex-encoded",
           (_plugin(_CONNECTION_REFUSED, "    except AcmeError as exc:\n"
                    '        log.debug("key sent: %s", str(config["api_key"]).encode().hex())\n'
                    "        return ConnectionResult("),),
           "no_secret_or_email_in_output", "a configured secret (or 8 or more characters of one, or an encoded "
                                           "form) appeared in log records"),
    Defect("email_url_encoded_in_log", "an email logged URL-encoded",
           (_plugin('log.info("asked Acme to erase %s", _shown(who))',
                    'log.info("asked Acme to erase %s",'
                    ' __import__("urllib.parse").parse.quote(who.get("email", "")))'),),
           "no_secret_or_email_in_output", "an unmasked email address of a person the request involves appeared in "
                                           "log records"),
    Defect("name_in_log", "the subject's name logged",
           (_plugin(_EXPORT_DONE, _EXPORT_DONE
                    + '        log.info("exported the records of %s",'
                    + ' next((r["name"] for r in records if "name" in r), "?"))\n'),),
           "no_secret_or_email_in_output", "personal data (a name or another value the target declares) of a person "
                                           "the request involves appeared in log records"),
    Defect("phone_in_log", "the subject's phone number logged, digits only",
           (_plugin(_EXPORT_DONE, _EXPORT_DONE
                    + '        phone = next((r["phone"] for r in records if "phone" in r), "")\n'
                    + '        log.info("callback number %s", "".join(c for c in phone if c.isdigit()))\n'),),
           "no_secret_or_email_in_output", "a phone number of a person the request involves appeared in log records"),
    Defect("log_handler_private_stream", "a log handler bound at import to a stream of its own, not propagating",
           (_plugin(_LOG, _LOG + "log.addHandler(logging.StreamHandler(__import__('sys').stderr))\n"
                    "log.propagate = False\n"),
            _plugin('log.info("asked Acme to erase %s", _shown(who))',
                    'log.warning("asked Acme to erase %s", who.get("email"))')),
           "no_secret_or_email_in_output", "an unmasked email address of a person the request involves appeared in "
                                           "log records"),
    Defect("mutates_config", "a hook that changes the settings it was handed",
           (_plugin(_ACCESS_FIRST, _ACCESS_FIRST + '            config["poll_interval_seconds"] = 0.02\n'),),
           "host_process_left_as_found", "changed the settings it was handed"),
    Defect("mutates_request", "a hook that changes the request it was handed",
           (_plugin(_ACCESS_FIRST, _ACCESS_FIRST
                    + '            request.identities["email"] = request.identities.get("email", "").upper()\n'),),
           "host_process_left_as_found", "changed the request it was handed"),
    Defect("tls_off_process_wide", "TLS verification switched off for the whole process",
           (_connection("    import ssl\n    ssl._create_default_https_context = ssl._create_unverified_context\n"),),
           "host_process_left_as_found", "replaced ssl._create_default_https_context"),
    Defect("default_socket_timeout", "the process-wide default socket timeout changed",
           (_connection("    import socket\n    socket.setdefaulttimeout(5)\n"),),
           "host_process_left_as_found", "socket.getdefaulttimeout()"),
    Defect("proxy_environment", "a proxy set in the process environment",
           (_connection('    import os\n    os.environ["HTTPS_PROXY"] = "http://proxy.acme-crm.example:3128"\n'),),
           "host_process_left_as_found", "the environment (HTTPS_PROXY)"),
    Defect("logging_disabled", "logging switched off for the whole process",
           (_connection("    logging.disable(logging.INFO)\n"),),
           "host_process_left_as_found", "logging.disable()"),
    Defect("changes_cwd", "a hook that changes the working directory",
           (_plugin(_ACCESS_FIRST, _ACCESS_FIRST + "            __import__('os').chdir(request.output_dir)\n"),),
           "host_process_left_as_found", "the working directory"),
    Defect("changes_umask", "a hook that changes the umask",
           (_connection("    __import__('os').umask(0)\n"),),
           "host_process_left_as_found", "the umask"),
    Defect("thread_left_running", "a hook that leaves a thread running",
           (_plugin(_ACCESS_FIRST, _ACCESS_FIRST
                    + "            __import__('threading').Thread(target=time.sleep, args=(30,),"
                    + " daemon=True).start()\n"),),
           "host_process_left_as_found", "left 1 thread(s) running after it returned"),
    Defect("idempotency_in_memory", "idempotency kept only in the process's memory",
           (_plugin(_ERASE, 'job = _SUBMITTED.get(request.request_id) or api.call("POST", "/v1/erasures", who)\n'
                            "            _SUBMITTED[request.request_id] = job"),
            _plugin(_LOG, _LOG + "_SUBMITTED: dict[str, Any] = {}\n")),
           "repeat_and_resume_in_fresh_process", "in a fresh process made 1 new write(s)"),
    Defect("state_in_memory", "a pending state that only makes sense to the process that wrote it",
           (_plugin('return _pending(request, config, {"job": job["id"]}, job.get("ready_in_seconds"), '
                    '"Acme is erasing")',
                    '_JOBS[request.request_id] = job["id"]\n'
                    '            return _pending(request, config, {"job": "kept in memory"},'
                    ' job.get("ready_in_seconds"), "Acme is erasing")'),
            _plugin('job = api.call("GET", f"/v1/erasures/{state[\'job\']}")',
                    'job = api.call("GET", f"/v1/erasures/{_JOBS.get(request.request_id, state[\'job\'])}")'),
            _plugin(_LOG, _LOG + "_JOBS: dict[str, str] = {}\n")),
           "repeat_and_resume_in_fresh_process", "resumed from its stored state in a fresh process, ended failed"),
    Defect("repeat_ends_failed", "a repeated request that ends failed",
           (_plugin(_DELETION_FIRST, _DELETION_FIRST
                    + '            if job.get("status") == "done":\n'
                    + '                return Result.failed(request, "rejected",'
                    + ' "Acme already erased this contact")\n'),),
           "repeat_is_idempotent[deletion]", "ended failed (rejected) where the first call ended completed"),
    Defect("module_global_request", "a module-global \"current request\"",
           (_plugin(_ACCESS_START, '    _CURRENT["request"] = request\n' + _ACCESS_START),
            _plugin("exported = _write_export(request, records)",
                    'exported = _write_export(_CURRENT["request"], records)'),
            _plugin(_LOG, _LOG + "_CURRENT: dict[str, Any] = {}\n")),
           "concurrent_requests_kept_apart", "people at the same moment: access: "),
    Defect("sync_returns_pending", "a capability declared synchronous that returns pending",
           (_plugin("    try:\n        who = _who(request)\n        answer = AcmeClient(config)",
                    "    if state is None:\n"
                    '        return Result(request.request_id, request.type, "pending", "recording",\n'
                    '                      state={"step": 1},\n'
                    '                      next_check_at=datetime.now(UTC) + timedelta(seconds=0.02))\n'
                    "    try:\n        who = _who(request)\n        answer = AcmeClient(config)"),),
           "opt_out_recorded", "returned pending, but the manifest declares it synchronous"),
    Defect("ignores_customer_id", "a declared identity category (customer_id) ignored",
           (_IGNORES_CUSTOMER_ID,),
           "identity_categories_honoured[deletion]", "for existing_subject by its customer_id alone"),
    Defect("undeclared_setting", "a setting read that the credentials schema does not declare",
           (Edit("client.py", '        self._timeout = float(config.get("timeout_seconds", 10))\n',
                 '        self._timeout = float(config.get("timeout_seconds", 10))\n'
                 '        self._verify = bool(config.get("verify_tls", True))\n'),),
           "config_keys_declared", "does not declare: verify_tls"),
    Defect("no_throttle", "no throttle: far above the declared rate limit under a burst",
           (Edit("client.py", "        _window(account).wait(_LONGEST_WAIT)\n", ""),),
           "declared_rate_limits_kept", "far over the 60 per second its manifest declares"),
    Defect("connection_test_writes", "a connection test that writes in the service",
           (_plugin('        AcmeClient(config).call("GET", "/v1/account")\n',
                    '        AcmeClient(config).call("GET", "/v1/account")\n'
                    '        AcmeClient(config).call("POST", "/v1/exports",'
                    ' {"email": "connection-test@acme-crm.example"})\n'),),
           "connection_test_changes_nothing", "test_connection made a write in the service"),
    Defect("oracle_tells_truth_once", "an oracle that tells the truth once, then says \"gone\" (and a deletion that "
           "deletes nothing)",
           (_plugin(_ERASE, 'job = api.call("POST", "/v1/exports", who, idempotency_key=request.request_id)'),
            _NO_WITNESS,
            _oracle("        return self.simulator.exists(subject)\n",
                    "        key = repr(sorted(subject.items()))\n"
                    "        first = key not in self.asked\n        self.asked.add(key)\n"
                    "        return first and self.simulator.exists(subject)\n"),
            _oracle("        self.simulator = simulator\n\n    def exists",
                    "        self.simulator = simulator\n        self.asked: set[str] = set()\n\n    def exists")),
           "oracle_answers_consistent", "the target's oracle"),
    Defect("oracle_blind_to_a_category", "an oracle that finds people by email only, sharing the blind spot of a "
           "connector that ignores customer ids", (_IGNORES_CUSTOMER_ID, _NO_WITNESS, _EMAIL_ONLY_ORACLE),
           "oracle_answers_consistent", "an oracle must find a person by each identity"),
    Defect("oracle_contradicts_witness", "an oracle that its target's own witness contradicts",
           (_IGNORES_CUSTOMER_ID, _EMAIL_ONLY_ORACLE),
           "oracle_answers_consistent", "the target's oracle and its witness disagree"),
    Defect("oracle_lacks_writes", "an oracle missing a method",
           (_oracle("    def writes(self) -> int:\n        return self.simulator.writes()\n", ""),),
           "host_loads_target_configs", "the conformance target is refused: its oracle lacks writes()"),
)

ALL: tuple[Defect, ...] = DEFECTS + HARMS


def write_connector(root: Path, name: str, edits: tuple[Edit, ...] = (), registers_target: bool = True) -> Path:
    """Copy the example into ``root/name`` as connector ``name``, apply ``edits``, and register entry points."""
    package = root / name
    shutil.copytree(EXAMPLE, package, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = package / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace(f"id: {HONEST}\n", f"id: {name}\n"))
    for edit in edits:
        path = package / edit.file
        text = path.read_text()
        if edit.old not in text:
            raise ValueError(f"defect {name}: {edit.file} no longer contains {edit.old!r}")
        path.write_text(text.replace(edit.old, edit.new))
    dist = root / f"{name}-1.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n")
    points = f"[dsr.connectors]\n{name} = {name}.plugin\n"
    if registers_target:
        points += f"[dsr.conformance]\n{name} = {name}.conformance:target\n"
    (dist / "entry_points.txt").write_text(points)
    return package


def write_all(root: Path) -> list[str]:
    """The honest example (as ``acme``) and every broken copy, written into ``root``; returns their names."""
    write_connector(root, HONEST)
    for defect in ALL:
        write_connector(root, defect.name, defect.edits, defect.registers_target)
    return [HONEST, *(d.name for d in ALL)]


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    print(", ".join(write_all(target)))
