"""FHIR R4 Observations for ``/v1/assess?format=fhir``.

The answer is a ``Bundle`` of type ``collection`` holding one Observation per measurement and one for
the hypoperfusion flag, which points at them through ``derivedFrom``. Codes (docs/design.md):

- finger CRT: LOINC 44963-7 "Capillary refill [Time] of Nail bed", in seconds (UCUM ``s``);
- knee CRT: no LOINC code exists, so a local code system, also in seconds;
- mottling: SNOMED CT 406128001 "Mottling of skin", with the 0-5 score coded in a local system;
- hypoperfusion: a local code, ``valueBoolean``, with one component per criterion evaluated.

Status is ``preliminary``: an unvalidated research algorithm, never a final clinical result. A
rejected CRT keeps its Observation with a ``dataAbsentReason`` and the reason as a note, so a
missing number is never read as a normal one.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from mottling.results import CrtResult, MottlingResult
from mottling.scale import SCALE_VERSION, HypoperfusionFlag, describe_score

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://github.com/mottling/mottling/fhir/CodeSystem/mottling"
LOCAL_SCORE = "https://github.com/mottling/mottling/fhir/CodeSystem/mottling-score"
REQUEST_ID_SYSTEM = "https://github.com/mottling/mottling/fhir/request-id"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

_EXAM = {"coding": [{"system": OBS_CATEGORY, "code": "exam", "display": "Exam"}]}


def _seconds(value: float) -> dict[str, Any]:
    return {"value": round(float(value), 3), "unit": "s", "system": UCUM, "code": "s"}


def _interpretation(high: bool) -> list[dict]:
    code, display = ("H", "High") if high else ("N", "Normal")
    return [{"coding": [{"system": INTERPRETATION, "code": code, "display": display}]}]


def _observation(code: dict, effective: str, model_version: str | None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": uuid.uuid4().hex,
        "status": "preliminary",
        "category": [_EXAM],
        "code": code,
        "effectiveDateTime": effective,
    }
    if model_version:
        obs["device"] = {"display": f"mottling {model_version} (research use only)"}
    return obs


def mottling_observation(result: MottlingResult, effective: str) -> dict[str, Any]:
    level = describe_score(result.score)
    obs = _observation({
        "coding": [
            {"system": SNOMED, "code": "406128001", "display": "Mottling of skin"},
            {"system": LOCAL, "code": "mottling-score",
             "display": "Mottling score (Ait-Oufella 2011), 0-5"},
        ],
        "text": "Mottling score",
    }, effective, result.model_version)
    obs["valueCodeableConcept"] = {
        "coding": [{"system": LOCAL_SCORE, "version": SCALE_VERSION, "code": str(result.score),
                    "display": f"{result.score}: {level.name} ({level.extent})"}],
        "text": str(result.score),
    }
    obs["interpretation"] = _interpretation(result.score >= 1)
    obs["component"] = [
        {"code": {"coding": [{"system": LOCAL, "code": "mottling-expected-score",
                              "display": "Expected mottling score"}]},
         "valueQuantity": {"value": round(result.expected_score, 3), "system": UCUM, "code": "1",
                           "unit": "score"}},
        {"code": {"coding": [{"system": LOCAL, "code": "mottling-confidence",
                              "display": "Model confidence in the score"}]},
         "valueQuantity": {"value": round(result.confidence, 4), "system": UCUM, "code": "1",
                           "unit": "probability"}},
    ]
    if result.quality:
        obs["note"] = [{"text": "Photo quality: " + ", ".join(result.quality)}]
    return obs


def crt_observation(result: CrtResult, effective: str, model_version: str | None) -> dict[str, Any]:
    if result.site == "finger":
        code = {"coding": [{"system": LOINC, "code": "44963-7",
                            "display": "Capillary refill [Time] of Nail bed"}],
                "text": "Finger capillary refill time"}
    else:
        code = {"coding": [{"system": LOCAL, "code": "knee-crt",
                            "display": "Capillary refill time of the skin over the knee"}],
                "text": "Knee capillary refill time"}
    obs = _observation(code, effective, model_version)
    if result.status == "ok" and result.crt_s is not None:
        obs["valueQuantity"] = _seconds(result.crt_s)
        obs["interpretation"] = _interpretation(bool(result.prolonged))
        if result.crt_ci95 is not None:
            obs["note"] = [{"text": f"95% interval {result.crt_ci95[0]:.2f}-{result.crt_ci95[1]:.2f} s"}]
    else:
        obs["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "error",
                                               "display": "Error"}],
                                   "text": "measurement rejected"}
        obs["note"] = [{"text": f"Rejected: {result.reason or 'not measurable'}"}]
    obs["referenceRange"] = [{"high": _seconds(result.threshold_s),
                              "text": f"abnormal above {result.threshold_s:g} s"}]
    return obs


def hypoperfusion_observation(flag: HypoperfusionFlag, effective: str, model_version: str | None,
                              derived_from: list[str]) -> dict[str, Any]:
    obs = _observation({
        "coding": [{"system": LOCAL, "code": "peripheral-hypoperfusion",
                    "display": "Persistent peripheral hypoperfusion (I-MICRO criteria)"}],
        "text": "Peripheral hypoperfusion",
    }, effective, model_version)
    obs["valueBoolean"] = bool(flag.hypoperfusion)
    components = [
        {"code": {"coding": [{"system": LOCAL, "code": "criterion", "display": "Criterion"}],
                  "text": name},
         "valueBoolean": name in flag.criteria}
        for name in flag.evaluated
    ]
    if components:  # FHIR JSON has no empty arrays
        obs["component"] = components
    else:
        obs["note"] = [{"text": "No criterion could be evaluated: nothing usable was measured."}]
    if derived_from:
        obs["derivedFrom"] = [{"reference": ref} for ref in derived_from]
    return obs


def failed_parts_outcome(failures: dict[str, str]) -> dict[str, Any]:
    """An OperationOutcome naming each part of a partial assessment that could not be analysed, so
    a FHIR reader sees why an Observation is missing instead of assuming it was never sent."""
    return {"resourceType": "OperationOutcome", "id": uuid.uuid4().hex,
            "issue": [{"severity": "error", "code": "processing",
                       "diagnostics": f"{part}: {message}", "expression": [part]}
                      for part, message in failures.items()]}


def assessment_bundle(mottling: MottlingResult | None, crt: CrtResult | None, flag: HypoperfusionFlag,
                      model_version: str | None, request_id: str | None = None,
                      now: datetime | None = None,
                      failures: dict[str, str] | None = None) -> dict[str, Any]:
    """The whole /v1/assess answer as a FHIR R4 ``collection`` Bundle; ``failures`` (part name ->
    message) adds an OperationOutcome for the parts of a partial answer."""
    effective = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    resources = []
    if mottling is not None:
        resources.append(mottling_observation(mottling, effective))
    if crt is not None:
        resources.append(crt_observation(crt, effective, model_version))
    refs = [f"urn:uuid:{uuid.UUID(r['id'])}" for r in resources]
    resources.append(hypoperfusion_observation(flag, effective, model_version, refs))
    if failures:
        resources.append(failed_parts_outcome(failures))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": uuid.uuid4().hex}
    if request_id:  # ties the Bundle to the server's log line and X-Request-ID header
        bundle["identifier"] = {"system": REQUEST_ID_SYSTEM, "value": request_id}
    bundle.update({
        "type": "collection",
        "timestamp": effective,
        "entry": [{"fullUrl": f"urn:uuid:{uuid.UUID(r['id'])}", "resource": r} for r in resources],
    })
    return bundle
