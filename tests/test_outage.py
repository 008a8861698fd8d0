"""Which errors mean "Cassandra lost quorum" (the job waits) and which fail the job: pure."""

from __future__ import annotations

from ingest.pipeline.outage import quorum_lost


class Unavailable(Exception):
    pass


class WriteTimeout(Exception):
    pass


class RayTaskError(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"task failed: {cause!r}")
        self.cause = cause


UNAVAILABLE = (
    'Error from server: code=1000 [Unavailable exception] message="Cannot achieve '
    "consistency level LOCAL_QUORUM\" info={'consistency': 'LOCAL_QUORUM', "
    "'required_replicas': 2, 'alive_replicas': 1}"
)


def test_the_consistency_failure_is_named_also_inside_task_errors():
    assert quorum_lost(Unavailable(UNAVAILABLE)).startswith("Unavailable: ")
    wrapped = RayTaskError(Unavailable(UNAVAILABLE))
    assert "LOCAL_QUORUM" in quorum_lost(wrapped)
    try:
        try:
            raise WriteTimeout("received only 1 responses, consistency LOCAL_QUORUM")
        except WriteTimeout as exc:
            raise RuntimeError("store failed") from exc
    except RuntimeError as outer:
        assert quorum_lost(outer).startswith("WriteTimeout: ")


def test_an_unpickled_cause_is_found_in_the_text_and_other_errors_are_not_outages():
    class UnserializableException(Exception):
        pass

    assert quorum_lost(UnserializableException("Original exception: " + UNAVAILABLE)).startswith(
        "Unavailable"
    )
    assert quorum_lost(ValueError("line 3: not a date")) is None
    assert quorum_lost(RuntimeError("Unavailable without the word c.")) is None
