"""The scoring path of POST /v1/scores (and of the studies), one module per step:

validate  the request into a ValidRequest: one ArchRecord per architecture, parsed once
plan      the job record, the distinct classes, their score keys (touches nothing)
cache     answer the plan from the cache in one round trip (and the fast path that does it
          before FastAPI's routing)
enqueue   store the job and send a chunk task per slice of the classes still missing
results   assemble one result per architecture from the cache, in request order
"""
