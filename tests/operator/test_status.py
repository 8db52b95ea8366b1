"""Status and conditions as pure functions of what was observed."""

from __future__ import annotations

from typing import Any

import pytest
from gendoc_operator.scaling import Decision
from gendoc_operator.status import (
    CONDITIONS,
    Problem,
    changed,
    conditions_for,
    merge_conditions,
    pod_problem,
    scaling_conditions,
    status_for,
)


def deployment(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "status": {"observedGeneration": generation,
                                                               **status}}


def by_type(conds: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in conds}


def test_no_deployment_yet() -> None:
    assert by_type(conditions_for(desired=2, deployment=None, problem=None)) == {
        "Ready": ("False", "Creating"), "Progressing": ("True", "Creating"),
        "Degraded": ("False", "AsExpected")}


def test_pending_pods() -> None:
    conds = conditions_for(desired=2, deployment=deployment(replicas=2, updatedReplicas=2),
                           problem=None)
    assert by_type(conds) == {"Ready": ("False", "PodsNotReady"),
                              "Progressing": ("True", "RollingOut"),
                              "Degraded": ("False", "AsExpected")}
    assert conds[0]["message"].startswith("0 of 2 pods ready")


def test_rollout_complete_and_ready() -> None:
    d = deployment(replicas=2, updatedReplicas=2, readyReplicas=2, availableReplicas=2)
    assert by_type(conditions_for(desired=2, deployment=d, problem=None)) == {
        "Ready": ("True", "AllReplicasReady"), "Progressing": ("False", "RolloutComplete"),
        "Degraded": ("False", "AsExpected")}


def test_old_pods_still_running_is_progressing() -> None:
    d = deployment(replicas=3, updatedReplicas=2, readyReplicas=3, availableReplicas=3)
    assert by_type(conditions_for(desired=2, deployment=d, problem=None))["Progressing"] == (
        "True", "RollingOut")


def test_unobserved_generation_is_progressing() -> None:
    d = deployment(replicas=2, updatedReplicas=2, readyReplicas=2, availableReplicas=2)
    d["metadata"]["generation"] = 2
    progressing = by_type(conditions_for(desired=2, deployment=d, problem=None))["Progressing"]
    assert progressing[0] == "True"


def test_replica_failure_and_deadline_are_degraded() -> None:
    failing = deployment(conditions=[{"type": "ReplicaFailure", "status": "True",
                                      "reason": "FailedCreate", "message": "quota"}])
    conds = conditions_for(desired=1, deployment=failing, problem=None)
    assert by_type(conds)["Degraded"] == ("True", "ReplicaFailure")
    assert conds[2]["message"] == "FailedCreate: quota"
    stuck = deployment(conditions=[{"type": "Progressing", "status": "False",
                                    "reason": "ProgressDeadlineExceeded", "message": "late"}])
    assert by_type(conditions_for(desired=1, deployment=stuck, problem=None)) == {
        "Ready": ("False", "PodsNotReady"), "Progressing": ("False", "ProgressDeadlineExceeded"),
        "Degraded": ("True", "ProgressDeadlineExceeded")}


def test_a_problem_is_degraded_not_progressing() -> None:
    conds = conditions_for(desired=1, deployment=deployment(readyReplicas=1),
                           problem=Problem("InvalidSpec", "requests exceed limits"))
    assert by_type(conds) == {"Ready": ("False", "InvalidSpec"),
                              "Progressing": ("False", "InvalidSpec"),
                              "Degraded": ("True", "InvalidSpec")}
    assert "1 of 1 pods ready" in conds[0]["message"]


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = merge_conditions([], [{"type": "Ready", "status": "False", "reason": "A",
                                   "message": ""}], generation=1, now="T1")
    same = merge_conditions(first, [{"type": "Ready", "status": "False", "reason": "B",
                                     "message": ""}], generation=2, now="T2")
    flipped = merge_conditions(same, [{"type": "Ready", "status": "True", "reason": "C",
                                       "message": ""}], generation=2, now="T3")
    assert [c[0]["lastTransitionTime"] for c in (first, same, flipped)] == ["T1", "T1", "T3"]
    assert same[0]["observedGeneration"] == 2


