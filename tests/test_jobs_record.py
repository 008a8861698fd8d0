from ingest.load import jobs


def test_job_lifecycle(session):
    jid = jobs.create_job(session, user_id="u1", file_name="a.csv")
    j = jobs.get_job(session, jid)
    assert j.status == "queued" and jid in jobs.active_job_ids(session)
    jobs.mark_running(session, j)
    jobs.set_progress(session, jid, "store", 0, 5, 10)
    jobs.set_progress(session, jid, "store", 1, 5, 10)
    jobs.set_progress(session, jid, "store", 1, 7, 10)
    assert jobs.progress(session, jid)["store"] == {"done": 12, "total": 20}
    jobs.mark_stage_done(session, jid, "parse", 1.5)
    jobs.write_rejected(session, jid, [(i, "bad", "x") for i in range(2, 30)])
    rows, st = jobs.list_rejected(session, jid, 10)
    assert [r["line"] for r in rows] == list(range(2, 12)) and st
    rows2, _ = jobs.list_rejected(session, jid, 10, st)
    assert rows2[0]["line"] == 12
    jobs.finish(session, jobs.get_job(session, jid), "succeeded")
    j = jobs.get_job(session, jid)
    assert (
        j.status == "succeeded"
        and j.completed_stages == {"parse"}
        and jid not in jobs.active_job_ids(session)
    )


def test_a_rejected_rows_text_is_kept_whole_up_to_a_bound_then_its_head_and_length():
    from ingest.load.jobs import RAW_KEEP_CHARS, bounded_text

    assert bounded_text("2024-01-01,abc", RAW_KEEP_CHARS) == "2024-01-01,abc"
    huge = "a,b," + "x" * (17 * 1024 * 1024)
    kept = bounded_text(huge, RAW_KEEP_CHARS)
    assert kept.startswith(huge[:RAW_KEEP_CHARS]) and len(kept) < RAW_KEEP_CHARS + 100
    assert f"{len(huge):,} characters in all" in kept
