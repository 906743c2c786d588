"""``roofseg data-service``: the commands and their options (the servers run in pipeline/test_service.py)."""

from __future__ import annotations


def test_both_servers_are_commands_with_their_options(run_cli):
    for command, options in (
        ("dispatcher", ("--port", "--work-dir")),
        ("worker", ("--dispatcher", "--port", "--address")),
    ):
        done = run_cli("data-service", command, "--help")
        assert done.code == 0 and all(o in done.out for o in options), done.out


def test_a_worker_without_its_dispatcher_is_one_usage_line(run_cli):
    from conftest import one_error_line

    assert "--dispatcher" in one_error_line(run_cli("data-service", "worker"))