def test_status_for_and_changed() -> None:
    dg = {"metadata": {"generation": 3}, "status": {"metrics": {"requestsPerMinute": 5.0}}}
    wanted = status_for(dg, desired=2, selector="a=b", spec_hash="h",
                        deployment=deployment(replicas=2, readyReplicas=1, updatedReplicas=2),
                        problem=None, now="T")
    assert {k: wanted[k] for k in ("observedGeneration", "replicas", "readyReplicas",
                                   "desiredReplicas", "selector", "specHash")} == {
        "observedGeneration": 3, "replicas": 2, "readyReplicas": 1, "desiredReplicas": 2,
        "selector": "a=b", "specHash": "h"}
    assert "metrics" not in wanted  # the autoscaler's part is left alone
    assert changed(dg["status"], wanted, CONDITIONS)
    again = status_for({**dg, "status": {**dg["status"], **wanted}}, desired=2, selector="a=b",
                       spec_hash="h", deployment=deployment(replicas=2, readyReplicas=1,
                                                            updatedReplicas=2),
                       problem=None, now="LATER")
    assert not changed({**dg["status"], **wanted}, again, CONDITIONS)
    # The autoscaler's conditions beside ours, in any order, change nothing of ours.
    theirs = {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
              "message": "", "lastTransitionTime": "T"}
    mixed = {**dg["status"], **wanted, "conditions": [theirs, *reversed(wanted["conditions"])]}
    assert not changed(mixed, again, CONDITIONS)


@pytest.mark.parametrize(("decision", "current", "failure", "able", "limited"), [
    (Decision(3, "r"), 3, "", ("True", "ReadyForNewScale"), ("False", "DesiredWithinRange")),
    (Decision(5, "r"), 3, "", ("True", "SucceededRescale"), ("False", "DesiredWithinRange")),
    (Decision(6, "r", limited="ScaleUpLimit"), 3, "", ("True", "SucceededRescale"),
     ("True", "ScaleUpLimit")),
    (Decision(10, "r", limited="TooManyReplicas"), 10, "", ("True", "ReadyForNewScale"),
     ("True", "TooManyReplicas")),
    (Decision(4, "r", held="ScaleDownStabilized"), 4, "", ("True", "ScaleDownStabilized"),
     ("False", "DesiredWithinRange")),
    (Decision(4, "r", held="MissingPodMetrics"), 4, "", ("False", "MissingPodMetrics"),
     ("False", "DesiredWithinRange")),
    (Decision(5, "r"), 3, "403 Forbidden: no", ("False", "FailedUpdateScale"),
     ("False", "DesiredWithinRange")),
])
def test_scaling_conditions_as_the_hpa_reports_them(
        decision: Decision, current: int, failure: str, able: tuple[str, str],
        limited: tuple[str, str]) -> None:
    got = {c["type"]: (c["status"], c["reason"])
           for c in scaling_conditions(decision, current=current, failure=failure)}
    assert got == {"AbleToScale": able, "ScalingLimited": limited}


def _pod(name: str, phase: str = "Pending",
         waiting: dict[str, str] | None = None) -> dict[str, Any]:
    statuses = [{"name": "gendoc-service", "image": "gendoc-service:9",
                 "state": {"waiting": waiting} if waiting else {"running": {}}}]
    return {"metadata": {"name": name, "uid": f"uid-{name}"},
            "status": {"phase": phase, "containerStatuses": statuses if waiting else []}}


def test_pods_that_start_or_wait_for_a_node_are_no_problem() -> None:
    assert pod_problem([], []) is None
    assert pod_problem([_pod("a"), _pod("b", "Running")], []) is None


def test_an_image_the_node_cannot_get() -> None:
    pods = [_pod("a", waiting={"reason": "ImagePullBackOff",
                               "message": 'Back-off pulling image "gendoc-service:9"'})]
    problem = pod_problem(pods, [])
    assert problem is not None and problem.reason == "ImagePullFailed"
    assert problem.message == ("Pod a cannot get the image gendoc-service:9 of container "
                               'gendoc-service: ImagePullBackOff: Back-off pulling image '
                               '"gendoc-service:9"')


def test_a_secret_the_environment_names_is_missing() -> None:
    pods = [_pod("a", waiting={"reason": "CreateContainerConfigError",
                               "message": 'secret "s3-credentials" not found'})]
    problem = pod_problem(pods, [])
    assert problem == Problem("ReferenceNotFound",
                              'Pod a, container gendoc-service: secret "s3-credentials" not found')


def test_a_volume_that_cannot_be_mounted_on_a_waiting_pod() -> None:
    failure = {"involvedObject": {"uid": "uid-a"}, "message": 'MountVolume.SetUp failed for '
               'volume "api-keys" : secret "keys" not found'}
    problem = pod_problem([_pod("a")], [failure])
    assert problem is not None and problem.reason == "ReferenceNotFound"
    assert 'secret "keys" not found' in problem.message
    # an old event of a pod that has started since, or of another pod, says nothing
    assert pod_problem([_pod("a", "Running")], [failure]) is None
    assert pod_problem([_pod("b")], [failure]) is None
