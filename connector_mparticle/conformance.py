"""The mParticle connector's conformance target: a fresh sandbox, one subject, a bystander, and an oracle that
asks the sandbox's admin API (never the connector) what happened.

Registered in the ``dsr.conformance`` entry-point group, so ``pytest --dsr-conformance=mparticle`` runs the
harness against it. The subject has an email and a mobile number, each of which finds it alone (the harness
sends each alone too), and no customer id: mParticle's default identity strategy makes the customer id a login
id, which an email-only request would not reach. The bystander is the subject's namesake (same name, an email
that differs by its domain, a mobile number one digit apart).
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from connector_mparticle.sandbox import Durations, Sandbox, SandboxCredentials
from dsr_framework.conformance import ConformanceTarget

__all__ = ["SandboxOracle", "target"]

EXISTING = {"email": "conformance.subject@example.com", "phone": "+14155550134"}
MISSING = {"email": "never.seen@example.com", "phone": "+14155550199"}
#: One bystander, the subject's namesake: every request is followed by questions about everyone, each a call to
#: the sandbox, so one well-chosen bystander keeps the run short (examples/acme seeds two).
BYSTANDERS = ({"email": "conformance.subject@example.org", "phone": "+14155550135"},)
#: Each person's name, in the profile's user attributes: the subject and the bystander are namesakes.
NAMES = (("Robin", "Quayleford"), ("Robin", "Quayleford"))
PURPOSE = "conformance_marketing"  #: a GDPR purpose defined in the workspace; an opt-out refuses it
#: Identity names of the harness's requests, in the sandbox admin API's names.
_ADMIN_NAMES = {"email": "email", "customer_id": "customer_id", "phone": "mobile_number"}
#: The limits of the manifest (``rate_limits[].api``) each API of the sandbox's request log counts against.
_LIMITS: dict[str, tuple[str, ...]] = {"dsr": ("dsr",), "events": ("events",), "identity": ("identity",),
                                       "profile": ("profile",)}


class SandboxOracle:
    """What the sandbox holds, read through its admin API: the harness's ground truth for mParticle."""

    def __init__(self, sandbox: Sandbox, gdpr_purposes: tuple[str, ...]) -> None:
        self.sandbox = sandbox
        self.gdpr_purposes = gdpr_purposes

    def _found(self, subject: Mapping[str, str]) -> list[dict[str, Any]]:
        identities = {_ADMIN_NAMES[k]: v for k, v in subject.items() if k in _ADMIN_NAMES}
        if not identities:
            return []
        found: list[dict[str, Any]] = self.sandbox.find_profiles(**identities)  # any of them: a strict oracle
        return found

    def _profiles(self, subject: Mapping[str, str]) -> list[dict[str, Any]]:
        return [p for p in (self.sandbox.profile(f["mpid"]) for f in self._found(subject)) if p is not None]

    def exists(self, subject: Mapping[str, str]) -> bool:
        """A profile holding one of the subject's identities is still in the workspace."""
        return bool(self._found(subject))

    def opted_out(self, subject: Mapping[str, str], regulation: str) -> bool:
        """Every profile of the subject has CCPA data_sale_opt_out consented and each GDPR purpose refused."""
        profiles = self._profiles(subject)
        return bool(profiles) and all(self._opted_out(p["consent_state"]) for p in profiles)

    def _opted_out(self, consent: Mapping[str, Any]) -> bool:
        sale = consent.get("ccpa", {}).get("data_sale_opt_out", {})
        gdpr = consent.get("gdpr", {})
        refused = all(gdpr.get(purpose, {}).get("consented") is False for purpose in self.gdpr_purposes)
        return sale.get("consented") is True and refused

    def held_data(self, subject: Mapping[str, str]) -> list[str]:
        """Event names and screen names in the batches stored for the subject (what an access archive holds)."""
        values: list[str] = []
        for profile in self._profiles(subject):
            for batch in profile.get("batches", []):
                for event in batch.get("events", []):
                    data = event.get("data", {})
                    values += [str(data[k]) for k in ("screen_name", "event_name") if k in data]
        return values

    def writes(self) -> int:
        """OpenDSR requests received plus event batches stored (duplicates de-duplicated by the sandbox)."""
        stats = self.sandbox.stats()
        return stats["dsrs"] + stats["batches_stored"]

    def calls(self) -> list[tuple[float, str]]:
        """Every call the sandbox served, as (time, the manifest's rate-limit api): a new DSR counts against
        ``dsr`` and ``dsr_submit``."""
        found: list[tuple[float, str]] = []
        for entry in self.sandbox.request_log():
            apis = _LIMITS.get(entry["api"], ())
            if entry["api"] == "dsr" and entry["method"] == "POST" and entry["path"].rstrip("/").endswith("/requests"):
                apis = ("dsr", "dsr_submit")
            found += [(float(entry["at"]), api) for api in apis]
        return found


def _seed(sandbox: Sandbox, identities: Mapping[str, str], name: tuple[str, str], screen: str) -> None:
    sandbox.seed_profile({_ADMIN_NAMES[k]: v for k, v in identities.items()},
                         attributes={"plan": "basic", "$FirstName": name[0], "$LastName": name[1]}, batches=[
                             {"environment": "production",
                              "events": [{"event_type": "screen_view", "data": {"screen_name": screen}}]}])


@contextmanager
def target() -> Iterator[ConformanceTarget]:
    """A sandbox with 0.1 s request durations, random credentials, a seeded subject and its namesake."""
    fast = {"access": Durations(0.05, 0.05), "erasure": Durations(0.05, 0.05)}
    # Random, so that no fragment of a secret is an ordinary word that turns up in results or logs.
    credentials = SandboxCredentials(workspace_key=secrets.token_hex(12), workspace_secret=secrets.token_hex(16),
                                     input_key=secrets.token_hex(12), input_secret=secrets.token_hex(16),
                                     client_id=secrets.token_hex(12), client_secret=secrets.token_hex(16))
    with Sandbox(durations=fast, credentials=credentials, gdpr_purposes=(PURPOSE,)) as sandbox:
        good = sandbox.connector_config(polling={"min_interval_seconds": 0.1, "max_interval_seconds": 2},
                                        throttle={"max_retry_seconds": 10}, timeouts={"total_seconds": 15},
                                        opt_out={"gdpr_purposes": [PURPOSE]})
        bad = copy.deepcopy(good)
        bad["dsr"]["auth"]["secret"] = secrets.token_hex(16)  # refused by the sandbox
        bad["inputs"]["auth"]["secret"] = secrets.token_hex(16)
        screens = [f"conformance-screen-{secrets.token_hex(4)}" for _ in range(1 + len(BYSTANDERS))]

        def prepare() -> None:
            sandbox.reset()
            sandbox.set_workspace(gdpr_purposes=[PURPOSE])
            for person, name, screen in zip((EXISTING, *BYSTANDERS), NAMES, screens, strict=True):
                _seed(sandbox, person, name, screen)

        prepare()
        yield ConformanceTarget(good_config=good, bad_config=bad, existing_subject=EXISTING, missing_subject=MISSING,
                                oracle=SandboxOracle(sandbox, (PURPOSE,)), prepare=prepare, bystanders=BYSTANDERS,
                                personal_data=[" ".join(NAMES[0]), NAMES[0][1]],
                                allowed_hosts={"127.0.0.1"}, min_check_interval=0.1, call_seconds=20,
                                concurrent_requests=4,  # two rounds of the subject and its namesake at once
                                budgets={"handle_access": 20, "handle_deletion": 20, "handle_opt_out": 10})
