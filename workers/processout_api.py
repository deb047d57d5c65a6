"""Fetching a ProcessOut event back from its API: the only trust a thin event gets."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from models.settings import Settings
from workers.errors import BadEventData, NotFoundAtProvider, ProviderUnavailable

API_VERSION = "1.4.0.0"


class ProcessOutClient:
    def __init__(self, settings: Settings, *, timeout_seconds: float = 10.0) -> None:
        secret = settings.processout_project_secret
        self._auth = (settings.processout_project_id or "", secret.get_secret_value() if secret else "")
        self._base_url = settings.processout_api_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_seconds, headers={
            "API-Version": API_VERSION, "Accept": "application/json",
        })

    def fetch_event(self, event_id: str) -> dict[str, Any]:
        """``{"id", "name", "data", "sandbox", …}`` of the event, or an error sorted by what to do."""
        url = f"{self._base_url}/events/{quote(event_id, safe='')}"
        try:
            response = self._http.get(url, auth=self._auth)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"ProcessOut fetch failed: {type(exc).__name__} from {self._base_url} (is "
                "PAYHOOKS_PROCESSOUT_API_URL right? `payhooks up` sets it to its simulator)") from None
        if response.status_code == 404:
            raise NotFoundAtProvider(f"ProcessOut has no event {event_id}")
        if response.status_code == 401:
            raise ProviderUnavailable(
                f"ProcessOut answered 401 at {self._base_url}: check PAYHOOKS_PROCESSOUT_PROJECT_ID and "
                "PAYHOOKS_PROCESSOUT_PROJECT_SECRET")
        if response.status_code != 200:
            raise ProviderUnavailable(f"ProcessOut answered {response.status_code} at {self._base_url}")
        try:
            event = response.json()["event"]
        except (ValueError, KeyError, TypeError):
            raise ProviderUnavailable("ProcessOut answered without an event") from None
        if not isinstance(event, dict) or event.get("id") != event_id or not isinstance(event.get("name"), str):
            raise BadEventData("ProcessOut answered with another or a malformed event")
        return event

    def list_events_page(self, *, limit: int, start_after: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """One page of ``GET /events``, newest first: ``(events, has_more)``.

        Paged as ProcessOut's SDKs page it: ``limit``, and ``start_after`` set to
        the id of the last event of the previous page while ``has_more``.
        """
        params: dict[str, str | int] = {"limit": limit}
        if start_after:
            params["start_after"] = start_after
        try:
            response = self._http.get(f"{self._base_url}/events", params=params, auth=self._auth)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"ProcessOut list failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise ProviderUnavailable(f"ProcessOut answered {response.status_code} to GET /events")
        try:
            body = response.json()
            events, has_more = body["events"], bool(body.get("has_more", False))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ProviderUnavailable("ProcessOut answered GET /events without an event list") from None
        if not isinstance(events, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str)
                                                   and isinstance(e.get("name"), str) for e in events):
            raise ProviderUnavailable("ProcessOut answered GET /events with malformed events")
        return events, has_more

    def close(self) -> None:
        self._http.close()
