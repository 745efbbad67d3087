"""``?format=fhir``: the FHIR R4 Bundle of Observations, checked against the R4 structure rules."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from mottling.results import CrtResult, MottlingResult
from mottling.scale import assess_hypoperfusion
from serving import fhir
from serving.app import create_app
from serving.settings import ServerSettings
from tests.serving_support import photo_jpeg, tiny_model

# Observation elements defined by FHIR R4 (4.0.1); anything else is not valid R4 JSON.
R4_OBSERVATION_ELEMENTS = {
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "basedOn", "partOf", "status", "category", "code", "subject",
    "focus", "encounter", "effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant",
    "issued", "performer", "valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean",
    "valueInteger", "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime",
    "valuePeriod", "dataAbsentReason", "interpretation", "note", "bodySite", "method", "specimen",
    "device", "referenceRange", "hasMember", "derivedFrom", "component"}
R4_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
             "entered-in-error", "unknown"}
BUNDLE_TYPES = {"document", "message", "transaction", "transaction-response", "batch",
                "batch-response", "history", "searchset", "collection"}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UCUM = "http://unitsofmeasure.org"


def check_codeable_concept(cc: dict) -> None:
    assert isinstance(cc, dict) and (cc.get("coding") or cc.get("text"))
    for coding in cc.get("coding", []):
        assert set(coding) <= {"system", "version", "code", "display", "userSelected"}
        assert coding["system"].startswith(("http://", "https://", "urn:"))
        assert isinstance(coding["code"], str) and coding["code"] and not coding["code"].startswith(" ")


def check_quantity(q: dict) -> None:
    assert isinstance(q["value"], (int, float)) and not isinstance(q["value"], bool)
    assert q["system"] == UCUM and q["code"]


def check_observation(obs: dict) -> None:
    assert obs["resourceType"] == "Observation"
    assert set(obs) <= R4_OBSERVATION_ELEMENTS, set(obs) - R4_OBSERVATION_ELEMENTS
    assert FHIR_ID.match(obs["id"])
    assert obs["status"] in R4_STATUS
    check_codeable_concept(obs["code"])
    for cat in obs.get("category", []):
        check_codeable_concept(cat)
    assert datetime.fromisoformat(obs["effectiveDateTime"]).tzinfo is not None
    values = [k for k in obs if k.startswith("value")]
    # obs-6: dataAbsentReason only when there is no value
    assert len(values) + ("dataAbsentReason" in obs) == 1, obs
    if "valueQuantity" in obs:
        check_quantity(obs["valueQuantity"])
    if "valueCodeableConcept" in obs:
        check_codeable_concept(obs["valueCodeableConcept"])
    if "dataAbsentReason" in obs:
        check_codeable_concept(obs["dataAbsentReason"])
    for interp in obs.get("interpretation", []):
        check_codeable_concept(interp)
    for rng in obs.get("referenceRange", []):
        assert "low" in rng or "high" in rng or "text" in rng
        for bound in ("low", "high"):
            if bound in rng:
                check_quantity(rng[bound])
    for comp in obs.get("component", []):
        check_codeable_concept(comp["code"])
        assert len([k for k in comp if k.startswith("value")]) + ("dataAbsentReason" in comp) == 1
    for note in obs.get("note", []):
        assert isinstance(note["text"], str) and note["text"]


def check_no_empty(node, where="") -> None:
    """FHIR JSON: no empty objects, arrays or strings, and no nulls."""
    assert node is not None and node != "" and node != [] and node != {}, f"empty value at {where}"
    if isinstance(node, dict):
        for k, v in node.items():
            check_no_empty(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_no_empty(v, f"{where}[{i}]")


def check_bundle(bundle: dict) -> dict[str, dict]:
    check_no_empty(bundle)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] in BUNDLE_TYPES
    assert set(bundle) <= {"resourceType", "id", "meta", "implicitRules", "language", "identifier",
                           "type", "timestamp", "total", "link", "entry", "signature"}
    assert FHIR_ID.match(bundle["id"])
    by_url = {}
    for entry in bundle["entry"]:
        assert set(entry) <= {"fullUrl", "resource"}
        assert UUID_URN.match(entry["fullUrl"])
        check_observation(entry["resource"])
        by_url[entry["fullUrl"]] = entry["resource"]
    for obs in by_url.values():
        for ref in obs.get("derivedFrom", []) + obs.get("hasMember", []):
            assert ref["reference"] in by_url, "a reference must resolve inside the Bundle"
    return by_url


def codes(obs: dict) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in obs["code"]["coding"]}


def make_mottling(score: int = 3) -> MottlingResult:
    probs = [0.0] * 6
    probs[score] = 1.0
    return MottlingResult("leg.jpg", score, tuple(probs), float(score), 0.9, ("too_dark",), "0.1.0", "ab" * 32)


def make_crt(site: str, crt_s: float | None, status: str = "ok") -> CrtResult:
    threshold = 3.0 if site == "finger" else 4.0
    return CrtResult(
        path="r.mp4", site=site, status=status, reason=None if status == "ok" else "camera moved",
        crt_s=crt_s, crt_ci95=None if crt_s is None else (crt_s - 0.3, crt_s + 0.3), tau_s=None,
        release_s=4.0, threshold_s=threshold, prolonged=None if crt_s is None else crt_s > threshold,
        fps=30.0, frames=300)


@pytest.mark.parametrize("site,crt_s", [("finger", 3.6), ("knee", 2.2)])
def test_bundle_codes_units_and_links(site, crt_s):
    mott, crt = make_mottling(3), make_crt(site, crt_s)
    flag = assess_hypoperfusion(mott.score, crt.crt_s, site)
    bundle = fhir.assessment_bundle(mott, crt, flag, "0.1.0")
    by_url = check_bundle(bundle)
    assert len(by_url) == 3
    mottling_obs = next(o for o in by_url.values() if ("http://snomed.info/sct", "406128001") in codes(o))
    value = mottling_obs["valueCodeableConcept"]["coding"][0]
    assert value["system"] == fhir.LOCAL_SCORE and value["code"] == "3"
    crt_obs = next(o for o in by_url.values() if "valueQuantity" in o)
    assert crt_obs["valueQuantity"] == {"value": crt_s, "unit": "s", "system": UCUM, "code": "s"}
    if site == "finger":
        assert ("http://loinc.org", "44963-7") in codes(crt_obs)
        assert crt_obs["interpretation"][0]["coding"][0]["code"] == "H"
    else:
        assert codes(crt_obs) == {(fhir.LOCAL, "knee-crt")}   # no LOINC code exists for the knee
        assert crt_obs["interpretation"][0]["coding"][0]["code"] == "N"
    assert crt_obs["referenceRange"][0]["high"]["value"] == crt.threshold_s
    flag_obs = next(o for o in by_url.values() if (fhir.LOCAL, "peripheral-hypoperfusion") in codes(o))
    assert flag_obs["valueBoolean"] is True
    assert {r["reference"] for r in flag_obs["derivedFrom"]} == set(by_url) - {
        u for u, o in by_url.items() if o is flag_obs}
    assert [c["valueBoolean"] for c in flag_obs["component"]] == [True, site == "finger"]


def test_rejected_crt_is_absent_not_normal():
    crt = make_crt("finger", None, status="rejected")
    flag = assess_hypoperfusion(None, None, None)
    by_url = check_bundle(fhir.assessment_bundle(None, crt, flag, None))
    crt_obs = next(o for o in by_url.values() if ("http://loinc.org", "44963-7") in codes(o))
    assert "valueQuantity" not in crt_obs and crt_obs["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert "camera moved" in crt_obs["note"][0]["text"]
    flag_obs = next(o for o in by_url.values() if "valueBoolean" in o)
    assert flag_obs["valueBoolean"] is False and "component" not in flag_obs


def test_assess_endpoint_returns_fhir(tmp_path):
    settings = ServerSettings(model_path=tiny_model(tmp_path))
    with TestClient(create_app(settings)) as c:
        resp = c.post("/v1/assess?format=fhir", files={"image": ("leg.jpg", photo_jpeg(seed=2, score=2))})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/fhir+json")
        assert resp.headers["x-request-id"] and resp.headers["x-model-version"] == "0.0.1"
        bundle = resp.json()
        by_url = check_bundle(bundle)
        assert len(by_url) == 2
        assert bundle["identifier"]["value"] == resp.headers["x-request-id"]
        assert all(o["status"] == "preliminary" for o in by_url.values())
