"""The few Label Studio REST calls the connector makes, over the standard library's urllib.

Authentication takes either kind of Label Studio API key: a legacy token (sent as
`Authorization: Token <key>`) or a personal access token, a JWT refresh token that is first
exchanged at /api/token/refresh/ for a short-lived access token (sent as `Bearer`), and
exchanged again when Label Studio answers 401. Every call has a timeout; every answer is
read up to a size bound before it is parsed.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

# Largest answer read from Label Studio: a page of tasks holds page_size tasks' data.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
DEFAULT_PAGE_SIZE = 100
# How much of an error body is quoted in an exception (it is the server's text).
_QUOTE = 300

JSON = Any  # a decoded JSON value


class LabelStudioError(Exception):
    """A Label Studio call failed: unreachable, timed out, or answered with an HTTP error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def is_personal_access_token(api_key: str) -> bool:
    """A personal access token is a JWT (three base64url parts); a legacy token is hex."""
    parts = api_key.split(".")
    return len(parts) == 3 and all(parts) and api_key.startswith("eyJ")


def _detail(body: bytes) -> str:
    """The `detail` (or the whole body) of an error answer, shortened."""
    text = body.decode("utf-8", "replace")
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        found = decoded.get("detail") or decoded.get("validation_errors") or decoded
        text = found if isinstance(found, str) else json.dumps(found)
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE else text[:_QUOTE] + "…"


class LabelStudio:
    """A Label Studio server at url (e.g. "http://localhost:8080"), reached with api_key."""

    def __init__(self, url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"the Label Studio URL must be http(s)://host[:port]; got {url!r}")
        if not api_key:
            raise ValueError("a Label Studio API key is required (LABEL_STUDIO_API_KEY)")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.url = url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._access: str | None = None

    # -- transport ------------------------------------------------------------------------

    def _authorization(self, *, refresh: bool = False) -> str:
        if not is_personal_access_token(self._api_key):
            return f"Token {self._api_key}"
        if self._access is None or refresh:
            answer = self._send("POST", "/api/token/refresh/", None, {"refresh": self._api_key}, "")
            access = answer.get("access") if isinstance(answer, dict) else None
            if not isinstance(access, str):
                raise LabelStudioError("Label Studio's /api/token/refresh/ gave no access token")
            self._access = access
        return f"Bearer {self._access}"

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None,
        body: JSON,
        authorization: str,
    ) -> JSON:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        where = f"{method} {path}"
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as err:
            detail = _detail(err.read(64 * 1024))
            raise LabelStudioError(f"{where}: HTTP {err.code}: {detail}", err.code) from None
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, TimeoutError):
                raise LabelStudioError(
                    f"{where}: Label Studio did not answer within {self._timeout:g} s"
                ) from None
            raise LabelStudioError(f"cannot reach Label Studio at {self.url}: {reason}") from None
        except TimeoutError:
            raise LabelStudioError(
                f"{where}: Label Studio did not answer within {self._timeout:g} s"
            ) from None
        except OSError as err:
            raise LabelStudioError(f"{where}: connection to Label Studio failed: {err}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise LabelStudioError(f"{where}: answer larger than {MAX_RESPONSE_BYTES} bytes")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise LabelStudioError(f"{where}: the answer is not JSON: {_detail(raw)}") from None

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: JSON = None,
    ) -> JSON:
        """One authenticated call; with a personal access token, a 401 refreshes it once."""
        try:
            return self._send(method, path, query, body, self._authorization())
        except LabelStudioError as err:
            if err.status != 401 or not is_personal_access_token(self._api_key):
                raise
        return self._send(method, path, query, body, self._authorization(refresh=True))

    # -- projects -------------------------------------------------------------------------

    def project(self, project: int) -> dict[str, Any]:
        answer = self.call("GET", f"/api/projects/{project}")
        if not isinstance(answer, dict):
            raise LabelStudioError(f"GET /api/projects/{project}: not a project")
        return answer

    def update_project(self, project: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.call("PATCH", f"/api/projects/{project}", body=dict(fields))
        return answer if isinstance(answer, dict) else {}

    def model_versions(self, project: int) -> dict[str, int]:
        """The project's prediction model versions and how many predictions each has."""
        answer = self.call("GET", f"/api/projects/{project}/model-versions")
        if not isinstance(answer, dict):
            raise LabelStudioError(f"GET /api/projects/{project}/model-versions: not a mapping")
        return {str(k): int(v) for k, v in answer.items() if isinstance(v, int)}

    def delete_model_version(self, project: int, model_version: str) -> int:
        """Delete every prediction of one model version; returns how many were deleted."""
        answer = self.call(
            "DELETE",
            f"/api/projects/{project}/model-versions",
            body={"model_version": model_version},
        )
        deleted = answer.get("deleted_predictions") if isinstance(answer, dict) else None
        return int(deleted) if isinstance(deleted, int) else 0

    # -- tasks and predictions ------------------------------------------------------------

    def tasks(
        self, project: int, *, view: int | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every task of the project (or of one Data Manager view, in its order), page by page.

        Without a view, tasks come in id order, so pages stay stable while tasks are added.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        query: dict[str, str | int] = {"page_size": page_size}
        query.update({"view": view} if view is not None else {"project": project})
        seen = 0
        page = 1
        while True:
            try:
                answer = self.call("GET", "/api/tasks", query={**query, "page": page})
            except LabelStudioError as err:
                # A page past the end (tasks deleted while paging) ends the listing.
                if err.status == 404 and page > 1:
                    return
                raise
            if not isinstance(answer, dict) or not isinstance(answer.get("tasks"), list):
                raise LabelStudioError("GET /api/tasks: the answer has no task list")
            batch: list[dict[str, Any]] = answer["tasks"]
            yield from batch
            seen += len(batch)
            total = answer.get("total")
            if len(batch) < page_size or (isinstance(total, int) and seen >= total):
                return
            page += 1

    def import_predictions(self, project: int, predictions: Sequence[Mapping[str, Any]]) -> int:
        """Create predictions in bulk; returns how many Label Studio created."""
        answer = self.call(
            "POST", f"/api/projects/{project}/import/predictions", body=list(predictions)
        )
        created = answer.get("created") if isinstance(answer, dict) else None
        return int(created) if isinstance(created, int) else 0

    # -- Data Manager views ---------------------------------------------------------------

    def views(self, project: int) -> list[dict[str, Any]]:
        answer = self.call("GET", "/api/dm/views", query={"project": project})
        if not isinstance(answer, list):
            raise LabelStudioError("GET /api/dm/views: not a list")
        return [view for view in answer if isinstance(view, dict)]

    def create_view(self, project: int, data: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.call("POST", "/api/dm/views", body={"project": project, "data": dict(data)})
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
            raise LabelStudioError("POST /api/dm/views: no view id in the answer")
        return answer

    def update_view(self, view: int, project: int, data: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.call(
            "PATCH", f"/api/dm/views/{view}", body={"project": project, "data": dict(data)}
        )
        return answer if isinstance(answer, dict) else {}
