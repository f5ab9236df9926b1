"""Protection for the routes that write or spend, and for the whole app against DNS rebinding.

* Every request whose ``Host`` is not an address the server was started on gets 403
  (``allowed_hosts`` in the plugin config, set by ``sinkin serve``; when it is not set, loopback
  names on any port are accepted, which is what ``datasette.client`` in tests sends).
* A write is accepted only as a ``POST`` of ``application/json`` that carries the
  ``X-CSRFToken`` header equal to the ``ds_csrftoken`` cookie (asgi-csrf then checks its
  signature), and whose ``Sec-Fetch-Site`` / ``Origin`` say it comes from this same origin.
  A cookie-less cross-site form POST, which asgi-csrf lets through, is refused here.
"""

import hashlib
import hmac
import ipaddress
import json
import weakref
from urllib.parse import quote

from datasette import Response

PLUGIN_NAME = "sinkin"  # the config key, as the entry point and the /-/sinkin URLs
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def plugin_config(datasette):
    return datasette.plugin_config(PLUGIN_NAME) or {}


def allowed_hosts(datasette):
    """The Host header values accepted, or None for "any loopback name, any port"."""
    hosts = plugin_config(datasette).get("allowed_hosts")
    return [h.lower() for h in hosts] if hosts else None


def host_allowed(host, allowed):
    host = (host or "").lower()
    if allowed is not None:
        return host in allowed
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.startswith("["):
        name = host.split("]")[0] + "]"
    return name in LOOPBACK_NAMES


def forbidden(message):
    return Response.json({"ok": False, "error": message}, status=403)


def cross_site_problem(request):
    """None when the request comes from this origin, else why not (stricter than
    :func:`fetch_problem`: a write must come from a page of this origin)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return "cross-site request refused (Sec-Fetch-Site: {})".format(site)
    origin = request.headers.get("origin")
    if origin is not None and origin != "{}://{}".format(request.scheme, request.host):
        return "request from a foreign origin refused ({})".format(origin)
    return None


def write_problem(request):
    """None when ``request`` may write or spend, else a message for a 403."""
    if request.method != "POST":
        return "use POST"
    problem = cross_site_problem(request)
    if problem:
        return problem
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return "only JSON requests are accepted (Content-Type: application/json)"
    token = request.headers.get("x-csrftoken")
    cookie = request.cookies.get("ds_csrftoken")
    if not token or not cookie or token != cookie:
        return "missing or wrong X-CSRFToken header: reload the page and try again"
    return None


MAX_JSON_BODY = 1024 * 1024


class NonFiniteNumber(ValueError):
    pass


def _finite(text):
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise NonFiniteNumber("the number {} is too large".format(text[:40]))
    return number


def _no_constant(name):
    raise NonFiniteNumber("{} is not a number JSON allows".format(name))


def parse_json(body):
    """``json.loads`` that refuses what would come back as invalid JSON: ``NaN``, ``Infinity`` and
    numbers too large for a float (``1e400``) raise :class:`NonFiniteNumber` (a ValueError)."""
    return json.loads(body, parse_float=_finite, parse_constant=_no_constant)


class BodyTooLarge(Exception):
    pass


async def read_capped_body(request, limit):
    """The request body, refusing (BodyTooLarge) anything over ``limit`` bytes without reading it
    all: the Content-Length is checked first, then the bytes as they arrive."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise BodyTooLarge()
        except ValueError:
            raise BodyTooLarge()
    body = bytearray()
    more = True
    while more:
        message = await request.receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            raise BodyTooLarge()
        more = message.get("more_body", False)
    return bytes(body)


# --- sign-in when exposed ----------------------------------------------------------------------

AUTH_COOKIE = "sinkin_auth"
AUTH_NAMESPACE = "sinkin-auth"
LOGIN_PATH = "/-/sinkin/login"
_sign_in = weakref.WeakKeyDictionary()  # Datasette -> the sign-in token


def require_sign_in(datasette, token):
    """Clients not on this machine must sign in with ``token`` (exchanged for a signed cookie)."""
    _sign_in[datasette] = token


def sign_in_token(datasette):
    """The token that signs in to ``datasette``, or None when sign-in is off (loopback)."""
    return _sign_in.get(datasette)


def _token_digest(token):
    return hashlib.sha256(("sinkin-sign-in:" + token).encode()).hexdigest()[:32]


def token_matches(datasette, given):
    token = sign_in_token(datasette)
    return bool(token) and isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())


def auth_cookie_value(datasette):
    """The signed cookie that proves a sign-in (valid until the token changes)."""
    return datasette.sign({"t": _token_digest(sign_in_token(datasette))}, AUTH_NAMESPACE)


def signed_in(datasette, cookies):
    value = cookies.get(AUTH_COOKIE)
    if not value:
        return False
    try:
        data = datasette.unsign(value, AUTH_NAMESPACE)
    except Exception:  # itsdangerous.BadSignature and friends
        return False
    expected = _token_digest(sign_in_token(datasette))
    return isinstance(data, dict) and hmac.compare_digest(str(data.get("t")), expected)


def _cookies(headers):
    from http.cookies import SimpleCookie

    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:
        return {}
    return {k: m.value for k, m in jar.items()}


def _is_loopback_client(scope):
    client = scope.get("client")
    if not client:
        return True  # in-process (datasette.client): not a network client
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


def needs_sign_in(datasette, scope, headers):
    """True when this request must sign in first: sign-in is on, the client is not on this
    machine, it has no valid sign-in cookie, and it is not asking for the sign-in page."""
    if sign_in_token(datasette) is None or _is_loopback_client(scope):
        return False
    if scope.get("path", "") == datasette.urls.path(LOGIN_PATH):
        return False
    return not signed_in(datasette, _cookies(headers))


