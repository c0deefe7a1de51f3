"""The sandbox's OpenDSR v3: lifecycle, documented errors, erasure, results files and signed callbacks."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.server import Serving
from tests.support.mp import INPUT, WORKSPACE, batch, dsr_body


def submit(sb: Sandbox, body: dict[str, Any], auth: Any = WORKSPACE) -> requests.Response:
    return requests.post(f"{sb.url}/v3/requests", json=body, auth=auth, timeout=5)


def status(sb: Sandbox, request_id: str) -> requests.Response:
    return requests.get(f"{sb.url}/v3/requests/{request_id}", auth=WORKSPACE, timeout=5)


def wait_for(sb: Sandbox, request_id: str, wanted: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body: dict[str, Any] = status(sb, request_id).json()
        if body["request_status"] == wanted:
            return body
        time.sleep(0.05)
    raise AssertionError(f"request never became {wanted}")


def verify_signature(cert: x509.Certificate, body: bytes, signature: str) -> None:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(signature), body, padding.PKCS1v15(), hashes.SHA256())


def test_submission_is_acknowledged_with_the_documented_fields_and_a_valid_signature(sandbox: Sandbox) -> None:
    body = dsr_body()
    response = submit(sandbox, body)
    assert response.status_code == 201
    data = response.json()
    assert set(data) == {"expected_completion_time", "received_time", "encoded_request", "subject_request_id",
                         "controller_id"}
    assert data["subject_request_id"] == body["subject_request_id"] and data["controller_id"] == "12345"
    assert json.loads(base64.b64decode(data["encoded_request"])) == body
    assert response.headers["X-OpenDSR-Processor-Domain"] == "opendsr.mparticle.com"
    cert = x509.load_pem_x509_certificates(requests.get(f"{sandbox.url}/dsr/opendsr_cert.pem", timeout=5).content)[0]
    verify_signature(cert, response.content, response.headers["X-OpenDSR-Signature"])


def test_request_moves_through_its_lifecycle_and_completes_when_expected(sandbox: Sandbox) -> None:
    sandbox.set_durations(access=(0.3, 0.4))
    body = dsr_body()
    expected = submit(sandbox, body).json()["expected_completion_time"]
    assert status(sandbox, body["subject_request_id"]).json()["request_status"] == "pending"
    wait_for(sandbox, body["subject_request_id"], "in_progress")
    done = wait_for(sandbox, body["subject_request_id"], "completed")
    # Under shape variation the two answers may write the same time with other precision or zone forms.
    assert abs(utc(done["expected_completion_time"]) - utc(expected)) < 1
    assert abs(time.time() - utc(expected)) < 1.5


def utc(text: str) -> float:
    """An OpenDSR timestamp in any form mParticle's examples show (0 to 7 fractional digits; ``Z``, an offset,
    or, as v2 writes ``expected_completion_time``, no zone: UTC) as epoch seconds."""
    stamp, zone = re.fullmatch(r"([0-9T:.-]+?)(Z|[+-]\d\d:\d\d)?", text).groups()  # type: ignore[union-attr]
    whole, _, fraction = stamp.partition(".")
    parsed = datetime.strptime(whole + (zone or "+00:00").replace("Z", "+00:00"), "%Y-%m-%dT%H:%M:%S%z")
    return parsed.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


INVALID = [
    ({"regulation": None}, "'regulation' is a required property"),
    ({"regulation": "lgpd"}, "$.regulation"),
    ({"subject_request_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}, "UUID v4"),
    ({"subject_request_id": "not-a-uuid"}, "UUID v4"),
    ({"subject_request_type": "rectification"}, "$.subject_request_type"),
    ({"submitted_time": "last tuesday"}, "ISO 8601"),
    ({"subject_identities": {"email": {"value": "a@b.co", "encoding": "sha256"}}}, "$.subject_identities.email"),
    ({"subject_identities": {"shoe_size": {"value": "9", "encoding": "raw"}}}, "unsupported identity type"),
    ({"subject_identities": {"mpid": {"value": "42", "encoding": "raw"}}}, "only in the opendsr.mparticle.com"),
    ({"subject_identities": {"other": {"value": "x", "encoding": "raw"}}}, "only in the opendsr.mparticle.com"),
    ({"subject_identities": {}}, "at least one subject identity"),
    ({"subject_identities": {"email": {"value": "a@b.co", "encoding": "raw"}},
      "extensions": {"opendsr.mparticle.com": {"subject_identities": {"mpid": {"value": "42", "encoding": "raw"}}}}},
     "If an mpid is provided, it must be the only identity"),
    ({"subject_identities": None, "extensions": {"opendsr.mparticle.com": {"subject_identities": {
        f"other{n}": {"value": str(n), "encoding": "raw"} for n in range(2, 11)} | {
        "other": {"value": "x", "encoding": "raw"}}}}}, None),
    ({"subject_identities": None, "extensions": {"opendsr.mparticle.com": {"subject_identities": {
        "email": {"value": "a@b.co", "encoding": "raw"}}}}}, "not in the opendsr.mparticle.com extension"),
    ({"subject_identities": None, "extensions": {"opendsr.mparticle.com": {"subject_identities": {
        "controller_customer_id": {"value": "c-1", "encoding": "raw"}}}}}, "unsupported identity type"),
    ({"subject_identities": None, "extensions": {"opendsr.mparticle.com": {"subject_identities": {
        "other_id_2": {"value": "x", "encoding": "raw"}}}}}, "unsupported identity type 'other_id_2'"),
    ({"colour": "blue"}, "'colour' was unexpected"),
    ({"api_version": "2.0"}, "$.api_version"),  # "Valid value is 3.0"
    ({"status_callback_urls": ["ftp://host/cb"]}, "$.status_callback_urls[0]"),
]


@pytest.mark.parametrize(("change", "message"), INVALID, ids=[str(i) for i in range(len(INVALID))])
def test_invalid_submissions_get_a_400_with_the_documented_error_body(
    sandbox: Sandbox, change: dict[str, Any], message: str | None
) -> None:
    response = submit(sandbox, dsr_body(**change))
    if message is None:  # extension-only identities on their own are valid
        assert response.status_code == 201
        return
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == 400 and message in error["message"]
    assert error["errors"][0]["domain"] == "Validation" and message in error["errors"][0]["message"]


def test_api_version_other_than_3_0_is_refused_and_3_0_or_none_is_accepted(sandbox: Sandbox) -> None:
    assert submit(sandbox, dsr_body(api_version="1.0")).status_code == 400
    assert submit(sandbox, dsr_body(api_version=None)).status_code == 201
    assert submit(sandbox, dsr_body("erasure", api_version="3.0")).status_code == 201


#: developers/dsr-api/v3: the keys the opendsr.mparticle.com extension takes ("The identities supported in the
#: subject_identities element in the opendsr.mparticle.com extension are: ...").
EXTENSION_KEYS = ["other", *(f"other{n}" for n in range(2, 11)), "mobile_number", "phone_number_2", "phone_number_3"]


@pytest.mark.parametrize("key", EXTENSION_KEYS)
def test_each_documented_extension_identity_is_accepted_there(sandbox: Sandbox, key: str) -> None:
    body = dsr_body(extensions={"opendsr.mparticle.com": {"subject_identities": {
        key: {"value": "v-1", "encoding": "raw"}}}})
    assert submit(sandbox, body).status_code == 201


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_submission_without_content_type_application_json_is_refused(
    sandbox: Sandbox, content_type: str | None
) -> None:
    """dsr-api/v3: the request "takes a JSON request body and requires a Content-Type: application/json
    header"; the body here is valid JSON, only the header is wrong."""
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(dsr_body()).encode()
    response = requests.post(f"{sandbox.url}/v3/requests", data=body, auth=WORKSPACE, timeout=5, headers=headers)
    assert response.status_code == 400 and "Content-Type: application/json" in response.json()["message"]
    assert sandbox.dsrs() == []
    charset = requests.post(f"{sandbox.url}/v3/requests", data=body, auth=WORKSPACE, timeout=5,
                            headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert charset.status_code == 201


def test_an_upper_case_request_id_is_echoed_as_sent_and_found_in_either_case(sandbox: Sandbox) -> None:
    body = dsr_body()
    body["subject_request_id"] = body["subject_request_id"].upper()
    created = submit(sandbox, body)
    assert created.status_code == 201 and created.json()["subject_request_id"] == body["subject_request_id"]
    for asked in (body["subject_request_id"], body["subject_request_id"].lower()):
        assert status(sandbox, asked).json()["subject_request_id"] == body["subject_request_id"]
    again = submit(sandbox, {**body, "subject_request_id": body["subject_request_id"].lower()})
    assert again.status_code == 400 and "already exists" in again.json()["message"]


def test_malformed_json_is_a_400(sandbox: Sandbox) -> None:
    response = requests.post(f"{sandbox.url}/v3/requests", data=b"{not json", auth=WORKSPACE, timeout=5,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["message"]


def test_reusing_a_subject_request_id_says_it_already_exists(sandbox: Sandbox) -> None:
    body = dsr_body()
    assert submit(sandbox, body).status_code == 201
    again = submit(sandbox, {**body, "subject_identities": {"email": {"value": "x@y.zz", "encoding": "raw"}}})
    assert again.status_code == 400 and "already exists" in again.json()["message"]


def test_same_identities_and_type_while_in_progress_is_a_409(sandbox: Sandbox) -> None:
    assert submit(sandbox, dsr_body("erasure")).status_code == 201
    conflict = submit(sandbox, dsr_body("erasure"))
    assert conflict.status_code == 409
    assert submit(sandbox, dsr_body("access")).status_code == 201  # another type is not a conflict


def test_wrong_credentials_and_unknown_ids(sandbox: Sandbox) -> None:
    assert submit(sandbox, dsr_body(), auth=("sbx-wk-7c2f9e4a", "wrong")).status_code == 401
    assert submit(sandbox, dsr_body(), auth=INPUT).status_code == 401  # input keys don't open the DSR API
    assert requests.get(f"{sandbox.url}/v3/requests/0", timeout=5).status_code == 401
    missing = status(sandbox, "0")
    assert missing.status_code == 404 and missing.json()["code"] == 404


def test_requests_can_be_listed_by_group(sandbox: Sandbox) -> None:
    first, second = dsr_body(group_id="host-7"), dsr_body("erasure", group_id="host-7")
    submit(sandbox, first)
    submit(sandbox, second)
    submit(sandbox, dsr_body(email="other@example.com", group_id="host-8"))
    listed = requests.get(f"{sandbox.url}/v3/requests", params={"group_id": "host-7"}, auth=WORKSPACE, timeout=5)
    assert listed.status_code == 200
    assert [r["subject_request_id"] for r in listed.json()] == [first["subject_request_id"],
                                                                second["subject_request_id"]]


def test_only_pending_requests_can_be_cancelled(sandbox: Sandbox) -> None:
    sandbox.set_durations(erasure=(30, 30))
    body = dsr_body("erasure")
    submit(sandbox, body)
    cancelled = requests.delete(f"{sandbox.url}/v3/requests/{body['subject_request_id']}", auth=WORKSPACE, timeout=5)
    assert cancelled.status_code == 202
    assert cancelled.json()["expected_completion_time"] is None
    assert status(sandbox, body["subject_request_id"]).json()["request_status"] == "cancelled"
    other = dsr_body("access")
    submit(sandbox, other)
    sandbox.force_status(other["subject_request_id"], "in_progress")
    refused = requests.delete(f"{sandbox.url}/v3/requests/{other['subject_request_id']}", auth=WORKSPACE, timeout=5)
    assert refused.status_code == 400 and "only pending" in refused.json()["message"]


def test_completed_erasure_removes_the_profile_and_its_events(sandbox: Sandbox) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-1"}, batches=[batch()])
    bob = sandbox.seed_profile({"email": "bob@example.com"}, batches=[batch("bob@example.com")])
    body = dsr_body("erasure", subject_identities={"email": {"value": "jane@example.com", "encoding": "raw"},
                                                   "controller_customer_id": {"value": "c-1", "encoding": "raw"}})
    submit(sandbox, body)
    done = wait_for(sandbox, body["subject_request_id"], "completed")
    assert done.get("results_url") is None  # null, or (under shape variation) absent
    assert sandbox.profile(jane["mpid"]) is None
    assert sandbox.profile(bob["mpid"]) is not None
    search = requests.post(f"{sandbox.url}/v1/search", auth=INPUT, timeout=5,
                           json={"environment": "production", "known_identities": {"customerid": "c-1"}})
    assert search.status_code == 404
    assert sandbox.dsr(body["subject_request_id"])["matched_mpids"] == [jane["mpid"]]  # type: ignore[index]


def test_erasure_without_the_login_id_does_not_reach_a_profile_that_has_one(sandbox: Sandbox) -> None:
    """guides/data-subject-requests: a DSR without a login ID is not fulfilled for a profile that has one."""
    jane = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-1", "ios_idfa": "idfa-1"})
    for identities in ({"email": {"value": "jane@example.com", "encoding": "raw"}},
                       {"ios_advertising_id": {"value": "idfa-1", "encoding": "raw"}}):
        body = dsr_body("erasure", subject_identities=identities)
        submit(sandbox, body)
        wait_for(sandbox, body["subject_request_id"], "completed")
        assert sandbox.dsr(body["subject_request_id"])["matched_mpids"] == []  # type: ignore[index]
    assert sandbox.profile(jane["mpid"]) is not None


def test_a_dsr_resolves_to_one_profile_even_when_several_share_an_identity(sandbox: Sandbox) -> None:
    """dsr-api/v3: "This update enforces identity resolution to map to a single mpid"."""
    first = sandbox.seed_profile({"email": "shared@example.com", "other": "a"})
    second = sandbox.seed_profile({"email": "shared@example.com", "other": "b"})
    body = dsr_body("erasure", email="shared@example.com", extensions={"opendsr.mparticle.com": {
        "subject_identities": {"other": {"value": "b", "encoding": "raw"}}}})
    submit(sandbox, body)
    wait_for(sandbox, body["subject_request_id"], "completed")
    assert sandbox.profile(second["mpid"]) is None, "the identity hierarchy picks the profile other=b"
    assert sandbox.profile(first["mpid"]) is not None


def test_an_mpid_in_the_extension_names_the_profile_directly(sandbox: Sandbox) -> None:
    jane = sandbox.seed_profile({"customer_id": "c-1"})
    body = dsr_body("erasure", subject_identities=None, extensions={"opendsr.mparticle.com": {
        "subject_identities": {"mpid": {"value": str(jane["mpid"]), "encoding": "raw"}}}})
    assert submit(sandbox, body).status_code == 201
    wait_for(sandbox, body["subject_request_id"], "completed")
    assert sandbox.profile(jane["mpid"]) is None


def test_status_extensions_are_null_unless_forwarding_partners_are_configured(sandbox: Sandbox) -> None:
    erasure, access = dsr_body("erasure"), dsr_body("access")
    for body in (erasure, access):
        submit(sandbox, body)
        assert status(sandbox, body["subject_request_id"]).json().get("extensions") is None  # null or absent
    assert wait_for(sandbox, erasure["subject_request_id"], "completed").get("extensions") is None
    sandbox.set_workspace(forwarding_partners=[
        {"domain": "braze.com", "name": "Braze erasure"},
        {"domain": "amplitude.com", "name": "Amplitude", "outcome": "failed", "status_message": "invalid API key"}])
    forwarded = dsr_body("erasure", email="someone@example.com")
    submit(sandbox, forwarded)
    pending = status(sandbox, forwarded["subject_request_id"]).json()["extensions"]
    assert [(e["domain"], e["status"]) for e in pending] == [("braze.com", "pending"), ("amplitude.com", "pending")]
    done = wait_for(sandbox, forwarded["subject_request_id"], "completed")["extensions"]
    assert done == [
        {"domain": "braze.com", "name": "Braze erasure", "status": "sent", "status_message": None},
        {"domain": "amplitude.com", "name": "Amplitude", "status": "failed", "status_message": "invalid API key"}]
    later_access = dsr_body("access", email="someone@example.com")
    submit(sandbox, later_access)
    assert status(sandbox, later_access["subject_request_id"]).json().get("extensions") is None  # erasures only


def read_zip(content: bytes) -> dict[str, list[Any]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: [json.loads(line) for line in archive.read(name).decode().splitlines() if line.strip()]
                if name.endswith(".jsonl") else [archive.read(name).decode()] for name in archive.namelist()}


def batch_lines(files: dict[str, list[Any]]) -> list[Any]:
    return [line for name, lines in sorted(files.items()) if name.endswith(".jsonl") and name != "profile.jsonl"
            for line in lines]


def access_results(sb: Sandbox, **identities: str) -> dict[str, list[Any]]:
    body = dsr_body(**identities)
    submit(sb, body)
    download = requests.get(wait_for(sb, body["subject_request_id"], "completed")["results_url"], timeout=5)
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
    return read_zip(download.content)


def test_access_results_hold_the_event_batches_and_no_live_profile_by_default(sandbox: Sandbox) -> None:
    """guides/data-subject-requests: including the live profile is a workspace setting, off by default."""
    sandbox.seed_profile({"email": "jane@example.com"}, attributes={"$firstname": "Jane"},
                         batches=[batch(), batch()])
    files = access_results(sandbox)
    assert "profile.jsonl" not in files
    lines = batch_lines(files)
    assert len(lines) == 2 and lines[0]["events"][0]["data"]["event_name"] == "Viewed Pricing"
    assert isinstance(lines[0]["mpid"], int) and lines[0]["source_info"]["channel"] == "server_to_server"


def test_the_live_profile_is_included_in_the_documented_shape_when_the_workspace_opts_in(sandbox: Sandbox) -> None:
    sandbox.set_workspace(include_live_profile=True)
    jane = sandbox.seed_profile({"email": "jane@example.com", "ios_idfa": "idfa-9"},
                                attributes={"$firstname": "Jane"}, audiences=["Newsletter"])
    [profile] = access_results(sandbox)["profile.jsonl"]
    # mParticle's sample result (static/downloads/portability-response-sample.zip): the mpid is "id" and
    # identities are {type, encoding, value}; the Profile API's names for the types.
    assert profile["id"] == int(jane["mpid"])
    assert profile["user_identities"] == [{"type": "email", "encoding": "none", "value": "jane@example.com"}]
    assert profile["device_identities"] == [{"type": "ios_advertising_id", "encoding": "none", "value": "idfa-9"}]
    assert profile["user_attributes"] == {"$firstname": "Jane"}
    assert [a["audience_name"] for a in profile["audience_memberships"]] == ["Newsletter"]


def test_access_for_a_profile_without_events_gives_empty_txt(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    files = access_results(sandbox)
    assert "empty.txt" in files and batch_lines(files) == []


def test_results_link_is_404_when_nothing_matched_and_410_once_expired(sandbox: Sandbox) -> None:
    nobody = dsr_body(email="nobody@example.com")
    submit(sandbox, nobody)
    url = wait_for(sandbox, nobody["subject_request_id"], "completed")["results_url"]
    assert requests.get(url, timeout=5).status_code == 404
    sandbox.seed_profile({"email": "jane@example.com"})
    sandbox.set_durations(results_ttl_seconds=0.3)
    body = dsr_body()
    submit(sandbox, body)
    url = wait_for(sandbox, body["subject_request_id"], "completed")["results_url"]
    time.sleep(0.4)
    assert requests.get(url, timeout=5).status_code == 410


@pytest.mark.parametrize("path", ["/v3/discovery/", "/v3/discovery"])
def test_discovery_at_the_documented_path_names_the_supported_identities_and_the_certificate(
    sandbox: Sandbox, path: str
) -> None:
    response = requests.get(f"{sandbox.url}{path}", timeout=5)  # the v3 page documents GET /discovery/
    assert response.status_code == 200
    data = response.json()
    assert data["api_version"] == "3.0"
    assert {"identity_type": "roku_publisher_id", "identity_format": "raw"} in data["supported_identities"]
    assert len(data["supported_identities"]) == 11
    assert data["processor_certificate"] == f"{sandbox.url}/dsr/opendsr_cert.pem"


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def callback_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    serving = Serving(server, "callback-receiver")
    yield f"http://127.0.0.1:{server.server_address[1]}/dsr-callback", received
    serving.stop()


def test_callbacks_are_sent_on_every_status_change_signed_by_a_certificate_from_the_sandbox_ca(
    sandbox: Sandbox, callback_receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = callback_receiver
    body = dsr_body(status_callback_urls=[url, "https://host.example.com/cb"])
    submit(sandbox, body)
    wait_for(sandbox, body["subject_request_id"], "completed")
    deadline = time.time() + 5
    while len(received) < 3 and time.time() < deadline:
        time.sleep(0.05)
    statuses = [json.loads(raw)["request_status"] for _, raw in received]
    assert statuses == ["pending", "in_progress", "completed"]
    cert_url = requests.get(f"{sandbox.url}/v3/discovery", timeout=5).json()["processor_certificate"]
    cert, intermediate = x509.load_pem_x509_certificates(requests.get(cert_url, timeout=5).content)
    cert.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(x509.load_pem_x509_certificate(sandbox.ca_pem()))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert names == ["opendsr.mparticle.com"]
    for headers, raw in received:
        assert headers["x-opendsr-processor-domain"] == "opendsr.mparticle.com"
        verify_signature(cert, raw, headers["x-opendsr-signature"])
        assert json.loads(raw)["status_callback_url"] == url
    undelivered = [d for d in sandbox.callbacks() if d["url"].startswith("https://host.example.com")]
    assert undelivered and not any(d["delivered"] for d in undelivered)  # the sandbox never leaves loopback


@pytest.mark.parametrize("mode", ["invalid", "missing"])
def test_the_signature_fault_sends_a_bad_or_no_signature_on_responses_and_callbacks(
    sandbox: Sandbox, callback_receiver: tuple[str, list[tuple[dict[str, str], bytes]]], mode: str
) -> None:
    from cryptography.exceptions import InvalidSignature

    url, received = callback_receiver
    cert = x509.load_pem_x509_certificates(requests.get(f"{sandbox.url}/dsr/opendsr_cert.pem", timeout=5).content)[0]
    sandbox.set_faults(dsr={"signature": mode})
    response = submit(sandbox, dsr_body(status_callback_urls=[url]))
    assert response.status_code == 201
    deadline = time.time() + 5
    while not received and time.time() < deadline:
        time.sleep(0.05)
    [(callback_headers, callback_body)] = received[:1]
    for headers, raw in ((dict(response.headers.lower_items()), response.content), (callback_headers, callback_body)):
        assert headers["x-opendsr-processor-domain"] == "opendsr.mparticle.com"
        if mode == "missing":
            assert "x-opendsr-signature" not in headers
        else:
            with pytest.raises(InvalidSignature):
                verify_signature(cert, raw, headers["x-opendsr-signature"])
    sandbox.clear_faults()
    good = requests.get(f"{sandbox.url}/v3/discovery/", timeout=5)
    verify_signature(cert, good.content, good.headers["X-OpenDSR-Signature"])
