"""Replies in Redshift's wire format: results serialised from botocore's service model, errors in
Redshift's XML error shape with the HTTP status that model declares."""

from __future__ import annotations

import functools
import re
import uuid
from typing import Any
from xml.sax.saxutils import escape

from moto.core.serialize import XFormedAttributePicker, get_serializer_class
from moto.core.utils import get_service_model

from migrator.sandbox.controlplane.model import ApiError, Reply


def render(action: str, result: Any) -> Reply:
    """A result in the query protocol's XML, serialised by moto from botocore's model for ``action``."""
    model = get_service_model("redshift")
    try:
        operation = model.operation_model(action)
    except Exception:
        operation = model.operation_model("DescribeClusters")  # only errors take this path
    serializer = get_serializer_class("redshift", "query")(
        operation_model=operation, value_picker=XFormedAttributePicker())
    out = serializer.serialize(result)
    headers = [(k, str(v)) for k, v in out["headers"].items()]
    body = out["body"]
    return int(out["status_code"]), headers, body.encode() if isinstance(body, str) else body


def render_error(action: str, error: ApiError) -> Reply:
    """An error in Redshift's XML error format (HTTP status from the service model unless given)."""
    status = error.status or error_statuses().get(error.code, 400)
    kind = "Sender" if status < 500 else "Receiver"
    body = (f'<ErrorResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/"><Error><Type>{kind}</Type>'
            f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return status, [("Content-Type", "text/xml")], body.encode()


@functools.lru_cache(maxsize=1)
def error_statuses() -> dict[str, int]:
    """Error code → HTTP status, as Redshift's service model declares them."""
    model = get_service_model("redshift")
    out: dict[str, int] = {}
    for name in model.shape_names:
        error = model.shape_for(name).metadata.get("error")
        if error:
            out[str(error.get("code", name))] = int(error.get("httpStatusCode", 400))
    return out


def error_code(body: bytes) -> str:
    m = re.search(rb"<Code>([^<]+)</Code>", body)
    return m.group(1).decode() if m else "InternalFailure"
