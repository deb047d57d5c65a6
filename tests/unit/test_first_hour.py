"""The pieces of a newcomer's first hour that need no database: finding `up`'s data directory,
event types by provider, settings refused at start, the CLI's wording, `up`'s output stream and
the ProcessOut simulator."""
from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from cli.main import main
from cli.output import plural
from cli.up_output import Sink, parse_line
from models.datadir import find_data_dir, no_database_hint
from models.settings import load_settings
from sandbox.catalog import HANDLED, IGNORED, provider_name, resolve, types_of
from sandbox.processout_sim import Simulator, register
from sandbox.samples import sample_processout_event
from tests.conftest import make_settings

# --- the data directory, found like git finds .git -------------------------------------------------


def test_the_nearest_data_dir_upwards_is_found(tmp_path: Path) -> None:
    (tmp_path / ".payhooks").mkdir()
    deep = tmp_path / "src" / "app"
    deep.mkdir(parents=True)
    found = find_data_dir(start=deep, environ={})
    assert found.path == tmp_path / ".payhooks" and found.found and not found.explicit
    assert found.project_root == tmp_path


def test_payhooks_data_dir_wins_over_searching(tmp_path: Path) -> None:
    (tmp_path / ".payhooks").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = find_data_dir(start=tmp_path, environ={"PAYHOOKS_DATA_DIR": str(elsewhere)})
    assert found.path == elsewhere and found.explicit


def test_with_none_found_the_hint_names_the_directory_and_the_settings(tmp_path: Path) -> None:
    found = find_data_dir(start=tmp_path, environ={})
    assert not found.found and found.path == tmp_path / ".payhooks"
    hint = no_database_hint(found)
    assert str(tmp_path) in hint and "PAYHOOKS_DATA_DIR" in hint and "PAYHOOKS_DATABASE_URL" in hint
    assert "subdirectory" in hint


def test_a_data_dir_without_a_running_up_says_where_to_start_it(tmp_path: Path) -> None:
    (tmp_path / ".payhooks").mkdir()
    hint = no_database_hint(find_data_dir(start=tmp_path / ".payhooks", environ={}))
    assert f"not running in {tmp_path}" in hint and "payhooks up" in hint


