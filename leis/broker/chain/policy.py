"""The policy stage: what a principal may ask, for what purpose, how often (R-Q-1..4, R-ID-3, R-SEC-3).

A request that did not parse, is larger than the policy limit (the transport admits
more, so that the refusal is audited and names the field), or holds a Timestamp or
Duration outside its range, is refused here, for every method of the chain. A search (or a
request to fetch a disclosed data item again) is validated, its end user's ORI and its
purpose checked against the principal's agreement, and the end user's rate limit applied
(the agency's is admission's); the
:class:`~leis.broker.context.Authorized` query and purpose are established for the handler.
The rules themselves are the pure functions of ``leis.rules``.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from leis.broker.chain._base import Continuation, bypasses_chain, call_next, passthrough
from leis.broker.chain.malformed import MalformedRequest
from leis.broker.context import AUTHORIZED, PRINCIPAL, Authorized
from leis.broker.limits import Limits
from leis.rules.purpose import check_ori, check_purpose
from leis.rules.validation import (
    check_ranges,
    check_size,
    request_too_large,
    validate_data_item,
    validate_search,
)

SEARCH_METHODS = frozenset({"/leis.v1.QueryService/Search", "/leis.v1.FederatedSearchService/Search"})
# Fetching a disclosed data item again is judged like a search: end user, ORI, purpose, rate.
DATA_ITEM_METHOD = "/leis.v1.QueryService/GetDataItem"


class PolicyInterceptor(AsyncServerInterceptor):
    """Validation, purpose and the per-user rate limit for search calls."""

    def __init__(self, limits: Limits, max_request_bytes: int) -> None:
        self._limits = limits
        self._max_request_bytes = max_request_bytes

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        if bypasses_chain(method_name):
            return await passthrough(method, request, context)
        if isinstance(request, MalformedRequest):
            if len(request.data) > self._max_request_bytes:
                raise request_too_large("request", len(request.data), self._max_request_bytes)
            raise request.refusal()
        check_size(request, self._max_request_bytes)
        check_ranges(request)
        if method_name not in SEARCH_METHODS and method_name != DATA_ITEM_METHOD:
            return await passthrough(method, request, context)
        agreement = PRINCIPAL.get().agreement
        query = validate_data_item(request) if method_name == DATA_ITEM_METHOD else validate_search(request)
        # The asserted ORI is checked once its format is known to be valid (R-ID-3).
        check_ori(query.ori, agreement.permitted_oris)
        purpose = check_purpose(request.purpose, agreement.permitted_purposes)
        await self._limits.take_user(agreement.agency_id, query.user_id)
        AUTHORIZED.establish(Authorized(query, purpose))
        return await call_next(method, request, context)
