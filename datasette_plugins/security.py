"""Protection for the routes that write or spend, and for the whole app against DNS rebinding.

* Every request whose ``Host`` is not an address the server was started on gets 403
  (``allowed_hosts`` in the plugin config, set by ``sinkin serve``; when it is not set, loopback
  names on any port are accepted, which is what ``datasette.client`` in tests sends).
* A write is accepted only as a ``POST`` of ``application/json`` that carries the
  ``X-CSRFToken`` header equal to the ``ds_csrftoken`` cookie (asgi-csrf then checks its
  signature), and whose ``Sec-Fetch-Site`` / ``Origin`` say it comes from this same origin.
  A cookie-less cross-site form POST, which asgi-csrf lets through, is refused here.
"""
import json

from datasette import Response

PLUGIN_NAME = "sinkin-lab"
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
    """None when the request comes from this origin, else why not."""
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


def host_guard(datasette):
    """ASGI middleware: 403 for any request whose Host is not one the server was started on."""

    def wrap(app):
        async def guarded(scope, receive, send):
            if scope["type"] == "http":
                headers = dict(scope.get("headers") or [])
                host = headers.get(b"host", b"").decode("latin-1")
                if not host_allowed(host, allowed_hosts(datasette)):
                    body = json.dumps({"ok": False, "error": "unexpected Host header {!r}: this server "
                                       "only answers requests addressed to it".format(host)}).encode()
                    await send({"type": "http.response.start", "status": 403,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
            await app(scope, receive, send)

        return guarded

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
        data = json.loads(body or b"{}")
    except ValueError:
        return bad("the request body is not valid JSON")
    if not isinstance(data, dict):
        return bad("expected a JSON object")
    return data, None