def test_commands_in_a_subdirectory_read_ups_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / ".payhooks"
    data.mkdir()
    (data / "secrets.env").write_text("PAYHOOKS_YOCO_SECRETS=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
    (data / "runtime.env").write_text("PAYHOOKS_DATABASE_URL=postgresql://x@/db\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    for name in ("PAYHOOKS_DATA_DIR", "PAYHOOKS_DATABASE_URL", "PAYHOOKS_YOCO_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(sub)
    settings = load_settings()
    assert settings.database_url == "postgresql://x@/db"
    assert settings.secrets_for("yoco") == ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    assert Path(settings.data_dir) == data


# --- event types: canonical kinds, provider-native types, any case ----------------------------------


@pytest.mark.parametrize(("provider", "native"), [
    ("smartpay", "order.authorized"), ("processout", "transaction.captured"), ("senfenico", "checkout.success"),
    ("yoco", "payment.succeeded"), ("shadhinpay", "payment.completed"),
])
def test_the_canonical_succeeded_kind_maps_to_each_providers_own_type(provider: str, native: str) -> None:
    resolved = resolve(provider, "payment.succeeded")
    assert resolved.event_type == native and resolved.kind == "payment.succeeded"


def test_native_types_pass_as_they_are_and_unknown_ones_reach_no_kind() -> None:
    assert resolve("senfenico", "charge.failed").kind == "payment.failed"
    assert resolve("senfenico", "charge.failed").event_type == "charge.failed"
    assert resolve("yoco", "payment.failed").kind is None  # Yoco sends no failed payments
    assert resolve("smartpay", "made.up").event_type == "made.up"


def test_every_canonical_kind_a_provider_has_is_reachable() -> None:
    for provider, kinds in HANDLED.items():
        for kind in set(kinds.values()):
            assert resolve(provider, kind).kind == kind
        listed = [t for t, _ in types_of(provider)]
        assert set(kinds) | set(IGNORED[provider]) == set(listed)


def test_provider_names_are_case_insensitive() -> None:
    assert provider_name("Yoco") == "yoco" and provider_name(" SHADHINPAY ") == "shadhinpay"
    assert provider_name("paypal") is None


# --- settings refused at start --------------------------------------------------------------------


@pytest.mark.parametrize(("url", "secret"), [
    ("fulfilment_url", "fulfilment_secret"),  # with both: fine
    ("notify_url", "notify_secret"),  # with the fulfilment secret, its fallback: fine
])
def test_a_url_without_its_secret_is_refused_naming_both(url: str, secret: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_settings(**{url: "https://shop.example/send"})
    assert f"PAYHOOKS_{url.upper()}" in str(caught.value) and f"PAYHOOKS_{secret.upper()}" in str(caught.value)
    make_settings(**{url: "https://shop.example/send", "fulfilment_secret": "whsec_a2V5"})


@pytest.mark.parametrize(("args", "env", "exit_code", "says"), [
    pytest.param(["worker"], {"PAYHOOKS_FULFILMENT_URL": "https://shop.example/f", "PAYHOOKS_FULFILMENT_SECRET": None},
                 2, "settings error: PAYHOOKS_FULFILMENT_URL is set but PAYHOOKS_FULFILMENT_SECRET is not",
                 id="started-with-that-setting"),
    pytest.param(["db", "upgrade"], {"PAYHOOKS_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}, 1,
                 "database unavailable (OperationalError): check that Postgres answers at PAYHOOKS_DATABASE_URL",
                 id="with-an-unreachable-database"),
])
def test_a_command_that_cannot_start_stops_with_one_line(tmp_path: Path, args: list[str], env: dict[str, str | None],
                                                         exit_code: int, says: str) -> None:
    result = CliRunner().invoke(main, args, env={"PAYHOOKS_DATA_DIR": str(tmp_path), **env})
    assert result.exit_code == exit_code, result.output
    assert says in result.stderr
    assert "Traceback" not in result.output


# --- the CLI's wording -----------------------------------------------------------------------------


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("payhooks 0.")


def test_plurals() -> None:
    assert [plural(n, "event") for n in (0, 1, 2)] == ["0 events", "1 event", "2 events"]
    assert [plural(n, "delivery", "deliveries") for n in (1, 3)] == ["1 delivery", "3 deliveries"]


@pytest.mark.parametrize(("args", "env", "exit_code", "says"), [
    pytest.param(("YOCO", "refund.failed"), {}, 2, ["will be stored and end `ignored`", "use --yes"],
                 id="an-unhandled-type-nobody-can-confirm"),
    pytest.param(("processout", "payment.succeeded"), {"PAYHOOKS_PROCESSOUT_API_URL": None}, 2,
                 ["https://api.processout.com", "end `dead`", "payhooks up", "use --yes"],
                 id="processout-without-the-simulator-will-end-dead"),
    pytest.param(("yoco", "payment.succeeded"), {"PAYHOOKS_YOCO_SECRETS": None}, 1,
                 ["set PAYHOOKS_YOCO_SECRETS", "payhooks up"], id="without-a-secret-where-to-get-one"),
    pytest.param(("yoco", "payment.succeeded"), {"PAYHOOKS_YOCO_SECRETS": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, 1,
                 ["could not reach http://127.0.0.1:9/webhooks/yoco", "payhooks up"], id="nothing-listening"),
])
def test_send_says_what_stops_it_and_what_to_do(tmp_path: Path, args: tuple[str, str], env: dict[str, str | None],
                                                exit_code: int, says: list[str]) -> None:
    # When `payhooks send` aims at a port nobody listens on, with the data directory in tmp_path
    result = CliRunner().invoke(main, ["send", *args, "--url", "http://127.0.0.1:9"], input="",
                                env={"PAYHOOKS_DATA_DIR": str(tmp_path), **env})
    assert result.exit_code == exit_code, result.output
    for text in says:
        assert text in result.stderr


def test_send_help_lists_every_providers_types() -> None:
    text = CliRunner().invoke(main, ["send", "--help"]).output
    for provider, kinds in HANDLED.items():
        assert provider in text
        assert all(event_type in text for event_type in kinds)


def test_providers_lists_types_kinds_and_handlers() -> None:
    listing = json.loads(CliRunner().invoke(main, ["providers", "--json"]).output)
    smartpay = {row["type"]: row for row in listing["smartpay"]}
    assert smartpay["order.authorized"]["handlers"][0] == "fulfilment"  # custom handlers may follow
    assert smartpay["order.canceled"] == {"type": "order.canceled", "kind": None, "handlers": []}
    assert {row["type"] for row in listing["processout"] if row["kind"] == "payment.charged_back"} == {
        "transaction.chargeback.created"}


# --- `up`'s one output stream ----------------------------------------------------------------------


def test_our_json_lines_keep_their_fields_and_name_the_process() -> None:
    line = json.dumps({"ts": "2026-01-01T00:00:00+00:00", "level": "info", "action": "event.succeeded",
                       "message": "event 3 succeeded", "event_id": 3})
    entry = parse_line(line, process="worker")
    assert entry["process"] == "worker" and entry["event_id"] == 3 and entry["action"] == "event.succeeded"


def test_foreign_lines_become_records_of_ours() -> None:
    gunicorn = parse_line("[2026-11-27 11:12:28 +0000] [16109] [INFO] Starting gunicorn 27.0.1",
                          process="receiver")
    assert gunicorn["message"] == "Starting gunicorn 27.0.1" and gunicorn["level"] == "info"
    assert gunicorn["action"] == "receiver.output"
    celery = parse_line("worker: Warm shutdown (MainProcess)\n", process="worker")
    assert celery["message"] == "worker: Warm shutdown (MainProcess)"
    assert parse_line("   \n", process="worker") is None


def test_the_stream_is_json_lines_off_a_terminal_and_readable_on_one() -> None:
    entry = parse_line("[x] [1] [WARNING] slow", process="receiver")
    machine, person = io.StringIO(), io.StringIO()
    Sink(machine, json_lines=True).record(entry)
    Sink(machine, json_lines=True).text("a banner for people only")
    Sink(person, json_lines=False).record(entry)
    assert [json.loads(line)["message"] for line in machine.getvalue().splitlines()] == ["slow"]
    assert "WARNING" in person.getvalue() and "receiver" in person.getvalue() and "{" not in person.getvalue()


# --- the ProcessOut API simulator ------------------------------------------------------------------


def test_the_simulator_answers_like_processouts_api(tmp_path: Path) -> None:
    events_file = tmp_path / "events.json"
    simulator = Simulator(auth="proj_dev:key_dev", events_file=events_file).start()
    try:
        event = sample_processout_event(event_id="ev_1", event_type="transaction.captured", order_ref="tr_1",
                                        amount_minor=1050)["event"]
        with pytest.raises(httpx.HTTPStatusError):  # registration needs the project credentials too
            register(simulator_url=simulator.url, event=event, project_id="proj_dev", project_secret="wrong")
        register(simulator_url=simulator.url, event=event, project_id="proj_dev", project_secret="key_dev")
        good = httpx.get(f"{simulator.url}/events/ev_1", auth=("proj_dev", "key_dev"))
        assert good.status_code == 200 and good.json()["event"]["data"]["transaction"]["amount"] == "10.50"
        assert httpx.get(f"{simulator.url}/events/ev_1", auth=("proj_dev", "nope")).status_code == 401
        assert httpx.get(f"{simulator.url}/events/ev_2", auth=("proj_dev", "key_dev")).status_code == 404
        bad = httpx.post(f"{simulator.url}/_simulator/events", content=b"{}", auth=("proj_dev", "key_dev"))
        assert bad.status_code == 400
    finally:
        simulator.stop()
    # Registered events outlive a restart of `up`
    again = Simulator(auth="proj_dev:key_dev", events_file=events_file)
    assert again.store.get("ev_1") == event
    again.server.server_close()


def test_the_default_api_url_is_the_real_one() -> None:
    assert make_settings().processout_api_url == "https://api.processout.com"
