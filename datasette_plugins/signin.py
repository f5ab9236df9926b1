"""``/-/sinkin/login``: exposed mode's sign-in. ``sinkin serve --host 0.0.0.0 …`` prints a URL
with a one-off token (as Jupyter does); opening it, or pasting the token into this page, sets a
signed, HttpOnly cookie that lets the browser in until the server starts with another token.
On loopback there is no sign-in and the page says so."""

from html import escape
from urllib.parse import parse_qs

from datasette import Response

from .security import (
    AUTH_COOKIE,
    BodyTooLarge,
    auth_cookie_value,
    read_capped_body,
    sign_in_token,
    token_matches,
)
from .staticfiles import static_url

COOKIE_DAYS = 30


def routes():
    return [(r"^/-/sinkin/login$", login_page)]


def _safe_next(value):
    """Only a path on this server (never ``//other.host`` or ``https://…``)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


def _form(datasette, next_path, message=""):
    body = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in – SinkIn Lab</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{css}"></head>
<body class="sk-body"><main class="sk-login">
<h1>Sign in to SinkIn Lab</h1>
<p>This server is reachable from the network. Paste the token <code>sinkin serve</code> printed
when it started (or open the sign-in link it printed).</p>
{message}
<form method="post" action="{action}">
<input type="hidden" name="next" value="{next}">
<label for="sk-token">Token</label>
<input id="sk-token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form></main></body></html>""".format(
        css=escape(static_url(datasette, "sinkin.css")),
        action=escape(datasette.urls.path("/-/sinkin/login")),
        next=escape(next_path or ""),
        message='<p class="sk-error" role="alert">{}</p>'.format(escape(message)) if message else "",
    )
    return body


async def login_page(datasette, request):
    home = datasette.urls.path("/-/sinkin")
    if sign_in_token(datasette) is None:
        return Response.redirect(home)
    if request.method == "POST":
        try:
            body = (await read_capped_body(request, 4096)).decode("utf-8", "replace")
        except BodyTooLarge:
            return Response.text("the sign-in form is larger than it can be", status=413)
        fields = {k: v[0] for k, v in parse_qs(body).items()}
    elif request.method in ("GET", "HEAD"):
        fields = {k: request.args.get(k) for k in ("token", "next")}
    else:
        return Response.text("use GET or POST", status=405)
    next_path = _safe_next(fields.get("next")) or home
    token = fields.get("token")
    if token is None:
        return Response.html(_form(datasette, next_path), headers={"cache-control": "no-store"})
    if not token_matches(datasette, token):
        return Response.html(
            _form(datasette, next_path, "That token is not right."),
            status=403,
            headers={"cache-control": "no-store"},
        )
    response = Response.redirect(next_path)
    response.set_cookie(
        AUTH_COOKIE, auth_cookie_value(datasette), max_age=COOKIE_DAYS * 86400, httponly=True, samesite="lax"
    )
    return response
