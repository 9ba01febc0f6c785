"""The policy stage: what a principal may ask, for what purpose, how often (R-Q-1..4, R-ID-3, R-SEC-3).

A request that did not parse is refused here, for every method. A search is
validated, its end user's ORI and its purpose checked against the principal's
agreement, and the end user's rate limit applied (the agency's is admission's); the
:class:`~leis.broker.context.Authorized` query and purpose are established for the handler.
The rules themselves are the pure functions of ``leis.rules``.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from leis.broker.chain._base import Continuation, passthrough
from leis.broker.chain.malformed import MalformedRequest
from leis.broker.context import AUTHORIZED, PRINCIPAL, Authorized
from leis.broker.limits import Limits
from leis.common.errors import MALFORMED_REQUEST, FieldViolation, InvalidArgument
from leis.rules.purpose import check_ori, check_purpose
from leis.rules.validation import validate_search

SEARCH_METHODS = frozenset({"/leis.v1.QueryService/Search", "/leis.v1.FederatedSearchService/Search"})


class PolicyInterceptor(AsyncServerInterceptor):
    """Validation, purpose and the per-user rate limit for search calls."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        if isinstance(request, MalformedRequest):
            raise InvalidArgument(
                MALFORMED_REQUEST,
                f"the request is not a valid {request.message_type} message",
                violations=[FieldViolation("request", "the bytes do not parse as the request message")],
            )
        if method_name not in SEARCH_METHODS:
            return await passthrough(method, request, context)
        agreement = PRINCIPAL.get().agreement
        query = validate_search(request)
        # The asserted ORI is checked once its format is known to be valid (R-ID-3).
        check_ori(query.ori, agreement.permitted_oris)
        purpose = check_purpose(request.purpose, agreement.permitted_purposes)
        await self._limits.take_user(agreement.agency_id, query.user_id)
        AUTHORIZED.establish(Authorized(query, purpose))
        return await method(request, context)
