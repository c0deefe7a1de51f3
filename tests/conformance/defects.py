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


_ERASE = 'job = api.call("POST", "/v1/erasures", {"email": email}, idempotency_key=request.request_id)'
_OPT_OUT = ('answer = AcmeClient(config).call("POST", "/v1/opt-outs", {"email": email, "regulation": '
            'request.regulation},\n                                         idempotency_key=request.request_id)')
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
           "access_exports_subject_data", "wrote outside the request's output directory: tmp/"),
    Defect("access_omits_data", "an export that lacks the data the service holds",
           (_plugin('records = list(job.get("records", []))', "records = []"),),
           "access_exports_subject_data", "files lack 6 of the 6 values the service holds"),
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
    Defect("busy_poller", "next_check_at of 'now': a host polling in a busy loop",
           (_plugin("next_check_at=datetime.now(UTC) + timedelta(seconds=wait)", "next_check_at=datetime.now(UTC)"),),
           "access_exports_subject_data", "sooner than the declared minimum of 0.01s"),
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
           (_plugin('log.info("asked Acme to erase %s", mask_email(email))',
                    'log.info("asked Acme to erase %s", email)'),),
           "no_secret_or_email_in_output", "an unmasked email address of the request's subject appeared in log"),
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
    for defect in DEFECTS:
        write_connector(root, defect.name, defect.edits, defect.registers_target)
    return [HONEST, *(d.name for d in DEFECTS)]


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    print(", ".join(write_all(target)))