def fetch_problem(method, headers, own_origin):
    """None when a request may reach the app, else why not (for a 403).

    Browsers label every request with ``Sec-Fetch-Site``. Anything another site (or another
    port of this host: ``same-site``) makes the browser send is refused — a ``fetch``, an
    ``<img>``, a ``<script>``, a frame, a form POST — except a top-level GET navigation (a link
    opened from elsewhere), which shows a page and cannot read it. Requests with no fetch
    metadata (curl, scripts on this machine) are not browsers acting for another site; a foreign
    ``Origin`` is refused either way."""
    site = headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        navigation = (
            headers.get("sec-fetch-mode") == "navigate"
            and headers.get("sec-fetch-dest", "document") == "document"
        )
        if not (navigation and method in ("GET", "HEAD")):
            return "cross-site request refused (Sec-Fetch-Site: {}, Sec-Fetch-Mode: {}, Sec-Fetch-Dest: {})".format(
                site, headers.get("sec-fetch-mode"), headers.get("sec-fetch-dest")
            )
    origin = headers.get("origin")
    if origin is not None and origin != own_origin:
        return "request from a foreign origin refused ({})".format(origin)
    return None


async def read_only_query_problem(datasette, path):
    """Why a POST to ``path`` is refused when it names a read-only canned query (Datasette 0.65
    answers such a POST with a 500), else None."""
    from urllib.parse import unquote

    base = datasette.urls.path("/")
    if not path.startswith(base):
        return None
    parts = path[len(base) :].split("/")
    if len(parts) != 2 or parts[0] not in {db.route for db in datasette.databases.values()}:
        return None
    name = unquote(parts[1])
    for suffix in (".json", ".csv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    database = next(n for n, db in datasette.databases.items() if db.route == parts[0])
    query = await datasette.get_canned_query(database, name, None)
    if query is not None and not query.get("write"):
        return "{} is a read-only query: open it with GET".format(name)
    return None


def _header_dict(scope):
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}


async def _refuse(send, status, message, extra_headers=()):
    body = json.dumps({"ok": False, "error": message, "status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def protect(datasette):
    """ASGI middleware around the whole app (Datasette's pages, JSON and CSV included):

    * 403 for a ``Host`` the server was not started on (DNS rebinding);
    * 403 for requests another site makes a browser send (:func:`fetch_problem`);
    * 415 for ``multipart/form-data`` (nothing here accepts it, and asgi-csrf 0.11 crashes on it
      with python-multipart 0.0.3x when a cookie is sent);
    * the headers of :func:`csp.security_headers` on every response (no framing, a CSP)."""
    from .csp import security_headers

    added = security_headers()

    def wrap(app):
        async def protected(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            headers = _header_dict(scope)
            host = headers.get("host", "")
            if not host_allowed(host, allowed_hosts(datasette)):
                return await _refuse(
                    send,
                    403,
                    "unexpected Host header {!r}: this server only answers requests addressed to it".format(
                        host
                    ),
                    added,
                )
            method = scope.get("method", "GET").upper()
            problem = fetch_problem(method, headers, "{}://{}".format(scope.get("scheme", "http"), host))
            if problem:
                return await _refuse(send, 403, problem, added)
            if needs_sign_in(datasette, scope, headers):
                if (
                    method in ("GET", "HEAD")
                    and headers.get("sec-fetch-mode", "navigate") == "navigate"
                    and not scope.get("path", "").endswith((".json", ".csv"))
                ):
                    target = scope.get("path", "/") + (
                        "?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""
                    )
                    location = "{}?next={}".format(datasette.urls.path(LOGIN_PATH), quote(target, safe=""))
                    return await _refuse(
                        send,
                        302,
                        "sign in first: " + location,
                        list(added) + [(b"location", location.encode("latin-1"))],
                    )
                return await _refuse(
                    send,
                    401,
                    "sign in first: open {} with the token `sinkin serve` printed".format(LOGIN_PATH),
                    added,
                )
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "multipart/form-data":
                return await _refuse(
                    send,
                    415,
                    "multipart/form-data is not accepted here: send JSON (uploads are JSON with base64 data)",
                    added,
                )
            if method == "POST":
                problem = await read_only_query_problem(datasette, scope.get("path", ""))
                if problem:
                    return await _refuse(send, 405, problem, list(added) + [(b"allow", b"GET, HEAD")])

            async def send_with_headers(message):
                if message["type"] == "http.response.start":
                    present = {name.lower() for name, _ in message.get("headers") or []}
                    message = dict(
                        message,
                        headers=list(message.get("headers") or [])
                        + [(name, value) for name, value in added if name not in present],
                    )
                await send(message)

            await app(scope, receive, send_with_headers)

        return protected

    return wrap


async def write_request(request, limit=MAX_JSON_BODY):
    """``(data, None)`` for an accepted write request carrying a JSON object of at most ``limit``
    bytes, else ``(None, response)``: 403 when :func:`write_problem` refuses it (before the body is
    read), 413 when it is too large, 400 when it is not a JSON object."""
    problem = write_problem(request)
    if problem:
        return None, forbidden(problem)

    def bad(message, status=400):
        return None, Response.json({"ok": False, "error": message}, status=status)

    try:
        body = await read_capped_body(request, limit)
    except BodyTooLarge:
        return bad("the request is larger than {:.1f} MB".format(limit / 2**20), 413)
    try:
        data = parse_json(body or b"{}")
    except RecursionError:
        return bad("the request body is nested too deeply")
    except ValueError as e:
        return bad(
            "the request body is not valid JSON{}".format(
                ": " + str(e) if isinstance(e, NonFiniteNumber) else ""
            )
        )
    if not isinstance(data, dict):
        return bad("expected a JSON object")
    return data, None
