"""JSON errors: the ``ApiError`` exception, the error-code table and Flask handlers that turn
every error (routing, Werkzeug, unhandled) into a ``{"error", "message"}`` body."""

import json

from flask import Response
from werkzeug.exceptions import HTTPException

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    410: "gone",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal",
    501: "not_implemented",
    503: "unavailable",
}


class ApiError(Exception):
    """An answer other than 2xx, raised anywhere below a view and rendered as a JSON error."""

    def __init__(self, status, code, message, headers=None, **extra):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


def dumps(body):
    """Every answer goes through here: allow_nan=False, so nothing that is not JSON leaves."""
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def json_response(body, status=200, headers=None):
    return Response(dumps(body), status=status, mimetype="application/json", headers=headers)


def error_response(status, code, message, headers=None, **extra):
    return json_response({"error": code, "message": message, **extra}, status, headers)


def error_code_for(status):
    return ERROR_CODES.get(status, "internal" if status >= 500 else f"http_{status}")


def http_error_response(error):
    """A Werkzeug HTTPException as a JSON error, keeping its status and headers such as Allow."""
    status = error.code or 500
    if status >= 500:
        return error_response(status, error_code_for(status), "internal server error")
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    message = (error.description or error.name or "error").strip()
    return error_response(status, error_code_for(status), message, headers=headers)


def api_error_response(error):
    return error_response(error.status, error.code, error.message, headers=error.headers, **error.extra)


def unauthorized(message="missing or invalid bearer token"):
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def register_json_errors(app):
    """Makes every HTTP error of ``app`` a JSON body, including routing errors (404, 405) that
    happen before any blueprint is chosen, and unhandled exceptions (500, details logged only)."""
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(ApiError, api_error_response)

    def internal(error):
        app.logger.exception("unhandled error", exc_info=error)
        return error_response(500, "internal", "internal server error")

    app.register_error_handler(Exception, internal)
