"""The portal's HTTP transport: URL forms, PHP-style request decoding and encoding, where the
credentials sit in a request, and the success and error envelopes.

PHP semantics matter here because clients are written against them: `fields[TITLE]=x` nests,
`a[]=1` appends, sequential integer keys come back as JSON lists, every form scalar is a string.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote_plus, unquote_plus

from aiohttp import web
from multidict import CIMultiDictProxy

from emulator.primitives import RestError

# Keys an OAuth provider reads and strips from the method's params [docs/bitrix24.md §1.1].
# `auth_connector` is the OAuth layer's too, but emulator.offline_context takes it out (it needs
# the value, and the licence check) when the method runs.
OAUTH_PARAM_KEYS = ("auth", "access_token")


# --- PHP parse_str / http_build_query -------------------------------------------------------


def _split_name(name: str) -> tuple[str, list[str]] | None:
    """Split `a[b][]` into ("a", ["b", ""]) the way PHP registers a request variable."""
    name = name.lstrip(" ")
    keys: list[str] = []
    open_at = name.find("[")
    if open_at == -1 or name.find("]", open_at) == -1:
        # No closed bracket: the whole name is the variable; PHP mangles ' ', '.', '[' to '_'.
        base = name
    else:
        base, rest = name[:open_at], name[open_at:]
        while rest.startswith("["):
            close = rest.find("]")
            if close == -1:
                break
            keys.append(rest[1:close])
            rest = rest[close + 1 :]  # text after a group that is not another '[' is dropped
    base = base.replace(" ", "_").replace(".", "_").replace("[", "_")
    return (base, keys) if base else None


def _next_index(node: dict[str, Any]) -> str:
    ints = [int(k) for k in node if re.fullmatch(r"-?(0|[1-9]\d*)", k)]
    return str(max(ints) + 1 if ints else 0)


def _insert(root: dict[str, Any], name: str, value: Any) -> None:
    split = _split_name(name)
    if split is None:
        return
    base, keys = split
    node, key = root, base
    for sub in keys:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
        key = _next_index(node) if sub == "" else sub
    node[key] = value


def php_array(value: Any) -> Any:
    """Render PHP arrays as json_encode does: keys 0..n-1 in order become a list, others a map."""
    if isinstance(value, dict):
        items = {str(k): php_array(v) for k, v in value.items()}
        if list(items) == [str(i) for i in range(len(items))]:
            return list(items.values())
        return items
    if isinstance(value, list):
        return [php_array(v) for v in value]
    return value


def parse_pairs(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Build request params from decoded (name, value) pairs with PHP bracket nesting."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        _insert(root, name, value)
    result = php_array(root)
    return result if isinstance(result, dict) else {str(i): v for i, v in enumerate(result)}


def parse_str(query: str) -> dict[str, Any]:
    """PHP `parse_str`: `a[b]=1&a[]=2&c=x` -> {"a": {"b": "1", "0": "2"}, "c": "x"}."""
    pairs = []
    for chunk in query.split("&"):
        if not chunk:
            continue
        name, _, value = chunk.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return parse_pairs(pairs)


def _php_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def _urlencode(text: str) -> str:
    # PHP urlencode() also escapes '~', which Python's quote_plus leaves alone.
    return quote_plus(text, safe="").replace("~", "%7E")


def http_build_query(data: Mapping[str, Any]) -> str:
    """PHP `http_build_query`: nested keys as `a[b][0]`, null and empty arrays vanish."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}[{k}]", v)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        else:
            pairs.append((prefix, _php_scalar(value)))

    for key, value in data.items():
        walk(str(key), value)
    return "&".join(f"{_urlencode(k)}={_urlencode(v)}" for k, v in pairs)


