"""Response bodies as recorded from the real X API v2 (see shared x-api-v2-notes.md).

Kept in one place so the simulator and the tests assert on the same wire shapes.
"""

from __future__ import annotations

PROBLEMS = "https://api.twitter.com/2/problems/"

UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}

TOO_MANY_REQUESTS = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                     "status": 429}

USAGE_CAPPED = {"title": "UsageCapExceeded", "period": "Monthly", "scope": "Product",
                "detail": "Usage cap exceeded: Monthly product cap", "type": PROBLEMS + "usage-capped"}

OPERATIONAL_DISCONNECT = {"errors": [{
    "title": "operational-disconnect", "disconnect_type": "OperationalDisconnect",
    "detail": "This stream has been disconnected for operational reasons.",
    "type": PROBLEMS + "operational-disconnect"}]}

TOO_MANY_CONNECTIONS = {"title": "ConnectionException",
                        "detail": "This stream is currently at the maximum allowed connection limit.",
                        "connection_issue": "TooManyConnections", "type": PROBLEMS + "streaming-connection"}

# Unknown routes answer as X does for a page that does not exist.
ROUTE_NOT_FOUND = {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}

INVALID_REQUEST_DETAIL = "One or more parameters to your request was invalid."


def server_error(status: int) -> dict:
    """Body of an injected or internal 5xx (shape of the about:blank problems above)."""
    titles = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
              504: "Gateway Timeout"}
    title = titles.get(status, "Server Error")
    return {"title": title, "detail": title, "type": "about:blank", "status": status}


def method_not_allowed() -> dict:
    return {"title": "Method Not Allowed", "detail": "Method Not Allowed", "type": "about:blank", "status": 405}


def invalid_request(parameter: str | None, values: list[str], message: str) -> dict:
    """HTTP 400 body for a malformed request; `parameter` None gives `"parameters": {}`."""
    parameters = {parameter: values} if parameter else {}
    return {"errors": [{"parameters": parameters, "message": message}], "title": "Invalid Request",
            "detail": INVALID_REQUEST_DETAIL, "type": PROBLEMS + "invalid-request"}


def user_not_found(value: str, parameter: str) -> dict:
    """Partial error (HTTP 200) for a missing, deleted or deactivated user."""
    return {"value": value, "detail": f"Could not find user with {parameter}: [{value}].",
            "title": "Not Found Error", "resource_type": "user", "parameter": parameter,
            "resource_id": value, "type": PROBLEMS + "resource-not-found"}


def user_suspended(value: str, parameter: str) -> dict:
    """Partial error (HTTP 200) for a suspended user."""
    return {"value": value, "detail": f"User has been suspended: [{value}].", "title": "Forbidden",
            "resource_type": "user", "parameter": parameter, "resource_id": value,
            "type": PROBLEMS + "resource-not-found"}


def user_protected(value: str) -> dict:
    """Partial error (HTTP 200) for the timeline of a protected user."""
    return {"value": value, "parameter": "id", "resource_type": "user", "section": "data",
            "title": "Authorization Error",
            "detail": f"Sorry, you are not authorized to see the user with id: [{value}].",
            "type": PROBLEMS + "not-authorized-for-resource"}


def invalid_rule(value: str, detail: str) -> dict:
    return {"value": value, "details": [detail], "title": "UnprocessableEntity",
            "type": PROBLEMS + "invalid-rules"}


def duplicate_rule(value: str, rule_id: str) -> dict:
    return {"value": value, "id": rule_id, "title": "DuplicateRule", "type": PROBLEMS + "duplicate-rules"}


def rule_not_found() -> dict:
    """Error for deleting an unknown rule id (shape unconfirmed by a recording)."""
    return invalid_request(None, [], "Rule does not exist")
