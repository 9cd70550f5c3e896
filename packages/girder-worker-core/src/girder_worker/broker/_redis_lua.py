"""Lua that more than one of girder-worker's Redis scripts runs.

Here, not in the modules that use it, so that reading it imports no Redis client:
the lease store (:mod:`girder_worker.delivery._leases`) is loaded by every worker,
the Redis result backend (:mod:`girder_worker.broker._redis_results`) only by one
that uses Redis.
"""

from __future__ import annotations

__all__ = ["STORE_UNLESS_SUCCEEDED_FUNCTION"]

#: A Lua function: store ``value`` under ``key`` for ``lifetime`` seconds (0: none) and announce it,
#: unless a SUCCESS is stored there. Returns 1 when stored and announced, 0 when a SUCCESS is already
#: stored (kept), -1 when the stored value is no JSON object this script can read (the caller decides).
STORE_UNLESS_SUCCEEDED_FUNCTION = """
local function store_unless_succeeded(key, value, lifetime)
  local current = redis.call('GET', key)
  if current and string.find(current, '"SUCCESS"', 1, true) then
    local ok, meta = pcall(cjson.decode, current)
    if not ok or type(meta) ~= 'table' then return -1 end
    if meta['status'] == 'SUCCESS' then return 0 end
  end
  lifetime = tonumber(lifetime)
  if lifetime > 0 then
    redis.call('SETEX', key, lifetime, value)
  else
    redis.call('SET', key, value)
  end
  redis.call('PUBLISH', key, value)
  return 1
end
"""