def php_truthy(value: Any) -> bool:
    """PHP boolean conversion: "", "0", 0, empty arrays and null are false."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestRoute:
    """What the URL names: the method and, for an inbound webhook, its user and code."""

    method: str
    webhook_user: str | None = None
    webhook_code: str | None = None


def parse_rest_path(tail: str) -> RestRoute | None:
    """`method[.json]` or `<user>/<code>/<method>[.json]` (the part after `/rest/`)."""
    parts = [p for p in tail.split("/") if p]
    if len(parts) not in (1, 3):
        return None
    method = parts[-1]
    if method.lower().endswith(".json"):
        method = method[: -len(".json")]
    if not method:
        return None
    if len(parts) == 3:
        return RestRoute(method.lower(), parts[0], parts[1])
    return RestRoute(method.lower())


async def read_params(request: web.Request) -> dict[str, Any]:
    """Query params, replaced key by key by the POST body (JSON, form, multipart or raw)."""
    params = parse_str(request.rel_url.raw_query_string)
    if request.method != "POST":
        return params
    body: dict[str, Any]
    if request.content_type == "multipart/form-data":
        form = await request.post()
        body = parse_pairs(
            (k, v if isinstance(v, str) else getattr(v, "filename", "")) for k, v in form.items()
        )
    else:
        raw = await request.read()
        if request.content_type == "application/json":
            try:
                decoded = json.loads(raw) if raw else {}
            except ValueError:
                decoded = {}  # the portal swallows a JSON decode failure
            body = decoded if isinstance(decoded, dict) else {}
        else:
            body = parse_str(raw.decode("utf-8", "replace"))
    params.update(body)  # array_replace: POST wins, top level only
    return params


@dataclass(frozen=True)
class Credentials:
    """The credentials a request carries, before anyone checks them."""

    kind: Literal["oauth", "webhook", "none"]
    token: str = ""
    user: str = ""
    code: str = ""


def extract_credentials(
    route: RestRoute, headers: CIMultiDictProxy[str], params: dict[str, Any]
) -> Credentials:
    """Webhook path segments, else Bearer header, `auth`, `access_token` (§1.1 order)."""
    if route.webhook_code is not None:
        return Credentials("webhook", user=route.webhook_user or "", code=route.webhook_code)
    candidates: list[Any] = []
    header = headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        candidates.append(header[7:].strip())
    candidates += [params.get("auth"), params.get("access_token")]
    for key in OAUTH_PARAM_KEYS:
        params.pop(key, None)
    token = next((c for c in candidates if isinstance(c, str) and c), None)
    return Credentials("oauth", token=token) if token else Credentials("none")


def normalise_keys(params: dict[str, Any]) -> dict[str, Any]:
    """Upper-case the top-level keys, as handlers that call array_change_key_case do."""
    return {str(k).upper(): v for k, v in params.items()}


# --- responses ------------------------------------------------------------------------------


def iso_date(ts: float) -> str:
    """PHP date('c'): ISO-8601 seconds with the UTC offset."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def time_block(
    start: float, finish: float, processing: float, operating: tuple[float, int] | None
) -> dict[str, Any]:
    """The `time` object of an answer; `operating*` only when the load limiter applies."""
    block: dict[str, Any] = {
        "start": round(start, 6),
        "finish": round(finish, 6),
        "duration": round(finish - start, 6),
        "processing": round(processing, 6),
        "date_start": iso_date(start),
        "date_finish": iso_date(finish),
    }
    if operating is not None:
        block["operating_reset_at"] = operating[1]
        block["operating"] = round(float(operating[0]), 6)
    return block


def lift_result(result: Any) -> dict[str, Any]:
    """Split a handler's return into result/next/total the way processResponse lifts them."""
    out: dict[str, Any] = {}
    if isinstance(result, dict):
        result = dict(result)
        if result.get("next") is not None:
            out["next"] = result.pop("next")
        if "total" in result:
            total = result.pop("total")
            out["total"] = int(total or 0)
    return {"result": php_array(result), **out}


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


def error_response(error: RestError) -> web.Response:
    return json_response(error.envelope(), error.status)


HTML_PAGES = {
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}


def html_error(status: int) -> web.Response:
    """An error page from the front proxy, as clients meet it when the portal is in trouble."""
    title = HTML_PAGES.get(status, f"{status} Error")
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return web.Response(text=page, status=status, content_type="text/html")
