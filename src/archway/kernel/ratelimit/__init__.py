"""Rate limits: plans and route classes (:mod:`.policy`), moving windows in memory or Redis
(:mod:`.windows`), the limiter over them (:mod:`.limiter`) and the IETF ``RateLimit`` headers
(:mod:`.headers`).

Every protocol's edge applies the one rule, :meth:`.limiter.RateLimiter.admit` (a caller from
:mod:`archway.kernel.auth.callers`, its plan, one hit): REST's middleware
:class:`archway.kernel.http.rate_limits.RateLimits`, GraphQL's per-operation extension
(:mod:`archway.kernel.graphql.rate_limits`) and the gRPC guard (:mod:`archway.kernel.grpc.limits`).
"""
